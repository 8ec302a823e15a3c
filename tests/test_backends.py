"""The same shop on every source database gives the same answers, to the cent.

One random shop (seeded; tests/test_source_mapping's) is written as CSV files and loaded by the importer
(``import_csv``, as ``kpibot import`` does) into SQLite, PostgreSQL (when KPIBOT_TEST_POSTGRES_URL is set),
DuckDB (duckdb-engine) and ClickHouse (chdb, in process). Then every KPI of config/metrics.yaml is asked over
several periods, broken down by channel and filtered to one channel, and each answer must equal SQLite's.
Real databases, nothing mocked; DuckDB and chdb are in the test extra (``pip install -e ".[test]"``), so
under CI a missing one fails the run instead of skipping.
"""

from __future__ import annotations

import csv
import os
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from kpi.data import importer
from kpi.db import dispose_cached_engines, make_engine
from kpi.metrics.engine import KpiRequest
from kpi.metrics.periods import parse_period
from kpi.services import Services
from kpi.settings import Settings

from .conftest import POSTGRES_URL, postgres_schema
from .test_source_mapping import CONFIG, NOW, NY, _diff, _same, _shop_rows, _values

PERIODS = ("last month", "last 7 days", "this month", "yesterday", "last 30 days")
FILES = {"orders": "orders", "returns": "returns", "traffic": "traffic", "marketing_spend": "spend",
         "email_campaigns": "campaigns"}


def _installed(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _backends() -> list:
    out = []
    for name, module in (("duckdb", "duckdb_engine"), ("chdb", "chdb_sqlalchemy")):
        if _installed(module) or os.environ.get("CI") == "true":  # CI installs the test extra: never skipped there
            out.append(name)
        else:
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=f"{module} is not installed")))
    return (["postgresql"] if POSTGRES_URL else []) + out


