"""Events: ``app_home_opened`` publishes the Home tab (seeding the team's defaults on first contact)."""

from __future__ import annotations

from ..home import build_home
from .deps import Deps


def app_home_opened(event, client, context, deps: Deps) -> None:
    if event.get("tab", "home") != "home":
        return
    user = event["user"]
    team = context.get("team_id") or ""
    lang = deps.lang(client, team, user)
    if team:
        deps.manage.seed(team)
    client.views_publish(user_id=user, view=build_home(deps.services, lang, team))


__all__ = ["app_home_opened"]
