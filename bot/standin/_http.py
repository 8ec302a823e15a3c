"""The stand-in's HTTP side: routes, body parsing and authentication as Slack does them, failure and
delay injection, and the record of every call. Logs only the method name of each request."""

from __future__ import annotations

import json
import logging
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import _chat, _directory, _files, _views
from ._common import ApiError, Req
from ._records import Call, Failure, Team, World
from .multipart import parse_multipart

log = logging.getLogger("bot.standin")

METHODS = {**_chat.METHODS, **_views.METHODS, **_files.METHODS, **_directory.METHODS}
NO_TOKEN_METHODS = _directory.NO_TOKEN_METHODS
_NOBODY = Team("", "", "U0BOT")


class _BadBody(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], world: World, stopping: threading.Event) -> None:
        super().__init__(address, _Handler)
        self.world = world
        self.stopping = stopping

    @property
    def root_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: StandInServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the default logs paths, which hold secrets; _handle logs method names only

    def do_GET(self) -> None:  # noqa: N802
        self._counted()

    def do_POST(self) -> None:  # noqa: N802
        self._counted()

    def _counted(self) -> None:
        world = self.server.world
        with world.lock:
            world.in_flight += 1
        try:
            self._handle()
        finally:
            with world.lock:
                world.in_flight -= 1

    # -- plumbing -------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout it asked for with delay_next)

    def _send_json(self, status: int, answer: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(answer).encode(), "application/json; charset=utf-8", headers)

    def _record(self, method: str, params: dict[str, Any], token: str | None, status: int,
                response: dict[str, Any]) -> None:
        with self.server.world.lock:
            self.server.world.calls.append(Call(method, params, dict(self.headers.items()), token, status, response))
        log.debug("%s %s -> %s", self.command, method, status)

    def _injected(self, method: str) -> Failure | None:
        """Wait out an injected delay, then take an injected failure, if any, for ``method``."""
        world = self.server.world
        with world.lock:
            delays = world.delays.get(method)
            delay = delays[0][0] if delays else 0.0
            if delays:
                delays[0][1] -= 1
                if delays[0][1] <= 0:
                    delays.pop(0)
        if delay:
            self.server.stopping.wait(delay)
        with world.lock:
            failures = world.failures.get(method)
            if not failures:
                return None
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.pop(0)
            return failure

    # -- routing --------------------------------------------------------------------------------------

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        try:
            if url.path.startswith("/api/"):
                self._api(url.path[len("/api/"):], url.query, body)
            elif url.path.startswith("/upload/v1/") and self.command == "POST":
                self._upload(url.path[len("/upload/v1/"):], body)
            elif url.path.startswith("/commands/") and self.command == "POST":
                self._response_url(url.path, body)
            elif url.path.startswith("/files/") and self.command == "GET":
                self._download(url.path)
            else:
                self._send(404, b"not_found", "text/plain")
        except Exception:  # noqa: BLE001 - a stand-in bug must show, not hang the client
            log.exception("stand-in failure on %s", url.path.split("/")[1:3])
            self._send_json(500, {"ok": False, "error": "internal_error", "standin_traceback": traceback.format_exc()})

    def _api_params(self, query: str, body: bytes) -> tuple[dict[str, Any], str | None, list[str]]:
        """(params, token, warnings). Tokens count from the Authorization header or a form body; Slack
        ignores them in a JSON body and refuses them in the query string for apps made since 2021."""
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        params.pop("token", None)
        body_token = None
        warnings: list[str] = []
        content_type = self.headers.get("Content-Type", "")
        media = content_type.split(";")[0].strip().lower()
        if body:
            if media == "application/json":
                try:
                    data = json.loads(body)
                except ValueError:
                    raise _BadBody("invalid_json") from None
                if not isinstance(data, dict):
                    raise _BadBody("json_not_object")
                if "charset" not in content_type.lower():
                    warnings.append("missing_charset")
                params.update(data)
            elif media == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                body_token = params.get("token")
            elif media == "multipart/form-data":
                for part in parse_multipart(body, content_type):
                    params[part.name] = part.content if part.filename is not None else part.text
                body_token = params.get("token") if isinstance(params.get("token"), str) else None
            elif not media:
                raise _BadBody("missing_post_type")
            else:
                raise _BadBody("invalid_post_type")
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else body_token
        return params, token or None, warnings

    def _api(self, method: str, query: str, body: bytes) -> None:
        world = self.server.world
        try:
            params, token, warnings = self._api_params(query, body)
        except _BadBody as exc:
            self._record(method, {}, None, 200, answer := {"ok": False, "error": exc.error})
            self._send_json(200, answer)
            return
        shown = {k: v for k, v in params.items() if k != "token"}
        failure = self._injected(method)
        if failure is not None:
            status, answer, headers = _failure_answer(failure)
            self._record(method, shown, token, status, answer)
            self._send_json(status, answer, headers)
            return
        with world.lock:
            answer = _dispatch(world, self.server.root_url, method, params, token, dict(self.headers.items()))
            if warnings:
                answer["warning"] = ",".join(warnings)
                answer.setdefault("response_metadata", {})["warnings"] = warnings
            self._record(method, shown, token, 200, answer)
        self._send_json(200, answer)

    def _upload(self, secret: str, body: bytes) -> None:
        with self.server.world.lock:
            stored = next((f for f in self.server.world.stored_files.values() if f.upload_secret == secret), None)
        params = {"file_id": stored.id if stored else None, "length": len(body)}
        failure = self._injected("upload_url")
        if failure is not None:
            status, text, headers = _failure_text(failure)
        else:
            with self.server.world.lock:
                status, text = _files.receive_upload(self.server.world, secret, body,
                                                     self.headers.get("Content-Type", ""))
        self._record("upload_url", params, None, status, {"ok": status == 200, "body": text})
        self._send(status, text.encode(), "text/plain; charset=utf-8", headers if failure else None)

    def _response_url(self, path: str, body: bytes) -> None:
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        failure = self._injected("response_url")
        headers = None
        world = self.server.world
        if failure is not None:
            status, text, headers = _failure_text(failure)
        else:
            with world.lock:
                state = world.response_urls.get(path)
                team = world.teams[state.team_id] if state else _NOBODY
                req = Req(world, self.server.root_url, {}, team, None, dict(self.headers.items()))
                status, text = _chat.respond(req, path, payload)
        response = {"ok": True} if status == 200 else {"ok": False, "error": text}
        self._record("response_url", payload if isinstance(payload, dict) else {"body": body.decode("utf-8", "replace")},
                     None, status, response)
        self._send(status, text.encode(), "text/plain; charset=utf-8", headers)

    def _download(self, path: str) -> None:
        """A file's ``url_private``: needs a bot token of the file's team."""
        world = self.server.world
        auth = self.headers.get("Authorization", "")
        with world.lock:
            parts = path.split("/")
            stored = world.stored_files.get(parts[3]) if len(parts) > 3 else None
            team_id = world.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
            if stored is None or stored.content is None or team_id != stored.team_id:
                self._send(404, b"not_found", "text/plain")
                return
            content = stored.content
        self._send(200, content, "application/octet-stream")


