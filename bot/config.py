"""Slack settings, from the environment (README, "Slack"). Secrets are never logged: ``repr`` hides them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kpi.errors import KpiError

SLACK_API_DEFAULT = "https://slack.com/api/"
BOT_SCOPES = ["commands", "chat:write", "chat:write.public", "files:write", "im:write", "users:read"]


@dataclass(frozen=True, kw_only=True)
class SlackSettings:
    signing_secret: str = field(default="", repr=False)
    bot_token: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    api_url: str = SLACK_API_DEFAULT
    port: int = 3000
    admins: tuple[str, ...] = ()  # Slack user ids allowed to change goals, rules and schedules besides admins

    @property
    def multi_workspace(self) -> bool:
        return bool(self.client_id and self.client_secret) and not self.bot_token

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SlackSettings:
        env = os.environ if environ is None else environ
        api_url = env.get("SLACK_API_URL") or SLACK_API_DEFAULT
        if not api_url.endswith("/"):
            api_url += "/"  # slack_sdk joins URLs: the base must end with a slash
        try:
            port = int(env.get("PORT") or 3000)
        except ValueError:
            raise KpiError("PORT={port} is not a port number", port=repr(env.get("PORT"))) from None
        admins = tuple(a.strip() for a in (env.get("KPIBOT_ADMINS") or "").split(",") if a.strip())
        return cls(
            signing_secret=env.get("SLACK_SIGNING_SECRET", ""), bot_token=env.get("SLACK_BOT_TOKEN", ""),
            client_id=env.get("SLACK_CLIENT_ID", ""), client_secret=env.get("SLACK_CLIENT_SECRET", ""),
            app_token=env.get("SLACK_APP_TOKEN", ""), api_url=api_url, port=port, admins=admins,
        )

    def check(self, *, socket_mode: bool = False) -> None:
        """Say in one line what is missing, before anything starts."""
        if socket_mode:
            if not self.app_token:
                raise KpiError("Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-..., with connections:write)")
            if not self.bot_token:
                raise KpiError("Socket Mode needs SLACK_BOT_TOKEN (xoxb-...)")
            return
        if not self.signing_secret:
            raise KpiError("SLACK_SIGNING_SECRET is not set (Slack app > Basic Information > Signing Secret)")
        if not self.bot_token and not (self.client_id and self.client_secret):
            raise KpiError("set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth, several workspaces)")
