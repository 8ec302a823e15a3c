"""A KPI answer: the value and its period, the comparison coloured by whether it is good for that KPI,
the sample behind a rate, the chart (or a sparkline), the breakdown as an aligned table, filters, the
freshness of the data, and the share button."""

from __future__ import annotations

import re

from babel.dates import format_date

from kpi.i18n import babel_locale, lang_of
from kpi.metrics.engine import Change, KpiResult
from kpi.metrics.formatting import (
    change_arrow,
    format_change,
    format_value,
    result_lines,
    result_notes,
    sample_text,
    series_values,
    sparkline,
)

from .common import (
    SECTION_TEXT,
    Message,
    button_row,
    clip,
    clip_lines,
    code,
    context,
    esc,
    fit,
    header,
    image,
    section,
)
from .text import SAMPLE_NOUNS, colon, dimension, noun_of, t, timestamp

SMALL_SAMPLE = 100
GOOD, BAD, NEUTRAL = ":large_green_circle:", ":red_circle:", ":white_circle:"
KEY_WIDTH = 24  # breakdown keys longer than this are cut, so the table stays readable on a phone
_USER = re.compile(r"^<?@?([UW][A-Z0-9]{2,})>?$")


def kpi_answer(result: KpiResult, *, lang: str = "en", currency: str = "USD", chart_file_id: str | None = None,
               chart_url: str | None = None, share_value: str | None = None,
               shared_by: str | None = None, reading: str | None = None,
               other: tuple[str, str] | None = None) -> Message:
    """A KPI's answer; ``reading`` (how the question was understood) closes its context line; ``other``
    (the question read the other way, the button's value) is offered as "Did you mean …?"."""
    lang = lang_of(lang)
    m = result.metric
    value = format_value(result.current.value, m.format, currency=currency, lang=lang)
    lines = [f"*{esc(value)}*  ·  {esc(result.period.describe(lang))}"]
    comparison = comparison_line(result, lang=lang, currency=currency)
    if comparison:
        lines.append(comparison)
    if result.filters:
        lines.append(f"_{t(lang, 'filters')}{colon(lang)}{filters_text(result.filters, lang)}_")
    blocks = [header(m.name(lang)), section("\n".join(lines))]

    sample = sample_line(result, lang)
    if sample:
        blocks.append(context(*sample))
    if left_out := note_texts(result, lang):  # what the value leaves out (zero-value, guest orders)
        blocks.append(context(*left_out))
    chart = image(alt_text=chart_alt(result, lang), file_id=chart_file_id, url=chart_url)
    if chart is not None:
        blocks.append(chart)
    elif spark := spark_line(result, lang):
        blocks.append(section(spark))
    if result.breakdown:
        table, note = breakdown_table(result, lang=lang, currency=currency)
        blocks.append(section(table))
        if note:
            blocks.append(context(note))

    notes = freshness(result, lang)
    if shared_by:
        notes.append(t(lang, "shared_by", user=user_ref(shared_by)))
    if reading:
        notes.append(t(lang, "read_as", reading=esc(reading)))
    blocks.append(context(*notes))
    buttons = []
    if share_value is not None and not shared_by:
        buttons.append((t(lang, "share_button"), "kpi_share", share_value))
    if other is not None:
        buttons.append((t(lang, "did_you_mean_button", question=other[0]), "kpi_reask", other[1]))
    if buttons:
        blocks.append(button_row(*buttons))
    text = clip_lines([esc(line) for line in result_lines(result, currency=currency, lang=lang)])
    return Message(text=text, blocks=fit(blocks, lang=lang))


def note_texts(result: KpiResult, lang: str) -> list[str]:
    """The result's notes as mrkdwn (escaped, dates in the reader's locale), each with an :information_source:."""
    def day(d) -> str:
        return format_date(d, "medium", locale=babel_locale(lang))

    return [f":information_source: {esc(n)}" for n in result_notes(result, lang, date_text=day)]


def colour(change: Change | None) -> str:
    """Green when the change goes the KPI's right way, red when it goes the wrong way (a return rate
    going up is red), white when flat or unknown."""
    if change is None or change.good is None:
        return NEUTRAL
    return GOOD if change.good else BAD


def comparison_line(result: KpiResult, *, lang: str, currency: str, short: bool = False) -> str:
    """':large_green_circle: ↑ *+0.4 pt (+12.0%)* vs previous period (2026-11-10..2026-11-16): 2.8%'."""
    if result.compare is None or result.comparison_period is None or result.comparison is None:
        return ""
    m = result.metric
    change = format_change(m, result.change, currency=currency, lang=lang) or "—"
    what = t(lang, "vs_year" if result.compare == "year" else "vs_previous")
    line = f"{colour(result.change)} {change_arrow(result.change)} *{esc(change)}* {what}"
    noise = ""
    if result.change is not None and result.change.significance is not None and not result.change.significance.significant:
        noise = f" · _{t(lang, 'normal_variation')}_"  # an arrow, but no colour: the change is noise
    if short:
        return line + noise
    before = format_value(result.comparison.value, m.format, currency=currency, lang=lang)
    return f"{line} ({esc(result.comparison_period.describe(lang))}){colon(lang)}{esc(before)}{noise}"


def filters_text(filters, lang: str) -> str:
    return " · ".join(f"{esc(dimension(lang, d))} = {esc(', '.join(v))}" for d, v in filters)


def sample_noun(result: KpiResult, lang: str) -> str | None:
    """What the sample counts ("sessions"), when the catalog says which measure it is."""
    m = result.metric
    key = m.sample or (m.denominator if m.type == "ratio" else None)
    if key and re.fullmatch(r"\w+", key) and key in SAMPLE_NOUNS:
        return noun_of(lang, key)
    return None


