"""The KPI catalog: ``config/metrics.yaml`` loaded, validated up front, and turned into plain objects.

Validation reports every problem at once, each with the file, line, KPI (or measure) and field. The
table and column names that reach SQL come only from here, and each is checked against the canonical
schema (and, for tables the bot does not know, against the live source database).
"""

from __future__ import annotations

import ast
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from kpi.data.schema import SOURCE_TABLES
from kpi.errors import CatalogError, UnknownMetric

AGGS = ("sum", "count", "count_distinct", "min", "max")
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in")
FORMATS = ("currency", "percent", "count", "ratio", "number")
TYPES = ("simple", "ratio", "derived")
PARAMS = ("$period_start", "$period_end")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True)
class Condition:
    column: str  # "col" or "table.col"
    op: str
    value: Any


@dataclass(frozen=True)
class Measure:
    key: str
    table: str
    time: str
    agg: str
    column: str | None = None
    where: tuple[Condition, ...] = ()
    join_table: str | None = None
    join_on: str | None = None
    window: str = "period"  # period | to_date
    dimensions: dict[str, str] = field(default_factory=dict)
    sparse: bool = False  # rows are occasional events (returns, campaigns): their newest row says nothing of freshness

    @property
    def additive(self) -> bool:
        """Values over disjoint groups or disjoint time ranges add up to the value over their union.

        Sums and counts over the period do; distinct counts, running totals (window to_date) and
        conditions that depend on the period's bounds do not."""
        return (self.agg in ("sum", "count") and self.window == "period"
                and not any(isinstance(c.value, str) and c.value.startswith("$") for c in self.where))


@dataclass(frozen=True)
class Metric:
    key: str
    type: str
    label: dict[str, str]
    aliases: dict[str, list[str]]
    format: str
    higher_is_better: bool
    measure: str | None = None  # simple
    numerator: str | None = None  # ratio: an expression of measures
    denominator: str | None = None
    expression: str | None = None  # derived: an expression of metrics
    sample: str | None = None
    additive: bool = False
    headline: bool = False
    description: str = ""

    def name(self, lang: str = "en") -> str:
        return self.label.get(lang) or self.label.get("en") or self.key


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


def normalise(text: str) -> str:
    """Lower case, accents and typographic apostrophes folded, spaces collapsed: how aliases match."""
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("`", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"\s+", " ", text).strip()


def expression_names(expr: str) -> list[str]:
    """The names an arithmetic expression uses; raises ValueError for anything but + - * / numbers names."""
    tree = ast.parse(expr, mode="eval")
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif not isinstance(
            node, ast.Expression | ast.BinOp | ast.UnaryOp | ast.Constant | ast.Load | ast.operator | ast.unaryop
        ) or (isinstance(node, ast.Constant) and not isinstance(node.value, int | float)):
            raise ValueError(f"only + - * / numbers and names are allowed, not {type(node).__name__}")
    return names


def evaluate(expr: str, values: dict[str, float | None]) -> float | None:
    """Evaluate an arithmetic expression over named values. None (no data) or a division by zero gives None."""
    tree = ast.parse(expr, mode="eval")

    def ev(node: ast.AST) -> float | None:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            v = values.get(node.id)
            return None if v is None else float(v)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if a is None or b is None:
                return None
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return None if b == 0 else a / b
        raise ValueError(f"unsupported expression {expr!r}")

    return ev(tree)


