"""The errors of the domain, one small tree.

KpiError                    anything the user can be told about in one clear line
├── CatalogError            config/metrics.yaml is wrong (file, KPI, field and reason, all problems at once)
├── QueryError              a request the engine cannot answer as asked
│   ├── UnknownMetric       a KPI name that is not in the catalog (carries suggestions)
│   ├── UnknownDimension    a breakdown or filter the KPI does not support
│   ├── PeriodError         a period text that could not be parsed (carries the accepted forms)
│   ├── KpiUnavailable      a KPI whose tables or columns the shop's data lacks (the others still answer)
│   └── NonNumericValues    a numeric column holding values that are not numbers (never counted as 0)
└── ImportRefused           an import that was refused as a whole (carries every bad line)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from .i18n import N_, tr, trn


def new_ref() -> str:
    """A short reference for an error: said to the user, and logged with the details."""
    return uuid.uuid4().hex[:8]

class KpiError(Exception):
    """Base class: a message fit for the user, in English (``str(err)``) or in the user's language
    (``err.localized(lang)``). The message is a gettext msgid marked where it is raised
    (``GoalError("No target for {name}.", "target", name=metric.name)``); a value may be a callable taking
    the language (a KPI's ``name``), called with the reader's."""

    def __init__(self, message: str = "", /, **values: object):
        self.msgid = message
        self.values = values
        super().__init__(self.localized("en"))

    def localized(self, lang: str | None = "en") -> str:
        """The message in ``lang`` (English where it has no translation)."""
        values = {k: (v(lang) if callable(v) else v) for k, v in self.values.items()}
        if not self.msgid:
            return str(self) if self.args else ""
        return tr(lang, self.msgid, **values)


class CatalogError(KpiError):
    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(N_("invalid KPI catalog:\n{problems}"), problems="\n".join(f"  - {p}" for p in self.problems))


class QueryError(KpiError):
    pass


class UnknownMetric(QueryError):
    def __init__(self, name: str, suggestions: list[str]):
        self.name = name
        self.suggestions = suggestions
        if suggestions:
            super().__init__(N_("Unknown KPI '{name}'. Did you mean {options}? `kpibot metrics` lists them all."),
                             name=name, options=lambda lang: tr(lang, " or ").join(suggestions))
        else:
            super().__init__(N_("Unknown KPI '{name}'. `kpibot metrics` lists them all."), name=name)


class UnknownDimension(QueryError):
    def __init__(self, metric, dimension: str, allowed: list[str]):
        """``metric``: the KPI's name, or a callable giving it in a language (``Metric.name``)."""
        self.metric = metric("en") if callable(metric) else metric
        self.dimension = dimension
        self.allowed = allowed
        super().__init__(N_("{metric} cannot be broken down or filtered by '{dimension}'; it can by: {allowed}."),
                         metric=metric, dimension=dimension,
                         allowed=lambda lang: ", ".join(allowed) if allowed else tr(lang, "nothing"))


class PeriodError(QueryError):
    GENERIC = N_("I don't understand the period '{text}'. Try one of: {accepted}.")

    def __init__(self, text: str, accepted: list[str]):
        self.text = text
        self.accepted = accepted
        super().__init__(self.GENERIC, text=text,
                         accepted=", ".join(accepted))


class KpiUnavailable(QueryError):
    """A KPI the source cannot give: a table or column it reads is missing. ``missing``: ``table`` or
    ``table.column`` names (nothing else: no path, URL or host, so the message may be shown to anyone)."""

    def __init__(self, metric, key: str, missing: list[str] | tuple[str, ...]):
        """``metric``: the KPI's name, or a callable giving it in a language (``Metric.name``)."""
        self.metric = key
        self.missing = tuple(missing)
        super().__init__(N_("{metric} is unavailable: the shop's data has no {missing}."), metric=metric,
                         missing=lambda lang: missing_text(self.missing, lang))


class NonNumericValues(QueryError):
    """Values that are not numbers in a numeric column (text such as "n/a", which SQLite keeps as text and
    would sum as 0): the KPI is refused rather than computed from a wrong sum."""

    def __init__(self, column: str, rows: int, metric=None, key: str | None = None):
        """``column``: ``table.column``; ``rows``: how many values are not numbers; ``metric``: the KPI's name
        (or a callable giving it), when known."""
        self.column, self.rows, self.metric = column, rows, key
        if metric is None:
            KpiError.__init__(self, N_("{column} holds values that are not numbers (rows: {rows}): refused rather than "
                                       "counted as 0. Fix the data (`kpibot source check` lists them)."),
                              column=column, rows=rows)
        else:
            KpiError.__init__(self, N_("{metric} is refused: {column} holds values that are not numbers (rows: {rows}), "
                                       "which would be counted as 0. Fix the data (`kpibot source check` lists them)."),
                              metric=metric, column=column, rows=rows)

    def for_metric(self, metric, key: str) -> NonNumericValues:
        return NonNumericValues(self.column, self.rows, metric, key)


def missing_text(missing, lang: str | None) -> str:
    """``('traffic.carts', 'returns')`` -> "column traffic.carts, table returns" in ``lang``."""
    return ", ".join(tr(lang, "column {column}", column=m) if "." in m else tr(lang, "table {table}", table=m)
                     for m in missing)


# what must never reach a chat: URLs, hosts, file paths (the log keeps them, with a reference)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s)'\"]+")
_IP = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?![\w.])")
_HOST_PORT = re.compile(r"(?<![\w.])(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+):\d{2,5}\b|\blocalhost\b")
_ABS_PATH = re.compile(r"(?<![\w.`])(?:~|[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}[/\\]?")
_FILE = re.compile(r"(?<![\w])[\w.@+-]*(?:[/\\][\w.@+-]+)*\.(?:ya?ml|db|sqlite3?|json|py|csv|toml|ini|cfg|conf|env|"
                   r"log|pem|key|txt)\b", re.IGNORECASE)
