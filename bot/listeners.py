"""Listeners: a few lines each (ack, who asks, call ``bot.answer`` / ``kpi``, respond).

Every listener that touches the database or Slack runs lazily: Bolt acknowledges first (well inside
Slack's 3 seconds, whatever the database is doing) and runs the work in a thread.
Dependencies reach handlers by closure: Bolt passes arguments by parameter name.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from kpi.alert_eval import rule_request
from kpi.digest import CachingEngine, spec_of
from kpi.engine import KpiRequest
from kpi.errors import KpiError
from kpi.formatting import lang_of
from kpi.goals import GoalError, goal_progress, parse_goal, smart_check
from kpi.periods import default_period
from kpi.services import Services
from kpi.store import Goals

from .answer import Asked, answer, dm_channel, upload_chart
from .blocks import error_message, home_view
from .commands import Commands
from .config import SlackSettings
from .modals import ALERT_CALLBACK, CALLBACK, alert_modal, alert_text, goal_modal, goal_text
from .render.goals import goal_list_message

_FIELDS = ("metric", "target", "filters", "baseline", "start", "deadline", "owner", "channel", "watch")

log = logging.getLogger("kpibot.listeners")


class UserLocales:
    """Slack does not send the user's locale with a command: ``users.info`` says it; cached an hour."""

    def __init__(self, ttl: float = 3600):
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def lang(self, client, team_id: str, user_id: str) -> str:
        key = (team_id, user_id)
        with self._lock:
            hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        try:
            user = client.users_info(user=user_id, include_locale=True)["user"]
            lang = lang_of(user.get("locale"))
        except SlackApiError as exc:
            log.warning("users.info %s failed: %s", user_id, exc.response.get("error"))
            lang = "en"
        with self._lock:
            self._cache[key] = (time.monotonic(), lang)
        return lang


class DirectMessages:
    """The bot's DM channel with each user (``conversations.open`` once per user and process)."""

    def __init__(self):
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def channel(self, client, team_id: str, user_id: str) -> str | None:
        with self._lock:
            hit = self._cache.get((team_id, user_id))
        if hit is None:
            hit = dm_channel(client, user_id)
            if hit:
                with self._lock:
                    self._cache[(team_id, user_id)] = hit
        return hit


def send(response_url: str, body: dict, retry_handlers) -> bool:
    """Post to a response_url with retries; False (and a log line) when Slack refuses it."""
    resp = WebhookClient(response_url, retry_handlers=retry_handlers, timeout=15).send_dict(body)
    if resp.status_code != 200:
        log.warning("response_url answered %s: %s", resp.status_code, (resp.body or "")[:200])
        return False
    return True


