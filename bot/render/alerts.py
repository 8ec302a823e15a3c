"""Alerts in Slack: the firing message and its thread (repeats, resolution), the first message rewritten
with its current status (``chat.update``), error and no-data notices, the ephemeral "Explain", the rule
list of ``/kpi alert list`` and the backtest of ``/kpi alert test``.

Rules and states come from ``kpi.alerts`` (``RuleSpec``, ``AlertState``); this module only reads their
fields. Thresholds are in the KPI's own unit (a fraction for a percentage: 0.08 is 8.0%); for
``change_above`` / ``change_below`` the threshold is a relative change (0.2 is +20.0% vs the previous
window). Every time is shown in the rule's time zone.

One module: every kind of alert message is built from the same words of a rule (its condition, window,
sample, thresholds and times), and a wording changed in one place must change in every message."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from kpi.i18n import N_, babel_locale, format_decimal, lang_of, mid_sentence, tr
from kpi.metrics.catalog import Metric
from kpi.metrics.engine import BreakdownRow, KpiResult
from kpi.metrics.formatting import format_value

from .answer import breakdown_table, chart_alt, filters_text, spark_line, user_ref
from .common import (
    BUTTON_TEXT,
    BUTTON_VALUE,
    MAX_BLOCKS_MESSAGE,
    SECTION_TEXT,
    Message,
    clip,
    clip_lines,
    context,
    esc,
    fit,
    header,
    image,
    section,
)
from .goals import channel_ref, pack_sections
from .text import SAMPLE_NOUNS, colon, noun_of

if TYPE_CHECKING:  # kpi.alerts is only read through these fields, never imported at run time
    from kpi.alerts import AlertState, RuleSpec
    from kpi.metrics.significance import Significance

KINDS = ("fire", "repeat", "resolve", "status", "error", "no_data")
STATE_EMOJI = {"ok": "🟢", "pending": "🟡", "firing": "🔴", "no_data": "⚪", "error": "⚠️"}
STATE_ORDER = ("firing", "error", "pending", "no_data", "ok")
CONTRIBUTOR_ROWS = 5  # rows in the "top contributors" table of an alert
EXPLAIN_ROWS = 10  # rows per breakdown in "Explain"
ERROR_CHARS = 300  # of state.last_error
NOTE_CHARS = 500  # of rule.text
FILTER_CHARS = 500  # of a rule's filters
BACKTEST_DATES = 60  # fires listed by date in a backtest

STRINGS: dict[str, str] = {
    "above": N_("above {x}"),
    "below": N_("below {x}"),
    "change_above": N_("change above {x}"),
    "change_below": N_("change below {x}"),
    "today": N_("today so far"),
    "last_day": N_("the last day"),
    "last_days": N_("the last {n} days"),
    "label_today": N_("Today so far"),
    "label_day": N_("Last day"),
    "label_days": N_("Last {n} days"),
    "over": N_("over {window}"),
    "vs_today": N_("vs the same time yesterday"),
    "vs_day": N_("vs the day before"),
    "vs_days": N_("vs the {n} days before"),
    "clears_below": N_("clears below {x}"),
    "clears_above": N_("clears above {x}"),
    "min_sample": N_("min {n} {noun}"),
    "min_sample_plain": N_("min sample {n}"),
    "in_a_row": N_("{n} checks in a row"),
    "significant_only": N_("only when significant"),
    "significant_p": N_("Significant ({p})"),
    "not_significant_p": N_("Not significant ({p})"),
    "outside_band": N_("Outside normal variation ({low} to {high})"),
    "inside_band": N_("Within normal variation ({low} to {high})"),
    "threshold": N_("threshold {x}"),
    "vs_prev_window": N_("vs the previous window"),
    "now_was": N_("now {now}, before {before}"),
    "firing_since": N_("Firing since {time}"),
    "still_firing": N_("Still firing since {time}, now {value}"),
    "reminder": N_("reminder {n}"),
    "resolved": N_("Resolved: {name} back to {value} ({bound})"),
    "resolved_change": N_("Resolved: {name} change back to {value} ({bound})"),
    "after": N_(" after {duration}"),
    "status_resolved_plain": N_("*Resolved*"),
    "status_firing": N_("*Firing* since {time}"),
    "status_pending": N_("*Pending* since {time}"),
    "status_ack": N_("Acknowledged by {user}"),
    "status_snoozed": N_("Snoozed until {time}"),
    "status_muted": N_("Muted until {time}"),
    "status_resolved": N_("*Resolved* after {duration}"),
    "status_no_data": N_("*No data* since {time}"),
    "status_error": N_("*Could not evaluate*: {error}"),
    "error": N_("Could not evaluate {title} (rule #{id}): {error}"),
    "no_data": N_("No data for {title} (rule #{id}): {why}"),
    "sample_low": N_("sample {n} &lt; {min} minimum"),
    "stale": N_("the source is stale (data up to {time})"),
    "no_source": N_("no data in the source for this window"),
    "top_contributors": N_("Top contributors"),
    "rule_n": N_("Rule #{id}"),
    "every": N_("checked every {n} min"),
    "ack": N_("Acknowledge"),
    "snooze_1h": N_("Snooze 1 h"),
    "snooze_tomorrow": N_("Snooze until tomorrow 09:00"),
    "explain": N_("Explain"),
    "explain_title": N_("Explain: {title}"),
    "explain_note": N_("Biggest movers first; change vs the previous period."),
    "no_breakdown": N_("No breakdown available for this KPI."),
    "rules_title": N_("Alert rules"),
    "no_rules": N_("No alert rule yet. Add one with `/kpi alert add`."),
    "more_rules": N_("…and {n} more rules: see `kpibot alerts list`."),
    "not_evaluated": N_("not evaluated yet"),
    "to": N_("to {channel}"),
    "list_muted": N_("🔇 muted until {time}"),
    "list_snoozed": N_("💤 snoozed until {time}"),
    "list_ack": N_("👀 acknowledged by {user}"),
    "backtest_title": N_("Test of rule #{id}: {title}"),
    "backtest_none": N_("Over {window} this rule would not have fired."),
    "backtest_once": N_("Over {window} this rule would have fired once: {dates}"),
    "backtest_n": N_("Over {window} this rule would have fired {n} times: {dates}"),
    "backtest_for": N_("for {duration}"),
    "backtest_open": N_("still firing"),
    "backtest_more": N_("…and {n} more"),
    "backtest_evals": N_("{n} evaluations"),
    "day": N_("{n} day"),
    "days": N_("{n} days"),
    "hours": N_("{n} h"),
    "minutes": N_("{n} min"),
    "under_minute": N_("less than a minute"),
    # TRANSLATORS: Babel date patterns (https://babel.pocoo.org/en/latest/dates.html#date-fields)
    "time": N_("d MMM, HH:mm"),
    "time_year": N_("d MMM yyyy, HH:mm"),
    "date": N_("d MMM"),
}

_MENTION = re.compile(r"^<(@[UW][A-Z0-9]{2,}(\|[^<>]*)?|!here|!channel|!everyone|!subteam\^[A-Z0-9]{2,}(\|[^<>]*)?)>$")


def s(lang: str, key: str, **values: object) -> str:
    return tr(lang, STRINGS[key], **values)


# -- words and numbers -----------------------------------------------------------------------------


def _change_rule(rule: RuleSpec) -> bool:
    return rule.condition in ("change_above", "change_below")


def _up(rule: RuleSpec) -> bool:
    """True when the rule fires on the KPI going up (above, change_above)."""
    return rule.condition in ("above", "change_above")


def _signed_percent(x: float, lang: str) -> str:
    sign = "+" if x > 0 else ("−" if x < 0 else "±")
    return sign + format_value(abs(x), "percent", lang=lang)


def bound_text(rule: RuleSpec, metric: Metric, x: float | None, lang: str, currency: str) -> str:
    """A threshold (or an observed value) in the rule's unit: '8.0%', '$1,200.00', '+20.0%' for a change."""
    if x is None:
        return format_value(None, "percent", lang=lang)
    if _change_rule(rule):
        return _signed_percent(x, lang)
    return format_value(x, metric.format, currency=currency, lang=lang)


