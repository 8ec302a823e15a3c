"""Slack settings, from the environment (README, "Slack"). Secrets are never logged: ``repr`` hides them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kpi.errors import KpiError

SLACK_API_DEFAULT = "https://slack.com/api/"
MAX_BODY_BYTES = 1_000_000  # Slack's requests are a few kB; anything bigger is refused with 413 unread
# channels:join: a chart is attached in a public channel the bot was not invited to (conversations.join)
# *:history: before a delivery is posted again, the channel is looked at for the first attempt (bot.delivery);
# channels:read, groups:read: the id of a channel given by name (a rule or schedule set with "#growth")
BOT_SCOPES = ["commands", "chat:write", "chat:write.public", "channels:join", "channels:read", "groups:read",
              "channels:history", "groups:history", "im:history", "mpim:history", "files:write", "im:write", "users:read"]


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
    # Multi-workspace mode: the only teams (T...) or Enterprise Grid orgs (E...) that may install and use the
    # app: KPIBOT_ALLOWED_TEAMS plus ``allowed_teams`` in config/access.yaml. Empty: nobody (refused at start).
    allowed_teams: tuple[str, ...] = ()
    max_body_bytes: int = MAX_BODY_BYTES
    # HTTP mode: where Slack reaches the web process (https://kpi.example.com). Private answers then show
    # their chart from a signed, expiring URL under it (/charts/<token>.png) instead of a file in a DM.
    public_url: str = ""
    # the key of those URLs' signatures; empty: derived from the signing secret
    chart_secret: str = field(default="", repr=False)

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
        allowed = _split(env.get("KPIBOT_ALLOWED_TEAMS") or "") + configured_teams(_config_dir(env), env)
        return cls(
            signing_secret=env.get("SLACK_SIGNING_SECRET", ""), bot_token=env.get("SLACK_BOT_TOKEN", ""),
            client_id=env.get("SLACK_CLIENT_ID", ""), client_secret=env.get("SLACK_CLIENT_SECRET", ""),
            app_token=env.get("SLACK_APP_TOKEN", ""), api_url=api_url, port=port, admins=admins,
            allowed_teams=tuple(dict.fromkeys(allowed)),
            public_url=(env.get("KPIBOT_PUBLIC_URL") or "").strip().rstrip("/"),
            chart_secret=env.get("KPIBOT_CHART_SECRET", ""),
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
        if self.multi_workspace and not self.allowed_teams:
            # an open install is how another workspace came to read the shop's numbers (issue 12)
            raise KpiError("several workspaces (SLACK_CLIENT_ID) but no allow-list: set KPIBOT_ALLOWED_TEAMS=T0123,T0456 "
                           "or list them under allowed_teams in config/access.yaml; no other workspace may install the app")


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _config_dir(env) -> Path:
    """The configuration directory as kpi.settings finds it (KPIBOT_CONFIG, else ./config, else the bundled one)."""
    from kpi.settings import Settings

    try:
        return Path(Settings.from_env(env).config_dir)
    except KpiError:
        return Path(env.get("KPIBOT_CONFIG") or "config")


def configured_teams(config_dir: Path | str, environ=None) -> tuple[str, ...]:
    """The teams the configuration names: ``allowed_teams`` in access.yaml, and the teams given a shop of
    their own in teams.yaml (giving a team a shop is allowing it)."""
    from kpi.shops import load_shops

    return tuple(dict.fromkeys(access_file_teams(config_dir) + tuple(load_shops(config_dir, environ))))


def access_file_teams(config_dir: Path | str) -> tuple[str, ...]:
    """``allowed_teams`` in ``<config_dir>/access.yaml`` (a list of team ids; see the commented example)."""
    path = Path(config_dir) / "access.yaml"
    if not path.exists():
        return ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise KpiError("{path} is not valid YAML: {error}", path=str(path), error=str(exc).splitlines()[0]) from None
    teams = data.get("allowed_teams") if isinstance(data, dict) else None
    if teams is None:
        return ()
    if isinstance(teams, str):
        teams = _split(teams)
    if not isinstance(teams, list | tuple) or not all(isinstance(t, str) and t.strip() for t in teams):
        raise KpiError("{path}: allowed_teams must be a list of team ids such as [T0123ABCD]", path=str(path))
    return tuple(t.strip() for t in teams)
