"""What listeners need, built once per app and handed to each of them by Bolt.

``register`` installs :meth:`Deps.inject` as a global middleware: it puts this object in the request's
context as ``deps``, and Bolt passes context items to listeners by parameter name, so a listener simply
declares a ``deps`` parameter. Lazy listeners get a deep copy of the context: ``Deps`` copies as itself
(it is the process's wiring, shared by every request, not request data).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from kpi.i18n import lang_of
from kpi.services import Services

from ..answer import dm_channel
from ..config import SlackSettings
from ..manage import Manage

log = logging.getLogger("kpibot.listeners")


class UserLocales:
    """Slack does not send the user's locale with a command: ``users.info`` says it; cached an hour."""

    def __init__(self, ttl: float = 3600):
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def lang(self, client, team_id: str, user_id: str) -> str:
        key = (team_id, user_id)
        with self._lock:
            hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        try:
            user = client.users_info(user=user_id, include_locale=True)["user"]
            lang = lang_of(user.get("locale"))
        except SlackApiError as exc:
            log.warning("users.info %s failed: %s", user_id, exc.response.get("error"))
            lang = "en"
        with self._lock:
            self._cache[key] = (time.monotonic(), lang)
        return lang


class DirectMessages:
    """The bot's DM channel with each user (``conversations.open`` once per user and process)."""

    def __init__(self):
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def channel(self, client, team_id: str, user_id: str) -> str | None:
        with self._lock:
            hit = self._cache.get((team_id, user_id))
        if hit is None:
            hit = dm_channel(client, user_id)
            if hit:
                with self._lock:
                    self._cache[(team_id, user_id)] = hit
        return hit


def _never_reached_slack(error: Exception) -> bool:
    """A connection that was never made (refused, DNS, no route): the post certainly did not happen.
    urllib wraps errors of connecting in ``URLError``; a read timeout, a reset or a connection closed
    after sending may follow a post Slack made, and retrying those can post twice."""
    import errno
    import socket

    reason = getattr(error, "reason", None)
    return isinstance(reason, ConnectionRefusedError | socket.gaierror) or (
        isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH))


class ResponseUrlRetry(ConnectionErrorRetryHandler):
    """Retries a ``response_url`` post only when it never reached Slack (see ``_never_reached_slack``)."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return error is not None and response is None and _never_reached_slack(error)


def response_url_retries() -> list:
    """A 429 is refused without effect (retried after ``Retry-After``); 5xx and timeouts are not retried."""
    return [ResponseUrlRetry(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)]


class Deps:
    """The services, the Slack settings and the per-process caches every listener shares."""

    def __init__(self, services: Services, slack: SlackSettings, *, retry_handlers: list):
        self.services = services
        self.slack = slack
        self.locales = UserLocales()
        self.dms = DirectMessages()
        self.manage = Manage(services, slack)
        self.retries = retry_handlers
        self.response_url_retries = response_url_retries()
        self.response_url_timeout = 15.0
        # drops a team's cached authorization (multi-workspace mode sets it): after an uninstall, no request
        # is served on a token that is gone
        self.forget_team: Callable[[str], None] = lambda team_id: None

    def __deepcopy__(self, memo) -> Deps:  # shared wiring: a lazy listener's context copy keeps it
        return self

    def __copy__(self) -> Deps:
        return self

    def inject(self, context, next):  # noqa: A002 - Bolt's middleware signature
        context["deps"] = self
        next()

    def lang(self, client, team_id: str, user_id: str) -> str:
        return self.locales.lang(client, team_id, user_id)

    def send(self, response_url: str, body: dict, *, refusals: list[str] | None = None) -> bool:
        """Post to a response_url; False (and a log line) when Slack refuses it or may not have got it. Retried
        only when the request never reached Slack: after a timeout Slack may have posted it already.
        ``refusals`` gets Slack's answer when it refused the message (``invalid_blocks``...)."""
        try:
            resp = WebhookClient(response_url, retry_handlers=self.response_url_retries,
                                 timeout=self.response_url_timeout).send_dict(body)
        except OSError as exc:  # a timeout or a dropped connection: maybe posted, never posted twice
            log.warning("response_url post not confirmed (%s): not retried", type(exc).__name__)
            return False
        if resp.status_code != 200:
            log.warning("response_url answered %s: %s", resp.status_code, (resp.body or "")[:200])
            if refusals is not None:
                refusals.append(resp.body or "")
            return False
        return True


__all__ = ["Deps", "DirectMessages", "UserLocales"]
