"""Listeners, grouped by kind as in Bolt's starter template; each is a small module-level function
(parse, call ``kpi``, render, respond) that receives what it needs by parameter name, ``deps`` included.

commands    ``/kpi``: questions and goal/digest/alert management
actions     buttons: Share in channel, Did you mean; Acknowledge, Snooze, Explain on alerts; the Home's
            onboarding card (the digest's channel, the default alerts); the goal list's pager
views       modal submissions: the goal and alert-rule forms
events      ``app_home_opened``: the Home tab; ``app_uninstalled``, ``tokens_revoked``: tokens deleted, team paused

Every listener that touches the database or Slack runs lazily: Bolt acknowledges first (well inside
Slack's 3 seconds, whatever the database is doing) and runs the work in a thread.
"""

from __future__ import annotations

import logging

from slack_bolt import App

from ..modals import ALERT_CALLBACK, CALLBACK
from ..render.goals import GOALS_PAGE
from ..render.home import ONBOARDING_ALERTS, ONBOARDING_DIGEST
from . import actions, commands, events, views
from .deps import Deps

log = logging.getLogger("kpibot.listeners")


def register(app: App, deps: Deps) -> None:
    """Every listener of the app, in one place."""
    app.use(deps.inject)
    app.command("/kpi")(ack=commands.ack_now, lazy=[commands.kpi_command])
    app.action("kpi_share")(ack=commands.ack_now, lazy=[actions.share])
    app.action("kpi_reask")(ack=commands.ack_now, lazy=[actions.reask])
    for action_id in actions.ALERT_ACTIONS:
        app.action(action_id)(ack=commands.ack_now, lazy=[actions.alert_button])
    app.action(ONBOARDING_DIGEST)(ack=commands.ack_now, lazy=[actions.onboarding_digest])
    app.action(ONBOARDING_ALERTS)(ack=commands.ack_now, lazy=[actions.onboarding_alerts])
    app.action(GOALS_PAGE)(ack=commands.ack_now, lazy=[actions.goals_page])
    app.view(CALLBACK)(ack=views.goal_submitted_ack, lazy=[views.goal_submitted])
    app.view(ALERT_CALLBACK)(ack=views.alert_submitted_ack, lazy=[views.alert_submitted])
    app.event("app_home_opened")(ack=commands.ack_now, lazy=[events.app_home_opened])
    app.event("app_uninstalled")(ack=commands.ack_now, lazy=[events.app_uninstalled])
    app.event("tokens_revoked")(ack=commands.ack_now, lazy=[events.tokens_revoked])
    app.error(on_error)


def on_error(error, body) -> None:
    log.error("unhandled error in a listener: %s (%s)", type(error).__name__, (body or {}).get("type"))


__all__ = ["Deps", "register"]
