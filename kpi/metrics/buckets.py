"""Many ranges read by one ``GROUP BY`` local day: the plan of columnar engines (DuckDB, ClickHouse).

A row store answers a daily series fastest with one index range scan per day (``kpi.metrics.sql``); a
columnar engine has no such index and evaluates a join of its rows to a list of ranges badly (DuckDB: 19 ms
for a 90-day series that a ``GROUP BY`` day answers in 1.2 ms). There, a cluster of ranges whose bounds are
all local midnights (days, weeks, months, the period around them) is one scan of the cluster's window grouped
by the row's local day; each range is then the combination of its days: sums and counts add up, minimums and
maximums are the least and greatest. Measures whose days do not combine (distinct counts) keep the join.

The local day of a UTC timestamp is the UTC day of the timestamp plus the zone's offset at that instant. The
offset is constant between the zone's transitions, so it is a ``CASE`` over the few transitions inside the
window (bound parameters), evaluated per row as a comparison and an addition: no time zone database is needed
in the engine, and converting every row through one (DuckDB's ICU) cost 4x the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

from sqlalchemy import BigInteger, Date, case, cast
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from .model import Measure

COLUMNAR = frozenset({"duckdb", "chdb", "clickhouse", "clickhousedb", "bigquery", "snowflake"})
COMBINABLE = frozenset({"sum", "count", "min", "max"})
TRANSITION_SLOTS = 4  # transitions in a window are padded to a multiple of this: fewer shapes of statement
NEVER = datetime(2100, 1, 1)  # a padding transition: later than any row (and within ClickHouse's DateTime)


class plus_seconds(ColumnElement):
    """``timestamp + N seconds`` (N an expression): DuckDB ``+ to_seconds(N)``, ClickHouse ``addSeconds``,
    the others ``+ INTERVAL '1 second' * N``."""

    inherit_cache = True
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement),
                           ("seconds", InternalTraversal.dp_clauseelement)]

    def __init__(self, expr, seconds):
        self.expr, self.seconds = expr, seconds
        self.type = expr.type


@compiles(plus_seconds)
def _plus_seconds_default(element, compiler, **kw):
    return f"({compiler.process(element.expr, **kw)} + INTERVAL '1 second' * {compiler.process(element.seconds, **kw)})"


@compiles(plus_seconds, "duckdb")
def _plus_seconds_duckdb(element, compiler, **kw):
    return f"({compiler.process(element.expr, **kw)} + to_seconds({compiler.process(element.seconds, **kw)}))"


@compiles(plus_seconds, "chdb")
@compiles(plus_seconds, "clickhouse")
@compiles(plus_seconds, "clickhousedb")
def _plus_seconds_clickhouse(element, compiler, **kw):
    return f"addSeconds({compiler.process(element.expr, **kw)}, {compiler.process(element.seconds, **kw)})"


def combinable(group: Sequence[Measure]) -> bool:
    """The group's values over a range are combinations of its values over the range's days."""
    return all(m.agg in COMBINABLE and not m.having and m.horizon is None for m in group)


def zone_of(ranges, cluster: Sequence[int]) -> tzinfo | None:
    """The zone the cluster's ranges are written in, when every bound is a local midnight of it; None otherwise."""
    zone = ranges[cluster[0]].start.tzinfo
    if zone is None:
        return None
    for i in cluster:
        for moment in (ranges[i].start, ranges[i].end):
            if moment.tzinfo is not zone or (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
                return None
    return zone


def _offset(zone: tzinfo, instant: datetime) -> int:
    """The zone's UTC offset in seconds at the naive UTC ``instant``."""
    return int(instant.replace(tzinfo=UTC).astimezone(zone).utcoffset().total_seconds())


@lru_cache(maxsize=256)
def offsets(zone: tzinfo, lo: datetime, hi: datetime) -> tuple[int, tuple[tuple[datetime, int], ...]]:
    """The zone's offset at the naive UTC ``lo`` and each transition in [lo, hi): (first offset, [(instant, offset
    from then on)]). Found by looking at each day's offset, then at the second of each change."""
    first = _offset(zone, lo)
    changes: list[tuple[datetime, int]] = []
    day, current = lo, first
    while day < hi:
        following = min(day + timedelta(days=1), hi)
        after = _offset(zone, following - timedelta(seconds=1))
        if after != current:
            # the offset changes in (a, b]: ``current`` holds at ``lo`` and at the second before each later day (a
            # change at a day's first second, as zones that change at midnight do, is found there)
            a, b = (day if day == lo else day - timedelta(seconds=1)), following - timedelta(seconds=1)
            while (b - a) > timedelta(seconds=1):
                mid = a + (b - a) / 2
                mid = mid.replace(microsecond=0)
                if _offset(zone, mid) == current:
                    a = mid
                else:
                    b = mid
            changes.append((b, after))
            current = after
        day = following
    return first, tuple(changes)


def transition_slots(count: int) -> int:
    return -(-count // TRANSITION_SLOTS) * TRANSITION_SLOTS


@dataclass(frozen=True)
class DayFold:
    """How the rows of a day-grouped statement become the values of its ranges: which ranges of the question."""

    cluster: tuple[int, ...]

    def ranges_of_day(self, q) -> dict[date, list[int]]:
        """Local day -> the ranges of the cluster that hold it."""
        out: dict[date, list[int]] = {}
        for i in self.cluster:
            r = q.ranges[i]
            day, end = r.start.date(), r.end.date()
            while day < end:
                out.setdefault(day, []).append(i)
                day += timedelta(days=1)
        return out

    def fold(self, q, rows, group: Sequence[Measure], grouped: bool) -> list[dict]:
        """The statement's rows (one per local day, and group) as rows per range: sums and counts added,
        minimums and maximums kept, the currencies' least and greatest kept."""
        days = self.ranges_of_day(q)
        aggs = {m.key: m.agg for m in group}
        aggs.update({"_currency_min": "min", "_currency_max": "max", "_unrated": "sum", "_currency_other": "sum",
                     "_all_min": "min", "_all_max": "max", "_probed": "max"})
        out: dict[tuple[int, object], dict] = {}
        for row in rows:
            day = row["r"]
            if isinstance(day, datetime):
                day = day.date()
            elif isinstance(day, str):  # SQLite's date()
                day = date.fromisoformat(day)
            for i in days.get(day, ()):
                key = (i, row["g"] if grouped else None)
                slot = out.get(key)
                if slot is None:
                    slot = out[key] = {"r": i, **({"g": row["g"]} if grouped else {})}
                for name, agg in aggs.items():
                    if name not in row:
                        continue
                    v, have = row[name], slot.get(name)
                    if v is None:
                        slot.setdefault(name, None)
                    elif have is None:
                        slot[name] = v
                    elif agg in ("sum", "count"):
                        slot[name] = have + v
                    else:
                        slot[name] = min(have, v) if agg == "min" else max(have, v)
        return list(out.values())


class local_day(ColumnElement):
    """The day of a naive timestamp column, shifted first by ``seconds`` (an expression; None: no shift):
    ``CAST(... AS DATE)``; SQLite (timestamps as text) ``date(col, '+N seconds')``."""

    inherit_cache = True
    type = Date()
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement),
                           ("seconds", InternalTraversal.dp_clauseelement)]

    def __init__(self, expr, seconds=None):
        self.expr, self.seconds = expr, seconds


