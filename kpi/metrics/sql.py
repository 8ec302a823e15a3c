"""The SQL layer: measures over labelled time ranges compiled to SQLAlchemy Core.

One statement per group of measures that read the same rows (same table, join, conditions, window and
time column); each time range is one branch of a ``UNION ALL`` with its own ``WHERE time >= :start AND
time < :end``, so that every branch is an index range scan touching only its window, on any dialect.
All aggregation happens in the database; only aggregates come back. Identifiers come from the catalog
(checked at load); every value, user text included, is a bound parameter.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    and_,
    column,
    distinct,
    func,
    literal,
    literal_column,
    not_,
    select,
    union_all,
    values,
)
from sqlalchemy.engine import Connection, Engine

from kpi.data.schema import SOURCE_TABLES
from kpi.errors import NonNumericValues

from .catalog import Catalog, Condition, Measure


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in the shop's time zone. ``start`` None means from the beginning of the data."""

    start: datetime | None
    end: datetime


@dataclass(frozen=True)
class MeasureQuery:
    """What to aggregate: measures, over ranges, with filters (dimension -> values), optionally grouped."""

    measures: tuple[Measure, ...]
    ranges: tuple[TimeRange, ...]
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    group_by: str | None = None  # a dimension name
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (dimension, values) to leave out ("other" rows)


LATEST_TTL = 30.0  # seconds an "as of" stays cached
EARLIEST_TTL = 600.0  # seconds a history's start stays cached (it moves only with an import of older data)
NUMBERS_TTL = 600.0  # seconds a column's count of values that are not numbers stays cached (as dimension values)

# result: (range index, group value or None) -> measure key -> value
Values = dict[tuple[int, str | None], dict[str, float | None]]


