"""The App Home tab: the headline KPIs (value, change coloured good or bad, sparkline), extra sections
rendered elsewhere (goals, alert rules), and when the data was updated. Plus ``progress_bar``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from kpi.goals.telling import share_text
from kpi.i18n import N_, lang_of, tr
from kpi.metrics.engine import KpiResult
from kpi.metrics.formatting import format_value

from .answer import comparison_line, spark_line
from .common import MAX_BLOCKS_VIEW, Message, button_row, context, divider, esc, fit, header, image, section
from .text import t, timestamp


def home_view(*, headline: list[KpiResult], lang: str = "en", currency: str = "USD",
              chart_file_id: str | None = None, sections: Sequence[Message] = (),
              updated_at: datetime | None = None, lead: Message | None = None) -> dict:
    """``{"type": "home", "blocks": [...]}`` within 100 blocks. ``updated_at`` defaults to the oldest
    ``as_of`` of the headline results (the data is complete up to there). ``lead`` (the onboarding card)
    comes first."""
    lang = lang_of(lang)
    blocks = [*lead.blocks, divider()] if lead is not None and lead.blocks else []
    blocks.append(header(t(lang, "home_title")))
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


# -- the onboarding card (issue 12): first contact posts nothing, the Home offers the defaults --------

ONBOARDING_DIGEST = "kpi_onboarding_digest"  # conversations_select: the digest's channel
ONBOARDING_ALERTS = "kpi_onboarding_alerts"  # button: the default alert rules
ONBOARDING: dict[str, str] = {
    "title": N_("Set up KPI Bot"),
    "intro": N_("Nothing is posted anywhere until you choose. Pick where the morning digest goes, and "
                "turn on the default alerts."),
    "digest": N_("*Morning digest*: your goals and the KPIs that moved, each morning. Pick its channel "
                 "(then invite the bot there: /invite @KPI Bot)."),
    "digest_placeholder": N_("Choose a channel"),
    "digest_done": N_(":white_check_mark: The morning digest goes to {channel}."),
    "alerts": N_("*Default alerts*: the alert rules suggested in the bot's configuration, posted in {channel}. "
                 "Review them afterwards with /kpi alert list."),
    "alerts_no_channel": N_("the channel each rule names (pick the digest's channel first to use that one)"),
    "alerts_button": N_("Enable the default alerts"),
}


def _o(lang: str, key: str, **values: object) -> str:
    return tr(lang, ONBOARDING[key], **values)


def channel_ref(channel: str) -> str:
    """'<#C123>' for a channel id, the name as typed otherwise."""
    return f"<#{channel}>" if channel[:1] in "CG" and channel[1:].isalnum() and channel.isupper() else esc(channel)


def onboarding_card(*, needs_digest: bool, needs_alerts: bool, digest_channel: str | None = None,
                    lang: str = "en", notice: str = "") -> Message:
    """The card a team sees in the App Home until it has a digest and the default alerts: a channel
    picker for the digest, a button for the alert rules. Empty when there is nothing left to set up."""
    lang = lang_of(lang)
    if not (needs_digest or needs_alerts):
        return Message(text="")
    blocks = [header(_o(lang, "title")), section(_o(lang, "intro"))]
    if needs_digest:
        picker = section(_o(lang, "digest"))
        picker["accessory"] = {"type": "conversations_select", "action_id": ONBOARDING_DIGEST,
                               "placeholder": {"type": "plain_text", "text": _o(lang, "digest_placeholder")},
                               "filter": {"include": ["public", "private"], "exclude_bot_users": True}}
        blocks.append(picker)
    elif digest_channel:
        blocks.append(section(_o(lang, "digest_done", channel=channel_ref(digest_channel))))
    if needs_alerts:
        where = channel_ref(digest_channel) if digest_channel else _o(lang, "alerts_no_channel")
        blocks.append(section(_o(lang, "alerts", channel=where)))
        blocks.append(button_row((_o(lang, "alerts_button"), ONBOARDING_ALERTS, "default")))
    if notice:
        blocks.append(context(esc(notice)))
    return Message(text=_o(lang, "title"), blocks=blocks)


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

