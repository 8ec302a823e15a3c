"""The KPI engine: a request (KPI, period, comparison, filters, breakdown, granularity) in, plain data out.

The SQL lives in ``kpi.metrics.sql``; this module turns measure aggregates into KPI values (ratios divide after
the aggregates come back, a zero or absent denominator is "no data"), comparisons, series and
breakdowns. Time is injected through ``clock`` so that tests, goals and alerts can fix "now".

Like for like: the data's edges (newest and oldest rows, cached) are read first; a period that is not over
is cut at the "as of", its comparison covers the same span to the same time of day, and the change is tested
(``kpi.metrics.significance``) with the history it needs asked in the same statement as the rest.

One module: the request, the result, and the plan that puts the period, its comparison, the series and the
history into one statement and reads them back by position are one piece of logic; split, the positions
would have to be agreed across files.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from kpi.errors import CatalogError, KpiUnavailable, NonNumericValues, QueryError, UnknownDimension

from .catalog import Catalog, Metric, evaluate, expression_names
from .days import unit_start
from .model import Horizon, Note, division_of, source_columns
from .periods import GRANULARITIES, Period
from .significance import (
    HISTORY_DAYS,
    HISTORY_PERIODS,
    MIN_HISTORY,
    Significance,
    history_band,
    is_proportion,
    two_proportions,
)
from .sql import MeasureQuery, SqlLayer, TimeRange, Values

COMPARISONS = ("previous", "year")
OTHER = "other"
# seconds the source's tables and columns are trusted: a missing one is looked for again this often (a source
# fixed while the bot runs brings its KPIs back without a restart); a complete source is looked at again rarely
SCHEMA_TTL_MISSING = 30.0
SCHEMA_TTL = 600.0

log = logging.getLogger("kpibot.engine")


@dataclass(frozen=True)
class KpiRequest:
    metric: str
    period: Period
    compare: str | None = "previous"  # previous | year | None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (dimension, values)
    breakdown: str | None = None
    granularity: str | None = None  # day | week | month; None: chosen from the period's length
    top: int = 10
    series: bool = True


@dataclass(frozen=True)
class Value:
    value: float | None  # None: no data (zero or absent denominator)
    numerator: float | None = None
    denominator: float | None = None
    sample: float | None = None


@dataclass(frozen=True)
class Change:
    absolute: float | None  # current - comparison (for percentages: a fraction, x100 for points)
    relative: float | None  # (current - comparison) / |comparison|
    good: bool | None  # True when the change goes the KPI's right way; None when flat, unknown or not significant
    significance: Significance | None = None  # None: not tested (too little history, no counts)


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    end: datetime
    value: Value
    complete: bool = True  # False: the bucket is cut short by the data's "as of" (today so far, this week so far)


@dataclass(frozen=True)
class BreakdownRow:
    key: str  # the dimension value, or "other"
    value: Value
    comparison: Value | None = None
    change: Change | None = None
    share: float | None = None  # share of the total sample (or of the total, for additive KPIs)
    is_other: bool = False  # the row that sums up every group beyond the top N


@dataclass(frozen=True)
class KpiResult:
    metric: Metric
    period: Period
    current: Value
    compare: str | None = None
    comparison_period: Period | None = None
    comparison: Value | None = None
    change: Change | None = None
    series: list[SeriesPoint] = field(default_factory=list)
    # the comparison period's series, aligned with ``series`` point by point (empty without a comparison)
    comparison_series: list[SeriesPoint] = field(default_factory=list)
    granularity: str | None = None
    breakdown_by: str | None = None
    breakdown: list[BreakdownRow] = field(default_factory=list)
    breakdown_total_groups: int = 0
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    as_of: datetime | None = None  # the data is complete up to here (oldest of the newest rows)
    history_start: datetime | None = None  # the data starts here (latest of the first rows of the KPI's tables)
    daily: bool = False  # the KPI reads a daily table: a day is only there once it is over
    asked_at: datetime | None = None  # the engine's "now" when the question was answered
    # what the value leaves out, when the period had any: (the catalog's note, its measure's value), such as
    # 12 zero-value orders left out of AOV, or 42 guest orders left out of a customer KPI
    notes: tuple[tuple[Note, float], ...] = ()
    # a KPI over a horizon (12-month CLV) whose period's cohort has not had it yet: the data it needs (up to here)
    needs_data_until: datetime | None = None
    horizon: Horizon | None = None  # the KPI's horizon (12 months after a customer's first order), if it has one

    @property
    def partial_history(self) -> bool:
        """The period starts before the data does: the value covers only part of it."""
        return self.history_start is not None and self.period.start < self.history_start < self.period.end

    @property
    def comparison_partial(self) -> bool:
        """The comparison period starts before the data does: its value is not comparable (no verdict)."""
        return (self.comparison_period is not None and self.history_start is not None
                and self.comparison_period.start < self.history_start)

    @property
    def stale(self) -> bool:
        """The source is more than a day behind where the period wants it (a feed stopped, or an import is
        late): behind the period's end, or, for a period cut at the "as of", behind the time it was asked."""
        if self.as_of is None:
            return True
        wanted = self.period.end
        if self.asked_at is not None:
            wanted = max(wanted, min(self.period.full_end, self.asked_at))
        return self.as_of < wanted - timedelta(days=1)


