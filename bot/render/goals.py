"""SMART goals in Slack: the goal list, one goal in detail, and the SMART restatement after
``/kpi goal add``. Also the goal line the digest shares (status emoji, KPI and filters, progress bar,
current vs target, pace, days left, owner).

One module: the list, the detail, the SMART restatement and the digest all say a goal with the same
pieces (status, progress, pace, days left), which must read the same wherever a goal is shown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from babel.dates import format_date

from kpi.goals import Progress, SmartCheck
from kpi.goals.telling import status_of, tell
from kpi.i18n import N_, babel_locale, format_decimal, lang_of, tr
from kpi.metrics.catalog import Metric
from kpi.metrics.engine import KpiResult
from kpi.metrics.formatting import change_arrow, format_change, format_value, points
from kpi.state.store import StoredGoal

from .answer import colour, filters_text, user_ref
from .common import (
    MAX_BLOCKS_MESSAGE,
    SECTION_TEXT,
    Message,
    button_row,
    clip,
    clip_lines,
    context,
    esc,
    fit,
    header,
    section,
)
from .home import progress_bar
from .text import colon, dimension

STATUS_EMOJI = {
    "achieved": ":white_check_mark:", "on_track": ":large_green_circle:", "at_risk": ":large_yellow_circle:",
    "off_track": ":red_circle:", "missed": ":x:", "no_data": ":white_circle:",
}
STATUS_ORDER = ("off_track", "at_risk", "missed", "no_data", "on_track", "achieved")

STRINGS: dict[str, str] = {
    "needs": N_("needs {needed}"),
    "doing": N_("doing {actual}"),
    "per_month": N_("/month"),
    "vs_last_year": N_("{x} vs last year"),
    "days_left": N_("{n} days left"),
    "day_left": N_("1 day left"),
    "due_today": N_("due today"),
    "not_started": N_("starts {date}"),
    "ended": N_("ended {date}"),
    "watch": N_("Watch"),
    "vs_week": N_("7 days vs the 7 before"),
    "goals_title": N_("Goals"),
    "goal_title": N_("Goal #{id}: {name}"),
    "no_goals": N_("No goal yet. Set one with `/kpi goal add`, for example `/kpi goal add revenue +10% by 2026-12-31`."),
    "more_goals": N_("…and {n} more goals: see the KPI Bot Home tab."),
    "more_goals_plain": N_("…and {n} more goals."),
    "goals_range": N_("Goals {first}–{last} of {total}"),
    "goals_next": N_("Next goals"),
    "goals_previous": N_("Previous goals"),
    "no_progress": N_("progress not available"),
    "baseline": N_("Baseline"),
    "pace": N_("Pace"),
    "dates": N_("Dates"),
    "owner": N_("Owner"),
    "channel": N_("Channel"),
    "filters": N_("Filters"),
    "frozen": N_("Final (the deadline has passed)"),
    "span": N_("{start} → {deadline}"),
    "smart_title": N_("Goal #{id} set: {name}"),
    "specific": N_("Specific"),
    "measurable": N_("Measurable"),
    "achievable": N_("Achievable & realistic"),
    "time_bound": N_("Time-bound"),
    "smart_footer": N_("Follow it with `/kpi goal show {id}`; it appears in the digest and the Home tab."),
    "created_by": N_("Set by {user}"),
    "since_start": N_("since the start"),
    "trailing_28": N_("last 28 days"),
    "baseline_given": N_("as set"),
    "baseline_last_year": N_("same span last year"),
    "baseline_before": N_("before the start"),
    "seasonal": N_("the expected path follows last year's seasonality"),
    "figures": N_("Where it stands"),
    # TRANSLATORS: a Babel date pattern (https://babel.pocoo.org/en/latest/dates.html#date-fields)
    "date": N_("d MMM yyyy"),
}


def s(lang: str, key: str, **values: object) -> str:
    return tr(lang, STRINGS[key], **values)


# -- pieces shared with the digest -----------------------------------------------------------------


def _get(obj: object, name: str, default=None):
    return getattr(obj, name, default) if obj is not None else default


def status_emoji(progress) -> str:
    return STATUS_EMOJI[status_of(progress)]


def goal_name(goal: StoredGoal, metric: Metric, lang: str, *, with_id: bool = False) -> str:
    """'*Revenue* · channel = email' (mrkdwn, escaped); '#12 ' in front with ``with_id``."""
    text = f"*{esc(metric.name(lang))}*"
    if goal.filters:
        text += f" · {filters_text(goal.filters, lang)}"
    return (f"#{goal.id} " if with_id else "") + text


def short_date(day: date, lang: str) -> str:
    return format_date(day, s(lang, "date"), locale=babel_locale(lang))


def days_text(goal: StoredGoal, progress, lang: str, *, today: date | None = None) -> str:
    """'12 days left', 'due today', 'ended 31 Dec 2026', 'starts 1 Jan 2027'."""
    if progress is None:
        return ""
    if progress.frozen:
        return s(lang, "ended", date=short_date(goal.deadline, lang))
    not_started = today < goal.start if today is not None else (
        progress.days_elapsed == 0 and progress.days_left >= progress.days_total)
    if not_started:
        return s(lang, "not_started", date=short_date(goal.start, lang))
    left = progress.days_left
    if left == 0:
        return s(lang, "due_today")
    return s(lang, "day_left") if left == 1 else s(lang, "days_left", n=left)


def value_text(value: float | None, metric: Metric, lang: str, currency: str) -> str:
    return format_value(value, metric.format, currency=currency, lang=lang)


def pace_text(metric: Metric, progress, lang: str, currency: str) -> str:
    """The pace the goal needs from here and the one it has kept: 'needs +12.0% vs last year, doing +8.0%'
    (additive KPIs with a baseline), 'needs $12,000/month, doing $9,500/month' (additive, no baseline),
    'needs +0.30 pt/month, doing +0.10 pt/month' (percentages), 'needs +1.8%/month, doing +1.1%/month'
    (other rates and averages). '' once the deadline is over or the goal is already achieved (a pace
    "needed" past the target means nothing), or without data."""
    if progress is None or progress.frozen or progress.status in ("achieved", "missed", "no_data"):
        return ""
    needed, actual = progress.pace_needed, progress.pace_actual
    rel_needed, rel_actual = progress.pace_needed_relative, progress.pace_actual_relative
    per = s(lang, "per_month")
    if progress.additive and rel_needed is not None:
        parts = [s(lang, "needs", needed=s(lang, "vs_last_year", x=_signed_share(rel_needed, lang)))]
        if rel_actual is not None:
            parts.append(s(lang, "doing", actual=_signed_share(rel_actual, lang)))
    elif progress.additive:
        def amount(v: float) -> str:
            return format_value(max(v, 0.0), metric.format, currency=currency, lang=lang, compact=True) + per

        parts = [s(lang, "needs", needed=amount(needed))] if needed is not None and needed > 0 else []
        if actual is not None:
            parts.append(s(lang, "doing", actual=amount(actual)))
    elif metric.format == "percent":
        parts = [s(lang, "needs", needed=_signed_points(needed, lang) + per)] if needed is not None else []
        if actual is not None:
            parts.append(s(lang, "doing", actual=_signed_points(actual, lang) + per))
    elif rel_needed is not None:
        parts = [s(lang, "needs", needed=_signed_share(rel_needed, lang) + per)]
        if rel_actual is not None:
            parts.append(s(lang, "doing", actual=_signed_share(rel_actual, lang) + per))
    else:
        def signed(v: float) -> str:
            return _sign(v) + format_value(abs(v), metric.format, currency=currency, lang=lang, compact=True) + per

        parts = [s(lang, "needs", needed=signed(needed))] if needed is not None else []
        if actual is not None:
            parts.append(s(lang, "doing", actual=signed(actual)))
    return ", ".join(parts)


def _sign(v: float) -> str:
    return "+" if v > 0 else ("−" if v < 0 else "±")


def _signed_share(v: float, lang: str) -> str:
    return _sign(v) + format_value(abs(v), "percent", lang=lang)


def _signed_points(v: float, lang: str) -> str:
    return _sign(v) + points(format_decimal(abs(v) * 100, format="#,##0.0#", locale=babel_locale(lang)), lang)


def _bar(progress, lang: str) -> str:
    """The progress bar of where the goal is, or '' when there is no share to draw (waiting for data)."""
    share = _get(progress, "progress")
    return progress_bar(share, lang=lang) if share is not None and status_of(progress) != "no_data" else ""


def goal_line(goal: StoredGoal, metric: Metric, progress, *, lang: str, currency: str, with_id: bool = False,
              today: date | None = None, owner_text: str | None = None) -> str:
    """The goal in two mrkdwn lines: status, KPI and filters, progress bar; then where it is, where it should
    be by now, where it is heading (``kpi.goals.telling``), days left and owner (``owner_text``, mrkdwn,
    when given: the digest names owners without pinging them; else a mention)."""
    lang = lang_of(lang)
    first = f"{status_emoji(progress)} {goal_name(goal, metric, lang, with_id=with_id)}"
    if progress is None:
        return f"{first}  _{s(lang, 'no_progress')}_"
    story = tell(metric, progress, lang=lang, currency=currency)
    bar = _bar(progress, lang)
    first += (f"  {bar}" if bar else "") + f"  _{esc(story.status_word)}_"
    details = [esc(x) for x in story.figures()]
    if left := days_text(goal, progress, lang, today=today):
        details.append(esc(left))
    if goal.owner:
        details.append(owner_text or user_ref(goal.owner))
    return first + "\n" + " · ".join(details)


def goal_plain(goal: StoredGoal, metric: Metric, progress, *, lang: str, currency: str, with_id: bool = False,
               today: date | None = None) -> str:
    """One line of plain text (notifications, terminals), in the same words as ``goal_line``: 'Revenue
    (channel=email): on track · $900.00 so far: 90% of the target $1,000.00 · expected by now: ... · 7 days
    left'."""
    lang = lang_of(lang)
    name = metric.name(lang)
    if goal.filters:
        name += " (" + ", ".join(f"{dimension(lang, d)}={'/'.join(v)}" for d, v in goal.filters) + ")"
    if with_id:
        name = f"#{goal.id} {name}"
    if progress is None:
        return f"{name}{colon(lang)}{s(lang, 'no_progress')}"
    story = tell(metric, progress, lang=lang, currency=currency)
    parts = [story.status_word, *story.figures()]
    if left := days_text(goal, progress, lang, today=today):
        parts.append(left)
    return f"{name}{colon(lang)}" + " · ".join(parts)


