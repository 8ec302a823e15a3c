"""The App Home tab: the headline KPIs (value, change coloured good or bad, sparkline), extra sections
rendered elsewhere (goals, alert rules), and when the data was updated. Plus ``progress_bar``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from kpi.goals.telling import share_text
from kpi.i18n import lang_of, tr
from kpi.metrics.engine import KpiResult
from kpi.metrics.formatting import format_value

from .answer import comparison_line, spark_line
from .common import MAX_BLOCKS_VIEW, Message, context, divider, esc, fit, header, image, section
from .text import t, timestamp


def home_view(*, headline: list[KpiResult], lang: str = "en", currency: str = "USD",
              chart_file_id: str | None = None, sections: Sequence[Message] = (),
              updated_at: datetime | None = None) -> dict:
    """``{"type": "home", "blocks": [...]}`` within 100 blocks. ``updated_at`` defaults to the oldest
    ``as_of`` of the headline results (the data is complete up to there)."""
    lang = lang_of(lang)
    blocks = [header(t(lang, "home_title"))]
    for result in headline:
        blocks.append(section(_headline(result, lang=lang, currency=currency)))
    if not headline:
        blocks.append(section(t(lang, "no_headline")))
    if chart_file_id and headline:
        first = headline[0]
        chart = image(alt_text=f"{first.metric.name(lang)}, {first.period.describe(lang)}", file_id=chart_file_id)
        if chart is not None:
            blocks.append(chart)
    for extra in sections:
        if extra.blocks:
            blocks.append(divider())
            blocks.extend(extra.blocks)
    stamps = [r.as_of for r in headline if r.as_of is not None]
    when = updated_at or (min(stamps) if stamps else None)
    footer = []
    if when is not None:
        footer = [context(t(lang, "updated_at", time=timestamp(lang, when).strip()))]
    body = fit(blocks, MAX_BLOCKS_VIEW - len(footer), lang=lang)
    return {"type": "home", "blocks": body + footer}


def _headline(result: KpiResult, *, lang: str, currency: str) -> str:
    m = result.metric
    value = format_value(result.current.value, m.format, currency=currency, lang=lang)
    lines = [f"*{esc(m.name(lang))}*  ·  {esc(result.period.describe(lang))}", f"*{esc(value)}*"]
    change = comparison_line(result, lang=lang, currency=currency, short=True)
    if change:
        lines[1] += f"   {change}"
    spark = spark_line(result, lang)
    if spark:
        lines.append(spark)
    return "\n".join(lines)


def progress_bar(fraction: float | None, width: int = 10, *, lang: str = "en") -> str:
    """'▓▓▓▓▓░░░░░ 50%': the bar is clamped to [0, 1], the percentage is the true one (120% is shown as
    such: a goal can be beaten), in the words of ``kpi.goals.telling`` (never '-0%'); None or NaN -> 'no data'."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return tr(lang, "no data")
    width = max(1, int(width))
    filled = round(min(max(fraction, 0.0), 1.0) * width)
    return "▓" * filled + "░" * (width - filled) + " " + share_text(fraction, lang)

