"""Numbers, changes and sparklines for people, per locale (Babel does the locale work).

en: 3.2%, $1,234.50, 12,345;  fr: 3,2 %, 1 234,50 €, 12 345.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from babel.numbers import (
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
    format_percent,
)

from .catalog import Metric
from .engine import Change, KpiResult, Value

LOCALES = {"en": "en_US", "fr": "fr_FR"}
NO_DATA = {"en": "no data", "fr": "pas de données"}
SPARK = "▁▂▃▄▅▆▇█"
DIMENSION_WORDS = {"en": {}, "fr": {"channel": "canal", "device": "appareil", "country": "pays"}}
GRANULARITY_WORDS = {"en": {"day": "daily", "week": "weekly", "month": "monthly"},
                     "fr": {"day": "par jour", "week": "par semaine", "month": "par mois"}}
OTHER_WORD = {"en": "other", "fr": "autres"}


def babel_locale(lang: str) -> str:
    lang = (lang or "en").replace("-", "_")
    if "_" in lang:
        return lang
    return LOCALES.get(lang, "en_US")


def lang_of(locale: str | None) -> str:
    """'fr-FR', 'fr_CA', 'fr' -> 'fr'; anything else -> 'en'."""
    return "fr" if (locale or "").lower().startswith("fr") else "en"


def format_value(value: float | None, fmt: str, *, currency: str = "USD", lang: str = "en", compact: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_DATA.get(lang_of(lang), NO_DATA["en"])
    loc = babel_locale(lang)
    if fmt == "percent":
        return format_percent(value, "#,##0.0%" if loc.startswith("en") else "#,##0.0 %", locale=loc)
    if fmt == "currency":
        if compact and abs(value) >= 100_000:
            return format_compact_currency(value, currency, locale=loc, fraction_digits=1)
        return format_currency(value, currency, locale=loc)
    if fmt == "count":
        if compact and abs(value) >= 100_000:
            return format_compact_decimal(value, locale=loc, fraction_digits=1)
        return format_decimal(round(value), locale=loc)
    if fmt == "ratio":
        return format_decimal(value, format="#,##0.00", locale=loc) + "×"
    return format_decimal(value, format="#,##0.##", locale=loc)


def format_change(metric: Metric, change: Change | None, *, currency: str = "USD", lang: str = "en") -> str:
    """'+0.4 pt (+12.0%)' for percentages, '+$120.00 (+4.1%)' for the rest; '' when there is nothing to say."""
    if change is None or change.absolute is None:
        return ""
    loc = babel_locale(lang)
    sign = "+" if change.absolute > 0 else ("−" if change.absolute < 0 else "±")
    if metric.format == "percent":
        pts = format_decimal(abs(change.absolute) * 100, format="#,##0.0", locale=loc)
        head = f"{sign}{pts} pt"
    else:
        head = sign + format_value(abs(change.absolute), metric.format, currency=currency, lang=lang)
    if change.relative is not None:
        rel = format_percent(abs(change.relative), "#,##0.0%" if loc.startswith("en") else "#,##0.0 %", locale=loc)
        head += f" ({sign}{rel})"
    return head


def change_arrow(change: Change | None) -> str:
    if change is None or change.absolute is None or change.absolute == 0:
        return "→"
    return "↑" if change.absolute > 0 else "↓"


def sparkline(values: Sequence[float | None]) -> str:
    """▁▃▅█ over the values; a gap (no data) is a space."""
    nums = [v for v in values if v is not None]
    if not nums:
        return ""
    lo, hi = min(nums), max(nums)
    span = hi - lo
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARK[0] if span == 0 else SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


def sample_text(metric: Metric, value: Value, lang: str = "en") -> str:
    """'12,345 sessions' behind a conversion rate: the sample size a reader needs to trust a rate."""
    if value.sample is None or metric.type == "simple":
        return ""
    return format_decimal(round(value.sample), locale=babel_locale(lang))


def result_lines(result: KpiResult, *, currency: str = "USD", lang: str = "en") -> list[str]:
    """A plain-text answer (the terminal's, and Slack's fallback text)."""
    m = result.metric
    lines = []
    head = f"{m.name(lang)}, {result.period.describe(lang)}: {format_value(result.current.value, m.format, currency=currency, lang=lang)}"
    filt = ", ".join(f"{d}={'/'.join(v)}" for d, v in result.filters)
    if filt:
        head += f"  [{filt}]"
    lines.append(head)
    if result.comparison is not None and result.comparison_period is not None:
        what = {"previous": {"en": "previous period", "fr": "période précédente"},
                "year": {"en": "a year earlier", "fr": "un an plus tôt"}}[result.compare or "previous"][lang_of(lang)]
        cmp_val = format_value(result.comparison.value, m.format, currency=currency, lang=lang)
        ch = format_change(m, result.change, currency=currency, lang=lang)
        verdict = ""
        if result.change is not None and result.change.good is not None:
            verdict = " good" if result.change.good else " bad"
            if lang_of(lang) == "fr":
                verdict = " bien" if result.change.good else " mauvais"
        lines.append(f"  {change_arrow(result.change)} {ch or '—'} vs {what} ({result.comparison_period.describe(lang)}: {cmp_val}){verdict}")
    sample = sample_text(m, result.current, lang)
    if sample:
        lines.append(f"  sample: {sample}" if lang_of(lang) == "en" else f"  échantillon : {sample}")
    fr = lang_of(lang) == "fr"
    if result.series:
        spark = sparkline([p.value.value for p in result.series])
        lines.append(f"  {GRANULARITY_WORDS[lang_of(lang)].get(result.granularity or '', result.granularity)}: {spark}")
    if result.breakdown:
        keys = [OTHER_WORD[lang_of(lang)] if r.is_other else r.key for r in result.breakdown]
        width = max(len(k) for k in keys)
        dim = DIMENSION_WORDS[lang_of(lang)].get(result.breakdown_by or "", result.breakdown_by)
        lines.append(f"  par {dim} :" if fr else f"  by {dim}:")
        for key, r in zip(keys, result.breakdown, strict=True):
            val = format_value(r.value.value, m.format, currency=currency, lang=lang)
            ch = format_change(m, r.change, currency=currency, lang=lang)
            share = format_value(r.share, "percent", lang=lang) if r.share is not None else ""
            lines.append(f"    {key:<{width}}  {val:>12}  {share:>7}  {ch}")
    if result.as_of is not None:
        lines.append(f"  as of {result.as_of:%Y-%m-%d %H:%M %Z}" if lang_of(lang) == "en"
                     else f"  données au {result.as_of:%d/%m/%Y %H:%M %Z}")
    else:
        lines.append("  no data in the source yet" if lang_of(lang) == "en" else "  aucune donnée dans la source")
    return lines
