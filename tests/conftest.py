"""Shared fixtures: every test that takes ``source_url``/``source_engine`` runs on SQLite, and on
PostgreSQL too when ``KPIBOT_TEST_POSTGRES_URL`` is set (CI sets it). Each PostgreSQL test gets a
schema of its own, dropped afterwards, so tests never see each other's rows."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import text

from kpi.data.schema import create_source_tables
from kpi.db import make_engine

POSTGRES_URL = os.environ.get("KPIBOT_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def pytest_configure(config):
    if os.environ.get("CI") == "true" and not POSTGRES_URL:
        raise pytest.UsageError("CI=true but KPIBOT_TEST_POSTGRES_URL is not set: the PostgreSQL tests would not run")


def _pg_url() -> str:
    from kpi.settings import _normalise_url

    return _normalise_url(POSTGRES_URL)


@pytest.fixture(scope="session", autouse=True)
def _postgres_reachable():
    """With KPIBOT_TEST_POSTGRES_URL set, an unreachable server fails the run instead of skipping."""
    if POSTGRES_URL:
        engine = make_engine(_pg_url())
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # noqa: BLE001
            pytest.exit(f"KPIBOT_TEST_POSTGRES_URL={POSTGRES_URL} is unreachable: {exc}", returncode=3)
        finally:
            engine.dispose()
    yield


@pytest.fixture(autouse=True)
def _close_cached_engines():
    """The CLI and the app cache one engine per URL; each test starts and ends without open pools."""
    yield
    from kpi.db import dispose_cached_engines

    dispose_cached_engines()


@pytest.fixture
def database_url(request, tmp_path):
    """A fresh, empty database URL for the backend in ``request.param`` (default sqlite)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'kpibot-test.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema():
    """The URL of a new, empty schema of the test PostgreSQL, dropped (with the cached engines) afterwards."""
    from kpi.db import dispose_cached_engines

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in _pg_url() else "?"
    try:
        yield f"{_pg_url()}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        dispose_cached_engines()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def pytest_generate_tests(metafunc):
    if "database_url" in metafunc.fixturenames and "backend" not in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture
def source_engine(database_url):
    engine = make_engine(database_url)
    create_source_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def rig(database_url):
    """The app on a loopback port, driven by signed requests, replies read from the Slack stand-in
    (tests/test_slack_app.py's ``Rig``)."""
    from .test_slack_app import Rig

    r = Rig(database_url)
    yield r
    r.close()
