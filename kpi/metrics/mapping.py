"""A shop's own tables, where they already are: ``config/source.yaml`` maps the canonical tables and columns
(README, "Data model") to the shop's own, so that ``KPI_SOURCE_URL`` may point at the shop's database or
warehouse as it is (no copy, no views). See config/source.yaml for the format.

The catalog keeps its canonical names: each mapped table is read through a SQLAlchemy ``Table`` of the shop's
table whose columns are *keyed* by their canonical names (``Column("net_total", key="subtotal")``), so every
measure, join, condition and dimension of ``config/metrics.yaml`` compiles unchanged, and the shop's names
reach SQL only as identifiers validated here and quoted by SQLAlchemy. What the mapping changes in the catalog
(``SourceMapping.apply``): the canonical ``status`` values become the shop's (``!= cancelled`` is ``not_in``
the shop's cancelled values), a dimension whose column is not mapped is left out (no breakdown by device,
the KPI itself still answers), and the naive timestamps are read in ``timezone``. A canonical column that is
not mapped is one the shop does not have: the KPIs reading it are unavailable, the others answer.
Canonical tables not listed are read as they are (the bot's own tables, such as imported traffic).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, MetaData, Table, func, inspect, select
from sqlalchemy.engine import Connection, Engine

from kpi.data.schema import SOURCE_TABLES
from kpi.errors import KpiError
from kpi.i18n import N_

from .engine import KpiEngine
from .model import Catalog, Condition, Measure, source_columns
from .sql import SqlLayer

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the column that places each canonical table's rows in time: a mapping of the table must name it
TIME_COLUMNS = {"orders": "placed_at", "returns": "returned_at", "customers": "first_order_at", "traffic": "day",
                "marketing_spend": "day", "email_campaigns": "sent_at"}
PLACED, CANCELLED = STATUSES = ("placed", "cancelled")  # the canonical orders.status values
TABLE_KEYS = ("table", "columns", "status")


class MappingError(KpiError):
    """``config/source.yaml`` is wrong: every problem at once, each with its line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(N_("invalid source mapping:\n{problems}"),
                         problems="\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class TableMapping:
    canonical: str  # orders
    table: str  # sales_orders
    schema: str | None  # shop
    columns: dict[str, str]  # canonical column -> the shop's column (status included when mapped)
    statuses: dict[str, tuple[str, ...]]  # canonical status -> the shop's values (orders only)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def placed_values(self) -> tuple[str, ...] | None:  # None: every value that is not cancelled
        return self.statuses.get(PLACED)


@dataclass(frozen=True, eq=False)
class SourceMapping:
    tables: dict[str, TableMapping]
    timezone: str | None = None
    path: str = "config/source.yaml"

    # -- the catalog, mapped -----------------------------------------------------------------------------
    def apply(self, catalog: Catalog) -> MappedCatalog:
        """The catalog reading the shop's tables: statuses translated, unmapped dimensions left out."""
        measures = {k: self._measure(m) for k, m in catalog.measures.items()}
        return MappedCatalog(measures, catalog.metrics, catalog.path, timestamps_tz=self.timezone, mapping=self,
                             base=catalog)

    def _split(self, m: Measure, ref: str, table: str | None = None) -> tuple[str, str]:
        return (ref.split(".", 1)[0], ref.split(".", 1)[1]) if "." in ref else (table or m.table, ref)

    def lacks(self, table: str, column: str) -> bool:
        """A column of a mapped table that the mapping does not name (the shop has no such column)."""
        tm = self.tables.get(table)
        return tm is not None and column not in tm.columns

    def _measure(self, m: Measure) -> Measure:
        dims = {d: found for d, ref in m.dimensions.items() if (found := self._dimension(m, ref)) is not None}
        where = tuple(c for c in (self._condition(m, c) for c in m.where) if c is not None)
        return dataclasses.replace(m, dimensions=dims, where=where)

    def _dimension(self, m: Measure, ref: str) -> str | None:
        """Where the shop keeps a dimension of the measure: its own column; else, when the measure's joined
        table has it (a returns table without a country reads its order's), that one; else nowhere."""
        table, column = self._split(m, ref)
        if not self.lacks(table, column):
            return ref
        if m.join_table and table == m.table and self.has(m.join_table, column):
            return f"{m.join_table}.{column}"
        return None

    def has(self, table: str, column: str) -> bool:
        """The shop has this canonical column: a mapped table names it, or the canonical table has it."""
        tm = self.tables.get(table)
        if tm is not None:
            return column in tm.columns
        return table in SOURCE_TABLES and column in SOURCE_TABLES[table].c

    def _condition(self, m: Measure, c: Condition, table: str | None = None) -> Condition | None:
        v = c.value
        if dataclasses.is_dataclass(v) and hasattr(v, "where") and hasattr(v, "table"):  # values of another table
            sub = tuple(x for x in (self._condition(m, s, v.table) for s in v.where) if x is not None)
            return dataclasses.replace(c, value=dataclasses.replace(v, where=sub))
        t, col = self._split(m, c.column, table)
        tm = self.tables.get(t)
        if tm is None or col != "status":
            return c
        if "status" not in tm.columns:  # no status column: no order is cancelled
            return None if c.op in ("!=", "not_in") else c
        if not tm.statuses:
            return c
        wanted = list(v) if c.op in ("in", "not_in") and isinstance(v, tuple | list) else [v]
        positive = c.op in ("=", "in")
        if c.op not in ("=", "!=", "in", "not_in") or not all(isinstance(w, str) for w in wanted):
            return c
        cancelled = tm.statuses.get(CANCELLED, ())
        if wanted == [PLACED] and tm.placed_values() is None:  # placed: whatever is not cancelled
            return Condition(c.column, "not_in" if positive else "in", cancelled)
        values: list[str] = []
        for w in wanted:
            values += [x for x in tm.statuses.get(w, (w,)) if x not in values]
        return Condition(c.column, "in" if positive else "not_in", tuple(values))

    # -- the live database -------------------------------------------------------------------------------
    def reflect(self, name: str, bind: Engine | Connection) -> tuple[Table, Table]:
        """(the shop's table as the database has it, the same table with its mapped columns keyed by their
        canonical names). Raises ``sqlalchemy.exc.NoSuchTableError`` when the table is not there."""
        tm = self.tables[name]
        real = Table(tm.table, MetaData(), schema=tm.schema, autoload_with=bind)
        cols = []
        for canonical, wanted in tm.columns.items():
            col = find_column(real, wanted)
            if col is not None:
                cols.append(Column(col.name, col.type, key=canonical, nullable=col.nullable))
        return real, Table(real.name, MetaData(), *cols, schema=tm.schema)

    def present(self, engine: Engine, only: set[str]) -> dict[str, set[str]]:
        """The catalog's tables the source has, each with the canonical columns it has (as ``source_columns``)."""
        out = source_columns(engine, {t for t in only if t not in self.tables})
        insp = inspect(engine)
        for name in sorted(set(only) & set(self.tables)):
            tm = self.tables[name]
            try:
                names = [c["name"] for c in insp.get_columns(tm.table, schema=tm.schema)]
            except Exception:  # noqa: BLE001 - not there (NoSuchTableError), or not readable: the table is missing
                continue
            if names:
                out[name] = {c for c, want in tm.columns.items() if _match(names, want) is not None}
        return out


def find_column(table: Table, wanted: str):
    """The table's column ``wanted`` (else the one named so in another case: warehouses fold unquoted names)."""
    name = _match([c.name for c in table.c], wanted)
    return None if name is None else table.c[name]


def _match(names: list[str], wanted: str) -> str | None:
    if wanted in names:
        return wanted
    folded = [n for n in names if n.lower() == wanted.lower()]
    return folded[0] if len(folded) == 1 else None


class MappedCatalog(Catalog):
    """The catalog over a shop's own tables: canonical names, read through ``mapping``."""

    def __init__(self, measures, metrics, path: str = "<catalog>", *, timestamps_tz: str | None,
                 mapping: SourceMapping, base: Catalog | None = None):
        super().__init__(measures, metrics, path, timestamps_tz=timestamps_tz)
        self.mapping = mapping
        self.base = base  # the catalog as config/metrics.yaml has it


class MappedSqlLayer(SqlLayer):
    """The SQL layer reading a mapped table through its canonical keys (bound on first use, again when a
    column the mapping names appears later)."""

    REBIND_EVERY = 30.0  # seconds between two looks at a mapped table for a column it lacked

    def __init__(self, catalog: MappedCatalog, engine: Engine):
        self._mapped = catalog.mapping
        self._bound_at: dict[str, float] = {}
        super().__init__(catalog, engine)
        for name in list(self._tables):
            if name in self._mapped.tables:
                del self._tables[name]  # the canonical table of that name is not the shop's

    def _bind(self, name: str) -> Table:
        real, keyed = self._mapped.reflect(name, self.engine)
        self._tables[name] = keyed
        self._tables.setdefault(real.name, real)  # as its own name (a count of the values that are not numbers)
        self._bound_at[name] = time.monotonic()
        return keyed

    def _table(self, name: str, conn=None) -> Table:
        if name in self._mapped.tables and name not in self._tables:
            return self._bind(name)
        return super()._table(name, conn)

    def _col(self, m: Measure, ref: str):
        try:
            return super()._col(m, ref)
        except KeyError:
            table = ref.split(".", 1)[0] if "." in ref else m.table
            if table not in self._mapped.tables or time.monotonic() - self._bound_at.get(table, 0) < self.REBIND_EVERY:
                raise
            self._bind(table)
            return super()._col(m, ref)


class MappedKpiEngine(KpiEngine):
    """The KPI engine over a mapped catalog: which KPIs the source can give is read through the mapping."""

    def __init__(self, catalog: MappedCatalog, source: Engine, **kwargs: Any):
        super().__init__(catalog, source, **kwargs)
        self.sql = MappedSqlLayer(catalog, source)

    def _read_schema(self, source: Engine | None = None) -> dict[str, set[str]]:
        present = present_columns(self.catalog, source if source is not None else self.sql.engine)
        missing = {key: self.catalog.missing_for(m, present) for key, m in self.catalog.metrics.items()}
        self._schema = (time.monotonic(), present, {k: v for k, v in missing.items() if v})
        return present


# -- what the rest of the bot calls ---------------------------------------------------------------------
def kpi_engine(catalog: Catalog, source: Engine, **kwargs: Any) -> KpiEngine:
    """The KPI engine for ``catalog``: through its mapping when it has one."""
    if isinstance(catalog, MappedCatalog):
        return MappedKpiEngine(catalog, source, **kwargs)
    return KpiEngine(catalog, source, **kwargs)


def sql_layer(catalog: Catalog, source: Engine) -> SqlLayer:
    return MappedSqlLayer(catalog, source) if isinstance(catalog, MappedCatalog) else SqlLayer(catalog, source)


RECENT_ORDERS = 1000  # the newest orders whose currencies say the shop's


def order_currencies(catalog: Catalog, engine: Engine) -> list[tuple[str, int]]:
    """The currencies of the shop's newest orders (the last ``RECENT_ORDERS``), most frequent first, with their
    counts: one query bounded by the time index, whatever the table's size (the currency a shop sells in now;
    a period in several currencies is the engine's to refuse). [] when the source has no orders, or they carry
    no currency (a mapping that names none)."""
    try:
        with engine.connect() as conn:
            orders = source_table(catalog, "orders", conn)
            if "currency" not in orders.c:
                return []
            col = orders.c["currency"]
            newest = select(col.label("c")).order_by(orders.c["placed_at"].desc()).limit(RECENT_ORDERS).subquery()
            rows = conn.execute(select(newest.c.c, func.count()).where(newest.c.c.is_not(None))
                                .group_by(newest.c.c)).all()
    except Exception:  # noqa: BLE001 - no orders table (yet), or the source is down: no currency from the data
        return []
    counts: dict[str, int] = {}
    for code, n in rows:
        code = str(code).strip().upper()
        if len(code) == 3 and code.isalpha():
            counts[code] = counts.get(code, 0) + int(n)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def present_columns(catalog: Catalog, engine: Engine) -> dict[str, set[str]]:
    """The catalog's tables in the source, each with its (canonical) columns."""
    if isinstance(catalog, MappedCatalog):
        return catalog.mapping.present(engine, catalog.tables())
    return source_columns(engine, catalog.tables())


def source_table(catalog: Catalog, name: str, bind: Engine | Connection) -> Table:
    """The table the catalog reads as ``name``, columns keyed by their canonical names. Raises when the
    source has no such table."""
    if isinstance(catalog, MappedCatalog) and name in catalog.mapping.tables:
        return catalog.mapping.reflect(name, bind)[1]
    return Table(name, MetaData(), autoload_with=bind)


__all__ = ["MappedCatalog", "MappedKpiEngine", "MappedSqlLayer", "MappingError", "SourceMapping", "TableMapping",
           "kpi_engine", "order_currencies", "present_columns", "source_table", "sql_layer"]
