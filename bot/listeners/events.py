"""Events: ``app_home_opened`` publishes the Home tab (first contact seeds the example goals only and shows
the onboarding card: nothing is posted, nothing scheduled, until someone picks the digest's channel);
``app_uninstalled`` and ``tokens_revoked`` forget the team's tokens and pause its schedules and rules.

Slack retries an event it thinks was not received (no 200 within 3 s, a connection error: headers
``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``), with the same ``event_id``. Every event here is
processed once: the lazy work first records the ``event_id`` in the state database (``slack_events``,
a unique key), and a later delivery of the same id, whichever web process or worker it reaches, finds it
there and stops. The retry headers alone would not do: a first delivery that never reached the app (a
connection failure) is followed by a retry that must be processed, and two processes can each get a copy.
"""

from __future__ import annotations

import logging

from kpi.state.lifecycle import first_delivery, pause_team

from ..home import build_home
from .deps import Deps

log = logging.getLogger("kpibot.listeners")


def _first_time(body: dict, deps: Deps, team: str | None) -> bool:
    event = body.get("event") or {}
    if first_delivery(deps.services.state(), body.get("event_id"), team_id=team, event_type=event.get("type")):
        return True
    log.info("event %s (%s) already handled: a retry by Slack, ignored", body.get("event_id"), event.get("type"))
    return False


def app_home_opened(event, body, client, context, deps: Deps) -> None:
    if event.get("tab", "home") != "home":
        return
    user = event["user"]
    team = context.get("team_id") or ""
    if not _first_time(body, deps, team):
        return
    lang = deps.lang(client, team, user)
    if team:
        deps.manage.seed(team)
    # an admin's Home also lists the imports that were refused (the inbox's, and the command line's)
    client.views_publish(user_id=user, view=build_home(deps.services, lang, team,
                                                       admin=deps.manage.access.may_change(client, user)))


def _installations(deps: Deps):
    """The installation store (several workspaces only: one workspace keeps its token in the environment)."""
    if not deps.slack.multi_workspace:
        return None
    from ..app import installation_stores

    return installation_stores(deps.services, deps.slack)[0]


def _team(body: dict, context) -> str | None:
    return context.get("team_id") or body.get("team_id")


def app_uninstalled(body, context, deps: Deps) -> None:
    """The workspace removed the app: every token of the team is deleted, its schedules and rules paused."""
    team = _team(body, context)
    if not team or not _first_time(body, deps, team):
        return
    store = _installations(deps)
    if store is not None:
        store.delete_all(enterprise_id=context.get("enterprise_id"), team_id=team)
    deps.forget_team(team)
    paused = pause_team(deps.services.state(), team, "app_uninstalled")
    log.warning("workspace %s uninstalled the app: tokens deleted, %d schedules and rules paused", team, paused)


def tokens_revoked(event, body, context, deps: Deps) -> None:
    """Tokens revoked: user tokens (``tokens.oauth``) are deleted; the bot token (``tokens.bot``) takes
    the team's installation with it and pauses its schedules and rules, as an uninstall does."""
    team = _team(body, context)
    if not team or not _first_time(body, deps, team):
        return
    tokens = event.get("tokens") or {}
    store = _installations(deps)
    enterprise = context.get("enterprise_id")
    if store is not None:
        for user_id in tokens.get("oauth") or []:
            store.delete_installation(enterprise_id=enterprise, team_id=team, user_id=user_id)
    if tokens.get("bot"):
        if store is not None:
            store.delete_all(enterprise_id=enterprise, team_id=team)
        deps.forget_team(team)
        paused = pause_team(deps.services.state(), team, "tokens_revoked")
        log.warning("workspace %s revoked the bot token: tokens deleted, %d schedules and rules paused", team, paused)


__all__ = ["app_home_opened", "app_uninstalled", "tokens_revoked"]