@compiles(local_day)
def _local_day_default(element, compiler, **kw):
    shifted = element.expr if element.seconds is None else plus_seconds(element.expr, element.seconds)
    return compiler.process(cast(shifted, Date), **kw)


@compiles(local_day, "sqlite")
def _local_day_sqlite(element, compiler, **kw):
    expr = compiler.process(element.expr, **kw)
    if element.seconds is None:
        return f"date({expr})"
    return f"date({expr}, ({compiler.process(element.seconds, **kw)}) || ' seconds')"


def offset_expression(time_col, bind, first, changes_of, slots: int):
    """``CASE WHEN time < :t1 THEN :o0 WHEN time < :t2 THEN :o1 ... ELSE :on END``: the zone's offset at each row,
    ``slots`` transitions long (``changes_of(q)`` padded with transitions that never come)."""
    def change(q, k):
        found = changes_of(q)
        return found[k] if k < len(found) else (NEVER, found[-1][1] if found else first(q))

    if slots == 0:
        return bind(lambda q: first(q), BigInteger())
    whens = []
    for k in range(slots):
        before = bind(lambda q, k=k: change(q, k)[0], time_col.type)
        value = bind(lambda q, k=k: first(q) if k == 0 else change(q, k - 1)[1], BigInteger())
        whens.append((time_col < before, value))
    return case(*whens, else_=bind(lambda q: change(q, slots - 1)[1], BigInteger()))
