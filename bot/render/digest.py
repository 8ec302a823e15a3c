"""The morning digest: Block Kit (``digest_message``), the goals chart (``digest_chart``) and the plain
text preview of ``kpibot digest preview`` (``digest_text``).

The message fits Slack's limits for any number of goals: a few goals get a section and a context line
(their KPIs to watch) each; more are grouped several per section, and beyond what one message can
carry the rest is summed up in one line that points to the Home tab. Goals needing attention come
first (off track, at risk, missed...).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from kpi.digests.compose import CHART_GOALS, Digest, GoalLine, behind_first, progress_series
from kpi.errors import KpiUnavailable, NonNumericValues, missing_text, redact
from kpi.i18n import N_, babel_locale, lang_of, tr
from kpi.metrics.engine import KpiResult
from kpi.metrics.formatting import change_arrow, format_value, result_notes

from ..terminal import EMOJI
from .answer import colour
from .common import (
    MAX_BLOCKS_MESSAGE,
    Message,
    button_row,
    clip,
    context,
    divider,
    esc,
    fit,
    header,
    image,
    section,
)
from .goals import (
    GOALS_PAGE,
    change_text,
    fit_plain,
    goal_line,
    goal_plain,
    pack_sections,
    status_emoji,
    watch_line,
    watch_plain,
)
from .text import colon

DETAILED_MAX = 8  # up to this many goals: one section + one context line each
GROUPED_MAX = 20  # beyond: grouped several per section, at most this many in the message
PLAIN_MAX = 60  # goal lines considered for the 3,000-character fallback text (fewer ever fit)

STRINGS: dict[str, str] = {
    "title": N_("KPI digest · {date}"),
    "late": N_("(late: sent at {sent} instead of {due})"),
    "late_by": N_("(late: sent {minutes} minutes after its time)"),
    "goals": N_("Goals"),
    "no_goals": N_("No active goal. Set one with `/kpi goal add`."),
    "movers": N_("Top movers"),
    "movers_note": N_("headline KPIs, last 7 days vs the 7 before"),
    "no_movers": N_("No headline KPI moved."),
    "chart_alt": N_("Goals: progress against the expected path"),
    "errors": N_(":warning: Not computed: {goals}"),
    "unavailable": N_(":warning: Unavailable: {kpis}"),
    "unavailable_plain": N_("Unavailable: {kpis}"),
    "no_data_for": N_("no {missing}"),
    "not_numbers": N_("{column} holds values that are not numbers (rows: {rows})"),
    "more_goals": N_("…and {n} more goals: see the KPI Bot Home tab."),
    "all_goals": N_("All {n} goals"),
    "more_goals_nohint": N_("…and {n} more goals."),
    "watch_note": N_("KPIs to watch: last 7 days vs the 7 before"),
    "chart_title": N_("Goal progress vs expected"),
    "expected": N_("expected"),
    "before": N_("before"),
    "good": N_("good"),
    "bad": N_("bad"),
    # TRANSLATORS: Babel date patterns (https://babel.pocoo.org/en/latest/dates.html#date-fields)
    "day": N_("EEEE d MMMM"),
    "chart_day": N_("d MMMM yyyy"),
    "axis_day": N_("d MMM"),
}


def s(lang: str, key: str, **values: object) -> str:
    return tr(lang, STRINGS[key], **values)


# -- the pieces ------------------------------------------------------------------------------------


def title_text(digest: Digest, lang: str) -> str:
    day = format_date(digest.day, s(lang, "day"), locale=babel_locale(lang))
    return s(lang, "title", date=day)


def late_text(digest: Digest, lang: str) -> str:
    """'(late: sent at 09:12 instead of 08:00)' in the digest's time zone; '' when on time."""
    if not digest.late:
        return ""
    if digest.due_at is not None:
        try:
            tz = ZoneInfo(digest.tz)
        except (KeyError, ValueError):
            tz = None
        due = digest.due_at.astimezone(tz) if tz else digest.due_at
        sent = due + timedelta(minutes=digest.late_by_minutes)
        return s(lang, "late", sent=f"{sent:%H:%M}", due=f"{due:%H:%M}")
    return s(lang, "late_by", minutes=digest.late_by_minutes)


