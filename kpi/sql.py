"""The SQL layer: measures over labelled time ranges compiled to SQLAlchemy Core.

One statement per group of measures that read the same rows (same table, join, conditions, window and
time column); each time range is one branch of a ``UNION ALL`` with its own ``WHERE time >= :start AND
time < :end``, so that every branch is an index range scan touching only its window, on any dialect.
All aggregation happens in the database; only aggregates come back. Identifiers come from the catalog
(checked at load); every value, user text included, is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import (
    Date,
    MetaData,
    Table,
    and_,
    distinct,
    func,
    literal_column,
    not_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection, Engine

from .catalog import Catalog, Condition, Measure
from .schema import SOURCE_TABLES


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


# result: (range index, group value or None) -> measure key -> value
Values = dict[tuple[int, str | None], dict[str, float | None]]


class SqlLayer:
    def __init__(self, catalog: Catalog, engine: Engine):
        self.catalog = catalog
        self.engine = engine
        self._tables: dict[str, Table] = {}
        meta = MetaData()
        for name in sorted(catalog.tables()):
            if name in SOURCE_TABLES:
                self._tables[name] = SOURCE_TABLES[name]
            else:  # a table or view of the user's own: its columns as the database has them
                self._tables[name] = Table(name, meta, autoload_with=engine)

    # -- compiling --------------------------------------------------------------------------------
    def _col(self, m: Measure, ref: str):
        table, col = ref.split(".", 1) if "." in ref else (m.table, ref)
        return self._tables[table].c[col]

    def _bound(self, m: Measure, value: datetime | None):
        """A range boundary in the time column's terms: a local date for dates, naive UTC for timestamps."""
        if value is None:
            return None
        if isinstance(self._col(m, m.time).type, Date):
            return value.date()
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

    def _branch(self, q: MeasureQuery, group: Sequence[Measure], index: int, rng: TimeRange):
        m = group[0]
        base = self._tables[m.table]
        source = base
        if self._needs_join(q, m):
            other = self._tables[m.join_table]
            source = base.join(other, base.c[m.join_on] == other.c[m.join_on])
        time_col = self._col(m, m.time)
        conds = []
        start = None if m.window == "to_date" else rng.start
        if start is not None:
            conds.append(time_col >= self._bound(m, start))
        conds.append(time_col < self._bound(m, rng.end))
        conds += [self._condition(m, c, rng) for c in m.where]
        for dim, values in q.filters:  # case-insensitive: people type "email" for "Email"
            conds.append(func.lower(self._col(m, m.dimensions[dim])).in_([v.lower() for v in values]))
        for dim, values in q.exclude:
            col = self._col(m, m.dimensions[dim])
            conds.append(not_(col.in_(list(values))) | col.is_(None))
        cols = [literal_column(str(int(index))).label("r")]
        group_col = None
        if q.group_by:
            group_col = self._col(m, m.dimensions[q.group_by])
            cols.append(group_col.label("g"))
        for ms in group:
            cols.append(_aggregate(ms, self._col(ms, ms.column) if ms.column else None).label(ms.key))
        stmt = select(*cols).select_from(source).where(and_(*conds))
        if group_col is not None:
            stmt = stmt.group_by(group_col)
        return stmt

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
            branches = [self._branch(q, group, i, r) for i, r in enumerate(q.ranges)]
            out.append((group, branches[0] if len(branches) == 1 else union_all(*branches)))
        return out

    # -- running ------------------------------------------------------------------------------------
    def run(self, q: MeasureQuery, conn: Connection | None = None) -> Values:
        values: Values = {}
        if conn is None:
            with self.engine.connect() as c:
                return self.run(q, c)
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
        """The newest time value of each table the measures read (index-backed MAX)."""
        if conn is None:
            with self.engine.connect() as c:
                return self.latest(measures, c)
        out: dict[str, datetime | date | None] = {}
        for m in measures:
            if m.table in out:
                continue
            out[m.table] = conn.execute(select(func.max(self._col(m, m.time)))).scalar()
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
