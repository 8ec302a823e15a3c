"""The values of each dimension, as the shop's data has them, and the words people use for them.

``channel=tiktok`` on a shop without TikTok must be refused (with the channels it does have), never
answered "$0.00": so a filter value is checked against the distinct values of the dimension in the
source, read once and cached (``DimensionValues.from_source``; read again after ``ttl`` seconds and after
an import, ``refresh()``). People write "paid search", "France", "Allemagne", "auf dem Handy": the words
for each value come from ``config/dimensions.yaml`` and, for countries, from Babel's territory names in
every supported language; a word counts only for a value the data holds.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml
from babel import Locale
from sqlalchemy import MetaData, Table, select
from sqlalchemy.engine import Engine

from kpi.errors import missing_text
from kpi.i18n import LANGUAGES, N_, tr

from .mapping import MappedCatalog, present_columns, source_table
from .model import Catalog, normalise

TTL = 600  # seconds: how long the values read from the source are trusted
VERSION_EVERY = 30  # seconds between two looks at the data's last change (an import)
MAX_VALUES = 5000  # per dimension: more than this is not a dimension people filter by name


def _country_names() -> dict[str, str]:
    """Every territory name in every supported language -> its ISO code ('allemagne' -> 'DE')."""
    names: dict[str, str] = {}
    for lang in LANGUAGES:
        for code, name in Locale.parse(lang).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(normalise(name), code)
    return names


_COUNTRIES: dict[str, str] | None = None


def load_aliases(path: Path | None) -> dict[str, dict[str, list[str]]]:
    """``config/dimensions.yaml``: dimension -> value -> words. A missing file means no extra words."""
    if path is None or not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(d): {str(v): [str(w) for w in (words or [])] for v, words in (vals or {}).items()}
            for d, vals in data.items() if isinstance(vals, dict)}


class DimensionValues:
    """Known values per dimension, and the words that name them."""

    def __init__(self, loader: Callable[[], Mapping[str, Sequence[str]]], *,
                 aliases: Mapping[str, Mapping[str, Sequence[str]]] | None = None, ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic, version: Callable[[], object] | None = None,
                 schema: Callable[[], Mapping[str, set[str]]] | None = None):
        """``version``: a cheap marker of the data's last change (the last import), looked at every
        ``VERSION_EVERY`` seconds: when it changes, the values are read again before the TTL. ``schema``: the
        source's tables and their columns, read with the values (which KPIs the data can give)."""
        self._loader = loader
        self._schema_loader = schema
        self._schema: Mapping[str, set[str]] | None = None
        self._version = version
        self._seen_version: object = None
        self._version_checked: float | None = None
        self._aliases = aliases or {}
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._values: dict[str, tuple[str, ...]] = {}
        self._words: dict[str, list[tuple[str, str]]] = {}
        self._phrases: list[str] = []
        self._by_length: dict[int, frozenset[str]] = {}
        self._generation = 0

    @classmethod
    def fixed(cls, values: Mapping[str, Sequence[str]], *, aliases_path: Path | None = None) -> DimensionValues:
        """Values given once (tests, benchmarks), with the words of ``config/dimensions.yaml``."""
        path = aliases_path or Path(__file__).resolve().parents[2] / "config" / "dimensions.yaml"
        frozen = {d: tuple(v) for d, v in values.items()}
        return cls(lambda: frozen, aliases=load_aliases(path), ttl=float("inf"))

    @classmethod
    def from_source(cls, source: Engine, catalog: Catalog, *, aliases_path: Path | None = None,
                    ttl: float = TTL, version: Callable[[], object] | None = None) -> DimensionValues:
        """The distinct values of each dimension column of the catalog's measures, read from the source."""

        def load() -> dict[str, tuple[str, ...]]:
            columns: dict[str, set[tuple[str, str]]] = {}
            for measure in catalog.measures.values():
                for dim, column in measure.dimensions.items():
                    table = column.split(".")[0] if "." in column else measure.table
                    columns.setdefault(dim, set()).add((table, column.split(".")[-1]))
            found: dict[str, set[str]] = {}
            meta = MetaData()
            bound: dict[str, Table] = {}
            with source.connect() as conn:
                for dim, where in columns.items():
                    for table_name, column_name in sorted(where):
                        try:
                            if isinstance(catalog, MappedCatalog):  # the shop's own table, canonical keys
                                if table_name not in bound:
                                    bound[table_name] = source_table(catalog, table_name, conn)
                                table = bound[table_name]
                            else:
                                table = Table(table_name, meta, autoload_with=conn) if table_name not in meta.tables \
                                    else meta.tables[table_name]
                            col = table.c[column_name]
                        except Exception:  # noqa: BLE001 - a table or column the source lacks: no values from it
                            continue
                        rows = conn.execute(select(col).distinct().where(col.is_not(None)).limit(MAX_VALUES))
                        found.setdefault(dim, set()).update(str(r[0]) for r in rows)
            return {d: tuple(sorted(v)) for d, v in found.items()}

        return cls(load, aliases=load_aliases(aliases_path), ttl=ttl, version=version,
                   schema=lambda: present_columns(catalog, source))

    # -- reading ---------------------------------------------------------------------------------------

    def _ensure(self) -> None:
        now = self._clock()
        if self._version is not None and (self._version_checked is None or now - self._version_checked >= VERSION_EVERY):
            self._version_checked = now
            try:
                version = self._version()
            except Exception:  # noqa: BLE001 - no marker (the state database is down): the TTL still applies
                version = self._seen_version
            if version != self._seen_version:
                self._seen_version = version
                self._loaded_at = None
        if self._loaded_at is not None and now - self._loaded_at < self._ttl:
            return
        with self._lock:
            if self._loaded_at is not None and now - self._loaded_at < self._ttl:
                return
            values = {d: tuple(v) for d, v in self._loader().items()}
            if self._schema_loader is not None:
                try:
                    self._schema = self._schema_loader()
                except Exception:  # noqa: BLE001 - not known: nothing is refused for it (the engine will tell)
                    self._schema = None
            self._values = values
            self._words = self._build_words(values)
            self._phrases = sorted(self._words, key=lambda w: (-len(w.split()), -len(w)))
            by_length: dict[int, set[str]] = {}
            for phrase in self._phrases:
                by_length.setdefault(len(phrase.split()), set()).add(phrase)
            self._by_length = {n: frozenset(by_length[n]) for n in sorted(by_length, reverse=True)}
            self._generation += 1
            self._loaded_at = now

    def refresh(self) -> None:
        """Read the values again at the next question (after an import)."""
        with self._lock:
            self._loaded_at = None

    def values(self, dimension: str) -> tuple[str, ...]:
        self._ensure()
        return self._values.get(dimension, ())

    def missing(self, catalog: Catalog, metric) -> list[str]:
        """The tables and ``table.column`` the KPI reads that the source lacks (empty: available, or not known)."""
        self._ensure()
        return catalog.missing_for(metric, None if self._schema is None else dict(self._schema))

    def dimensions(self) -> tuple[str, ...]:
        self._ensure()
        return tuple(self._values)

    def _build_words(self, values: Mapping[str, tuple[str, ...]]) -> dict[str, list[tuple[str, str]]]:
        """normalised word -> [(dimension, value)], every value by its own name first."""
        global _COUNTRIES
        words: dict[str, list[tuple[str, str]]] = {}

        def add(word: str, dim: str, value: str) -> None:
            key = normalise(word)
            if key and (dim, value) not in words.setdefault(key, []):
                words[key].append((dim, value))

        for dim, vals in values.items():
            for value in vals:
                add(value, dim, value)
                add(value.replace("_", " "), dim, value)
            for value, names in self._aliases.get(dim, {}).items():
                if value in vals:
                    for name in names:
                        add(name, dim, value)
        if "country" in values:
            if _COUNTRIES is None:
                _COUNTRIES = _country_names()
            known = set(values["country"])
            for name, code in _COUNTRIES.items():
                if code in known:
                    add(name, "country", code)
        return words

    def lookup(self, words: str) -> list[tuple[str, str]]:
        """The (dimension, value) pairs a word or phrase names ('paid search' -> [('channel', 'paid_search')])."""
        self._ensure()
        return list(self._words.get(normalise(words), []))

    def value(self, dimension: str, text: str) -> str | None:
        """The data's value of ``dimension`` that ``text`` names (any case, any alias), or None."""
        self._ensure()
        for dim, value in self._words.get(normalise(text), []):
            if dim == dimension:
                return value
        for value in self._values.get(dimension, ()):
            if value.lower() == text.lower():
                return value
        return None

    def phrases(self) -> list[str]:
        """Every word or phrase that names a value, longest first (for reading questions)."""
        self._ensure()
        return self._phrases

    def phrases_by_length(self) -> dict[int, frozenset[str]]:
        """The same, by number of words, the longest first: built once per reading of the values."""
        self._ensure()
        return self._by_length

    @property
    def generation(self) -> int:
        """How many times the values were read: what is derived from them is built again when it changes."""
        self._ensure()
        return self._generation

    def closest(self, text: str, dimension: str | None = None, n: int = 5, *, fallback: bool = True) -> list[str]:
        """Known values that look like ``text`` (with ``fallback``, the dimension's values if none does)."""
        self._ensure()
        dims = [dimension] if dimension else list(self._values)
        pool = {normalise(v): v for d in dims for v in self._values.get(d, ())}
        pool.update({w: pairs[0][1] for w, pairs in self._words.items() if any(d in dims for d, _ in pairs)})
        close = difflib.get_close_matches(normalise(text), list(pool), n=n * 2, cutoff=0.6)
        out = list(dict.fromkeys(pool[c] for c in close))
        if not out and dimension and fallback:
            out = list(self._values.get(dimension, ()))
        return out[:n]