def mover_line(result: KpiResult, lang: str, currency: str) -> str:
    """':large_green_circle: ↑ *Revenue* +12.0% · $12,340.00 (before $11,020.00)'."""
    m = result.metric
    now = format_value(result.current.value, m.format, currency=currency, lang=lang)
    before = format_value(result.comparison.value if result.comparison else None, m.format, currency=currency, lang=lang)
    notes = "".join(f" · _{esc(n)}_" for n in result_notes(result, lang))  # what the value leaves out
    return (f"{colour(result.change)} {change_arrow(result.change)} *{esc(m.name(lang))}* "
            f"{esc(change_text(result, lang, currency))} · {esc(now)} ({s(lang, 'before')} {esc(before)}){notes}")


def mover_plain(result: KpiResult, lang: str, currency: str) -> str:
    m = result.metric
    now = format_value(result.current.value, m.format, currency=currency, lang=lang)
    good = "" if result.change is None or result.change.good is None else (
        " " + s(lang, "good" if result.change.good else "bad"))
    notes = "".join(f" ({n})" for n in result_notes(result, lang))
    return f"{change_arrow(result.change)} {m.name(lang)} {change_text(result, lang, currency)} ({now}){good}{notes}"


def _errors_text(digest: Digest, lang: str) -> str:
    if not digest.errors:
        return ""
    items = ", ".join(f"#{g.id} ({esc(clip(redact(exc.localized(lang))[0], 120))})" for g, exc in digest.errors[:10])
    if len(digest.errors) > 10:
        items += f", +{len(digest.errors) - 10}"
    return s(lang, "errors", goals=items)


def _wants(digest: Digest, part: str) -> bool:
    return part in digest.content


_USER_ID = re.compile(r"^<?@?([UW][A-Z0-9]{2,})(?:\|[^>]*)?>?$")


def owner_id(goal) -> str | None:
    """The goal owner's Slack user id ('U123' from 'U123', '@U123' or '<@U123|alice>'); None for a name."""
    m = _USER_ID.match((getattr(goal, "owner", None) or "").strip())
    return m.group(1) if m else None


def owner_name(goal, names: Mapping[str, str] | None = None) -> str:
    """The goal owner's name as plain text, never a mention: from ``names`` (user id -> name) when it
    knows the owner, else from the Slack markup the goal was set with (``owner <@U123|alice>``), else
    '@' and what was stored (a bare name, or the user id)."""
    owner = (goal.owner or "").strip()
    user = owner_id(goal)
    if user is None:
        return owner if owner.startswith("@") else "@" + owner
    if names and names.get(user):
        return "@" + names[user].lstrip("@")
    if found := re.search(r"<@" + re.escape(user) + r"\|([^>]+)>", goal.text or ""):
        return "@" + found.group(1).lstrip("@")
    return "@" + user


def owner_text(line: GoalLine, names: Mapping[str, str] | None = None) -> str | None:
    """How the digest shows a goal's owner (mrkdwn): a mention only when the goal just turned off track."""
    if not line.goal.owner:
        return None
    if line.turned_off_track and _USER_ID.match(line.goal.owner.strip()):
        return f"<@{_USER_ID.match(line.goal.owner.strip()).group(1)}>"
    return esc(owner_name(line.goal, names))


def _more(n: int, lang: str, home_hint: bool) -> str:
    return s(lang, "more_goals" if home_hint else "more_goals_nohint", n=n)


# -- Block Kit -------------------------------------------------------------------------------------


def unavailable_items(digest: Digest, lang: str) -> list[str]:
    """'Cart abandonment rate (no column traffic.carts)' for each KPI the shop's data cannot give."""
    out = []
    for key, exc in sorted(getattr(digest, "unavailable", {}).items()):
        name = exc.values.get("metric", key)
        why = (s(lang, "no_data_for", missing=missing_text(exc.missing, lang)) if isinstance(exc, KpiUnavailable)
               else s(lang, "not_numbers", column=exc.column, rows=exc.rows) if isinstance(exc, NonNumericValues)
               else redact(exc.localized(lang))[0])
        out.append(f"{name(lang) if callable(name) else name} ({why})")
    return out


