"""Typos: the word a misspelt word meant, when exactly one known word is one edit away (a letter wrong,
missing, extra, or two swapped). The known words are the catalog's KPI names, the dimensions, the data's
values, the period words and the comparison and ranking words; an index of their one-letter deletions finds
the candidates at once ("symmetric delete"), so a typo costs a few dictionary lookups, not a scan."""

from __future__ import annotations

from . import words as W
from .catalog import Catalog
from .periods import period_vocabulary
from .values import DimensionValues

_VOCABULARIES: dict[tuple[int, int, int], tuple[frozenset[str], dict[str, set[str]], dict[str, int]]] = {}


def vocabulary(catalog: Catalog, values: DimensionValues | None):
    """Every word the reader knows (KPI names, periods, dimensions and their values, comparison and ranking
    words), and an index of each one-letter deletion of them, to find the word a typo meant at once."""
    key = (id(catalog), id(values), values.generation if values is not None else 0)
    if key not in _VOCABULARIES:
        tiers = [  # when a typo is one edit from words of several tiers, the first tier wins
            {part for parts, _ in W.alias_parts(catalog) for part in parts},
            {part for phrase in W.DIMENSIONS for part in phrase.split()},
            {part for phrase in values.phrases() for part in phrase.split()} if values is not None else set(),
            set(period_vocabulary()),
            {part for group in (W.BEST, W.WORST, W.WHICH, W.VERSUS, W.PREVIOUS_TARGETS, W.YEAR_TARGETS,
                                tuple(W.GRANULARITY)) for phrase in group for part in phrase.split()},
        ]
        words = frozenset().union(*tiers)
        index: dict[str, set[str]] = {}
        for word in words:
            if len(word) >= 4:
                for variant in _deletions(word):
                    index.setdefault(variant, set()).add(word)
        rank = {}
        for tier, group in enumerate(tiers):
            for word in group:
                rank.setdefault(word, tier)
        if len(_VOCABULARIES) > 32:
            _VOCABULARIES.clear()
        _VOCABULARIES[key] = (words, index, rank)
    return _VOCABULARIES[key]


def _next_to_a_name(words: list, i: int, tier: dict[str, int]) -> bool:
    """Whether a word stands beside a word of a KPI's name ("panier moyne": a typo inside a name)."""
    return any(0 <= k < len(words) and tier.get(words[k].norm) == 0 for k in (i - 1, i + 1))


def _deletions(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


def correct(words: list, vocabulary) -> list:
    """Each unknown word of five letters or more that is one edit (a letter wrong, missing, extra, or two
    swapped) from exactly one known word becomes that word; an unknown compound ("SEO-Traffic") its parts."""
    known, index, tier = vocabulary
    out = []
    for i, w in enumerate(words):
        norm = w.norm
        if w.used or norm in known or norm in W.FILLER or len(norm) < 5:
            out.append(w)
            continue
        if "-" in norm and all(p in known or p in W.FILLER for p in norm.split("-") if p):
            out.extend(W.Word(r, p) for r, p in zip(w.raw.split("-"), norm.split("-"), strict=False) if p)
            continue
        if norm.isalpha():
            close = {c for v in _deletions(norm) for c in index.get(v, ()) if W.edits(norm, c) <= 1}
            if len(norm) < 6 and not _next_to_a_name(words, i, tier):
                close = {c for c in close if tier[c] > 0}  # a short word alone is too often another word
            if close:
                best = min(tier[c] for c in close)
                close = {c for c in close if tier[c] == best}
            if len(close) == 1:
                w.norm = close.pop()
        out.append(w)
    return out


