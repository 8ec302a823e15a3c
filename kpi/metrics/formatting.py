"""Numbers, changes and sparklines for people, per locale (Babel does the locale work; words come from
the message catalogs, ``kpi.i18n``).

en: 3.2%, $1,234.50, 12,345;  fr: 3,2 %, 1 234,50 €, 12 345;  de: 3,2 %, 1.234,50 €, 12.345.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

from babel import Locale

from kpi.i18n import (  # Babel's number formatting, rounded half up
    N_,
    babel_locale,
    colon,
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
    format_percent,
    lang_of,
    tr,
    trn,
)  # babel_locale, lang_of: re-exported

from .catalog import Metric
from .engine import Change, KpiResult, Value

SPARK = "▁▂▃▄▅▆▇█"
DIMENSION_NAMES = {"channel": N_("channel"), "device": N_("device"), "country": N_("country")}
GRANULARITY_NAMES = {"day": N_("daily"), "week": N_("weekly"), "month": N_("monthly")}


NARROW_NBSP, NBSP = "\u202f", "\u00a0"


@functools.cache
def percent_pattern(loc: str, fraction: str = ".0") -> str:
    """The locale's own percent pattern with ``fraction`` after the units (".0": one decimal, ".#": one if
    needed, "": none), its space before '%' a no-break one (narrow in French, as French typography sets it):
    '3.2%', '3,2\u202f%', '3,2\u00a0%'. A line never wraps between a number and its sign."""
    pattern = Locale.parse(loc).percent_formats[None].pattern.split(";")[0]
    pattern = re.sub(r"0(?=[^0#]*$)", "0" + fraction, pattern, count=1)
    return re.sub(r"\s%", (NARROW_NBSP if loc.startswith("fr") else NBSP) + "%", pattern)


def points(number: str, lang: str) -> str:
    """A formatted number of percentage points: '0.4 pt', '0,4 Pp.'."""
    # TRANSLATORS: percentage points (the difference of two percentages)
    return tr(lang, "{number} pt", number=number)


def no_data(lang: str) -> str:
    return tr(lang, "no data")



def dimension_name(dim: str | None, lang: str) -> str:
    """'channel' -> 'canal', 'Kanal'; a dimension the catalog adds keeps its own name."""
    return tr(lang, DIMENSION_NAMES[dim]) if dim in DIMENSION_NAMES else (dim or "")


def format_value(value: float | None, fmt: str, *, currency: str = "USD", lang: str = "en", compact: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return no_data(lang)
    loc = babel_locale(lang)
    if fmt == "percent":
        return format_percent(value, percent_pattern(loc), locale=loc)
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
        head = sign + points(pts, lang)
    else:
        head = sign + format_value(abs(change.absolute), metric.format, currency=currency, lang=lang)
    if change.relative is not None and round(abs(change.relative) * 1000) > 0:  # no "(−0.0%)"
        rel = format_percent(abs(change.relative), percent_pattern(loc), locale=loc)
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


def series_values(result: KpiResult) -> list[float | None]:
    """The series as a sparkline draws it: a bucket that is not complete (today so far) is a gap, not a fall."""
    return [p.value.value if p.complete else None for p in result.series]


def sample_text(metric: Metric, value: Value, lang: str = "en") -> str:
    """'12,345 sessions' behind a conversion rate: the sample size a reader needs to trust a rate."""
    if value.sample is None or metric.type == "simple":
        return ""
    return format_decimal(round(value.sample), locale=babel_locale(lang))


def horizon_text(amount: int, unit: str, lang: str = "en") -> str:
    """'12 months', '90 days', in the reader's language."""
    if unit == "months":
        return trn(lang, "{n} month", "{n} months", amount)
    return trn(lang, "{n} calendar day", "{n} calendar days", amount)