# the resolution a KPI is shown at: 0.1 pt for percentages, cents for money, units for counts
SHOWN_AT = {"percent": Decimal("0.001"), "currency": Decimal("0.01"), "count": Decimal("1"), "ratio": Decimal("0.01")}


def shown(value: float, fmt: str) -> Decimal:
    """The value as people read it (rounded half up at the format's resolution), exactly."""
    quantum = SHOWN_AT.get(fmt)
    exact = Decimal(repr(value))
    return exact if quantum is None else exact.quantize(quantum, rounding=ROUND_HALF_UP)


def change_between(metric: Metric, current: Value, previous: Value | None,
                   moves: Sequence[float | None] = ()) -> Change | None:
    """The change between two values as they are shown: 72.7% against 72.8% is −0.1 pt, the difference of
    what the reader sees; values that show the same are no change (no arrow, no verdict). The change is tested
    (a proportion on its counts, anything else against ``moves``, the same change in recent history); one that
    is within normal variation keeps its arrow but gets no verdict."""
    if previous is None:
        return None
    a, b = current.value, previous.value
    if a is None or b is None:
        return Change(None, None, None)
    diff = float(shown(a, metric.format) - shown(b, metric.format))
    if diff == 0:
        return Change(0.0, 0.0 if b != 0 else None, None)
    rel = (a - b) / abs(b) if b != 0 else None  # the true relative change: a rounded base would distort it
    test = None
    if _proportion_kpi(metric):
        if is_proportion(metric.format, metric.type, current.numerator, current.denominator) and is_proportion(
                metric.format, metric.type, previous.numerator, previous.denominator):
            test = two_proportions(current.numerator, current.denominator, previous.numerator, previous.denominator)
    else:
        test = history_band(a, b, moves)
    good = None
    if metric.higher_is_better is not None and (test is None or test.significant):  # neutral: never good nor bad
        good = (diff > 0) == metric.higher_is_better
    return Change(diff, rel, good, test)


def _row_change(metric: Metric, current: Value, previous: Value | None) -> Change | None:
    """A breakdown row's change: a rate of counts is tested on the group's counts; other KPIs have no history
    per group, so a group's change carries no verdict (the headline's may)."""
    change = change_between(metric, current, previous)
    if change is not None and change.significance is None and not _proportion_kpi(metric):
        change = replace(change, good=None)
    return change


def _proportion_kpi(metric: Metric) -> bool:
    """A rate of counts (conversion, return rate...): tested as two proportions."""
    return metric.format == "percent" and metric.type == "ratio" and metric.of_counts


def _covered(rows: list[BreakdownRow], period: Period, cmp_period: Period | None,
             history: datetime | None) -> list[BreakdownRow]:
    """Breakdown rows under the headline's coverage rules: a group is no data before the data starts, and
    its change against a comparison the data does not fully cover gets no verdict (nor a value when the
    comparison is wholly before the data)."""
    if history is None:
        return rows
    out = []
    for r in rows:
        if period.end <= history:
            r = replace(r, value=_before_data(r.value, period.end, history),
                        change=Change(None, None, None) if r.change else None)
        if cmp_period is not None and r.comparison is not None:
            if cmp_period.end <= history:
                r = replace(r, comparison=_before_data(r.comparison, cmp_period.end, history),
                            change=Change(None, None, None))
            elif cmp_period.start < history and r.change is not None:
                r = replace(r, change=replace(r.change, good=None))
        out.append(r)
    return out


