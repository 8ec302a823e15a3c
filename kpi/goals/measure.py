"""The impure side: what a goal reads from the KPI engine (baseline, current value, last year's days,
the trajectory), then ``compute_progress``. Values and daily series go through ``engine.ask``, so that
a caching engine (the digest's) answers repeated questions once; many arbitrary windows at once
(history months, sampled trajectories) are one ``engine.sql`` query of measure aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from kpi.metrics.catalog import Metric
from kpi.metrics.engine import KpiEngine, KpiRequest, Value, metric_value
from kpi.metrics.periods import Period, day_range
from kpi.metrics.sql import MeasureQuery, TimeRange

from .progress import (
    BASELINE_MAX_DAYS,
    TRAILING_DAYS,
    Progress,
    compute_progress,
    expected_path,
    expected_share,
)
from .spec import GoalSpec, last_year_span

MAX_DAYS_PER_ASK = 366  # daily buckets per question (SQLite allows 500 branches in one UNION ALL)
SAMPLED_POINTS = 12  # trajectory points of KPIs whose daily values do not add up (distinct counts, running totals)


@dataclass(frozen=True)
class Baseline:
    value: float | None
    start: date  # the window it was measured over, [start, end)
    end: date
    given: bool  # the goal states it
    sample: float | None = None
    complete: bool = True  # additive: the source has data on or before the window's first day


def period_of(start: date, end: date, tz) -> Period:
    """The local days [start, end) as a ``Period`` the engine accepts (no "now" involved)."""
    s, e = day_range(start, end, tz)
    key = f"{start}..{end - timedelta(days=1)}"
    return Period(s, e, e, key, "day", (end - start).days, False, key)


def value_over(engine: KpiEngine, spec: GoalSpec, start: date, end: date) -> Value:
    req = KpiRequest(spec.metric, period_of(start, end, engine.tz), compare=None, filters=spec.filters, series=False)
    return engine.ask(req).current


def daily_values(engine: KpiEngine, spec: GoalSpec, start: date, end: date) -> list[tuple[date, Value]]:
    """One value per local day of [start, end)."""
    out: list[tuple[date, Value]] = []
    day = start
    while day < end:
        stop = min(end, day + timedelta(days=MAX_DAYS_PER_ASK))
        req = KpiRequest(spec.metric, period_of(day, stop, engine.tz), compare=None, filters=spec.filters,
                         granularity="day")
        out += [(p.start.date(), p.value) for p in engine.ask(req).series]
        day = stop
    return out


def measures_over(engine: KpiEngine, spec: GoalSpec, metric: Metric, ranges: list[tuple[date, date]]) -> list[dict]:
    """The metric's measure aggregates over each local [start, end) range, in one statement per table."""
    measures = tuple(engine.catalog.measures_of(metric))
    q = MeasureQuery(measures, tuple(TimeRange(*day_range(s, e, engine.tz)) for s, e in ranges), spec.filters)
    values = engine.sql.run(q)
    return [values[(i, None)] for i in range(len(ranges))]


def history_complete(engine: KpiEngine, spec: GoalSpec, first: date) -> bool:
    """The source has data for the goal's KPI (and filters) on or before ``first``: one index-backed look for a
    row (``LIMIT 1``), so that a goal costs the same on a shop with ten years of history as on one with two."""
    metric = engine.catalog.metric(spec.metric)
    end = day_range(first, first + timedelta(days=1), engine.tz)[1]
    q = MeasureQuery(tuple(engine.catalog.measures_of(metric)), (TimeRange(None, end),), spec.filters)
    return engine.sql.exists_before(q)


def window_dependent(engine: KpiEngine, metric: Metric) -> bool:
    """The KPI depends on the length of its window, not only on what happens in it: a measure has a
    condition on the window's bounds (returning customers: "ordered before the window started")."""
    return any(isinstance(c.value, str) and c.value.startswith("$")
               for m in engine.catalog.measures_of(metric) for c in m.where)


