"""The SMART check of a goal when it is set: a restatement (Specific), its numbers (Measurable), how
the change it asks for compares with the KPI's history (Achievable / Realistic: warns, never refuses)
and its deadline (Time-bound)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from kpi.i18n import babel_locale, format_decimal, format_percent, lang_of, mid_sentence, tr, trn
from kpi.metrics.catalog import Metric
from kpi.metrics.engine import KpiEngine, metric_value
from kpi.metrics.formatting import dimension_name, format_value, percent_pattern, points

from .measure import Baseline, baseline_of, measures_over
from .progress import TRAILING_DAYS
from .spec import GoalError, GoalSpec, add_months, check_filters, target_value

HISTORY_MONTHS = 24
SMALL_SAMPLE = 100
_EPS = 1e-9


@dataclass(frozen=True)
class SmartCheck:
    specific: str  # one sentence restating the goal
    measurable: str  # baseline and target, formatted, and how each is measured
    achievable: str  # how often a change this large happened in the last 24 months
    time_bound: str  # "deadline 2026-12-31, 36 days left"
    warnings: list[str] = field(default_factory=list)
    baseline: float | None = None
    target: float | None = None
    history_hits: int = 0
    history_windows: int = 0
    required_change: float | None = None  # the change compared with history, in ``change_kind`` terms
    # yoy (additive: relative, a month vs a year earlier) | relative | points (percentages) | absolute (the
    # KPI's own unit: money, counts, ratios)
    change_kind: str = "yoy"
    lag_months: int = 12  # each month is compared with the month this many months earlier


@dataclass(frozen=True)
class History:
    hits: int
    windows: int
    required: float | None
    kind: str
    lag: int  # months between the two months compared
    skipped: int = 0  # pairs left out: the earlier month starts before the KPI's data does


def smart_check(engine: KpiEngine, spec: GoalSpec, *, today: date, lang: str = "en",
                currency: str = "USD") -> SmartCheck:
    """Check a goal as it is set. Raises GoalError when it cannot be measured (deadline over; a relative
    target without a baseline, or a percent of a zero baseline; a target equal to the baseline)."""
    metric = engine.catalog.metric(spec.metric)
    check_filters(engine.catalog, metric, spec.filters)
    if today > spec.deadline:
        raise GoalError("The deadline {deadline} is already over.", "deadline", deadline=spec.deadline)
    base = baseline_of(engine, spec, metric)
    b = base.value
    window = f"{base.start}..{base.end - timedelta(days=1)}"
    if spec.target_kind != "absolute" and b is None:
        raise GoalError("No data for {name} over {window} to compute a baseline: give one "
                        "(for example 'baseline 2.4%') or set an absolute target.", "baseline",
                        name=metric.name, window=window)
    if spec.target_kind == "relative_pct" and b == 0:
        raise GoalError("The baseline of {name} is 0 over {window}: a percent of it means nothing. "
                        "Set an absolute target instead.", "target", name=metric.name, window=window)
    t = target_value(spec, b)
    if b is not None and t == b:
        shown = f"{b:g}"
        raise GoalError("The target equals the baseline ({baseline}): there is nothing to achieve.", "target",
                        baseline=shown)

    lang = lang_of(lang)
    hist = history(engine, spec, metric, b, t, today)

    def fmt(value: float | None) -> str:
        return format_value(value, metric.format, currency=currency, lang=lang)

    warnings = _warnings(metric, spec, base, t, hist, today, lang)
    return SmartCheck(
        specific=_specific(metric, spec, b, t, fmt, lang), measurable=_measurable(metric, spec, base, t, fmt, lang),
        achievable=_achievable(metric, hist, lang, fmt), time_bound=_time_bound(spec, today, lang), warnings=warnings,
        baseline=b, target=t, history_hits=hist.hits, history_windows=hist.windows, required_change=hist.required,
        change_kind=hist.kind, lag_months=hist.lag,
    )


# -- history ---------------------------------------------------------------------------------------


def history(engine: KpiEngine, spec: GoalSpec, metric: Metric, baseline: float | None, target: float | None,
            today: date) -> History:
    """How often the change the goal asks for happened in the last 24 complete months.

    Each of the last 24 complete months against the month ``lag`` months earlier: a year for additive
    KPIs (the change relative, the goal's T ÷ B − 1), the goal's span in whole months (1 to 12) for
    rates and averages (the change relative for a relative_pct goal; otherwise T − B in the KPI's own unit:
    points for percentages, money for an average order value... a month's value, like the trailing value
    a rate goal is judged on, against the value a span earlier). One query of 24 + lag monthly ranges.
    Only windows with complete data count: months without data on either side, and pairs whose earlier
    month starts before the KPI's data does (the engine's ``history_start``: a month holding a few days of
    data would make any change look common), do not."""
    month = today.replace(day=1)
    if metric.additive:
        kind, lag = "yoy", 12
    else:
        kind = "relative" if spec.target_kind == "relative_pct" else (
            "points" if metric.format == "percent" else "absolute")
        lag = min(max(round(spec.days_total / 30.4375), 1), 12)
    difference = kind in ("points", "absolute")
    if baseline is None or target is None or (not difference and baseline <= 0):
        return History(0, 0, None, kind, lag)
    required = target - baseline if difference else target / baseline - 1
    first, n = add_months(month, -(HISTORY_MONTHS + lag)), HISTORY_MONTHS + lag
    months = _months(first, n)
    data_from = history_start(engine, spec, first, month)
    values = [_value(engine, metric, mv) for mv in measures_over(engine, spec, metric, months)]
    changes, skipped = [], 0
    for (start, _), before, after in zip(months[:-lag], values[:-lag], values[lag:], strict=True):
        if data_from is not None and start < data_from:
            skipped += before is not None or after is not None
            continue
        if before is None or after is None or (not difference and before <= 0):
            continue
        changes.append(after - before if difference else after / before - 1)
    hits = sum(1 for c in changes if (c >= required - _EPS if required > 0 else c <= required + _EPS))
    return History(hits, len(changes), required, kind, lag, skipped)


def history_start(engine: KpiEngine, spec: GoalSpec, first: date, end: date) -> date | None:
    """The first local day of the KPI's data, as the engine knows it (cached, no value asked); None when it
    does not say. (A filter that starts later than its table is not seen: its early months count as data.)"""
    start = engine.history_start(spec.metric)
    return start.astimezone(engine.tz).date() if start is not None else None


def _months(first: date, n: int) -> list[tuple[date, date]]:
    return [(add_months(first, i), add_months(first, i + 1)) for i in range(n)]


def _value(engine: KpiEngine, metric: Metric, mv: dict) -> float | None:
    return metric_value(engine.catalog, metric, mv).value


# -- sentences ---------------------------------------------------------------------------------------


def format_change(kind: str, value: float, lang: str, fmt: Callable[[float], str] | None = None) -> str:
    """'+10%' / '−2.5 pt' (French '+10 %' / '−2,5 pt'); kind "absolute" in the KPI's own unit through
    ``fmt`` ('+$5.03')."""
    loc = babel_locale(lang)
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    if kind == "absolute" and fmt is not None:
        return sign + fmt(abs(value))
    if kind == "points":
        return sign + points(format_decimal(abs(value) * 100, format="#,##0.##", locale=loc), lang)
    return sign + format_percent(abs(value), percent_pattern(loc, ".#"), locale=loc)


def goal_change(spec: GoalSpec, metric: Metric, baseline: float | None, target: float | None) -> tuple[str, float] | None:
    """The change a goal asks for, as it would say it: (kind, value)."""
    if spec.target_kind == "relative_pct":
        return "relative", spec.target_value
    if spec.target_kind == "relative_pt":
        return "points", spec.target_value
    if baseline is None or target is None:
        return None
    if metric.format == "percent":
        return "points", target - baseline
    return ("relative", target / baseline - 1) if baseline > 0 else None


def _name(metric: Metric, lang: str) -> str:
    """The KPI's name as it reads in the middle of a sentence ("revenue", "AOV"; German "Umsatz")."""
    return mid_sentence(lang, metric.name(lang))


