"""Buttons: Share in channel on an answer; Acknowledge, Snooze and Explain on a firing alert."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from kpi.alerts.evaluation import rule_request
from kpi.alerts.machine import acknowledge, snooze
from kpi.alerts.store import AlertRules, StateStore
from kpi.errors import KpiError
from kpi.i18n import N_, tr
from kpi.metrics.engine import KpiRequest

from ..alerts import AlertNotifier
from ..answer import Asked, answer, upload_chart
from ..blocks import error_message
from ..manage import NOT_CHANGED, NOT_READ
from ..render.alerts import explain_message
from ..render.answer import user_ref
from .deps import Deps
from .replies import NOT_ACKNOWLEDGED, NOT_DONE, NOT_SHARED, NOT_SNOOZED, Replying

log = logging.getLogger("kpibot.listeners")
ALERT_ACTIONS = ("alert_ack", "alert_snooze_1h", "alert_snooze_tomorrow", "alert_explain")
BUTTON_OF = {"alert_ack": "acknowledge", "alert_snooze_1h": "snooze", "alert_snooze_tomorrow": "snooze",
             "alert_explain": "explain"}
BAD_QUESTION_VALUE = N_("This button's value could not be read, so nothing was done. Ask again with /kpi.")
BAD_ALERT_VALUE = N_("This button's value could not be read, so nothing was done. The alert rules are in "
                     "/kpi alert list.")
ELSEWHERE = N_("This button is for the members of the workspace it was posted in: nothing was done.")
REFUSED = {
    "acknowledge": N_("Only workspace admins and the people listed in the bot's configuration may acknowledge "
                      "alerts."),
    "snooze": N_("Only workspace admins and the people listed in the bot's configuration may snooze alerts. "
                 "Anyone may read them: /kpi alert list"),
}


def asked_again(body) -> tuple[str, Asked] | None:
    """The question a button carries ({"q": question, "l": language}) and who clicked, where; None when
    the value is not such an object."""
    try:
        value = json.loads(body["actions"][0].get("value") or "{}")
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("q", ""), str) or not isinstance(value.get("l", "en"), str):
        return None
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    who = Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id=channel,
                lang=value.get("l", "en"))
    return value.get("q", ""), who


def _replying(body, client, deps: Deps, not_done: str, what: str) -> Replying:
    team = (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
    return Replying(deps, client, response_url=body.get("response_url"), team_id=team, user_id=body["user"]["id"],
                    not_done=not_done, what=what)


def share(body, client, deps: Deps) -> None:
    """Post the answer again, with fresh numbers, in the channel; the chart in its thread."""
    with _replying(body, client, deps, NOT_SHARED, "share") as reply:
        asked = asked_again(body)
        if asked is None:
            reply.tell(tr(reply.lang, BAD_QUESTION_VALUE))
            return
        question, who = asked
        reply.lang = who.lang
        channel = who.channel_id
        answered = answer(deps.services, question, who, shared=True)
        message = answered.message
        try:
            posted = client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
            reply.sent = True  # shared: what follows is the chart
            png = answered.chart() if answered.has_chart else None
            if png:
                upload_chart(client, channel, png, answered.chart_name, title=message.text[:80], thread_ts=posted["ts"])
            deps.send(body["response_url"], {"delete_original": True})
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("share in %s: chat.postMessage said %s; sharing through the response_url", channel, error)
            # the bot is not in that channel: the response_url can still post there, without the chart
            if not reply.send(message.as_response("in_channel")):
                deps.send(body["response_url"], error_message(
                    tr(who.lang, "I could not post in this channel ({error}). Invite me with /invite and try again.",
                       error=error), lang=who.lang).as_response("ephemeral"))


def reask(body, client, deps: Deps) -> None:
    """"Did you mean …?": the question read the other way, answered in place of the first answer."""
    with _replying(body, client, deps, NOT_DONE, "reask") as reply:
        asked = asked_again(body)
        if asked is None:
            reply.tell(tr(reply.lang, BAD_QUESTION_VALUE))
            return
        question, who = asked
        reply.lang = who.lang
        answered = answer(deps.services, question, who)
        reply.send(answered.message.as_response("ephemeral", replace_original=True))


def alert_value(value: str | None) -> tuple[int, int] | None:
    """A firing message's button value, "<rule id>:<episode>"; None when it is not that."""
    m = re.fullmatch(r"(\d{1,18}):(\d{1,18})", value or "")
    return (int(m[1]), int(m[2])) if m else None


