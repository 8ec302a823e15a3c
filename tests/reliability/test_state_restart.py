"""The state database restarts under a running app and worker.

A private PostgreSQL server (initdb in a temporary directory, its own port) holds the state, so that
stopping and starting it never disturbs the shared server the rest of the suite uses. While it is down:
``/healthz`` says 503, a digest due is not lost (its send is retried), the app does not crash; once it is
back, the pool reconnects (pre-ping), ``/healthz`` says 200 and the digest goes out exactly once.
Runs where PostgreSQL's server binaries are installed (CI); skipped elsewhere.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_app, create_slack_tables, wsgi_app
from bot.config import SlackSettings
from bot.digests import DigestSender
from bot.sandbox import AppServer
from bot.standin import SlackStandIn
from bot.teams import TeamClients
from kpi.services import Services
from kpi.settings import Settings
from kpi.state.store import Schedules
from kpi.state.tables import upgrade

from ..test_slack_app import CONFIG, _fill

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(not BIN or os.geteuid() != 0 or shutil.which("runuser") is None,
                                reason="needs PostgreSQL's server binaries and root (to run them as postgres)")
DUE = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 08:00 in Paris


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self):
        self.bin = BIN[-1]
        self.dir = tempfile.mkdtemp(prefix="kpibot-pg-")
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self._pg("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{self.bin}/{tool}", *args], check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        self._pg("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def state_pg():
    pg = PrivatePostgres()
    yield pg
    pg.destroy()


def _health(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_state_database_restarts_under_the_app_and_the_worker(state_pg, tmp_path):
    source = f"sqlite:///{tmp_path / 'shop.db'}"
    _fill(source)
    upgrade(state_pg.url)
    services = Services(Settings(database_url=state_pg.url, source_url=source, timezone="Europe/Paris",
                                 config_dir=CONFIG, currency="EUR"))
    standin = SlackStandIn().start()
    slack = SlackSettings(signing_secret="s" * 20, bot_token=standin.bot_token, api_url=standin.base_url)
    create_slack_tables(services, slack)
    server = AppServer(wsgi_app(services, slack, build_app(services, slack))).start()
    schedule = Schedules(services.state(), "T0STANDIN").add("C0GENERAL", timezone="Europe/Paris",
                                                            now=datetime(2026, 1, 1))
    report = {"state_restart": False}
    try:
        assert _health(server.url) == 200
        state_pg.stop()
        assert _health(server.url) == 503  # the platform sees it, the process survives
        clock = {"now": DUE + timedelta(minutes=1)}
        sender = DigestSender(services, TeamClients(services, slack), clock=lambda: clock["now"], worker="w1")
        with pytest.raises(Exception):  # noqa: B017 - the tick cannot even read the schedules: it fails, it does not send
            sender.tick()
        assert [m for m in standin.messages_in("C0GENERAL") if m.kind == "message"] == []
        state_pg.start()
        deadline = time.monotonic() + 20
        while _health(server.url) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _health(server.url) == 200  # the pool reconnected by itself
        clock["now"] = DUE + timedelta(minutes=3)
        outcomes = [o for o in sender.tick() if o.schedule_id == schedule.id and o.day == DUE.date()]
        assert [o.status for o in outcomes] == ["sent"]
        assert [o for o in sender.tick() if o.status == "sent"] == []
        assert len([m for m in standin.messages_in("C0GENERAL") if m.kind == "message" and not m.thread_ts]) == 1
        report["state_restart"] = True
    finally:
        server.stop()
        standin.stop()
        from kpi.db import dispose_cached_engines

        dispose_cached_engines()
        out = os.environ.get("KPIBOT_RELIABILITY_REPORT_DIR")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "state_restart.json").write_text(json.dumps(report))
