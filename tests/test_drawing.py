"""The chart helper (bot.drawing) and the web process's gunicorn settings (issue 15: memory).

The helper is forked from the process that asks for a chart (it shares that process's pages), started at the
first chart, stopped after an idle time, replaced when it dies; it holds none of the parent's sockets.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from bot import drawing
from bot.cli import serve_config


@pytest.fixture
def helper(monkeypatch):
    monkeypatch.setenv("KPIBOT_CHART_PROCESSES", "1")
    monkeypatch.delenv("KPIBOT_CHART_START", raising=False)
    drawing.shutdown()
    yield drawing
    drawing.shutdown()


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _sockets() -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                fds.append(int(name))
        except OSError:
            continue
    return fds


def _parent_and_nice() -> tuple[int, int]:
    return os.getppid(), os.nice(0)


def test_serve_runs_one_preloaded_worker_with_threads_by_default():
    config = serve_config(3000, "0.0.0.0", env={})
    assert config["workers"] == 1 and config["threads"] == 16
    assert config["preload_app"] is True and config["worker_class"] == "gthread"
    assert config["bind"] == "0.0.0.0:3000"
    more = serve_config(3000, "127.0.0.1", env={"WEB_CONCURRENCY": "2", "KPIBOT_WEB_THREADS": "8"})
    assert (more["workers"], more["threads"]) == (2, 8)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork here")
def test_the_helper_is_forked_at_the_first_chart_niced_and_holds_no_socket(helper):
    assert not helper.helper_running()
    listener = socket.socket()
    try:
        parent, nice = helper._run(_parent_and_nice, timeout=60)
        assert parent == os.getpid()  # forked from this process, not a fresh interpreter
        assert nice >= os.nice(0) + 10 or nice == 19
        assert helper.helper_running()
        assert helper._run(_sockets, timeout=60) == []
        assert _sockets()  # the parent's own are untouched
    finally:
        listener.close()


def test_the_helper_stops_when_idle_and_the_next_chart_starts_another(helper, monkeypatch):
    monkeypatch.setenv("KPIBOT_CHART_IDLE_SECONDS", "1")
    first = helper._run(os.getpid, timeout=60)
    assert first != os.getpid()
    _wait(lambda: not helper.helper_running())
    second = helper._run(os.getpid, timeout=60)
    assert second not in (first, os.getpid())


def test_a_helper_that_died_is_replaced(helper):
    pid = helper._run(os.getpid, timeout=60)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(BrokenProcessPool):
        _wait(lambda: helper._run(os.getpid, timeout=60) is None, timeout=60)  # raises once the death is seen
    assert helper._run(os.getpid, timeout=60) not in (pid, os.getpid())


def test_no_helper_draws_in_the_calling_thread(helper, monkeypatch):
    monkeypatch.setenv("KPIBOT_CHART_PROCESSES", "0")
    assert helper._run(os.getpid, timeout=60) == os.getpid()
    assert not helper.helper_running()
    helper.prestart()
    assert not helper.helper_running()
