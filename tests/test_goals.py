"""SMART goals: parsing (English and French, Slack mentions, every error with its field), the pure
progress arithmetic on hand-computed cases, and progress and the SMART check against small shops on
SQLite and PostgreSQL (the ``source_engine`` fixture) whose every number is computed in the comments.

Definitions are in ``kpi/goals/__init__.py``. Shop time zone Europe/Paris."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from bot.markup import to_plain
from kpi.data import schema
from kpi.errors import QueryError, UnknownMetric
from kpi.goals import (
    GoalError,
    GoalSpec,
    compute_progress,
    expected_share,
    goal_progress,
    linear_expected,
    parse_goal,
    project,
    seasonal_expected,
    smart_check,
    target_value,
)
from kpi.metrics.catalog import load_catalog
from kpi.metrics.engine import KpiEngine

TZ = ZoneInfo("Europe/Paris")
CONFIG = Path(__file__).resolve().parent.parent / "config"
CATALOG = load_catalog(CONFIG)
TODAY = date(2026, 11, 25)
CLOCK = datetime(2026, 11, 29, 9, 30, tzinfo=TZ)
D = date.fromisoformat
SALES_WATCH = ("conversion_rate", "cart_abandonment_rate")


def parse(text: str, today: date = TODAY) -> GoalSpec:
    """As typed in Slack: the Slack layer turns its markup (<@U123|alice>) into plain notation first."""
    return parse_goal(to_plain(text), CATALOG, today=today, tz=TZ)


# -- parsing ---------------------------------------------------------------------------------------

# text -> (metric, kind, value, start, deadline, extra fields)
PARSED = {
    "revenue +10% by 2026-12-31 owner @alice #growth":
        ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {"owner": "@alice", "channel": "growth"}),
    "revenue +10% by 2026-12-31 owner <@U123|alice> <#C123|growth>":
        ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {"owner": "U123", "channel": "C123"}),
    "revenue +10% by 2026-12-31 &lt;@U123&gt; &lt;#C123&gt;":  # Slack's HTML escaping
        ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {"owner": "U123", "channel": "C123"}),
    "revenue +10% by 2026-12-31 @U0ABC123":
        ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {"owner": "U0ABC123"}),
    "+10% online sales this year": ("revenue", "relative_pct", 0.10, "2026-01-01", "2026-12-31", {"watch": SALES_WATCH}),
    "conversion rate +5% in a year": ("conversion_rate", "relative_pct", 0.05, "2026-11-25", "2027-11-24",
                                      {"watch": ("cart_abandonment_rate", "sessions")}),
    "conversion 3.5% by 2027-06-30": ("conversion_rate", "absolute", 0.035, "2026-11-25", "2027-06-30", {}),
    "conversion +0.5pt by june 2027": ("conversion_rate", "relative_pt", 0.005, "2026-11-25", "2027-06-30", {}),
    "+20% visitors by December": ("visitors", "relative_pct", 0.20, "2026-11-25", "2026-12-31", {"watch": ("sessions",)}),
    "+20% visitors by March": ("visitors", "relative_pct", 0.20, "2026-11-25", "2027-03-31", {}),  # March is past
    "revenue +10% channel=email by 2026-12-31 watch conversion,aov":
        ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31",
         {"filters": (("channel", ("email",)),), "watch": ("conversion_rate", "aov")}),
    "revenue +10% from 2026-01-01 by 2026-12-31": ("revenue", "relative_pct", 0.10, "2026-01-01", "2026-12-31", {}),
    "conversion +5% by 2027-06-30 baseline 2.4%":
        ("conversion_rate", "relative_pct", 0.05, "2026-11-25", "2027-06-30", {"baseline": 0.024}),
    "return rate from 8% to 6% by 2027-03-31":
        ("return_rate", "absolute", 0.06, "2026-11-25", "2027-03-31", {"baseline": 0.08, "watch": ()}),
    "revenue $150k in 2027": ("revenue", "absolute", 150_000, "2027-01-01", "2027-12-31", {}),
    "orders 5,000 next quarter": ("orders", "absolute", 5000, "2027-01-01", "2027-03-31", {}),
    "revenue 1.5M by the end of the year": ("revenue", "absolute", 1_500_000, "2026-11-25", "2026-12-31", {}),
    "aov +5% by Q2": ("aov", "relative_pct", 0.05, "2026-11-25", "2027-06-30", {}),
    "Revenue +10% by December 31, 2026": ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {}),
    "sessions +10% in 6 months watch visitors and sessions by channel":
        ("sessions", "relative_pct", 0.10, "2026-11-25", "2027-05-24", {"watch": ("visitors", "sessions")}),
    "conversion −0.2pt this month": ("conversion_rate", "relative_pt", -0.002, "2026-11-01", "2026-11-30", {}),
    # French
    "chiffre d'affaires +10 % d'ici le 31/12/2026": ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {}),
    "chiffre d’affaires +10 % d’ici le 31 décembre 2026": ("revenue", "relative_pct", 0.10, "2026-11-25", "2026-12-31", {}),
    "taux de conversion +0,5 pt en un an": ("conversion_rate", "relative_pt", 0.005, "2026-11-25", "2027-11-24", {}),
    "visiteurs +20 % d'ici décembre": ("visitors", "relative_pct", 0.20, "2026-11-25", "2026-12-31", {}),
    "ventes en ligne +10 % cette année": ("revenue", "relative_pct", 0.10, "2026-01-01", "2026-12-31", {}),
    "CA +10 % depuis le 01/01/2026 jusqu'au 31/12/2026": ("revenue", "relative_pct", 0.10, "2026-01-01", "2026-12-31", {}),
    "taux de conversion 3 % d'ici juin 2027 base 2,4 %":
        ("conversion_rate", "absolute", 0.03, "2026-11-25", "2027-06-30", {"baseline": 0.024}),
    "taux de retour de 8 % à 6 % d'ici fin mars 2027": ("return_rate", "absolute", 0.06, "2026-11-25", "2027-03-31",
                                                        {"baseline": 0.08}),
    "commandes +15 % ce trimestre canal=email responsable <@U9|bob> <#C9|ventes> surveiller panier moyen et trafic":
        ("orders", "relative_pct", 0.15, "2026-10-01", "2026-12-31",
         {"filters": (("channel", ("email",)),), "owner": "U9", "channel": "C9", "watch": ("aov", "sessions")}),
}


@pytest.mark.parametrize("text", PARSED)
def test_parse_goal(text):
    metric, kind, value, start, deadline, extra = PARSED[text]
    g = parse(text)
    assert (g.metric, g.target_kind, g.start, g.deadline) == (metric, kind, D(start), D(deadline))
    assert g.target_value == pytest.approx(value)
    assert g.text == to_plain(text)
    for name, expected in extra.items():
        got = getattr(g, name)
        assert got == (pytest.approx(expected) if isinstance(expected, float) else expected), name


def test_parse_defaults():
    g = parse("revenue +10% by 2026-12-31")
    assert (g.filters, g.baseline, g.owner, g.channel) == ((), None, None, None)
    assert g.watch == SALES_WATCH
    assert parse("visitors +5% by 2026-12-31").watch == ("sessions",)
    assert parse("return rate 5% by 2026-12-31").watch == ()
    # a datetime "today" is taken in the shop's time zone: 23:30 UTC on the 24th is the 25th in Paris
    g = parse_goal("revenue +10% in a year", CATALOG, today=datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("UTC")), tz=TZ)
    assert (g.start, g.deadline) == (D("2026-11-25"), D("2027-11-24"))


# text -> (error field, words the message must contain)
ERRORS = {
    "revenue by 2026-12-31": ("target", "No target"),
    "revenue +10%": ("deadline", "No deadline"),
    "revenue +10% by 2025-12-31": ("deadline", "in the past"),
    "revenue +10% from 2027-01-01 by 2026-12-31": ("deadline", "before the start"),
    "revenue +0.5pt by 2026-12-31": ("target", "Points (pt) are for rates"),
    "revenue +500 by 2026-12-31": ("target", "+10% (relative)"),
    "revenue 10% by 2026-12-31": ("target", "not a percentage"),
    "conversion 120% by 2026-12-31": ("target", "between 0% and 100%"),
    "revenue +10% +20% by 2026-12-31": ("target", "Two targets"),
    "conversion 2.4% by 2027-06-30 baseline 2.4%": ("target", "equals the baseline"),
    "conversion +0pt by 2027-06-30": ("target", "change of 0"),
    "revenue +10% by 2026-12-31 baseline 0": ("target", "zero baseline"),
    "revenue +10% by 2026-12-31 baseline abc": ("baseline", "baseline as a number"),
    "revenue +10% by 2026-12-31 <@U1> <@U2>": ("owner", "One owner"),
    "revenue +10% by 2026-12-31 #a #b": ("channel", "One channel"),
    "revenue +10% by 2026-12-31 by 2027-01-31": ("deadline", "Two deadlines"),
    "revenue orders +10% by 2026-12-31": ("metric", "One KPI per goal"),
    "email open rate +10% channel=email by 2026-12-31": ("metric", "cannot be filtered by 'channel'"),
    "+10% by 2026-12-31": ("metric", "Which KPI"),
}


@pytest.mark.parametrize("text", ERRORS)
def test_parse_errors_name_their_field(text):
    field, words = ERRORS[text]
    with pytest.raises(GoalError) as err:
        parse(text)
    assert err.value.field == field
    assert words in str(err.value)
    assert isinstance(err.value, QueryError)


@pytest.mark.parametrize("text, field, name, suggestion", [
    ("revnue +10% by 2026-12-31", "metric", "revnue", "revenue"),
    ("chiffre d'afaires +10 % d'ici le 31/12/2026", "metric", "chiffre d'afaires", "chiffre d'affaires"),
    ("revenue +10% by 2026-12-31 watch convresion", "watch", "convresion", "conversion"),
])
def test_an_unknown_kpi_is_unknown_metric_with_suggestions(text, field, name, suggestion):
    with pytest.raises(UnknownMetric) as err:
        parse(text)
    assert isinstance(err.value, GoalError) and err.value.field == field
    assert err.value.name == name
    assert suggestion in err.value.suggestions


# -- the pure arithmetic ---------------------------------------------------------------------------

YEAR = GoalSpec("revenue", "relative_pct", 0.10, D("2026-01-01"), D("2026-12-31"))  # 365 days


def test_target_value():
    assert target_value(YEAR, 1000) == pytest.approx(1100)
    assert target_value(YEAR, None) is None
    assert target_value(YEAR, 0) is None  # a percent of nothing
    pt = GoalSpec("conversion_rate", "relative_pt", 0.005, D("2026-01-01"), D("2026-12-31"))
    pct = GoalSpec("conversion_rate", "relative_pct", 0.05, D("2026-01-01"), D("2026-12-31"))
    assert target_value(pt, 0.02) == pytest.approx(0.025)  # +0.5 pt on 2.0%
    assert target_value(pct, 0.02) == pytest.approx(0.021)  # +5% of 2.0%
    assert target_value(pt, 0.0) == pytest.approx(0.005)  # points work from zero


def test_first_day():
    p = compute_progress(YEAR, baseline=1000, current=0, today=D("2026-01-01"), additive=True)
    assert (p.days_elapsed, p.days_left, p.days_total) == (0, 364, 365)  # today is in progress
    assert p.expected == 0 and p.progress == 0 and p.status == "no_data"  # waiting for data, never "on track"
    assert p.target == pytest.approx(1100) and p.baseline_to_date == 0
    assert p.projection is None and p.pace_needed is None and p.pace_actual is None
    assert not p.frozen and p.current_window == "since start"
    rate = GoalSpec("conversion_rate", "relative_pt", 0.005, D("2026-01-01"), D("2026-03-31"))
    p = compute_progress(rate, baseline=0.02, current=None, today=D("2026-01-01"))
    assert p.progress is None and p.status == "no_data"
    # a goal whose span has not started yet is waiting for data too
    later = compute_progress(rate, baseline=0.02, current=None, today=D("2025-12-01"))
    assert later.days_elapsed == 0 and later.status == "no_data"


def test_frozen_goal_achieved_and_missed():
    # revenue 2026 +10% on a baseline of 1000: target 1100; evaluated after the deadline
    won = compute_progress(YEAR, baseline=1000, current=1150, today=D("2027-01-05"), additive=True,
                           trajectory=[(YEAR.start + timedelta(days=i), 3.0 * i) for i in range(365)])
    assert won.frozen and won.status == "achieved"
    assert (won.days_elapsed, won.days_left, won.expected) == (365, 0, 1.0)
    assert won.progress == pytest.approx(1150 / 1100)  # where it is: the total as a share of the target
    assert (won.projection, won.projection_low, won.projection_high) == (1150, None, None)
    assert won.pace_needed is None
    lost = compute_progress(YEAR, baseline=1000, current=1050, today=D("2027-01-05"), additive=True)
    assert lost.status == "missed" and lost.progress == pytest.approx(1050 / 1100)
    # the deadline day itself is not over: not frozen yet
    last = compute_progress(YEAR, baseline=1000, current=1050, today=D("2026-12-31"), additive=True)
    assert not last.frozen and last.days_left == 0 and last.days_elapsed == 364


def test_baseline_of_zero():
    ten = GoalSpec("orders", "absolute", 100, D("2026-01-01"), D("2026-01-10"))  # 10 days, from nothing
    p = compute_progress(ten, baseline=0, current=40, today=D("2026-01-06"), additive=True)  # 5 days elapsed
    assert p.expected == pytest.approx(0.5) and p.baseline_to_date == 0
    assert p.progress == pytest.approx(0.4)  # 40 / 100
    # no projection (5 points at most): how far the total is behind the expected 50: 40 / 50 - 1 = -20%
    assert p.status == "at_risk"  # >= -2 x 10%, exactly
    assert compute_progress(ten, baseline=0, current=45, today=D("2026-01-06"), additive=True).status == "on_track"
    assert compute_progress(ten, baseline=0, current=39, today=D("2026-01-06"), additive=True).status == "off_track"
    assert p.expected_value == pytest.approx(50)
    assert p.pace_needed == pytest.approx(60 / 5 * 30) and p.pace_actual == pytest.approx(40 / 5 * 30)
    relative = GoalSpec("orders", "relative_pct", 0.10, D("2026-01-01"), D("2026-01-10"))
    q = compute_progress(relative, baseline=0, current=40, today=D("2026-01-06"), additive=True)
    assert q.target is None and q.progress is None and q.status == "no_data"


def test_rate_goal_in_points_versus_percent():
    # conversion from 2.0%: +0.5 pt aims at 2.5%, +5% at 2.1%; 45 of 90 days gone, current 2.3%
    span = dict(start=D("2026-01-01"), deadline=D("2026-03-31"))
    pt = compute_progress(GoalSpec("conversion_rate", "relative_pt", 0.005, **span), baseline=0.02, current=0.023,
                          today=D("2026-02-15"))
    pct = compute_progress(GoalSpec("conversion_rate", "relative_pct", 0.05, **span), baseline=0.02, current=0.023,
                           today=D("2026-02-15"))
    assert pt.target == pytest.approx(0.025) and pct.target == pytest.approx(0.021)
    assert pt.expected == pytest.approx(0.5) and pt.baseline_to_date == 0.02
    assert pt.progress == pytest.approx(0.6) and pt.status == "on_track"
    assert pct.progress == pytest.approx(3.0) and pct.status == "achieved"
    assert pt.current_window == "trailing 28 days"
    assert pt.pace_needed == pytest.approx(0.002 / 45 * 30)
    assert pt.pace_actual == pytest.approx(0.003 / 45 * 30)
    assert pt.pace_needed_relative == pytest.approx(0.002 / 45 * 30 / 0.02)


def test_lower_is_better_goal():
    # return rate from 8% to 6% over 100 days; 50 days gone
    spec = GoalSpec("return_rate", "absolute", 0.06, D("2026-01-01"), D("2026-04-10"), baseline=0.08)

    def at(current):
        return compute_progress(spec, baseline=0.08, current=current, today=D("2026-02-20"), higher_is_better=False)

    assert at(0.07).progress == pytest.approx(0.5) and at(0.07).status == "on_track"
    assert at(0.07).pace_needed == pytest.approx(-0.01 / 50 * 30)
    assert at(0.06).status == "achieved" and at(0.055).status == "achieved"
    assert at(0.085).progress == pytest.approx(-0.25) and at(0.085).status == "off_track"
    assert at(0.0725).status == "at_risk"  # progress 0.375: below 0.5 - 0.1, above 0.5 - 0.2


def test_additive_goal_to_lower_a_total_is_decided_at_the_deadline():
    # marketing spend capped at 1000 for the year, last year 1200; halfway (linear), 300 spent
    spec = GoalSpec("marketing_spend", "absolute", 1000, D("2026-01-01"), D("2026-01-10"))
    p = compute_progress(spec, baseline=1200, current=300, today=D("2026-01-06"), additive=True, higher_is_better=False)
    assert p.status == "on_track"  # under the ceiling so far, but not "achieved" before the end
    assert p.progress == pytest.approx(300 / 1000) and p.expected_value == pytest.approx(500)
    over = compute_progress(spec, baseline=1200, current=650, today=D("2026-01-06"), additive=True,
                            higher_is_better=False)
    assert over.status == "off_track"  # 650 spent where 500 was the pace: 30% over
    done = compute_progress(spec, baseline=1200, current=900, today=D("2026-01-11"), additive=True, higher_is_better=False)
    assert done.frozen and done.status == "achieved"


def test_linear_versus_seasonal_expected():
    today = D("2026-07-01")  # 181 days of 2026 are over
    assert linear_expected(YEAR, today) == pytest.approx(181 / 365)
    # last year: 300 on 2025-03-01 and 700 on 2025-09-01, nothing else: 30% was in by 2025-07-01
    ly = [(D("2025-01-01") + timedelta(days=i), 0.0) for i in range(365)]
    ly = [(d, {D("2025-03-01"): 300.0, D("2025-09-01"): 700.0}.get(d, v)) for d, v in ly]
    assert expected_share(YEAR, today, ly) == (pytest.approx(0.3), "seasonal")
    assert seasonal_expected(YEAR, today, ly) == pytest.approx(0.3)
    assert seasonal_expected(YEAR, D("2026-03-01"), ly) == 0  # 2025-03-01 itself is not yet counted
    assert seasonal_expected(YEAR, D("2026-03-02"), ly) == pytest.approx(0.3)
    # an incomplete year (a missing day) or an empty one falls back to linear
    assert expected_share(YEAR, today, ly[1:]) == (pytest.approx(181 / 365), "linear")
    assert expected_share(YEAR, today, [(d, 0.0) for d, _ in ly]) == (pytest.approx(181 / 365), "linear")
    # the same numbers through compute_progress: +10% on 1000, 400 so far
    seasonal = compute_progress(YEAR, baseline=1000, current=400, today=today, expected=0.3,
                                expected_kind="seasonal", additive=True)
    assert seasonal.baseline_to_date == pytest.approx(300)  # last year's running total to the same day
    assert seasonal.progress == pytest.approx(400 / 1100) and seasonal.status == "on_track"  # 36% >= 30%
    assert seasonal.expected_value == pytest.approx(330)  # 1100 x 30%
    assert seasonal.pace_actual_relative == pytest.approx(400 / 300 - 1)
    assert seasonal.pace_needed_relative == pytest.approx(700 / 700 - 1)
    linear = compute_progress(YEAR, baseline=1000, current=400, today=today, additive=True)
    assert linear.expected_kind == "linear"
    # 400 where 1100 x 181/365 = 545.5 was expected: 26.7% behind
    assert linear.progress == pytest.approx(400 / 1100) and linear.status == "off_track"
    assert linear.pace_needed == pytest.approx(700 / 184 * 30) and linear.pace_actual == pytest.approx(400 / 181 * 30)


def test_a_span_across_daylight_saving_counts_local_days():
    # Europe/Paris springs forward on 2026-03-29 (a 23-hour day): three days, two of them over
    spec = GoalSpec("orders", "absolute", 30, D("2026-03-28"), D("2026-03-30"))
    p = compute_progress(spec, baseline=0, current=20, today=D("2026-03-30"), additive=True)
    assert (p.days_elapsed, p.days_total, p.days_left) == (2, 3, 0)
    assert p.expected == pytest.approx(2 / 3)  # not 47 / 71 hours
    assert p.progress == pytest.approx(20 / 30)


def test_projection_of_a_clean_linear_trajectory():
    spec = GoalSpec("revenue", "absolute", 400, D("2026-01-01"), D("2026-01-30"))  # 30 days
    line = [(spec.start + timedelta(days=i), 10.0 * (i + 1)) for i in range(10)]  # 10 a day
    p = compute_progress(spec, baseline=0, current=100, today=D("2026-01-11"), trajectory=line, additive=True)
    assert p.projection == pytest.approx(300)
    assert p.projection_low == pytest.approx(300) and p.projection_high == pytest.approx(300)  # no scatter
    assert compute_progress(spec, baseline=0, current=60, today=D("2026-01-07"), trajectory=line[:6],
                            additive=True).projection is None  # fewer than 7 points


def test_projection_range_from_the_residuals():
    # y = 2x + e, e = (1, -1, 0, 0, 0, -1, 1): the residuals cancel, so the line is exactly y = 2x;
    # s² = Σe² / (n - 2) = 4 / 5, x̄ = 4, Sxx = 28; at x = 10: 20 ± 1.96 s √(1 + 1/7 + 36/28)
    e = [1, -1, 0, 0, 0, -1, 1]
    value, low, high = project([(x, 2 * x + e[x - 1]) for x in range(1, 8)], 10)
    half = 1.96 * math.sqrt(4 / 5) * math.sqrt(1 + 1 / 7 + 36 / 28)
    assert value == pytest.approx(20)
    assert (low, high) == (pytest.approx(20 - half), pytest.approx(20 + half))


# -- against a shop (SQLite and PostgreSQL) ----------------------------------------------------------


def _order(oid, placed, subtotal, channel="email", status="placed"):
    return dict(order_id=oid, customer_id="c" + oid, placed_at=placed, status=status, subtotal=subtotal, discount=0,
                shipping=0, tax=0, currency="EUR", channel=channel, device="mobile", country="FR")


def _traffic(day, sessions, channel="email"):
    return dict(day=day, channel=channel, device="mobile", country="FR", sessions=sessions, visitors=sessions, carts=0)


def _shop(source_engine, orders=(), traffic=(), customers=()) -> KpiEngine:
    with source_engine.begin() as conn:
        for table, rows in ((schema.orders, orders), (schema.traffic, traffic), (schema.customers, customers)):
            if rows:
                conn.execute(insert(table), list(rows))
    # a fixed clock after every day the tests ask about (mid-morning on the 29th): the goal's windows are over
    return KpiEngine(CATALOG, source_engine, tz=TZ, clock=lambda: CLOCK)


def _monthly_email_orders():
    """Email orders on the 15th of every month, 2023-03 to 2026-02, 100 each except 2024-06: 120,
    2024-07: 105, 2025-06: 120, 2025-07: 105, 2025-08: 115; one paid search order of 10,000 on 2025-06-15;
    a cancelled email order of 999 on 2026-02-20.

    Email revenue: 2024 = 100 x 12 + 20 + 5 = 1225; 2025 = 100 x 12 + 20 + 5 + 15 = 1240.
    Year-on-year, month by month, 2024-03 to 2026-02 (24 months): 2024-06 +20%, 2024-07 +5%, 2025-08 +15%,
    every other month 0%."""
    special = {(2024, 6): 120, (2024, 7): 105, (2025, 6): 120, (2025, 7): 105, (2025, 8): 115}
    rows, day = [], date(2023, 3, 15)
    while day < date(2026, 3, 1):
        rows.append(_order(f"m{day:%Y%m}", datetime(day.year, day.month, 15, 10), special.get((day.year, day.month), 100)))
        day = date(day.year + day.month // 12, day.month % 12 + 1, 15)
    rows.append(_order("paid", datetime(2025, 6, 15, 10), 10_000, channel="paid_search"))
    rows.append(_order("cancelled", datetime(2026, 2, 20, 10), 999, status="cancelled"))
    return rows


EMAIL = (("channel", ("email",)),)
EMAIL_2026 = GoalSpec("revenue", "relative_pct", 0.10, D("2026-01-01"), D("2026-12-31"), filters=EMAIL)


def test_smart_check_of_a_filtered_revenue_goal(source_engine):
    engine = _shop(source_engine, _monthly_email_orders())
    check = smart_check(engine, EMAIL_2026, today=D("2026-03-15"), currency="EUR")
    assert check.baseline == pytest.approx(1240) and check.target == pytest.approx(1364)
    # 2024-06 (+20%) and 2025-08 (+15%); 2024-03 against 2023-03 does not count: the data starts on
    # 2023-03-15, so March 2023 holds half a month at most
    assert (check.history_hits, check.history_windows) == (2, 23)
    assert check.specific == ("Raise revenue (channel = email) from €1,240.00 to €1,364.00 (+10%) "
                              "between 2026-01-01 and 2026-12-31.")
    assert "€1,240.00 (the same span a year earlier, 2025-01-01 to 2025-12-31)" in check.measurable
    assert check.achievable == "a +10% year-on-year change (or larger) in revenue happened in 2 of the last 23 months"
    assert check.time_bound == "deadline 2026-12-31, 291 days left"  # the whole days after March 15
    assert check.warnings == []
    assert smart_check(engine, EMAIL_2026, today=D("2026-12-31")).time_bound == "deadline today (2026-12-31)"
    # without the filter the paid search order counts: 2025 = 11,240 and 2025-06 is +8,333%
    everything = smart_check(engine, GoalSpec("revenue", "relative_pct", 0.10, D("2026-01-01"), D("2026-12-31")),
                             today=D("2026-03-15"))
    assert everything.baseline == pytest.approx(11_240) and everything.history_hits == 3


def test_smart_check_warns_but_accepts_an_ambitious_goal_in_french(source_engine):
    engine = _shop(source_engine, _monthly_email_orders())
    spec = GoalSpec("revenue", "relative_pct", 0.50, D("2026-01-01"), D("2026-12-31"), filters=EMAIL)
    check = smart_check(engine, spec, today=D("2026-03-15"), lang="fr", currency="EUR")
    assert (check.history_hits, check.history_windows) == (0, 23)
    assert check.target == pytest.approx(1860)
    assert check.achievable == ("une variation de +50\u202f% sur un an (chiffre d'affaires) n'est jamais arrivée "
                                "sur les 23 derniers mois\u00a0: un objectif ambitieux")
    assert check.specific.startswith("Chiffre d'affaires (canal = email)\u00a0: de 1")
    assert "(+50\u202f%) entre le 2026-01-01 et le 2026-12-31." in check.specific
    assert check.time_bound == "échéance le 2026-12-31, 291 jours restants"
    assert len(check.warnings) == 1 and "jamais" in check.warnings[0]


def test_smart_check_refuses_what_cannot_be_measured(source_engine):
    engine = _shop(source_engine, _monthly_email_orders())
    social = (("channel", ("social",)),)
    with pytest.raises(GoalError) as err:  # no social revenue at all: +10% of 0
        smart_check(engine, GoalSpec("revenue", "relative_pct", 0.1, D("2026-01-01"), D("2026-12-31"), filters=social),
                    today=D("2026-03-15"))
    assert err.value.field == "target"
    with pytest.raises(GoalError) as err:  # no sessions: no conversion baseline
        smart_check(engine, GoalSpec("conversion_rate", "relative_pct", 0.1, D("2026-04-01"), D("2026-04-30")),
                    today=D("2026-03-15"))
    assert err.value.field == "baseline"
    with pytest.raises(GoalError) as err:
        smart_check(engine, EMAIL_2026, today=D("2027-01-01"))
    assert err.value.field == "deadline"
    # an absolute target from a zero baseline is fine
    ok = smart_check(engine, GoalSpec("revenue", "absolute", 500, D("2026-01-01"), D("2026-12-31"), filters=social),
                     today=D("2026-03-15"))
    assert ok.baseline == 0 and ok.target == 500 and ok.history_windows == 0
    assert ok.specific.startswith("Raise revenue (channel = social) from $0.00 to $500.00 between")


def test_progress_of_a_filtered_revenue_goal_with_seasonal_expectation(source_engine):
    engine = _shop(source_engine, _monthly_email_orders())
    p = goal_progress(engine, EMAIL_2026, today=D("2026-03-15"))
    # data exists before 2025-01-01: seasonal; by 2025-03-15 (exclusive) last year had 200 of 1240
    assert p.expected_kind == "seasonal" and p.expected == pytest.approx(200 / 1240)
    assert p.baseline == pytest.approx(1240) and p.target == pytest.approx(1364)
    assert p.current == pytest.approx(200)  # 2026-01-15 and 2026-02-15; the cancelled order never counts
    assert p.baseline_to_date == pytest.approx(200)
    assert p.progress == pytest.approx(200 / 1364) and p.expected_value == pytest.approx(1364 * 200 / 1240)
    assert (p.days_elapsed, p.days_left, p.current_window) == (73, 291, "since start")
    # the projection follows last year's shape: this year's running total is last year's to the day
    # (100 on Jan 15th, 200 from Feb 15th), so it heads for last year's 1240, exactly: short of 1364
    assert p.projection == pytest.approx(1240) and p.projection_high == pytest.approx(1240)
    assert p.status == "off_track"


def test_progress_of_a_goal_whose_deadline_passed(source_engine):
    engine = _shop(source_engine, _monthly_email_orders())
    spec = GoalSpec("revenue", "relative_pct", 0.10, D("2025-01-01"), D("2025-12-31"), filters=EMAIL)
    p = goal_progress(engine, spec, today=D("2026-03-15"))
    assert p.frozen and p.status == "missed"
    assert p.baseline == pytest.approx(1225) and p.target == pytest.approx(1347.5)
    assert p.current == pytest.approx(1240) and p.projection == pytest.approx(1240)
    assert p.progress == pytest.approx(1240 / 1347.5)
    assert p.projection_low is None and p.projection_high is None


@pytest.mark.parametrize("older_data, kind", [(False, "linear"), (True, "seasonal")])
def test_progress_falls_back_to_linear_without_two_years_of_data(source_engine, older_data, kind):
    orders = [
        _order("a", datetime(2025, 3, 10, 10), 300), _order("b", datetime(2025, 9, 10, 10), 700),
        _order("c", datetime(2026, 2, 1, 10), 400),
        _order("d", datetime(2026, 6, 30, 22, 30), 5000),  # 00:30 on July 1st in Paris: today, not counted
    ]
    if older_data:
        orders.append(_order("old", datetime(2024, 12, 15, 10), 50))
    engine = _shop(source_engine, orders)
    p = goal_progress(engine, EMAIL_2026, today=D("2026-07-01"))
    assert p.baseline == pytest.approx(1000) and p.current == pytest.approx(400) and p.expected_kind == kind
    if kind == "linear":
        assert p.expected == pytest.approx(181 / 365)
        assert p.progress == pytest.approx(400 / 1100)  # where it should be: 181/365 = 49.6%
        # heading for 400 x 365 / 181 = 806.6, short of 1100; one order of 400 in 181 days is no steady
        # pace: the range (from 400, what is in, to 1929) straddles the target
        assert p.projection == pytest.approx(400 * 365 / 181) and p.projection_low == pytest.approx(400)
        assert p.projection_high > 1100 and p.status == "at_risk"
    else:
        assert p.expected == pytest.approx(0.3)  # 300 of 1000 was in by 2025-07-01
        assert p.progress == pytest.approx(400 / 1100)  # ahead of the 30% expected by now
        assert p.projection == pytest.approx(400 / 0.3) and p.status == "on_track"  # heading for 1333 >= 1100


def _conversion_shop():
    """May: 100 sessions on the 10th, orders on the 12th and 20th (2.0%), and on May 1st 1000 sessions,
    no order (outside the baseline window). June: 250 sessions on the 5th, orders on the 2nd, 3rd, 5th,
    8th, 12th and 20th; on the 21st 5 sessions and one order."""
    orders = [_order(f"may{d}", datetime(2026, 5, d, 10), 50, "paid_search") for d in (12, 20)]
    orders += [_order(f"jun{d}", datetime(2026, 6, d, 10), 50, "paid_search") for d in (2, 3, 5, 8, 12, 20, 21)]
    traffic = [_traffic(D("2026-05-01"), 1000), _traffic(D("2026-05-10"), 100), _traffic(D("2026-06-05"), 250),
               _traffic(D("2026-06-21"), 5)]
    return orders, traffic


JUNE = GoalSpec("conversion_rate", "relative_pt", 0.005, D("2026-06-01"), D("2026-06-30"))  # 30 days


def test_progress_of_a_rate_goal(source_engine):
    engine = _shop(source_engine, *_conversion_shop())
    p = goal_progress(engine, JUNE, today=D("2026-06-21"))
    # baseline: the 30 days before the start, 2026-05-02..05-31: 2 orders / 100 sessions
    assert p.baseline == pytest.approx(0.02) and p.target == pytest.approx(0.025)
    # current: since the start (20 days < 28), 06-01..06-20: 6 orders / 250 sessions
    assert p.current == pytest.approx(0.024) and p.current_window == "since start"
    assert p.expected == pytest.approx(20 / 30) and p.expected_kind == "linear"
    assert p.progress == pytest.approx(0.8) and p.status == "on_track"
    assert p.pace_needed == pytest.approx(0.001 / 10 * 30)  # 10 days still to come, today's included
    assert p.days_left == 9
    assert p.projection is not None  # trailing values from June 5th on: 16 points


def test_a_rate_goal_after_its_deadline_keeps_the_28_days_ending_with_it(source_engine):
    engine = _shop(source_engine, *_conversion_shop())
    p = goal_progress(engine, JUNE, today=D("2026-07-15"))
    # 06-03..06-30: orders of the 3rd, 5th, 8th, 12th, 20th, 21st / 250 + 5 sessions
    assert p.frozen and p.current == pytest.approx(6 / 255) and p.status == "missed"
    assert p.current_window == "trailing 28 days"


def test_progress_counts_local_days_across_daylight_saving(source_engine):
    orders = [
        _order("a", datetime(2026, 3, 28, 22, 30), 10),  # 23:30 CET on the 28th: before the start
        _order("b", datetime(2026, 3, 28, 23, 30), 10),  # 00:30 CET on the 29th
        _order("c", datetime(2026, 3, 29, 21, 30), 10),  # 23:30 CEST on the 29th (a 23-hour day)
        _order("d", datetime(2026, 3, 29, 22, 30), 10),  # 00:30 CEST on the 30th: today
    ]
    engine = _shop(source_engine, orders)
    spec = GoalSpec("orders", "absolute", 14, D("2026-03-29"), D("2026-04-04"))
    p = goal_progress(engine, spec, today=D("2026-03-30"))
    assert (p.days_elapsed, p.days_total) == (1, 7)
    assert p.current == 2 and p.baseline == 0
    assert p.progress == pytest.approx(2 / 14) and p.expected == pytest.approx(1 / 7) and p.status == "on_track"


def _monthly_conversion_shop():
    """100 sessions and 2 orders on the 15th of every month 2024-02 to 2026-02, except 3 orders in
    2025-05 and 4 in 2025-09: month over month +1 pt (2025-05) and +2 pt (2025-09), else 0 or a fall."""
    orders, traffic, day = [], [], date(2024, 2, 15)
    while day < date(2026, 3, 1):
        n = {(2025, 5): 3, (2025, 9): 4}.get((day.year, day.month), 2)
        orders += [_order(f"o{day:%Y%m}{i}", datetime(day.year, day.month, 15, 10 + i), 40) for i in range(n)]
        traffic.append(_traffic(day, 100))
        day = date(day.year + day.month // 12, day.month % 12 + 1, 15)
    return orders, traffic


def test_smart_check_of_a_rate_goal_compares_windows_of_its_length(source_engine):
    engine = _shop(source_engine, *_monthly_conversion_shop())
    spec = GoalSpec("conversion_rate", "relative_pt", 0.005, D("2026-03-16"), D("2026-04-14"))  # 30 days: 1 month
    check = smart_check(engine, spec, today=D("2026-03-15"))
    assert check.baseline == pytest.approx(0.02)  # 2026-02-14..03-15: the 15th of February
    assert check.target == pytest.approx(0.025)
    # the data starts on 2024-02-15: February 2024 is not a complete month to compare with
    assert (check.history_hits, check.history_windows, check.change_kind) == (2, 23, "points")
    assert check.specific == "Raise conversion rate from 2.0% to 2.5% (+0.5 pt) between 2026-03-16 and 2026-04-14."
    assert check.achievable == "a +0.5 pt change over 1 month (or larger) in conversion rate happened in 2 of the last 23 months"
    assert check.time_bound == "starts 2026-03-16, deadline 2026-04-14 (30 days)"
    assert check.warnings == []


def test_a_kpi_that_depends_on_its_window_length_takes_a_baseline_as_long_as_its_current_window(source_engine):
    # returning customer rate: c1 first ordered 2026-01-10 and again 2026-05-20, c2 ordered only 2026-03-10,
    # c3 only 2026-05-25. The 28 days before the start (05-04..05-31): c1 and c3 ordered, c1 had before: 1/2.
    # (The 92 days before, 03-01..05-31, would say 1/3: c2 counts, and a longer window has fewer "returning".)
    orders = [dict(_order(oid, placed, 50), customer_id=cust) for oid, cust, placed in [
        ("a", "c1", datetime(2026, 1, 10, 10)), ("b", "c1", datetime(2026, 5, 20, 10)),
        ("c", "c2", datetime(2026, 3, 10, 10)), ("d", "c3", datetime(2026, 5, 25, 10)),
        ("e", "c1", datetime(2026, 6, 10, 10))]]
    customers = [dict(customer_id=c, first_order_at=t, acquisition_channel="email", country="FR") for c, t in [
        ("c1", datetime(2026, 1, 10, 10)), ("c2", datetime(2026, 3, 10, 10)), ("c3", datetime(2026, 5, 25, 10))]]
    engine = _shop(source_engine, orders, customers=customers)
    spec = GoalSpec("returning_customer_rate", "relative_pt", 0.05, D("2026-06-01"), D("2026-08-31"))
    check = smart_check(engine, spec, today=D("2026-06-01"))
    assert check.baseline == pytest.approx(0.5) and check.target == pytest.approx(0.55)
    assert "the 28 days before the start, 2026-05-04 to 2026-05-31" in check.measurable
    # since the start (06-01..06-19): only c1 ordered, and had before: 100%. Distinct counts are not summed
    # day by day: the trajectory samples trailing windows (every 2nd day here, 5 of them with an order: too
    # few for a projection)
    p = goal_progress(engine, spec, today=D("2026-06-20"))
    assert p.current == pytest.approx(1.0) and p.status == "achieved" and p.projection is None


def test_the_realism_of_an_average_order_value_goal_is_told_in_money(source_engine):
    engine = _shop(source_engine, _monthly_email_orders())
    # email AOV: one order a month, 100 (2024-06: 120, 2024-07: 105, 2025-06: 120, 2025-07: 105, 2025-08: 115);
    # the span is 3 months, so each month is compared with the month 3 months earlier
    spec = GoalSpec("aov", "absolute", 110, D("2026-03-15"), D("2026-06-14"), filters=EMAIL)
    check = smart_check(engine, spec, today=D("2026-03-15"), currency="USD")
    assert check.baseline == pytest.approx(100) and check.change_kind == "absolute" and check.required_change == 10
    # +$10 or more over 3 months: 2024-06 vs 2024-03 (+20), 2025-06 vs 2025-03 (+20), 2025-08 vs 2025-05 (+15)
    assert check.achievable == ("a +$10.00 change over 3 months (or larger) in average order value happened in 3 of "
                                "the last 24 months")
    assert " pt" not in check.achievable


def test_months_before_the_data_starts_do_not_count_as_history(source_engine):
    # 100 a day from 2024-12-30 on: December 2024 holds 2 days (200) and December 2025 31 days (3100),
    # a "+1450%" that is no change at all; every complete month compares 0% a year later
    day, orders = date(2024, 12, 30), []
    while day < date(2026, 3, 1):
        orders.append(_order(f"d{day:%Y%m%d}", datetime(day.year, day.month, day.day, 10), 100))
        day += timedelta(days=1)
    engine = _shop(source_engine, orders)
    spec = GoalSpec("revenue", "relative_pct", 5.0, D("2026-01-01"), D("2026-12-31"), filters=EMAIL)
    check = smart_check(engine, spec, today=D("2026-03-15"))
    # 2026-01 vs 2025-01 and 2026-02 vs 2025-02 only (both 0%): a +500% year never happened
    assert (check.history_hits, check.history_windows) == (0, 2)
    assert any("never happened" in w for w in check.warnings)


@pytest.mark.parametrize("older, kind", [
    (_order("old", datetime(2024, 12, 15, 10), 50), "seasonal"),  # an email order before last year's span
    (_order("old", datetime(2024, 12, 15, 10), 50, channel="paid_search"), "linear"),  # not the goal's channel
    (_order("old", datetime(2024, 12, 15, 10), 50, status="cancelled"), "linear"),  # not revenue
    (_order("old", datetime(2025, 1, 2, 10), 50), "linear"),  # inside last year's span, not before it
])
def test_whether_last_year_is_complete_is_read_with_the_goals_own_filters_and_conditions(source_engine, older, kind):
    # last year's span starts on 2025-01-01: its shape is used only when the goal's own data (email revenue)
    # goes back to that day or earlier
    orders = [_order("a", datetime(2025, 3, 10, 10), 300), _order("b", datetime(2025, 9, 10, 10), 700),
              _order("c", datetime(2026, 2, 1, 10), 400), older]
    engine = _shop(source_engine, orders)
    p = goal_progress(engine, EMAIL_2026, today=D("2026-07-01"))
    assert p.expected_kind == kind
