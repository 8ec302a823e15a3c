"""Charts are drawn in a helper process, at low priority, never in the web process's own threads.

Drawing a PNG with matplotlib is ~50-150 ms of CPU under the GIL: in the process that acknowledges
Slack's requests it would delay every acknowledgement behind it. A one-worker process pool (niced) draws
them instead. ``KPIBOT_CHART_PROCESSES=0`` draws in the calling thread (scripts, debugging).

Memory (issue 15): the helper is *forked* from the process that asks for a chart, so it shares that
process's imported code (matplotlib included: ``bot.charts`` is imported by the app) copy-on-write instead of
importing everything again (a spawned helper held ~110 MB of its own). It is started at the first chart and
exits after ``KPIBOT_CHART_IDLE_SECONDS`` (default 120) without one, so an idle web process or worker holds
no helper. In the forked child: the garbage collector's view of the inherited objects is frozen (a collection
would otherwise touch, and so copy, every inherited page), the inherited sockets are closed (a client's
connection must end when the web worker closes it, not when the helper exits), the parent's signal handlers
(gunicorn's) are reset, and the helper exits if its parent is gone. Where ``fork`` is not available the
helper is spawned as before (``KPIBOT_CHART_START=spawn`` forces it).
"""

from __future__ import annotations

import atexit
import gc
import logging
import multiprocessing
import os
import signal
import stat
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from kpi.metrics.engine import KpiResult

log = logging.getLogger("kpibot.drawing")
IDLE_SECONDS = 120.0
_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()
_busy = 0
_last_used = 0.0
_reaper: threading.Timer | None = None


def _start_method() -> str:
    wanted = os.environ.get("KPIBOT_CHART_START", "").strip() or "fork"
    return wanted if wanted in multiprocessing.get_all_start_methods() else "spawn"


def _idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("KPIBOT_CHART_IDLE_SECONDS") or IDLE_SECONDS))
    except ValueError:
        return IDLE_SECONDS


def _close_inherited_sockets() -> None:
    """Sockets inherited from the parent (gunicorn's listener, clients' connections, database connections):
    the helper uses none (its queues are pipes), and holding them would keep a closed connection open."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            continue


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(2)
        if os.getppid() != parent:
            os._exit(0)


def _start_helper(parent: int, forked: bool) -> None:
    """Runs first in the helper process."""
    try:
        os.nice(10)
    except OSError:  # pragma: no cover - not permitted: draw at normal priority
        pass
    if not forked:
        return
    gc.freeze()
    for sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
                signal.SIGCHLD, signal.SIGABRT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the helper
    if os.path.isdir("/proc/self/fd"):
        _close_inherited_sockets()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _draw(result: KpiResult, lang: str, currency: str, threshold: float | None = None) -> bytes:
    from .charts import series_chart

    return series_chart(result, lang=lang, currency=currency, threshold=threshold)


def _draw_digest(digest, lang: str) -> bytes | None:
    from .render.digest import digest_chart

    return digest_chart(digest, lang=lang)


def _processes() -> int:
    try:
        return int(os.environ.get("KPIBOT_CHART_PROCESSES", "1"))
    except ValueError:
        return 1


def _acquire() -> ProcessPoolExecutor | None:
    """The helper pool (started if needed), marked busy until ``_release``; None: draw in this thread."""
    global _pool, _busy
    processes = _processes()
    if processes <= 0:
        return None
    with _lock:
        if _pool is None:
            method = _start_method()
            _pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context(method),
                                        initializer=_start_helper, initargs=(os.getpid(), method == "fork"))
        _busy += 1
        return _pool


def _release() -> None:
    global _busy, _last_used, _reaper
    with _lock:
        _busy -= 1
        _last_used = time.monotonic()
        if _reaper is None:
            _reaper = threading.Timer(_idle_seconds(), _reap)
            _reaper.daemon = True
            _reaper.start()


def _reap() -> None:
    """The helper exits once it has drawn nothing for the idle time; the next chart starts a new one."""
    global _pool, _reaper
    with _lock:
        _reaper = None
        idle = time.monotonic() - _last_used
        if _pool is None:
            return
        if _busy or idle < _idle_seconds():
            _reaper = threading.Timer(max(0.1, _idle_seconds() - idle), _reap)
            _reaper.daemon = True
            _reaper.start()
            return
        pool, _pool = _pool, None
    pool.shutdown(wait=False, cancel_futures=True)
    log.debug("chart helper stopped after %.0f s without a chart", idle)


def prestart() -> None:
    """Start the helper now, while this process is young: a helper forked from a process that has served
    for a while shares less with it (the freed holes of its heap are reused by the helper's allocations,
    and every page so written is copied). gunicorn calls it in each new worker before its threads start."""
    if _processes() <= 0 or _start_method() != "fork":
        return
    try:
        _run(os.getpid, timeout=30)
    except Exception as exc:  # noqa: BLE001 - the first chart will start it
        log.warning("chart helper not started: %s: %s", type(exc).__name__, exc)


def helper_running() -> bool:
    """Whether a helper pool is up (tests, the load benchmark)."""
    return _pool is not None


def shutdown() -> None:
    """Stop the helper now (process exit)."""
    global _pool, _reaper
    with _lock:
        pool, _pool = _pool, None
        if _reaper is not None:
            _reaper.cancel()
            _reaper = None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


atexit.register(shutdown)


def _run(fn, *args, timeout: float):
    global _pool
    pool = _acquire()
    if pool is None:
        return fn(*args)
    try:
        with warnings.catch_warnings():  # Python 3.12+ warns of any fork in a process with threads
            warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)
            future = pool.submit(fn, *args)
        return future.result(timeout=timeout)
    except BrokenProcessPool:
        with _lock:  # the helper died (killed, out of memory): the next chart starts a new one
            if _pool is pool:
                _pool = None
        raise
    finally:
        _release()


def draw_digest_chart(digest, *, lang: str, timeout: float = 60) -> bytes | None:
    """The PNG of a digest's goal trajectories, or None (no goals, or not drawn in time)."""
    try:
        return _run(_draw_digest, digest, lang, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - logged; the digest goes out without its chart
        log.warning("digest chart not drawn: %s: %s", type(exc).__name__, exc)
        return None


def draw_chart(result: KpiResult, *, lang: str, currency: str, threshold: float | None = None,
               timeout: float = 30) -> bytes | None:
    """The PNG of a result's series, or None when it could not be drawn in time (the answer keeps its
    text sparkline: a chart is never worth failing an answer)."""
    try:
        return _run(_draw, result, lang, currency, threshold, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - logged; the answer goes on without its chart
        log.warning("chart not drawn: %s: %s", type(exc).__name__, exc)
        return None