def _dispatch(world: World, root_url: str, method: str, params: dict[str, Any], token: str | None,
              headers: dict[str, str]) -> dict[str, Any]:
    """The JSON answer to one Web API call (the lock is held)."""
    fn = METHODS.get(method) or NO_TOKEN_METHODS.get(method)
    if fn is None:
        return {"ok": False, "error": "unknown_method", "req_method": method}
    team = _NOBODY
    if method in METHODS:
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token in world.revoked_tokens:
            return {"ok": False, "error": "token_revoked"}
        team_id = world.tokens.get(token)
        if team_id is None:
            return {"ok": False, "error": "invalid_auth"}
        team = world.teams[team_id]
    try:
        return {"ok": True, **fn(Req(world, root_url, params, team, token, headers))}
    except ApiError as exc:
        return {"ok": False, "error": exc.error, **exc.extra}


def _failure_answer(failure: Failure) -> tuple[int, dict[str, Any], dict[str, str]]:
    if failure.error is not None:
        return 200, {"ok": False, "error": failure.error}, {}
    if failure.status == 429:
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(failure.retry_after)}
    error = "internal_error" if failure.status >= 500 else f"http_{failure.status}"
    return failure.status, {"ok": False, "error": error}, {}


def _failure_text(failure: Failure) -> tuple[int, str, dict[str, str]]:
    if failure.error is not None:
        return 404, failure.error, {}
    if failure.status == 429:
        return 429, "rate_limited", {"Retry-After": str(failure.retry_after)}
    return failure.status, "internal_error" if failure.status >= 500 else f"http_{failure.status}", {}