def baseline_of(engine: KpiEngine, spec: GoalSpec, metric: Metric) -> Baseline:
    """The goal's baseline: for additive KPIs the whole same span a year earlier, for rates the window of
    the span's length (at most a year) before the start, or of the current value's 28 days for a KPI
    that depends on its window's length; the goal's own when it gives one."""
    if metric.additive:
        start, end = last_year_span(spec)
    else:
        days = TRAILING_DAYS if window_dependent(engine, metric) else min(spec.days_total, BASELINE_MAX_DAYS)
        start, end = spec.start - timedelta(days=days), spec.start
    if spec.baseline is not None:
        return Baseline(spec.baseline, start, end, given=True)
    v = value_over(engine, spec, start, end)
    complete = not metric.additive or not v.value or history_complete(engine, spec, start)
    return Baseline(v.value, start, end, given=False, sample=v.sample, complete=complete)


def goal_progress(engine: KpiEngine, spec: GoalSpec, *, today: date, tolerance: float = 0.10) -> Progress:
    """The progress of a goal on the local day ``today``: asks the engine, then ``compute_progress``."""
    metric = engine.catalog.metric(spec.metric)
    upto = min(max(today, spec.start), spec.end)  # exclusive end of the complete days the goal reads
    if metric.additive:
        ly_start, ly_end = last_year_span(spec)
        ly_daily = daily_values(engine, spec, ly_start, ly_end)
        baseline = spec.baseline if spec.baseline is not None else sum(v.value or 0.0 for _, v in ly_daily)
        complete = any(v.value for _, v in ly_daily) and history_complete(engine, spec, ly_start)
        last_year = [(d, v.value) for d, v in ly_daily] if complete else []
        expected, kind = expected_share(spec, today, last_year)
        path = expected_path(spec, last_year)  # the projection follows last year's shape too
        running, trajectory = 0.0, []
        for day, v in daily_values(engine, spec, spec.start, upto):
            running += v.value or 0.0
            trajectory.append((day, running))
        current: float | None = running
    else:
        baseline = baseline_of(engine, spec, metric).value
        current = value_over(engine, spec, max(spec.start, upto - timedelta(days=TRAILING_DAYS)), upto).value \
            if upto > spec.start else None
        trajectory = _trailing_trajectory(engine, spec, metric, upto)
        expected, kind, path = None, "linear", None
    return compute_progress(spec, baseline=baseline, current=current, today=today, expected=expected,
                            expected_kind=kind, trajectory=trajectory, higher_is_better=_direction(metric),
                            tolerance=tolerance, additive=metric.additive, path=path)


def _trailing_trajectory(engine: KpiEngine, spec: GoalSpec, metric: Metric, upto: date) -> list[tuple[date, float]]:
    """(day, the KPI over the trailing window ending that day, since the start at most). Ratios of additive
    measures: every day, from the daily numerators and denominators. Other KPIs (distinct counts, running
    totals: a daily series would rescan each day) at ``SAMPLED_POINTS`` evenly spread days, in one query."""
    days = (upto - spec.start).days
    if days <= 0:
        return []
    if metric.type == "ratio" and all(m.additive for m in engine.catalog.measures_of(metric)):
        daily = daily_values(engine, spec, spec.start, upto)
        out = []
        for i, (day, _) in enumerate(daily):
            window = daily[max(0, i - TRAILING_DAYS + 1): i + 1]
            num = sum(v.numerator or 0.0 for _, v in window)
            den = sum(v.denominator or 0.0 for _, v in window)
            if den:
                out.append((day, num / den))
        return out
    step = -(-days // SAMPLED_POINTS)
    ends = [spec.start + timedelta(days=n) for n in range(days, 0, -step)][::-1]
    ranges = [(max(spec.start, end - timedelta(days=TRAILING_DAYS)), end) for end in ends]
    values = [metric_value(engine.catalog, metric, mv).value for mv in measures_over(engine, spec, metric, ranges)]
    return [(end - timedelta(days=1), v) for end, v in zip(ends, values, strict=True) if v is not None]


def _direction(metric) -> bool:
    """The direction a goal moves in when its target and baseline do not say: the KPI's; for a neutral KPI
    (marketing spend), a target is a budget, a ceiling not to pass (as spend's goals always were)."""
    return False if metric.higher_is_better is None else metric.higher_is_better
