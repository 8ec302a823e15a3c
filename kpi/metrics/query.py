"""Free text, in English, French or German, to a ``KpiRequest``.

``conversion``, ``aov last month by channel``, ``taux de retour cette semaine vs l'an dernier``,
``Umsatz letzten Monat nach Kanal``,
``revenue ytd by channel top 5``, ``conversion last 30 days channel=email weekly``.

Grammar (every part optional but the KPI, in any order after it):
    <kpi> [period] [vs previous | vs last year] [by <dimension>] [<dimension>=<value> ...]
          [top N] [daily | weekly | monthly]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from kpi.errors import PeriodError, QueryError, UnknownMetric

from .catalog import Catalog, normalise
from .engine import KpiRequest
from .periods import default_period, parse_period

DIMENSION_WORDS = {
    "channel": "channel", "channels": "channel", "canal": "channel", "canaux": "channel", "source": "channel",
    "device": "device", "devices": "device", "appareil": "device", "appareils": "device", "terminal": "device",
    "country": "country", "countries": "country", "pays": "country",
    "kanal": "channel", "kanale": "channel", "kanalen": "channel", "gerat": "device", "gerate": "device",
    "geraten": "device", "geratetyp": "device", "land": "country", "lander": "country", "landern": "country",
}
_VERSUS = (r"\b(?:vs\.?|versus|compared to|compare a|par rapport a|contre|im vergleich zu(?:m|r)?|verglichen mit"
           r"|gegenuber)\s+(?:the\s+|la\s+|l'|dem\s+|der\s+|die\s+)?")
_COMPARE = [
    (_VERSUS + r"(?:previous(?: period)?|prev|prior period|last period|periode precedente|precedente?"
     r"|vorperiode|vorherige(?:n|r)? (?:periode|zeitraum))\b", "previous"),
    (_VERSUS + r"(?:same period\s+)?(?:last year|a year ago|year ago|ly|an dernier|annee derniere|an passe"
     r"|annee passee|n-1|vorjahr(?:eszeitraum)?|letzte(?:s|m|n)? jahr)\b", "year"),
    (r"\b(?:yoy|year over year|sur un an|gegenuber vorjahr)\b", "year"),
    (r"\b(?:no comparison|sans comparaison|ohne vergleich)\b", "none"),
]
_GRANULARITY = [
    (r"\b(?:daily|by day|per day|par jour|quotidien(?:ne)?|taglich|pro tag|nach tag(?:en)?)\b", "day"),
    (r"\b(?:weekly|by week|per week|par semaine|hebdomadaire|wochentlich|pro woche|nach woche(?:n)?)\b", "week"),
    (r"\b(?:monthly|by month|per month|par mois|mensuel(?:le)?|monatlich|pro monat|nach monat(?:en)?)\b", "month"),
]


@dataclass(frozen=True)
class ParsedQuery:
    request: KpiRequest
    metric_text: str
    period_text: str


def parse_query(text: str, catalog: Catalog, *, now: datetime, tz: ZoneInfo) -> ParsedQuery:
    """Parse a question. Raises UnknownMetric (with suggestions), PeriodError or QueryError."""
    work = " " + normalise(text) + " "
    if not work.strip():
        raise QueryError("Ask for a KPI, for example: conversion, aov last month by channel, return rate this week.")

    compare: str | None = "previous"
    for pattern, value in _COMPARE:
        work, n = re.subn(pattern, " ", work)
        if n:
            compare = None if value == "none" else value
    granularity = None
    for pattern, value in _GRANULARITY:
        work, n = re.subn(pattern, " ", work)
        if n:
            granularity = value
    top = 10
    m = re.search(r"\btop\s+(\d{1,3})\b", work)
    if m:
        top = max(1, int(m.group(1)))
        work = work[: m.start()] + " " + work[m.end():]
    filter_pairs, work = take_filters(work, catalog)
    breakdown = None
    m = re.search(r"\b(?:by|par|per|nach|pro|je)\s+(?:the\s+|le\s+|la\s+|dem\s+|der\s+|den\s+)?([a-z_]+)\b", work)
    if m:
        breakdown = DIMENSION_WORDS.get(m.group(1), m.group(1))
        work = work[: m.start()] + " " + work[m.end():]

    words = work.split()
    if not words:
        raise QueryError("Which KPI? For example: conversion, aov last month by channel, return rate this week.")
    metric_key, used = _match_metric(words, catalog)
    if metric_key is None:
        _raise_unknown(words, catalog, now=now, tz=tz)
    period_text = " ".join(words[used:])
    period = parse_period(period_text, now=now, tz=tz) if period_text else default_period(now=now, tz=tz)
    return ParsedQuery(
        request=KpiRequest(
            metric=metric_key, period=period, compare=compare,
            filters=filter_pairs,
            breakdown=breakdown, granularity=granularity, top=top,
        ),
        metric_text=" ".join(words[:used]), period_text=period_text,
    )


def take_filters(text: str, catalog: Catalog, sep: str = " ") -> tuple[tuple[tuple[str, tuple[str, ...]], ...], str]:
    """``channel=email``, ``pays:FR,DE``: the filters a text names (dimension words in English or French,
    or any catalog dimension), and the text with each replaced by ``sep``."""
    words = set(DIMENSION_WORDS) | {d for ms in catalog.measures.values() for d in ms.dimensions}
    pattern = r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\s*[=:]\s*([^\s,|]+(?:,[^\s,|]+)*)"
    filters: dict[str, list[str]] = {}
    for m in re.finditer(pattern, text):
        filters.setdefault(DIMENSION_WORDS.get(m[1], m[1]), []).extend(v for v in m[2].split(",") if v)
    return tuple((d, tuple(v)) for d, v in filters.items()), re.sub(pattern, sep, text)


def _match_metric(words: list[str], catalog: Catalog) -> tuple[str | None, int]:
    """The longest alias that the words start with (at word boundaries)."""
    for alias, key in catalog.aliases.items():
        parts = alias.split()
        if words[: len(parts)] == parts:
            return key, len(parts)
    return None, 0


def _raise_unknown(words: list[str], catalog: Catalog, *, now: datetime, tz: ZoneInfo):
    """Find how much of the text is the (unknown) KPI name: the longest head after which a period parses."""
    for cut in range(1, len(words) + 1):
        rest = " ".join(words[cut:])
        try:
            if rest:
                parse_period(rest, now=now, tz=tz)
        except PeriodError:
            continue
        raise UnknownMetric(" ".join(words[:cut]), catalog.suggest(" ".join(words[:cut])))
    raise UnknownMetric(" ".join(words), catalog.suggest(" ".join(words)))
