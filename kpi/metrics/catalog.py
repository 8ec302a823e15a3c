"""The KPI catalog: ``config/metrics.yaml`` loaded, validated up front, and turned into plain objects.

Validation reports every problem at once, each with the file, line, KPI (or measure) and field. The
table and column names that reach SQL come only from here, and each is checked against the canonical
schema (and, for tables the bot does not know, against the live source database).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Numeric

from kpi.data.schema import SOURCE_TABLES
from kpi.errors import CatalogError

from .model import (  # the catalog's objects, re-exported: this module is where people look for them
    _IDENT,
    AGGS,
    FORMATS,
    HAVING_AGGS,
    INTERVAL_UNITS,
    OPS,
    PARAMS,
    TYPES,
    Catalog,
    ColumnOf,
    Condition,
    Having,
    Horizon,
    Measure,
    Metric,
    Note,
    evaluate,
    expression_names,
    normalise,
)


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = _Lines()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


class _Lines(dict):
    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.yaml"
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise CatalogError([f"{path}: file not found (set KPIBOT_CONFIG to the config directory)"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_catalog(raw, str(path))


def parse_catalog(raw: Any, path: str = "<catalog>") -> Catalog:
    problems: list[str] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("measures"), dict) or not isinstance(raw.get("metrics"), dict):
        raise CatalogError([f"{path}: needs two mappings, 'measures' and 'metrics'"])

    def where(section: dict, key: str, fld: str | None = None) -> str:
        line = getattr(section, "lines", {}).get(key)
        item = section.get(key)
        if fld and isinstance(item, dict):
            line = getattr(item, "lines", {}).get(fld, line)
        return f"{path}:{line}" if line else path

    measures: dict[str, Measure] = {}
    for key, spec in raw["measures"].items():
        def bad(fld: str, msg: str, key=key) -> None:
            problems.append(f"{where(raw['measures'], key, fld)}: measure '{key}', field '{fld}': {msg}")

        if not isinstance(spec, dict):
            problems.append(f"{where(raw['measures'], key)}: measure '{key}': must be a mapping")
            continue
        m = _parse_measure(key, spec, bad)
        if m is not None:
            measures[key] = m

    metrics: dict[str, Metric] = {}
    for key, spec in raw["metrics"].items():
        def badm(fld: str, msg: str, key=key) -> None:
            problems.append(f"{where(raw['metrics'], key, fld)}: KPI '{key}', field '{fld}': {msg}")

        if not isinstance(spec, dict):
            problems.append(f"{where(raw['metrics'], key)}: KPI '{key}': must be a mapping")
            continue
        m2 = _parse_metric(key, spec, badm, raw["measures"], raw["metrics"])
        if m2 is not None:
            metrics[key] = m2

    # aliases must point to one KPI only
    owner: dict[str, str] = {}
    for m2 in metrics.values():
        for word in {normalise(a) for al in m2.aliases.values() for a in al} | {normalise(v) for v in m2.label.values()}:
            if word in owner and owner[word] != m2.key:
                problems.append(f"{where(raw['metrics'], m2.key, 'aliases')}: KPI '{m2.key}', field 'aliases': "
                                f"'{word}' is also a name of KPI '{owner[word]}'")
            owner.setdefault(word, m2.key)
    if problems:
        raise CatalogError(problems)
    return Catalog(measures, metrics, path)


def _parse_measure(key: str, spec: dict, bad) -> Measure | None:
    ok = True
    table = spec.get("table")
    canonical = SOURCE_TABLES.get(table) if isinstance(table, str) else None
    if not isinstance(table, str) or not _IDENT.match(table) or "." in table:
        bad("table", "must be a table name")
        return None
    join = spec.get("join")
    join_table = join_on = None
    if join is not None:
        if not isinstance(join, dict) or not isinstance(join.get("table"), str) or not isinstance(join.get("key"), str):
            bad("join", "must be {table: <name>, key: <column both tables share>}")
            ok = False
        else:
            join_table, join_on = join["table"], join["key"]

    def check_ref(fld: str, ref: Any) -> bool:
        if not isinstance(ref, str) or not _IDENT.match(ref):
            bad(fld, f"'{ref}' is not a column name")
            return False
        t, c = ref.split(".", 1) if "." in ref else (table, ref)
        if t not in (table, join_table):
            bad(fld, f"'{ref}' refers to table '{t}', which this measure does not read (join it first)")
            return False
        known = SOURCE_TABLES.get(t)
        if known is not None and c not in known.c:
            bad(fld, f"no column '{c}' in table '{t}' (it has: {', '.join(known.c.keys())})")
            return False
        return True

    if canonical is None and table not in SOURCE_TABLES:
        pass  # a table of the user's own: checked against the live source by Catalog.check_source
    agg = spec.get("agg")
    if agg not in AGGS:
        bad("agg", f"must be one of {', '.join(AGGS)}")
        ok = False
    column = spec.get("column")
    if agg in AGGS and agg != "count" and column is None:
        bad("column", f"is required for agg '{agg}'")
        ok = False
    if column is not None:
        ok &= check_ref("column", column)
    time_col = spec.get("time")
    ok &= check_ref("time", time_col)
    if join_on is not None:
        ok &= check_ref("join", join_on) and check_ref("join", f"{join_table}.{join_on}")
    window = spec.get("window", "period")
    if window not in ("period", "to_date"):
        bad("window", "must be 'period' or 'to_date'")
        ok = False
    conds: list[Condition] = []
    for i, c in enumerate(spec.get("where") or []):
        if not isinstance(c, dict) or "column" not in c or c.get("op") not in OPS or "value" not in c:
            bad("where", f"condition {i + 1} must be {{column, op, value}} with op one of {' '.join(OPS)}")
            ok = False
            continue
        if not check_ref("where", c["column"]):
            ok = False
            continue
        v = c["value"]
        if isinstance(v, dict):  # {values_of: table.column, where: [...]}: the values of another table's column
            sub = _values_of(v, c["op"], i, bad)
            if sub is None:
                ok = False
                continue
            conds.append(Condition(c["column"], c["op"], sub))
            continue
        if isinstance(v, str) and v.startswith("$") and v not in PARAMS:
            bad("where", f"unknown parameter {v} (known: {', '.join(PARAMS)})")
            ok = False
        if c["op"] in ("in", "not_in") and not isinstance(v, list):
            bad("where", f"condition {i + 1}: op {c['op']} needs a list value")
            ok = False
        if v is None and c["op"] not in ("=", "!="):
            bad("where", f"condition {i + 1}: an empty value (null) is compared with = or != only")
            ok = False
        conds.append(Condition(c["column"], c["op"], tuple(v) if isinstance(v, list) else v))
    having: list[Having] = []
    for i, h in enumerate(spec.get("having") or []):
        if (not isinstance(h, dict) or h.get("agg") not in HAVING_AGGS or h.get("op") not in OPS[:6]
                or "value" not in h or (h.get("agg") != "count" and h.get("column") is None)):
            bad("having", f"condition {i + 1} must be {{agg, column, op, value}} with agg one of "
                          f"{' '.join(HAVING_AGGS)} (column not needed for count) and op one of {' '.join(OPS[:6])}")
            ok = False
            continue
        if h.get("column") is not None and not check_ref("having", h["column"]):
            ok = False
            continue
        hv = h["value"]
        if isinstance(hv, str) and hv.startswith("$") and hv not in PARAMS:
            bad("having", f"unknown parameter {hv} (known: {', '.join(PARAMS)})")
            ok = False
        having.append(Having(h["agg"], h["op"], hv, h.get("column")))
    if having and agg not in ("count_distinct", "sum"):
        bad("having", "groups are kept by 'column' and counted (agg count_distinct) or summed (agg sum)")
        ok = False
    horizon = None
    if spec.get("horizon") is not None:
        hz = spec["horizon"]
        units = [u for u in INTERVAL_UNITS if isinstance(hz, dict) and u in hz]
        if (not isinstance(hz, dict) or len(units) != 1 or not isinstance(hz[units[0]], int)
                or isinstance(hz[units[0]], bool) or hz[units[0]] <= 0 or "column" not in hz):
            bad("horizon", "must be {column: <column>, months: <n>} or {column: <column>, days: <n>}")
            ok = False
        elif check_ref("horizon", hz["column"]):
            horizon = Horizon(hz["column"], hz[units[0]], units[0])
        else:
            ok = False
    dims = spec.get("dimensions") or {}
    if not isinstance(dims, dict):
        bad("dimensions", "must map a dimension name to a column")
        dims = {}
    for d, col in dims.items():
        if not isinstance(d, str) or not _IDENT.match(d) or "." in d:
            bad("dimensions", f"'{d}' is not a valid dimension name")
            ok = False
        ok &= check_ref("dimensions", col)
    if not ok:
        return None
    if not isinstance(spec.get("sparse", False), bool):
        bad("sparse", "must be true or false")
        return None
    return Measure(key=key, table=table, time=time_col, agg=agg, column=column, where=tuple(conds),
                   join_table=join_table, join_on=join_on, window=window, dimensions=dict(dims),
                   sparse=spec.get("sparse", False), having=tuple(having), horizon=horizon)


def _values_of(v: dict, op: str, i: int, bad) -> ColumnOf | None:
    """``{values_of: table.column, where: [{column, op, value}]}``: a condition's list of values read from
    another table (a subquery; its conditions constants only)."""
    ref = v.get("values_of")
    if op not in ("in", "not_in") or not isinstance(ref, str) or not _IDENT.match(ref) or "." not in ref:
        bad("where", f"condition {i + 1}: a list of values read from a table is "
                     "{values_of: table.column, where: [...]} with op in or not_in")
        return None
    table, col = ref.split(".", 1)
    known = SOURCE_TABLES.get(table)
    if known is not None and col not in known.c:
        bad("where", f"no column '{col}' in table '{table}'")
        return None
    sub: list[Condition] = []
    for c in v.get("where") or []:
        if (not isinstance(c, dict) or c.get("op") not in OPS[:6] or not isinstance(c.get("column"), str)
                or not _IDENT.match(c["column"]) or "." in c["column"]
                or (known is not None and c["column"] not in known.c)
                or isinstance(c.get("value"), dict | list) or (isinstance(c.get("value"), str) and c["value"].startswith("$"))):
            bad("where", f"condition {i + 1}: the conditions of values_of are {{column, op, value}} on {table}'s "
                         "own columns, with constant values")
            return None
        sub.append(Condition(c["column"], c["op"], c.get("value")))
    return ColumnOf(table, col, tuple(sub))


def _parse_metric(key: str, spec: dict, bad, measures: dict, metrics: dict) -> Metric | None:
    ok = True
    mtype = spec.get("type")
    if mtype not in TYPES:
        bad("type", f"must be one of {', '.join(TYPES)}")
        return None

    def check_expr(fld: str, names_from: dict, kind: str) -> None:
        nonlocal ok
        expr = spec.get(fld)
        if not isinstance(expr, str) or not expr.strip():
            bad(fld, f"is required for a {mtype} KPI")
            ok = False
            return
        try:
            names = expression_names(expr)
        except (SyntaxError, ValueError) as exc:
            bad(fld, f"'{expr}' is not an arithmetic expression: {exc}")
            ok = False
            return
        for n in names:
            if n not in names_from:
                bad(fld, f"unknown {kind} '{n}'")
                ok = False
            elif kind == "KPI" and (n == key or names_from[n].get("type") == "derived"):
                bad(fld, f"'{n}' is derived itself; derive from simple or ratio KPIs")
                ok = False

    if mtype == "simple":
        if spec.get("measure") not in measures:
            bad("measure", f"unknown measure '{spec.get('measure')}'")
            ok = False
    elif mtype == "ratio":
        check_expr("numerator", measures, "measure")
        check_expr("denominator", measures, "measure")
    else:
        check_expr("expression", metrics, "KPI")
    if spec.get("sample") is not None and spec.get("sample") not in measures:
        bad("sample", f"unknown measure '{spec.get('sample')}'")
        ok = False
    label = spec.get("label")
    if not isinstance(label, dict) or not isinstance(label.get("en"), str):
        bad("label", "needs at least {en: ...} (and fr:)")
        ok = False
        label = {}
    aliases = spec.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, list) for v in aliases.values()):
        bad("aliases", "must be {en: [...], fr: [...]}")
        ok = False
        aliases = {}
    fmt = spec.get("format")
    if fmt not in FORMATS:
        bad("format", f"must be one of {', '.join(FORMATS)}")
        ok = False
    hib = spec.get("higher_is_better")
    if hib == "neutral":
        hib = None
    if hib is not None and not isinstance(hib, bool):
        bad("higher_is_better", "must be true, false, or neutral (null): a change neither good nor bad")
        ok = False
    notes: list[Note] = []
    for i, n in enumerate(spec.get("notes") or []):
        if (not isinstance(n, dict) or n.get("measure") not in measures or not isinstance(n.get("text"), dict)
                or not isinstance(n["text"].get("en"), str)):
            bad("notes", f"note {i + 1} must be {{measure: <a measure>, text: {{en: ..., fr: ..., de: ...}}}}")
            ok = False
            continue
        bad_text = [lg for lg, tx in n["text"].items() if not isinstance(tx, str) or "{" in tx.replace("{n}", "")]
        if bad_text:
            bad("notes", f"note {i + 1}: its text may use {{n}} only ({', '.join(bad_text)})")
            ok = False
            continue
        notes.append(Note(n["measure"], {k: str(v) for k, v in n["text"].items()}))
    if not ok:
        return None
    return Metric(
        key=key, type=mtype, label={k: str(v) for k, v in label.items()},
        aliases={k: [str(a) for a in v] for k, v in aliases.items()}, format=fmt, higher_is_better=hib,
        measure=spec.get("measure"), numerator=spec.get("numerator"), denominator=spec.get("denominator"),
        expression=spec.get("expression"), sample=spec.get("sample"), additive=bool(spec.get("additive", False)),
        headline=bool(spec.get("headline", False)), description=" ".join(str(spec.get("description", "")).split()),
        notes=tuple(notes), of_counts=_of_counts(spec, measures) if mtype == "ratio" else True,
    )


def _of_counts(spec: dict, measures: dict) -> bool:
    """A ratio of counts (rows, distinct values, or sums of whole numbers such as sessions): a proportion, tested
    on its counts. A ratio of amounts (refunds ÷ revenue: sums of a decimal column) is not."""
    names = expression_names(spec.get("numerator") or "") + expression_names(spec.get("denominator") or "")
    for n in names:
        m = measures.get(n)
        if not isinstance(m, dict) or m.get("agg") in ("count", "count_distinct") or not isinstance(m.get("column"), str):
            continue
        ref = m["column"]
        table, col = ref.split(".", 1) if "." in ref else (m.get("table"), ref)
        known = SOURCE_TABLES.get(table) if isinstance(table, str) else None
        if known is not None and col in known.c and isinstance(known.c[col].type, Numeric):
            return False  # an amount (a decimal column), not a count
    return True


__all__ = ["AGGS", "FORMATS", "OPS", "PARAMS", "TYPES", "Catalog", "ColumnOf", "Condition", "Having", "Horizon",
           "Measure", "Metric", "Note", "evaluate",
           "expression_names", "load_catalog", "normalise", "parse_catalog"]
