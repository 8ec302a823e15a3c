"""The errors of the domain, one small tree.

KpiError                    anything the user can be told about in one clear line
├── CatalogError            config/metrics.yaml is wrong (file, KPI, field and reason, all problems at once)
├── QueryError              a request the engine cannot answer as asked
│   ├── UnknownMetric       a KPI name that is not in the catalog (carries suggestions)
│   ├── UnknownDimension    a breakdown or filter the KPI does not support
│   └── PeriodError         a period text that could not be parsed (carries the accepted forms)
└── ImportRefused           an import that was refused as a whole (carries every bad line)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .i18n import N_, tr, trn


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