def _clear(rule: RuleSpec) -> float | None:
    """The clear threshold when it differs from the threshold (hysteresis), else None."""
    c = rule.clear_threshold
    return None if c is None or c == rule.threshold else c


def _clear_words(rule: RuleSpec, metric: Metric, lang: str, currency: str) -> str:
    c = _clear(rule)
    if c is None:
        return ""
    return s(lang, "clears_below" if _up(rule) else "clears_above", x=bound_text(rule, metric, c, lang, currency))


def short_condition(rule: RuleSpec, metric: Metric, lang: str = "en", currency: str = "USD") -> str:
    """'above 8.0%', 'change below −20.0%'."""
    key = rule.condition if rule.condition in ("above", "below", "change_above", "change_below") else "above"
    return s(lang, key, x=bound_text(rule, metric, rule.threshold, lang, currency))


def rule_title(rule: RuleSpec, metric: Metric, lang: str = "en", currency: str = "USD") -> str:
    """Plain text: 'Return rate above 8.0%', 'Revenue: change below −20.0%'."""
    sep = colon(lang) if _change_rule(rule) else " "
    return f"{metric.name(lang)}{sep}{short_condition(rule, metric, lang, currency)}"


def window_words(days: int, lang: str) -> str:
    """'today so far', 'the last day', 'the last 7 days'."""
    if days <= 0:
        return s(lang, "today")
    return s(lang, "last_day") if days == 1 else s(lang, "last_days", n=days)