__all__ = ["DimensionValues", "load_aliases"]


def checked_filters(catalog: Catalog, metric, filters, values: DimensionValues | None, *, error,
                    dimension_field: str = "filters"):
    """The filters of a goal or an alert rule, each dimension one the KPI has and each value one the data
    holds (any word for it: 'france' -> 'FR'). ``error(msgid, field, **values)`` builds the exception to raise;
    without ``values`` (no source at hand) only the dimensions are checked. With them, a KPI whose table or
    column the source lacks is refused (nothing could ever be measured for it)."""
    missing = values.missing(catalog, metric) if values is not None else []
    if missing:
        raise error(N_("{metric} is unavailable: the shop's data has no {missing}."), "metric", metric=metric.name,
                    missing=lambda lang: missing_text(missing, lang))
    allowed = catalog.dimensions_of(metric)
    out = []
    for dim, vals in filters:
        if dim not in allowed:
            raise error(N_("{name} cannot be filtered by '{dimension}'; it can by: {allowed}."), dimension_field,
                        name=metric.name, dimension=dim,
                        allowed=lambda lang: ", ".join(allowed) if allowed else tr(lang, "nothing"))
        if values is None or not values.values(dim):
            out.append((dim, tuple(vals)))
            continue
        found = []
        for v in vals:
            value = values.value(dim, v)
            if value is None:
                raise error(N_("No {dimension} '{value}' in the data. Known: {known}."), "filters", value=v,
                            dimension=lambda lang, d=dim: _dimension_name(d, lang),
                            known=", ".join(values.values(dim)[:20]))
            found.append(value)
        out.append((dim, tuple(found)))
    return tuple(out)


def _dimension_name(dim: str, lang: str) -> str:
    from .formatting import dimension_name  # (formatting reads the catalog: imported when needed)

    return dimension_name(dim, lang)