def change_text(result: KpiResult, lang: str, currency: str) -> str:
    """'+0.4 pt (+12.0%)', '+12.0%' for the rest; '—' when there is nothing to compare."""
    ch = result.change
    if ch is None or ch.absolute is None:
        return "—"
    if result.metric.format == "percent" or ch.relative is None:
        return format_change(result.metric, ch, currency=currency, lang=lang)
    sign = "+" if ch.relative > 0 else ("−" if ch.relative < 0 else "±")
    return sign + format_value(abs(ch.relative), "percent", lang=lang)


def watch_item(result: KpiResult, lang: str, currency: str) -> str:
    """':large_green_circle: Conversion rate ↑ +0.4 pt (+12.0%)' (mrkdwn); a watched breakdown adds its
    first rows: '(email +12.0%, social −5.0%)'."""
    text = f"{colour(result.change)} {esc(result.metric.name(lang))} {change_arrow(result.change)} {esc(change_text(result, lang, currency))}"
    if result.breakdown:
        rows = [r for r in result.breakdown if not r.is_other][:3]
        inner = []
        for r in rows:
            rel = r.change.relative if r.change is not None else None
            if rel is None:
                continue
            sign = "+" if rel > 0 else ("−" if rel < 0 else "±")
            inner.append(f"{esc(r.key)} {sign}{esc(format_value(abs(rel), 'percent', lang=lang))}")
        if inner:
            text += f" ({esc(dimension(lang, result.breakdown_by or ''))}: {', '.join(inner)})"
    return text


