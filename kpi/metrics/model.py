"""The KPI catalog as plain objects: measures, metrics, and the catalog that resolves names and aliases
(in every language of ``config/metrics.yaml``). ``kpi.metrics.catalog`` loads and validates it.
"""

from __future__ import annotations

import ast
import calendar
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from kpi.errors import CatalogError, UnknownMetric
from kpi.i18n import lang_of

AGGS = ("sum", "count", "count_distinct", "min", "max")
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in")
FORMATS = ("currency", "percent", "count", "ratio", "number")
TYPES = ("simple", "ratio", "derived")
PARAMS = ("$period_start", "$period_end")
HAVING_AGGS = ("count", "sum", "min", "max")
INTERVAL_UNITS = ("days", "months")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True)
class Condition:
    column: str  # "col" or "table.col"
    op: str
    value: Any  # a constant, None (op = / !=: is empty / is not empty), a $parameter, or a ColumnOf (op in / not_in)


@dataclass(frozen=True)
class ColumnOf:
    """The values of another table's column, as a condition's value: ``channel IN (SELECT channel FROM
    marketing_spend WHERE amount > 0)`` is ``{column: channel, op: in, value: {values_of: marketing_spend.channel,
    where: [{column: amount, op: ">", value: 0}]}}``."""

    table: str
    column: str
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Having:
    """A condition on a group of rows (``having:`` of a measure): ``count > 1``, ``max(placed_at) >= $period_start``."""

    agg: str  # count | sum | min | max
    op: str
    value: Any
    column: str | None = None


@dataclass(frozen=True)
class Horizon:
    """Rows count only while ``column`` is less than ``amount`` ``unit`` after the measure's time (a cohort's
    first order): a cohort's value is known once the data covers the horizon after the period."""

    column: str
    amount: int
    unit: str  # days | months

    def after(self, moment):
        """``moment`` plus the horizon (calendar months keep the day of the month, clamped to the month's end)."""
        if self.unit == "days":
            return moment + timedelta(days=self.amount)
        month = moment.month - 1 + self.amount
        year, month = moment.year + month // 12, month % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Note:
    """A note a KPI's answer carries when a measure counts something it left out ("12 zero-value orders are
    not counted"): ``text`` per language, with ``{n}`` the measure's value over the period."""

    measure: str
    text: dict[str, str]

    def say(self, lang: str = "en") -> str:
        return self.text.get(lang_of(lang)) or self.text.get("en") or ""


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
    # rows grouped by ``column``, groups kept when every condition holds; the measure counts (count_distinct) or
    # sums the kept groups: "customers with more than one order"
    having: tuple[Having, ...] = ()
    horizon: Horizon | None = None

    @property
    def additive(self) -> bool:
        """Values over disjoint groups or disjoint time ranges add up to the value over their union.

        Sums and counts over the period do; distinct counts, running totals (window to_date) and
        conditions that depend on the period's bounds do not."""
        return (self.agg in ("sum", "count") and self.window == "period" and not self.having
                and not any(isinstance(c.value, str) and c.value.startswith("$") for c in self.where))

    @property
    def period_bound(self) -> bool:
        """Its conditions use the period's bounds (it cannot be read for many ranges in one bucket join)."""
        return (any(isinstance(c.value, str) and c.value.startswith("$") for c in self.where)
                or any(isinstance(h.value, str) and h.value.startswith("$") for h in self.having))


@dataclass(frozen=True)
class Metric:
    key: str
    type: str
    label: dict[str, str]
    aliases: dict[str, list[str]]
    format: str
    higher_is_better: bool | None  # None: neutral (marketing spend): a change is neither good nor bad
    measure: str | None = None  # simple
    numerator: str | None = None  # ratio: an expression of measures
    denominator: str | None = None
    expression: str | None = None  # derived: an expression of metrics
    sample: str | None = None
    additive: bool = False
    headline: bool = False
    description: str = ""
    notes: tuple[Note, ...] = ()  # what the answer says it left out, when the period had any
    of_counts: bool = True  # a ratio of counts (tested as two proportions), not of amounts (refund rate by value)

    def name(self, lang: str = "en") -> str:
        return self.label.get(lang_of(lang)) or self.label.get("en") or self.key


def normalise(text: str) -> str:
    """Lower case, accents and typographic apostrophes folded, spaces collapsed: how aliases match."""
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("`", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=1024)
def parsed(expr: str) -> ast.Expression:
    """An arithmetic expression of the catalog, parsed once (a series evaluates it for every point)."""
    return ast.parse(expr, mode="eval")


@lru_cache(maxsize=1024)
def division_of(expr: str) -> tuple[str, str] | None:
    """(numerator, denominator) of an expression that is a division at its top, as expressions; None otherwise."""
    tree = parsed(expr).body
    if isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Div):
        return ast.unparse(tree.left), ast.unparse(tree.right)
    return None