class Catalog:
    """The loaded catalog. ``metric(name)`` resolves keys, labels and aliases in English and French."""

    def __init__(self, measures: dict[str, Measure], metrics: dict[str, Metric], path: str = "<catalog>"):
        self.path = path
        self.measures = measures
        self.metrics = metrics
        self._aliases: dict[str, str] = {}
        for m in metrics.values():
            for word in [m.key, m.key.replace("_", " "), *m.label.values(), *(a for al in m.aliases.values() for a in al)]:
                self._aliases.setdefault(normalise(str(word)), m.key)

    # -- lookups -------------------------------------------------------------------------------
    @property
    def aliases(self) -> dict[str, str]:
        """normalised alias -> metric key (longest first, so the query parser matches greedily)."""
        return dict(sorted(self._aliases.items(), key=lambda kv: -len(kv[0])))

    def metric(self, name: str) -> Metric:
        key = self._aliases.get(normalise(name))
        if key is None:
            raise UnknownMetric(name, self.suggest(name))
        return self.metrics[key]

    def suggest(self, name: str, n: int = 3) -> list[str]:
        close = difflib.get_close_matches(normalise(name), list(self._aliases), n=n * 3, cutoff=0.6)
        keys: list[str] = []
        for c in close:
            k = self._aliases[c]
            label = c if c.replace(" ", "_") != k else k.replace("_", " ")
            if k not in [self._aliases[normalise(x)] for x in keys]:
                keys.append(label)
        return keys[:n]

    def measures_of(self, metric: Metric) -> list[Measure]:
        """Every measure a metric reads, derived metrics expanded."""
        names: list[str] = []
        if metric.type == "simple":
            names = [metric.measure or ""]
        elif metric.type == "ratio":
            names = expression_names(metric.numerator or "") + expression_names(metric.denominator or "")
            if metric.sample:
                names.append(metric.sample)
        else:
            out: list[Measure] = []
            for sub in expression_names(metric.expression or ""):
                out += [m for m in self.measures_of(self.metrics[sub]) if m not in out]
            return out
        seen: list[Measure] = []
        for n in names:
            if self.measures[n] not in seen:
                seen.append(self.measures[n])
        return seen

    def dimensions_of(self, metric: Metric) -> list[str]:
        """Dimensions every measure of the metric supports (what it may be broken down or filtered by)."""
        sets = [set(m.dimensions) for m in self.measures_of(metric)]
        common = set.intersection(*sets) if sets else set()
        return sorted(common)

    def tables(self) -> set[str]:
        return {m.table for m in self.measures.values()} | {m.join_table for m in self.measures.values() if m.join_table}

    # -- validation against a live database ----------------------------------------------------
    def check_source(self, engine: Engine) -> None:
        """Check that every table and column the catalog names exists in the source (tables or views)."""
        insp = inspect(engine)
        present = set(insp.get_table_names()) | set(insp.get_view_names())
        problems: list[str] = []
        columns: dict[str, set[str]] = {}
        for t in sorted(self.tables()):
            if t not in present:
                problems.append(f"{self.path}: table '{t}' is not in the source database ({engine.url.render_as_string(hide_password=True)})")
                continue
            columns[t] = {c["name"] for c in insp.get_columns(t)}
        for m in self.measures.values():
            for t, c in _columns_used(m):
                if t in columns and c not in columns[t]:
                    problems.append(f"{self.path}: measure '{m.key}': column '{t}.{c}' is not in the source database")
        if problems:
            raise CatalogError(problems)


def _columns_used(m: Measure) -> list[tuple[str, str]]:
    def split(ref: str) -> tuple[str, str]:
        return (ref.split(".", 1)[0], ref.split(".", 1)[1]) if "." in ref else (m.table, ref)

    refs = [m.time] + ([m.column] if m.column else []) + [c.column for c in m.where] + list(m.dimensions.values())
    out = [split(r) for r in refs]
    if m.join_table and m.join_on:
        out += [(m.table, m.join_on), (m.join_table, m.join_on)]
    return out


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
        if isinstance(v, str) and v.startswith("$") and v not in PARAMS:
            bad("where", f"unknown parameter {v} (known: {', '.join(PARAMS)})")
            ok = False
        if c["op"] in ("in", "not_in") and not isinstance(v, list):
            bad("where", f"condition {i + 1}: op {c['op']} needs a list value")
            ok = False
        conds.append(Condition(c["column"], c["op"], tuple(v) if isinstance(v, list) else v))
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
                   sparse=spec.get("sparse", False))


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
    if not isinstance(hib, bool):
        bad("higher_is_better", "must be true or false")
        ok = False
    if not ok:
        return None
    return Metric(
        key=key, type=mtype, label={k: str(v) for k, v in label.items()},
        aliases={k: [str(a) for a in v] for k, v in aliases.items()}, format=fmt, higher_is_better=hib,
        measure=spec.get("measure"), numerator=spec.get("numerator"), denominator=spec.get("denominator"),
        expression=spec.get("expression"), sample=spec.get("sample"), additive=bool(spec.get("additive", False)),
        headline=bool(spec.get("headline", False)), description=str(spec.get("description", "")),
    )