def watch_line(results: Sequence[KpiResult], lang: str, currency: str) -> str:
    if not results:
        return ""
    return f"_{s(lang, 'watch')}_{colon(lang)}" + "  ·  ".join(watch_item(r, lang, currency) for r in results)


def watch_plain(results: Sequence[KpiResult], lang: str, currency: str) -> str:
    if not results:
        return ""
    items = []
    for r in results:
        items.append(f"{r.metric.name(lang)} {change_arrow(r.change)} {change_text(r, lang, currency)}")
    return s(lang, "watch") + colon(lang) + "; ".join(items)


def pack_sections(chunks: Sequence[str], *, max_blocks: int, limit: int = SECTION_TEXT,
                  max_items: int | None = None, sep: str = "\n\n") -> tuple[list[str], int]:
    """Chunks of mrkdwn grouped into at most ``max_blocks`` section texts of at most ``limit`` characters
    each (a chunk is never split; an oversized one is clipped); returns (texts, chunks shown)."""
    texts: list[str] = []
    current = ""
    shown = 0
    for chunk in chunks:
        if max_items is not None and shown >= max_items:
            break
        chunk = clip(chunk, limit)
        if current and len(current) + len(sep) + len(chunk) <= limit:
            current += sep + chunk
        else:
            if current:
                texts.append(current)
            if len(texts) >= max_blocks:
                current = ""
                break
            current = chunk
        shown += 1
    if current:
        texts.append(current)
    return texts, shown