def _before_data(value: Value, end: datetime, history: datetime | None) -> Value:
    """A value over a range that ends before the data starts is no data, never 0 (one rule for the headline,
    its comparison, series points and breakdown rows)."""
    return replace(value, value=None) if history is not None and end <= history else value


def _history_measures(measures) -> list:
    """The measures whose tables say where a KPI's history starts: the continuous feeds over the period
    (occasional events start whenever they start)."""
    feeds = [m for m in measures if not m.sparse] or list(measures)
    return [m for m in feeds if m.window == "period"] or [m for m in measures if m.window == "period"]


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _next_minute(moment: datetime) -> datetime:
    """The end of the minute a row fell in (in UTC: arithmetic on local times loses the DST fold): a range
    ending there holds the row."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def _complete(period: Period, granularity: str | None, end: datetime) -> bool:
    """A series bucket is complete unless it is the last one and stops inside its unit: cut by the data's "as
    of" (today so far), or by the period's end (the 3 days of this week in "last 3 months")."""
    if end != period.end or granularity is None:
        return True
    local = end.date()
    if end.timetz().replace(tzinfo=None) != time(0):
        return False  # cut inside a day: today so far
    # a last bucket shorter than its unit (a week of 3 days) is drawn as such, not as a fall
    return unit_start(local, granularity) == local


def metric_value(catalog: Catalog, metric: Metric, mv: dict[str, float | None]) -> Value:
    """A KPI's value from its measures' aggregates."""
    if metric.type == "simple":
        v = mv.get(metric.measure or "")
        sample = mv.get(metric.sample) if metric.sample else (v if metric.format == "count" else None)
        return Value(v, v, None, sample)
    if metric.type == "ratio":
        num = evaluate(metric.numerator or "", mv)
        den = evaluate(metric.denominator or "", mv)
        value = None if num is None or not den else num / den
        sample = mv.get(metric.sample) if metric.sample else den
        return Value(value, num, den, sample)
    subs = {k: metric_value(catalog, catalog.metrics[k], mv) for k in expression_names(metric.expression or "")}
    value = evaluate(metric.expression or "", {k: s.value for k, s in subs.items()})
    num = den = None
    parts = division_of(metric.expression or "")
    if parts is not None:
        num = evaluate(parts[0], {k: s.value for k, s in subs.items()})
        den = evaluate(parts[1], {k: s.value for k, s in subs.items()})
    samples = [s.sample for s in subs.values() if s.sample is not None]
    return Value(value, num, den, min(samples) if samples else None)


def auto_granularity(period: Period) -> str:
    if period.total_days <= 62:
        return "day"
    if period.total_days <= 190:
        return "week"
    return "month"


