"""``/kpi``: a question, or ``goal``/``digest``/``alert`` management. Acknowledged at once
(``ack_now``); the work runs lazily, in a thread, and answers through the ``response_url``."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from kpi.i18n import tr

from ..answer import Asked, answer, upload_chart
from ..blocks import error_message
from ..manage import ALERT_WORDS
from ..markup import from_slack
from ..modals import alert_modal, goal_modal
from .deps import Deps

log = logging.getLogger("kpibot.listeners")


def ack_now(ack) -> None:
    ack()


def kpi_command(body, client, deps: Deps) -> None:
    who = Asked(team_id=body.get("team_id", ""), user_id=body.get("user_id", ""), channel_id=body.get("channel_id", ""))
    who.lang = deps.lang(client, who.team_id, who.user_id)
    text = from_slack(body.get("text", "") or "")  # Slack's markup and escaping read once, here
    if deps.manage.handles(text):
        manage(body, client, deps, who, text)
        return
    reply = answer(deps.services, text, who)
    if not deps.send(body["response_url"], reply.message.as_response("ephemeral")) or not reply.has_chart:
        return
    # then the chart: shared in the asker's DM with the bot (a file only they can see), and shown in
    # place of the sparkline
    png = reply.chart()
    dm = png and deps.dms.channel(client, who.team_id, who.user_id)
    file_id = dm and upload_chart(client, dm, png, reply.chart_name, title=reply.result.metric.name(who.lang))
    if file_id:
        deps.send(body["response_url"], reply.with_chart(file_id).as_response("ephemeral", replace_original=True))


def manage(body, client, deps: Deps, who: Asked, text: str) -> None:
    """``/kpi goal|digest|alert ...``: the reply, or the form when ``add`` comes alone."""
    message = deps.manage.run(text, who, client)
    if message is None:
        try:
            if text.strip().split(" ", 1)[0].lower() in ALERT_WORDS:
                view = alert_modal(deps.services.catalog(), lang=who.lang, channel_id=who.channel_id)
            else:
                view = goal_modal(deps.services.catalog(), lang=who.lang, today=deps.manage.today().isoformat(),
                                  channel_id=who.channel_id)
            client.views_open(trigger_id=body["trigger_id"], view=view)
            return
        except SlackApiError as exc:  # the trigger expired (3 s) or was used: say how to do without
            log.warning("views.open failed: %s", exc.response.get("error"))
            message = error_message(tr(who.lang, "The form could not open in time. Try again, or type the goal: "
                                                 "/kpi goal add revenue +10% by 2026-12-31"), lang=who.lang)
    deps.send(body["response_url"], message.as_response("ephemeral"))


__all__ = ["ack_now", "kpi_command"]
