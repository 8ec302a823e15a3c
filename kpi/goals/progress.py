"""Progress of a goal on a day, from numbers already measured: a pure function (see the package
docstring for the definitions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from .spec import GoalSpec, days_elapsed, last_year_span, target_value, year_earlier

TRAILING_DAYS = 28  # the window of a rate's "current" value
BASELINE_MAX_DAYS = 365  # a rate's baseline window: the span's length, at most a year
MIN_POINTS = 7  # fewer points: no projection
Z95 = 1.96
PACE_DAYS = 30
STATUSES = ("achieved", "on_track", "at_risk", "off_track", "missed", "no_data")
_EPS = 1e-9


@dataclass(frozen=True)
class Progress:
    baseline: float | None  # B: additive, the whole span a year earlier; rates, the window before the start
    current: float | None  # additive: the running total since the start; rates: the trailing window's value
    target: float | None
    progress: float | None  # where it is: additive current / target; rates (current - baseline) / (target - baseline)
    expected: float  # where it should be by now, on the same scale: the expected share, 0..1 (seasonal or linear)
    expected_kind: str  # "seasonal" | "linear"
    status: str  # one of STATUSES
    projection: float | None  # where it is heading: the value projected at the deadline (frozen: the final value)
    projection_low: float | None
    projection_high: float | None
    days_elapsed: int
    days_total: int
    days_left: int  # whole days after today up to the deadline (0 on the deadline day; today is in progress)
    pace_needed: float | None  # change per 30 days needed from now to reach the target, in KPI units
    pace_actual: float | None  # change per 30 days observed since the start, in KPI units
    frozen: bool  # the deadline is over: final value, achieved or missed
    current_window: str  # "since start" | "trailing 28 days"
    baseline_to_date: float | None = None  # additive: baseline × expected (last year to the same day); rates: B
    expected_value: float | None = None  # where the KPI would be on pace: additive T × expected, rates B + (T-B) × x
    pace_needed_relative: float | None = None  # additive: vs last year over the days left; rates: ÷ |B|
    pace_actual_relative: float | None = None  # additive: vs last year to date; rates: ÷ |B|
    additive: bool = False


def linear_expected(spec: GoalSpec, today: date) -> float:
    """Days elapsed ÷ days in the span (local dates: a 23-hour day is one day)."""
    return days_elapsed(spec, today) / spec.days_total


def expected_share(spec: GoalSpec, today: date, last_year_daily: Sequence[tuple[date, float | None]]) -> tuple[float, str]:
    """(expected, kind): last year's share of its same-span total accumulated before the same day
    (``today`` a year earlier) when ``last_year_daily`` covers every day of last year's span with a
    positive total, "seasonal"; otherwise the linear share, "linear"."""
    ly_start, ly_end = last_year_span(spec)
    values = dict(last_year_daily)
    days = [ly_start + timedelta(days=i) for i in range((ly_end - ly_start).days)]
    if not days or any(values.get(d) is None for d in days):
        return linear_expected(spec, today), "linear"
    total = sum(values[d] for d in days)
    if total <= 0:
        return linear_expected(spec, today), "linear"
    elapsed = days_elapsed(spec, today)
    if elapsed in (0, spec.days_total):
        return float(elapsed == spec.days_total), "seasonal"
    cutoff = year_earlier(spec.start + timedelta(days=elapsed))
    return min(max(sum(values[d] for d in days if d < cutoff) / total, 0.0), 1.0), "seasonal"


def seasonal_expected(spec: GoalSpec, today: date, last_year_daily: Sequence[tuple[date, float | None]]) -> float:
    """Share of last year's same-span total accumulated by the same day; linear when history is incomplete."""
    return expected_share(spec, today, last_year_daily)[0]


