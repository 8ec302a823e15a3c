"""Languages, through gettext message catalogs (the standard ``gettext`` runtime, Babel's tools).

Every user-facing string is written once, in English, where it is used, and marked for extraction:

    tr(lang, "Goal #{id} archived.", id=goal.id)       translated, then filled in with ``str.format``
    trn(lang, "{n} day", "{n} days", n)                 a plural, by the language's own rule ({n} is n)
    N_("Acknowledge")                                   marked only, for tables; ``tr(lang, TABLE[key])`` later

The language is a parameter of every call (one process answers people in several languages), never a
global. Numbers, dates and currencies do not go through here: they go through Babel with
``babel_locale(lang)``.

Catalogs: ``locale/<lang>/LC_MESSAGES/kpibot.po``, one domain (``kpibot``) for the whole project, the
template ``locale/kpibot.pot``. They are compiled in memory the first time a language is used (no build
step, so a fresh clone answers in every language; a missing or empty translation falls back to English).
``tests/test_i18n.py`` fails when a marked string has no translation or a catalog is out of date.

Adding a language (say Italian, ``it``) is a translator's job, not a code change:

1. ``pybabel init -i locale/kpibot.pot -d locale -D kpibot -l it`` and translate ``locale/it/LC_MESSAGES/kpibot.po``;
2. add ``"it": "it_IT"`` to ``LANGUAGES`` below;
3. add the language's KPI names and aliases (``names:``/``aliases:`` in ``config/metrics.yaml``) and its
   period words (``kpi/metrics/periods.py``, ``PHRASES`` and ``MONTH_WORDS``).

After changing strings in the code: ``python -m kpi.i18n`` (extracts the template and updates every catalog,
as ``pybabel extract`` + ``pybabel update`` would), then translate what it reports as missing.
"""

from __future__ import annotations

import decimal
import gettext
import io
import os
import sys
import threading
from pathlib import Path

from babel import numbers
from babel.messages import mofile, pofile

# language -> the Babel locale its numbers and dates are formatted with
LANGUAGES: dict[str, str] = {"en": "en_US", "fr": "fr_FR", "de": "de_DE"}
DOMAIN = "kpibot"
LOCALE_DIR = Path(os.environ.get("KPIBOT_LOCALE_DIR") or Path(__file__).resolve().parents[1] / "locale")
# what marks a string, for Babel's extractor: function name -> the positions of its msgid(s), 1-based
# (the domain's errors take their message first: ``GoalError("No target for {name}.", "target", name=...)``)
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "tr": (2,), "trn": (2, 3), "trp": ((2, "c"), 3), "trnp": ((2, "c"), 3, 4), "N_": None,
    **{error: (1,) for error in ("KpiError", "QueryError", "GoalError", "RuleError", "ImportRefused")},
}

_cache: dict[str, gettext.NullTranslations] = {}
_lock = threading.Lock()


def lang_of(locale: str | None) -> str:
    """A Slack or Babel locale ('fr-FR', 'de_AT', 'fr') -> a supported language; anything else -> 'en'."""
    code = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    return code if code in LANGUAGES else "en"


def babel_locale(lang: str | None) -> str:
    """'fr' -> 'fr_FR'; a full locale ('de_CH', 'fr-CA') is kept, so Babel formats as that country does."""
    text = (lang or "en").replace("-", "_")
    if "_" in text:
        return text
    return LANGUAGES.get(text, "en_US")


# languages that write nouns with a capital in the middle of a sentence too (KPI names are then kept as is)
CAPITALISED_NOUNS = frozenset({"de"})


def mid_sentence(lang: str | None, name: str) -> str:
    """A name as it reads inside a sentence: 'return rate', 'taux de retour', but 'Retourenquote' (German
    nouns keep their capital) and 'AOV' (an acronym is kept as it is)."""
    if lang_of(lang) in CAPITALISED_NOUNS or len(name) < 2 or not name[1:2].islower():
        return name
    return name[0].lower() + name[1:]


# typography that is the language's own, not a translation: French sets a no-break space before a colon
COLONS = {"fr": "\u00a0: "}


def colon(lang: str | None) -> str:
    """': ' (English, German...), '\u00a0: ' in French (a no-break space before the colon)."""
    return COLONS.get(lang_of(lang), ": ")


# -- numbers: Babel's formatting, rounded half up (1.25% -> 1.3%, as finance reads it; Babel rounds half to even)