def digest_message(digest: Digest, *, lang: str = "en", currency: str = "USD", chart_file_id: str | None = None,
                   home_hint: bool = True, names: Mapping[str, str] | None = None) -> Message:
    """The digest as a Slack message, within every Block Kit limit whatever the number of goals. Owners are
    named (``names``: user id -> name, when the caller knows them), pinged only when their goal just
    turned off track."""
    lang = lang_of(lang)
    title = title_text(digest, lang)
    top = [header(title)]
    late = late_text(digest, lang)
    if late:
        top.append(context(late))
    if errors := _errors_text(digest, lang):
        top.append(context(errors))
    if items := unavailable_items(digest, lang):  # the KPIs the data cannot give, in one short line
        top.append(context(s(lang, "unavailable", kpis=", ".join(esc(clip(i, 120)) for i in items))))

    tail: list[dict] = []
    if digest.movers:
        lines = [f"*{s(lang, 'movers')}*  _{s(lang, 'movers_note')}_"]
        lines += [mover_line(r, lang, currency) for r in digest.movers]
        tail += [divider(), section("\n".join(lines))]
    chart = image(alt_text=s(lang, "chart_alt"), file_id=chart_file_id) if chart_file_id else None
    if chart is not None:
        tail.append(chart)

    ordered = behind_first(digest.goals)
    budget = MAX_BLOCKS_MESSAGE - len(top) - len(tail) - 2  # the "…and N more" note and its button
    goal_blocks, shown = _goal_blocks(ordered, lang=lang, currency=currency, budget=budget, day=digest.day,
                                      names=names)
    if not ordered and _wants(digest, "goals") and not digest.errors:
        goal_blocks = [section(f"*{s(lang, 'goals')}*\n{s(lang, 'no_goals')}")]
    blocks = top + goal_blocks
    if shown < len(ordered):  # every goal is reachable: the note, and a button for the complete list
        blocks.append(context(_more(len(ordered) - shown, lang, home_hint)))
        blocks.append(button_row((s(lang, "all_goals", n=len(ordered)), GOALS_PAGE, "0")))
    blocks += tail
    # within 50 blocks by construction (the goals get what the rest leaves); fit() is the last guard
    return Message(text=_fallback(digest, ordered, lang=lang, currency=currency, home_hint=home_hint),
                   blocks=fit(blocks, lang=lang))


def _goal_blocks(ordered: list[GoalLine], *, lang: str, currency: str, budget: int, day,
                 names: Mapping[str, str] | None = None) -> tuple[list[dict], int]:
    """(blocks, goals shown): detailed when few, grouped several per section when many."""
    if not ordered:
        return [], 0
    heading = f"*{s(lang, 'goals')}* ({len(ordered)})"
    ordered = ordered[:GROUPED_MAX]  # never more: rendering 500 lines to show 20 would be wasted work
    lines = [goal_line(x.goal, x.metric, x.progress, lang=lang, currency=currency, today=day,
                       owner_text=owner_text(x, names)) for x in ordered]
    watches = [watch_line(x.watch, lang, currency) for x in ordered]
    needed = sum(1 + bool(w) for w in watches)
    if len(ordered) <= DETAILED_MAX and needed <= budget:
        out: list[dict] = []
        for i, (text, watch) in enumerate(zip(lines, watches, strict=True)):
            out.append(section(f"{heading}\n{text}" if i == 0 else text))
            if watch:
                out.append(context(watch))
        return out, len(ordered)
    chunks = [text + (f"\n    {watch}" if watch else "") for text, watch in zip(lines, watches, strict=True)]
    chunks[0] = f"{heading}\n{chunks[0]}"
    texts, shown = pack_sections(chunks, max_blocks=max(budget, 1), max_items=GROUPED_MAX)
    return [section(x) for x in texts], shown


def _fallback(digest: Digest, ordered: list[GoalLine], *, lang: str, currency: str, home_hint: bool) -> str:
    """The plain-text fallback (notifications): title, late note, one line per goal while they fit,
    the top movers; at most 3,000 characters."""
    head = [title_text(digest, lang)]
    if late := late_text(digest, lang):
        head[0] += " " + late
    goals = [esc(goal_plain(x.goal, x.metric, x.progress, lang=lang, currency=currency, today=digest.day))
             for x in ordered[:PLAIN_MAX]]
    tail = []
    if digest.movers:
        tail.append(f"{s(lang, 'movers')}{colon(lang)}" + "; ".join(esc(mover_plain(r, lang, currency)) for r in digest.movers))
    if not ordered and _wants(digest, "goals"):
        head.append(s(lang, "no_goals"))
    return fit_plain([esc(head[0]), *head[1:], *goals], len(ordered), lang, first_goal=len(head), tail=tail,
                     more=lambda n: _more(n, lang, home_hint))


# -- plain text (terminal preview) -----------------------------------------------------------------