def register_listeners(app: App, services: Services, slack: SlackSettings) -> None:
    from .app import retry_handlers

    locales = UserLocales()
    dms = DirectMessages()
    commands = Commands(services, slack)
    retries = retry_handlers()

    def ack_now(ack):
        ack()

    def kpi_command(body, client):
        who = Asked(team_id=body.get("team_id", ""), user_id=body.get("user_id", ""),
                    channel_id=body.get("channel_id", ""))
        who.lang = locales.lang(client, who.team_id, who.user_id)
        text = body.get("text", "") or ""
        if commands.handles(text):
            message = commands.run(text, who, client)
            if message is None:  # `/kpi goal add` or `/kpi alert add` alone: the form
                try:
                    if text.strip().lower().startswith("alert"):
                        view = alert_modal(services.catalog(), lang=who.lang, channel_id=who.channel_id)
                    else:
                        view = goal_modal(services.catalog(), lang=who.lang, today=commands.today().isoformat(),
                                          channel_id=who.channel_id)
                    client.views_open(trigger_id=body["trigger_id"], view=view)
                    return
                except SlackApiError as exc:  # the trigger expired (3 s) or was used: say how to do without
                    log.warning("views.open failed: %s", exc.response.get("error"))
                    message = error_message("The form could not open in time. Try again, or type the goal: "
                                            "/kpi goal add revenue +10% by 2026-12-31", lang=who.lang)
            send(body["response_url"], message.as_response("ephemeral"), retries)
            return
        reply = answer(services, text, who)
        if not send(body["response_url"], reply.message.as_response("ephemeral"), retries) or not reply.has_chart:
            return
        # then the chart: shared in the asker's DM with the bot (a file only they can see), and shown
        # in place of the sparkline
        png = reply.chart()
        dm = png and dms.channel(client, who.team_id, who.user_id)
        file_id = dm and upload_chart(client, dm, png, reply.chart_name, title=reply.result.metric.name(who.lang))
        if file_id:
            send(body["response_url"], reply.with_chart(file_id).as_response("ephemeral", replace_original=True), retries)

    def share(body, client):
        action = body["actions"][0]
        value = json.loads(action.get("value") or "{}")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
        who = Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id=channel,
                    lang=value.get("l", "en"))
        reply = answer(services, value.get("q", ""), who, shared=True)
        message = reply.message
        try:
            posted = client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
            png = reply.chart() if reply.has_chart else None
            if png:
                upload_chart(client, channel, png, reply.chart_name, title=message.text[:80], thread_ts=posted["ts"])
            send(body["response_url"], {"delete_original": True}, retries)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("share in %s: chat.postMessage said %s; sharing through the response_url", channel, error)
            # the bot is not in that channel: the response_url can still post there, without the chart
            if not send(body["response_url"], message.as_response("in_channel"), retries):
                send(body["response_url"], error_message(
                    f"I could not post in this channel ({error}). Invite me with /invite and try again.",
                    lang=who.lang).as_response("ephemeral"), retries)

    def home(event, client, context):
        if event.get("tab", "home") != "home":
            return
        user = event["user"]
        team = context.get("team_id") or ""
        lang = locales.lang(client, team, user)
        if team:
            commands.seed(team)
        client.views_publish(user_id=user, view=build_home(services, lang, team))

    def goal_submitted_ack(ack, body, view, client):
        """Validated in the acknowledgement, so that a problem shows on its field in the open form."""
        user = body["user"]["id"]
        if not commands.access.may_change(client, user):
            ack(response_action="errors", errors={"metric": "Only workspace admins may change goals."})
            return
        try:
            check_goal(view)
        except GoalError as exc:
            ack(response_action="errors", errors={exc.field if exc.field in _FIELDS else "target": str(exc)[:150]})
            return
        except KpiError as exc:
            ack(response_action="errors", errors={"metric": str(exc)[:150]})
            return
        ack()

    def check_goal(view):
        """Parse and check a submitted goal as `/kpi goal add` would (unknown KPI, deadline in the past,
        target equal to the baseline, a relative target without history...); raises GoalError."""
        engine = services.kpi_engine()
        spec = parse_goal(goal_text(view["state"]["values"]), engine.catalog, today=commands.today(),
                          tz=services.settings.tz)
        smart_check(engine, spec, today=commands.today())

    def goal_submitted(body, view, client):
        try:
            check_goal(view)
        except KpiError:
            return  # the acknowledgement showed the problem on its field; nothing to do
        lang = json.loads(view.get("private_metadata") or "{}").get("lang", "en")
        who = Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id="", lang=lang)
        message = commands.run("goal add " + goal_text(view["state"]["values"]), who, client)
        if message is not None:
            client.chat_postMessage(channel=who.user_id, text=message.text, blocks=message.blocks)

    def alert_button(body, client, action):
        """Acknowledge, Snooze or Explain on a firing message. A double click acts once."""
        from datetime import timedelta

        from kpi.alert_store import AlertRules, StateStore
        from kpi.alerts.machine import acknowledge, snooze

        from .alerts import AlertNotifier
        from .render.alerts import explain_message

        team = (body.get("team") or {}).get("id", "")
        user = body["user"]["id"]
        lang = locales.lang(client, team, user)
        rule_id, _, episode = (action.get("value") or "0:0").partition(":")
        rules, states = AlertRules(services.state(), team), StateStore(services.state(), team)

        def tell(text: str) -> None:
            send(body["response_url"], {"response_type": "ephemeral", "replace_original": False, "text": text}, retries)

        try:
            rule = rules.get(int(rule_id))
        except KpiError as exc:
            tell(str(exc))
            return
        now = datetime.now(UTC)
        if action["action_id"] == "alert_explain":
            engine = services.kpi_engine()
            request = rule_request(engine, rule.spec, now)
            dims = [d for d in ("channel", "device", "country") if d in engine.catalog.dimensions_of(engine.catalog.metrics[rule.spec.metric])]
            breakdowns = [engine.ask(KpiRequest(rule.spec.metric, request.period, compare="previous",
                                                filters=rule.spec.filters, breakdown=d, series=False, top=8)) for d in dims]
            msg = explain_message(rule.spec, engine.catalog.metrics[rule.spec.metric], breakdowns, lang=lang,
                                  currency=services.settings.currency)
            send(body["response_url"], {**msg.as_response("ephemeral"), "replace_original": False}, retries)
            return
        for _ in range(3):  # the state is guarded: retry if a worker moved it meanwhile
            stored = states.load(rule.id)
            if str(stored.state.episode) != episode or stored.state.state != "firing":
                tell("This alert episode is over." if lang == "en" else "Cet épisode d'alerte est terminé.")
                return
            if action["action_id"] == "alert_ack":
                if stored.state.acknowledged_by:
                    tell(f"Already acknowledged by <@{stored.state.acknowledged_by}>.")
                    return
                new = acknowledge(stored.state, user, now, episode=int(episode))
            else:
                tz = ZoneInfo(rule.spec.timezone)
                if action["action_id"] == "alert_snooze_1h":
                    until = now + timedelta(hours=1)
                else:
                    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
                    until = datetime.combine(tomorrow, datetime.min.time().replace(hour=9), tzinfo=tz).astimezone(UTC)
                new = snooze(stored.state, until)
            if states.save(stored, new, now=now, reason=action["action_id"]):
                AlertNotifier(services, lambda _team: client).update_status(rule, stored, new, client, lang=lang)
                tell({"alert_ack": "Acknowledged: no more reminders for this episode.",
                      "alert_snooze_1h": "Snoozed for an hour."}.get(action["action_id"], "Snoozed until tomorrow 09:00."))
                return
        tell("The alert is changing right now: try again." if lang == "en" else "L'alerte change en ce moment : réessayez.")

    def alert_submitted_ack(ack, body, view, client):
        from kpi.alerts.rules import RuleError, parse_rule

        if not commands.access.may_change(client, body["user"]["id"]):
            ack(response_action="errors", errors={"metric": "Only workspace admins may change alert rules."})
            return
        try:
            parse_rule(alert_text(view["state"]["values"]), services.catalog(), tz_name=services.settings.timezone)
        except RuleError as exc:
            block = {"window": "window", "clear_threshold": "clear_threshold", "min_sample": "min_sample",
                     "channel": "channel", "condition": "condition", "metric": "metric"}.get(exc.field, "threshold")
            ack(response_action="errors", errors={block: str(exc)[:150]})
            return
        ack()

    def alert_submitted(body, view, client):
        from kpi.alerts.rules import parse_rule

        try:
            parse_rule(alert_text(view["state"]["values"]), services.catalog(), tz_name=services.settings.timezone)
        except KpiError:
            return  # shown on its field by the acknowledgement
        lang = json.loads(view.get("private_metadata") or "{}").get("lang", "en")
        who = Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id="", lang=lang)
        message = commands.run("alert add " + alert_text(view["state"]["values"]), who, client)
        if message is not None:
            client.chat_postMessage(channel=who.user_id, text=message.text, blocks=message.blocks)

    app.view(ALERT_CALLBACK)(ack=alert_submitted_ack, lazy=[alert_submitted])
    app.command("/kpi")(ack=ack_now, lazy=[kpi_command])
    for action_id in ("alert_ack", "alert_snooze_1h", "alert_snooze_tomorrow", "alert_explain"):
        app.action(action_id)(ack=ack_now, lazy=[alert_button])
    app.view(CALLBACK)(ack=goal_submitted_ack, lazy=[goal_submitted])
    app.action("kpi_share")(ack=ack_now, lazy=[share])
    app.event("app_home_opened")(ack=ack_now, lazy=[home])

    @app.error
    def on_error(error, body):
        log.error("unhandled error in a listener: %s (%s)", type(error).__name__, (body or {}).get("type"))


