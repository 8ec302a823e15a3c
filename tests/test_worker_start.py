"""Start-up (issue 14, item 5): ``kpibot db upgrade`` creates every table the worker needs, APScheduler's
job store included, exactly as APScheduler defines it; workers started together all start, on a database
upgraded by this version and on one whose job store table is still missing (an older deployment: the
workers race to create it); a start that fails on a unique violation does not blame ``DATABASE_URL``.
Real processes on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.standin import SlackStandIn
from kpi.db import make_engine
from kpi.state.tables import upgrade

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3

# one worker process: ready, wait for the go, then `run_worker` as `kpibot worker` runs it, stopped as
# soon as its scheduler runs with its jobs in the store
CHILD = r"""
import os, sys, threading, time
from pathlib import Path
from bot.config import SlackSettings
from bot import worker
from kpi.services import Services
from kpi.settings import Settings

url, api_url, token, ready, go = sys.argv[1:6]
services = Services(Settings(database_url=url, source_url=url, timezone="Europe/Paris", currency="EUR",
                             config_dir=os.environ["KPIBOT_CONFIG_DIR_TEST"]))
slack = SlackSettings(signing_secret="s" * 32, bot_token=token, api_url=api_url)
stop = threading.Event()

def stop_once_started():
    while not stop.is_set():
        scheduler = worker._runtime.get("scheduler")
        try:
            if scheduler is not None and scheduler.running and scheduler.get_job("kpibot-alerts") is not None:
                print("STARTED", flush=True)
                stop.set()
                return
        except Exception:
            pass
        time.sleep(0.02)

threading.Thread(target=stop_once_started, daemon=True).start()
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
sys.exit(worker.run_worker(services, slack, stop=stop))
"""


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def standin():
    s = SlackStandIn().start()
    yield s
    s.stop()


def start_together(url: str, standin, tmp_path: Path, trial: int) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "KPIBOT_CONFIG_DIR_TEST": str(ROOT / "config"), "PYTHONPATH": str(ROOT)}
    go = tmp_path / f"go-{trial}"
    procs, readies = [], []
    for i in range(WORKERS):
        ready = tmp_path / f"ready-{trial}-{i}"
        readies.append(ready)
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, url, standin.base_url, standin.bot_token,
                                       str(ready), str(go)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        _wait(lambda: all(r.exists() for r in readies) or any(p.poll() is not None for p in procs))
        go.touch()  # all at once
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            outs.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
        return outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _fresh(url: str) -> None:
    """Every table dropped: the database as a new deployment gets it."""
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in inspect(conn).get_table_names():
            conn.execute(text(f'DROP TABLE "{table}"' + (" CASCADE" if conn.dialect.name == "postgresql" else "")))
    engine.dispose()


def _drop_job_store(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE apscheduler_jobs"))
    engine.dispose()


def test_db_upgrade_creates_the_job_store_exactly_as_apscheduler_defines_it(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    reference = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs").jobs_t
    found = inspect(engine)
    assert found.has_table("apscheduler_jobs")
    columns = {c["name"]: c for c in found.get_columns("apscheduler_jobs")}
    assert list(columns) == [c.name for c in reference.columns]
    for column in reference.columns:
        made = columns[column.name]
        assert made["nullable"] == column.nullable, column.name
        assert type(made["type"]).__name__.lower() in {
            "id": {"varchar", "string", "unicode"}, "next_run_time": {"float", "double_precision", "real"},
            "job_state": {"blob", "bytea", "largebinary"}}[column.name], (column.name, made["type"])
    assert getattr(columns["id"]["type"], "length", None) == 191
    assert found.get_pk_constraint("apscheduler_jobs")["constrained_columns"] == ["id"]
    assert [(i["name"], i["column_names"]) for i in found.get_indexes("apscheduler_jobs")] == \
        [(i.name, [c.name for c in i.columns]) for i in reference.indexes]
    engine.dispose()


@pytest.mark.parametrize("job_store", ["made by db upgrade", "missing (an older deployment)"])
def test_workers_started_together_all_start(database_url, standin, tmp_path, job_store):
    for trial in range(3):
        _fresh(database_url)
        upgrade(database_url)
        if job_store.startswith("missing"):
            _drop_job_store(database_url)
        results = start_together(database_url, standin, tmp_path, trial)
        for r in results:
            assert r.returncode == 0, (trial, r.stderr[-3000:])
            assert "STARTED" in r.stdout
            assert "DATABASE_URL" not in r.stderr
        engine = make_engine(database_url)
        with engine.connect() as conn:
            jobs = {row[0] for row in conn.execute(text("select id from apscheduler_jobs"))}
        engine.dispose()
        assert {"kpibot-tick", "kpibot-sync", "kpibot-alerts"} <= jobs


def test_a_start_lost_to_unique_violations_does_not_blame_database_url(database_url, standin, monkeypatch, capsys):
    """A unique violation is not a connection problem: the message says what happened, and where the log has it."""
    from bot import worker
    from bot.config import SlackSettings
    from kpi.services import Services
    from kpi.settings import Settings

    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as conn:  # a real unique violation, from the database
        conn.execute(text("insert into teams (team_id, seeded_at) values ('T0DUP', CURRENT_TIMESTAMP)"))
    violation = None
    try:
        with engine.begin() as conn:
            conn.execute(text("insert into teams (team_id, seeded_at) values ('T0DUP', CURRENT_TIMESTAMP)"))
    except IntegrityError as exc:
        violation = exc
    engine.dispose()
    assert violation is not None
    starts = []

    def lose_the_race(scheduler):
        starts.append(scheduler)
        raise violation

    monkeypatch.setattr(worker.BackgroundScheduler, "start", lose_the_race)
    services = Services(Settings(database_url=database_url, source_url=database_url, config_dir=ROOT / "config"))
    slack = SlackSettings(signing_secret="s" * 32, bot_token=standin.bot_token, api_url=standin.base_url)
    assert worker.run_worker(services, slack) == 1
    assert len(starts) == worker.START_TRIES  # tried again before giving up
    err = capsys.readouterr().err
    assert "DATABASE_URL" not in err and "could not start" in err and "ref " in err
