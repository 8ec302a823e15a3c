"""Which workspace, and a Web API client with its bot token.

Single-workspace mode: the bot token's team (``auth.test``, asked once). Multi-workspace mode: each
team's installation from the state database; the command line must then say ``--team T...``.
"""

from __future__ import annotations

import threading

from slack_sdk import WebClient

from kpi.errors import KpiError
from kpi.services import Services

from .config import SlackSettings


class TeamClients:
    def __init__(self, services: Services, slack: SlackSettings):
        self.services = services
        self.slack = slack
        self._clients: dict[str, WebClient] = {}
        self._lock = threading.Lock()
        self._own_team: str | None = None

    def own_team(self) -> str:
        """The bot token's team (single-workspace mode)."""
        if self._own_team is None:
            from .app import web_client

            if not self.slack.bot_token:
                raise KpiError("SLACK_BOT_TOKEN is not set: say which workspace with --team T... "
                               "(several workspaces) or set the bot token (one workspace)")
            self._own_team = web_client(self.slack, self.slack.bot_token).auth_test()["team_id"]
        return self._own_team

    def team(self, requested: str | None) -> str:
        if requested:
            return requested
        if self.slack.multi_workspace:
            raise KpiError("several workspaces are installed (SLACK_CLIENT_ID): say which one with --team T...")
        return self.own_team()

    def __call__(self, team_id: str) -> WebClient:
        from .app import installation_stores, web_client

        with self._lock:
            client = self._clients.get(team_id)
        if client is not None:
            return client
        if self.slack.multi_workspace:
            installations, _ = installation_stores(self.services, self.slack)
            bot = installations.find_bot(enterprise_id=None, team_id=team_id)
            if bot is None:
                raise KpiError("workspace {team} has not installed the app", team=team_id)
            client = web_client(self.slack, bot.bot_token)
        else:
            client = web_client(self.slack, self.slack.bot_token)
        with self._lock:
            self._clients[team_id] = client
        return client