def build_home(services: Services, lang: str, team_id: str = "") -> dict:
    """The Home tab: the headline KPIs over the last 7 days against the 7 before, with their trend; then
    the team's goals with their progress, and its alert rules with their state."""
    try:
        engine = services.kpi_engine()
        period = default_period(now=engine.now(), tz=services.settings.tz)
        headline = [engine.ask(KpiRequest(m.key, period)) for m in engine.catalog.metrics.values() if m.headline]
        sections = []
        if team_id:
            today = engine.now().date()
            cached = CachingEngine(engine)  # goals on the same KPI share its questions, as in the digest
            goals = [(g, engine.catalog.metrics[g.metric], goal_progress(cached, spec_of(g), today=today))
                     for g in Goals(services.state(), team_id).list()]
            sections.append(goal_list_message(goals, lang=lang, currency=services.settings.currency, home_hint=False))
            from kpi.alert_store import AlertRules, StateStore

            from .render.alerts import rules_list_message

            states = StateStore(services.state(), team_id)
            rules = [(r.id, r.spec, engine.catalog.metrics[r.spec.metric], states.load(r.id).state)
                     for r in AlertRules(services.state(), team_id).list()]
            sections.append(rules_list_message(rules, lang=lang, now=engine.now()))
    except Exception:  # noqa: BLE001 - the Home tab says so rather than stay blank
        log.exception("home tab: KPIs unavailable")
        return home_view(headline=[], lang=lang, currency=services.settings.currency,
                         sections=[error_message("", lang=lang, ref="home")])
    return home_view(headline=headline, lang=lang, currency=services.settings.currency, sections=sections)


__all__ = ["register_listeners", "build_home", "send", "UserLocales"]
