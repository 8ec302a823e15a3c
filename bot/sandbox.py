"""Playing Slack's side: requests built and signed exactly as Slack builds them, sent over HTTP.

Used by the tests, the benchmark and ``kpibot demo``. Slash commands carry every field Slack sends
(SLACK.md), form-encoded; interactions are ``payload=<json>``; events are JSON. The signature is
HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` with the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

_trigger = itertools.count(398738663015)


def sign(secret: str, timestamp: int | str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, content_type: str, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(secret, ts, body)}


@dataclass
class Workspace:
    team_id: str = "T0STANDIN"
    team_domain: str = "demo-shop"
    api_app_id: str = "A0KPIBOT"
    enterprise_id: str | None = None


def slash_command(text: str, *, response_url: str, ws: Workspace | None = None, user_id: str = "U0ALICE",
                  user_name: str = "alice", channel_id: str = "C0GENERAL", channel_name: str = "general",
                  command: str = "/kpi", trigger_id: str | None = None, escape: bool = True) -> str:
    """A slash command's form body. ``text`` is what the user typed; with ``escape`` (the manifest's
    ``should_escape: true``) it is sent as Slack sends it: ``&<>`` escaped, and ``@alice``, ``#growth``,
    ``@here`` turned into ``<@U…|alice>``, ``<#C…|growth>``, ``<!here>`` by the running stand-in's
    directory (``bot.standin.running``)."""
    ws = ws or Workspace()
    if escape:
        text = escape_text(text, ws.team_id)
    fields = {
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",  # deprecated verification token: sent, never used
        "team_id": ws.team_id, "team_domain": ws.team_domain,
        **({"enterprise_id": ws.enterprise_id, "enterprise_name": "Enterprise"} if ws.enterprise_id else {}),
        "channel_id": channel_id, "channel_name": channel_name, "user_id": user_id, "user_name": user_name,
        "command": command, "text": text, "api_app_id": ws.api_app_id,
        "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id or f"{next(_trigger)}.47445629121.803a0bc887a14d10d2c447fce8b6703c",
    }
    return urlencode(fields)


def escape_text(text: str, team_id: str) -> str:
    """``text`` escaped as Slack escapes a slash command's text with ``should_escape: true``."""
    from bot.standin import running

    standin = running(team_id)
    if standin is None:  # no directory to resolve names: the characters only
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return standin.escape_command_text(text, team_id)


def block_action(action_id: str, value: str, *, response_url: str, ws: Workspace | None = None,
                 user_id: str = "U0ALICE", channel_id: str = "C0GENERAL", message: dict | None = None,
                 block_id: str = "actions", ephemeral: bool = True) -> str:
    ws = ws or Workspace()
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "alice", "name": "alice", "team_id": ws.team_id},
        "api_app_id": ws.api_app_id, "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": "1732521600.000100", "channel_id": channel_id,
                      "is_ephemeral": ephemeral},
        "trigger_id": f"{next(_trigger)}.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": message or {}, "state": {"values": {}},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": "Share in channel", "emoji": True},
                     "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def app_home_opened(user_id: str = "U0ALICE", *, ws: Workspace | None = None) -> str:
    ws = ws or Workspace()
    return json.dumps({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": ws.team_id, "api_app_id": ws.api_app_id,
        "event": {"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home",
                  "event_ts": f"{time.time():.6f}"},
        "type": "event_callback", "event_id": f"Ev{next(_trigger)}", "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": ws.team_id, "user_id": "U0BOT", "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    })


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # the sandbox's own access log would clutter tests and the demo
        pass


class AppServer:
    """A WSGI app on a loopback port, in a thread (a real HTTP server, as Slack would reach it)."""

    def __init__(self, wsgi, host: str = "127.0.0.1", port: int = 0):
        self._server = make_server(host, port, wsgi, server_class=_Server, handler_class=_QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="kpibot-app", daemon=True)

    def start(self) -> AppServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LazyWork:
    """The work a Bolt app does after its acknowledgements (its lazy listeners: an answer, then the chart
    that replaces it), counted. Bolt queues a request's lazy work before the request's HTTP reply is
    sent, so once ``idle`` holds, every request answered so far has been processed to the end: whatever
    it was going to post to Slack is posted. A positive signal, where a quiet period would be a guess."""

    def __init__(self, app):
        self._executor = app.listener_runner.lazy_listener_runner.executor
        self._lock = threading.Lock()
        self._pending: list = []
        submit = self._executor.submit

        def counted(*args, **kwargs):
            future = submit(*args, **kwargs)
            with self._lock:
                self._pending.append(future)
            return future

        self._executor.submit = counted

    def busy(self) -> int:
        """How many pieces of work are queued or running."""
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()]
            return len(self._pending)

    def idle(self) -> bool:
        return self.busy() == 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every piece of work queued so far has ended; False if some still runs after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


@dataclass
class Reply:
    status: int
    body: str
    seconds: float


class SlackSide:
    """Sends signed requests to the app at ``url`` as Slack does, and reports what the app answered."""

    def __init__(self, url: str, signing_secret: str, path: str = "/slack/events"):
        self.endpoint = url.rstrip("/") + path
        self.secret = signing_secret

    def post(self, body: str, content_type: str = "application/x-www-form-urlencoded", *,
             timestamp: int | None = None, signature: str | None = None, timeout: float = 10) -> Reply:
        headers = signed_headers(self.secret, body, content_type, timestamp=timestamp)
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        req = urllib.request.Request(self.endpoint, data=body.encode(), headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
                return Reply(resp.status, resp.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read().decode(), time.perf_counter() - started)

    def command(self, text: str, **kwargs) -> Reply:
        return self.post(slash_command(text, **kwargs))
