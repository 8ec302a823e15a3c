"""Reading a question the way people type it, in English, French or German, into a ``Reading``.

    "how are we doing on conversion on mobile this week vs last week?"
    -> Conversion rate · this week · device = mobile · vs previous period

The text is cut into words; each kind of part is found wherever it stands, longest phrase first:
filters written ``key=value``, comparisons (``vs last year``, ``yoy``, ``this week vs last week``),
chart granularity, ``top N`` and best/worst, breakdowns (``by channel``, ``which country``, ``top 5
countries``), the KPIs (the catalog's names and aliases, typos forgiven), the period (what
``kpi.metrics.periods`` parses), and filters in words (``on mobile``, ``in France``, ``aus Deutschland``:
values from the data, ``kpi.metrics.values``). What is left must be filler ("how are we doing on",
"quel est", "zeig mir"): any other word is refused, naming the part that failed, because a question
read wrongly is worse than a question refused.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from kpi.errors import PeriodError, UnknownDimension, UnknownMetric
from kpi.i18n import N_

from . import words as W
from .catalog import Catalog
from .formatting import dimension_name
from .periods import ACCEPTED_FORMS, Period, default_period, parse_period
from .reading import Reading, ReadingError
from .values import DimensionValues

MAX_PERIOD_WORDS = 7

_FILTER_KV = re.compile(r"^([a-z_]+)\s*[=:]\s*(.+)$")


# -- reading -----------------------------------------------------------------------------------------


def read_question(text: str, catalog: Catalog, *, now: datetime, tz: tzinfo,
                  values: DimensionValues | None = None) -> Reading:
    """Read a question; raise ``ReadingError``, ``UnknownMetric`` or ``PeriodError`` (each naming the part
    that failed, with suggestions) when it cannot be read as asked."""
    words = W.split_words(text)  # (Slack's escaping is read where its texts enter: bot.markup.from_slack)
    if not [w for w in words if w.norm not in W.FILLER]:
        raise ReadingError(N_("Ask for a KPI, for example: conversion, aov last month by channel, return rate "
                              "this week."), "kpi")
    filters: dict[str, list[str]] = {}
    _key_value_filters(words, catalog, values, filters)
    compare, compare_period = _comparison(words, now=now, tz=tz)
    granularity = _granularity(words)
    top, rank = _top_and_rank(words)
    breakdown, verb_metric, rank2 = _breakdown(words, catalog)
    rank = rank or rank2
    if breakdown and top and not rank:
        rank = "best"
    metrics = _metrics(words, catalog)
    if verb_metric and not metrics:
        metrics = [verb_metric]
    period, period_text = _period(words, now=now, tz=tz)
    _word_filters(words, values, filters)
    _leftovers(words, catalog, values, metrics, now=now, tz=tz)
    if not metrics:
        raise ReadingError(N_("Which KPI? For example: conversion, aov last month by channel, return rate this week."),
                           "kpi")
    if period is None:
        period = _implied_period(compare_period, now=now, tz=tz) or default_period(now=now, tz=tz)
    if compare == "relative" and compare_period is not None:
        compare = _relative(period, compare_period)
        if compare is None:
            raise ReadingError(N_("I can compare {period} with the period before or with the same period last "
                                  "year, not with {other}."), "comparison", period=period.describe,
                               other=compare_period.describe)
    if rank and not breakdown:
        rank = None
    return Reading(metrics=tuple(dict.fromkeys(metrics)), period=period, compare=compare,
                   filters=tuple((d, tuple(v)) for d, v in filters.items()), breakdown=breakdown,
                   top=top if breakdown else None, rank=rank, granularity=granularity, period_text=period_text)


def _key_value_filters(words, catalog: Catalog, values: DimensionValues | None, filters: dict) -> None:
    """``channel=email``, ``pays=France``, ``country:FR,DE``."""
    dims = set(W.DIMENSIONS) | {d for ms in catalog.measures.values() for d in ms.dimensions}
    for w in words:
        m = _FILTER_KV.match(w.norm)
        if w.used or not m or m[1] not in dims:
            continue
        dim = W.DIMENSIONS.get(m[1], m[1])
        raw = _FILTER_KV.match(w.raw.lower().replace("’", "'"))
        raw_values = [v for v in re.split(r"[,/]", w.raw.split("=", 1)[-1] if "=" in w.raw else w.raw.split(":", 1)[-1])
                      if v] if raw else []
        for v in raw_values:
            filters.setdefault(dim, []).append(_known_value(dim, v, values))
        w.used = True


def _known_value(dim: str, text: str, values: DimensionValues | None) -> str:
    if values is None or not values.values(dim):
        return text
    found = values.value(dim, text)
    if found is None:
        raise ReadingError(N_("No {dimension} '{value}' in the data. Known: {known}."), "filter",
                           suggestions=[f"{dim}={v}" for v in values.closest(text, dim, fallback=False)], dimension=lambda lang: dimension_name(dim, lang), value=text,
                           known=", ".join(values.values(dim)[:20]))
    return found


def _comparison(words, *, now, tz) -> tuple[str | None, Period | None]:
    """('previous' | 'year' | None | 'relative', the period compared with when one was named)."""
    if hit := W.find(words, W.NO_COMPARISON):
        W.take(words, hit[0], hit[1])
        return None, None
    if hit := W.find(words, W.ABBREVIATIONS):
        W.take(words, hit[0], hit[1])
        compare, implied = W.ABBREVIATIONS[hit[2]]
        return compare, (parse_period(implied, now=now, tz=tz) if implied else None)
    for i, w in enumerate(words):
        hit = W.find(words[i:i + 4], W.VERSUS)
        if w.used or hit is None or hit[0] != 0:
            continue
        n = hit[1]
        j = i + n
        while j < len(words) and words[j].norm in ("the", "la", "le", "l'", "dem", "der", "den", "die", "same"):
            j += 1
        if y := W.find(words[j:j + 8], W.YEAR_TARGETS):
            if y[0] == 0:
                W.take(words, i, j - i + y[1])
                return "year", None
        if p := W.find(words[j:j + 5], W.PREVIOUS_TARGETS):
            if p[0] == 0:
                W.take(words, i, j - i + p[1])
                return "previous", None
        for size in range(min(MAX_PERIOD_WORDS, len(words) - j), 0, -1):
            if not W.free(words, j, size):
                continue
            try:
                other = parse_period(W.phrase(words, j, size), now=now, tz=tz)
            except PeriodError:
                continue
            W.take(words, i, j - i + size)
            return "relative", other
    return "previous", None


def _relative(period: Period, other: Period) -> str | None:
    """How ``other`` relates to ``period``: the period before it, or the same period a year earlier."""
    if other.key in ("last_year",) and period.unit == "year":
        return "year"
    before = period.previous()
    if (other.start, other.end) == (before.start, before.end) or other.start == before.start:
        return "previous"
    ago = period.year_ago()
    if other.start == ago.start:
        return "year"
    if other.start.year == period.start.year - 1 and other.unit == "year":
        return "year"
    return None


def _implied_period(compare_period: Period | None, *, now, tz) -> Period | None:
    """"conversion vs last week" asks about this week: the unit the comparison names, up to today."""
    if compare_period is None:
        return None
    implied = {"last_week": "this_week", "last_month": "this_month", "last_quarter": "this_quarter",
               "last_year": "this_year", "yesterday": "today", "this_month": "this_month", "this_week": "this_week",
               "today": "today"}.get(compare_period.key)
    return parse_period(implied, now=now, tz=tz) if implied else None


def _granularity(words) -> str | None:
    found = None
    while hit := W.find(words, W.GRANULARITY):
        W.take(words, hit[0], hit[1])
        found = W.GRANULARITY[hit[2]]
    return found


def _top_and_rank(words) -> tuple[int | None, str | None]:
    top = rank = None
    for i, w in enumerate(words):
        if w.used:
            continue
        if m := re.fullmatch(r"top(\d{1,3})", w.norm):
            top, rank = int(m[1]), "best"
            w.used = True
        elif w.norm in ("top", "bottom", "flop") and i + 1 < len(words) and words[i + 1].norm.isdigit():
            top, rank = int(words[i + 1].norm), "best" if w.norm == "top" else "worst"
            W.take(words, i, 2)
    return top, rank


def _breakdown(words, catalog: Catalog) -> tuple[str | None, str | None, str | None]:
    """(dimension, a KPI named by a verb, best | worst): 'by channel', 'which channel converts best',
    'top 5 countries', 'worst device'."""
    dims = {k: v for k, v in W.DIMENSIONS.items()}
    catalog_dims = {d for ms in catalog.measures.values() for d in ms.dimensions}
    dims.update({d: d for d in catalog_dims})
    breakdown = verb = rank = None
    for i in range(len(words)):
        hit = W.find(words[i:i + 4], W.BY)
        if hit is None or hit[0] != 0 or not W.free(words, i, hit[1]):
            continue
        j = i + hit[1]
        while j < len(words) and words[j].norm in ("the", "le", "la", "les", "l'", "dem", "der", "den", "die", "each",
                                                     "chaque", "jedem", "jeden", "jede"):
            j += 1
        d = W.find(words[j:j + 3], dims)
        if d and d[0] == 0:
            breakdown = dims[d[2]]
            W.take(words, i, j - i + d[1])
            break
    for i, w in enumerate(words):
        if breakdown or w.used:
            continue
        d = W.find(words[i:i + 3], dims)
        if not d or d[0] != 0:
            continue
        before = words[i - 1].norm if i else ""
        after = words[i + d[1]].norm if i + d[1] < len(words) else ""
        if before in W.WHICH or before in W.BEST or before in W.WORST or after in ("breakdown", "split", "repartition",
                                                                                "aufschlusselung", "ranking",
                                                                                "classement", "vergleich") \
                or (i >= 2 and words[i - 2].norm in W.WHICH and before in W.BEST + W.WORST) \
                or re.fullmatch(r"\d{1,3}", before):
            breakdown = dims[d[2]]
            W.take(words, i, d[1])
            if before in W.WHICH or before in W.BEST or before in W.WORST:
                words[i - 1].used = True
                if before in W.BEST:
                    rank = "best"
                elif before in W.WORST:
                    rank = "worst"
            if i + d[1] < len(words) and words[i + d[1]].norm in ("breakdown", "split", "repartition",
                                                                  "aufschlusselung", "ranking", "classement"):
                words[i + d[1]].used = True
    if breakdown:
        for k, w in enumerate(words):
            if w.used:
                continue
            if w.norm in W.VERBS and not catalog.aliases.get(w.norm):
                verb = W.VERBS[w.norm]
                w.used = True
            elif w.norm in W.VERBS:
                verb = W.VERBS[w.norm]
            if w.norm in W.BEST and not w.used and k > 0:
                rank, w.used = rank or "best", True
            elif w.norm in W.WORST and not w.used and k > 0:
                rank, w.used = rank or "worst", True
    return breakdown, verb, rank


def _metrics(words, catalog: Catalog) -> list[str]:
    """Every KPI the words name (aliases in every language; a typo of a word of five letters or more is
    forgiven when one alias is clearly meant)."""
    aliases = sorted(catalog.aliases.items(), key=lambda kv: (-len(kv[0].split()), -len(kv[0])))
    found: list[tuple[int, str]] = []
    vocabulary = {part for alias, _ in aliases for part in alias.split()}

    def match() -> None:
        for alias, key in aliases:  # the longest phrase first, wherever it stands
            n = len(alias.split())
            for i in range(len(words) - n + 1):
                if W.free(words, i, n) and W.phrase(words, i, n) == alias:
                    found.append((i, key))
                    W.take(words, i, n)

    match()
    if found:
        return [key for _, key in sorted(found)]
    # typos: a free word one edit (a letter wrong, missing, extra, or two swapped) from exactly one word of the aliases
    corrected = False
    for w in words:
        if w.used or w.norm in W.FILLER or len(w.norm) < 5 or w.norm in vocabulary or not w.norm.isalpha():
            continue
        close = [v for v in vocabulary if abs(len(v) - len(w.norm)) <= 1 and W.edits(w.norm, v) <= 1]
        if len(close) == 1:
            w.norm = close[0]
            corrected = True
    if corrected:
        match()
    return [key for _, key in sorted(found)]


def _period(words, *, now, tz) -> tuple[Period | None, str]:
    """The longest run of free words that is a period."""
    for size in range(min(MAX_PERIOD_WORDS, len(words)), 0, -1):
        for i in range(0, len(words) - size + 1):
            if not W.free(words, i, size):
                continue
            phrase = W.phrase(words, i, size)
            if size == 1 and (phrase in W.FILLER or phrase in W.AMBIGUOUS_PERIOD_WORDS):
                continue
            try:
                period = parse_period(phrase, now=now, tz=tz)
            except PeriodError as exc:
                if exc.msgid != PeriodError.GENERIC:  # read as a period, but not one that can be answered
                    raise
                continue
            if W.AMBIGUOUS_PERIOD_WORDS & set(phrase.split()) and not _period_context(words, i, size):
                continue
            W.take(words, i, size)
            # the words around a period that only introduce it ("in", "for the", "depuis")
            return period, phrase
    return None, ""




def _period_context(words, i: int, size: int) -> bool:
    before = words[i - 1].norm if i else ""
    return size > 1 or before in ("in", "for", "during", "en", "pour", "im", "in", "of", "de", "du", "depuis", "seit",
                                  "since", "since the", "over")


def _word_filters(words, values: DimensionValues | None, filters: dict) -> None:
    """'on mobile', 'in France', 'paid search', 'aus Deutschland': values the data holds, by their words."""
    if values is None:
        return
    phrases = values.phrases()
    by_length: dict[int, set[str]] = {}
    for p in phrases:
        by_length.setdefault(len(p.split()), set()).add(p)
    for size in sorted(by_length, reverse=True):
        for i in range(len(words) - size + 1):
            if not W.free(words, i, size):
                continue
            phrase = W.phrase(words, i, size)
            if phrase not in by_length[size]:
                continue
            if size == 1 and len(phrase) <= 3 and phrase in W.AMBIGUOUS_SHORT:
                # 'us', 'de', 'ca', 'au': a country only written as its code in capitals ('DE') or after a preposition
                if not (words[i].raw.isupper() or (i and words[i - 1].norm in ("in", "from", "for", "the"))):
                    continue
            pairs = values.lookup(phrase)
            if not pairs:
                continue
            dim, value = pairs[0]
            if value not in filters.get(dim, []):
                filters.setdefault(dim, []).append(value)
            W.take(words, i, size)
            if i and words[i - 1].norm in W.FILTER_PREPS and not words[i - 1].used:
                words[i - 1].used = True
            if i >= 2 and words[i - 2].norm in W.FILTER_PREPS and words[i - 1].norm in ("the", "le", "la", "l'", "dem",
                                                                                       "der", "den", "die"):
                W.take(words, i - 2, 2)




def _leftovers(words, catalog: Catalog, values: DimensionValues | None, metrics: list[str], *, now, tz) -> None:
    """Every word still free must be filler; otherwise say which part of the question it breaks."""
    rest = [(i, w) for i, w in enumerate(words) if not w.used and w.norm not in W.FILLER and w.norm not in W.AND
            and w.norm not in W.FILTER_PREPS and w.norm not in W.BY]
    if not rest:
        return
    text = " ".join(w.raw for _, w in rest)
    if not metrics:
        raise UnknownMetric(text, catalog.suggest(text))
    i, first = rest[0]
    if i and words[i - 1].norm in W.BY and first.norm.isalpha() and first.norm not in W.PERIOD_WORDS:
        metric = catalog.metrics[metrics[0]]
        raise UnknownDimension(metric.name, first.raw, catalog.dimensions_of(metric))
    looks_like_period = bool(re.search(r"\d", text)) or any(
        w.norm in W.PERIOD_WORDS for _, w in rest)
    if looks_like_period:
        parse_period(text, now=now, tz=tz)  # raises the precise PeriodError ("in the future", "starts after it ends")
        raise PeriodError(text, ACCEPTED_FORMS["en"])
    if values is not None:
        known = values.closest(text)
        close = values.closest(text, fallback=False) if len(rest) == 1 else []
        # what was probably meant, as whole questions: the word replaced by a value the data holds
        asked = [" ".join(value if k == i else w.raw for k, w in enumerate(words)) for value in close]
        raise ReadingError(N_("I don't know '{value}': it is not a KPI, a period, or a value of the data "
                              "(such as {known})."), "filter", suggestions=asked, value=text,
                           known=", ".join(known) or "—")
    raise ReadingError(N_("I don't know '{value}': it is not a KPI or a period."), "filter", value=text)




DIMENSIONS = W.DIMENSIONS
FILLER = W.FILLER

__all__ = ["DIMENSIONS", "FILLER", "Reading", "ReadingError", "read_question"]