# -- /kpi goal list ---------------------------------------------------------------------------------

LIST_MAX = 40  # goals listed in one message or Home tab page; the pager's buttons page through the rest
GOALS_PAGE = "kpi_goals_page"  # a pager button (value: the offset of the page) and the digest's "All goals"


def goal_list_message(items: list[tuple[StoredGoal, Metric, Progress | None]], *, lang: str = "en",
                      currency: str = "USD", home_hint: bool = True, offset: int = 0) -> Message:
    """The goals from ``offset`` on, those needing attention first, several per section, ``LIST_MAX`` at
    most; when there are more, 'Goals 41–63 of 63' and Previous / Next buttons (``GOALS_PAGE``, the
    value the offset of that page), so every goal is reachable in Slack. ``home_hint``: the plain-text
    fallback points to the Home tab (pass False inside the Home tab itself)."""
    lang = lang_of(lang)
    title = f"{s(lang, 'goals_title')} ({len(items)})" if items else s(lang, "goals_title")
    if not items:
        return Message(text=s(lang, "no_goals"), blocks=[header(title), section(s(lang, "no_goals"))])
    ordered = sorted(items, key=lambda it: (_order(it[2]), it[0].id))
    offset = min(max(offset, 0), max(len(ordered) - 1, 0))
    page = ordered[offset:offset + LIST_MAX]
    chunks = [goal_line(g, m, p, lang=lang, currency=currency, with_id=True) for g, m, p in page]
    texts, shown = pack_sections(chunks, max_blocks=MAX_BLOCKS_MESSAGE - 4, max_items=LIST_MAX)
    blocks = [header(title)] + [section(x) for x in texts]
    if offset or shown < len(ordered):
        blocks.append(context(s(lang, "goals_range", first=offset + 1, last=offset + shown, total=len(ordered))))
        buttons = []
        if offset:
            buttons.append((s(lang, "goals_previous"), GOALS_PAGE, str(max(offset - LIST_MAX, 0))))
        if offset + shown < len(ordered):
            buttons.append((s(lang, "goals_next"), GOALS_PAGE, str(offset + shown)))
        blocks.append(button_row(*buttons))
    plain = [esc(title)] + [esc(goal_plain(g, m, p, lang=lang, currency=currency, with_id=True)) for g, m, p in page[:60]]
    more = (lambda n: s(lang, "more_goals", n=n)) if home_hint else None
    return Message(text=fit_plain(plain, len(ordered) - offset, lang, more=more), blocks=fit(blocks, lang=lang))