def _write_csvs(folder: Path) -> dict[str, Path]:
    """The shop's rows as the CSV files a shop would export (timestamps in UTC, with a Z)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table, rows in _shop_rows(days=60, per_day=15).items():
        if table not in FILES or not rows:
            continue
        path = folder / f"{table}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (v.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
                                     if hasattr(v, "hour") else v) for k, v in row.items()})
        paths[table] = path
    # then a second orders file: 40 orders again, their amounts and times changed, without the columns it does not
    # change (those keep their stored values): the importer's update path, on every backend
    rows = _shop_rows(days=60, per_day=15)["orders"][:40]
    path = folder / "orders_again.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["order_id", "customer_id", "placed_at", "subtotal", "currency"])
        for row in rows:
            at = (row["placed_at"] + timedelta(hours=3)).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
            writer.writerow([row["order_id"], row["customer_id"], at, f"{row['subtotal'] + 1.25:.2f}", "USD"])
    paths["orders_again"] = path
    return paths


def _load(url: str, paths: dict[str, Path]) -> None:
    engine = make_engine(url)
    try:
        for table, path in paths.items():
            result = importer.import_csv(engine, path, table.removesuffix("_again"), tz=NY, currency="USD")
            if table.endswith("_again"):
                assert (result.inserted, result.updated) == (0, 40)
    finally:
        engine.dispose()


def _answers(url: str, state: str) -> dict:
    services = Services(Settings(database_url=state, source_url=url, timezone="America/New_York",
                                 config_dir=CONFIG), clock=lambda: NOW)
    kpis = services.kpi_engine()
    catalog = services.catalog()
    out = {}
    for key, metric in catalog.metrics.items():
        for period in PERIODS:
            out[(key, period)] = _ask(kpis, key, period)
        if "channel" in catalog.dimensions_of(metric):
            out[(key, "by channel")] = _ask(kpis, key, "last month", breakdown="channel")
            out[(key, "email only")] = _ask(kpis, key, "last 30 days", filters=(("channel", ("email",)),))
    out[("digest",)] = [_digest(kpis)]
    dispose_cached_engines()
    return out


def _digest(kpis) -> str:
    """The morning digest of a few goals (a filtered one, a rate, a watch list and the movers), as text."""
    from bot.render.digest import digest_text
    from kpi.digests.compose import compose_digest
    from kpi.state.store import StoredGoal

    today = NOW.astimezone(NY).date()
    start, deadline = today.replace(day=1), today.replace(day=1) + timedelta(days=45)

    def goal(id_: int, metric: str, target: float, **kw) -> StoredGoal:
        return StoredGoal(id=id_, team_id="T1", metric=metric, target_kind="absolute", target_value=target,
                          start=start, deadline=deadline, baseline=0.0, **kw)

    goals = [goal(1, "revenue", 50000, watch=("conversion", "aov")), goal(2, "orders", 300),
             goal(3, "revenue", 9000, filters=(("channel", ("email",)),)), goal(4, "conversion", 0.05)]
    return digest_text(compose_digest(kpis, goals, team_id="T1", today=today), all_goals=True)


def _ask(kpis, key: str, period: str, **kw) -> list:
    from kpi.errors import KpiError

    try:
        return _values(kpis.ask(KpiRequest(key, parse_period(period, now=NOW, tz=NY), **kw)))
    except KpiError as exc:
        return [type(exc).__name__]


@pytest.fixture(scope="module")
def shop_files(tmp_path_factory) -> dict[str, Path]:
    return _write_csvs(tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def sqlite_answers(shop_files, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sqlite")
    url = f"sqlite:///{folder / 'shop.db'}"
    _load(url, shop_files)
    return _answers(url, f"sqlite:///{folder / 'state.db'}")


@pytest.fixture
def backend_url(request, tmp_path):
    name = request.param
    if name == "duckdb":
        yield f"duckdb:///{tmp_path / 'shop.duckdb'}"
    elif name == "chdb":
        yield f"chdb:///{tmp_path / 'shop.chdb'}"
    else:
        with postgres_schema() as url:
            yield url
    dispose_cached_engines()


@pytest.mark.parametrize("backend_url", _backends(), indirect=True)
def test_every_kpi_answers_as_on_sqlite_to_the_cent(backend_url, shop_files, sqlite_answers, tmp_path):
    _load(backend_url, shop_files)
    answers = _answers(backend_url, f"sqlite:///{tmp_path / 'state.db'}")
    assert answers.keys() == sqlite_answers.keys()
    answered = [k for k, v in sqlite_answers.items() if not isinstance(v[0], str)]
    assert len(answered) > len(sqlite_answers) * 0.8  # most questions have an answer (not only errors)
    wrong = {k: _diff(answers[k], v) for k, v in sqlite_answers.items() if not _same(answers[k], v)}
    assert wrong == {}


@pytest.mark.skipif(not _installed("chdb_sqlalchemy") and os.environ.get("CI") != "true", reason="chdb is not installed")
def test_clickhouse_keeps_nothing_of_a_refused_file_and_never_copies_a_table_it_does_not_own(shop_files, tmp_path):
    from kpi.data import schema
    from kpi.db_clickhouse import create_table_sql
    from kpi.errors import ImportRefused, KpiError

    url = f"chdb:///{tmp_path / 'shop.chdb'}"
    _load(url, {"orders": shop_files["orders"]})
    bad = tmp_path / "bad.csv"
    bad.write_text("order_id,customer_id,placed_at,subtotal,currency\nz1,c1,2026-11-01 10:00,12.50,USD\n"
                   "z2,c2,not a date,1.00,USD\n")
    engine = make_engine(url)

    def state():
        with engine.connect() as conn:
            return (conn.exec_driver_sql("SELECT count() FROM orders").scalar(),
                    sorted(conn.exec_driver_sql("SELECT name FROM system.databases").scalars()))

    before = state()
    with pytest.raises(ImportRefused):
        importer.import_csv(engine, bad, "orders", tz=NY, currency="USD")
    assert state() == before and not any(name.endswith("_kpi_staging") for name in before[1])
    with engine.connect() as conn:  # orders read through a table over others' tables (as a Distributed one is)
        conn.exec_driver_sql(create_table_sql(schema.orders, engine.dialect).replace("CREATE TABLE orders",
                                                                                     "CREATE TABLE shard_orders"))
        conn.exec_driver_sql("EXCHANGE TABLES orders AND shard_orders")
        conn.exec_driver_sql("DROP TABLE orders SYNC")
        conn.exec_driver_sql("CREATE TABLE orders AS shard_orders ENGINE = Merge(currentDatabase(), '^shard_orders$')")
    good = tmp_path / "good.csv"
    good.write_text("order_id,customer_id,placed_at,subtotal,currency\nz1,c1,2026-11-01 10:00,12.50,USD\n")
    with pytest.raises(KpiError, match="not MergeTree"):
        importer.import_csv(engine, good, "orders", tz=NY, currency="USD")
    assert state() == before
    engine.dispose()
