"""Which KPIs the shop's data can give (``kpibot source check``): per KPI, available or not, and what is
missing (tables, ``table.column``); per numeric column a KPI sums, how many of its values are not numbers
(text such as "n/a", which SQLite keeps in a numeric column and would sum as 0).

The engine refuses the same KPIs when asked (``KpiUnavailable``, ``NonNumericValues``); this is the whole
picture at once, for an operator. Names only tables and columns: never where the source is.

With a source mapping (config/source.yaml), the mapping is checked against the live database too
(``SourceReport.mapping``): the shop's tables and columns it names that are not there, columns of the wrong type
(money that is not numeric, a time that is not a date or time), canonical columns it does not map, and the
order statuses of the data that it names neither cancelled nor placed, with their counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Date, DateTime, Float, Integer, MetaData, Numeric, Table, func, select
from sqlalchemy.engine import Connection, Engine

from kpi.data.schema import SOURCE_TABLES
from kpi.i18n import N_, tr

from .mapping import CANCELLED, PLACED, MappedCatalog, find_column, present_columns, source_table, sql_layer
from .model import Catalog, _columns_used

MAX_STATUSES = 50  # distinct order statuses listed at most


@dataclass(frozen=True)
class Finding:
    """One line of the mapping's check: ``problem`` when KPIs cannot be read as mapped (else a note)."""

    problem: bool
    msgid: str
    values: dict[str, object] = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return tr(lang, self.msgid, **self.values)


@dataclass(frozen=True)
class KpiAvailability:
    key: str
    name: str
    missing: tuple[str, ...] = ()  # tables and table.column the source lacks
    not_numbers: dict[str, int] = field(default_factory=dict)  # table.column -> values that are not numbers

    @property
    def available(self) -> bool:
        return not self.missing and not any(self.not_numbers.values())


@dataclass(frozen=True)
class SourceReport:
    kpis: list[KpiAvailability]
    missing: list[str]  # every missing table and table.column, sorted
    not_numbers: dict[str, int]  # every numeric column a KPI sums (that exists) -> values that are not numbers
    mapping: list[Finding] = field(default_factory=list)  # the source mapping checked, and the order statuses
    mapping_file: str | None = None  # the mapping's file name (None: the canonical tables)

    @property
    def available(self) -> bool:
        return all(k.available for k in self.kpis)

    @property
    def mapping_ok(self) -> bool:
        return not any(f.problem for f in self.mapping)

    def lines(self, lang: str = "en") -> list[str]:
        """The mapping's check as text lines to print (none when there is nothing to say)."""
        if not self.mapping:
            return []
        if self.mapping_file:
            head = tr(lang, "Source mapping ({file}):", file=self.mapping_file)
        else:
            head = tr(lang, "Shop data:")
        return [head] + [f"  {'✗' if f.problem else '·'} {f.text(lang)}" for f in self.mapping]

    def as_dict(self) -> dict:
        return {"available": self.available, "missing": self.missing, "not_numbers": self.not_numbers,
                "mapping": [{"problem": f.problem, "text": f.text("en")} for f in self.mapping],
                "kpis": [{"key": k.key, "name": k.name, "available": k.available, "missing": list(k.missing),
                          "not_numbers": {c: n for c, n in k.not_numbers.items() if n}} for k in self.kpis]}


def check_source(catalog: Catalog, engine: Engine, *, lang: str = "en") -> SourceReport:
    """The report: one look at the source's tables and columns, then one count per numeric column summed
    (SQLite; elsewhere a numeric column's type refuses text, so the count is 0 without asking)."""
    present = present_columns(catalog, engine)
    missing: set[str] = set()
    for m in catalog.measures.values():
        for t, c in _columns_used(m):
            if t not in present:
                missing.add(t)
            elif c not in present[t]:
                missing.add(f"{t}.{c}")
    complete = [m for m in catalog.measures.values()
                if all(t in present and c in present[t] for t, c in _columns_used(m))]
    sql = sql_layer(catalog, engine)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for name in sql.numeric_columns(complete):
            counts[name] = sql.count_not_numbers(name, conn)
    kpis = []
    for key, metric in catalog.metrics.items():
        lacks = tuple(catalog.missing_for(metric, present))
        summed = [] if lacks else sql.numeric_columns(catalog.measures_of(metric))
        kpis.append(KpiAvailability(key, metric.name(lang), lacks, {c: counts.get(c, 0) for c in summed}))
    findings = mapping_findings(catalog, engine)
    return SourceReport(kpis, sorted(missing), dict(sorted(counts.items())), findings,
                        catalog.mapping.path if isinstance(catalog, MappedCatalog) else None)