def sample_line(result: KpiResult, lang: str) -> list[str]:
    """['based on 12,345 sessions', ':warning: Small sample …'] for a rate; [] for a simple KPI."""
    n = sample_text(result.metric, result.current, lang)
    if not n:
        return []
    noun = sample_noun(result, lang)
    out = [t(lang, "based_on", n=n, noun=noun) if noun else t(lang, "sample", n=n)]
    sample = result.current.sample or 0
    if 0 < sample < SMALL_SAMPLE:
        out.append(t(lang, "small_sample", min=SMALL_SAMPLE))
    return out


def granularity_text(result: KpiResult, lang: str) -> str:
    return t(lang, f"by_{result.granularity}") if result.granularity in ("day", "week", "month") else ""


def chart_alt(result: KpiResult, lang: str) -> str:
    by = granularity_text(result, lang)
    return t(lang, "chart_alt" if by else "chart_alt_plain", name=result.metric.name(lang),
             period=result.period.describe(lang), granularity=by)


def spark_line(result: KpiResult, lang: str) -> str:
    spark = sparkline(series_values(result))
    if not spark.strip():
        return ""
    return f"{code(spark[:200])}  _{granularity_text(result, lang)}_"


def as_of_text(result: KpiResult, lang: str) -> str:
    assert result.as_of is not None  # in the shop's time zone (the engine's)
    return timestamp(lang, result.as_of)


def freshness(result: KpiResult, lang: str) -> list[str]:
    """'as of <time>'; when the data stops before the period's end, a note that says so (with the time)."""
    if result.as_of is None:
        return [t(lang, "no_source_data")]
    notes = [t(lang, "stale" if result.stale else "as_of", time=as_of_text(result, lang))]
    if result.period.empty:
        notes.append(t(lang, "daily_data" if result.daily else "not_started", time=as_of_text(result, lang)))
    notes += coverage_notes(result, lang)
    return notes


def coverage_notes(result: KpiResult, lang: str) -> list[str]:
    """What the data's start leaves out: a period or a comparison from before the history begins."""
    if result.history_start is None:
        return []
    start = format_date(result.history_start.date(), "medium", locale=babel_locale(lang))
    notes = []
    if result.period.end <= result.history_start:
        notes.append(t(lang, "before_history", date=start))
    elif result.partial_history:
        notes.append(t(lang, "partial_history", date=start))
    if result.comparison_partial:
        notes.append(t(lang, "comparison_before_history", date=start))
    return notes


def user_ref(user: str) -> str:
    """'U123' or '<@U123>' -> '<@U123>' (a mention); anything else is shown as text."""
    match = _USER.match(user.strip())
    return f"<@{match.group(1)}>" if match else esc(user)


# -- the breakdown table ---------------------------------------------------------------------------


def _plain(text: str) -> str:
    """A cell: Babel's narrow no-break spaces become spaces (they are narrower in some monospace fonts);
    backticks would end the code block."""
    return text.replace("\u202f", " ").replace("\xa0", " ").replace("`", "'").replace("\n", " ")


def _cell_change(result: KpiResult, change: Change | None, lang: str, currency: str) -> str:
    """A compact change: points for percentages ('+0.4 pt'), relative for the rest ('+12.0%')."""
    if change is None or change.absolute is None:
        return ""
    m = result.metric
    if m.format == "percent" or change.relative is None:
        return format_change(m, Change(change.absolute, None, change.good), currency=currency, lang=lang)
    sign = "+" if change.relative > 0 else ("−" if change.relative < 0 else "±")
    return sign + format_value(abs(change.relative), "percent", lang=lang)


def breakdown_table(result: KpiResult, *, lang: str, currency: str, limit: int = SECTION_TEXT) -> tuple[str, str]:
    """The breakdown as a monospace table in a code block, within ``limit`` characters; and a note when
    rows were left out."""
    m = result.metric
    named = [r for r in result.breakdown if not r.is_other]
    in_other = max(result.breakdown_total_groups - len(named), 0)
    rows = []
    for r in result.breakdown:
        key = r.key
        if r.is_other and len(named) < len(result.breakdown):
            key = t(lang, "other_n", n=in_other) if in_other else t(lang, "other")
        rows.append([
            clip(_plain(key), KEY_WIDTH),
            _plain(format_value(r.value.value, m.format, currency=currency, lang=lang)),
            _plain(format_value(r.share, "percent", lang=lang)) if r.share is not None else "",
            _plain(_cell_change(result, r.change, lang, currency)),
        ])
    head = [clip(_plain(dimension(lang, result.breakdown_by or "")), KEY_WIDTH),
            t(lang, "value"), t(lang, "share"), t(lang, "change")]
    keep = [0, 1] + [i for i in (2, 3) if any(row[i] for row in rows)]
    rows = [[row[i] for i in keep] for row in rows]
    head = [head[i] for i in keep]
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(keep))]

    def line(cells: list[str]) -> str:
        out = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return esc("  ".join(out).rstrip())

    title = f"*{esc(t(lang, 'by_dim', dim=dimension(lang, result.breakdown_by or '')))}*"
    if in_other:
        title += f"  _{t(lang, 'top_of', shown=len(named), total=result.breakdown_total_groups)}_"
    body = [line(head)]
    size = len(title) + len("\n```\n") + len(body[0]) + len("\n```")
    shown = 0
    for row in rows:
        text = line(row)
        if size + len(text) + 1 > limit:
            break
        body.append(text)
        size += len(text) + 1
        shown += 1
    table = title + "\n```\n" + "\n".join(body) + "\n```"
    note = t(lang, "rows_cut", shown=shown, total=len(rows)) if shown < len(rows) else ""
    return table, note
