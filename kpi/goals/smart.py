"""The SMART check of a goal when it is set: a restatement (Specific), its numbers (Measurable), how
the change it asks for compares with the KPI's history (Achievable / Realistic: warns, never refuses)
and its deadline (Time-bound)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from babel.numbers import format_decimal, format_percent

from kpi.metrics.catalog import Metric
from kpi.metrics.engine import KpiEngine, metric_value
from kpi.metrics.formatting import DIMENSION_WORDS, babel_locale, format_value, lang_of

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
    change_kind: str = "yoy"  # yoy (additive: relative, a month vs a year earlier) | relative | points
    lag_months: int = 12  # each month is compared with the month this many months earlier


@dataclass(frozen=True)
class History:
    hits: int
    windows: int
    required: float | None
    kind: str
    lag: int  # months between the two months compared


def smart_check(engine: KpiEngine, spec: GoalSpec, *, today: date, lang: str = "en",
                currency: str = "USD") -> SmartCheck:
    """Check a goal as it is set. Raises GoalError when it cannot be measured (deadline over; a relative
    target without a baseline, or a percent of a zero baseline; a target equal to the baseline)."""
    metric = engine.catalog.metric(spec.metric)
    check_filters(engine.catalog, metric, spec.filters)
    if today > spec.deadline:
        raise GoalError(f"The deadline {spec.deadline} is already over.", "deadline")
    base = baseline_of(engine, spec, metric)
    b = base.value
    window = f"{base.start}..{base.end - timedelta(days=1)}"
    if spec.target_kind != "absolute" and b is None:
        raise GoalError(f"No data for {metric.name()} over {window} to compute a baseline: give one "
                        f"(for example 'baseline 2.4%') or set an absolute target.", "baseline")
    if spec.target_kind == "relative_pct" and b == 0:
        raise GoalError(f"The baseline of {metric.name()} is 0 over {window}: a percent of it means nothing. "
                        f"Set an absolute target instead.", "target")
    t = target_value(spec, b)
    if b is not None and t == b:
        raise GoalError(f"The target equals the baseline ({b:g}): there is nothing to achieve.", "target")

    lang = lang_of(lang)
    hist = history(engine, spec, metric, b, t, today)

    def fmt(value: float | None) -> str:
        return format_value(value, metric.format, currency=currency, lang=lang)

    warnings = _warnings(metric, spec, base, t, hist, today, lang)
    return SmartCheck(
        specific=_specific(metric, spec, b, t, fmt, lang), measurable=_measurable(metric, spec, base, t, fmt, lang),
        achievable=_achievable(metric, hist, lang), time_bound=_time_bound(spec, today, lang), warnings=warnings,
        baseline=b, target=t, history_hits=hist.hits, history_windows=hist.windows, required_change=hist.required,
        change_kind=hist.kind, lag_months=hist.lag,
    )


# -- history ---------------------------------------------------------------------------------------


def history(engine: KpiEngine, spec: GoalSpec, metric: Metric, baseline: float | None, target: float | None,
            today: date) -> History:
    """How often the change the goal asks for happened in the last 24 complete months.

    Each of the last 24 complete months against the month ``lag`` months earlier: a year for additive
    KPIs (the change relative, the goal's T ÷ B − 1), the goal's span in whole months (1 to 12) for
    rates and averages (the change relative for a relative_pct goal, in points T − B otherwise: a month's
    value, like the trailing value a rate goal is judged on, against the value a span earlier). One query
    of 24 + lag monthly ranges. Months without data on either side do not count."""
    month = today.replace(day=1)
    if metric.additive:
        kind, lag = "yoy", 12
    else:
        kind = "relative" if spec.target_kind == "relative_pct" else "points"
        lag = min(max(round(spec.days_total / 30.4375), 1), 12)
    if baseline is None or target is None or (kind != "points" and baseline <= 0):
        return History(0, 0, None, kind, lag)
    required = target - baseline if kind == "points" else target / baseline - 1
    first, n = add_months(month, -(HISTORY_MONTHS + lag)), HISTORY_MONTHS + lag
    values = [_value(engine, metric, mv) for mv in measures_over(engine, spec, metric, _months(first, n))]
    changes = []
    for before, after in zip(values[:-lag], values[lag:], strict=True):
        if before is None or after is None or (kind != "points" and before <= 0):
            continue
        changes.append(after - before if kind == "points" else after / before - 1)
    hits = sum(1 for c in changes if (c >= required - _EPS if required > 0 else c <= required + _EPS))
    return History(hits, len(changes), required, kind, lag)


def _months(first: date, n: int) -> list[tuple[date, date]]:
    return [(add_months(first, i), add_months(first, i + 1)) for i in range(n)]


def _value(engine: KpiEngine, metric: Metric, mv: dict) -> float | None:
    return metric_value(engine.catalog, metric, mv).value


# -- sentences ---------------------------------------------------------------------------------------


def format_change(kind: str, value: float, lang: str) -> str:
    """'+10%' / '−2.5 pt' (French '+10 %' / '−2,5 pt')."""
    loc = babel_locale(lang)
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    if kind == "points":
        return f"{sign}{format_decimal(abs(value) * 100, format='#,##0.##', locale=loc)} pt"
    return sign + format_percent(abs(value), "#,##0.#%" if lang == "en" else "#,##0.# %", locale=loc)


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


def _name(metric: Metric, lang: str, *, capital: bool = False) -> str:
    n = metric.name(lang)
    if capital:
        return n[:1].upper() + n[1:]
    return n[:1].lower() + n[1:] if len(n) > 1 and n[1].islower() else n


def filters_text(filters, lang: str) -> str:
    if not filters:
        return ""
    words = DIMENSION_WORDS.get(lang, {})
    joiner = " ou " if lang == "fr" else " or "
    return " (" + ", ".join(f"{words.get(d, d)} = {joiner.join(v)}" for d, v in filters) + ")"


def _specific(metric: Metric, spec: GoalSpec, b, t, fmt, lang: str) -> str:
    fr = lang == "fr"
    what = _name(metric, lang, capital=fr) + filters_text(spec.filters, lang)
    when = f"entre le {spec.start} et le {spec.deadline}" if fr else f"between {spec.start} and {spec.deadline}"
    change = goal_change(spec, metric, b, t)
    chg = f" ({format_change(change[0], change[1], lang)})" if change else ""
    if b is None:
        return f"{what} : atteindre {fmt(t)} {when}." if fr else f"Bring {what} to {fmt(t)} {when}."
    if fr:
        return f"{what} : de {fmt(b)} à {fmt(t)}{chg} {when}."
    return f"{'Raise' if t > b else 'Lower'} {what} from {fmt(b)} to {fmt(t)}{chg} {when}."


def _measurable(metric: Metric, spec: GoalSpec, base: Baseline, t, fmt, lang: str) -> str:
    fr = lang == "fr"
    a, z = base.start, base.end - timedelta(days=1)
    if base.given:
        how = "donnée" if fr else "as given"
    elif base.value is None:
        how = "pas de données" if fr else "no data"
    elif metric.additive:
        how = f"la même période un an plus tôt, du {a} au {z}" if fr else f"the same span a year earlier, {a} to {z}"
    else:
        days = (base.end - base.start).days
        how = f"les {days} jours avant le début, du {a} au {z}" if fr else f"the {days} days before the start, {a} to {z}"
    if metric.additive:
        what = ("le total sur toute la période, suivi jour par jour face à l'an dernier" if fr
                else "the total over the whole span, followed day by day against last year")
    else:
        what = (f"la valeur sur les {TRAILING_DAYS} derniers jours" if fr
                else f"the value over the trailing {TRAILING_DAYS} days")
    if fr:
        return f"Référence {fmt(base.value)} ({how}) ; cible {fmt(t)} ({what})."
    return f"Baseline {fmt(base.value)} ({how}); target {fmt(t)} ({what})."


def _achievable(metric: Metric, hist: History, lang: str) -> str:
    fr = lang == "fr"
    name = _name(metric, lang)
    if hist.required is None or hist.windows == 0:
        return (f"pas assez d'historique pour comparer : aucune période comparable sur les {HISTORY_MONTHS} derniers mois"
                if fr else f"not enough history to compare with: no comparable months in the last {HISTORY_MONTHS} months")
    chg = format_change("points" if hist.kind == "points" else "relative", hist.required, lang)
    if fr:
        over = "sur un an" if hist.kind == "yoy" else f"en {hist.lag} mois"
        if hist.hits == 0:
            return f"une variation de {chg} {over} ({name}) n'est jamais arrivée sur les {hist.windows} derniers mois : un objectif ambitieux"
        return f"une variation de {chg} ou plus {over} ({name}) est arrivée {hist.hits} fois sur les {hist.windows} derniers mois"
    what = (f"a {chg} year-on-year change" if hist.kind == "yoy"
            else f"a {chg} change over {hist.lag} month{'s' if hist.lag > 1 else ''}")
    if hist.hits == 0:
        return f"{what} in {name} never happened in the last {hist.windows} months: an ambitious goal"
    return f"{what} (or larger) in {name} happened in {hist.hits} of the last {hist.windows} months"


def _time_bound(spec: GoalSpec, today: date, lang: str) -> str:
    fr = lang == "fr"
    if today < spec.start:
        n = spec.days_total
        return (f"début le {spec.start}, échéance le {spec.deadline} ({n} jour{'s' if n > 1 else ''})" if fr
                else f"starts {spec.start}, deadline {spec.deadline} ({n} day{'s' if n > 1 else ''})")
    left = (spec.deadline - today).days  # whole days after today
    if left == 0:
        return f"échéance aujourd'hui ({spec.deadline})" if fr else f"deadline today ({spec.deadline})"
    return (f"échéance le {spec.deadline}, {left} jour{'s' if left > 1 else ''} restant{'s' if left > 1 else ''}" if fr
            else f"deadline {spec.deadline}, {left} day{'s' if left > 1 else ''} left")


def _warnings(metric: Metric, spec: GoalSpec, base: Baseline, t, hist: History, today: date, lang: str) -> list[str]:
    fr = lang == "fr"
    name = _name(metric, lang)
    out = []
    if hist.required is None or hist.windows == 0:
        out.append("Pas assez d'historique pour dire si la cible est réaliste." if fr
                   else "Not enough history to tell whether the target is realistic.")
    elif hist.hits == 0:
        out.append(f"Un tel changement n'est jamais arrivé sur les {hist.windows} derniers mois : l'objectif est ambitieux."
                   if fr else f"A change this large never happened in the last {hist.windows} months: the goal is ambitious.")
    b = base.value
    if b is not None and t is not None and (t > b) != metric.higher_is_better:
        better = ("plus haut" if metric.higher_is_better else "plus bas") if fr else ("higher" if metric.higher_is_better else "lower")
        out.append(f"La cible fait évoluer {name} dans le mauvais sens ({better} est mieux)." if fr
                   else f"The target takes {name} the wrong way ({better} is better).")
    if not base.given and b and not base.complete:
        out.append(f"Les données commencent après le {base.start} : la référence ne couvre pas toute la période et peut être trop basse."
                   if fr else f"The data starts after {base.start}: the baseline does not cover the whole span and may be too low.")
    if not base.given and base.end > today + timedelta(days=1):  # today itself is only partial anyway
        out.append(f"La période de référence n'est pas finie (elle va jusqu'au {base.end - timedelta(days=1)}) : elle ne compte que les jours passés."
                   if fr else f"The baseline window is not over (it runs to {base.end - timedelta(days=1)}): it counts only the days so far.")
    if not base.given and not metric.additive and base.sample is not None and base.sample < SMALL_SAMPLE:
        n = format_decimal(round(base.sample), locale=babel_locale(lang))
        out.append(f"La référence repose sur un petit échantillon ({n})." if fr
                   else f"The baseline rests on a small sample ({n}).")
    return out