class KpiEngine:
    def __init__(self, catalog: Catalog, source: Engine, *, tz: ZoneInfo,
                 clock: Callable[[], datetime] | None = None, check_source: bool = True):
        """With ``check_source``, the catalog is checked against the source: a KPI whose table or column is
        missing is unavailable (asking it raises ``KpiUnavailable``), the others answer; a source holding none
        of the catalog's tables is refused (``CatalogError``: the shop's data is not there yet)."""
        self.catalog = catalog
        self._check_source = check_source
        self._schema: tuple[float, dict[str, set[str]], dict[str, list[str]]] | None = None
        self._schema_lock = threading.Lock()
        if check_source:
            present = self._read_schema(source)
            if not present:
                log.info("source %s holds none of the catalog's tables (%s)",
                            source.url.render_as_string(hide_password=True), catalog.path)
                raise CatalogError(catalog.source_problems(present))
            problems = catalog.source_problems(present)
            if problems:
                log.info("source %s: KPIs unavailable: %s", source.url.render_as_string(hide_password=True),
                            "; ".join(problems))
        self.sql = SqlLayer(catalog, source)
        self.tz = tz
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- which KPIs the source can give --------------------------------------------------------
    def _read_schema(self, source: Engine | None = None) -> dict[str, set[str]]:
        present = source_columns(source or self.sql.engine, self.catalog.tables())
        missing = {key: self.catalog.missing_for(m, present) for key, m in self.catalog.metrics.items()}
        self._schema = (_time.monotonic(), present, {k: v for k, v in missing.items() if v})
        return present

    def _known(self) -> tuple[float, dict[str, set[str]], dict[str, list[str]]] | None:
        """(when read, the catalog's tables in the source with their columns, KPI -> what it lacks); None when
        the source is not checked. Read again after ``SCHEMA_TTL_MISSING`` seconds while something is missing,
        ``SCHEMA_TTL`` otherwise."""
        if not self._check_source:
            return None
        hit = self._schema
        if hit is not None and _time.monotonic() - hit[0] < (SCHEMA_TTL_MISSING if hit[2] else SCHEMA_TTL):
            return hit
        with self._schema_lock:
            if self._schema is not hit:
                return self._schema
            try:
                self._read_schema()
            except Exception:  # noqa: BLE001 - the source is down: what was known stays (the query will tell)
                log.warning("could not read the source's tables", exc_info=True)
            return self._schema

    def source_schema(self) -> dict[str, set[str]] | None:
        """The catalog's tables in the source, with their columns (None: not checked)."""
        known = self._known()
        return known[1] if known is not None else None

    def missing(self, metric: Metric | str) -> list[str]:
        """The tables and ``table.column`` the KPI reads that the source lacks (empty: available)."""
        key = self.catalog.metric(metric).key if isinstance(metric, str) else metric.key
        known = self._known()
        return list(known[2].get(key, [])) if known is not None else []

    def unavailable(self) -> dict[str, KpiUnavailable]:
        """Every KPI the source cannot give, and why (no query beyond the cached look at the source)."""
        known = self._known()
        if known is None:
            return {}
        return {key: KpiUnavailable(self.catalog.metrics[key].name, key, missing)
                for key, missing in known[2].items()}

    def check_available(self, metric: Metric) -> None:
        """Raise ``KpiUnavailable`` when a table or column the KPI reads is missing from the source."""
        if missing := self.missing(metric):
            raise KpiUnavailable(metric.name, metric.key, missing)

    def now(self) -> datetime:
        return self._clock().astimezone(self.tz)

    # -- the one public question ----------------------------------------------------------------
    def ask(self, req: KpiRequest) -> KpiResult:
        metric = self.catalog.metric(req.metric)
        self.check_available(metric)
        try:
            return self._ask(metric, req)
        except NonNumericValues as exc:  # told with the KPI it refuses
            raise exc.for_metric(metric.name, metric.key) from None

    def _ask(self, metric: Metric, req: KpiRequest) -> KpiResult:
        dims = self.catalog.dimensions_of(metric)
        for dim, _ in req.filters:
            if dim not in dims:
                raise UnknownDimension(metric.name, dim, dims)
        if req.breakdown and req.breakdown not in dims:
            raise UnknownDimension(metric.name, req.breakdown, dims)
        if req.compare not in (None, *COMPARISONS):
            raise QueryError("unknown comparison '{compare}' (use previous or year)", compare=req.compare)
        measures = tuple(self.catalog.measures_of(metric))
        feeds = [m for m in measures if not m.sparse] or list(measures)  # freshness: the continuous feeds
        # the measures behind the KPI's notes are read in the same statements (those that can follow its filters
        # and breakdown); they count for nothing else (neither freshness nor history)
        wanted = {d for d, _ in req.filters} | ({req.breakdown} if req.breakdown else set())
        noted: list = []
        for n in self.catalog.note_measures(metric):
            if wanted <= set(n.dimensions) and n not in measures and n not in noted:
                noted.append(n)
        asked_ms = measures + tuple(noted)
        with self.sql.engine.connect() as conn:
            # where the data ends and starts comes first: a period that is not over ends at the data's "as of",
            # and its comparison covers the same span (remembered for a while: no query on most questions)
            as_of = self._as_of(self.sql.latest(feeds, conn))
            starts = self.sql.earliest(_history_measures(measures), conn)
            history = self._history_start(starts)
            # a table the KPI needs that holds no row at all (traffic not loaded yet): its sums would read 0 (zero
            # sessions, a CAC of 0.00 over no spend); the KPI has no data instead
            no_rows = any(v is None for v in starts.values())
            daily = any(self.sql.is_daily(m) for m in feeds)
            period = self.so_far(req.period, as_of, daily=daily)
            cmp_period = None
            if req.compare is not None and not period.empty:
                cmp_period = period.previous() if req.compare == "previous" else period.year_ago()
            main = [TimeRange(period.start, period.end)]
            if cmp_period is not None:
                main.append(TimeRange(cmp_period.start, cmp_period.end))
            gran = None
            buckets: list[tuple[datetime, datetime]] = []
            cmp_buckets: list[tuple[datetime, datetime]] = []
            if req.series:
                gran = req.granularity or auto_granularity(period)
                if gran not in GRANULARITIES:
                    raise QueryError("unknown granularity '{granularity}' (use {allowed})", granularity=gran,
                                     allowed=", ".join(GRANULARITIES))
                buckets = period.buckets(gran)
                if cmp_period is not None:
                    cmp_buckets = cmp_period.buckets(gran)[: len(buckets)]
            # is the change real? proportions are tested on their counts; other KPIs against how much the same
            # span moved in recent history (its ranges go into the same query: no query of their own)
            pairs = self._history_pairs(metric, period, req.compare, history)
            past = list(dict.fromkeys((p.start, p.end) for pair in pairs for p in pair))
            # additive measures (sums and counts over the period) add up across groups and across buckets:
            # the totals then come from the breakdown or the series, with no query of their own
            additive = all(m.additive for m in asked_ms)

            totals: dict[int, dict[str, float | None] | None] = {}
            rows, total_groups = [], 0
            if req.breakdown:
                grouped = self.sql.run(MeasureQuery(asked_ms, tuple(main), req.filters, group_by=req.breakdown), conn)
                rows, total_groups = self._breakdown(metric, asked_ms, req, main, grouped, conn)
                rows = _covered(rows, period, cmp_period, history)
                # (not when grouping joins another table: rows without a match there would drop out)
                if additive and all("." not in m.dimensions[req.breakdown] for m in asked_ms):
                    totals = {i: _sum_groups(grouped, i, asked_ms) for i in range(len(main))}
            if additive and buckets and 0 not in totals:
                totals[0] = None  # filled from the buckets below
            if additive and cmp_buckets and len(cmp_buckets) == len(cmp_period.buckets(gran)) and 1 not in totals:
                totals[1] = None  # filled from the comparison's buckets
            asked = ([TimeRange(s, e) for s, e in buckets] + [TimeRange(s, e) for s, e in cmp_buckets]
                     + [r for i, r in enumerate(main) if i not in totals] + [TimeRange(s, e) for s, e in past])
            values = self.sql.run(MeasureQuery(asked_ms, tuple(asked), req.filters), conn) if asked else {}

        answers = iter(values[(i, None)] for i in range(len(asked)))
        bucket_mv = [next(answers) for _ in buckets]
        cmp_bucket_mv = [next(answers) for _ in cmp_buckets]
        for i in range(len(main)):
            if i not in totals:
                totals[i] = next(answers)
            elif totals[i] is None:
                parts = bucket_mv if i == 0 else cmp_bucket_mv
                totals[i] = {m.key: sum(mv[m.key] or 0.0 for mv in parts) for m in asked_ms}
        known = {span: metric_value(self.catalog, metric, next(answers)).value for span in past}
        moves = [_minus(known[(p.start, p.end)], known[(c.start, c.end)]) for p, c in pairs]
        current = metric_value(self.catalog, metric, totals[0])
        comparison = metric_value(self.catalog, metric, totals[1]) if cmp_period else None
        current = _before_data(current, period.end, history)  # before the data starts: no data, never 0
        if period.empty:
            current = replace(current, value=None)  # not started in the data yet
        if comparison is not None and cmp_period is not None:
            comparison = _before_data(comparison, cmp_period.end, history)
        change = change_between(metric, current, comparison, moves)
        comparison_partial = cmp_period is not None and history is not None and cmp_period.start < history
        if comparison_partial and change is not None:
            change = replace(change, good=None)  # a change against a partly empty period is no verdict
        series = [self._point(metric, s, e, mv, history, _complete(period, gran, e))
                  for (s, e), mv in zip(buckets, bucket_mv, strict=True)]
        cmp_series = [self._point(metric, s, e, mv, history) for (s, e), mv in zip(cmp_buckets, cmp_bucket_mv, strict=True)]
        needs = None
        horizon = self.catalog.horizon_of(metric)
        if horizon is not None:  # a cohort younger than the horizon has no value yet: the data it needs is said
            def ready(end: datetime) -> bool:
                return as_of is not None and horizon.after(end) <= as_of

            if not ready(period.end):
                current, needs = replace(current, value=None), horizon.after(period.end)
                change = Change(None, None, None) if change is not None else None
            if comparison is not None and cmp_period is not None and not ready(cmp_period.end):
                comparison = replace(comparison, value=None)
                change = Change(None, None, None)
            series = [p if ready(p.end) else replace(p, value=replace(p.value, value=None)) for p in series]
            cmp_series = [p if ready(p.end) else replace(p, value=replace(p.value, value=None)) for p in cmp_series]
            rows = [r if needs is None else replace(r, value=replace(r.value, value=None), change=None) for r in rows]
        if no_rows:
            current = replace(current, value=None)
            comparison = replace(comparison, value=None) if comparison is not None else None
            change = Change(None, None, None) if change is not None else None
            series = [replace(p, value=replace(p.value, value=None)) for p in series]
            cmp_series = [replace(p, value=replace(p.value, value=None)) for p in cmp_series]
            rows = [replace(r, value=replace(r.value, value=None), change=None) for r in rows]
        notes = tuple((n, float(totals[0].get(n.measure) or 0)) for n in metric.notes
                      if totals[0].get(n.measure) and not period.empty)
        return KpiResult(
            metric=metric, period=period, current=current, compare=req.compare, comparison_period=cmp_period,
            comparison=comparison, change=change, series=series, comparison_series=cmp_series,
            granularity=gran, breakdown_by=req.breakdown, breakdown=rows, breakdown_total_groups=total_groups,
            filters=req.filters, as_of=as_of, history_start=history, daily=daily, asked_at=self.now(),
            notes=notes, needs_data_until=needs, horizon=horizon,
        )

    def _point(self, metric: Metric, start: datetime, end: datetime, mv: dict, history: datetime | None,
               complete: bool = True) -> SeriesPoint:
        """A series point; a bucket that ends before the data starts is no data, never 0."""
        return SeriesPoint(start, end, _before_data(metric_value(self.catalog, metric, mv), end, history),
                           complete=complete)

    def so_far(self, period: Period, as_of: datetime | None, *, daily: bool) -> Period:
        """A period that is not over, ended at the data's "as of" and never in the future: today at 09:00
        is today to 09:00, and is compared with yesterday to 09:00. Data with times is cut at the minute
        after its newest row; daily data only at a day's end (today is not complete yet)."""
        now = self.now()
        if period.end <= now.replace(hour=0, minute=0, second=0, microsecond=0):
            return period  # over: a late feed is told as stale, the period keeps its dates
        # compared in UTC: within one zone Python compares wall times, and the repeated hour of a DST day
        # would compare equal to the hour before it
        moment = now.astimezone(UTC) if as_of is None else min(now.astimezone(UTC), _next_minute(as_of))
        moment = moment.astimezone(self.tz)
        if daily:
            moment = moment.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        return period.until(moment)

    def _history_pairs(self, metric: Metric, period: Period, compare: str | None,
                       history: datetime | None) -> list[tuple[Period, Period]]:
        """Earlier (period, comparison) pairs a change is measured against, newest first: the same weekdays
        for spans shorter than a week, the same kind of span otherwise; only spans the data covers. None for
        proportions (their counts are tested instead)."""
        if compare is None or period.empty or history is None or _proportion_kpi(metric):
            return []
        # at most about a year of history is read (a 90-day span: 4 earlier spans); longer spans are not tested
        count = min(HISTORY_PERIODS, HISTORY_DAYS // max(1, (period.end - period.start).days))
        if count < MIN_HISTORY:
            return []
        out, p = [], period
        for _ in range(count):
            if period.end - period.start < timedelta(days=7):
                p = replace(p, start=p.start - timedelta(weeks=1), end=p.end - timedelta(weeks=1),
                            full_end=p.full_end - timedelta(weeks=1))
            else:
                p = p.previous()
            c = p.previous() if compare == "previous" else p.year_ago()
            if c.start < history:
                break
            out.append((p, c))
        return out

    def history_start(self, metric_key: str) -> datetime | None:
        """Where the data a KPI needs starts (the local midnight of its tables' first day; remembered for a
        while), without asking for a value."""
        metric = self.catalog.metric(metric_key)
        self.check_available(metric)
        measures = tuple(self.catalog.measures_of(metric))
        with self.sql.engine.connect() as conn:
            return self._history_start(self.sql.earliest(_history_measures(measures), conn))

    def _history_start(self, starts: dict) -> datetime | None:
        """Where the data this KPI needs starts: the local midnight of the day of its tables' first rows (the
        latest of them; the first day counts as covered, whatever the hour of its first row)."""
        days = []
        for v in starts.values():
            if isinstance(v, datetime):
                days.append(v.replace(tzinfo=UTC).astimezone(self.tz).date())
            elif isinstance(v, date):
                days.append(v)
        return datetime.combine(max(days), time(0), tzinfo=self.tz) if days else None

    def _breakdown(self, metric: Metric, measures: Sequence, req: KpiRequest, ranges: list[TimeRange],
                   values: Values, conn):
        keys = sorted({g for (_, g) in values if g is not None})
        current = {g: metric_value(self.catalog, metric, _filled(values.get((0, g)), measures)) for g in keys}

        def weight(g: str) -> tuple:
            v = current[g]
            size = v.sample if v.sample is not None else (v.value or 0)
            return (-(size or 0), -(v.value or 0), g)

        ranked = sorted(keys, key=weight)
        top, rest = ranked[: req.top], ranked[req.top:]
        groups: list[tuple[str, dict, dict | None, bool]] = [
            (g, _filled(values.get((0, g)), measures), _filled(values.get((1, g)), measures) if len(ranges) > 1 else None,
             False)
            for g in top
        ]
        if rest:  # "other", computed exactly by one more query (distinct counts do not add up across groups)
            other = self.sql.run(MeasureQuery(measures, tuple(ranges), req.filters, exclude=((req.breakdown, tuple(top)),)), conn)
            groups.append((OTHER, other[(0, None)], other.get((1, None)), True))
        total = sum((current[g].sample if current[g].sample is not None else (current[g].value or 0)) or 0 for g in keys)
        rows = []
        for g, cur_mv, cmp_mv, is_other in groups:
            cur = metric_value(self.catalog, metric, cur_mv)
            cmpv = metric_value(self.catalog, metric, cmp_mv) if cmp_mv is not None else None
            size = cur.sample if cur.sample is not None else (cur.value or 0)
            rows.append(BreakdownRow(
                key=g, value=cur, comparison=cmpv, is_other=is_other,
                change=_row_change(metric, cur, cmpv), share=(size / total) if total else None,
            ))
        return rows, len(keys)

    def _as_of(self, latest: dict) -> datetime | None:
        points = []
        for v in latest.values():
            if v is None:
                return None
            if isinstance(v, datetime):
                points.append(v.replace(tzinfo=UTC).astimezone(self.tz))
            elif isinstance(v, date):  # a local day is complete at its end
                points.append(datetime.combine(v + timedelta(days=1), time(0), tzinfo=self.tz))
        return min(points) if points else None


def _sum_groups(values: Values, index: int, measures) -> dict[str, float | None]:
    return {m.key: sum(mv.get(m.key) or 0.0 for (i, _), mv in values.items() if i == index) for m in measures}


def _filled(mv: dict[str, float | None] | None, measures) -> dict[str, float | None]:
    """A group's aggregates, where a sum or a count with no rows in the group is 0, not "no data": a channel
    with sessions and no orders converts at 0%, a country with orders and no returns returns 0% (the same
    values the group gets when asked as a filter)."""
    out = _zeros(measures)
    out.update({k: v for k, v in (mv or {}).items() if v is not None})
    return out


def _zeros(measures) -> dict[str, float | None]:
    return {m.key: (0.0 if m.agg in ("sum", "count", "count_distinct") else None) for m in measures}