def _window_phrase(rule: RuleSpec, lang: str) -> str:
    days = rule.window_days or 0
    phrase = window_words(days, lang) if days <= 0 else s(lang, "over", window=window_words(days, lang))
    if _change_rule(rule):
        vs = s(lang, "vs_today") if days <= 0 else (s(lang, "vs_day") if days == 1 else s(lang, "vs_days", n=days))
        phrase += " " + vs
    return phrase


def metric_sample_noun(metric: Metric, lang: str) -> str | None:
    key = metric.sample or (metric.denominator if metric.type == "ratio" else None)
    if key and key in SAMPLE_NOUNS:
        return noun_of(lang, key)
    return None


def sample_words(n: float, metric: Metric, lang: str) -> str:
    """'1,234 orders' (or just '1,234' when the catalog does not say what the sample counts)."""
    num = format_decimal(round(n), locale=babel_locale(lang))
    noun = metric_sample_noun(metric, lang)
    return f"{num} {noun}" if noun else num


def condition_words(rule: RuleSpec, metric: Metric, lang: str = "en", currency: str = "USD") -> str:
    """'above 8.0% over the last 7 days (clears below 7.0%, min 500 orders)' (plain text)."""
    lang = lang_of(lang)
    extras = []
    if clears := _clear_words(rule, metric, lang, currency):
        extras.append(clears)
    if rule.min_sample:
        noun = metric_sample_noun(metric, lang)
        num = format_decimal(rule.min_sample, locale=babel_locale(lang))
        extras.append(s(lang, "min_sample", n=num, noun=noun) if noun else s(lang, "min_sample_plain", n=num))
    if (rule.consecutive or 1) > 1:
        extras.append(s(lang, "in_a_row", n=rule.consecutive))
    if getattr(rule, "significant", False):
        extras.append(s(lang, "significant_only"))
    out = f"{short_condition(rule, metric, lang, currency)} {_window_phrase(rule, lang)}"
    return out + (f" ({', '.join(extras)})" if extras else "")


def rule_filters(rule: RuleSpec, lang: str) -> str:
    """'channel = email · device = mobile' (mrkdwn, escaped); '' without filters."""
    filters = rule.filters or ()
    if isinstance(filters, dict):
        filters = filters.items()
    norm = [(d, (v,) if isinstance(v, str) else tuple(v)) for d, v in filters]
    return filters_text(norm, lang) if norm else ""


def mention_ref(mention: str | None) -> str:
    """The rule's mentions (space separated) as Slack syntax: 'U123' -> '<@U123>', 'here' -> '<!here>',
    'S123' -> a user group; Slack syntax is kept; anything else ('@alice') is shown as text."""
    return " ".join(_one_mention(m) for m in (mention or "").split())


def _one_mention(m: str) -> str:
    if _MENTION.match(m):
        return m
    bare = m.lstrip("@!")
    if bare.lower() in ("here", "channel", "everyone"):
        return f"<!{bare.lower()}>"
    if re.fullmatch(r"S[A-Z0-9]{2,}", bare):
        return f"<!subteam^{bare}>"
    return user_ref(m)