def alert_button(body, client, action, deps: Deps) -> None:
    """Acknowledge, Snooze or Explain on a firing message, by whom ``config/access.yaml`` allows (by default
    anyone may acknowledge and explain, admins snooze, as ``/kpi alert mute``), checked in the workspace
    the message was posted in: a user of another workspace changes nothing. A double click acts once."""
    team = (body.get("team") or {}).get("id", "")
    user = body["user"]["id"]
    action_id = action["action_id"]
    button = BUTTON_OF[action_id]
    not_done = {"acknowledge": NOT_ACKNOWLEDGED, "snooze": NOT_SNOOZED}.get(button, NOT_READ)
    with _replying(body, client, deps, not_done, action_id) as reply:
        lang = reply.lang
        parsed = alert_value(action.get("value"))
        if parsed is None:
            reply.tell(tr(lang, BAD_ALERT_VALUE))
            return
        if body["user"].get("team_id", team) != team:  # the clicker's workspace is not the message's
            reply.tell(tr(lang, ELSEWHERE))
            return
        verdict = deps.manage.access.may_press(client, team, user, button)
        if verdict != "yes":
            refusal = ELSEWHERE if verdict == "elsewhere" else REFUSED[button]
            reply.tell(tr(lang, refusal))
            return
        press(body, client, deps, reply, action_id, parsed)


def press(body, client, deps: Deps, reply: Replying, action_id: str, parsed: tuple[int, int]) -> None:
    """The allowed press: the rule's state moved (guarded: retried if a worker moved it meanwhile), or explained."""
    team, user, lang = reply.team_id, reply.user_id, reply.lang
    services = deps.services.for_team(team)
    rule_id, episode = parsed
    rules, states = AlertRules(services.state(), team), StateStore(services.state(), team)
    try:
        rule = rules.get(rule_id)
    except KpiError as exc:
        reply.tell(exc.localized(lang))
        return
    now = datetime.now(UTC)
    if action_id == "alert_explain":
        explain(body, deps, rule, lang, now, reply)
        return
    for _ in range(3):  # the state is guarded: retry if a worker moved it meanwhile
        stored = states.load(rule.id)
        if stored.state.episode != episode or stored.state.state != "firing":
            reply.tell(tr(lang, "This alert episode is over."))
            return
        if action_id == "alert_ack":
            if stored.state.acknowledged_by:
                reply.tell(tr(lang, "Already acknowledged by {user}.", user=user_ref(stored.state.acknowledged_by)))
                return
            new = acknowledge(stored.state, user, now, episode=episode)
        else:
            new = snooze(stored.state, snooze_until(action_id, now, ZoneInfo(rule.spec.timezone)))
        if states.save(stored, new, now=now, reason=action_id):
            reply.sent = True  # saved: a failing status update below does not undo it
            try:
                AlertNotifier(services, lambda _team: client).update_status(rule, stored, new, client, lang=lang)
            finally:
                reply.tell({"alert_ack": tr(lang, "Acknowledged: no more reminders for this episode."),
                            "alert_snooze_1h": tr(lang, "Snoozed for an hour.")}.get(action_id)
                           or tr(lang, "Snoozed until tomorrow 09:00."))
            return
    reply.tell(tr(lang, "The alert is changing right now: try again."))


def snooze_until(action_id: str, now: datetime, tz: ZoneInfo) -> datetime:
    """An hour from now, or tomorrow 09:00 in the rule's time zone."""
    if action_id == "alert_snooze_1h":
        return now + timedelta(hours=1)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, datetime.min.time().replace(hour=9), tzinfo=tz).astimezone(UTC)


def explain(body, deps: Deps, rule, lang: str, now: datetime, reply: Replying) -> None:
    """The rule's KPI broken down by every dimension it has, biggest movers first (ephemeral)."""
    services = deps.services.for_team(rule.team_id)  # the team's shop (config/teams.yaml)
    engine = services.kpi_engine()
    request = rule_request(engine, rule.spec, now)
    metric = engine.catalog.metrics[rule.spec.metric]
    dims = [d for d in ("channel", "device", "country") if d in engine.catalog.dimensions_of(metric)]
    breakdowns = [engine.ask(KpiRequest(rule.spec.metric, request.period, compare="previous", filters=rule.spec.filters,
                                        breakdown=d, series=False, top=8)) for d in dims]
    msg = explain_message(rule.spec, metric, breakdowns, lang=lang, currency=services.settings.currency)
    reply.send({**msg.as_response("ephemeral"), "replace_original": False})


