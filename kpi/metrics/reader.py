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
from .filters import check_dimensions, key_value_filters, word_filters
from .periods import ACCEPTED_FORMS, Period, default_period, parse_period, period_vocabulary
from .reading import Reading, ReadingError
from .typos import correct, vocabulary
from .values import DimensionValues

MAX_PERIOD_WORDS = 7



# -- reading -----------------------------------------------------------------------------------------


def read_question(text: str, catalog: Catalog, *, now: datetime, tz: tzinfo,
                  values: DimensionValues | None = None) -> Reading:
    """Read a question; raise ``ReadingError``, ``UnknownMetric`` or ``PeriodError`` (each naming the part
    that failed, with suggestions) when it cannot be read as asked."""
    words = W.split_words(text)  # (Slack's escaping is read where its texts enter: bot.markup.from_slack)
    while hit := W.find(words, W.FILLER_PHRASES):  # "Guten Morgen" is a greeting, not tomorrow
        W.take(words, hit[0], hit[1])
    words = correct(words, vocabulary(catalog, values))
    if not [w for w in words if w.norm not in W.FILLER and not w.used]:
        raise ReadingError(N_("Ask for a KPI, for example: conversion, aov last month by channel, return rate "
                              "this week."), "kpi")
    filters: dict[str, list[str]] = {}
    key_value_filters(words, catalog, values, filters)
    compare, compare_period = _comparison(words, now=now, tz=tz)
    granularity = _granularity(words)
    breakdown, verb_metric, rank, top = _breakdown(words, catalog)
    top2, rank2 = _top_and_rank(words)
    rank, top = rank or rank2, top or top2
    if breakdown and top and not rank:
        rank = "best"
    metrics = _metrics(words, catalog)
    if verb_metric and not metrics:
        metrics = [verb_metric]
    period, period_text, period_typed = _period(words, now=now, tz=tz)
    word_filters(words, values, filters)
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
    check_dimensions(catalog, metrics, filters, breakdown)
    return Reading(metrics=tuple(dict.fromkeys(metrics)), period=period, compare=compare,
                   filters=tuple((d, tuple(v)) for d, v in filters.items()), breakdown=breakdown,
                   top=top if breakdown else None, rank=rank, granularity=granularity, period_text=period_text,
                   period_typed=period_typed)


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
        while j < len(words) and words[j].norm in ("the", "la", "le", "l'", "dem", "der", "den", "die"):
            j += 1
        if y := W.find(words[j:j + 8], W.YEAR_TARGETS):
            if y[0] == 0:
                W.take(words, i, j - i + y[1])
                return "year", None
        if p := W.find(words[j:j + 5], W.PREVIOUS_TARGETS):
            if p[0] == 0:
                W.take(words, i, j - i + p[1])
                return "previous", None
        run = _period_run(words, j)
        for size in range(run, 0, -1):
            if not W.free(words, j, size):
                continue
            phrase = W.phrase(words, j, size)
            if re.search(r"\s(?:last year|l' ?an dernier|l' ?annee derniere|de l' ?an dernier|im vorjahr"
                         r"|vorjahr|des vorjahres|a year ago)$", phrase):
                W.take(words, i, j - i + size)  # "october vs october last year": the same period a year earlier
                return "year", None
            try:
                other = parse_period(phrase, now=now, tz=tz)
            except PeriodError:
                continue
            W.take(words, i, j - i + size)
            return "relative", other
    return "previous", None


def _period_run(words, j: int) -> int:
    """How many words from ``j`` on could belong to a period (numbers, month names, period words)."""
    vocabulary = period_vocabulary()
    n = 0
    while j + n < len(words) and not words[j + n].used and n < MAX_PERIOD_WORDS and (
            words[j + n].norm in vocabulary or words[j + n].norm[:1].isdigit()
            or re.fullmatch(r"[qt][1-4]|(?:kw|wk|w)\d{1,2}", words[j + n].norm)):
        n += 1
    return n