def duration_words(delta: timedelta, lang: str = "en") -> str:
    """'3 days 4 h', '2 h 15 min', '45 min', '1 day'."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 1:
        return s(lang, "under_minute")
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        out = s(lang, "day" if days == 1 else "days", n=days)
        return out + (" " + s(lang, "hours", n=hours) if hours else "")
    if hours:
        return s(lang, "hours", n=hours) + (" " + s(lang, "minutes", n=mins) if mins else "")
    return s(lang, "minutes", n=mins)


def _tz(rule: RuleSpec) -> ZoneInfo:
    tz = getattr(rule, "timezone", None)
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(str(tz)) if tz else ZoneInfo("UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def local_time(dt: datetime, rule: RuleSpec, lang: str, now: datetime | None = None) -> str:
    """'24 Nov, 15:30 CET' in the rule's time zone (with the year when it is not the current one)."""
    local = _aware(dt).astimezone(_tz(rule))
    with_year = now is not None and _aware(now).astimezone(_tz(rule)).year != local.year
    text = format_datetime(local, s(lang, "time_year" if with_year else "time"), locale=babel_locale(lang))
    return f"{text} {local.tzname()}"


def local_date(dt: datetime, rule: RuleSpec, lang: str) -> str:
    return format_date(_aware(dt).astimezone(_tz(rule)).date(), s(lang, "date"), locale=babel_locale(lang))


# -- observations ----------------------------------------------------------------------------------


def observed(rule: RuleSpec, state: AlertState | None, result: KpiResult | None) -> float | None:
    """What the rule compares with its threshold: the value, or for a change rule the relative change."""
    if result is not None:
        if _change_rule(rule):
            if result.change is not None and result.change.relative is not None:
                return result.change.relative
        elif result.current.value is not None:
            return result.current.value
    return getattr(state, "last_value", None) if state is not None else None


def observed_sample(state: AlertState | None, result: KpiResult | None) -> float | None:
    if result is not None and result.current.sample is not None:
        return result.current.sample
    return getattr(state, "last_sample", None) if state is not None else None


def _since(state: AlertState, start: datetime | None, now: datetime) -> datetime:
    """When the open episode started: ``start`` (the episode's fire), else the state's since, else now."""
    return start or state.since or now


def _episode_duration(state: AlertState, start: datetime | None, now: datetime) -> timedelta | None:
    """From the fire to the resolve: the time the state went back to ok when known, else now; None when
    the start is unknown."""
    if start is None:
        return None
    end = now
    if state.state == "ok" and state.since is not None and _aware(start) <= _aware(state.since) <= _aware(now):
        end = state.since
    return _aware(end) - _aware(start)


def _active(until: datetime | None, now: datetime | None) -> bool:
    return until is not None and (now is None or _aware(until) > _aware(now))


# -- contributors ----------------------------------------------------------------------------------


def contribution(row: BreakdownRow, metric: Metric) -> float | None:
    """How much a group moved the KPI: its change, weighted by its share of the sample for a rate."""
    if row.change is None or row.change.absolute is None:
        return None
    weight = row.share if (row.share is not None and not metric.additive) else 1.0
    return row.change.absolute * weight


def movers(result: KpiResult, *, direction: int = 0, limit: int | None = None) -> KpiResult:
    """``result`` with its breakdown sorted by contribution: the largest in ``direction`` (+1 up, -1 down)
    first, or the largest either way with 0; cut to ``limit`` groups (the 'other' row is dropped then, as
    it no longer sums up the rest)."""
    m = result.metric

    def key(r: BreakdownRow) -> tuple:
        c = contribution(r, m)
        if c is None:
            return (1, 0.0, r.key)
        return (0, -(c * direction if direction else abs(c)), r.key)

    named = sorted((r for r in result.breakdown if not r.is_other), key=key)
    other = [r for r in result.breakdown if r.is_other]
    total = max(result.breakdown_total_groups, len(named))
    if limit is not None and len(named) > limit:
        return dataclasses.replace(result, breakdown=named[:limit], breakdown_total_groups=total)
    return dataclasses.replace(result, breakdown=named + other, breakdown_total_groups=total)


def _table(result: KpiResult, lang: str, currency: str, title: str = "", limit: int = SECTION_TEXT) -> tuple[str, str]:
    prefix = f"*{esc(title)}*  ·  " if title else ""
    table, note = breakdown_table(result, lang=lang, currency=currency, limit=limit - len(prefix))
    return prefix + table, note


# -- blocks ----------------------------------------------------------------------------------------


