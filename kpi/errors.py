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

from .i18n import N_, tr


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
        head = f"{self.path}: import refused"
        if self.reason:
            head += f": {self.reason}"
        if self.bad_rows:
            head += f" ({len(self.bad_rows)} bad line{'s' if len(self.bad_rows) != 1 else ''}; nothing was loaded)"
            shown = self.bad_rows[:50]
            head += "\n" + "\n".join(f"  line {b.line}: {b.reason}" for b in shown)
            if len(self.bad_rows) > len(shown):
                head += f"\n  ... and {len(self.bad_rows) - len(shown)} more"
        else:
            head += " (nothing was loaded)"
        return head
