"""What a question was read as (``Reading``), why one could not be (``ReadingError``), and the answers to a
reading (``answer_reading``: one result per KPI, ranked breakdowns ordered best or worst first)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from kpi.errors import QueryError
from kpi.i18n import lang_of, tr

from .catalog import Catalog
from .engine import KpiRequest
from .formatting import dimension_name
from .periods import Period


@dataclass(frozen=True)
class Reading:
    """What a question was understood to ask: one request per KPI, and how it was read."""

    metrics: tuple[str, ...]
    period: Period
    compare: str | None = "previous"
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    breakdown: str | None = None
    top: int | None = None
    rank: str | None = None  # best | worst: order a breakdown by the KPI's value
    granularity: str | None = None
    period_text: str = ""
    period_typed: str = ""  # the period as the question wrote it ("last week")

    def requests(self) -> list[KpiRequest]:
        top = self.top or (3 if self.rank else 10)
        return [KpiRequest(metric=m, period=self.period, compare=self.compare, filters=self.filters,
                           breakdown=self.breakdown, granularity=self.granularity, top=top) for m in self.metrics]

    def describe(self, catalog: Catalog, lang: str = "en") -> str:
        """'Conversion rate · last 7 days (Nov 22–28) · device = mobile · vs previous period'."""
        parts = [" & ".join(catalog.metrics[m].name(lang) for m in self.metrics)]
        parts.append(self.period.name(lang))  # the answer itself gives its dates
        for dim, vals in self.filters:
            parts.append(f"{dimension_name(dim, lang)} = {', '.join(vals)}")
        if self.breakdown:
            if self.rank == "best":
                parts.append(tr(lang, "best {dimension} first", dimension=dimension_name(self.breakdown, lang)))
            elif self.rank == "worst":
                parts.append(tr(lang, "worst {dimension} first", dimension=dimension_name(self.breakdown, lang)))
            else:
                parts.append(tr(lang, "by {dimension}", dimension=dimension_name(self.breakdown, lang)))
        if self.compare == "previous":
            parts.append(tr(lang, "vs previous period"))
        elif self.compare == "year":
            parts.append(tr(lang, "vs same period last year"))
        return " · ".join(parts)

    def as_dict(self) -> dict:
        return {"metrics": list(self.metrics), "period": self.period.key, "start": self.period.start.date().isoformat(),
                "end": self.period.end.date().isoformat(), "compare": self.compare,
                "filters": {d: list(v) for d, v in self.filters}, "breakdown": self.breakdown, "top": self.top,
                "rank": self.rank, "granularity": self.granularity}


class ReadingError(QueryError):
    """A question that cannot be read as asked. ``part``: kpi | period | filter | comparison; ``suggestions``:
    what could have been meant."""

    def __init__(self, message: str, part: str, /, suggestions: list[str] | None = None, **values: object):
        self.part = part
        self.suggestions = list(suggestions or [])
        super().__init__(message, **values)


# calendar periods people often mean as rolling ones: "last week" may be Monday to Sunday, or the last 7 days
_ROLLING_TWINS = {"last_week": {"en": "last 7 days", "fr": "les 7 derniers jours", "de": "letzte 7 Tage"},
                  "last_month": {"en": "last 30 days", "fr": "les 30 derniers jours", "de": "letzte 30 Tage"}}


def other_reading(reading: Reading, question: str, lang: str) -> str | None:
    """The question asked the other way when two readings are close (a calendar period that could be meant
    as the last N days): the likelier reading is answered, this one offered. None when there is none."""
    twin = _ROLLING_TWINS.get(reading.period.key)
    if not twin or not reading.period_typed or reading.period_typed not in question:
        return None
    return question.replace(reading.period_typed, twin.get(lang_of(lang), twin["en"]), 1)


def answer_reading(engine, reading: Reading) -> list:
    """Ask the engine every request of a reading; a ranked breakdown ("which channel converts best", "top 5
    countries") is asked for every group and ordered by the KPI's value, best first for the KPI (the lowest
    return rate is the best), then cut to the number asked."""
    results = []
    for request in reading.requests():
        if reading.rank and request.breakdown:
            result = engine.ask(replace(request, top=RANK_GROUPS))
            results.append(rank_breakdown(result, reading.rank, reading.top or 3))
        else:
            results.append(engine.ask(request))
    return results


RANK_GROUPS = 1000  # "every group" of a dimension when ranking (dimensions people rank are small)


def rank_breakdown(result, rank: str, top: int):
    """The breakdown ordered best (or worst) first by the KPI's value (no value: last), cut to ``top`` rows."""
    higher = result.metric.higher_is_better
    best_first = (rank == "best") == (higher is not False)  # neutral (spend): the most first, as "top" reads
    rows = [r for r in result.breakdown if not r.is_other]
    known = sorted((r for r in rows if r.value.value is not None), key=lambda r: r.value.value, reverse=best_first)
    ordered = known + [r for r in rows if r.value.value is None]
    return replace(result, breakdown=ordered[:top])
