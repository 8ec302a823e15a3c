"""The SQL layer: measures over labelled time ranges compiled to SQLAlchemy Core.

One statement per group of measures that read the same rows (same table, join, conditions, window and
time column). All aggregation happens in the database; only aggregates come back. Identifiers come from the
catalog (checked at load); every value, user text included, is a bound parameter.

Statements are built once per *shape* of question (``_shape``: the measures, which ranges have a start, how
they cluster, which dimensions filter, exclude and group, how currencies are checked) and kept (``plan``); the
bounds and the filter values are parameters whose values each question computes (``_Binder`` recipes), so a
new period or filter value reuses the compiled SQL. Many ranges are read by a plan of the database's
(``strategy``): a ``UNION ALL`` of index range scans (SQLite), ``unnest`` + ``LATERAL`` (PostgreSQL), one
scan grouped by the local day (columnar engines, ``kpi.metrics.buckets``), a join to a list of ranges
(others); ``tests/test_plans.py`` proves them equal.

Measures that read the same rows share a statement: a measure's own conditions (zero-value orders among the
orders) are a ``CASE`` inside it. A money sum checks its rows' currency in the same scan, or, when the table's
least and greatest currency (read by the statement itself) show it in the answer's currency only, not at all.
A measure with ``having`` (customers with more than one order) is a grouped subquery of its own.

One module: how measures are grouped into statements, what each statement selects under which label, and how
``run`` reads the rows back by those labels are one piece of logic; split, the labels would have to be agreed
across files. The dialect-specific constructs are in ``kpi.metrics.dialects`` and ``kpi.metrics.buckets``.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    and_,
    bindparam,
    case,
    cast,
    distinct,
    func,
    inspect,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from kpi.data.schema import SOURCE_TABLES, index_columns
from kpi.errors import NonNumericValues

from . import buckets
from .catalog import Catalog, ColumnOf, Condition, Horizon, Measure
from .dialects import CURRENCY_COLUMN, RATES_TABLE, MixedCurrencies, plus_interval


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
PLANS_KEPT = 512  # statements kept built, by shape (a shape is a KPI asked a given way: any period, any filter value)
PERIOD_PARAMS = ("$period_start", "$period_end")

# result: (range index, group value or None) -> measure key -> value
Values = dict[tuple[int, str | None], dict[str, float | None]]


class _Binder:
    """The bound parameters of a statement being built. Each is a recipe (question -> value): the statement is built
    and compiled once per shape of question, and each question of that shape gives its own values."""

    def __init__(self, q: MeasureQuery, currencies: tuple[tuple[str, str], ...] = ()):
        self.q = q
        # how each table's currency is checked (``SqlLayer._currency_modes``): "one" (the table holds only the
        # answer's currency: no check), "other" (rows in another currency than ``shown_currency`` counted),
        # "minmax" (no currency to compare with: the least and greatest tell a mix)
        self.currencies = currencies
        self.memo: dict = {}
        self.recipes: list[tuple[str, Callable[[MeasureQuery], object]]] = []

    def __call__(self, recipe: Callable[[MeasureQuery], object], type_=None, *, expanding: bool = False):
        name = f"p{len(self.recipes)}"
        self.recipes.append((name, recipe))
        return bindparam(name, value=recipe(self.q), type_=type_, expanding=expanding)

    def shared(self, key, recipe: Callable[[MeasureQuery], object], type_=None, *, expanding: bool = False):
        """One parameter for every place of the statement that binds the same value (a filter's values in each
        of a series' branches): computed and expanded once per execution."""
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self(recipe, type_, expanding=expanding)
        return found

    def mode(self, table: str) -> str:
        return dict(self.currencies).get(table, "minmax")

    def params(self, q: MeasureQuery) -> dict[str, object]:
        return {name: recipe(q) for name, recipe in self.recipes}


_UNKNOWN = object()  # a table's currencies not read yet
_EMPTY = object()  # a table with no row (no currency)


class _Recheck(Exception):  # noqa: N818 - not an error: the statement's hope about a table's currency did not hold
    """A statement that did not check each row's currency found its table in another currency than the answer's."""


class SqlLayer:
    def __init__(self, catalog: Catalog, engine: Engine):
        self.catalog = catalog
        self.engine = engine
        self._tables: dict[str, Table] = {}
        self._latest: dict[tuple[str, str], tuple[float, object]] = {}
        self._earliest: dict[tuple[str, str], tuple[float, object]] = {}
        self._meta = MetaData()
        self._plans: OrderedDict[tuple, tuple] = OrderedDict()  # shape -> (measures, [(group, statement, binder)])
        self._plans_lock = threading.Lock()  # the web process's answer threads share the plans
        self._strategy: str | None = None
        self._currency_indexed: dict[str, bool] = {}  # table -> an index leads with its currency
        self._currency_probe: dict[str, object] = {}  # table -> SELECT its least and greatest currency
        self._currency_last: dict[str, object] = {}  # table -> its one currency as last read (_EMPTY, None: several)
        self._currency_seen: dict[str, tuple[tuple, str | None]] = {}  # table -> (file version, its one currency)
        # the currency the answers are written in (Services: the shop's), for the amounts to be checked against it
        self.shown_currency: Callable[[], str | None] | None = None
        # naive timestamps in the source are UTC (the canonical tables), or local times of this zone (a
        # shop's own tables mapped in config/source.yaml): bounds are written, and edges read, in it
        self.stored_tz = ZoneInfo(catalog.timestamps_tz) if getattr(catalog, "timestamps_tz", None) else UTC
        # SQLite keeps a text such as "n/a" in a numeric column as text, and SUM counts it as 0: there, the
        # values that are not numbers of each numeric column summed are counted (one query per column, cached)
        self.checks_numbers = engine.dialect.name == "sqlite"
        self._not_numbers: dict[str, tuple[float, int, tuple | None]] = {}
        self._numeric: dict[tuple[str, ...], list[str]] = {}  # measure keys -> numeric columns they sum
        for name in sorted(catalog.tables()):
            if name in SOURCE_TABLES:
                self._tables[name] = SOURCE_TABLES[name]
            else:  # a table or view of the user's own: its columns as the database has them
                try:
                    self._table(name)
                except Exception:  # noqa: BLE001 - not in the source (yet): its KPIs are unavailable, read when asked
                    continue

    STRATEGIES = ("branches", "lateral", "join", "by_day")

    @property
    def strategy(self) -> str | None:
        """How many ranges are read at once: None chooses by dialect (``branches`` on SQLite, ``lateral`` on
        PostgreSQL, ``by_day`` on columnar engines where it applies, ``join`` elsewhere); set, every dialect uses
        it where it applies (the tests prove each plan gives the same answers)."""
        return self._strategy

    @strategy.setter
    def strategy(self, value: str | None) -> None:
        if value is not None and value not in self.STRATEGIES:
            raise ValueError(f"unknown strategy {value!r} (use one of {', '.join(self.STRATEGIES)})")
        self._strategy = value
        self._plans.clear()

    def _many(self) -> str:
        """The plan for a cluster of many ranges on this engine."""
        if self._strategy is not None:
            return self._strategy
        name = self.engine.dialect.name
        if name == "sqlite":
            return "branches"
        if name == "postgresql":
            return "lateral"
        return "by_day" if name in buckets.COLUMNAR else "join"

    # -- compiling --------------------------------------------------------------------------------
    def _table(self, name: str, conn: Connection | None = None) -> Table:
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = Table(name, self._meta, autoload_with=conn if conn is not None else self.engine)
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
        (SQLite would count them as 0). Counted once per column, and again only once the database has changed
        (its file or its write-ahead log was written since), or after ``NUMBERS_TTL`` seconds for a database
        with no file: a full scan of the column, which a shop with millions of orders should not pay every few
        minutes on a question."""
        if not self.checks_numbers:
            return
        measures = tuple(measures)
        key = tuple(m.key for m in measures)
        names = self._numeric.get(key)
        if names is None:
            names = self._numeric[key] = self.numeric_columns(measures)
        now = time.monotonic()
        version = self._data_version()
        for name in names:
            hit = self._not_numbers.get(name)
            if hit is None or (version is None and now - hit[0] > NUMBERS_TTL) or \
                    (version is not None and hit[2] != version):
                hit = self._not_numbers[name] = (now, self.count_not_numbers(name, conn), version)
            if hit[1]:
                raise NonNumericValues(name, hit[1])

    def _data_version(self) -> tuple[int, ...] | None:
        """When the SQLite file and its write-ahead log were last written, and which file it is; None for any other
        database."""
        path = self.engine.url.database or ""
        if self.engine.dialect.name != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
            # DuckDB: a connection may still read the file an import replaced (DuckDB shares an open instance), so
            # the path's state says nothing sure of what the connection sees
            return None
        found: list[int] = []
        for name in (path, path + "-wal"):
            try:
                st = os.stat(name)
                found += [st.st_ino, st.st_mtime_ns, st.st_size]
            except OSError:
                if name == path:
                    return None
                found += [0, 0, 0]
        return tuple(found)

    def is_daily(self, m: Measure) -> bool:
        """The measure's time column holds days, not times: a day is in it only once it is over."""
        return isinstance(self._col(m, m.time).type, Date)

    def _bound(self, m: Measure, value: datetime | None, ref: str | None = None):
        """A range boundary in the time column's terms (or those of the column ``ref``): a local date for
        dates, naive UTC for timestamps."""
        if value is None:
            return None
        kind = self._col(m, ref or m.time).type
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

    def _condition(self, m: Measure, c: Condition, i: int, b: _Binder):
        """The condition ``c`` of the measure for the range ``i``: a ``$period_start`` or ``$period_end`` is a bound
        parameter read from that range at each execution."""
        col = self._col(m, c.column)
        v = c.value
        if isinstance(v, str) and v in PERIOD_PARAMS:
            v = b(lambda q, v=v: self._value(m, v, q.ranges[i], c.column), col.type)
        if isinstance(v, ColumnOf):  # the values of another table's column (channels that have marketing spend)
            other = self._table(v.table)
            sub = select(other.c[v.column]).where(
                and_(true(), *(_compare(other.c[w.column], w.op, w.value) for w in v.where))).distinct()
            return col.in_(sub) if c.op == "in" else col.not_in(sub)
        return _compare(col, c.op, v)

    def _value(self, m: Measure, v, rng: TimeRange, ref: str):
        if v == "$period_start":
            return self._bound(m, rng.start, ref) if rng.start else self._bound(m, rng.end, ref)
        if v == "$period_end":
            return self._bound(m, rng.end, ref)
        return v

    def _horizon(self, m: Measure, h: Horizon):
        """The horizon's condition: ``column < time + N months`` (a cohort's first year)."""
        return self._col(m, h.column) < plus_interval(self._col(m, m.time), h.amount, h.unit)

    def _needs_join(self, q: MeasureQuery, m: Measure) -> bool:
        if not m.join_table:
            return False
        refs = [c.column for c in m.where] + [m.dimensions[d] for d, _ in q.filters + q.exclude]
        refs += [m.time, m.column or ""] + [h.column for h in m.having if h.column]
        refs += [m.horizon.column] if m.horizon else []
        if q.group_by:
            refs.append(m.dimensions[q.group_by])
        return any(r.startswith(m.join_table + ".") for r in refs)

    def _source(self, q: MeasureQuery, m: Measure):
        base = self._table(m.table)
        if self._needs_join(q, m):
            other = self._table(m.join_table)
            return base.join(other, base.c[m.join_on] == other.c[m.join_on])
        return base

    def _dimension_conditions(self, q: MeasureQuery, m: Measure, b: _Binder) -> list:
        """Filters and exclusions: the values are expanding bound parameters (a new value, or a new number of
        values, reuses the compiled statement)."""
        conds = []
        for j, (dim, _) in enumerate(q.filters):  # case-insensitive: people type "email" for "Email"
            wanted = b.shared(("filter", j), lambda q, j=j: [v.lower() for v in q.filters[j][1]], expanding=True)
            conds.append(func.lower(self._col(m, m.dimensions[dim])).in_(wanted))
        for j, (dim, _) in enumerate(q.exclude):
            col = self._col(m, m.dimensions[dim])
            unwanted = b.shared(("exclude", j, dim), lambda q, j=j: list(q.exclude[j][1]), col.type, expanding=True)
            conds.append(not_(col.in_(unwanted)) | col.is_(None))
        return conds

    def _window(self, m: Measure, i: int, b: _Binder, *, start: bool = True) -> list:
        """``time >= :start AND time < :end`` of the range ``i`` (``start`` False: only the end)."""
        time_col = self._col(m, m.time)
        conds = []
        if start:
            conds.append(time_col >= b(lambda q: self._bound(m, q.ranges[i].start), time_col.type))
        conds.append(time_col < b(lambda q: self._bound(m, q.ranges[i].end), time_col.type))
        return conds

    def _select(self, q: MeasureQuery, group: Sequence[Measure], range_col, source, conds: list, b: _Binder,
                extra_group=(), i: int = 0, has_start: bool = True):
        m = group[0]
        if m.having:
            return self._grouped(q, m, range_col, source, conds, extra_group, i, b, has_start)
        cols = [range_col.label("r")]
        group_cols = list(extra_group)
        if q.group_by:
            group_col = self._col(m, m.dimensions[q.group_by])
            cols.append(group_col.label("g"))
            group_cols.append(group_col)
        money = self._money(group)
        rate = self._rate(m) if money else None
        common = _common(group)
        for ms in group:
            col = self._col(ms, ms.column) if ms.column else None
            if rate is not None and ms.agg in ("sum", "min", "max") and col is not None:
                col = col * rate  # converted to the shop's currency
            # a measure's own conditions beyond the statement's (zero-value orders among the orders): the rows
            # that meet them, in the same scan
            own = [self._condition(ms, c, i, b) for c in ms.where if c not in common]
            if own:
                col = case((and_(*own), col if col is not None else literal_column("1")))
            cols.append(_aggregate(ms, col).label(ms.key))
        if money:  # whether the rows are in another currency than the answer's (converting: rows with no rate)
            cur = self._table(m.table).c[CURRENCY_COLUMN]
            if rate is None and self._indexed(m.table):
                cols += self._probe(m.table, b)
            if rate is not None:
                cols.append(func.sum(case((rate.is_(None), 1), else_=0)).label("_unrated"))
            elif b.mode(m.table) in ("one", "probe"):  # the whole table is in the answer's currency: nothing to check
                pass
            elif b.mode(m.table) == "other":  # the rows in another currency than the answer's: one comparison a row
                other = cur != bindparam("shown_currency", type_=cur.type)
                cols.append(func.count(case((other, literal_column("1")))).label("_currency_other"))
            else:  # no currency to compare with: MIN and MAX (cheaper than a distinct count) tell a mix
                cols += [func.min(cur).label("_currency_min"), func.max(cur).label("_currency_max")]
        stmt = select(*cols).select_from(source).where(and_(*conds))
        return stmt.group_by(*group_cols) if group_cols else stmt

    def _grouped(self, q: MeasureQuery, m: Measure, range_col, source, conds: list, extra_group, i: int,
                 b: _Binder, has_start: bool):
        """A measure with ``having``: the rows grouped by its column (customers), the groups that meet every
        condition counted: ``SELECT r, COUNT(k) FROM (SELECT r, customer_id AS k ... GROUP BY r, customer_id
        HAVING COUNT(*) > 1) GROUP BY r``. An empty key (a guest order's customer) is never counted."""
        key = self._col(m, m.column)
        cols = [range_col.label("r"), key.label("k")]
        group_cols = [*extra_group, key]
        if q.group_by:
            group_col = self._col(m, m.dimensions[q.group_by])
            cols.append(group_col.label("g"))
            group_cols.append(group_col)
        having = []
        for h in m.having:
            agg = func.count() if h.agg == "count" else getattr(func, h.agg)(self._col(m, h.column))
            value = h.value
            if h.column and isinstance(value, str) and value in PERIOD_PARAMS:
                ref = h.column or m.time
                value = b(lambda q, v=value, ref=ref: self._value(m, v, q.ranges[i], ref), self._col(m, ref).type)
            having.append(_compare(agg, h.op, value))
        conds = list(conds) + self._keys_in_period(m, key, i, b, has_start)
        inner = (select(*cols).select_from(source).where(and_(*conds)).group_by(*group_cols)
                 .having(and_(*having)).subquery("grouped"))
        outer = [inner.c.r, func.count(inner.c.k).label(m.key)]
        outer_group = [inner.c.r]
        if q.group_by:
            outer.insert(1, inner.c.g)
            outer_group.append(inner.c.g)
        return select(*outer).group_by(*outer_group)

    def _keys_in_period(self, m: Measure, key, i: int, b: _Binder, has_start: bool) -> list:
        """When a group must have a row in the period (``MAX(time) >= $period_start``), only the keys with a
        row in it are grouped: ``customer_id IN (SELECT customer_id ... WHERE time in the period)``, a short
        index range scan, instead of grouping every customer of the history for each range (a daily series
        would otherwise read the whole table once per day). The same groups are counted either way."""
        wanted = any(h.agg == "max" and h.column == m.time and h.op in (">", ">=") and h.value == "$period_start"
                     for h in m.having)
        if not wanted or not has_start or m.window != "to_date" or "." in (m.column or "") \
                or any("." in c.column for c in m.where):
            return []
        inside = self._window(m, i, b) + [self._condition(m, c, i, b) for c in m.where]
        return [key.in_(select(key).where(and_(*inside)).distinct())]

    # -- currencies -------------------------------------------------------------------------------------
    def _money(self, group: Sequence[Measure]) -> bool:
        """The group sums amounts of a table that has a currency column (orders, a shop's own table)."""
        m = group[0]
        table = self._table(m.table)
        return (CURRENCY_COLUMN in table.c and not m.having
                and any(ms.agg in ("sum", "min", "max") and ms.column and self._col(ms, ms.column).table is table
                        for ms in group))

    def _rates(self, conn: Connection | None = None):
        """The rates table (``currency_rates``), when the source has one; looked for once, on the question's
        connection (``run`` looks first: a second connection while a question holds one could wait for the pool
        when every thread does the same)."""
        if not hasattr(self, "_rates_table"):
            found = inspect(conn if conn is not None else self.engine).has_table(RATES_TABLE)
            self._rates_table = self._table(RATES_TABLE, conn) if found else None
        return self._rates_table

    def _rate(self, m: Measure):
        """The rate of each row's currency (a correlated scalar subquery), when there is a rates table."""
        rates = self._rates()
        if rates is None:
            return None
        own = self._table(m.table).c[CURRENCY_COLUMN]
        return select(rates.c.rate).where(rates.c.currency == own).limit(1).scalar_subquery()

    def _one_currency(self, seen: dict[str, set[str]], shown: str | None) -> None:
        """Amounts added up across ranges (a period from its days, a total from its breakdown) or compared are in
        one currency, the one the answer is written in (``shown_currency``); without a rates table to convert
        them, anything else is refused."""
        if self._rates() is not None:
            return
        for table, found in seen.items():
            if len(found) > 1:
                raise MixedCurrencies(table, sorted(found))
            if found and shown and found != {shown}:
                raise MixedCurrencies(table, sorted(found), shown=shown)

    def _indexed(self, table: str, conn: Connection | None = None) -> bool:
        """An index of ``table`` leads with its currency (the canonical orders): its least and greatest currency are
        two index probes. Looked for once (on the question's connection: ``run`` looks first)."""
        indexed = self._currency_indexed.get(table)
        if indexed is None:
            try:
                found = index_columns(conn if conn is not None else self.engine, table)
            except NotImplementedError:  # a dialect that lists no indexes
                found = {}
            indexed = self._currency_indexed[table] = any(cols[:1] == [CURRENCY_COLUMN] for cols in found.values())
        return indexed

    def _probe(self, table: str, b: _Binder) -> list:
        """The table's least and greatest currency, read by the statement itself (in the same snapshot as its sums)
        in its first piece; the other pieces of a UNION ALL select NULL in their place."""
        cur = self._table(table).c[CURRENCY_COLUMN]
        if b.memo.get(("probe", table)):
            return [cast(null(), cur.type).label("_all_min"), cast(null(), cur.type).label("_all_max"),
                    cast(null(), Integer).label("_probed")]
        b.memo[("probe", table)] = True
        every = self._table(table).alias("every_row")
        return [select(func.min(every.c[CURRENCY_COLUMN])).scalar_subquery().label("_all_min"),
                select(func.max(every.c[CURRENCY_COLUMN])).scalar_subquery().label("_all_max"),
                literal_column("1").label("_probed")]

    def _currency_modes(self, q: MeasureQuery, shown: str | None, conn: Connection) -> tuple[tuple[str, str], ...]:
        """How the amounts of each table of ``q`` with a currency column are checked (``_Binder.currencies``)."""
        out = []
        for table in sorted({m.table for m in q.measures}):
            if CURRENCY_COLUMN not in self._table(table).c:
                continue
            if self._indexed(table):  # as the last statement found it (first: hoped for), checked by this one
                last = self._currency_last.get(table, _UNKNOWN)
                fine = last is _UNKNOWN or last is _EMPTY or (last is not None and (shown is None or last == shown))
                out.append((table, "probe" if fine else "other" if shown else "minmax"))
                continue
            only = self._only_currency(table, conn)
            if shown is None:  # no currency to compare with: a table in one currency cannot mix them
                out.append((table, "one" if only is not None else "minmax"))
            else:
                out.append((table, "one" if only == shown else "other"))
        return tuple(out)

    def _only_currency(self, table: str, conn: Connection) -> str | None:
        """The one currency of every row of ``table``, when that is cheap to know for sure; None otherwise (several,
        none, or unknown). With an index that leads with the currency (the canonical orders have one), the least
        and the greatest are two index probes at each question; on DuckDB, its column statistics on the question's
        connection; on a SQLite file, a scan remembered until the file changes; elsewhere it is not known (every
        row is checked)."""
        t = self._table(table)
        col = t.c[CURRENCY_COLUMN]
        version = None
        if self.engine.dialect.name == "duckdb":
            # DuckDB answers a whole column's least and greatest from its statistics (0.7 ms at 10M orders), and
            # a reader's connection sees one file throughout (imports replace the file): asked on it, each question
            pass
        elif not self._indexed(table):
            version = self._data_version()
            if version is None:
                return None
            hit = self._currency_seen.get(table)
            if hit is not None and hit[0] == version:
                return hit[1]
        probe = self._currency_probe.get(table)
        if probe is None:  # built once: SQLAlchemy then finds its compiled form by the same object
            probe = self._currency_probe[table] = select(select(func.min(col)).scalar_subquery(),
                                                         select(func.max(col)).scalar_subquery())
        lo, hi = conn.execute(probe).one()
        one = str(lo) if lo is not None and lo == hi else None
        if version is not None:
            self._currency_seen[table] = (version, one)
        return one

    def _has_rows(self, table: str, conn: Connection) -> bool:
        return conn.execute(select(literal_column("1")).select_from(self._table(table)).limit(1)).first() is not None

    def _mixed(self, q: MeasureQuery, group: Sequence[Measure], index: int, conn: Connection, unrated: bool,
               shown: str | None = None):
        """The currencies (and those without a rate) of a range that mixes them, or, when a range holds amounts in
        another currency than the answer's (``shown``), of every range of the question (a day in dollars among
        days in euros is "several currencies", not "in dollars"): read only to say so."""
        m = group[0]
        table = self._table(m.table)
        b = _Binder(q)
        every = range(len(q.ranges)) if shown and not unrated else (index,)
        windows = [and_(*self._window(m, i, b, start=q.ranges[i].start is not None and m.window != "to_date"))
                   for i in every]
        conds = [or_(*windows)]
        conds += [self._condition(m, c, index, b) for c in _common(group)]  # the rows the statement summed
        conds += self._dimension_conditions(q, m, b)
        found = sorted(str(c) for c in conn.execute(
            select(table.c[CURRENCY_COLUMN]).select_from(self._source(q, m)).where(and_(*conds)).distinct()
        ).scalars() if c is not None)
        missing: list[str] = []
        if unrated:
            rates = self._rates()
            have = {str(c) for c in conn.execute(select(rates.c.currency)).scalars()}
            missing = [c for c in found if c not in have]
        elif shown and len(found) == 1:
            raise MixedCurrencies(m.table, found, shown=shown)
        raise MixedCurrencies(m.table, found, missing)

    # -- plans --------------------------------------------------------------------------------------------
    def _branch(self, q: MeasureQuery, group: Sequence[Measure], i: int, b: _Binder):
        """One range: ``WHERE time >= :start AND time < :end`` (an index range scan)."""
        m = group[0]
        has_start = m.window != "to_date" and q.ranges[i].start is not None
        conds = self._window(m, i, b, start=has_start)
        conds += [self._condition(m, c, i, b) for c in _common(group)]
        conds += [self._horizon(m, m.horizon)] if m.horizon else []
        conds += self._dimension_conditions(q, m, b)
        return self._select(q, group, literal_column(str(int(i))), self._source(q, m), conds, b, i=i,
                            has_start=has_start)

    def _lateral(self, q: MeasureQuery, group: Sequence[Measure], cluster: Sequence[int], b: _Binder):
        """Many ranges in one statement, PostgreSQL: the ranges as arrays (bound parameters, so that the statement
        is the same for any dates), each read by its own index range scan:
        ``FROM unnest(:r, :s, :e) AS ranges(r, s, e) CROSS JOIN LATERAL (SELECT ... WHERE time >= ranges.s AND
        time < ranges.e ...)``. A join of the rows to a list of ranges let the planner choose a scan of the whole
        table into a nested loop when a filter's selectivity was underestimated (5.6 s against 0.3 s, 10M orders)."""
        m = group[0]
        time_col = self._col(m, m.time)
        kind = time_col.type
        ranges = func.unnest(
            cast(b(lambda q: list(cluster), expanding=False), ARRAY(Integer)),
            cast(b(lambda q: [self._bound(m, q.ranges[i].start) for i in cluster]), ARRAY(kind)),
            cast(b(lambda q: [self._bound(m, q.ranges[i].end) for i in cluster]), ARRAY(kind)),
        ).table_valued("r", "s", "e").render_derived(name="ranges")
        conds = [time_col >= ranges.c.s, time_col < ranges.c.e]
        conds += [self._condition(m, c, cluster[0], b) for c in _common(group)]
        conds += [self._horizon(m, m.horizon)] if m.horizon else []
        conds += self._dimension_conditions(q, m, b)
        inner = self._select(q, group, ranges.c.r, self._source(q, m), conds, b, i=cluster[0]).lateral("per_range")
        return select(*[c for c in inner.c]).select_from(ranges.join(inner, true()))

    def _bucket_join(self, q: MeasureQuery, group: Sequence[Measure], cluster: Sequence[int], b: _Binder):
        """Many ranges in one statement, other dialects: the rows of the overall window joined to a small table of
        ranges (bound parameters)."""
        m = group[0]
        time_col = self._col(m, m.time)
        kind = time_col.type
        rows = [select(literal_column(str(i)).label("r"),
                       b(lambda q, i=i: self._bound(m, q.ranges[i].start), kind).label("s"),
                       b(lambda q, i=i: self._bound(m, q.ranges[i].end), kind).label("e")) for i in cluster]
        ranges = union_all(*rows).subquery("ranges")
        lo = b(lambda q: self._bound(m, min(q.ranges[i].start for i in cluster)), kind)
        hi = b(lambda q: self._bound(m, max(q.ranges[i].end for i in cluster)), kind)
        source = self._source(q, m).join(ranges, and_(time_col >= ranges.c.s, time_col < ranges.c.e))
        conds = [time_col >= lo, time_col < hi]
        conds += [self._condition(m, c, cluster[0], b) for c in _common(group)]
        conds += [self._horizon(m, m.horizon)] if m.horizon else []
        conds += self._dimension_conditions(q, m, b)
        return self._select(q, group, ranges.c.r, source, conds, b, extra_group=[ranges.c.r], i=cluster[0])

    def _joinable(self, group: Sequence[Measure], clusters) -> bool:
        m = group[0]
        return (clusters is not None and m.window == "period" and not any(ms.period_bound for ms in group))

    def _clusters(self, q: MeasureQuery) -> tuple[tuple[int, ...], ...] | None:
        """Ranges that overlap or touch (a period and its buckets) form a cluster; None where every range is a
        branch of its own (SQLite, where a UNION ALL of range scans is fastest, or a range from the beginning)."""
        if self._many() == "branches" or any(r.start is None for r in q.ranges):
            return None
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
        return tuple(tuple(c) for c in clusters)

    def _pieces(self, q: MeasureQuery, group: Sequence[Measure], clusters, days, b: _Binder):
        """(UNION ALL branches, day-grouped statements): a cluster of more than a few ranges is one statement
        (``_lateral`` on PostgreSQL, ``_by_day`` on columnar engines where the group's days combine, ``_bucket_join``
        elsewhere), the rest are branches. Distant ranges (a year ago) never widen another cluster's scan."""
        if not self._joinable(group, clusters):
            return [self._branch(q, group, i, b) for i in range(len(q.ranges))], []
        pieces, by_day = [], []
        # a grouped measure (having) is not correlated inside a LATERAL: it joins its ranges
        many = self._lateral if self._many() == "lateral" and not group[0].having else self._bucket_join
        for cluster, layout in zip(clusters, days, strict=True):
            if len(cluster) <= 4:
                pieces += [self._branch(q, group, i, b) for i in cluster]
            elif layout is not None and self._day_column(group, layout) is not None:
                by_day.append(self._by_day(q, group, cluster, layout, b.currencies))
            else:
                pieces.append(many(q, group, cluster, b))
        return pieces, by_day

    def _day_column(self, group: Sequence[Measure], layout):
        """How the group's time column gives a local day: "date" (it holds days), "cast" (naive local or UTC
        timestamps, no shift), "shift" (naive UTC, shifted by the zone's offset); None: not by day."""
        m = group[0]
        kind = self._col(m, m.time).type
        if not buckets.combinable(group) or m.window != "period":
            return None
        if isinstance(kind, Date):
            return "date"
        if getattr(kind, "timezone", False):
            return None
        slots, zone_key, zero = layout
        if self.stored_tz is not UTC:  # naive local times of the shop's own zone: already local
            return "cast" if getattr(self.stored_tz, "key", None) == zone_key else None
        return "cast" if zero else "shift"

    def _by_day(self, q: MeasureQuery, group: Sequence[Measure], cluster: Sequence[int], layout, currencies):
        """A cluster read by one scan grouped by the local day (``kpi.metrics.buckets``): (statement, binder, fold)."""
        m = group[0]
        b = _Binder(q, currencies)
        time_col = self._col(m, m.time)
        kind = time_col.type

        def span(q):
            return (min(q.ranges[i].start for i in cluster), max(q.ranges[i].end for i in cluster))

        how = self._day_column(group, layout)
        if how == "date":
            day = time_col
        elif how == "cast":
            day = buckets.local_day(time_col, None)
        else:
            def window(q):
                lo, hi = span(q)
                return buckets.offsets(lo.tzinfo, self._bound(m, lo), self._bound(m, hi))

            seconds = buckets.offset_expression(time_col, b, lambda q: window(q)[0], lambda q: window(q)[1], layout[0])
            day = buckets.local_day(time_col, seconds)
        conds = [time_col >= b(lambda q: self._bound(m, span(q)[0]), kind),
                 time_col < b(lambda q: self._bound(m, span(q)[1]), kind)]
        conds += [self._condition(m, c, cluster[0], b) for c in _common(group)]
        conds += self._dimension_conditions(q, m, b)
        stmt = self._select(q, group, day, self._source(q, m), conds, b, extra_group=[day], i=cluster[0])
        return stmt, b, buckets.DayFold(tuple(cluster))

    def _days(self, q: MeasureQuery, clusters) -> tuple | None:
        """For each cluster, on a columnar engine: (transition slots, zone, whether the offset is 0 throughout) when
        every bound of its ranges is a local midnight (it can be read by day), else None."""
        if clusters is None or self._many() != "by_day":
            return None
        out = []
        for cluster in clusters:
            zone = buckets.zone_of(q.ranges, cluster)
            if zone is None or len(cluster) <= 4:
                out.append(None)
                continue
            lo = min(q.ranges[i].start for i in cluster).astimezone(UTC).replace(tzinfo=None)
            hi = max(q.ranges[i].end for i in cluster).astimezone(UTC).replace(tzinfo=None)
            first, changes = buckets.offsets(zone, lo, hi)
            out.append((buckets.transition_slots(len(changes)), getattr(zone, "key", str(zone)),
                        first == 0 and not changes))
        return tuple(out)

    def _shape(self, q: MeasureQuery, clusters, days) -> tuple:
        """What the statements of ``q`` depend on, beside the values they bind: the measures, which ranges have a
        start, how ranges cluster, which dimensions filter, exclude and group."""
        return (tuple(id(m) for m in q.measures), tuple(r.start is None for r in q.ranges), clusters, days,
                tuple(d for d, _ in q.filters), tuple(d for d, _ in q.exclude), q.group_by)

    def plan(self, q: MeasureQuery, currencies: tuple = ()) -> list[tuple[list[Measure], object, _Binder,
                                                                      buckets.DayFold | None]]:
        """The statements of ``q``, built once per shape (``_shape``) and kept: (measures, statement, binder), the
        binder giving the parameters of any question of that shape. One statement per group of measures that scan
        the same rows."""
        clusters = self._clusters(q)
        days = self._days(q, clusters)
        key = (self._shape(q, clusters, days), currencies)
        with self._plans_lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
                return found[1]
        groups: dict[tuple, list[Measure]] = {}
        for m in q.measures:
            # measures of the same rows share a statement; a measure's own conditions become a CASE in it
            gkey = (m.table, m.join_table if self._needs_join(q, m) else None, m.window, m.time,
                    m.dimensions.get(q.group_by) if q.group_by else None,
                    tuple(m.dimensions[d] for d, _ in q.filters + q.exclude), m.horizon,
                    m.key if m.having else None)  # a grouped measure is a statement of its own
            groups.setdefault(gkey, []).append(m)
        out = []
        for group in groups.values():
            b = _Binder(q, currencies)
            pieces, by_day = self._pieces(q, group, clusters, days or (None,) * len(clusters or ()), b)
            if pieces:
                out.append((group, pieces[0] if len(pieces) == 1 else union_all(*pieces), b, None))
            out += [(group, stmt, day_binder, fold) for stmt, day_binder, fold in by_day]
        with self._plans_lock:  # (two threads may build the same shape at once: the last one is kept)
            self._plans[key] = (tuple(q.measures), out)  # the measures are held: their ids stay theirs
            while len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)
        return out

    def statements(self, q: MeasureQuery, currencies: tuple = ()):
        """(measures, statement, parameters, fold) of each statement that answers ``q``; ``fold``, when not None, turns
        the statement's rows (per local day) into rows per range."""
        return [(group, stmt, b.params(q), fold) for group, stmt, b, fold in self.plan(q, currencies)]

    # -- running ------------------------------------------------------------------------------------
    def run(self, q: MeasureQuery, conn: Connection | None = None) -> Values:
        if conn is None:
            with self.engine.connect() as c:
                return self.run(q, c)
        self.check_numbers(q.measures, conn)  # a sum that would count text as 0 is refused, never returned
        self._rates(conn)  # what the statements depend on, looked for on this connection (once)
        for table in {m.table for m in q.measures}:
            if CURRENCY_COLUMN in self._table(table, conn).c:
                self._indexed(table, conn)
        shown = self.shown_currency() if self.shown_currency is not None else None
        for _ in range(3):
            modes = self._currency_modes(q, shown, conn)
            try:
                values = self._read(q, conn, shown, modes)
            except _Recheck:  # the statement found the table in another currency than it hoped: read it checked
                continue
            if self.engine.dialect.name == "sqlite" and any(mode == "one" for _, mode in modes):
                # a SQLite file's table known in one currency from an earlier scan: looked at again after the sums
                # (its file's state, a scan if it changed), since an order committed in between was summed
                # unchecked; a table no longer in one currency is read again, checked
                after = self._currency_modes(q, shown, conn)
                if after != modes:
                    values = self._read(q, conn, shown, after)
            return values
        return self._read(q, conn, shown, tuple((t, "other" if shown else "minmax") for t, _ in modes))

    def _read(self, q: MeasureQuery, conn: Connection, shown: str | None, modes) -> Values:
        values: Values = {}
        seen: dict[str, set[str]] = {}  # table -> the currencies of the amounts summed, over every range and piece
        for group, stmt, params, fold in self.statements(q, modes):
            if group[0].having and self.engine.dialect.name == "postgresql":
                # a grouped measure over many ranges is one large UNION ALL that PostgreSQL's JIT takes seconds to
                # compile (16 s against 2 s run, 1M orders, a 30-day daily series): off for this transaction
                conn.exec_driver_sql("SET LOCAL jit = off")
            rows = conn.execute(stmt, {**params, "shown_currency": shown} if shown else params).mappings()
            if fold is not None:
                rows = fold.fold(q, rows, group, bool(q.group_by))
            keys: set[str] | None = None
            table = group[0].table
            probing = dict(modes).get(table) == "probe" and self._rates() is None and self._money(group)
            probed = False
            for row in rows:
                if keys is None:  # which checks the statement carries: asked once, not by a missing key per row
                    keys = set(row.keys())
                    minmax, other, unrated = ("_currency_min" in keys, "_currency_other" in keys,
                                              "_unrated" in keys)
                    has_probe = "_probed" in keys
                if has_probe and row["_probed"] is not None:
                    lo, hi = row["_all_min"], row["_all_max"]
                    self._currency_last[table] = one = (_EMPTY if lo is None and hi is None else
                                                        str(lo) if lo == hi else None)
                    probed = True
                    if probing and not (one is _EMPTY or (one is not None and (shown is None or one == shown))):
                        raise _Recheck(table)
                mixed = minmax and row["_currency_min"] != row["_currency_max"] and self._rates() is None
                if mixed or (other and row["_currency_other"]) or (unrated and row["_unrated"]):
                    self._mixed(q, group, int(row["r"]), conn, bool(unrated and row["_unrated"]), shown)
                if minmax:
                    seen.setdefault(group[0].table, set()).update(
                        str(row[c]) for c in ("_currency_min", "_currency_max") if row[c] is not None)
                g = row["g"] if q.group_by else None
                key = (int(row["r"]), _group_key(g) if q.group_by else None)
                slot = values.setdefault(key, {})
                for ms in group:
                    slot[ms.key] = _number(row[ms.key], ms)
            if probing and not probed:  # no row of the statement's first piece (a breakdown of an empty range)
                only = self._only_currency(table, conn)
                if only is not None and shown is not None and only != shown or only is None and self._has_rows(table, conn):
                    self._currency_last[table] = None
                    raise _Recheck(table)
        self._one_currency(seen, shown)
        if not q.group_by:  # every range has a row even where a branch found nothing
            for i in range(len(q.ranges)):
                slot = values.setdefault((i, None), {})
                for ms in q.measures:
                    slot.setdefault(ms.key, _number(None, ms))
        return values

    def exists_before(self, q: MeasureQuery, conn: Connection | None = None) -> bool:
        """Whether a row any of the measures reads (its conditions and the filters of ``q`` holding) lies before the
        end of the first range of ``q``: ``SELECT 1 ... WHERE time < :end LIMIT 1``, an index-backed look that stops
        at the first row, where computing the KPI from the beginning would read the whole history."""
        if conn is None:
            with self.engine.connect() as c:
                return self.exists_before(q, c)
        for m in q.measures:
            if any(d not in m.dimensions for d, _ in q.filters):
                continue
            b = _Binder(q)
            conds = self._window(m, 0, b, start=False) + [self._condition(m, c, 0, b) for c in m.where]
            conds += self._dimension_conditions(q, m, b)
            stmt = select(literal_column("1")).select_from(self._source(q, m)).where(and_(*conds)).limit(1)
            if conn.execute(stmt).first() is not None:
                return True
        return False

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
            # a cohort's measure (time: the customer's first order) is as fresh as the rows of its horizon
            ref = m.horizon.column if m.horizon else m.time
            hit = cache.get((m.table, ref))
            if hit is None or now - hit[0] > ttl:
                hit = (now, self._utc(conn.execute(select(agg(self._col(m, ref)))).scalar()))
                if hit[1] is not None:  # an empty table is asked again next time (an import may fill it any moment)
                    cache[(m.table, ref)] = hit
            out[m.table] = hit[1]
        return out


def _compare(col, op: str, v):
    """``col <op> v``; ``v`` None is ``IS NULL`` (=) or ``IS NOT NULL`` (!=). "Is not" holds for an empty value
    of a column that may be empty (an order of a shop's own table with no status is not cancelled), where SQL's
    ``!=`` and ``NOT IN`` would leave the row out."""
    ops = {"=": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__}
    if op in ops:
        found = ops[op](v)
    else:
        found = col.in_(list(v)) if op == "in" else col.not_in(list(v))
    if op in ("!=", "not_in") and v is not None and getattr(col, "nullable", False) and not col.primary_key:
        return or_(found, col.is_(None))
    return found


def _common(group: Sequence[Measure]) -> list[Condition]:
    """The conditions every measure of a statement shares (its WHERE); the rest are each measure's own."""
    return [c for c in group[0].where if all(c in ms.where for ms in group[1:])]


def _aggregate(m: Measure, col):
    if m.agg == "count":
        return func.count() if col is None else func.count(col)
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
