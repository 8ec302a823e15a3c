"""``/kpi``: a question, or ``goal``/``digest``/``alert`` management. Acknowledged at once
(``ack_now``); the work runs lazily, in a thread, and answers through the ``response_url``."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from kpi.i18n import tr

from ..answer import Asked, answer, publish_private_chart
from ..blocks import error_message
from ..manage import ADD, ALERT_WORDS, GOAL_WORDS, not_done
from ..markup import from_slack
from ..modals import alert_modal, goal_modal
from .deps import Deps
from .replies import NOT_DONE, Replying

log = logging.getLogger("kpibot.listeners")


def ack_now(ack) -> None:
    ack()


def kpi_command(body, client, deps: Deps) -> None:
    """Whatever happens after the acknowledgement, the user gets one reply (``Replying``): the answer, or
    what was not done and a reference."""
    text = from_slack(body.get("text", "") or "")  # Slack's markup and escaping read once, here
    who = Asked(team_id=body.get("team_id", ""), user_id=body.get("user_id", ""), channel_id=body.get("channel_id", ""))
    with Replying(deps, client, response_url=body.get("response_url"), team_id=who.team_id, user_id=who.user_id,
                  not_done=not_done(text) if deps.manage.handles(text) else NOT_DONE, what="/kpi") as reply:
        if form_asked(text):  # the trigger_id lives 3 s: views.open before any other call or write
            open_form(body, client, deps, who, text, reply)
            return
        who.lang = reply.lang = deps.lang(client, who.team_id, who.user_id)
        if deps.manage.handles(text):
            manage(body, client, deps, who, text, reply)
            return
        answered = answer(deps.services, text, who)
        if not reply.send(answered.message.as_response("ephemeral")) or not answered.has_chart:
            return
        # then the chart, in place of the sparkline: at a signed URL of the web process (KPIBOT_PUBLIC_URL),
        # else uploaded to the asker's DM and referenced once ready (bot/answer.py)
        publish_private_chart(client, deps, who, answered, body["response_url"])


def form_asked(text: str) -> bool:
    """``goal add`` or ``alert add`` alone (in any of the languages read): the form, not a reply."""
    words = text.strip().lower().split()
    return len(words) == 2 and words[0] in GOAL_WORDS + ALERT_WORDS and words[1] in ADD


def _known_lang(deps: Deps, team_id: str, user_id: str) -> str | None:
    """The user's language if this process already asked Slack (no call: the form cannot wait for one)."""
    cache = getattr(deps.locales, "_cache", {})
    hit = cache.get((team_id, user_id))
    return hit[1] if hit else None


def _form(deps: Deps, who: Asked, text: str) -> dict:
    if text.strip().split(" ", 1)[0].lower() in ALERT_WORDS:
        return alert_modal(deps.services.catalog(), lang=who.lang, channel_id=who.channel_id)
    return goal_modal(deps.services.catalog(), lang=who.lang, today=deps.manage.today(who.team_id).isoformat(),
                      channel_id=who.channel_id)


def open_form(body, client, deps: Deps, who: Asked, text: str, reply: Replying) -> None:
    """``/kpi goal add`` alone: ``views.open`` first (in the language known without asking, else English),
    then who may change goals, and the user's language: the form is replaced by a refusal, or redrawn
    in their language, by ``views.update``. Once the form is open, it is the reply."""
    known = _known_lang(deps, who.team_id, who.user_id)
    who.lang = known or "en"
    try:
        opened = client.views_open(trigger_id=body["trigger_id"], view=_form(deps, who, text))["view"]
    except SlackApiError as exc:  # the trigger expired (3 s) or was used: say how to do without
        log.warning("views.open failed: %s", exc.response.get("error"))
        who.lang = reply.lang = deps.lang(client, who.team_id, who.user_id)
        reply.send(error_message(
            tr(who.lang, "The form could not open in time. Try again, or type the goal: "
                         "/kpi goal add revenue +10% by 2026-12-31"),
            lang=who.lang).as_response("ephemeral"))
        return
    reply.sent = True  # the form is on the user's screen
    who.lang = deps.lang(client, who.team_id, who.user_id)
    try:
        if not deps.manage.access.may_change(client, who.user_id):
            refusal = (tr(who.lang, "Only workspace admins and the people listed in the bot's configuration may "
                                    "change alert rules.") if text.strip().split(" ", 1)[0].lower() in ALERT_WORDS
                       else tr(who.lang, "Only workspace admins and the people listed in the bot's configuration may "
                                         "change goals. Anyone may read them: /kpi goal list"))
            client.views_update(view_id=opened["id"], hash=opened.get("hash"), view={
                "type": "modal", "title": opened["title"], "close": opened.get("close") or opened["title"],
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ":no_entry: " + refusal}}]})
        elif who.lang != (known or "en"):
            client.views_update(view_id=opened["id"], hash=opened.get("hash"), view=_form(deps, who, text))
    except SlackApiError as exc:  # closed meanwhile, or the user already changed it (hash_conflict)
        log.info("views.update after open: %s", exc.response.get("error"))


def manage(body, client, deps: Deps, who: Asked, text: str, reply: Replying) -> None:
    """``/kpi goal|digest|alert ...``: the reply (``add`` alone opened the form before: ``open_form``)."""
    message = deps.manage.run(text, who, client)
    if message is None:  # a form asked in words form_asked does not know: open it now
        open_form(body, client, deps, who, text, reply)
        return
    reply.send(message.as_response("ephemeral"))


__all__ = ["ack_now", "kpi_command"]
