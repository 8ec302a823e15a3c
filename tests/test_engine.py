"""The engine against a small shop whose every KPI was computed by hand (see the comments).

Runs on SQLite and on PostgreSQL (when KPIBOT_TEST_POSTGRES_URL is set): the same numbers on both.
Shop time zone Europe/Paris; "now" is 2026-11-24 15:30 Paris, so "last 7 days" is Nov 17-23 local,
that is [2026-11-16 23:00, 2026-11-23 23:00) UTC, and the previous period is Nov 10-16.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from kpi.data import schema
from kpi.errors import CatalogError, PeriodError, UnknownDimension, UnknownMetric
from kpi.metrics.catalog import load_catalog
from kpi.metrics.engine import KpiEngine, KpiRequest, Value, change_between
from kpi.metrics.formatting import result_lines
from kpi.metrics.periods import parse_period
from kpi.metrics.query import parse_query

TZ = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=TZ)
CONFIG = Path(__file__).resolve().parent.parent / "config"


def _o(oid, cust, placed, subtotal, channel="email", device="mobile", country="FR", status="placed"):
    return dict(order_id=oid, customer_id=cust, placed_at=placed, status=status, subtotal=subtotal, discount=0,
                shipping=5, tax=0, currency="EUR", channel=channel, device=device, country=country)


ORDERS = [
    _o("o1", "c1", datetime(2026, 11, 17, 9), 100, "email", "mobile"),
    _o("o2", "c2", datetime(2026, 11, 18, 12), 50, "paid_search", "desktop", "US"),
    _o("o3", "c1", datetime(2026, 11, 20, 8), 150, "email", "desktop"),
    _o("o4", "c3", datetime(2026, 11, 22, 22, 30), 40, "social", "mobile", "DE"),  # 23:30 Paris: inside
    _o("o5", "c4", datetime(2026, 11, 23, 23, 30), 999, "direct"),  # 00:30 Paris on the 24th: today, outside
    _o("o6", "c2", datetime(2026, 11, 19, 10), 500, "paid_search", status="cancelled"),  # never counts
    _o("o7", "c5", datetime(2026, 11, 16, 22, 59), 80, "email"),  # 23:59 Paris on the 16th: previous period
    _o("o8", "c1", datetime(2026, 11, 12, 10), 60, "email"),
    _o("o9", "c6", datetime(2025, 11, 18, 10), 70, "paid_search"),  # a year earlier
    _o("o10", "c1", datetime(2026, 1, 15, 10), 30, "email"),  # c1's first order
    # around the end of summer time in Paris (2026-10-25, 03:00 CEST -> 02:00 CET)
    _o("o11", "c1", datetime(2026, 10, 24, 22, 30), 10),  # 00:30 CEST on the 25th
    _o("o12", "c1", datetime(2026, 10, 25, 22, 30), 10),  # 23:30 CET on the 25th
    _o("o13", "c1", datetime(2026, 10, 24, 21, 30), 10),  # 23:30 CEST on the 24th
]
CUSTOMERS = [
    dict(customer_id="c1", first_order_at=datetime(2026, 1, 15, 10), acquisition_channel="email", country="FR"),
    dict(customer_id="c2", first_order_at=datetime(2026, 11, 18, 12), acquisition_channel="paid_search", country="US"),
    dict(customer_id="c3", first_order_at=datetime(2026, 11, 22, 22, 30), acquisition_channel="social", country="DE"),
    dict(customer_id="c4", first_order_at=datetime(2026, 11, 23, 23, 30), acquisition_channel="direct", country="FR"),
    dict(customer_id="c5", first_order_at=datetime(2026, 11, 16, 22, 59), acquisition_channel="email", country="FR"),
    dict(customer_id="c6", first_order_at=datetime(2025, 11, 18, 10), acquisition_channel="paid_search", country="FR"),
]
TRAFFIC = [
    dict(day=date(2026, 11, 17), channel="email", device="mobile", country="FR", sessions=50, visitors=40, carts=8),
    dict(day=date(2026, 11, 18), channel="paid_search", device="desktop", country="US", sessions=150, visitors=120, carts=12),
    dict(day=date(2026, 11, 12), channel="email", device="mobile", country="FR", sessions=100, visitors=90, carts=10),
    dict(day=date(2026, 11, 24), channel="email", device="mobile", country="FR", sessions=1000, visitors=900, carts=100),
]
SPEND = [
    dict(day=date(2026, 11, 17), channel="paid_search", amount=100),
    dict(day=date(2026, 11, 20), channel="social", amount=60),
    dict(day=date(2026, 11, 24), channel="social", amount=1000),  # today: outside
]
RETURNS = [dict(return_id="r1", order_id="o1", returned_at=datetime(2026, 11, 21, 10), amount=100, items=1)]
CAMPAIGNS = [
    dict(campaign_id="e1", sent_at=datetime(2026, 11, 18, 8), delivered=1000, unique_opens=250, clicks=40),
    dict(campaign_id="e0", sent_at=datetime(2026, 11, 11, 8), delivered=0, unique_opens=0, clicks=0),
]


@pytest.fixture
def engine(source_engine):
    with source_engine.begin() as conn:
        for table, rows in [(schema.orders, ORDERS), (schema.customers, CUSTOMERS), (schema.traffic, TRAFFIC),
                            (schema.marketing_spend, SPEND), (schema.returns, RETURNS),
                            (schema.email_campaigns, CAMPAIGNS)]:
            conn.execute(insert(table), rows)
    return KpiEngine(load_catalog(CONFIG), source_engine, tz=TZ, clock=lambda: NOW)


def ask(engine, text):
    return engine.ask(parse_query(text, engine.catalog, now=NOW, tz=TZ).request)


@pytest.mark.parametrize(
    "question, value, numerator, denominator, sample",
    [
        ("revenue", 340, 340, None, None),  # o1+o2+o3+o4; o5 is today, o6 cancelled, o7 the day before
        ("orders", 4, 4, None, 4),
        ("aov", 85, 340, 4, 4),
        ("conversion", 0.02, 4, 200, 200),  # 4 orders / 200 sessions; today's 1000 sessions are outside
        ("sessions", 200, 200, None, 200),
        ("visitors", 160, 160, None, 160),
        ("cart abandonment", 0.8, 16, 20, 20),  # 1 - 4/20
        ("new customers", 2, 2, None, 2),  # c2 and c3; c4's first order is today
        ("returning customer rate", 1 / 3, 1, 3, 3),  # of c1, c2, c3 only c1 ordered before Nov 17
        ("cac", 80, 160, 2, 2),  # 100 + 60 spend / 2 new customers
        ("clv", 122, 610, 5, 5),  # every non-cancelled order before the period's end / c1 c2 c3 c5 c6
        ("clv:cac", 122 / 80, 122, 80, 2),
        ("return rate", 0.25, 1, 4, 4),
        ("email open rate", 0.25, 250, 1000, 1000),
        ("marketing spend", 160, 160, None, None),
    ],
)
def test_every_kpi_matches_the_hand_computation(engine, question, value, numerator, denominator, sample):
    r = ask(engine, question)
    assert r.current.value == pytest.approx(value)
    assert r.current.numerator == pytest.approx(numerator)
    assert r.current.denominator == (pytest.approx(denominator) if denominator is not None else None)
    assert r.current.sample == (pytest.approx(sample) if sample is not None else None)


def test_comparison_with_the_previous_period(engine):
    r = ask(engine, "aov last 7 days vs previous")
    assert r.comparison_period.start == datetime(2026, 11, 10, tzinfo=TZ)
    assert r.comparison.value == pytest.approx(70)  # o7 80 + o8 60 over 2 orders
    assert r.change.absolute == pytest.approx(15)
    assert r.change.relative == pytest.approx(15 / 70)
    assert r.change.good is True


def test_a_lower_is_better_kpi_going_up_is_bad(engine):
    cac = engine.catalog.metrics["cac"]
    change = change_between(cac, Value(80.0), Value(0.0))
    assert change.absolute == pytest.approx(80) and change.good is False
    # asked: marketing spend starts on Nov 17, so the previous 7 days (Nov 10-16) are before its history:
    # their CAC is no data (not 0), and the change gets no verdict
    r = ask(engine, "cac vs previous")
    assert r.comparison.value is None and r.change.good is None and r.comparison_partial


def test_a_zero_denominator_is_no_data_not_zero(engine):
    r = ask(engine, "email open rate")
    assert r.comparison.value is None  # the previous period's only campaign delivered nothing
    assert r.change.absolute is None and r.change.good is None
    empty = ask(engine, "conversion 2024-01-01..2024-01-31")
    assert empty.current.value is None
    assert empty.current.sample == 0


def test_same_period_a_year_earlier(engine):
    r = ask(engine, "revenue vs last year")
    assert r.comparison_period.start == datetime(2025, 11, 17, tzinfo=TZ)
    assert r.comparison.value == pytest.approx(70)  # o9


def test_day_boundaries_follow_the_shop_time_zone_across_dst(engine):
    r = ask(engine, "orders 2026-10-25")  # the day is 25 hours long in Paris
    assert r.current.value == 2  # o11 (00:30 CEST) and o12 (23:30 CET), not o13 (23:30 CEST the day before)
    assert r.period.start.utcoffset().total_seconds() == 7200
    assert r.period.end.utcoffset().total_seconds() == 3600


def test_daily_series_sums_to_the_period(engine):
    r = ask(engine, "revenue last 7 days")
    assert r.granularity == "day"
    assert [p.start.day for p in r.series] == [17, 18, 19, 20, 21, 22, 23]
    assert [p.value.value for p in r.series] == [100, 50, 0, 150, 0, 40, 0]
    conv = ask(engine, "conversion last 7 days")
    assert conv.series[0].value.value == pytest.approx(1 / 50)
    assert conv.series[2].value.value is None  # no sessions that day: no data, not 0%


def test_series_with_a_distant_comparison(engine):
    # the buckets and the year-ago range are planned separately (PostgreSQL joins the buckets to a range
    # table; a year-ago range must not widen that scan): same numbers either way
    r = ask(engine, "revenue last 7 days vs last year daily")
    assert [p.value.value for p in r.series] == [100, 50, 0, 150, 0, 40, 0]
    assert r.current.value == pytest.approx(340)
    assert r.comparison.value == pytest.approx(70)
    month = ask(engine, "orders 2026-11-01..2026-11-23 vs last year daily")
    assert sum(p.value.value for p in month.series) == month.current.value == 6  # o1-o4, o7, o8


def test_breakdown_with_top_n_and_an_exact_other(engine):
    r = ask(engine, "revenue by channel top 2")
    assert [(row.key, row.value.value) for row in r.breakdown] == [("email", 250), ("paid_search", 50), ("other", 40)]
    assert r.breakdown_total_groups == 3
    assert sum(row.share for row in r.breakdown) == pytest.approx(1)
    conv = ask(engine, "conversion by channel")
    by = {row.key: row.value for row in conv.breakdown}
    assert by["email"].value == pytest.approx(2 / 50)
    assert by["paid_search"].value == pytest.approx(1 / 150)
    assert by["social"].value is None  # an order but no sessions recorded for social


def test_cac_by_channel_uses_acquisition_channel(engine):
    r = ask(engine, "cac by channel")
    by = {row.key: row.value.value for row in r.breakdown}
    assert by["paid_search"] == pytest.approx(100)
    assert by["social"] == pytest.approx(60)


def test_returning_customers_other_is_exact_for_distinct_counts(engine):
    r = ask(engine, "returning customer rate by device top 1")
    # device mobile: c1 (o1), c3 (o4): 1 returning of 2; desktop: c2 (o2), c1 (o3): 1 of 2
    keys = [row.key for row in r.breakdown]
    assert len(keys) == 2 and keys[1] == "other"
    assert all(row.value.value == pytest.approx(0.5) for row in r.breakdown)


def test_filters_are_case_insensitive_bound_values(engine):
    assert ask(engine, "revenue channel=EMAIL").current.value == pytest.approx(250)
    assert ask(engine, "revenue channel=email,social").current.value == pytest.approx(290)
    hostile = ask(engine, "revenue channel=x'or'1'='1")
    assert hostile.current.value == 0


def test_french_question(engine):
    r = ask(engine, "taux de retour cette semaine vs l'an dernier")
    assert r.metric.key == "return_rate"
    assert r.compare == "year"
    assert r.period.partial


def test_unknown_kpi_suggests(engine):
    assert ask(engine, "convresion last month").metric.key == "conversion_rate"  # one KPI clearly meant: read
    with pytest.raises(UnknownMetric) as err:
        ask(engine, "convrsn last month")  # too far from any KPI: refused, with what was probably meant
    assert "conversion" in str(err.value)


def test_unknown_period_lists_accepted_forms(engine):
    with pytest.raises(PeriodError) as err:
        ask(engine, "conversion since the dawn of time")
    assert "last 7 days" in str(err.value)


def test_breakdown_by_an_unsupported_dimension(engine):
    with pytest.raises(UnknownDimension) as err:
        ask(engine, "email open rate by channel")
    assert "Email open rate" in str(err.value)


def test_as_of_is_the_oldest_of_the_newest_rows(engine):
    r = ask(engine, "conversion")
    # orders go up to 2026-11-23 23:30 UTC, traffic to the whole of Nov 24 local: orders are the limit
    assert r.as_of == datetime(2026, 11, 24, 0, 30, tzinfo=TZ)


def test_every_request_field_round_trips(engine):
    period = parse_period("last 30 days", now=NOW, tz=TZ)
    r = engine.ask(KpiRequest("aov", period, compare=None, filters=(("country", ("FR",)),),
                              breakdown="device", granularity="week"))
    assert r.comparison is None and r.change is None
    assert r.granularity == "week"
    assert {row.key for row in r.breakdown} == {"mobile", "desktop"}


def test_catalog_errors_name_file_kpi_and_field(tmp_path):
    bad = tmp_path / "metrics.yaml"
    bad.write_text(
        "measures:\n"
        "  revenue: {table: orders, time: placed_at, agg: sum, column: subtotl}\n"
        "  orders: {table: orders, time: placed_at, agg: median}\n"
        "metrics:\n"
        "  aov:\n"
        "    type: ratio\n"
        "    numerator: revenue\n"
        "    denominator: order_count\n"
        "    label: {en: AOV}\n"
        "    format: money\n"
        "    higher_is_better: true\n"
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(bad)
    text = str(err.value)
    assert f"{bad}:2: measure 'revenue', field 'column': no column 'subtotl'" in text
    assert "measure 'orders', field 'agg'" in text
    assert "KPI 'aov', field 'denominator': unknown measure 'order_count'" in text
    assert "KPI 'aov', field 'format'" in text
    assert len(err.value.problems) == 4


def test_catalog_rejects_an_identifier_that_is_not_one(tmp_path):
    bad = tmp_path / "metrics.yaml"
    bad.write_text(
        "measures:\n"
        "  x: {table: 'orders; drop table orders', time: placed_at, agg: count}\n"
        "metrics: {}\n"
    )
    with pytest.raises(CatalogError, match="field 'table'"):
        load_catalog(bad)


def test_adding_a_kpi_is_a_yaml_edit(tmp_path, source_engine):
    text = (CONFIG / "metrics.yaml").read_text()
    text += (
        "  discount_rate:\n"
        "    type: ratio\n"
        "    numerator: discounts\n"
        "    denominator: revenue\n"
        "    label: {en: Discount rate, fr: Taux de remise}\n"
        "    aliases: {en: [discount rate], fr: [taux de remise]}\n"
        "    format: percent\n"
        "    higher_is_better: false\n"
    )
    text = text.replace("measures:\n", "measures:\n  discounts:\n    table: orders\n    time: placed_at\n"
                        "    agg: sum\n    column: discount\n    dimensions: {channel: channel}\n", 1)
    (tmp_path / "metrics.yaml").write_text(text)
    with source_engine.begin() as conn:
        conn.execute(insert(schema.orders), [{**ORDERS[0], "discount": 25}])
    eng = KpiEngine(load_catalog(tmp_path), source_engine, tz=TZ, clock=lambda: NOW)
    r = ask(eng, "taux de remise")
    assert r.current.value == pytest.approx(0.25)


def test_missing_source_tables_are_a_clear_error(database_url):
    from kpi.db import make_engine

    empty = make_engine(database_url)
    try:
        with pytest.raises(CatalogError, match="table 'orders' is not in the source database"):
            KpiEngine(load_catalog(CONFIG), empty, tz=TZ)
    finally:
        empty.dispose()


def test_a_group_with_a_denominator_and_no_numerator_is_zero_as_when_filtered(engine):
    """Zero is a value: DE and US have orders and no returns, so 0.0%, in a breakdown exactly as asked as a
    filter; a group with no denominator (email: no new customer) stays "no data"."""
    by_country = {r.key: r.value.value for r in ask(engine, "return rate by country").breakdown}
    assert by_country["DE"] == 0.0 and by_country["US"] == 0.0
    assert ask(engine, "return rate country=US").current.value == by_country["US"]
    by_channel = {r.key: r.value for r in ask(engine, "cac by channel").breakdown}
    assert by_channel["email"].value is None and by_channel["email"].denominator == 0


def test_a_change_is_the_difference_of_the_values_as_shown():
    """72.7% against 72.8% reads −0.1 pt (the raw −0.04 pt would show '−0.0 pt'); values that show the same
    are no change: no arrow, no verdict."""
    from kpi.metrics.engine import Value, change_between
    from kpi.metrics.formatting import change_arrow, format_change

    rate = load_catalog(CONFIG).metrics["cart_abandonment_rate"]
    ch = change_between(rate, Value(0.72749), Value(0.72751))
    assert format_change(rate, ch) == "−0.1 pt" and change_arrow(ch) == "↓" and ch.good is True  # no "(−0.0%)"
    same = change_between(rate, Value(0.72712), Value(0.72738))
    assert same.absolute == 0 and same.good is None and change_arrow(same) == "→"
    money = load_catalog(CONFIG).metrics["revenue"]
    assert change_between(money, Value(100.004), Value(100.0)).good is None


def test_a_period_or_comparison_before_the_data_starts_is_no_data_not_zero(engine):
    """Coverage: the orders here start on 2025-11-18; 2019 is no data (not $0.00), and last year's Nov 17-23
    starts a day before the data: a partial comparison, shown without a verdict."""
    r = ask(engine, "revenue 2019")
    assert r.current.value is None and r.history_start.date().isoformat() == "2025-11-18"
    yoy = ask(engine, "revenue vs last year")
    assert yoy.comparison_partial and yoy.change.good is None
    assert any("history starts on" in line for line in result_lines(yoy))
    covered = ask(engine, "orders yesterday vs previous")
    assert not covered.comparison_partial and covered.history_start <= covered.comparison_period.start