def _half_up(fn):
    def formatted(*args, **kwargs):
        with decimal.localcontext() as ctx:
            ctx.rounding = decimal.ROUND_HALF_UP
            return fn(*args, **kwargs)

    formatted.__doc__ = f"``babel.numbers.{fn.__name__}``, rounding half up."
    formatted.__name__ = fn.__name__
    return formatted


format_decimal = _half_up(numbers.format_decimal)
format_percent = _half_up(numbers.format_percent)
format_currency = _half_up(numbers.format_currency)
format_compact_decimal = _half_up(numbers.format_compact_decimal)
format_compact_currency = _half_up(numbers.format_compact_currency)


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(lang: str) -> gettext.NullTranslations:
    """The language's catalog, compiled in memory once per process (English: the strings as written)."""
    lang = lang_of(lang)
    found = _cache.get(lang)
    if found is not None:
        return found
    with _lock:
        if lang not in _cache:
            _cache[lang] = _compile(lang)
        return _cache[lang]


def _compile(lang: str) -> gettext.NullTranslations:
    path = catalog_path(lang)
    if lang == "en" or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = pofile.read_po(fh, locale=LANGUAGES[lang], domain=DOMAIN)
    buf = io.BytesIO()
    mofile.write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def tr(lang: str | None, msgid: str, /, **values: object) -> str:
    """``msgid`` in ``lang``, filled in with ``values`` (``str.format``); English when untranslated."""
    text = translations(lang_of(lang)).gettext(msgid)
    return text.format(**values) if values else text


def trn(lang: str | None, singular: str, plural: str, n: int, /, **values: object) -> str:
    """The singular or plural form for ``n`` by the language's rule, filled in with ``n`` and ``values``."""
    text = translations(lang_of(lang)).ngettext(singular, plural, n)
    return text.format(n=n, **values)


def trp(lang: str | None, context: str, msgid: str, /, **values: object) -> str:
    """``tr`` for a msgid that means different things in different places (gettext's msgctxt)."""
    text = translations(lang_of(lang)).pgettext(context, msgid)
    return text.format(**values) if values else text


def trnp(lang: str | None, context: str, singular: str, plural: str, n: int, /, **values: object) -> str:
    """``trn`` with a context (gettext's msgctxt)."""
    text = translations(lang_of(lang)).npgettext(context, singular, plural, n)
    return text.format(n=n, **values)


def N_(msgid: str) -> str:  # noqa: N802 - gettext's own name for "mark, do not translate yet"
    return msgid


# -- maintenance: extract and update the catalogs (python -m kpi.i18n) ------------------------------------

SOURCES = ("kpi", "bot")


def extract(root: Path | None = None):
    """The template catalog: every marked string of ``kpi/`` and ``bot/``, with where it is used."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    root = root or LOCALE_DIR.parent
    template = Catalog(domain=DOMAIN, project="kpibot", charset="utf-8")
    for source in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                root / source, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
            template.add(message, None, [(f"{source}/{filename}", lineno)], auto_comments=comments, context=context,
                         flags=("python-brace-format",) if "{" in (message if isinstance(message, str) else message[0]) else ())
    return template


def update(root: Path | None = None) -> dict[str, list[str]]:
    """Write ``locale/kpibot.pot`` and bring every language's ``.po`` up to date with it (new strings
    added untranslated, removed ones dropped). Returns, per language, the msgids still untranslated."""
    root = root or LOCALE_DIR.parent
    template = extract(root)
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as fh:
        pofile.write_po(fh, template, width=100, omit_header=False, sort_output=True, include_lineno=False)
    missing: dict[str, list[str]] = {}
    for lang, locale in LANGUAGES.items():
        if lang == "en":
            continue
        path = catalog_path(lang)
        if path.exists():
            with path.open("rb") as fh:
                catalog = pofile.read_po(fh, locale=locale, domain=DOMAIN)
        else:
            from babel.messages.catalog import Catalog

            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=locale, domain=DOMAIN, project="kpibot", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as fh:
            pofile.write_po(fh, catalog, width=100, sort_output=True, include_lineno=False)
        missing[lang] = [m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                         if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))]
    return missing


def main() -> int:
    missing = update()
    for lang, ids in missing.items():
        print(f"{catalog_path(lang)}: {len(ids)} untranslated")
        for msgid in ids[:50]:
            print(f"  {msgid!r}")
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