def expected_path(spec: GoalSpec, last_year_daily: Sequence[tuple[date, float | None]]) -> Callable[[date], float]:
    """x(day): the expected share at the end of ``day``, i.e. ``expected_share(spec, day + 1 day)``, for every
    day at once: last year's share accumulated before the same day a year later when every day of last
    year's span has a value and their total is positive, else linear."""
    ly_start, ly_end = last_year_span(spec)
    values = dict(last_year_daily)
    days = [ly_start + timedelta(days=i) for i in range((ly_end - ly_start).days)]
    total = sum(values[d] or 0.0 for d in days) if days and all(values.get(d) is not None for d in days) else 0.0
    if total <= 0:
        return lambda day: min(max(((day - spec.start).days + 1) / spec.days_total, 0.0), 1.0)
    cumulative, running = {}, 0.0
    for d in days:
        cumulative[d] = running  # the total before d
        running += values[d] or 0.0

    def share(day: date) -> float:
        elapsed = (day - spec.start).days + 1
        if elapsed >= spec.days_total:
            return 1.0
        cutoff = year_earlier(spec.start + timedelta(days=elapsed))
        before = cumulative.get(cutoff, running if cutoff >= ly_end else 0.0)
        return min(max(before / total, 0.0), 1.0)

    return share


def project(points: Sequence[tuple[float, float]], at: float) -> tuple[float | None, float | None, float | None]:
    """Least squares line through (x, y), evaluated at ``at``, with its 95% prediction interval
    (± 1.96 × s × √(1 + 1/n + (at − x̄)² / Sxx), s the residual standard deviation). Nones with fewer
    than ``MIN_POINTS`` points."""
    n = len(points)
    if n < MIN_POINTS:
        return None, None, None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None, None, None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    icpt = my - slope * mx
    ssr = sum((y - icpt - slope * x) ** 2 for x, y in points)
    s = math.sqrt(ssr / (n - 2))
    value = icpt + slope * at
    half = Z95 * s * math.sqrt(1 + 1 / n + (at - mx) ** 2 / sxx)
    return value, value - half, value + half


def project_total(points: Sequence[tuple[float, float]], remaining: int) -> tuple[float | None, float | None, float | None]:
    """A running total at the deadline, from (x, y): the expected share at the end of each day so far and
    the running total then. The pace so far along the expected path, continued: k = y_n ÷ x_n, the value
    k (the total if the rest of the span goes as it has so far; with a linear path, y_n × days_total ÷
    days_elapsed). Its 95% range from how each step's amount a_i strays from k × w_i (w_i its share of the
    path): s² = Σ(a_i − k w_i)² ÷ (n − 1), ± 1.96 × s × √(m + n × ((1 − x_n) ÷ x_n)²), m the ``remaining``
    days (the noise still to come, and the uncertainty of k carried over the rest of the path). Nones with
    fewer than ``MIN_POINTS`` points or nothing expected yet (x_n = 0)."""
    n = len(points)
    if n < MIN_POINTS:
        return None, None, None
    x_n, y_n = points[-1]
    if x_n <= 0:
        return None, None, None
    k = y_n / x_n
    steps, prev_x, prev_y = [], 0.0, 0.0
    for x, y in points:
        steps.append((y - prev_y) - k * (x - prev_x))
        prev_x, prev_y = x, y
    s = math.sqrt(sum(e * e for e in steps) / (n - 1))
    half = Z95 * s * math.sqrt(max(remaining, 0) + n * ((1 - x_n) / x_n) ** 2) if x_n < 1 else 0.0
    growing = all(y >= p for (_, p), (_, y) in zip([(0.0, 0.0), *points], points, strict=False))
    return k, max(k - half, y_n) if growing else k - half, k + half  # a total that only grows stays above y_n