class SqlLayer:
    def __init__(self, catalog: Catalog, engine: Engine):
        self.catalog = catalog
        self.engine = engine
        self._tables: dict[str, Table] = {}
        self._latest: dict[tuple[str, str], tuple[float, object]] = {}
        self._earliest: dict[tuple[str, str], tuple[float, object]] = {}
        self._meta = MetaData()
        # naive timestamps in the source are UTC (the canonical tables), or local times of this zone (a
        # shop's own tables mapped in config/source.yaml): bounds are written, and edges read, in it
        self.stored_tz = ZoneInfo(catalog.timestamps_tz) if getattr(catalog, "timestamps_tz", None) else UTC
        # SQLite keeps a text such as "n/a" in a numeric column as text, and SUM counts it as 0: there, the
        # values that are not numbers of each numeric column summed are counted (one query per column, cached)
        self.checks_numbers = engine.dialect.name == "sqlite"
        self._not_numbers: dict[str, tuple[float, int]] = {}
        self._numeric: dict[tuple[str, ...], list[str]] = {}  # measure keys -> numeric columns they sum
        for name in sorted(catalog.tables()):
            if name in SOURCE_TABLES:
                self._tables[name] = SOURCE_TABLES[name]
            else:  # a table or view of the user's own: its columns as the database has them
                try:
                    self._table(name)
                except Exception:  # noqa: BLE001 - not in the source (yet): its KPIs are unavailable, read when asked
                    continue

    # -- compiling --------------------------------------------------------------------------------
    def _table(self, name: str) -> Table:
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = Table(name, self._meta, autoload_with=self.engine)
        return table

    def _col(self, m: Measure, ref: str):
        table, col = ref.split(".", 1) if "." in ref else (m.table, ref)
        return self._table(table).c[col]

    def numeric_columns(self, measures: Iterable[Measure]) -> list[str]:
        """The numeric columns (``table.column``) the measures aggregate by value (sum, min, max)."""
        out: list[str] = []
        for ms in measures:
            if ms.agg not in ("sum", "min", "max") or not ms.column:
                continue
            col = self._col(ms, ms.column)
            name = f"{col.table.name}.{col.name}"
            if isinstance(col.type, Integer | Numeric | Float) and name not in out:
                out.append(name)
        return out

    def count_not_numbers(self, name: str, conn: Connection) -> int:
        """How many values of the column ``table.column`` are not numbers (stored as text or bytes): SQLite
        only, where a column's type does not refuse them; 0 elsewhere. One scan of the column."""
        if not self.checks_numbers:
            return 0
        table, col = name.split(".", 1)
        kind = func.typeof(self._table(table).c[col])
        stmt = select(func.count()).where(kind.in_([literal_column("'text'"), literal_column("'blob'")]))
        return int(conn.execute(stmt).scalar() or 0)

    def check_numbers(self, measures: Iterable[Measure], conn: Connection) -> None:
        """Raise ``NonNumericValues`` when a numeric column the measures sum holds values that are not numbers
        (SQLite would count them as 0). Counted once per column every ``NUMBERS_TTL`` seconds."""
        if not self.checks_numbers:
            return
        measures = tuple(measures)
        key = tuple(m.key for m in measures)
        names = self._numeric.get(key)
        if names is None:
            names = self._numeric[key] = self.numeric_columns(measures)
        now = time.monotonic()
        for name in names:
            hit = self._not_numbers.get(name)
            if hit is None or now - hit[0] > NUMBERS_TTL:
                hit = self._not_numbers[name] = (now, self.count_not_numbers(name, conn))
            if hit[1]:
                raise NonNumericValues(name, hit[1])

    def is_daily(self, m: Measure) -> bool:
        """The measure's time column holds days, not times: a day is in it only once it is over."""
        return isinstance(self._col(m, m.time).type, Date)

    def _bound(self, m: Measure, value: datetime | None):
        """A range boundary in the time column's terms: a local date for dates, naive UTC for timestamps."""
        if value is None:
            return None
        kind = self._col(m, m.time).type
        if isinstance(kind, Date):
            return value.date()
        if getattr(kind, "timezone", False):  # a column that stores the offset: compare instants
            return value.astimezone(UTC)
        return value.astimezone(self.stored_tz).replace(tzinfo=None)

    def _utc(self, value):
        """A timestamp read from the source, as naive UTC (what the engine works in)."""
        if not isinstance(value, datetime):
            return value
        if value.tzinfo is None:
            if self.stored_tz is UTC:
                return value
            value = value.replace(tzinfo=self.stored_tz)
        return value.astimezone(UTC).replace(tzinfo=None)

    def _condition(self, m: Measure, c: Condition, rng: TimeRange):
        col = self._col(m, c.column)
        v = c.value
        if v == "$period_start":
            v = self._bound(m, rng.start) if rng.start else self._bound(m, rng.end)
        elif v == "$period_end":
            v = self._bound(m, rng.end)
        ops = {"=": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__}
        if c.op in ops:
            return ops[c.op](v)
        return col.in_(list(v)) if c.op == "in" else col.not_in(list(v))

    def _needs_join(self, q: MeasureQuery, m: Measure) -> bool:
        if not m.join_table:
            return False
        refs = [c.column for c in m.where] + [m.dimensions[d] for d, _ in q.filters + q.exclude]
        if q.group_by:
            refs.append(m.dimensions[q.group_by])
        return any(r.startswith(m.join_table + ".") for r in refs)

    def _source(self, q: MeasureQuery, m: Measure):
        base = self._table(m.table)
        if self._needs_join(q, m):
            other = self._table(m.join_table)
            return base.join(other, base.c[m.join_on] == other.c[m.join_on])
        return base

    def _dimension_conditions(self, q: MeasureQuery, m: Measure) -> list:
        conds = []
        for dim, wanted in q.filters:  # case-insensitive: people type "email" for "Email"
            conds.append(func.lower(self._col(m, m.dimensions[dim])).in_([v.lower() for v in wanted]))
        for dim, unwanted in q.exclude:
            col = self._col(m, m.dimensions[dim])
            conds.append(not_(col.in_(list(unwanted))) | col.is_(None))
        return conds

    def _select(self, q: MeasureQuery, group: Sequence[Measure], range_col, source, conds: list, extra_group=()):
        m = group[0]
        cols = [range_col.label("r")]
        group_cols = list(extra_group)
        if q.group_by:
            group_col = self._col(m, m.dimensions[q.group_by])
            cols.append(group_col.label("g"))
            group_cols.append(group_col)
        for ms in group:
            cols.append(_aggregate(ms, self._col(ms, ms.column) if ms.column else None).label(ms.key))
        stmt = select(*cols).select_from(source).where(and_(*conds))
        return stmt.group_by(*group_cols) if group_cols else stmt

    def _branch(self, q: MeasureQuery, group: Sequence[Measure], index: int, rng: TimeRange):
        """One range: ``WHERE time >= :start AND time < :end`` (an index range scan)."""
        m = group[0]
        time_col = self._col(m, m.time)
        conds = []
        start = None if m.window == "to_date" else rng.start
        if start is not None:
            conds.append(time_col >= self._bound(m, start))
        conds.append(time_col < self._bound(m, rng.end))
        conds += [self._condition(m, c, rng) for c in m.where]
        conds += self._dimension_conditions(q, m)
        return self._select(q, group, literal_column(str(int(index))), self._source(q, m), conds)

    def _bucket_join(self, q: MeasureQuery, group: Sequence[Measure], indexes: Sequence[int]):
        """Many ranges in one statement: the rows of the overall window joined to a small table of ranges.

        PostgreSQL plans it as one loop of index range scans, 2-5x faster than a UNION ALL of 90
        branches; SQLite does better with the UNION ALL (see ``statements``)."""
        m = group[0]
        time_col = self._col(m, m.time)
        kind = Date if isinstance(time_col.type, Date) else DateTime
        if self.engine.dialect.name == "postgresql":  # a VALUES list plans in a fraction of a UNION's time
            ranges = values(column("r", Integer), column("s", kind), column("e", kind), name="ranges").data(
                [(i, self._bound(m, q.ranges[i].start), self._bound(m, q.ranges[i].end)) for i in indexes])
        else:
            rows = [select(literal_column(str(i)).label("r"), literal(self._bound(m, q.ranges[i].start), kind).label("s"),
                           literal(self._bound(m, q.ranges[i].end), kind).label("e")) for i in indexes]
            ranges = union_all(*rows).subquery("ranges")
        lo = self._bound(m, min(q.ranges[i].start for i in indexes))
        hi = self._bound(m, max(q.ranges[i].end for i in indexes))
        source = self._source(q, m).join(ranges, and_(time_col >= ranges.c.s, time_col < ranges.c.e))
        conds = [time_col >= lo, time_col < hi]
        conds += [self._condition(m, c, q.ranges[0]) for c in m.where]
        conds += self._dimension_conditions(q, m)
        return self._select(q, group, ranges.c.r, source, conds, extra_group=[ranges.c.r])

    def _joinable(self, q: MeasureQuery, group: Sequence[Measure]) -> bool:
        m = group[0]
        return (self.engine.dialect.name != "sqlite" and m.window == "period"
                and all(r.start is not None for r in q.ranges)
                and not any(isinstance(c.value, str) and c.value.startswith("$") for c in m.where))

    def _pieces(self, q: MeasureQuery, group: Sequence[Measure]) -> list:
        """Ranges that overlap or touch (a period and its buckets) form a cluster; a cluster of more than
        a few ranges is one bucket join, the rest are UNION ALL branches. Distant ranges (a year ago)
        never widen another cluster's scan."""
        if not self._joinable(q, group):
            return [self._branch(q, group, i, r) for i, r in enumerate(q.ranges)]
        order = sorted(range(len(q.ranges)), key=lambda i: q.ranges[i].start)
        clusters: list[list[int]] = []
        hi = None
        for i in order:
            if clusters and q.ranges[i].start <= hi:
                clusters[-1].append(i)
                hi = max(hi, q.ranges[i].end)
            else:
                clusters.append([i])
                hi = q.ranges[i].end
        pieces = []
        for cluster in clusters:
            if len(cluster) > 4:
                pieces.append(self._bucket_join(q, group, cluster))
            else:
                pieces += [self._branch(q, group, i, q.ranges[i]) for i in cluster]
        return pieces

    def statements(self, q: MeasureQuery):
        """One statement per group of measures that scan the same rows."""
        groups: dict[tuple, list[Measure]] = {}
        for m in q.measures:
            key = (m.table, m.join_table if self._needs_join(q, m) else None, m.where, m.window, m.time,
                   m.dimensions.get(q.group_by) if q.group_by else None,
                   tuple(m.dimensions[d] for d, _ in q.filters + q.exclude))
            groups.setdefault(key, []).append(m)
        out = []
        for group in groups.values():
            pieces = self._pieces(q, group)
            out.append((group, pieces[0] if len(pieces) == 1 else union_all(*pieces)))
        return out

    # -- running ------------------------------------------------------------------------------------
    def run(self, q: MeasureQuery, conn: Connection | None = None) -> Values:
        values: Values = {}
        if conn is None:
            with self.engine.connect() as c:
                return self.run(q, c)
        self.check_numbers(q.measures, conn)  # a sum that would count text as 0 is refused, never returned
        for group, stmt in self.statements(q):
            for row in conn.execute(stmt).mappings():
                g = row.get("g", None) if q.group_by else None
                key = (int(row["r"]), _group_key(g) if q.group_by else None)
                slot = values.setdefault(key, {})
                for ms in group:
                    slot[ms.key] = _number(row[ms.key], ms)
        if not q.group_by:  # every range has a row even where a branch found nothing
            for i in range(len(q.ranges)):
                slot = values.setdefault((i, None), {})
                for ms in q.measures:
                    slot.setdefault(ms.key, _number(None, ms))
        return values

    def latest(self, measures: Iterable[Measure], conn: Connection | None = None) -> dict[str, datetime | date | None]:
        """The newest time value of each table the measures read (index-backed MAX), remembered for
        ``LATEST_TTL`` seconds: data freshness moves slowly, and every answer shows it."""
        if conn is None:
            with self.engine.connect() as c:
                return self.latest(measures, c)
        return self._edge(func.max, self._latest, LATEST_TTL, measures, conn)

    def earliest(self, measures: Iterable[Measure], conn: Connection) -> dict[str, datetime | date | None]:
        """The oldest time value of each table the measures read (index-backed MIN): where its history
        starts. Remembered for ``EARLIEST_TTL`` seconds."""
        return self._edge(func.min, self._earliest, EARLIEST_TTL, measures, conn)

    def _edge(self, agg, cache: dict, ttl: float, measures: Iterable[Measure], conn: Connection) -> dict:
        out: dict[str, datetime | date | None] = {}
        now = time.monotonic()
        for m in measures:
            if m.table in out:
                continue
            hit = cache.get((m.table, m.time))
            if hit is None or now - hit[0] > ttl:
                hit = (now, self._utc(conn.execute(select(agg(self._col(m, m.time)))).scalar()))
                cache[(m.table, m.time)] = hit
            out[m.table] = hit[1]
        return out


def _aggregate(m: Measure, col):
    if m.agg == "count":
        return func.count()
    if m.agg == "count_distinct":
        return func.count(distinct(col))
    return getattr(func, m.agg)(col)


def _number(v, m: Measure) -> float | None:
    if v is None:
        # no rows: a sum or count of nothing is 0; a min/max of nothing is no data
        return 0.0 if m.agg in ("sum", "count", "count_distinct") else None
    return float(v)


def _group_key(g) -> str:
    return "(none)" if g is None or g == "" else str(g)