def _sentence(text: str) -> str:
    """A sentence that may start with a KPI's name starts with a capital."""
    return text[:1].upper() + text[1:]


def filters_text(filters, lang: str) -> str:
    if not filters:
        return ""
    joiner = tr(lang, " or ")
    return " (" + ", ".join(f"{dimension_name(d, lang)} = {joiner.join(v)}" for d, v in filters) + ")"


def _specific(metric: Metric, spec: GoalSpec, b, t, fmt, lang: str) -> str:
    what = _name(metric, lang) + filters_text(spec.filters, lang)
    change = goal_change(spec, metric, b, t)
    values = dict(what=what, target=fmt(t), start=spec.start, deadline=spec.deadline)
    if b is None:
        return _sentence(tr(lang, "Bring {what} to {target} between {start} and {deadline}.", **values))
    values["baseline"] = fmt(b)
    if change:
        values["change"] = format_change(change[0], change[1], lang)
        if t > b:
            text = tr(lang, "Raise {what} from {baseline} to {target} ({change}) between {start} and {deadline}.", **values)
        else:
            text = tr(lang, "Lower {what} from {baseline} to {target} ({change}) between {start} and {deadline}.", **values)
    elif t > b:
        text = tr(lang, "Raise {what} from {baseline} to {target} between {start} and {deadline}.", **values)
    else:
        text = tr(lang, "Lower {what} from {baseline} to {target} between {start} and {deadline}.", **values)
    return _sentence(text)


