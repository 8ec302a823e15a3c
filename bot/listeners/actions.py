"""Buttons: Share in channel on an answer; Acknowledge, Snooze and Explain on a firing alert."""

from __future__ import annotations

import json
import logging
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
from ..render.alerts import explain_message
from ..render.answer import user_ref
from .deps import Deps

log = logging.getLogger("kpibot.listeners")
ALERT_ACTIONS = ("alert_ack", "alert_snooze_1h", "alert_snooze_tomorrow", "alert_explain")


def asked_again(body) -> tuple[str, Asked]:
    """The question a button carries ({"q": question, "l": language}) and who clicked, where."""
    value = json.loads(body["actions"][0].get("value") or "{}")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    who = Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id=channel,
                lang=value.get("l", "en"))
    return value.get("q", ""), who


def share(body, client, deps: Deps) -> None:
    """Post the answer again, with fresh numbers, in the channel; the chart in its thread."""
    question, who = asked_again(body)
    channel = who.channel_id
    reply = answer(deps.services, question, who, shared=True)
    message = reply.message
    try:
        posted = client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
        png = reply.chart() if reply.has_chart else None
        if png:
            upload_chart(client, channel, png, reply.chart_name, title=message.text[:80], thread_ts=posted["ts"])
        deps.send(body["response_url"], {"delete_original": True})
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.info("share in %s: chat.postMessage said %s; sharing through the response_url", channel, error)
        # the bot is not in that channel: the response_url can still post there, without the chart
        if not deps.send(body["response_url"], message.as_response("in_channel")):
            deps.send(body["response_url"], error_message(
                tr(who.lang, "I could not post in this channel ({error}). Invite me with /invite and try again.",
                   error=error), lang=who.lang).as_response("ephemeral"))


def reask(body, client, deps: Deps) -> None:
    """"Did you mean …?": the question read the other way, answered in place of the first answer."""
    question, who = asked_again(body)
    reply = answer(deps.services, question, who)
    deps.send(body["response_url"], reply.message.as_response("ephemeral", replace_original=True))


def alert_button(body, client, action, deps: Deps) -> None:
    """Acknowledge, Snooze or Explain on a firing message. A double click acts once."""
    team = (body.get("team") or {}).get("id", "")
    services = deps.services.for_team(team)
    user = body["user"]["id"]
    lang = deps.lang(client, team, user)
    rule_id, _, episode = (action.get("value") or "0:0").partition(":")
    rules, states = AlertRules(services.state(), team), StateStore(services.state(), team)

    def tell(text: str) -> None:
        deps.send(body["response_url"], {"response_type": "ephemeral", "replace_original": False, "text": text})

    try:
        rule = rules.get(int(rule_id))
    except KpiError as exc:
        tell(exc.localized(lang))
        return
    now = datetime.now(UTC)
    if action["action_id"] == "alert_explain":
        explain(body, deps, rule, lang, now)
        return
    for _ in range(3):  # the state is guarded: retry if a worker moved it meanwhile
        stored = states.load(rule.id)
        if str(stored.state.episode) != episode or stored.state.state != "firing":
            tell(tr(lang, "This alert episode is over."))
            return
        if action["action_id"] == "alert_ack":
            if stored.state.acknowledged_by:
                tell(tr(lang, "Already acknowledged by {user}.", user=user_ref(stored.state.acknowledged_by)))
                return
            new = acknowledge(stored.state, user, now, episode=int(episode))
        else:
            new = snooze(stored.state, snooze_until(action["action_id"], now, ZoneInfo(rule.spec.timezone)))
        if states.save(stored, new, now=now, reason=action["action_id"]):
            AlertNotifier(services, lambda _team: client).update_status(rule, stored, new, client, lang=lang)
            tell({"alert_ack": tr(lang, "Acknowledged: no more reminders for this episode."),
                  "alert_snooze_1h": tr(lang, "Snoozed for an hour.")}.get(action["action_id"])
                 or tr(lang, "Snoozed until tomorrow 09:00."))
            return
    tell(tr(lang, "The alert is changing right now: try again."))


def snooze_until(action_id: str, now: datetime, tz: ZoneInfo) -> datetime:
    """An hour from now, or tomorrow 09:00 in the rule's time zone."""
    if action_id == "alert_snooze_1h":
        return now + timedelta(hours=1)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, datetime.min.time().replace(hour=9), tzinfo=tz).astimezone(UTC)


def explain(body, deps: Deps, rule, lang: str, now: datetime) -> None:
    """The rule's KPI broken down by every dimension it has, biggest movers first (ephemeral)."""
    services = deps.services.for_team(rule.team_id)  # the team's shop (config/teams.yaml)
    engine = services.kpi_engine()
    request = rule_request(engine, rule.spec, now)
    metric = engine.catalog.metrics[rule.spec.metric]
    dims = [d for d in ("channel", "device", "country") if d in engine.catalog.dimensions_of(metric)]
    breakdowns = [engine.ask(KpiRequest(rule.spec.metric, request.period, compare="previous", filters=rule.spec.filters,
                                        breakdown=d, series=False, top=8)) for d in dims]
    msg = explain_message(rule.spec, metric, breakdowns, lang=lang, currency=services.settings.currency)
    deps.send(body["response_url"], {**msg.as_response("ephemeral"), "replace_original": False})


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
    lang = deps.lang(client, team, user)
    notice = ""
    if deps.manage.access.may_change(client, user):
        deps.manage.seed(team)  # the team row, if the card was reached some other way
        create(deps, team, user, *args)
    else:
        notice = tr(lang, ONBOARDING_REFUSED)
    client.views_publish(user_id=user, view=build_home(deps.services, lang, team, notice=notice))


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
    lang = deps.lang(client, team, user)
    try:
        offset = max(int(body["actions"][0].get("value") or 0), 0)
    except ValueError:
        offset = 0
    container = body.get("container") or {}
    if container.get("type") == "view":
        client.views_publish(user_id=user, view=build_home(deps.services, lang, team, goals_offset=offset))
        return
    msg = goal_list_message(goal_items(deps.services, team), lang=lang, currency=deps.services.for_team(team).settings.currency,
                            offset=offset)
    deps.send(body["response_url"], msg.as_response("ephemeral", replace_original=bool(container.get("is_ephemeral"))))


__all__ = ["ALERT_ACTIONS", "alert_button", "goals_page", "onboarding_alerts", "onboarding_digest", "reask", "share"]