def alert_buttons(rule_id: int, state: AlertState, lang: str, *, acknowledged: bool = False) -> dict:
    """The actions block (block_id 'alert_actions'); Acknowledge is left out once someone did."""
    value = f"{rule_id}:{state.episode}"
    if len(value) > BUTTON_VALUE:
        raise ValueError(f"button value is {len(value)} characters; Slack allows {BUTTON_VALUE}")
    buttons = [] if acknowledged else [("ack", "alert_ack", "primary")]
    buttons += [("snooze_1h", "alert_snooze_1h", None), ("snooze_tomorrow", "alert_snooze_tomorrow", None),
                ("explain", "alert_explain", None)]
    elements = [ButtonElement(text=clip(s(lang, key), BUTTON_TEXT), action_id=action, value=value, style=style)
                for key, action, style in buttons]
    return ActionsBlock(block_id="alert_actions", elements=elements).to_dict()


def _value_line(rule: RuleSpec, metric: Metric, state: AlertState, result: KpiResult | None, lang: str, currency: str) -> str:
    """'*9.1%* (threshold 8.0%, clears below 7.0%)'; a change rule adds the values compared."""
    value = bound_text(rule, metric, observed(rule, state, result), lang, currency)
    bounds = [s(lang, "threshold", x=bound_text(rule, metric, rule.threshold, lang, currency))]
    if clears := _clear_words(rule, metric, lang, currency):
        bounds.append(clears)
    line = f"*{esc(value)}*"
    if _change_rule(rule):
        line += " " + s(lang, "vs_prev_window")
    line += f" ({esc(', '.join(bounds))})"
    if _change_rule(rule) and result is not None and result.comparison is not None:
        now_v = format_value(result.current.value, metric.format, currency=currency, lang=lang)
        before = format_value(result.comparison.value, metric.format, currency=currency, lang=lang)
        line += f"\n{esc(s(lang, 'now_was', now=now_v, before=before))}"
    return line


def significance_words(sig: Significance, metric: Metric, lang: str, currency: str) -> str:
    """'Significant (p = 0.003)', 'Within normal variation ($1,200.00 to $1,800.00)' (plain text)."""
    if sig.low is not None and sig.high is not None:
        low, high = (format_value(x, metric.format, currency=currency, lang=lang) for x in (sig.low, sig.high))
        return s(lang, "outside_band" if sig.significant else "inside_band", low=low, high=high)
    p = sig.p_value
    loc = babel_locale(lang)
    p_text = ("p < " + format_decimal(0.001, format="0.000", locale=loc) if p is not None and p < 0.001
              else "p = " + (format_decimal(p, format="0.000", locale=loc) if p is not None else "?"))
    return s(lang, "significant_p" if sig.significant else "not_significant_p", p=p_text)


def _window_line(rule: RuleSpec, metric: Metric, state: AlertState, result: KpiResult | None, lang: str) -> str:
    """'Last 7 days · 1,234 orders · channel = email'."""
    parts = [esc(_window_label(rule, lang))]
    sample = observed_sample(state, result)
    if sample is not None:
        parts.append(esc(sample_words(sample, metric, lang)))
    if filt := rule_filters(rule, lang):
        parts.append(clip(filt, FILTER_CHARS))
    return "  ·  ".join(parts)


def _window_label(rule: RuleSpec, lang: str) -> str:
    """'Last 7 days', 'Today so far', 'Les 7 derniers jours'."""
    days = rule.window_days or 0
    if days <= 0:
        return s(lang, "label_today")
    return s(lang, "label_day") if days == 1 else s(lang, "label_days", n=days)


def _status_line(state: AlertState, rule: RuleSpec, lang: str, now: datetime, start: datetime | None) -> str:
    """The current status, for the first message rewritten by chat.update."""
    st = state.state
    parts: list[str] = []
    if st == "ok":
        duration = _episode_duration(state, start, now)
        parts.append(":white_check_mark: " + (s(lang, "status_resolved", duration=duration_words(duration, lang))
                                               if duration is not None else s(lang, "status_resolved_plain")))
    elif st == "no_data":
        parts.append(":grey_question: " + s(lang, "status_no_data", time=local_time(state.since or now, rule, lang, now)))
    elif st == "error":
        parts.append(":warning: " + s(lang, "status_error", error=_short_error(state)))
    else:
        key = "status_pending" if st == "pending" and not state.fired_at else "status_firing"
        parts.append(":red_circle: " + s(lang, key, time=local_time(_since(state, start, now), rule, lang, now)))
    if state.acknowledged_by:
        parts.append(":eyes: " + s(lang, "status_ack", user=user_ref(state.acknowledged_by)))
    if st != "ok" and _active(state.snoozed_until, now):
        parts.append(":zzz: " + s(lang, "status_snoozed", time=local_time(state.snoozed_until, rule, lang, now)))
    if _active(getattr(state, "muted_until", None), now):
        parts.append(":mute: " + s(lang, "status_muted", time=local_time(state.muted_until, rule, lang, now)))
    return "  ·  ".join(parts)


