"""What a KPI is, in words people can check: its formula, the tables and columns it reads, and what it
includes or leaves out, in the reader's language, derived from ``config/metrics.yaml`` (so the definition
cannot drift from what the engine computes)."""

from __future__ import annotations

from dataclasses import dataclass

from kpi.i18n import tr

from .catalog import Catalog, Metric
from .formatting import horizon_text
from .model import ColumnOf, Condition, Having, Measure, expression_names

_OPS = {"=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥", "in": "∈", "not_in": "∉"}


@dataclass(frozen=True)
class Definition:
    key: str
    name: str
    formula: str  # "Conversion rate = orders ÷ sessions"
    parts: tuple[str, ...]  # one line per measure: what it counts, where, and what it leaves out
    notes: tuple[str, ...]  # better direction, sample, no-data rule
    description: str = ""  # the catalog's definition in words (English, as written in config/metrics.yaml)


def define(catalog: Catalog, metric: Metric, lang: str = "en") -> Definition:
    name = metric.name(lang)
    measures: list[Measure] = []
    if metric.type == "simple":
        formula = f"{name} = {metric.measure}"
    elif metric.type == "ratio":
        formula = f"{name} = {_term(metric.numerator)} ÷ {_term(metric.denominator)}"
    else:
        formula = f"{name} = " + (metric.expression or "").replace("/", "÷")
    for m in catalog.measures_of(metric):
        if m not in measures:
            measures.append(m)
    parts = tuple(f"{m.key}: {_measure(m, lang)}" for m in measures)
    if metric.type == "derived":
        # the KPIs it is derived from, after the measures they read (a KPI and a measure may share a name: revenue)
        parts = parts + tuple(f"{k} = {catalog.metrics[k].name(lang)}" for k in expression_names(metric.expression or ""))
    if metric.higher_is_better is None:
        notes = [tr(lang, "Neither direction is better: a change is not judged good or bad.")]
    else:
        notes = [tr(lang, "Higher is better.") if metric.higher_is_better else tr(lang, "Lower is better.")]
    if metric.type == "ratio":
        notes.append(tr(lang, "Divided after adding up over the period; a zero or missing denominator is "
                              "\"no data\", never 0."))
    if metric.additive:
        notes.append(tr(lang, "Adds up over time: a goal on it accumulates from its start."))
    for note in metric.notes:
        notes.append(tr(lang, "The answer says how many rows {measure} counts in the period, when any.",
                        measure=note.measure))
    return Definition(metric.key, name, formula, parts, tuple(notes), metric.description)


def _term(expression: str | None) -> str:
    """A side of a ratio, in brackets when it is itself a calculation: '(carts - orders)'."""
    text = expression or ""
    return f"({text})" if any(op in text for op in "+-*/") else text


def _measure(m: Measure, lang: str) -> str:
    if m.agg == "count":
        what = tr(lang, "the number of rows of {table}", table=m.table)
    elif m.agg == "count_distinct":
        what = tr(lang, "the number of distinct {column} in {table}", column=m.column, table=m.table)
    elif m.agg == "sum":
        what = tr(lang, "the sum of {table}.{column}", table=m.table, column=m.column)
    else:
        what = tr(lang, "the {agg} of {table}.{column}", agg=m.agg, table=m.table, column=m.column)
    if m.window == "to_date":
        when = tr(lang, "every row up to the period's end (by {time})", time=m.time)
    else:
        when = tr(lang, "rows whose {time} falls in the period", time=m.time)
    text = f"{what}, {when}"
    if m.join_table:
        text += ", " + tr(lang, "joined to {table} on {key}", table=m.join_table, key=m.join_on)
    if m.where:
        text += ", " + tr(lang, "only where {conditions}", conditions=tr(lang, " and ").join(_condition(c, lang) for c in m.where))
    if m.having:
        text += ", " + tr(lang, "counting only the {column} whose rows meet {conditions}", column=m.column,
                          conditions=tr(lang, " and ").join(_having(h, m, lang) for h in m.having))
    if m.horizon:
        text += ", " + tr(lang, "only rows whose {column} is less than {horizon} after {time}", column=m.horizon.column,
                          horizon=horizon_text(m.horizon.amount, m.horizon.unit, lang), time=m.time)
    return text


def _having(h: Having, m: Measure, lang: str) -> str:
    """'COUNT(*) > 1', 'MAX(placed_at) ≥ the period's start'."""
    what = "COUNT(*)" if h.agg == "count" else f"{h.agg.upper()}({h.column})"
    return _condition(Condition(what, h.op, h.value), lang)


def _condition(c: Condition, lang: str) -> str:
    value = c.value
    if value is None:
        return tr(lang, "{column} is empty", column=c.column) if c.op == "=" else tr(lang, "{column} is not empty",
                                                                                    column=c.column)
    if isinstance(value, ColumnOf):
        where = tr(lang, " and ").join(_condition(w, lang) for w in value.where)
        values = f"{value.table}.{value.column}"
        if where:
            shown_where = tr(lang, "where {conditions}", conditions=where)
            values += f" ({shown_where})"
        return (tr(lang, "{column} is one of the values of {values}", column=c.column, values=values) if c.op == "in"
                else tr(lang, "{column} is none of the values of {values}", column=c.column, values=values))
    if value == "$period_start":
        value = tr(lang, "the period's start")
    elif value == "$period_end":
        value = tr(lang, "the period's end")
    elif isinstance(value, list | tuple):
        value = "{" + ", ".join(map(str, value)) + "}"
    return f"{c.column} {_OPS.get(c.op, c.op)} {value}"


def definition_lines(d: Definition) -> list[str]:
    """The definition as plain text lines (the terminal's, and Slack's fallback text)."""
    head = [d.formula] + ([f"  {d.description}"] if d.description else [])
    return [*head, *(f"  {p}" for p in d.parts), *(f"  {n}" for n in d.notes)]


__all__ = ["Definition", "define", "definition_lines"]