def _order(progress) -> int:
    return STATUS_ORDER.index(status_of(progress)) if progress is not None else len(STATUS_ORDER)


def fit_plain(lines: list[str], total_goals: int, lang: str, *, first_goal: int = 1, tail: Sequence[str] = (),
              limit: int = 3000, more: Callable[[int], str] | None = None) -> str:
    """Plain text within ``limit``: the lines before ``first_goal`` and ``tail`` always, goal lines while
    they fit, then '…and N more goals.'"""
    head, goal_lines = lines[:first_goal], lines[first_goal:]
    tail_size = sum(len(x) + 1 for x in tail)
    room = limit - sum(len(x) + 1 for x in head) - tail_size - 60
    kept: list[str] = []
    for line in goal_lines:
        line = clip(line, 500)
        if len(line) + 1 > room:
            break
        kept.append(line)
        room -= len(line) + 1
    out = head + kept
    if len(kept) < total_goals:
        n = total_goals - len(kept)
        out.append(more(n) if more else s(lang, "more_goals_plain", n=n))
    return clip_lines(out + list(tail), limit)


# -- /kpi goal show ----------------------------------------------------------------------------------


def goal_detail_message(goal: StoredGoal, metric: Metric, progress: Progress, *, lang: str = "en",
                        currency: str = "USD") -> Message:
    """The goal card: its status and the figures it follows from, in the words of ``goal_line`` (full
    amounts), then its baseline, pace, dates, owner and channel."""
    lang = lang_of(lang)
    title = s(lang, "goal_title", id=goal.id, name=metric.name(lang))
    story = tell(metric, progress, lang=lang, currency=currency, compact=False)
    bar = _bar(progress, lang)
    head = f"{status_emoji(progress)} *{esc(story.status_word)}*" + (f"  {bar}" if bar else "")
    if goal.filters:
        head += f"\n_{s(lang, 'filters')}{colon(lang)}{filters_text(goal.filters, lang)}_"
    if _get(progress, "frozen"):
        head += f"\n_{s(lang, 'frozen')}_"

    def val(x):
        return esc(value_text(x, metric, lang, currency))

    figures = [esc(x) for x in story.figures()]
    notes = []
    window = {"since start": "since_start", "trailing 28 days": "trailing_28"}.get(_get(progress, "current_window") or "")
    if window and _get(progress, "current") is not None:
        notes.append(s(lang, window))
    if _get(progress, "expected_kind") == "seasonal" and story.expected:
        notes.append(s(lang, "seasonal"))
    if notes:
        figures.append(f"_{esc(' · '.join(notes))}_")
    fields = []
    if progress is not None and progress.baseline is not None:
        how = "baseline_given" if goal.baseline is not None else (
            "baseline_last_year" if progress.additive else "baseline_before")
        fields.append(f"*{s(lang, 'baseline')}*\n{val(progress.baseline)}  _{s(lang, how)}_")
    pace = pace_text(metric, progress, lang, currency)
    if pace:
        fields.append(f"*{s(lang, 'pace')}*\n{esc(pace)}")
    span = s(lang, "span", start=short_date(goal.start, lang), deadline=short_date(goal.deadline, lang))
    left = days_text(goal, progress, lang)
    fields.append(f"*{s(lang, 'dates')}*\n{esc(span)}" + (f"\n{esc(left)}" if left else ""))
    if goal.owner:
        fields.append(f"*{s(lang, 'owner')}*\n{user_ref(goal.owner)}")
    if goal.channel:
        fields.append(f"*{s(lang, 'channel')}*\n{channel_ref(goal.channel)}")
    blocks = [header(title), section(head)]
    if figures:
        blocks.append(section(f"*{s(lang, 'figures')}*\n" + "\n".join(figures)))
    blocks.append(section(fields=fields))
    if goal.watch:
        blocks.append(context(f"_{s(lang, 'watch')}_{colon(lang)}" + esc(", ".join(w.replace("_", " ") for w in goal.watch))))
    notes = []
    if goal.text:
        notes.append(f"“{esc(clip(goal.text, 2000))}”")
    if goal.created_by:
        notes.append(s(lang, "created_by", user=user_ref(goal.created_by)))
    if notes:
        blocks.append(context(*notes))
    plain = [title, goal_plain(goal, metric, progress, lang=lang, currency=currency)]
    return Message(text=clip_lines([esc(x) for x in plain]), blocks=fit(blocks, lang=lang))