def compute_progress(spec: GoalSpec, *, baseline: float | None, current: float | None, today: date,
                     expected: float | None = None, expected_kind: str = "linear",
                     trajectory: Sequence[tuple[date, float | None]] = (), higher_is_better: bool = True,
                     tolerance: float = 0.10, additive: bool = False,
                     path: Callable[[date], float] | None = None) -> Progress:
    """The progress of ``spec`` on the local day ``today`` from measured numbers (nothing is read here).

    ``current`` is measured up to ``min(today, deadline + 1)`` (exclusive); ``expected`` defaults to the
    linear share; ``trajectory`` is (day, value at the end of that day): running totals for additive
    KPIs, trailing values for rates; ``path`` is the expected share at the end of a day (``expected_path``:
    last year's seasonal shape), the axis the projection is drawn along (linear by default)."""
    total = spec.days_total
    elapsed = days_elapsed(spec, today)
    left = min(max((spec.deadline - today).days, 0), total)
    remaining = total - elapsed  # the days whose data is still to come, today's included
    frozen = today > spec.deadline
    if frozen or elapsed == 0:
        expected = float(frozen)
    elif expected is None:
        expected, expected_kind = elapsed / total, "linear"
    target = target_value(spec, baseline)
    base_now = None if baseline is None else (baseline * expected if additive else baseline)

    progress = expected_value = None
    if additive and target is not None:
        expected_value = target * expected
        if current is not None and target > 0:
            progress = current / target
    elif not additive and baseline is not None and target is not None:
        expected_value = baseline + (target - baseline) * expected
        if current is not None and target != baseline:
            progress = (current - baseline) / (target - baseline)
    up = target > baseline if None not in (target, baseline) and target != baseline else higher_is_better

    if frozen:
        projection, low, high = current, None, None
    else:
        x_of = path or (lambda d: ((d - spec.start).days + 1) / total)
        points = sorted((x_of(d), v) for d, v in trajectory if v is not None)
        projection, low, high = project_total(points, remaining) if additive else project(points, 1.0)

    status = _status(current=current, target=target, baseline=baseline, progress=progress, expected=expected,
                     projection=(projection, low, high), up=up, additive=additive, frozen=frozen,
                     started=elapsed > 0, tolerance=tolerance)

    pace_needed = pace_actual = needed_rel = actual_rel = None
    if elapsed > 0 and current is not None:
        if additive:
            pace_actual = current / elapsed * PACE_DAYS
            if baseline and baseline * expected > 0:
                actual_rel = current / (baseline * expected) - 1
        elif baseline is not None:
            pace_actual = (current - baseline) / elapsed * PACE_DAYS
            actual_rel = pace_actual / abs(baseline) if baseline else None
        if not frozen and target is not None:
            pace_needed = (target - current) / remaining * PACE_DAYS
            if additive and baseline and baseline * (1 - expected) > 0:
                needed_rel = (target - current) / (baseline * (1 - expected)) - 1
            elif not additive and baseline:
                needed_rel = pace_needed / abs(baseline)

    window = "since start" if additive or elapsed < TRAILING_DAYS else f"trailing {TRAILING_DAYS} days"
    return Progress(
        baseline=baseline, current=current, target=target, progress=progress, expected=expected,
        expected_kind=expected_kind, status=status, projection=projection, projection_low=low,
        projection_high=high, days_elapsed=elapsed, days_total=total, days_left=left, pace_needed=pace_needed,
        pace_actual=pace_actual, frozen=frozen, current_window=window, baseline_to_date=base_now,
        expected_value=expected_value, pace_needed_relative=needed_rel, pace_actual_relative=actual_rel,
        additive=additive,
    )


def _reaches(value: float, target: float, up: bool) -> bool:
    slack = _EPS * max(1.0, abs(target))
    return value >= target - slack if up else value <= target + slack


def _status(*, current, target, baseline, progress, expected, projection, up, additive, frozen, started,
            tolerance) -> str:
    """The status, from the figures shown with it (see the package docstring)."""
    if current is None or target is None:
        return "no_data"
    reached = _reaches(current, target, up)
    if frozen:
        return "achieved" if reached else "missed"
    if not started:
        return "no_data"  # nothing measured yet: waiting for data, never "on track"
    if reached and (up or not additive):  # a running total under a ceiling is decided at the deadline
        return "achieved"
    value, low, high = projection
    if value is not None:
        if _reaches(value, target, up):
            return "on_track"
        edge = high if up else low
        return "at_risk" if edge is not None and _reaches(edge, target, up) else "off_track"
    if progress is None or baseline is None:
        return "no_data"
    if additive:  # the running total against where it should be: short of it by at most 10% is on track
        ahead = (progress / expected - 1 if up else 1 - progress / expected) if expected > 0 else 0.0
    else:  # a rate: the share of the way from the baseline to the target against the share of the span
        ahead = progress - expected
    if ahead >= -tolerance - _EPS:
        return "on_track"
    return "at_risk" if ahead >= -2 * tolerance - _EPS else "off_track"