def expression_names(expr: str) -> list[str]:
    """The names an arithmetic expression uses; raises ValueError for anything but + - * / numbers names."""
    tree = parsed(expr)
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
    tree = parsed(expr)

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

    def __init__(self, measures: dict[str, Measure], metrics: dict[str, Metric], path: str = "<catalog>",
                 timestamps_tz: str | None = None):
        self.path = path
        # the time zone the source's naive timestamps are written in (config/source.yaml); None: UTC
        self.timestamps_tz = timestamps_tz
        self.measures = measures
        self.metrics = metrics
        self._aliases: dict[str, str] = {}
        # the words people type: labels and aliases first, then the keys as words (the alias "clv" leads to the
        # 12-month CLV, the KPI whose key is "clv" is still reached by its key: see ``metric``)
        for m in metrics.values():
            for word in [*m.label.values(), *(a for al in m.aliases.values() for a in al)]:
                self._aliases.setdefault(normalise(str(word)), m.key)
        for m in metrics.values():
            for word in [m.key, m.key.replace("_", " ")]:
                self._aliases.setdefault(normalise(str(word)), m.key)

    # -- lookups -------------------------------------------------------------------------------
    @property
    def aliases(self) -> dict[str, str]:
        """normalised alias -> metric key (longest first, so the query parser matches greedily)."""
        return dict(sorted(self._aliases.items(), key=lambda kv: -len(kv[0])))

    def metric(self, name: str) -> Metric:
        """The KPI of a key (first: stored goals and requests name KPIs by key), a label or an alias."""
        if name in self.metrics:
            return self.metrics[name]
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

    def note_measures(self, metric: Metric) -> list[Measure]:
        """The measures behind a KPI's notes (what its answer says it left out)."""
        return [self.measures[n.measure] for n in metric.notes]

    def horizon_of(self, metric: Metric) -> Horizon | None:
        """The longest horizon of the KPI's measures: the data a period's value needs after the period."""
        found = [m.horizon for m in self.measures_of(metric) if m.horizon is not None]
        return max(found, key=lambda h: h.after(_EPOCH)) if found else None

    def dimensions_of(self, metric: Metric) -> list[str]:
        """Dimensions every measure of the metric supports (what it may be broken down or filtered by)."""
        sets = [set(m.dimensions) for m in self.measures_of(metric)]
        common = set.intersection(*sets) if sets else set()
        return sorted(common)

    def tables(self) -> set[str]:
        out = {m.table for m in self.measures.values()} | {m.join_table for m in self.measures.values() if m.join_table}
        return out | {t for m in self.measures.values() for t, _ in _subquery_columns(m)}

    # -- validation against a live database ----------------------------------------------------
    def check_source(self, engine: Engine) -> None:
        """Check that every table and column the catalog names exists in the source (tables or views).
        The problems name tables and columns only (they may be shown to anyone); where the source is, is for
        the log."""
        problems = self.source_problems(source_columns(engine, self.tables()))
        if problems:
            raise CatalogError(problems)

    def source_problems(self, present: dict[str, set[str]]) -> list[str]:
        """What ``check_source`` reports, given the source's tables and their columns."""
        problems: list[str] = []
        for t in sorted(self.tables()):
            if t not in present:
                problems.append(f"table '{t}' is not in the source database")
        for m in self.measures.values():
            for t, c in _columns_used(m):
                if t in present and c not in present[t]:
                    problems.append(f"measure '{m.key}': column '{t}.{c}' is not in the source database")
        return problems

    def missing_for(self, metric: Metric, present: dict[str, set[str]] | None) -> list[str]:
        """The tables (``traffic``) and columns (``traffic.carts``) a KPI reads that the source lacks, in
        the order the KPI reads them; empty when it is available (or when ``present`` is unknown)."""
        if present is None:
            return []
        out: list[str] = []
        for m in self.measures_of(metric):
            for t, c in _columns_used(m):
                name = t if t not in present else f"{t}.{c}" if c not in present[t] else None
                if name is not None and name not in out:
                    out.append(name)
        return out


def source_columns(engine: Engine, only: set[str] | None = None) -> dict[str, set[str]]:
    """The source's tables and views (those in ``only``, when given), each with its column names."""
    insp = inspect(engine)
    names = set(insp.get_table_names()) | set(insp.get_view_names())
    if only is not None:
        names &= set(only)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in sorted(names)}


_EPOCH = datetime(2000, 1, 1)


def _subquery_columns(m: Measure) -> list[tuple[str, str]]:
    """The (table, column) pairs a measure's conditions read from other tables (``values_of``)."""
    out = []
    for c in m.where:
        if isinstance(c.value, ColumnOf):
            out.append((c.value.table, c.value.column))
            out += [(c.value.table, w.column) for w in c.value.where]
    return out


def _columns_used(m: Measure) -> list[tuple[str, str]]:
    def split(ref: str) -> tuple[str, str]:
        return (ref.split(".", 1)[0], ref.split(".", 1)[1]) if "." in ref else (m.table, ref)

    refs = [m.time] + ([m.column] if m.column else []) + [c.column for c in m.where] + list(m.dimensions.values())
    refs += [h.column for h in m.having if h.column] + ([m.horizon.column] if m.horizon else [])
    out = [split(r) for r in refs] + _subquery_columns(m)
    if m.join_table and m.join_on:
        out += [(m.table, m.join_on), (m.join_table, m.join_on)]
    return out
