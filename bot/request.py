"""Incoming requests: the signature checked first, a fix for Bolt's body parser, and the WSGI entry point.

Signature first (issue 12): ``SlackWsgi`` refuses a body over the cap with 413 before reading it (its
``Content-Length``, or at most cap + 1 bytes when there is none), checks Slack's signature on the raw
bytes (HMAC-SHA256 of ``v0:{timestamp}:{body}``, as slack_sdk's ``SignatureVerifier``, but on bytes, so
invalid UTF-8 is a 401 and not a crash), and only then decodes and parses. Whatever is malformed is a 400
or a 401, never a 500 and never a traceback: no header, a timestamp that is not 1-12 ASCII digits or is
more than 5 minutes off, invalid UTF-8, invalid or deeply nested JSON (in the body or in ``payload=``).

Bolt's ``parse_body`` treats any form body that contains the text ``payload`` as an interaction
(``payload=<json>``) and, finding no such field, parses it as ``{}``: ``/kpi payload`` or a command
typed in a channel named ``payloads`` would go unanswered (a 404). ``SlackRequest`` parses such a body
as the form it is. The raw body is untouched, so the signature check is the same.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from urllib.parse import parse_qsl

from slack_bolt import BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.request.internals import build_context

from .chart_urls import PATH_PREFIX, links_for, serving_deps
from .config import MAX_BODY_BYTES

log = logging.getLogger("kpibot.request")

MAX_DEPTH = 32  # Slack's payloads nest about ten deep; a nesting bomb is refused before Bolt parses it
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_JSON = {"content-type": ["application/json;charset=utf-8"]}


class SlackRequest(BoltRequest):
    def __init__(self, *, body, query=None, headers=None, context=None, mode: str = "http"):
        super().__init__(body=body, query=query, headers=headers, context=context, mode=mode)
        if mode == "http" and isinstance(body, str) and not self.body and body and not body.lstrip().startswith("{"):
            params = dict(parse_qsl(body, keep_blank_values=True))
            if params and "payload" not in params:
                self.body = params
                self.context = build_context(BoltContext(context if context else {}), self.body)

    def to_copyable(self) -> SlackRequest:  # lazy listeners get a copy: it must be parsed the same way
        return SlackRequest(body=self.raw_body if self.mode == "http" else self.body, query=self.query,
                            headers=self.headers, context=self.context.to_copyable(), mode=self.mode)


class Refused(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


def _depth_ok(value, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return True


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(400, "invalid json") from None
    if not isinstance(value, dict) or not _depth_ok(value):
        raise Refused(400, "invalid json")
    return value


def read_signed_body(environ, *, signing_secret: str | None, max_bytes: int = MAX_BODY_BYTES,
                     now: float | None = None) -> str:
    """The request's body, decoded, once it is known to come from Slack; ``Refused`` otherwise."""
    length_header = (environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if length_header:
        if not length_header.isdigit() or len(length_header) > 12:
            raise Refused(400, "invalid content-length")
        length = int(length_header)
        if length > max_bytes:
            raise Refused(413, "request too large")
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream; read no more than the cap
        length = max_bytes + 1
    else:
        length = 0
    raw = stream.read(length) if stream is not None and length else b""
    if len(raw) > max_bytes:
        raise Refused(413, "request too large")
    if signing_secret:
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or ""
        signature = environ.get("HTTP_X_SLACK_SIGNATURE") or ""
        if not _TIMESTAMP.fullmatch(timestamp) or not signature.isascii():
            raise Refused(401, "invalid request")
        if abs((time.time() if now is None else now) - int(timestamp)) > 300:
            raise Refused(401, "invalid request")
        expected = "v0=" + hmac.new(signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + raw,
                                    hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Refused(401, "invalid request")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "invalid utf-8") from None
    content_type = (environ.get("CONTENT_TYPE") or "").lower()
    if content_type.startswith("application/json") or text.lstrip().startswith("{"):
        _json_object(text)
    elif text:
        fields = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" in fields:
            _json_object(fields["payload"])
    return text


class _PngResponse(WsgiHttpResponse):
    """A WSGI response whose body is bytes (Bolt's takes text)."""

    def __init__(self, png: bytes, *, head: bool = False):
        super().__init__(status=200, headers={"content-type": ["image/png"],
                                              "cache-control": ["private, max-age=86400"],
                                              "x-content-type-options": ["nosniff"]})
        self._body = png
        self._head = head

    def get_body(self):
        return [] if self._head else [self._body]


class SlackWsgi(SlackRequestHandler):
    """Bolt's WSGI adapter with the signature checked first, the body fix, and ``/healthz`` for the
    platform's health checks. ``signing_secret`` None or empty only when the app verifies nothing (unit
    tests that build it with ``verify_requests=False``)."""

    def __init__(self, app, path: str = "/slack/events", health=None, *, signing_secret: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES):
        super().__init__(app, path)
        self._health = health
        verifying = any(type(m).__name__ == "RequestVerification" for m in app._middleware_list)  # noqa: SLF001
        self._secret = (signing_secret or getattr(app, "_signing_secret", None)) if verifying else None
        if verifying and not self._secret:
            raise ValueError("request verification is on but there is no signing secret")
        self._max = max_body_bytes
        # HTTP mode with KPIBOT_PUBLIC_URL: private answers' charts are served here, at signed URLs; the
        # listeners of this process learn it through their Deps (bot/chart_urls.py)
        deps = serving_deps(app)
        self._charts = links_for(deps.services, deps.slack) if deps is not None else None
        if deps is not None:
            deps.chart_links = self._charts

    def _request(self, request: WsgiHttpRequest, body: str = "") -> SlackRequest:
        return SlackRequest(body=body, query=request.query_string, headers=request.get_headers())

    def dispatch(self, request: WsgiHttpRequest):
        try:
            body = read_signed_body(request.environ, signing_secret=self._secret, max_bytes=self._max)
        except Refused as refused:
            log.info("refused a request to %s: %s (%d)", request.path, refused.error, refused.status)
            return BoltResponse(status=refused.status, body=json.dumps({"error": refused.error}), headers=_JSON)
        return self.app.dispatch(self._request(request, body))

    def handle_installation(self, request: WsgiHttpRequest):
        return self.app.oauth_flow.handle_installation(self._request(request))

    def handle_callback(self, request: WsgiHttpRequest):
        return self.app.oauth_flow.handle_callback(self._request(request))

    def _get_http_response(self, request: WsgiHttpRequest) -> WsgiHttpResponse:
        if request.method == "GET" and request.path == "/healthz":
            ok, detail = self._health() if self._health else (True, "ok")
            return WsgiHttpResponse(status=200 if ok else 503, headers={"content-type": ["application/json"]},
                                    body=detail)
        if request.method in ("GET", "HEAD") and request.path.startswith(PATH_PREFIX):
            png = self._charts.fetch(request.path) if self._charts is not None else None
            if png is None:  # unknown, expired or tampered: the same answer, whatever the reason
                return WsgiHttpResponse(status=404, headers={"content-type": ["text/plain;charset=utf-8"]},
                                        body="Not Found")
            return _PngResponse(png, head=request.method == "HEAD")
        return super()._get_http_response(request)
