"""A workspace's life with the app (issue 12, items 6 and 7), through signed HTTP against the stand-in:
uninstalling or revoking the token deletes the team's tokens and pauses its schedules and rules (the
worker then sends nothing for it); tokens are encrypted at rest; several workspaces without a key are
refused; a retried event is processed once; a response_url post that timed out is not posted again.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
import time
import urllib.request
from datetime import timedelta
from urllib.error import URLError

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from bot.alerts import AlertNotifier
from bot.app import build_app, create_slack_tables, installation_stores
from bot.config import SlackSettings
from bot.digests import DigestSender
from bot.installations import purge_expired_states
from bot.listeners.deps import Deps, ResponseUrlRetry
from bot.sandbox import Workspace, app_home_opened, signed_headers
from bot.teams import TeamClients
from kpi.alerts.rules import RuleSpec
from kpi.alerts.store import AlertRules, all_rules
from kpi.db import make_engine
from kpi.errors import KpiError
from kpi.services import Services
from kpi.settings import Settings
from kpi.state.lifecycle import first_delivery, forget_old_events
from kpi.state.store import Schedules, all_schedules
from kpi.state.tables import upgrade

from .test_engine import NOW
from .test_slack_app import CONFIG, SECRET, Rig

TEAM = "T0NEWSHOP"
TOKEN = "xoxb-new-shop-1234567890-abcdefghijklmnop"


class MultiRig(Rig):
    """Several workspaces (OAuth): the app on a loopback port, T0NEWSHOP (allow-listed) installed through the
    OAuth pages."""

    def __init__(self, url: str):
        super().__init__(url, multi=True)

    def install(self) -> None:
        with urllib.request.urlopen(self.server.url + "/slack/install", timeout=5) as resp:  # noqa: S310 - loopback
            page = resp.read().decode()
            cookie = resp.headers["Set-Cookie"].split(";")[0]
        state = re.search(r"state=([\w-]+)", page).group(1)
        code = self.standin.new_oauth_code(TEAM, "New Shop", TOKEN, "U0BOTNEW")
        callback = urllib.request.Request(f"{self.server.url}/slack/oauth_redirect?code={code}&state={state}",
                                          headers={"Cookie": cookie})
        with urllib.request.urlopen(callback, timeout=5) as r:  # noqa: S310 - loopback
            assert r.status == 200
        self.standin.add_channel("C1SALES", "sales", team_id=TEAM)


@pytest.fixture
def key(monkeypatch):
    value = Fernet.generate_key().decode()
    monkeypatch.setenv("KPIBOT_TOKEN_KEY", value)
    return value


@pytest.fixture
def multi(database_url, key):
    rig = MultiRig(database_url)
    yield rig
    rig.close()


def _rows(url: str, sql: str, **params) -> list[dict]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text(sql), params)]
    engine.dispose()
    return rows


def _event(team: str, event: dict, event_id: str | None = None) -> str:
    return json.dumps({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": team, "api_app_id": "A0KPIBOT",
        "event": {**event, "event_ts": f"{time.time():.6f}"}, "type": "event_callback",
        "event_id": event_id or f"Ev{time.time_ns()}", "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": "U0BOTNEW", "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    })


def _post(rig, body: str, **headers) -> int:
    """A signed event as Slack sends it, with extra headers (X-Slack-Retry-Num...)."""
    all_headers = {**signed_headers(SECRET, body, "application/json"), **headers}
    req = urllib.request.Request(rig.side.endpoint, data=body.encode(), headers=all_headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return resp.status


def _team_work(rig) -> None:
    """A schedule due now and a rule that fires now, for the new team."""
    engine = rig.services.state()
    local = NOW.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    Schedules(engine, TEAM).add("C1SALES", local_time=f"{local:%H:%M}", timezone="Europe/Paris",
                                days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    AlertRules(engine, TEAM).add(RuleSpec(metric="orders", condition="above", threshold=0, channel="C1SALES"))


def _sent_for_team(rig) -> list:
    return [m for m in rig.standin.messages if m.team_id == TEAM and m.kind == "message"]


def _worker_pass(rig) -> None:
    clients = TeamClients(rig.services, rig.slack)
    DigestSender(rig.services, clients, clock=lambda: NOW + timedelta(minutes=1)).tick()
    AlertNotifier(rig.services, clients, clock=lambda: NOW).check(force=True)


def _paused(rig) -> bool:
    engine = rig.services.state()
    return (not [s for s in all_schedules(engine) if s.team_id == TEAM]
            and not [r for r in all_rules(engine) if r.team_id == TEAM]
            and all(s.paused_at for s in all_schedules(engine, include_paused=True) if s.team_id == TEAM)
            and all(r.paused_at for r in all_rules(engine, include_paused=True) if r.team_id == TEAM))


def _tokens_gone(rig) -> bool:
    store, _ = installation_stores(rig.services, rig.slack)
    return (store.find_bot(enterprise_id=None, team_id=TEAM) is None
            and store.find_installation(enterprise_id=None, team_id=TEAM) is None)


def test_tokens_are_encrypted_at_rest_and_read_back(multi):
    multi.install()
    raw = json.dumps(_rows(multi.url, "SELECT * FROM slack_installations")
                     + _rows(multi.url, "SELECT * FROM slack_bots"), default=str)
    assert TEAM in raw and "xoxb-" not in raw  # the raw rows hold no plaintext token
    store, _ = installation_stores(multi.services, multi.slack)
    assert store.find_bot(enterprise_id=None, team_id=TEAM).bot_token == TOKEN
    _, message = _ask(multi)
    assert "Orders" in message.text + json.dumps(message.blocks)


def _ask(rig):
    from bot.sandbox import slash_command

    rig.standin.add_user("U0NEW", name="nora", team_id=TEAM)
    url = rig.standin.new_response_url(team_id=TEAM, user_id="U0NEW", channel_id="C1SALES")
    seen = len(rig.standin.messages)
    reply = rig.side.post(slash_command("orders", response_url=url, ws=Workspace(team_id=TEAM), user_id="U0NEW",
                                        channel_id="C1SALES"))
    rig.standin.wait_for(lambda: any(m.kind == "response_url" for m in rig.standin.messages[seen:]), timeout=20)
    return reply, next(m for m in rig.standin.messages[seen:] if m.kind == "response_url")


def test_plaintext_rows_from_before_are_read_then_encrypted_by_db_upgrade(multi):
    multi.install()
    store, _ = installation_stores(multi.services, multi.slack)
    engine = make_engine(multi.url)
    with engine.begin() as conn:  # as a row written before encryption
        conn.execute(text("UPDATE slack_bots SET bot_token = :t"), {"t": TOKEN})
        conn.execute(text("UPDATE slack_installations SET bot_token = :t"), {"t": TOKEN})
    engine.dispose()
    assert store.find_bot(enterprise_id=None, team_id=TEAM).bot_token == TOKEN
    create_slack_tables(multi.services, multi.slack)  # what `kpibot db upgrade` runs
    assert "xoxb-" not in json.dumps(_rows(multi.url, "SELECT bot_token FROM slack_bots")
                                     + _rows(multi.url, "SELECT bot_token FROM slack_installations"))
    assert store.find_bot(enterprise_id=None, team_id=TEAM).bot_token == TOKEN


def test_app_uninstalled_deletes_the_tokens_pauses_the_team_and_the_worker_sends_nothing(multi):
    multi.install()
    _team_work(multi)
    assert _post(multi, _event(TEAM, {"type": "app_uninstalled"})) == 200
    multi.standin.wait_for(lambda: _tokens_gone(multi) and _paused(multi), timeout=20)
    assert not _rows(multi.url, "SELECT * FROM slack_bots WHERE team_id = :team", team=TEAM)
    _worker_pass(multi)
    _worker_pass(multi)
    assert not _sent_for_team(multi)
    pending = _rows(multi.url, "SELECT status FROM deliveries WHERE team_id = :team", team=TEAM)
    assert all(r["status"] in ("skipped", "failed") for r in pending)


def test_tokens_revoked_deletes_the_bot_token_and_pauses_the_team(multi):
    multi.install()
    _team_work(multi)
    event = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0BOTNEW"]}}
    assert _post(multi, _event(TEAM, event)) == 200
    multi.standin.wait_for(lambda: _tokens_gone(multi) and _paused(multi), timeout=20)
    _worker_pass(multi)
    assert not _sent_for_team(multi)
    # installing again resumes the team
    multi.install()
    assert [s for s in all_schedules(multi.services.state()) if s.team_id == TEAM]


def test_a_revoked_token_seen_by_the_worker_pauses_the_team_instead_of_retrying(multi):
    multi.install()
    _team_work(multi)
    multi.standin.fail_next("chat.postMessage", status=200, error="token_revoked", times=20)
    _worker_pass(multi)
    assert _paused(multi)
    calls = len(multi.standin.calls_to("chat.postMessage"))
    _worker_pass(multi)
    _worker_pass(multi)
    assert len(multi.standin.calls_to("chat.postMessage")) == calls  # not retried


def test_several_workspaces_without_a_token_key_are_refused(database_url, monkeypatch):
    monkeypatch.delenv("KPIBOT_TOKEN_KEY", raising=False)
    upgrade(database_url)
    services = Services(Settings(database_url=database_url, source_url=database_url, config_dir=CONFIG))
    slack = SlackSettings(signing_secret=SECRET, client_id="111.222", client_secret="secret",
                          api_url="http://127.0.0.1:9/api/", **({"allowed_teams": (TEAM,)} if "allowed_teams" in {
                              f.name for f in dataclasses.fields(SlackSettings)} else {}))
    with pytest.raises(KpiError) as err:
        build_app(services, slack)
    message = str(err.value)
    assert "KPIBOT_TOKEN_KEY" in message and "Fernet.generate_key" in message and "\n" not in message
    monkeypatch.setenv("KPIBOT_TOKEN_KEY", "not-a-key")
    with pytest.raises(KpiError, match="not a Fernet key"):
        build_app(services, slack)


def test_a_retried_event_publishes_the_home_once(rig):
    body = app_home_opened("U0ALICE")
    assert _post(rig, body) == 200
    assert _post(rig, body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}) == 200
    rig.standin.wait_for(lambda: rig.standin.calls_to("views.publish"), timeout=20)
    time.sleep(1.0)  # the retry's lazy work, had it run, would have published by now
    assert len(rig.standin.calls_to("views.publish")) == 1
    assert not first_delivery(rig.services.state(), json.loads(body)["event_id"])
    assert forget_old_events(rig.services.state(), now=NOW + timedelta(days=400)) >= 1


def test_expired_oauth_states_are_purged(multi):
    with urllib.request.urlopen(multi.server.url + "/slack/install", timeout=5) as resp:  # noqa: S310 - loopback
        resp.read()
    assert len(_rows(multi.url, "SELECT * FROM slack_oauth_states")) == 1
    assert purge_expired_states(multi.services.state()) == 0
    from datetime import UTC, datetime

    assert purge_expired_states(multi.services.state(), now=datetime.now(UTC) + timedelta(minutes=11)) == 1


class _Slow(http.server.BaseHTTPRequestHandler):
    hits: list = []
    status = 200
    delay = 0.0

    def do_POST(self):  # noqa: N802
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(type(self).delay)
        try:
            self.send_response(type(self).status)
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("failure", ["read timeout", "gateway timeout"])
def test_a_response_url_post_that_may_have_reached_slack_is_not_retried(failure):
    handler = type("H", (_Slow,), {"hits": [], "delay": 1.5 if failure == "read timeout" else 0.0,
                                   "status": 200 if failure == "read timeout" else 504})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from bot.app import retry_handlers

        deps = Deps(Services(Settings(database_url="sqlite://", source_url="sqlite://", config_dir=CONFIG)),
                    SlackSettings(), retry_handlers=retry_handlers())
        deps.response_url_timeout = 0.5
        assert deps.send(f"http://127.0.0.1:{server.server_port}/commands/T/1/x", {"text": "hi"}) is False
        time.sleep(2.0)
        assert len(handler.hits) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_a_response_url_post_that_never_reached_slack_is_retried():
    retry = ResponseUrlRetry(max_retry_count=2)
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.state import RetryState

    request = HttpRequest(method="POST", url="http://127.0.0.1:9/x", headers={}, data=b"{}")
    refused = URLError(ConnectionRefusedError(111, "Connection refused"))
    assert retry.can_retry(state=RetryState(), request=request, response=None, error=refused)
    assert not retry.can_retry(state=RetryState(), request=request, response=None, error=TimeoutError("timed out"))
    assert not retry.can_retry(state=RetryState(), request=request, response=None,
                               error=URLError(TimeoutError("timed out")))
