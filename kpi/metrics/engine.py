"""The KPI engine: a request (KPI, period, comparison, filters, breakdown, granularity) in, plain data out.

The SQL lives in ``kpi.metrics.sql``; this module turns measure aggregates into KPI values (ratios divide after
the aggregates come back, a zero or absent denominator is "no data"), comparisons, series and
breakdowns. Time is injected through ``clock`` so that tests, goals and alerts can fix "now".
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from kpi.errors import QueryError, UnknownDimension

from .catalog import Catalog, Metric, evaluate, expression_names
from .periods import GRANULARITIES, Period
from .sql import MeasureQuery, SqlLayer, TimeRange, Values

COMPARISONS = ("previous", "year")
OTHER = "other"


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
    good: bool | None  # True when the change goes the KPI's right way; None when flat or unknown


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    end: datetime
    value: Value


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
    granularity: str | None = None
    breakdown_by: str | None = None
    breakdown: list[BreakdownRow] = field(default_factory=list)
    breakdown_total_groups: int = 0
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    as_of: datetime | None = None  # the data is complete up to here (oldest of the newest rows)
    history_start: datetime | None = None  # the data starts here (latest of the first rows of the KPI's tables)

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
        """The source has no data at all for the period's last day (a feed stopped, or an import is late)."""
        return self.as_of is None or self.as_of < self.period.end - timedelta(days=1)


# the resolution a KPI is shown at: 0.1 pt for percentages, cents for money, units for counts
SHOWN_AT = {"percent": Decimal("0.001"), "currency": Decimal("0.01"), "count": Decimal("1"), "ratio": Decimal("0.01")}


def shown(value: float, fmt: str) -> Decimal:
    """The value as people read it (rounded half up at the format's resolution), exactly."""
    quantum = SHOWN_AT.get(fmt)
    exact = Decimal(repr(value))
    return exact if quantum is None else exact.quantize(quantum, rounding=ROUND_HALF_UP)


def change_between(metric: Metric, current: Value, previous: Value | None) -> Change | None:
    """The change between two values as they are shown: 72.7% against 72.8% is −0.1 pt, the difference of
    what the reader sees; values that show the same are no change (no arrow, no verdict)."""
    if previous is None:
        return None
    a, b = current.value, previous.value
    if a is None or b is None:
        return Change(None, None, None)
    diff = float(shown(a, metric.format) - shown(b, metric.format))
    if diff == 0:
        return Change(0.0, 0.0 if b != 0 else None, None)
    rel = (a - b) / abs(b) if b != 0 else None  # the true relative change: a rounded base would distort it
    good = (diff > 0) == metric.higher_is_better
    return Change(diff, rel, good)


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
    tree = ast.parse(metric.expression or "", mode="eval").body
    num = den = None
    if isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Div):
        num = evaluate(ast.unparse(tree.left), {k: s.value for k, s in subs.items()})
        den = evaluate(ast.unparse(tree.right), {k: s.value for k, s in subs.items()})
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
        if check_source:
            catalog.check_source(source)
        self.catalog = catalog
        self.sql = SqlLayer(catalog, source)
        self.tz = tz
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._clock().astimezone(self.tz)

    # -- the one public question ----------------------------------------------------------------
    def ask(self, req: KpiRequest) -> KpiResult:
        metric = self.catalog.metric(req.metric)
        dims = self.catalog.dimensions_of(metric)
        for dim, _ in req.filters:
            if dim not in dims:
                raise UnknownDimension(metric.name, dim, dims)
        if req.breakdown and req.breakdown not in dims:
            raise UnknownDimension(metric.name, req.breakdown, dims)
        if req.compare not in (None, *COMPARISONS):
            raise QueryError("unknown comparison '{compare}' (use previous or year)", compare=req.compare)
        measures = tuple(self.catalog.measures_of(metric))
        period = req.period
        cmp_period = None if req.compare is None else (period.previous() if req.compare == "previous" else period.year_ago())
        main = [TimeRange(period.start, period.end)]
        if cmp_period is not None:
            main.append(TimeRange(cmp_period.start, cmp_period.end))
        gran = None
        buckets: list[tuple[datetime, datetime]] = []
        if req.series:
            gran = req.granularity or auto_granularity(period)
            if gran not in GRANULARITIES:
                raise QueryError("unknown granularity '{granularity}' (use {allowed})", granularity=gran,
                                 allowed=", ".join(GRANULARITIES))
            buckets = period.buckets(gran)
        # additive measures (sums and counts over the period) add up across groups and across buckets:
        # the totals then come from the breakdown or the series, with no query of their own
        additive = all(m.additive for m in measures)

        with self.sql.engine.connect() as conn:
            totals: dict[int, dict[str, float | None]] = {}
            rows, total_groups = [], 0
            if req.breakdown:
                grouped = self.sql.run(MeasureQuery(measures, tuple(main), req.filters, group_by=req.breakdown), conn)
                rows, total_groups = self._breakdown(metric, measures, req, main, grouped, conn)
                # (not when grouping joins another table: rows without a match there would drop out)
                if additive and all("." not in m.dimensions[req.breakdown] for m in measures):
                    totals = {i: _sum_groups(grouped, i, measures) for i in range(len(main))}
            if additive and buckets and 0 not in totals:
                totals[0] = None  # filled from the buckets below
            asked = [TimeRange(s, e) for s, e in buckets] + [r for i, r in enumerate(main) if i not in totals]
            values = self.sql.run(MeasureQuery(measures, tuple(asked), req.filters), conn) if asked else {}
            # freshness: the continuous feeds (orders, traffic); occasional events only when there is nothing else
            latest = self.sql.latest([m for m in measures if not m.sparse] or measures, conn)
            # coverage: where the continuous feeds' history starts (occasional events start whenever they start)
            starts = self.sql.earliest([m for m in measures if not m.sparse and m.window == "period"]
                                       or [m for m in measures if m.window == "period"], conn)

        bucket_mv = [values[(i, None)] for i in range(len(buckets))]
        rest = iter(range(len(buckets), len(asked)))
        for i in range(len(main)):
            if i not in totals:
                totals[i] = values[(next(rest), None)]
            elif totals[i] is None:
                totals[i] = {m.key: sum(mv[m.key] or 0.0 for mv in bucket_mv) for m in measures}
        history = self._history_start(starts)
        current = metric_value(self.catalog, metric, totals[0])
        comparison = metric_value(self.catalog, metric, totals[1]) if cmp_period else None
        if history is not None and period.end <= history:
            current = replace(current, value=None)  # before the data starts: no data, never 0
        if comparison is not None and cmp_period is not None and history is not None and cmp_period.end <= history:
            comparison = replace(comparison, value=None)
        change = change_between(metric, current, comparison)
        comparison_partial = cmp_period is not None and history is not None and cmp_period.start < history
        if comparison_partial and change is not None:
            change = replace(change, good=None)  # a change against a partly empty period is no verdict
        series = [SeriesPoint(s, e, metric_value(self.catalog, metric, mv)) for (s, e), mv in zip(buckets, bucket_mv, strict=True)]
        return KpiResult(
            metric=metric, period=period, current=current, compare=req.compare, comparison_period=cmp_period,
            comparison=comparison, change=change, series=series,
            granularity=gran, breakdown_by=req.breakdown, breakdown=rows, breakdown_total_groups=total_groups,
            filters=req.filters, as_of=self._as_of(latest), history_start=history,
        )

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
                change=change_between(metric, cur, cmpv), share=(size / total) if total else None,
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
