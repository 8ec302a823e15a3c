"""Honest comparisons: a period that is not over ends at the data's "as of" and is compared with the same
elapsed span, to the same time of day; periods before the data starts are no data, never $0; a change is
tested before it gets a colour.

A shop in Europe/Paris with one order of 10 € every hour at :15 from 2026-08-01 up to "now", and daily
traffic (100 sessions a day) up to yesterday. "Now" is Sunday 2026-11-29 09:30 (mid-morning on the 29th of a
month, a Sunday); another clock sits on 2026-10-25, the day summer time ends (25 hours). Runs on SQLite and on
PostgreSQL when KPIBOT_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from kpi.data import schema
from kpi.metrics.catalog import load_catalog
from kpi.metrics.engine import KpiEngine, KpiRequest, Value, change_between
from kpi.metrics.formatting import format_value, result_lines
from kpi.metrics.periods import parse_period
from kpi.metrics.significance import history_band, two_proportions

TZ = ZoneInfo("Europe/Paris")
SUNDAY = datetime(2026, 11, 29, 9, 30, tzinfo=TZ)
DST_DAY = datetime(2026, 10, 25, 9, 30, tzinfo=TZ)
FIRST_DAY = date(2026, 8, 1)
CONFIG = Path(__file__).resolve().parent.parent / "config"


def _orders(until: datetime) -> list[dict]:
    """One order every hour at :15 (UTC hours: on the 25-hour day there are 25 of them)."""
    out, at = [], datetime.combine(FIRST_DAY, time(0, 15), tzinfo=TZ).astimezone(UTC)
    while at <= until.astimezone(UTC):
        naive = at.replace(tzinfo=None)
        out.append(dict(order_id=f"o{len(out)}", customer_id=f"c{len(out) % 50}", placed_at=naive, status="placed",
                        subtotal=10, discount=0, shipping=0, tax=0, currency="EUR", channel="email",
                        device="mobile", country="FR"))
        at += timedelta(hours=1)
    return out


def _traffic(last_day: date) -> list[dict]:
    days = (last_day - FIRST_DAY).days + 1
    return [dict(day=FIRST_DAY + timedelta(days=i), channel="email", device="mobile", country="FR", sessions=100,
                 visitors=80, carts=10) for i in range(days)]


def _engine(source_engine, now: datetime) -> KpiEngine:
    with source_engine.begin() as conn:
        conn.execute(insert(schema.orders), _orders(now.replace(minute=15)))
        conn.execute(insert(schema.traffic), _traffic(now.date() - timedelta(days=1)))
    return KpiEngine(load_catalog(CONFIG), source_engine, tz=TZ, clock=lambda: now)


@pytest.fixture
def engine(source_engine):
    return _engine(source_engine, SUNDAY)


def ask(engine: KpiEngine, metric: str, period: str, compare: str | None = "previous", **kw):
    p = parse_period(period, now=engine.now(), tz=TZ)
    return engine.ask(KpiRequest(metric=metric, period=p, compare=compare, **kw))


def local(dt: datetime) -> datetime:
    return dt.astimezone(TZ).replace(tzinfo=None)


def test_today_is_compared_with_the_same_hours_of_yesterday(engine):
    r = ask(engine, "orders", "today")
    # the last order is at 09:15: today runs to 09:16, yesterday to 09:16 too (not to midnight: not 10 vs 24)
    assert local(r.period.end) == datetime(2026, 11, 29, 9, 16)
    assert (local(r.comparison_period.start), local(r.comparison_period.end)) == (
        datetime(2026, 11, 28), datetime(2026, 11, 28, 9, 16))
    assert r.current.value == 10 and r.comparison.value == 10
    assert r.change.absolute == 0 and r.change.good is None  # the same so far: no arrow, no verdict
    text = "\n".join(result_lines(r, lang="en"))
    assert "today (Nov 29, until 9:16\u202fAM, so far)" in text and "→" in text
    assert "−100" not in text and "bad" not in text


def test_a_daily_kpi_says_today_is_not_complete_yet(engine):
    r = ask(engine, "conversion_rate", "today")
    assert r.daily and r.period.empty and r.current.value is None and r.change is None
    text = "\n".join(result_lines(r, lang="en"))
    assert "daily" in text and "0.0%" not in text


def test_this_month_on_the_29th_compares_the_same_days_and_hours(engine):
    r = ask(engine, "revenue", "this month")
    assert (local(r.period.start), local(r.period.end)) == (datetime(2026, 11, 1), datetime(2026, 11, 29, 9, 16))
    assert (local(r.comparison_period.start), local(r.comparison_period.end)) == (
        datetime(2026, 10, 1), datetime(2026, 10, 29, 9, 16))
    # 28 days and 10 orders each side; October's 25-hour day adds one order to the comparison
    assert r.current.value == (28 * 24 + 10) * 10
    assert r.comparison.value == (28 * 24 + 1 + 10) * 10
    assert r.period.describe("en") == "this month (Nov 1\u2009–\u200929, until 9:16\u202fAM, so far)"
    assert r.comparison_period.describe("de") == "1.–29. Okt. 2026, bis 09:16"


def test_this_week_on_a_sunday_morning_is_not_a_whole_week(engine):
    r = ask(engine, "orders", "this week")
    assert r.period.partial and local(r.period.start) == datetime(2026, 11, 23)
    assert local(r.comparison_period.end) == datetime(2026, 11, 22, 9, 16)  # last Sunday, same hour
    assert r.current.value == r.comparison.value == 6 * 24 + 10


@pytest.mark.parametrize("text", ["october", "2026-10-01..2026-10-31", "du 2026-10-01 au 2026-10-31"])
def test_a_month_and_its_dates_typed_as_a_range_have_one_comparison(engine, text):
    r = ask(engine, "orders", text)
    assert (local(r.comparison_period.start), local(r.comparison_period.end)) == (
        datetime(2026, 9, 1), datetime(2026, 10, 1))
    assert r.current.value == 31 * 24 + 1  # the 25-hour day


def test_rolling_periods_include_every_complete_day_and_print_their_dates(engine):
    r = ask(engine, "orders", "last 4 weeks")
    assert (local(r.period.start), local(r.period.end)) == (datetime(2026, 11, 1), datetime(2026, 11, 29))
    assert "last 4 weeks (Nov 1\u2009–\u200928)" in result_lines(r, lang="en")[0]


def test_before_the_data_starts_there_is_no_data_and_no_verdict(engine):
    r = ask(engine, "revenue", "2019")
    assert r.current.value is None and all(p.value.value is None for p in r.series)
    assert "$0.00" not in "\n".join(result_lines(r, lang="en"))
    r = ask(engine, "revenue", "september 2026", compare="year")
    assert r.comparison.value is None and r.change.good is None
    r = ask(engine, "revenue", "2026", compare="previous")  # a year against one with no data at all
    assert r.change.good is None and "good" not in "\n".join(result_lines(r, lang="en"))


def test_the_series_marks_the_day_in_progress_and_carries_the_comparison(engine):
    r = ask(engine, "orders", "this week", granularity="day")
    assert [p.complete for p in r.series] == [True] * 6 + [False]
    assert [p.value.value for p in r.series] == [24] * 6 + [10]
    assert len(r.comparison_series) == 7 and r.comparison_series[-1].value.value == 10


def test_like_for_like_asks_no_more_queries_than_before(engine, source_engine):
    from sqlalchemy import event

    statements = []

    def count(*_args):
        statements.append(1)

    ask(engine, "orders", "this month")  # warms the cached "as of" and history start
    event.listen(source_engine, "before_cursor_execute", count)
    try:
        ask(engine, "orders", "this month")
    finally:
        event.remove(source_engine, "before_cursor_execute", count)
    assert len(statements) == 1  # the period, its comparison, the series and the history: one statement


def test_on_the_day_summer_time_ends_today_counts_the_same_wall_clock_hours(source_engine):
    engine = _engine(source_engine, DST_DAY)
    r = ask(engine, "orders", "today")
    assert local(r.comparison_period.end) == datetime(2026, 10, 24, 9, 16)
    assert r.current.value == 11 and r.comparison.value == 10  # 02:15 happened twice this morning


def test_a_small_change_on_a_small_sample_is_within_normal_variation():
    catalog = load_catalog(CONFIG)
    conversion = catalog.metric("conversion_rate")
    small = change_between(conversion, Value(60 / 2000, 60, 2000), Value(54 / 2000, 54, 2000))
    big = change_between(conversion, Value(6000 / 200000, 6000, 200000), Value(5400 / 200000, 5400, 200000))
    assert small.absolute == big.absolute  # the same +0.3 pt...
    assert small.good is None and not small.significance.significant and small.significance.p_value > 0.4
    assert big.good is True and big.significance.significant and big.significance.p_value < 1e-6
    assert two_proportions(1, 0, 1, 10) is None  # an empty period cannot be tested


def test_an_additive_change_is_judged_against_the_same_change_in_history():
    # Tuesdays usually beat Mondays by about 100: +110 is normal, +400 is news
    moves = [95, 105, 100, 90, 110, 100]
    assert not history_band(1110, 1000, moves).significant
    band = history_band(1400, 1000, moves)
    assert band.significant and band.low < 1100 < band.high and band.history == 6
    assert history_band(1400, 1000, moves[:3]) is None  # too little history: not tested


def test_french_numbers_never_wrap_between_a_number_and_its_sign():
    assert format_value(0.0125, "percent", lang="fr") == "1,3\u202f%"  # half up, narrow no-break space
    assert format_value(0.0125, "percent", lang="de") == "1,3\u00a0%"
    assert format_value(1234.5, "currency", currency="EUR", lang="fr") == "1\u202f234,50\u00a0€"
    assert " " not in format_value(0.125, "percent", lang="fr")


def test_a_feed_that_stopped_days_ago_is_told_as_late_even_when_the_period_is_cut(source_engine):
    engine = _engine(source_engine, SUNDAY)
    late = KpiEngine(engine.catalog, source_engine, tz=TZ, clock=lambda: SUNDAY + timedelta(hours=34))
    r = ask(late, "orders", "this month")  # on the 30th at 19:30, the month so far ends where the data does...
    assert local(r.period.end) == datetime(2026, 11, 29, 9, 16)
    assert r.stale  # ...and the answer says the data is late
    assert not ask(engine, "orders", "this month").stale


# -- what a review of the first version found ----------------------------------------------------------


def test_breakdown_rows_follow_the_headline_coverage_rules(engine):
    r = ask(engine, "revenue", "september 2026", compare="year", breakdown="channel")
    assert r.comparison.value is None
    assert r.breakdown and all(row.comparison.value is None and row.change.good is None for row in r.breakdown)
    r = ask(engine, "revenue", "last 7 days", breakdown="channel")  # covered: the rows' changes are values
    assert all(row.change is not None and row.change.absolute is not None for row in r.breakdown)
    assert all(row.change.good is None for row in r.breakdown)  # money per group is not tested: no verdict


def test_a_history_that_never_moved_is_no_band():
    assert history_band(1.0, 0.0, [0.0] * 8) is None  # a fixed budget: +$0.01 is not "significant"


def test_a_last_bucket_shorter_than_its_unit_is_not_drawn_as_a_fall(engine):
    r = ask(engine, "orders", "last 3 months", granularity="week")
    assert local(r.series[-1].start) == datetime(2026, 11, 23) and not r.series[-1].complete
    assert all(p.complete for p in r.series[1:-1])
    day = ask(engine, "orders", "this week", granularity="day")
    spark = [line for line in result_lines(day, lang="en") if "daily" in line][0]
    assert spark.endswith(" ")  # today so far is a gap in the sparkline, not a collapse


def test_on_the_repeated_hour_of_a_dst_day_today_keeps_its_last_order(source_engine):
    ny = ZoneInfo("America/New_York")
    rows = [dict(order_id=f"n{i}", customer_id="c1", placed_at=datetime(2026, 11, 1, h, 15), status="placed",
                 subtotal=10, discount=0, shipping=0, tax=0, currency="USD", channel="email", device="mobile",
                 country="US") for i, h in enumerate((4, 5, 6))]  # 00:15 EDT, 01:15 EDT, 01:15 EST
    with source_engine.begin() as conn:
        conn.execute(insert(schema.orders), rows)
    now = datetime(2026, 11, 1, 6, 40, tzinfo=UTC).astimezone(ny)  # 01:40 EST, the second 01:40 of the day
    engine = KpiEngine(load_catalog(CONFIG), source_engine, tz=ny, clock=lambda: now)
    r = engine.ask(KpiRequest("orders", parse_period("today", now=now, tz=ny), compare=None, series=False))
    assert r.current.value == 3


def test_an_alert_on_today_waits_quietly_until_the_day_has_data():
    from kpi.alerts.machine import AlertState, Observation, evaluate
    from kpi.alerts.rules import RuleSpec

    rule = RuleSpec(metric="orders", condition="below", threshold=50, window_days=0)
    firing = AlertState(state="firing", episode=1, fired_at=SUNDAY, announced=True)
    at = SUNDAY + timedelta(hours=15)  # 00:30 the next day, no order yet
    t = evaluate(rule, firing, Observation(value=None, sample=None, at=at, waiting=True), at)
    assert t.notify == () and t.state.state == "firing" and t.reason == "window_not_started"