def digest_text(digest: Digest, *, lang: str = "en", currency: str = "USD", all_goals: bool = False,
                home_hint: bool = True) -> str:
    """The digest as plain text for ``kpibot digest preview``: the goals the Slack message shows (the first
    ``GROUPED_MAX``, then '…and N more goals'), or every goal with ``all_goals``."""
    lang = lang_of(lang)
    title = title_text(digest, lang)
    out = [title, "=" * len(title)]
    if late := late_text(digest, lang):
        out.append(late)
    ordered = behind_first(digest.goals)
    shown = ordered if all_goals else ordered[:GROUPED_MAX]
    if ordered or _wants(digest, "goals"):
        out += ["", f"{s(lang, 'goals')} ({len(ordered)})"]
    if not ordered and _wants(digest, "goals"):
        out.append("  " + s(lang, "no_goals").replace("`", ""))
    for x in shown:
        emoji = EMOJI.get(status_emoji(x.progress).strip(":"), "")
        out.append(f"  {emoji} {goal_plain(x.goal, x.metric, x.progress, lang=lang, currency=currency, with_id=True, today=digest.day)}")
        if x.goal.owner:
            out[-1] += f" ({owner_name(x.goal)})"
        if w := watch_plain(x.watch, lang, currency):
            out.append(f"      {w}")
    if len(shown) < len(ordered):
        out.append("  " + _more(len(ordered) - len(shown), lang, home_hint))
    for g, exc in digest.errors:
        out.append(f"  ⚠ #{g.id} {g.metric}: {redact(exc.localized(lang))[0]}")
    if items := unavailable_items(digest, lang):
        out += ["", "⚠ " + s(lang, "unavailable_plain", kpis=", ".join(items))]
    if digest.movers:
        out += ["", f"{s(lang, 'movers')} ({s(lang, 'movers_note')})"]
        out += ["  " + mover_plain(r, lang, currency) for r in digest.movers]
    return "\n".join(out) + "\n"


# -- the chart ---------------------------------------------------------------------------------------

WIDTH_IN, HEIGHT_IN, DPI = 8, 4.5, 100
COLOURS = ["#1f6fb2", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50"]
GREY = "#666666"


def chart_goals(digest: Digest) -> list[tuple[GoalLine, list]]:
    """The goals the chart draws, with their progress series: at most ``CHART_GOALS``, furthest behind
    first, those with a trajectory and a progress to draw."""
    out = []
    for x in behind_first(digest.goals):
        series = progress_series(x, digest.trajectories.get(x.goal.id) or [])
        if any(p is not None for _, p, _ in series):
            out.append((x, series))
        if len(out) >= CHART_GOALS:
            break
    return out


def digest_chart(digest: Digest, *, lang: str = "en") -> bytes | None:
    """A PNG of each drawn goal's progress over time ((actual − baseline to date) ÷ (target − baseline),
    as ``kpi.goals`` computes it), solid, against its expected progress, dashed in the same colour; None
    when there is no goal to draw."""
    lang = lang_of(lang)
    goals = chart_goals(digest)
    if not goals:
        return None
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.72, top=0.9, bottom=0.12)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    day = format_date(digest.day, s(lang, "chart_day"), locale=babel_locale(lang))
    ax.set_title(_literal(f"{s(lang, 'chart_title')} · {day}"), loc="left", fontsize=12)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.axhline(1.0, color=GREY, linewidth=0.8, linestyle=":")
    first_day = min(day for _, series in goals for day, _, _ in series)
    for i, (x, series) in enumerate(goals):
        xs = [(day - first_day).days for day, _, _ in series]
        actual = [math.nan if p is None else p for _, p, _ in series]
        expected = [math.nan if e is None else e for _, _, e in series]
        col = COLOURS[i % len(COLOURS)]
        label = f"#{x.goal.id} {x.metric.name(lang)}"
        if x.goal.filters:
            label += " (" + ", ".join("/".join(v) for _, v in x.goal.filters) + ")"
        ax.plot(xs, actual, color=col, linewidth=2, label=_literal(clip(label, 40)))
        ax.plot(xs, expected, color=col, linewidth=1, linestyle="--", alpha=0.7)
    ax.plot([], [], color=GREY, linestyle="--", linewidth=1, label=s(lang, "expected"))
    # a young rate's first days can swing far: keep the view on -50%..200% at most around 0..100%
    values = [v for _, series in goals for _, p, e in series for v in (p, e) if v is not None] + [0.0, 1.0]
    ax.set_ylim(max(min(values), -0.5) - 0.05, min(max(values), 2.0) + 0.05)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _literal(format_value(v, "percent", lang=lang))))
    loc, pattern = babel_locale(lang), s(lang, "axis_day")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _pos: format_date(first_day + timedelta(days=int(v)), pattern, locale=loc) if v == int(v) else ""))
    ax.tick_params(labelsize=9, colors=GREY)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _literal(text: str) -> str:
    return text.replace("$", r"\$")


__all__ = ["digest_chart", "digest_message", "digest_text"]
