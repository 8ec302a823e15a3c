"""Which KPIs the shop's data can give (``kpibot source check``): per KPI, available or not, and what is
missing (tables, ``table.column``); per numeric column a KPI sums, how many of its values are not numbers
(text such as "n/a", which SQLite keeps in a numeric column and would sum as 0).

The engine refuses the same KPIs when asked (``KpiUnavailable``, ``NonNumericValues``); this is the whole
picture at once, for an operator. Names only tables and columns: never where the source is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from .model import Catalog, _columns_used, source_columns
from .sql import SqlLayer


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

    @property
    def available(self) -> bool:
        return all(k.available for k in self.kpis)

    def as_dict(self) -> dict:
        return {"available": self.available, "missing": self.missing, "not_numbers": self.not_numbers,
                "kpis": [{"key": k.key, "name": k.name, "available": k.available, "missing": list(k.missing),
                          "not_numbers": {c: n for c, n in k.not_numbers.items() if n}} for k in self.kpis]}


def check_source(catalog: Catalog, engine: Engine, *, lang: str = "en") -> SourceReport:
    """The report: one look at the source's tables and columns, then one count per numeric column summed
    (SQLite; elsewhere a numeric column's type refuses text, so the count is 0 without asking)."""
    present = source_columns(engine, catalog.tables())
    missing: set[str] = set()
    for m in catalog.measures.values():
        for t, c in _columns_used(m):
            if t not in present:
                missing.add(t)
            elif c not in present[t]:
                missing.add(f"{t}.{c}")
    complete = [m for m in catalog.measures.values()
                if all(t in present and c in present[t] for t, c in _columns_used(m))]
    sql = SqlLayer(catalog, engine)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for name in sql.numeric_columns(complete):
            counts[name] = sql.count_not_numbers(name, conn)
    kpis = []
    for key, metric in catalog.metrics.items():
        lacks = tuple(catalog.missing_for(metric, present))
        summed = [] if lacks else sql.numeric_columns(catalog.measures_of(metric))
        kpis.append(KpiAvailability(key, metric.name(lang), lacks, {c: counts.get(c, 0) for c in summed}))
    return SourceReport(kpis, sorted(missing), dict(sorted(counts.items())))


__all__ = ["KpiAvailability", "SourceReport", "check_source"]
