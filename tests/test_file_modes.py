"""The SQLite state database holds OAuth tokens: it and its WAL and shared-memory files are created
owner-only (0600), whatever the umask, by the app's engine and by ``kpibot db upgrade``."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from sqlalchemy import text

from kpi.db import make_engine
from kpi.state.tables import upgrade


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual default, which made 0644 files
    yield
    os.umask(old)


def test_a_new_state_database_and_its_wal_and_shm_are_owner_only(tmp_path, open_umask):
    db = tmp_path / "state.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("create table t (x integer)"))
        conn.execute(text("insert into t values (1)"))
    reader = engine.connect()  # an open connection keeps the WAL and the shared memory
    reader.execute(text("select * from t")).all()
    assert (tmp_path / "state.db-wal").exists() and (tmp_path / "state.db-shm").exists()
    assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
        "state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}
    reader.close()
    engine.dispose()


def test_db_upgrade_creates_it_owner_only(tmp_path, open_umask):
    upgrade(f"sqlite:///{tmp_path / 'kpibot.db'}")
    engine = make_engine(f"sqlite:///{tmp_path / 'kpibot.db'}")
    with engine.connect() as conn:
        conn.execute(text("select count(*) from goals")).all()
        assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
            "kpibot.db": 0o600, "kpibot.db-wal": 0o600, "kpibot.db-shm": 0o600}
    engine.dispose()


def test_engines_made_at_once_all_open_the_same_private_file(tmp_path, open_umask):
    db = tmp_path / "state.db"
    barrier = threading.Barrier(8)
    errors = []

    def open_one(i):
        barrier.wait()
        try:
            engine = make_engine(f"sqlite:///{db}")
            with engine.begin() as conn:
                conn.execute(text("create table if not exists t (x integer)"))
                conn.execute(text("insert into t values (:i)"), {"i": i})
            engine.dispose()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _mode(db) == 0o600
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from t")).scalar() == 8
    engine.dispose()


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path, open_umask):
    db = tmp_path / "shared.db"
    db.touch()
    os.chmod(db, 0o640)
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("create table t (x integer)"))
    engine.dispose()
    assert _mode(db) == 0o640


def test_db_upgrade_warns_about_a_state_database_others_may_read(tmp_path, open_umask, monkeypatch, capsys):
    """A file an earlier version made 0644 is not changed behind the operator's back, but said."""
    from kpi.cli import main

    db = tmp_path / "kpibot.db"
    db.touch()
    os.chmod(db, 0o644)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    assert main(["db", "upgrade", "--no-source"]) == 0
    err = capsys.readouterr().err
    assert "chmod 600" in err and str(db) in err and _mode(db) == 0o644
    os.chmod(db, 0o600)
    assert main(["db", "upgrade", "--no-source"]) == 0
    assert "chmod" not in capsys.readouterr().err
