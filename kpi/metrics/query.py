"""Questions to requests: ``parse_query`` reads a question with ``kpi.metrics.reader`` (free text, in
English, French or German, any order, filler ignored) and gives the first KPI's ``KpiRequest`` with the
whole ``Reading``; ``take_filters`` reads ``channel=email`` filters in goals and alert rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from .catalog import Catalog
from .engine import KpiRequest
from .reader import DIMENSIONS, Reading, read_question
from .values import DimensionValues


@dataclass(frozen=True)
class ParsedQuery:
    request: KpiRequest  # the first KPI's request (``reading.requests()`` has one per KPI)
    metric_text: str
    period_text: str
    reading: Reading | None = None


def parse_query(text: str, catalog: Catalog, *, now: datetime, tz: ZoneInfo,
                values: DimensionValues | None = None) -> ParsedQuery:
    """Read a question (``kpi.metrics.reader``). Raises UnknownMetric (with suggestions), PeriodError,
    ReadingError or QueryError, each naming the part of the question that failed."""
    reading = read_question(text, catalog, now=now, tz=tz, values=values)
    return ParsedQuery(request=reading.requests()[0], metric_text=" & ".join(reading.metrics),
                       period_text=reading.period_text, reading=reading)


def take_filters(text: str, catalog: Catalog, sep: str = " ") -> tuple[tuple[tuple[str, tuple[str, ...]], ...], str]:
    """``channel=email``, ``pays:FR,DE``: the filters a text names (dimension words in every language, or
    any catalog dimension), and the text with each replaced by ``sep``."""
    words = set(DIMENSIONS) | {d for ms in catalog.measures.values() for d in ms.dimensions}
    pattern = r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\s*[=:]\s*([^\s,|]+(?:,[^\s,|]+)*)"
    filters: dict[str, list[str]] = {}
    for m in re.finditer(pattern, text):
        filters.setdefault(DIMENSIONS.get(m[1], m[1]), []).extend(v for v in m[2].split(",") if v)
    return tuple((d, tuple(v)) for d, v in filters.items()), re.sub(pattern, sep, text)
