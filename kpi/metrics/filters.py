"""Filters in a question: ``channel=email``, ``pays=France``, ``country:FR,DE``, and the same in words ("on
mobile", "in France", "aus Deutschland", "the email channel"), each value one the data holds
(``kpi.metrics.values``); and the check that every KPI asked for has the dimensions filtered or broken down."""

from __future__ import annotations

import re

from kpi.errors import UnknownDimension
from kpi.i18n import N_

from . import words as W
from .catalog import Catalog
from .formatting import dimension_name
from .reading import ReadingError
from .values import DimensionValues

_FILTER_KV = re.compile(r"^([a-z_]+)\s*[=:]\s*(.+)$")


def check_dimensions(catalog: Catalog, metrics: list[str], filters: dict, breakdown: str | None) -> None:
    """A filter or breakdown every KPI asked for has (else the engine would refuse later, less clearly)."""
    for key in metrics:
        metric = catalog.metrics[key]
        allowed = catalog.dimensions_of(metric)
        for dim in [*filters, *([breakdown] if breakdown else [])]:
            if dim not in allowed:
                raise UnknownDimension(metric.name, dim, allowed)


def key_value_filters(words, catalog: Catalog, values: DimensionValues | None, filters: dict) -> None:
    """``channel=email``, ``pays=France``, ``country:FR,DE``."""
    dims = set(W.DIMENSIONS) | {d for ms in catalog.measures.values() for d in ms.dimensions}
    for w in words:
        m = _FILTER_KV.match(w.norm)
        if w.used or not m or m[1] not in dims:
            continue
        dim = W.DIMENSIONS.get(m[1], m[1])
        typed = w.raw.split("=", 1)[-1] if "=" in w.raw else w.raw.split(":", 1)[-1]
        for v in (v for v in re.split(r"[,/]", typed) if v):
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


def word_filters(words, values: DimensionValues | None, filters: dict) -> None:
    """'on mobile', 'in France', 'paid search', 'aus Deutschland': values the data holds, by their words."""
    if values is None:
        return
    by_length = values.phrases_by_length()
    for size in by_length:
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
            for k in (i + size, i - 1):  # "the email channel", "le canal email": the dimension named with its value
                if 0 <= k < len(words) and not words[k].used and W.DIMENSIONS.get(words[k].norm) == dim:
                    words[k].used = True
            if i and words[i - 1].norm in W.FILTER_PREPS and not words[i - 1].used:
                words[i - 1].used = True
            if i >= 2 and words[i - 2].norm in W.FILTER_PREPS and words[i - 1].norm in ("the", "le", "la", "l'", "dem",
                                                                                       "der", "den", "die"):
                W.take(words, i - 2, 2)