HIDDEN = "…"


def redact(text: str) -> tuple[str, bool]:
    """``text`` without URLs, hosts and file paths (each replaced by "…"), and whether anything was hidden.
    For what a chat shows: the full text goes to the log, with a reference the user can quote."""
    out = text
    for pattern in (_URL, _IP, _HOST_PORT, _ABS_PATH, _FILE):
        out = pattern.sub(HIDDEN, out)
    return out, out != text


@dataclass
class BadRow:
    line: int  # line number in the file (1 = the header line)
    reason: str


@dataclass
class ImportRefused(KpiError):
    path: str
    bad_rows: list[BadRow] = field(default_factory=list)
    reason: str = ""

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.localized("en")

    def localized(self, lang: str | None = "en") -> str:
        """The file, the reason, and every bad line (the first ``SHOWN_BAD_ROWS``), in ``lang``; a reason may
        itself know its words in other languages (``kpi.data.messages.Text``)."""
        n, path, reason = len(self.bad_rows), self.path, _told(self.reason, lang)
        if not n:
            if reason:
                return tr(lang, "{path}: import refused: {reason} (nothing was loaded)", path=path, reason=reason)
            return tr(lang, "{path}: import refused (nothing was loaded)", path=path)
        if reason:
            head = trn(lang, "{path}: import refused: {reason} ({n} bad line; nothing was loaded)",
                       "{path}: import refused: {reason} ({n} bad lines; nothing was loaded)", n, path=path,
                       reason=reason)
        else:
            head = trn(lang, "{path}: import refused ({n} bad line; nothing was loaded)",
                       "{path}: import refused ({n} bad lines; nothing was loaded)", n, path=path)
        shown = self.bad_rows[:SHOWN_BAD_ROWS]
        lines = [head] + ["  " + tr(lang, "line {line}: {reason}", line=b.line, reason=_told(b.reason, lang))
                          for b in shown]
        if n > len(shown):
            lines.append("  " + tr(lang, "... and {n} more", n=n - len(shown)))
        return "\n".join(lines)


SHOWN_BAD_ROWS = 50  # bad lines an import refusal names one by one


def _told(text: object, lang: str | None) -> str:
    return text.localized(lang) if hasattr(text, "localized") else str(text)
