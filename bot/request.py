"""Incoming requests: a fix for Bolt's body parser, and the WSGI entry point.

Bolt's ``parse_body`` treats any form body that contains the text ``payload`` as an interaction
(``payload=<json>``) and, finding no such field, parses it as ``{}``: ``/kpi payload`` or a command
typed in a channel named ``payloads`` would go unanswered (a 404). ``SlackRequest`` parses such a body
as the form it is. The raw body is untouched, so the signature check is the same.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from slack_bolt import BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.request.internals import build_context


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


class SlackWsgi(SlackRequestHandler):
    """Bolt's WSGI adapter with the body fix, and ``/healthz`` for the platform's health checks."""

    def __init__(self, app, path: str = "/slack/events", health=None):
        super().__init__(app, path)
        self._health = health

    def _request(self, request: WsgiHttpRequest) -> SlackRequest:
        return SlackRequest(body=request.get_body(), query=request.query_string, headers=request.get_headers())

    def dispatch(self, request: WsgiHttpRequest):
        timestamp = (request.get_headers().get("x-slack-request-timestamp") or [""])[0]
        verifying = any(type(m).__name__ == "RequestVerification" for m in self.app._middleware_list)  # noqa: SLF001
        if verifying and not timestamp.strip().isdigit():
            # slack_sdk's verifier would raise on int(): a forged request, answered 401 like any other
            return BoltResponse(status=401, body='{"error": "invalid request"}',
                                headers={"content-type": ["application/json;charset=utf-8"]})
        return self.app.dispatch(self._request(request))

    def handle_installation(self, request: WsgiHttpRequest):
        return self.app.oauth_flow.handle_installation(self._request(request))

    def handle_callback(self, request: WsgiHttpRequest):
        return self.app.oauth_flow.handle_callback(self._request(request))

    def _get_http_response(self, request: WsgiHttpRequest) -> WsgiHttpResponse:
        if request.method == "GET" and request.path == "/healthz":
            ok, detail = self._health() if self._health else (True, "ok")
            return WsgiHttpResponse(status=200 if ok else 503, headers={"content-type": ["application/json"]},
                                    body=detail)
        return super()._get_http_response(request)
