"""Which workspace, and a Web API client with its bot token; which workspaces this deployment serves.

Single-workspace mode: the bot token's team (``auth.test``, asked once). Multi-workspace mode: each
team's installation from the state database; the command line must then say ``--team T...``.

Tenancy (issue 12): the shop's numbers go only to the workspaces configured to see them.
``TeamGate`` runs before Bolt's authorization and any listener: in single-workspace mode it lets through
only the bot token's team, in multi-workspace mode only the allow-list (``KPIBOT_ALLOWED_TEAMS``,
``allowed_teams`` in config/access.yaml), whatever the installation table says. ``AllowListOAuthFlow``
refuses to store an installation from any other team and shows a page saying why.
``CachedInstallationAuthorize`` caches each team's installation and ``auth.test`` and asks ``auth.test``
with a client that never sleeps on a 429 before the acknowledgement.
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.error import BoltError
from slack_bolt.middleware import Middleware
from slack_bolt.middleware.authorization.single_team_authorization import SingleTeamAuthorization
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import FailureArgs
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation

from kpi.errors import KpiError
from kpi.i18n import N_, tr
from kpi.services import Services

from .config import SlackSettings, configured_teams

log = logging.getLogger("kpibot.teams")

REFUSED_HERE = N_("This app serves another workspace: it does not answer here, and nothing was done.")
REFUSED_INSTALL_TITLE = N_("Installation refused")
REFUSED_INSTALL = N_("This app serves only the workspaces it was set up for, and {team} is not one of them: "
                     "nothing was installed. If this workspace should use it, ask the app's operator to add "
                     "{team} to its allow-list (KPIBOT_ALLOWED_TEAMS or config/access.yaml), then install again.")


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


class TeamGate(Middleware):
    """Bolt middleware (``App(before_authorize=...)``): a request from a team this deployment does not
    serve is answered here, before authorization, before any listener, and nothing is read or seeded.
    A slash command gets an ephemeral refusal; anything else an empty 200 (Slack then does not retry)."""

    def __init__(self, slack: SlackSettings, *, config_dir, lang: str = "en"):
        self.multi = slack.multi_workspace
        self.allowed = frozenset(slack.allowed_teams) | frozenset(configured_teams(config_dir))
        self.lang = lang
        self.own_team: Callable[[], str] | None = None  # single-workspace mode: set by ``bind``
        self._own: str | None = None

    def bind(self, app, fallback: Callable[[], str]) -> None:
        """Single-workspace mode: the bot token's team, from the ``auth.test`` Bolt made at start when it
        did (no second call), else ``fallback`` (TeamClients.own_team: one ``auth.test``, cached)."""
        def own() -> str:
            if self._own is None:
                for m in app._middleware_list:  # noqa: SLF001 - Bolt keeps its auth.test result there
                    result = getattr(m, "auth_test_result", None) if isinstance(m, SingleTeamAuthorization) else None
                    if result and result.get("team_id"):
                        self._own = result["team_id"]
                if self._own is None:
                    self._own = fallback()
            return self._own
        self.own_team = own

    def allows(self, team_id: str | None, enterprise_id: str | None = None) -> bool:
        if self.multi:
            return bool(team_id and team_id in self.allowed) or bool(enterprise_id and enterprise_id in self.allowed)
        if not team_id or self.own_team is None:
            return False
        return team_id == self.own_team()

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002
        body = req.body or {}
        if body.get("type") in ("url_verification", "ssl_check") or body.get("ssl_check"):
            return next()
        team, enterprise = req.context.team_id, req.context.enterprise_id
        try:
            allowed = self.allows(team, enterprise)
        except Exception as exc:  # noqa: BLE001 - cannot tell whose request it is: refuse, never serve blindly
            log.warning("could not check the team of a request (%s): refused", type(exc).__name__)
            allowed = False
        if allowed:
            return next()
        log.warning("refused a request from team %s (%s): this deployment does not serve it",
                    team or enterprise or "?", body.get("command") or body.get("type") or "request")
        if body.get("command"):
            return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral",
                                                            "text": tr(self.lang, REFUSED_HERE)}),
                                headers={"content-type": ["application/json;charset=utf-8"]})
        return BoltResponse(status=200, body="")


class TeamNotAllowed(BoltError):
    def __init__(self, team: str):
        super().__init__(f"team {team} is not on the allow-list")
        self.team = team


class AllowListOAuthFlow(OAuthFlow):
    """Bolt's OAuth flow that stores an installation only for a team the gate allows; any other gets a
    page that says why (HTTP 403), and its token is dropped, never stored."""

    def __init__(self, *, gate: TeamGate, **kwargs):
        super().__init__(**kwargs)
        self.gate = gate
        self.failure_handler = self._failure

    def store_installation(self, request: BoltRequest, installation: Installation):
        if not self.gate.allows(installation.team_id, installation.enterprise_id):
            self._revoke(installation)
            raise TeamNotAllowed(installation.team_id or installation.enterprise_id or "?")
        return super().store_installation(request, installation)

    def _revoke(self, installation: Installation) -> None:
        """Slack issued the refused team a token when it approved the install: revoke it (``auth.revoke``),
        so no usable token of this app is left behind in a workspace it does not serve."""
        for token in filter(None, (installation.bot_token, installation.user_token)):
            try:
                self.client.auth_revoke(token=token)
            except Exception as exc:  # noqa: BLE001 - never stored either way; the refusal page still shows
                log.warning("the refused installation's token could not be revoked: %s", type(exc).__name__)

    def _failure(self, args: FailureArgs) -> BoltResponse:
        if not isinstance(args.error, TeamNotAllowed):
            return args.default.failure(args)
        log.warning("refused an installation from team %s: not on the allow-list", args.error.team)
        lang = self.gate.lang
        title = html.escape(tr(lang, REFUSED_INSTALL_TITLE))
        text = html.escape(tr(lang, REFUSED_INSTALL, team=args.error.team))
        page = (f'<!DOCTYPE html><html lang="{html.escape(lang)}"><head><meta charset="utf-8"><title>{title}</title></head>'
                f"<body><h1>{title}</h1><p>{text}</p></body></html>")
        return BoltResponse(status=403, body=page, headers={"content-type": ["text/html; charset=utf-8"]})


class CachedInstallationAuthorize(InstallationStoreAuthorize):
    """Bolt's installation-store authorize (bot tokens only, its ``auth.test`` cache on), with each team's
    result kept ``ttl`` seconds so a request waits for neither the database nor ``auth.test``, and
    ``auth.test`` asked with ``auth_client``: no rate-limit retry, so a 429 fails the request at once
    instead of sleeping ``Retry-After`` before the acknowledgement."""

    def __init__(self, *, auth_client: WebClient, ttl: float = 300, **kwargs):
        super().__init__(bot_only=True, cache_enabled=True, client=auth_client, **kwargs)
        self.auth_client = auth_client
        self.ttl = ttl
        self._hits: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def __call__(self, *, context, enterprise_id, team_id, user_id, **actor):
        key = (enterprise_id, team_id, bool(context.is_enterprise_install))
        with self._lock:
            hit = self._hits.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        request_client = context.get("client")
        context["client"] = self.auth_client  # Bolt asks auth.test with context.client
        try:
            result = super().__call__(context=context, enterprise_id=enterprise_id, team_id=team_id,
                                      user_id=user_id, **actor)
        finally:
            context["client"] = request_client
        if result is not None:
            with self._lock:
                self._hits[key] = (time.monotonic(), result)
        return result

    def forget(self, team_id: str | None = None) -> None:
        """Drop a team's cached authorization (all teams when None): after an uninstall or a revoked token."""
        with self._lock:
            for key in [k for k in self._hits if team_id is None or k[1] == team_id or k[0] == team_id]:
                del self._hits[key]
            if team_id is None:
                self.authorize_result_cache.clear()
            else:
                for token in [t for t, r in self.authorize_result_cache.items() if r.team_id == team_id]:
                    del self.authorize_result_cache[token]