def _measurable(metric: Metric, spec: GoalSpec, base: Baseline, t, fmt, lang: str) -> str:
    a, z = base.start, base.end - timedelta(days=1)
    if base.given:
        how = tr(lang, "as given")
    elif base.value is None:
        how = tr(lang, "no data")
    elif metric.additive:
        how = tr(lang, "the same span a year earlier, {start} to {end}", start=a, end=z)
    else:
        days = (base.end - base.start).days
        how = tr(lang, "the {days} days before the start, {start} to {end}", days=days, start=a, end=z)
    if metric.additive:
        what = tr(lang, "the total over the whole span, followed day by day against last year")
    else:
        what = tr(lang, "the value over the trailing {days} days", days=TRAILING_DAYS)
    return tr(lang, "Baseline {baseline} ({how}); target {target} ({what}).", baseline=fmt(base.value), how=how,
              target=fmt(t), what=what)


def _achievable(metric: Metric, hist: History, lang: str, fmt: Callable[[float], str]) -> str:
    name = _name(metric, lang)
    if hist.required is None or hist.windows == 0:
        return tr(lang, "not enough history to compare with: no comparable months in the last {months} months",
                  months=HISTORY_MONTHS)
    kind = hist.kind if hist.kind in ("points", "absolute") else "relative"
    values = dict(change=format_change(kind, hist.required, lang, fmt), name=name, hits=hist.hits,
                  windows=hist.windows)
    if hist.kind == "yoy":
        if hist.hits == 0:
            return tr(lang, "a {change} year-on-year change in {name} never happened in the last {windows} months: "
                            "an ambitious goal", **values)
        return tr(lang, "a {change} year-on-year change (or larger) in {name} happened in {hits} of the last "
                        "{windows} months", **values)
    if hist.hits == 0:
        return trn(lang, "a {change} change over {n} month in {name} never happened in the last {windows} months: "
                         "an ambitious goal",
                   "a {change} change over {n} months in {name} never happened in the last {windows} months: "
                   "an ambitious goal", hist.lag, **values)
    return trn(lang, "a {change} change over {n} month (or larger) in {name} happened in {hits} of the last "
                     "{windows} months",
               "a {change} change over {n} months (or larger) in {name} happened in {hits} of the last "
               "{windows} months", hist.lag, **values)


def _time_bound(spec: GoalSpec, today: date, lang: str) -> str:
    if today < spec.start:
        return trn(lang, "starts {start}, deadline {deadline} ({n} day)", "starts {start}, deadline {deadline} ({n} days)",
                   spec.days_total, start=spec.start, deadline=spec.deadline)
    left = (spec.deadline - today).days  # whole days after today
    if left == 0:
        return tr(lang, "deadline today ({deadline})", deadline=spec.deadline)
    return trn(lang, "deadline {deadline}, {n} day left", "deadline {deadline}, {n} days left", left,
               deadline=spec.deadline)


def _warnings(metric: Metric, spec: GoalSpec, base: Baseline, t, hist: History, today: date, lang: str) -> list[str]:
    name = _name(metric, lang)
    out = []
    if hist.required is None or hist.windows == 0:
        out.append(tr(lang, "Not enough history to tell whether the target is realistic."))
    elif hist.hits == 0:
        out.append(tr(lang, "A change this large never happened in the last {windows} months: the goal is ambitious.",
                      windows=hist.windows))
    b = base.value
    # a neutral KPI (marketing spend) has no wrong way: its target is a plan, not a judgement
    if b is not None and t is not None and metric.higher_is_better is not None and (t > b) != metric.higher_is_better:
        if metric.higher_is_better:
            out.append(tr(lang, "The target takes {name} the wrong way (higher is better).", name=name))
        else:
            out.append(tr(lang, "The target takes {name} the wrong way (lower is better).", name=name))
    if not base.given and b and not base.complete:
        out.append(tr(lang, "The data starts after {start}: the baseline does not cover the whole span and may be "
                            "too low.", start=base.start))
    if not base.given and base.end > today + timedelta(days=1):  # today itself is only partial anyway
        out.append(tr(lang, "The baseline window is not over (it runs to {end}): it counts only the days so far.",
                      end=base.end - timedelta(days=1)))
    if not base.given and not metric.additive and base.sample is not None and base.sample < SMALL_SAMPLE:
        n = format_decimal(round(base.sample), locale=babel_locale(lang))
        out.append(tr(lang, "The baseline rests on a small sample ({sample}).", sample=n))
    return out