def result_notes(result: KpiResult, lang: str = "en", *, date_text=None) -> list[str]:
    """What the value leaves out, in words: the catalog's notes with their counts ("12 zero-value orders are
    left out of the average"), and for a KPI over a horizon whose cohort is too young, the data it needs.
    ``date_text``: how a date is written (ISO by default; Slack writes it in the reader's locale)."""
    out = []
    loc = babel_locale(lang)
    for note, n in result.notes:
        out.append(note.say(lang).replace("{n}", format_decimal(round(n), locale=loc)))
    if result.needs_data_until is not None and result.horizon is not None:
        day = result.needs_data_until.date()
        out.append(tr(lang, "No value yet: {name} follows each customer for {horizon} after their first order, so "
                            "this period needs the data to reach {date}.", name=result.metric.name(lang),
                      horizon=horizon_text(result.horizon.amount, result.horizon.unit, lang),
                      date=date_text(day) if date_text else day.isoformat()))
    return out


def result_lines(result: KpiResult, *, currency: str = "USD", lang: str = "en") -> list[str]:
    """A plain-text answer (the terminal's, and Slack's fallback text)."""
    m = result.metric
    lines = []
    head = f"{m.name(lang)}, {result.period.describe(lang)}{colon(lang)}{format_value(result.current.value, m.format, currency=currency, lang=lang)}"
    filt = ", ".join(f"{d}={'/'.join(v)}" for d, v in result.filters)
    if filt:
        head += f"  [{filt}]"
    lines.append(head)
    if result.comparison is not None and result.comparison_period is not None:
        cmp_val = format_value(result.comparison.value, m.format, currency=currency, lang=lang)
        ch = format_change(m, result.change, currency=currency, lang=lang) or "—"
        when = result.comparison_period.describe(lang)
        if result.compare == "year":
            line = tr(lang, "{arrow} {change} vs a year earlier ({period}: {value})", arrow=change_arrow(result.change),
                      change=ch, period=when, value=cmp_val)
        else:
            line = tr(lang, "{arrow} {change} vs previous period ({period}: {value})", arrow=change_arrow(result.change),
                      change=ch, period=when, value=cmp_val)
        if result.change is not None and result.change.good is not None:
            line += " " + (tr(lang, "good") if result.change.good else tr(lang, "bad"))
        elif result.change is not None and result.change.significance is not None \
                and not result.change.significance.significant:
            line += " " + tr(lang, "(within normal variation)")
        lines.append("  " + line)
    sample = sample_text(m, result.current, lang)
    if sample:
        lines.append("  " + tr(lang, "sample: {n}", n=sample))
    if result.series:
        spark = sparkline(series_values(result))
        granularity = GRANULARITY_NAMES.get(result.granularity or "")
        lines.append(f"  {tr(lang, granularity) if granularity else result.granularity}{colon(lang)}{spark}")
    if result.breakdown:
        keys = [tr(lang, "other") if r.is_other else r.key for r in result.breakdown]
        width = max(len(k) for k in keys)
        lines.append("  " + tr(lang, "by {dimension}:", dimension=dimension_name(result.breakdown_by, lang)))
        for key, r in zip(keys, result.breakdown, strict=True):
            val = format_value(r.value.value, m.format, currency=currency, lang=lang)
            ch = format_change(m, r.change, currency=currency, lang=lang)
            share = format_value(r.share, "percent", lang=lang) if r.share is not None else ""
            lines.append(f"    {key:<{width}}  {val:>12}  {share:>7}  {ch}")
    lines += ["  " + note for note in result_notes(result, lang)]
    if result.history_start is not None and (result.partial_history or result.comparison_partial
                                             or result.period.end <= result.history_start):
        lines.append("  " + tr(lang, "history starts on {date}: the period or its comparison is not fully covered",
                               date=result.history_start.date().isoformat()))
    if result.period.empty and result.as_of is not None:
        lines.append("  " + (tr(lang, "this KPI's data is daily: a day is counted once it is over") if result.daily
                             else tr(lang, "no data for this period yet")))
    if result.as_of is not None:
        # TRANSLATORS: a strftime pattern, the date and time the data is complete up to
        pattern = tr(lang, "%Y-%m-%d %H:%M %Z")
        lines.append("  " + tr(lang, "as of {time}", time=result.as_of.strftime(pattern)))
    else:
        lines.append("  " + tr(lang, "no data in the source yet"))
    return lines


__all__ = ["DIMENSION_NAMES", "GRANULARITY_NAMES", "babel_locale", "change_arrow", "dimension_name",
           "format_change", "format_value", "horizon_text", "series_values", "lang_of", "no_data", "points", "result_lines",
           "result_notes", "sample_text", "sparkline"]