def mapping_findings(catalog: Catalog, engine: Engine) -> list[Finding]:
    """The mapping against the live database (one look at each mapped table), then the order statuses."""
    out: list[Finding] = []
    with engine.connect() as conn:
        if isinstance(catalog, MappedCatalog):
            base = catalog.base or catalog  # its dimensions as config/metrics.yaml has them, unmapped ones too
            used = {(t, c) for m in base.measures.values() for t, c in _columns_used(m)}
            for name, tm in sorted(catalog.mapping.tables.items()):
                try:
                    real = Table(tm.table, MetaData(), schema=tm.schema, autoload_with=conn)
                except Exception:  # noqa: BLE001 - not there (or not readable)
                    out.append(Finding(True, N_("table {table} (mapped as {canonical}) is not in the source database"),
                                       {"table": tm.qualified, "canonical": name}))
                    continue
                out += _columns(name, tm, real)
                lacking = sorted(f"{name}.{c}" for t, c in used if t == name and c not in tm.columns)
                if lacking:
                    out.append(Finding(False, N_("not mapped (the KPIs and breakdowns reading them are unavailable): "
                                                 "{columns}"), {"columns": ", ".join(lacking)}))
        out += _statuses(catalog, conn)
    return out


def _columns(name: str, tm, real: Table) -> list[Finding]:
    out: list[Finding] = []
    canonical = SOURCE_TABLES[name]
    for c, wanted in tm.columns.items():
        col = find_column(real, wanted)
        values = {"column": f"{real.name}.{wanted}", "canonical": f"{name}.{c}", "table": tm.qualified}
        if col is None:
            out.append(Finding(True, N_("column {column} (mapped as {canonical}) is not in table {table}"), values))
            continue
        want, have = canonical.c[c].type, col.type
        if isinstance(want, Integer | Numeric | Float) and not isinstance(have, Integer | Numeric | Float):
            out.append(Finding(True, N_("column {column} (mapped as {canonical}) is {type}, not a number"),
                               {**values, "type": str(have)}))
        elif isinstance(want, Date | DateTime) and not isinstance(have, Date | DateTime):
            out.append(Finding(True, N_("column {column} (mapped as {canonical}) is {type}, not a date or time"),
                               {**values, "type": str(have)}))
    return out


def _statuses(catalog: Catalog, conn: Connection) -> list[Finding]:
    """The order statuses of the data that are neither cancelled nor placed (counted as placed), with counts."""
    tm = catalog.mapping.tables.get("orders") if isinstance(catalog, MappedCatalog) else None
    try:
        orders = source_table(catalog, "orders", conn)
        col = orders.c["status"]
    except Exception:  # noqa: BLE001 - no orders, or no status column: no status to check
        return []
    cancelled = tm.statuses.get(CANCELLED, (CANCELLED,)) if tm and tm.statuses else (CANCELLED,)
    # a mapping that lists only the cancelled values means: whatever else is an order (nothing to flag)
    placed = tm.placed_values() if tm and tm.statuses else (PLACED,)
    rows = conn.execute(select(col, func.count()).group_by(col).order_by(func.count().desc()).limit(MAX_STATUSES)).all()
    found: list[Finding] = []
    empty = sum(int(n) for v, n in rows if v is None or str(v).strip() == "")
    if empty:
        found.append(Finding(False, N_("orders.status: {n} orders have no status ({column}): counted as orders, "
                                       "not cancelled"), {"n": empty, "column": f"{orders.name}.{col.name}"}))
    if placed is None:
        return found
    unknown = [(str(v), int(n)) for v, n in rows
               if v is not None and str(v).strip() and str(v) not in cancelled + placed]
    if unknown:
        found.append(Finding(True, N_("orders.status: values neither placed nor cancelled ({column}), counted as "
                                      "placed: {values}"), {"column": f"{orders.name}.{col.name}",
                                                            "values": ", ".join(f"{v} ({n})" for v, n in unknown)}))
    return found


__all__ = ["Finding", "KpiAvailability", "SourceReport", "check_source", "mapping_findings"]