# -- the App Home's onboarding card (issue 12): the digest's channel, the default alert rules -----------


def _home_clicker(body, context) -> tuple[str, str]:
    team = context.get("team_id") or (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
    return team, body["user"]["id"]


ONBOARDING_REFUSED = N_("Only workspace admins and the people listed in the bot's configuration may set up "
                        "digests and alerts.")


def _onboard(body, client, context, deps: Deps, create, *args) -> None:
    """Check the clicker may change the team's setup, ``create(deps, team, user, *args)``, then publish the
    Home again (the card shows what is left, or is gone)."""
    from ..home import build_home

    team, user = _home_clicker(body, context)
    with Replying(deps, client, response_url=body.get("response_url"), team_id=team, user_id=user,
                  not_done=NOT_CHANGED, what="onboarding") as reply:
        lang = reply.lang
        notice = ""
        admin = deps.manage.access.may_change(client, user)
        if admin:
            deps.manage.seed(team)  # the team row, if the card was reached some other way
            create(deps, team, user, *args)
            reply.sent = True  # done: a Home that fails to publish now does not undo it
        else:
            notice = tr(lang, ONBOARDING_REFUSED)
        client.views_publish(user_id=user, view=build_home(deps.services, lang, team, notice=notice, admin=admin))
        reply.sent = True


def _create_digest(deps: Deps, team: str, user: str, channel: str) -> None:
    from kpi.seed import create_default_digest

    settings = deps.services.for_team(team).settings
    create_default_digest(deps.services.state(), team, channel, config_dir=settings.config_dir,
                          shop_tz=settings.timezone, created_by=user)


def _create_alerts(deps: Deps, team: str, user: str) -> None:
    from kpi.seed import enable_default_alerts, onboarding

    settings = deps.services.for_team(team).settings
    enable_default_alerts(deps.services.state(), team, config_dir=settings.config_dir, catalog=deps.services.catalog(),
                          shop_tz=settings.timezone, channel=onboarding(deps.services.state(), team).digest_channel,
                          created_by=user)


def onboarding_digest(body, client, context, deps: Deps) -> None:
    """A channel picked on the onboarding card: the team's first digest goes there (once)."""
    action = body["actions"][0]
    channel = action.get("selected_conversation") or action.get("selected_channel")
    if channel:
        _onboard(body, client, context, deps, _create_digest, channel)


def onboarding_alerts(body, client, context, deps: Deps) -> None:
    """The onboarding card's button: the default alert rules, in the digest's channel when there is one."""
    _onboard(body, client, context, deps, _create_alerts)


# -- every goal reachable (issue 12): the goal list's pager, the digest's "All goals" ------------------


def goals_page(body, client, context, deps: Deps) -> None:
    """A page of the team's goals: in the Home tab, the Home republished with it; under a message (the
    ``/kpi goal list`` reply: replaced; a digest: a new ephemeral message for the clicker)."""
    from ..home import build_home, goal_items
    from ..render.goals import goal_list_message

    team, user = _home_clicker(body, context)
    with Replying(deps, client, response_url=body.get("response_url"), team_id=team, user_id=user,
                  not_done=NOT_READ, what="goals page") as reply:
        lang = reply.lang
        try:
            offset = max(int(body["actions"][0].get("value") or 0), 0)
        except ValueError:
            offset = 0
        container = body.get("container") or {}
        if container.get("type") == "view":
            client.views_publish(user_id=user, view=build_home(deps.services, lang, team, goals_offset=offset,
                                                               admin=deps.manage.access.may_change(client, user)))
            reply.sent = True
            return
        msg = goal_list_message(goal_items(deps.services, team), lang=lang,
                                currency=deps.services.for_team(team).settings.currency, offset=offset)
        reply.send(msg.as_response("ephemeral", replace_original=bool(container.get("is_ephemeral"))))


__all__ = ["ALERT_ACTIONS", "alert_button", "goals_page", "onboarding_alerts", "onboarding_digest", "reask", "share"]
