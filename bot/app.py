"""One Bolt app, built from settings: single workspace (bot token) or several (OAuth), HTTP or Socket Mode.

    services = Services()
    app = build_app(services, SlackSettings.from_env())   # every listener registered (bot.listeners)
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import text

from kpi.services import Services

from .config import BOT_SCOPES, SlackSettings
from .listeners import Deps, register
from .logs import add_secrets, install_redaction
from .request import SlackWsgi
from .teams import AllowListOAuthFlow, CachedInstallationAuthorize, TeamClients, TeamGate

log = logging.getLogger("kpibot.app")


def retry_handlers():
    """Connection errors, 429 (honouring Retry-After) and 5xx are retried; slack_sdk retries only the first by default."""
    return [ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2)]


def web_client(slack: SlackSettings, token: str | None = None) -> WebClient:
    return WebClient(token=token, base_url=slack.api_url, retry_handlers=retry_handlers(), timeout=15)


def auth_client(slack: SlackSettings) -> WebClient:
    """For ``auth.test`` during authorization, before the acknowledgement: connection errors retried once,
    never a 429 (sleeping ``Retry-After`` there would make Slack give up on the request)."""
    return WebClient(base_url=slack.api_url, retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)], timeout=5)


def installation_stores(services: Services, slack: SlackSettings):
    """slack-sdk's SQLAlchemy stores on the state database (tables created by ``kpibot db upgrade``), tokens
    encrypted with ``KPIBOT_TOKEN_KEY`` (bot.installations): several workspaces are refused without it."""
    from .installations import build_stores

    return build_stores(slack.client_id, services.state(), multi_workspace=slack.multi_workspace)


def create_slack_tables(services: Services, slack: SlackSettings) -> None:
    installations, states = installation_stores(services, slack)
    installations.create_tables()
    states.metadata.create_all(services.state())
    installations.widen_token_columns()
    if installations.cipher is not None:  # rows written before encryption: encrypted now
        installations.encrypt_plaintext_tokens()


def _bolt_options(verify_requests: bool) -> dict:
    """How Bolt runs listeners. Every listener here is ``ack`` + lazy work. With Bolt's default
    (``process_before_response=False``) even the ``ack`` function is queued in the listener executor,
    behind the lazy work of earlier requests, and the request thread polls for it every 10 ms: a burst
    of 20 commands then waits 0.5 s for its acknowledgements (bench/slack.py). With ``True`` the
    ``ack`` runs in the request thread and returns at once, and the lazy work still goes to threads."""
    return {"process_before_response": True, "request_verification_enabled": verify_requests,
            "listener_executor": ThreadPoolExecutor(max_workers=int(os.environ.get("KPIBOT_LISTENER_THREADS", "16")),
                                                    thread_name_prefix="kpibot-lazy"),
            "name": "kpibot"}


def build_app(services: Services, slack: SlackSettings, *, verify_requests: bool = True) -> App:
    """The Bolt app. ``verify_requests`` is False only in unit tests that call handlers directly."""
    install_redaction()
    add_secrets(slack.signing_secret, slack.client_secret, slack.bot_token, slack.app_token)
    # tenancy first (issue 12): a team this deployment does not serve is refused before authorization
    gate = TeamGate(slack, config_dir=services.settings.config_dir, lang=services.settings.locale)
    if slack.multi_workspace:
        if not gate.allowed:
            log.warning("no allow-list (KPIBOT_ALLOWED_TEAMS, config/access.yaml): every workspace is refused")
        installations, states = installation_stores(services, slack)
        flow = AllowListOAuthFlow(gate=gate, client=web_client(slack), settings=OAuthSettings(
            client_id=slack.client_id, client_secret=slack.client_secret, scopes=BOT_SCOPES,
            install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect",
            installation_store=installations, state_store=states,
        ))
        authorize = CachedInstallationAuthorize(
            auth_client=auth_client(slack), installation_store=installations, client_id=slack.client_id,
            client_secret=slack.client_secret, logger=logging.getLogger("kpibot.authorize"))
        app = App(signing_secret=slack.signing_secret, client=web_client(slack), oauth_flow=flow,
                  installation_store=installations, authorize=authorize,
                  before_authorize=gate, **_bolt_options(verify_requests))
    else:
        app = App(signing_secret=slack.signing_secret or None, client=web_client(slack, slack.bot_token),
                  before_authorize=gate, **_bolt_options(verify_requests))
        gate.bind(app, TeamClients(services, slack).own_team)
    deps = Deps(services, slack, retry_handlers=retry_handlers())
    if slack.multi_workspace:
        deps.forget_team = authorize.forget
    register(app, deps)
    return app


def wsgi_app(services: Services, slack: SlackSettings, app: App | None = None) -> SlackWsgi:
    """The WSGI application the web process serves: /slack/events, the OAuth pages, /healthz."""
    app = app or build_app(services, slack)

    def health():
        try:
            with services.state().connect() as conn:
                conn.execute(text("select 1"))
            return True, json.dumps({"ok": True})
        except Exception as exc:  # noqa: BLE001 - reported as unhealthy, never raised
            return False, json.dumps({"ok": False, "error": type(exc).__name__})

    return SlackWsgi(app, health=health, signing_secret=slack.signing_secret, max_body_bytes=slack.max_body_bytes)
