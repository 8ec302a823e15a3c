"""Every plan of the SQL layer gives the same answers, on every database it runs on.

The engine reads many ranges at once in one of four ways (``SqlLayer.strategy``): one UNION ALL branch per
range (SQLite's plan), ranges as arrays read by a LATERAL index range scan each (PostgreSQL's), a join of the
rows to a list of ranges (other row stores), and one scan grouped by the local day, whose days are then
combined into the ranges (columnar engines: DuckDB, ClickHouse). Each is forced here on SQLite and PostgreSQL
over the same demo shop in Europe/Paris, whose windows cross both daylight-saving changes, and every KPI of the
catalog is asked as a daily, weekly and monthly series, compared, filtered and broken down: every number must
be the same, to the cent, whichever plan read it. A plan that put an order in the wrong local day (an hour off
at a change of offset), or summed a distinct count across days, would differ here.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, text

from kpi.data.demo import generate_demo_data
from kpi.data.schema import create_source_tables
from kpi.db import make_engine
from kpi.metrics.catalog import load_catalog
from kpi.metrics.engine import KpiEngine, KpiRequest
from kpi.metrics.periods import day_range, parse_period
from kpi.metrics.sql import MeasureQuery, TimeRange

from .conftest import POSTGRES_URL, postgres_schema

TZ = ZoneInfo("Europe/Paris")
TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=TZ)
EARLIER = datetime(2026, 7, 2, 9, 0, tzinfo=TZ)
CATALOG = load_catalog(Path(__file__).resolve().parent.parent / "config" / "metrics.yaml")
ASKED = [  # (period, granularity, compare, filters, breakdown)
    ("last 45 days", "day", "previous", (), None),  # crosses 2026-10-25 (UTC+2 -> UTC+1)
    ("this year", "month", "year", (), None),  # crosses 2026-03-29 and 2026-10-25
    ("last 12 weeks", "week", None, (("channel", ("email",)),), None),
    ("last 30 days", "day", "previous", (), "channel"),
]


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    """The same demo shop on SQLite and, when it is set, PostgreSQL (a schema of its own)."""
    with ExitStack() as stack:
        urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('plans') / 'shop.db'}"}
        if POSTGRES_URL:
            urls["postgresql"] = stack.enter_context(postgres_schema())
        engines = {}
        for name, url in urls.items():
            engine = make_engine(url)
            stack.callback(engine.dispose)
            create_source_tables(engine)
            generate_demo_data(engine, days=500, orders_per_day=12, seed=3, today=TODAY, tz=TZ, currency="EUR")
            engines[name] = engine
        yield engines


def _numbers(result) -> list:
    """Every number an answer shows."""
    out = [result.current.value, result.comparison.value if result.comparison else None]
    out += [p.value.value for p in result.series] + [p.value.value for p in result.comparison_series]
    out += [(r.key, r.value.value, r.comparison.value if r.comparison else None) for r in result.breakdown]
    return out


def _same(a, b) -> bool:
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None or isinstance(a, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _answers(source, strategy: str | None) -> dict:
    engine = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
    engine.sql.strategy = strategy
    engine.sql.shown_currency = lambda: "EUR"  # as Services sets it: amounts are checked against the answer's currency
    out = {}
    for key in sorted(CATALOG.metrics):
        if not any(m.window == "period" and not m.period_bound for m in CATALOG.measures_of(CATALOG.metrics[key])):
            continue  # every range of it is a branch of its own whatever the plan (running totals, cohorts)
        for period, gran, compare, filters, breakdown in ASKED:
            metric = CATALOG.metrics[key]
            if breakdown and breakdown not in CATALOG.dimensions_of(metric):
                continue
            if filters and not all(d in CATALOG.dimensions_of(metric) for d, _ in filters):
                continue
            req = KpiRequest(key, parse_period(period, now=NOW, tz=TZ), compare=compare, filters=filters,
                             breakdown=breakdown, granularity=gran)
            try:
                out[(key, period)] = _numbers(engine.ask(req))
            except Exception as exc:  # noqa: BLE001 - a refusal must be the same refusal under every plan
                out[(key, period)] = type(exc).__name__
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_plan_gives_the_same_answers_to_every_kpi(shops, backend):
    if backend not in shops:
        pytest.skip("KPIBOT_TEST_POSTGRES_URL is not set")
    source = shops[backend]
    reference = _answers(source, "branches")
    assert len(reference) > 60
    assert sum(isinstance(v, list) for v in reference.values()) > 60  # answers, not refusals
    for strategy in ("join", "by_day") + (("lateral",) if backend == "postgresql" else ()):
        found = _answers(source, strategy)
        differ = [k for k in reference if not _same(reference[k], found[k])]
        assert not differ, f"{strategy} differs from branches on {backend}: {differ[:5]}"


def test_a_day_grouped_plan_puts_each_order_in_its_local_day_across_a_change_of_offset(shops):
    # Paris went from UTC+2 to UTC+1 at 01:00 UTC on 2026-10-25: an order at 22:30 UTC on the 24th is on the
    # 25th in Paris (00:30), and one at 23:30 UTC on the 25th is on the 26th (00:30, UTC+1)
    source = shops["sqlite"]
    engine = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
    engine.sql.strategy = "by_day"
    orders = [m for m in CATALOG.measures_of(CATALOG.metrics["orders"])]
    days = [date(2026, 10, d) for d in range(20, 31)]
    ranges = tuple(TimeRange(*day_range(d, date.fromordinal(d.toordinal() + 1), TZ)) for d in days)
    by_day = engine.sql.run(MeasureQuery(tuple(orders), ranges))
    engine.sql.strategy = "branches"
    by_branch = engine.sql.run(MeasureQuery(tuple(orders), ranges))
    assert by_day == by_branch
    assert sum(v[orders[0].key] for v in by_day.values()) > 0


def test_a_new_period_or_filter_value_reuses_the_statement_built_for_its_shape(shops):
    # the second question differs only by its dates and its filter's values: no statement is built or
    # compiled again, and its answer is its own (not the first one's)
    source = shops["sqlite"]
    engine = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
    first = engine.ask(KpiRequest("revenue", parse_period("last 30 days", now=NOW, tz=TZ),
                                  filters=(("channel", ("email",)),), granularity="day"))
    plans = len(engine.sql._plans)
    second = engine.ask(KpiRequest("revenue", parse_period("last 30 days", now=EARLIER, tz=TZ),
                                   filters=(("channel", ("social", "direct")),), granularity="day"))
    assert len(engine.sql._plans) == plans
    assert first.current.value != second.current.value
    fresh = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
    again = fresh.ask(KpiRequest("revenue", parse_period("last 30 days", now=EARLIER, tz=TZ),
                                 filters=(("channel", ("social", "direct")),), granularity="day"))
    assert _same(_numbers(second), _numbers(again))


def test_two_horizons_of_the_same_column_are_two_statements(shops):
    # SQLAlchemy caches compiled SQL by the statement's cache key; plus_interval now takes part in it (statements
    # with a horizon were compiled at every execution): a horizon of 6 months and one of 12 months over the same
    # column must not share a key, or the second would run the first's SQL
    from sqlalchemy import select

    from kpi.data.schema import SOURCE_TABLES
    from kpi.metrics.dialects import plus_interval

    placed = SOURCE_TABLES["orders"].c.placed_at
    with shops["sqlite"].connect() as conn:
        found = [conn.execute(select(func.min(plus_interval(placed, n, unit))).select_from(placed.table)).scalar()
                 for n, unit in ((12, "months"), (6, "months"), (10, "days"))]
    assert len(set(found)) == 3, found


@pytest.mark.parametrize("strategy", ["branches", "join", "by_day", "lateral"])
@pytest.mark.parametrize("shown, added, refused", [
    ("EUR", "USD", "several currencies"),  # one dollar order among euros, on one day of the series
    ("GBP", None, "not in the shop's currency GBP"),  # every order in euros, the answer written in pounds
    ("EUR", None, None),
])
def test_every_plan_refuses_amounts_in_another_currency(database_url, strategy, shown, added, refused):
    from kpi.data import schema
    from kpi.metrics.dialects import MixedCurrencies

    if strategy == "lateral" and not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's plan")
    source = make_engine(database_url)
    create_source_tables(source)
    rows = [dict(order_id=f"o{d}", customer_id=f"c{d}", placed_at=datetime(2026, 11, d, 10), status="placed",
                 subtotal=10 * d, discount=0, shipping=0, tax=0, currency="EUR", channel="email", device="mobile",
                 country="FR") for d in range(1, 24)]
    if added:
        rows[12]["currency"] = added
    with source.begin() as conn:
        conn.execute(schema.orders.insert(), rows)
    try:
        engine = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
        engine.sql.strategy = strategy
        engine.sql.shown_currency = lambda: shown
        req = KpiRequest("revenue", parse_period("last 30 days", now=NOW, tz=TZ), granularity="day")
        if refused is None:
            assert engine.ask(req).current.value == pytest.approx(sum(10 * d for d in range(1, 24)))
        else:
            with pytest.raises(MixedCurrencies) as err:
                engine.ask(req)
            assert refused in str(err.value)
    finally:
        source.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_plan_groups_filters_and_excludes_many_ranges_alike(shops, backend):
    # what a breakdown over many buckets asks: every day of three weeks (and the whole span, overlapping them),
    # grouped by channel, with a filter and an exclusion, for measures of every kind the plans treat apart
    if backend not in shops:
        pytest.skip("KPIBOT_TEST_POSTGRES_URL is not set")
    days = [date(2026, 10, d) for d in range(12, 31)]  # across 2026-10-25
    ranges = [TimeRange(*day_range(d, date.fromordinal(d.toordinal() + 1), TZ)) for d in days]
    ranges.append(TimeRange(*day_range(days[0], days[-1], TZ)))
    measures = []
    for key in ("revenue", "aov", "conversion_rate", "visitors", "return_rate"):
        measures += [m for m in CATALOG.measures_of(CATALOG.metrics[key]) if m not in measures]
    queries = [
        MeasureQuery(tuple(m for m in measures if "device" in m.dimensions), tuple(ranges),
                     filters=(("device", ("Mobile", "desktop")),)),
        MeasureQuery(tuple(m for m in measures if "channel" in m.dimensions), tuple(ranges), group_by="channel",
                     exclude=(("channel", ("email",)),)),
    ]
    engine = KpiEngine(CATALOG, shops[backend], tz=TZ, clock=lambda: NOW)
    engine.sql.shown_currency = lambda: "EUR"
    for q in queries:
        engine.sql.strategy = "branches"
        reference = engine.sql.run(q)
        assert any(v for slot in reference.values() for v in slot.values())
        for strategy in ("join", "by_day") + (("lateral",) if backend == "postgresql" else ()):
            engine.sql.strategy = strategy
            found = engine.sql.run(q)
            assert found.keys() == reference.keys(), strategy
            assert all(found[k].keys() == reference[k].keys()
                       and _same([found[k][m] for m in reference[k]], list(reference[k].values())) for k in reference), strategy


@pytest.mark.parametrize("indexed", [True, False])
def test_an_order_in_another_currency_is_refused_at_the_next_question_however_the_check_is_skipped(database_url,
                                                                                                   indexed):
    # while every order is in euros the sums do not check each row's currency (the least and greatest currency of
    # the table are read first: two index probes, or a scan remembered until the SQLite file changes); an order
    # in dollars written by another connection is seen at the very next question
    from kpi.data import schema
    from kpi.metrics.dialects import MixedCurrencies

    source = make_engine(database_url)
    create_source_tables(source)
    if not indexed:
        with source.begin() as conn:
            conn.execute(text("DROP INDEX ix_orders_currency"))
    rows = [dict(order_id=f"o{d}", customer_id=f"c{d}", placed_at=datetime(2026, 11, d, 10), status="placed",
                 subtotal=10 * d, discount=0, shipping=0, tax=0, currency="EUR", channel="email", device="mobile",
                 country="FR") for d in range(1, 24)]
    with source.begin() as conn:
        conn.execute(schema.orders.insert(), rows)
    try:
        engine = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
        engine.sql.shown_currency = lambda: "EUR"
        req = KpiRequest("revenue", parse_period("last 30 days", now=NOW, tz=TZ), granularity="day")
        assert engine.ask(req).current.value == pytest.approx(sum(10 * d for d in range(1, 24)))
        assert engine.ask(req).current.value == pytest.approx(sum(10 * d for d in range(1, 24)))
        other = make_engine(database_url)
        with other.begin() as conn:
            conn.execute(schema.orders.insert(), [{**rows[0], "order_id": "usd", "currency": "USD",
                                                   "placed_at": datetime(2026, 11, 5, 12)}])
        other.dispose()
        with pytest.raises(MixedCurrencies):
            engine.ask(req)
    finally:
        source.dispose()


def test_a_question_needs_one_connection_even_on_a_fresh_process(database_url):
    # every thread of a web process holds its question's connection: a first question that opened a second one
    # (to look for the rates table, the currency index) waited for the pool when all threads did the same, and
    # the failed look was remembered ("no rates table": amounts in two currencies refused instead of converted).
    # With a pool of one connection, the first question converts them.
    from sqlalchemy import Column, MetaData, Numeric, String, Table

    from kpi.data import schema

    setup = make_engine(database_url)
    create_source_tables(setup)
    rates = Table("currency_rates", MetaData(), Column("currency", String(3), primary_key=True),
                  Column("rate", Numeric(12, 6)))
    rates.create(setup)
    with setup.begin() as conn:
        conn.execute(rates.insert(), [{"currency": "EUR", "rate": 1}, {"currency": "USD", "rate": 0.5}])
        conn.execute(schema.orders.insert(), [
            dict(order_id=f"o{d}", customer_id=f"c{d}", placed_at=datetime(2026, 11, d, 10), status="placed",
                 subtotal=100, discount=0, shipping=0, tax=0, currency="USD" if d % 2 else "EUR", channel="email",
                 device="mobile", country="FR") for d in range(1, 21)])
    setup.dispose()
    kwargs = {} if database_url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 0, "pool_timeout": 5}
    source = make_engine(database_url, **kwargs)
    try:
        engine = KpiEngine(CATALOG, source, tz=TZ, clock=lambda: NOW)
        engine.sql.shown_currency = lambda: "EUR"
        req = KpiRequest("revenue", parse_period("last 30 days", now=NOW, tz=TZ), granularity="day")
        assert engine.ask(req).current.value == pytest.approx(10 * 100 + 10 * 50)
    finally:
        source.dispose()