def channel_ref(channel: str) -> str:
    """'C123' or '<#C123>' -> '<#C123>' (a link); '#general' and anything else shown as text."""
    c = channel.strip().lstrip("<#").rstrip(">").split("|")[0]
    if c[:1] in ("C", "G") and c[1:].isalnum() and c.upper() == c and len(c) > 2:
        return f"<#{c}>"
    return esc(channel)


# -- the SMART restatement after /kpi goal add --------------------------------------------------------

SMART_LETTERS = (("S", "specific"), ("M", "measurable"), ("A", "achievable"), ("T", "time_bound"))


def smart_message(goal: StoredGoal, metric: Metric, check: SmartCheck, *, lang: str = "en") -> Message:
    """One labelled line per letter of SMART, then the warnings (:warning:)."""
    lang = lang_of(lang)
    title = s(lang, "smart_title", id=goal.id, name=metric.name(lang))
    lines, plain = [], [title]
    for letter, attr in SMART_LETTERS:
        text = _check_text(_get(check, attr))
        if not text:
            continue
        lines.append(f"*{letter}* · *{s(lang, attr)}*{colon(lang)}{esc(text)}")
        plain.append(f"{letter} · {s(lang, attr)}{colon(lang)}{text}")
    warnings = [_check_text(w) for w in (_get(check, "warnings") or ())]
    warnings = [w for w in warnings if w]
    blocks = [header(title)]
    if lines:
        blocks.append(section("\n".join(lines)))
    if warnings:
        texts, _ = pack_sections([f":warning: {esc(w)}" for w in warnings], max_blocks=5, sep="\n")
        blocks += [section(x) for x in texts]
        plain += [f"⚠ {w}" for w in warnings]
    notes = [s(lang, "smart_footer", id=goal.id)]
    if goal.owner:
        notes.append(f"{s(lang, 'owner')}{colon(lang)}{user_ref(goal.owner)}")
    blocks.append(context(*notes))
    return Message(text=clip_lines([esc(x) for x in plain]), blocks=fit(blocks, lang=lang))


def _check_text(value: object) -> str:
    """A SmartCheck part as text: a string, a list of strings, or an object with ``text``/``message``."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "; ".join(x for x in (_check_text(v) for v in value) if x)
    for attr in ("text", "message", "summary"):
        if isinstance(getattr(value, attr, None), str):
            return getattr(value, attr)
    return str(value)


__all__ = ["GOALS_PAGE", "LIST_MAX", "STATUS_EMOJI", "goal_detail_message", "goal_line", "goal_list_message", "goal_plain",
           "smart_message", "watch_line"]
