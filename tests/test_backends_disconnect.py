"""A pooled PostgreSQL connection the server closed does not fail the next question (kpi.db: no per-question
ping; a connection closed by the server is seen at checkout, without a round trip, and replaced). Real
PostgreSQL (KPIBOT_TEST_POSTGRES_URL), the backend killed server-side with ``pg_terminate_backend``."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, text

from kpi.db import make_engine
from kpi.metrics.engine import KpiRequest
from kpi.metrics.periods import parse_period
from kpi.services import Services
from kpi.settings import Settings

from .conftest import POSTGRES_URL, _pg_url
from .test_backends import _load, _write_csvs
from .test_source_mapping import CONFIG, NOW, NY

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="KPIBOT_TEST_POSTGRES_URL is not set")


@pytest.fixture
def pg_source(tmp_path):
    schema, app = f"t_{uuid.uuid4().hex[:12]}", f"kpi_{uuid.uuid4().hex[:12]}"
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in _pg_url() else "?"
    url = f"{_pg_url()}{sep}options=-csearch_path%3D{schema}&application_name={app}"
    _load(url, {"orders": _write_csvs(tmp_path / "csv")["orders"]})
    yield url, app, admin
    from kpi.db import dispose_cached_engines

    dispose_cached_engines()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _kill(admin, app: str) -> int:
    """Terminate the bot's server processes (waiting until they are gone); how many there were."""
    with admin.connect() as conn:
        return len(conn.execute(text(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = :app"),
            {"app": app}).all())


def test_a_connection_killed_by_the_server_does_not_fail_the_next_question(pg_source, tmp_path):
    url, app, admin = pg_source
    services = Services(Settings(database_url=f"sqlite:///{tmp_path / 'state.db'}", source_url=url,
                                 timezone="America/New_York", config_dir=CONFIG), clock=lambda: NOW)
    kpis = services.kpi_engine()
    statements = []
    event.listen(services.source(), "before_cursor_execute", lambda *a: statements.append(a[2]))

    def revenue():
        return kpis.ask(KpiRequest("revenue", parse_period("last 30 days", now=NOW, tz=NY))).current.value

    before = revenue()
    assert before and before > 0
    assert not any(s.strip().lower() == "select 1" for s in statements)  # no ping before a question
    for _ in range(2):  # killed again after it was replaced: the new connection is checked the same way
        assert _kill(admin, app) >= 1
        assert revenue() == before