def _relative(period: Period, other: Period) -> str | None:
    """How ``other`` relates to ``period``: the period before it, or the same period a year earlier."""
    if other.key in ("last_year",) and period.unit == "year":
        return "year"
    before = period.previous()
    if other.start == before.start:
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
    breakdown = verb = rank = top = None
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
        # what stands before the dimension, filler skipped: "which", "best", "worst 2", "les 3 pires", "top 5 des"
        marks, k = [], i - 1
        while k >= 0 and not words[k].used and len(marks) < 4 and (
                words[k].norm in W.WHICH or words[k].norm in W.BEST or words[k].norm in W.WORST
                or words[k].norm in ("bottom", "flop") or words[k].norm.isdigit() or words[k].norm in _ARTICLES
                or (words[k].norm in W.FILLER and words[k].norm not in ("by", "per", "par", "nach", "pro"))):
            marks.append(k)
            k -= 1
        after = words[i + d[1]].norm if i + d[1] < len(words) else ""
        named = [words[k].norm for k in marks]
        if any(n in W.WHICH or n in W.BEST or n in W.WORST or n in ("bottom", "flop") or n.isdigit() for n in named) \
                or after in _BREAKDOWN_AFTER:
            breakdown = dims[d[2]]
            W.take(words, i, d[1])
            for k in marks:
                n = words[k].norm
                if n in W.BEST:
                    rank = rank or "best"
                elif n in W.WORST or n in ("bottom", "flop"):
                    rank = rank or "worst"
                elif n.isdigit():
                    top = int(n)
                if n in W.WHICH or n in W.BEST or n in W.WORST or n in ("bottom", "flop") or n.isdigit():
                    words[k].used = True
            if after in _BREAKDOWN_AFTER:
                words[i + d[1]].used = True
    if breakdown:
        if hit := W.find(words, tuple(p for p in W.BEST + W.WORST if " " in p)):  # "am besten", "le moins bien"
            rank = rank or ("best" if hit[2] in W.BEST else "worst")
            W.take(words, hit[0], hit[1])
        for k, w in enumerate(words):
            if w.used:
                continue
            if w.norm in W.VERBS and not catalog.aliases.get(w.norm):
                verb = W.VERBS[w.norm]
                w.used = True
            elif w.norm in W.VERBS:
                verb = W.VERBS[w.norm]
            if w.norm in ("top", "bottom", "flop") and k + 1 < len(words) and words[k + 1].norm.isdigit():
                continue  # "top 3": a number of rows, read by _top_and_rank
            if w.norm in W.BEST and not w.used and k > 0:
                rank, w.used = rank or "best", True
            elif w.norm in W.WORST and not w.used and k > 0:
                rank, w.used = rank or "worst", True
    return breakdown, verb, rank, top


_ARTICLES = {"the", "le", "la", "les", "l'", "des", "de", "du", "die", "der", "den", "dem", "das"}
_BREAKDOWN_AFTER = {"breakdown", "split", "repartition", "aufschlusselung", "ranking", "classement", "vergleich"}


def _metrics(words, catalog: Catalog) -> list[str]:
    """Every KPI the words name (aliases in every language), longest name first."""
    aliases = W.alias_parts(catalog)
    found: list[tuple[int, str]] = []
    norms = [w.norm for w in words]

    def match() -> None:
        for parts, key in aliases:  # the longest phrase first, wherever it stands
            n = len(parts)
            for i in range(len(words) - n + 1):
                if norms[i:i + n] == parts and W.free(words, i, n):
                    found.append((i, key))
                    W.take(words, i, n)

    match()
    return [key for _, key in sorted(found)]


def _period(words, *, now, tz) -> tuple[Period | None, str, str]:
    """The longest phrase of free words that is a period (tried only within runs of period words)."""
    candidates = []
    for i in range(len(words)):
        run = _period_run(words, i)
        for size in range(run, 0, -1):
            candidates.append((size, i))
    for size, i in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if not W.free(words, i, size):
            continue
        phrase = W.phrase(words, i, size)
        if size == 1 and (phrase in W.FILLER or phrase in W.AMBIGUOUS_PERIOD_WORDS or phrase in _GLUE_ALONE):
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
        return period, phrase, " ".join(w.raw for w in words[i:i + size])
    return None, "", ""


# words of period phrases that are no period alone ("in", "last", "week")
_GLUE_ALONE = {"in", "for", "the", "on", "last", "past", "week", "month", "year", "day", "to", "a", "de", "du"}


def _period_context(words, i: int, size: int) -> bool:
    before = words[i - 1].norm if i else ""
    return size > 1 or before in ("in", "for", "during", "en", "pour", "im", "of", "de", "du", "depuis", "seit", "since",
                                  "over")


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