def _short_error(state: AlertState) -> str:
    err = (getattr(state, "last_error", None) or "").strip().splitlines()
    return esc(clip(err[0] if err else "?", ERROR_CHARS))


def _fallback(lines: Sequence[str]) -> str:
    return clip_lines([x for x in lines if x]) or "…"


def alert_message(rule_id: int, rule: RuleSpec, metric: Metric, state: AlertState, result: KpiResult | None, *, kind: str,
                  lang: str = "en", currency: str = "USD", contributors: KpiResult | None = None,
                  chart_file_id: str | None = None, now: datetime, fired_at: datetime | None = None,
                  significance: Significance | None = None) -> Message:
    """One alert notification; ``kind`` is fire, repeat, resolve (both for the thread), status (the first
    message rewritten), error or no_data.

    ``significance``: the test a rule that requires significance is held to
    (``kpi.alerts.evaluation.breach_significance``), shown under the value of a fire or status message.

    ``fired_at``: the episode's start, when ``state`` no longer holds it (the machine clears
    ``AlertState.fired_at`` on resolve: pass the previous state's); without it, the resolve and a resolved
    status say "Resolved" without the duration."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    lang = lang_of(lang)
    title = rule_title(rule, metric, lang, currency)
    value = bound_text(rule, metric, observed(rule, state, result), lang, currency)
    start = fired_at or state.fired_at

    if kind == "repeat":
        line = s(lang, "still_firing", time=local_time(_since(state, start, now), rule, lang, now), value=value)
        if state.repeats:
            line += f" ({s(lang, 'reminder', n=state.repeats)})"
        text = f":rotating_light: {esc(line)}"
        return Message(text=_fallback([f"{esc(title)}: {esc(line)}"]),
                       blocks=[section(text), context(esc(title))])

    if kind == "resolve":
        name = mid_sentence(lang, metric.name(lang))
        clear = rule.threshold if _clear(rule) is None else _clear(rule)
        bound = s(lang, "below" if _up(rule) else "above", x=bound_text(rule, metric, clear, lang, currency))
        key = "resolved_change" if _change_rule(rule) else "resolved"
        duration = _episode_duration(state, start, now)
        line = s(lang, key, name=name, value=value, bound=bound)
        if duration is not None:
            line += s(lang, "after", duration=duration_words(duration, lang))
        return Message(text=_fallback([esc(line)]), blocks=[section(f":white_check_mark: {esc(line)}")])

    if kind == "error":
        line = ":warning: " + s(lang, "error", title=esc(title), id=rule_id, error=_short_error(state))
        return Message(text=_fallback([line]), blocks=[section(line)])

    if kind == "no_data":
        why = _no_data_reason(rule, state, result, lang, now)
        line = ":grey_question: " + s(lang, "no_data", title=esc(title), id=rule_id, why=why)
        return Message(text=_fallback([line]), blocks=[section(line)])

    # fire, status
    resolved = kind == "status" and state.state == "ok"
    lines = [_value_line(rule, metric, state, result, lang, currency)]
    if significance is not None and getattr(rule, "significant", False):
        lines.append(esc(significance_words(significance, metric, lang, currency)))
    lines.append(_window_line(rule, metric, state, result, lang))
    if not resolved or start is not None:
        lines.append(esc(s(lang, "firing_since", time=local_time(_since(state, start, now), rule, lang, now))))
    if rule.text:
        lines.append(f"_{esc(clip(' '.join(str(rule.text).split()), NOTE_CHARS))}_")
    mention = mention_ref(rule.mention)
    if mention and kind == "fire":
        lines.append(mention)
    blocks: list[dict] = []
    status = _status_line(state, rule, lang, now, start) if kind == "status" else ""
    if status:
        blocks.append(section(status))
    emoji = ":white_check_mark:" if resolved else ":rotating_light:"
    blocks += [header(f"{emoji} {title}"), section("\n".join(lines))]

    alt = chart_alt(result, lang) if result is not None else title
    chart = image(alt_text=alt, file_id=chart_file_id)
    if chart is not None:
        blocks.append(chart)
    elif result is not None and (spark := spark_line(result, lang)):
        blocks.append(section(spark))
    if contributors is not None and contributors.breakdown:
        top = movers(contributors, direction=1 if _up(rule) else -1, limit=CONTRIBUTOR_ROWS)
        table, note = _table(top, lang, currency, s(lang, "top_contributors"))
        blocks.append(section(table))
        if note:
            blocks.append(context(note))
    footer = [s(lang, "rule_n", id=rule_id), esc(condition_words(rule, metric, lang, currency))]
    if rule.interval_minutes:
        footer.append(s(lang, "every", n=rule.interval_minutes))
    blocks.append(context("  ·  ".join(footer)))
    if not resolved:
        blocks.append(alert_buttons(rule_id, state, lang, acknowledged=kind == "status" and bool(state.acknowledged_by)))

    plain = [status, f"{emoji} {esc(title)}{colon(lang)}{esc(value)}",
             esc(_window_label(rule, lang)
                 + (f", {sample_words(sm, metric, lang)}" if (sm := observed_sample(state, result)) is not None else "")),
             mention if kind == "fire" else ""]
    return Message(text=_fallback(plain), blocks=fit(blocks, lang=lang))


def _no_data_reason(rule: RuleSpec, state: AlertState, result: KpiResult | None, lang: str, now: datetime) -> str:
    sample = observed_sample(state, result)
    if rule.min_sample and sample is not None and sample < rule.min_sample:
        loc = babel_locale(lang)
        return s(lang, "sample_low", n=format_decimal(round(sample), locale=loc),
                 min=format_decimal(rule.min_sample, locale=loc))
    if result is not None and result.as_of is not None:
        return esc(s(lang, "stale", time=local_time(result.as_of, rule, lang, now)))
    return s(lang, "no_source")


# -- Explain ---------------------------------------------------------------------------------------


def explain_message(rule: RuleSpec, metric: Metric, breakdowns: list[KpiResult], *, lang: str = "en",
                    currency: str = "USD") -> Message:
    """The ephemeral answer to the Explain button: each breakdown (channel, device, country...) as a table,
    biggest movers first, with the change vs the previous period."""
    lang = lang_of(lang)
    title = rule_title(rule, metric, lang, currency)
    blocks = [header(s(lang, "explain_title", title=title)),
              context(esc(condition_words(rule, metric, lang, currency)), s(lang, "explain_note"))]
    plain = [esc(s(lang, "explain_title", title=title))]
    shown = [b for b in breakdowns if b.breakdown]
    if not shown:
        blocks.append(section(s(lang, "no_breakdown")))
        plain.append(s(lang, "no_breakdown"))
    for result in shown:
        top = movers(result, limit=EXPLAIN_ROWS)
        table, note = _table(top, lang, currency)
        blocks.append(section(table))
        if note:
            blocks.append(context(note))
        plain.append(esc(f"{result.breakdown_by}{colon(lang)}" + ", ".join(
            f"{r.key} {format_value(r.value.value, metric.format, currency=currency, lang=lang)}"
            for r in top.breakdown[:3])))
    return Message(text=_fallback(plain), blocks=fit(blocks, lang=lang))


# -- /kpi alert list -------------------------------------------------------------------------------


def rule_line(rule_id: int, rule: RuleSpec, metric: Metric, state: AlertState | None, *, lang: str = "en", currency: str = "USD",
              now: datetime | None = None) -> str:
    """'🔴 *#3 Return rate* above 8.0% over the last 7 days (…) · channel = email · to <#C1> · 💤 snoozed…'."""
    emoji = STATE_EMOJI.get(state.state, "⚪") if state is not None else "⚪"
    parts = [f"{emoji} *#{rule_id} {esc(metric.name(lang))}* {esc(condition_words(rule, metric, lang, currency))}"]
    if filt := rule_filters(rule, lang):
        parts.append(clip(filt, FILTER_CHARS))
    if rule.channel:
        parts.append(s(lang, "to", channel=channel_ref(str(rule.channel))))
    if state is None:
        parts.append(f"_{s(lang, 'not_evaluated')}_")
    else:
        if _active(getattr(state, "muted_until", None), now):
            parts.append(s(lang, "list_muted", time=local_time(state.muted_until, rule, lang, now)))
        if _active(state.snoozed_until, now):
            parts.append(s(lang, "list_snoozed", time=local_time(state.snoozed_until, rule, lang, now)))
        if state.acknowledged_by and state.state != "ok":
            parts.append(s(lang, "list_ack", user=user_ref(state.acknowledged_by)))
    return "  ·  ".join(parts)


def _list_order(item) -> tuple:
    rule_id, _, _, state = item
    st = state.state if state is not None else "ok"
    return (STATE_ORDER.index(st) if st in STATE_ORDER else len(STATE_ORDER), rule_id)


def rules_list_message(items: list[tuple[int, RuleSpec, Metric, AlertState | None]], *, lang: str = "en",
                       currency: str = "USD", now: datetime | None = None) -> Message:
    """One line per rule, firing ones first; as many as one message holds, then a note with the rest.
    With ``now``, mutes and snoozes that are over are not shown."""
    lang = lang_of(lang)
    if not items:
        return Message(text=s(lang, "no_rules"), blocks=[header(s(lang, "rules_title")), section(s(lang, "no_rules"))])
    title = f"{s(lang, 'rules_title')} ({len(items)})"
    ordered = sorted(items, key=_list_order)
    chunks = [rule_line(i, r, m, st, lang=lang, currency=currency, now=now) for i, r, m, st in ordered]
    texts, shown = pack_sections(chunks, max_blocks=MAX_BLOCKS_MESSAGE - 2, sep="\n")
    blocks = [header(title)] + [section(x) for x in texts]
    plain = [esc(title)] + chunks
    if shown < len(items):
        blocks.append(context(s(lang, "more_rules", n=len(items) - shown)))
    return Message(text=_fallback(plain), blocks=fit(blocks, lang=lang))


# -- /kpi alert test -------------------------------------------------------------------------------


def backtest_episodes(fires: Sequence[datetime], resolves: Sequence[datetime]) -> list[tuple[datetime, datetime | None]]:
    """Each fire with the first resolve after it (None when it would still be firing)."""
    fs = sorted(fires, key=_aware)
    rs = sorted(resolves, key=_aware)
    out = []
    for i, f in enumerate(fs):
        nxt = fs[i + 1] if i + 1 < len(fs) else None
        end = next((r for r in rs if _aware(r) >= _aware(f) and (nxt is None or _aware(r) <= _aware(nxt))), None)
        out.append((f, end))
    return out


def backtest_message(rule_id: int, rule: RuleSpec, metric: Metric, fires: list[datetime], resolves: list[datetime],
                     evaluations: int, *, lang: str = "en", currency: str = "USD", days: int = 90) -> Message:
    """'Over the last 90 days this rule would have fired 4 times: 2 Sep (for 3 h), 14 Oct (for 2 days), …'.
    ``days``: the span replayed (``bot.manage.run_backtest`` replays 90 days, one evaluation a day)."""
    lang = lang_of(lang)
    window = window_words(max(days, 1), lang)
    episodes = backtest_episodes(fires, resolves)
    dates = []
    for start, end in episodes[:BACKTEST_DATES]:
        how = s(lang, "backtest_for", duration=duration_words(_aware(end) - _aware(start), lang)) if end \
            else s(lang, "backtest_open")
        dates.append(f"{local_date(start, rule, lang)} ({how})")
    if len(episodes) > BACKTEST_DATES:
        dates.append(s(lang, "backtest_more", n=len(episodes) - BACKTEST_DATES))
    n = len(episodes)
    if n == 0:
        summary = s(lang, "backtest_none", window=window)
    else:
        key = "backtest_once" if n == 1 else "backtest_n"
        summary = s(lang, key, window=window, n=n, dates=", ".join(dates))
    title = rule_title(rule, metric, lang, currency)
    evals = s(lang, "backtest_evals", n=format_decimal(evaluations, locale=babel_locale(lang)))
    blocks = [header(s(lang, "backtest_title", id=rule_id, title=title)), section(esc(summary))]
    blocks.append(context(esc(condition_words(rule, metric, lang, currency)), evals))
    return Message(text=_fallback([esc(summary), evals]), blocks=fit(blocks, lang=lang))

