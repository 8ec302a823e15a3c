"""Tenancy and hostile requests (issue 12, items 1-3), through signed HTTP against the running app and the
Slack stand-in, on SQLite and PostgreSQL.

- Single workspace: another team's signed command is refused with a clear ephemeral reply and no numbers;
  another team's ``app_home_opened`` seeds nothing and publishes nothing.
- Several workspaces: only allow-listed teams install (others get a page saying why, and no row); an
  installed team that is not (or no longer) allowed is refused anyway; with no allow-list the app refuses
  to start. Authorization is cached and a 429 on ``auth.test`` is never slept on before the answer.
- Signature first: bodies that are too big, unsigned, not UTF-8, not JSON, nested too deep, or carry a
  timestamp that is not a number get 413/401/400, quickly, and no traceback in the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import io
import json
import logging
import re
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest
from sqlalchemy import func, select, text

from bot.app import build_app, wsgi_app
from bot.config import SlackSettings, access_file_teams
from bot.request import read_signed_body
from bot.sandbox import AppServer, SlackSide, Workspace, app_home_opened, slash_command
from kpi.db import make_engine
from kpi.errors import KpiError
from kpi.state.tables import state_metadata

from .test_slack_app import CONFIG, SECRET, Rig

OTHER = Workspace(team_id="T0OTHER", team_domain="other-shop")
FORM = "application/x-www-form-urlencoded"


def multi_rig(url: str, allowed: tuple[str, ...] = ("T0NEWSHOP",)) -> Rig:
    """Tests' Rig in multi-workspace mode, with an allow-list."""
    rig = Rig(url, multi=True)
    rig.server.stop()
    rig.slack = dataclasses.replace(rig.slack, allowed_teams=allowed)
    rig.app = build_app(rig.services, rig.slack)
    rig.server = AppServer(wsgi_app(rig.services, rig.slack, rig.app)).start()
    rig.side = SlackSide(rig.server.url, SECRET)
    return rig


def state_rows(rig: Rig) -> dict[str, int]:
    """Rows in every state table (the defaults seeded on first contact land there)."""
    engine = rig.services.state()
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in state_metadata.sorted_tables}


def oauth_install(rig: Rig, team_id: str, token: str):
    """Slack's install round trip: /slack/install, then the redirect with the code; (status, page)."""
    with urllib.request.urlopen(rig.server.url + "/slack/install", timeout=5) as resp:  # noqa: S310 - loopback
        page = resp.read().decode()
        cookie = resp.headers["Set-Cookie"].split(";")[0]
    state = re.search(r"state=([\w-]+)", page).group(1)
    code = rig.standin.new_oauth_code(team_id, f"Shop {team_id}", token, "U0BOT" + team_id[-3:])
    callback = urllib.request.Request(f"{rig.server.url}/slack/oauth_redirect?code={code}&state={state}",
                                      headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(callback, timeout=5) as r:  # noqa: S310 - loopback
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def installed_teams(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(row[0] for row in conn.execute(text("SELECT team_id FROM slack_installations")))
    finally:
        engine.dispose()


def messages_to(rig: Rig, team_id: str):
    return [m for m in rig.standin.messages if m.team_id == team_id]


# -- single workspace ---------------------------------------------------------------------------------


def test_another_workspace_command_is_refused_with_no_numbers(rig):
    rig.standin.add_team(OTHER.team_id, "xoxb-other-team")
    rig.standin.add_user("U0OTTO", name="otto", team_id=OTHER.team_id, is_admin=True)
    rig.standin.add_channel("C9OTHER", "other", team_id=OTHER.team_id)
    url = rig.standin.new_response_url(team_id=OTHER.team_id, channel_id="C9OTHER", user_id="U0OTTO")
    before = state_rows(rig)
    reply = rig.side.post(slash_command("conversion", response_url=url, ws=OTHER, user_id="U0OTTO",
                                        channel_id="C9OTHER"))
    assert reply.status == 200 and reply.seconds < 5  # sleeping on Retry-After: 5 would take 5 s or more
    answer = json.loads(reply.body)
    assert answer["response_type"] == "ephemeral"
    assert "This app serves another workspace" in answer["text"]
    assert "%" not in answer["text"] and "Conversion" not in answer["text"]
    time.sleep(0.8)
    assert messages_to(rig, OTHER.team_id) == []  # nothing through the response_url, no chart, no DM
    assert not [c for c in rig.standin.calls if c.method.startswith("files.")]
    assert state_rows(rig) == before
    _, ours = rig.ask("conversion")  # the bot token's own team is still answered
    assert "2.0%" in ours.text + json.dumps(ours.blocks)


def test_another_workspace_home_opened_seeds_and_publishes_nothing(rig):
    rig.standin.add_team(OTHER.team_id, "xoxb-other-team")
    before = state_rows(rig)
    reply = rig.side.post(app_home_opened("U0OTTO", ws=OTHER), "application/json")
    assert reply.status == 200 and reply.body == ""
    time.sleep(1.0)
    assert state_rows(rig) == before  # no second set of defaults (two identical digests the next weekday)
    assert not rig.standin.calls_to("views.publish")
    assert (OTHER.team_id, "U0OTTO") not in rig.standin.home_views
    # the same event from the bot token's team is served (so the counts above would have seen a seed)
    assert rig.side.post(app_home_opened("U0ALICE"), "application/json").status == 200
    rig.standin.wait_for(lambda: (rig.standin.team_id, "U0ALICE") in rig.standin.home_views, timeout=20)


# -- several workspaces -------------------------------------------------------------------------------


def test_oauth_callback_refuses_a_team_not_on_the_allow_list(database_url, caplog):
    rig = multi_rig(database_url, allowed=("T0NEWSHOP",))
    try:
        status, page = oauth_install(rig, "T0INTRUDER", "xoxb-intruder")
        assert status == 403
        assert "T0INTRUDER" in page and "allow-list" in page and "nothing was installed" in page
        assert installed_teams(database_url) == []
        assert "xoxb-intruder" not in caplog.text
        status, _ = oauth_install(rig, "T0NEWSHOP", "xoxb-new-shop")  # the allowed team installs as before
        assert status == 200
        assert installed_teams(database_url) == ["T0NEWSHOP"]
    finally:
        rig.close()


def test_an_installed_team_that_is_not_allowed_is_refused_before_any_listener(database_url):
    from slack_sdk.oauth.installation_store import Installation

    rig = multi_rig(database_url, allowed=("T0NEWSHOP",))
    try:
        # installed before the allow-list existed (the leak of issue 12), or dropped from it since
        rig.standin.add_team("T0FORMER", "xoxb-former")
        rig.standin.add_channel("C2FORMER", "former", team_id="T0FORMER")
        rig.app.installation_store.save(Installation(
            app_id="A0KPIBOT", enterprise_id=None, team_id="T0FORMER", user_id="U0ALICE", bot_token="xoxb-former",
            bot_id="B0FORMER", bot_user_id="U0BOT", bot_scopes=["commands", "chat:write"]))
        assert rig.app.installation_store.find_bot(enterprise_id=None, team_id="T0FORMER") is not None
        before = state_rows(rig)
        url = rig.standin.new_response_url(team_id="T0FORMER", channel_id="C2FORMER")
        reply = rig.side.post(slash_command("orders", response_url=url, ws=Workspace(team_id="T0FORMER"),
                                            channel_id="C2FORMER"))
        assert reply.status == 200 and "This app serves another workspace" in reply.body
        assert rig.side.post(app_home_opened("U0ALICE", ws=Workspace(team_id="T0FORMER")),
                             "application/json").body == ""
        time.sleep(0.8)
        assert messages_to(rig, "T0FORMER") == []
        assert not [c for c in rig.standin.calls if c.token == "xoxb-former"]  # not even an auth.test
        assert state_rows(rig) == before
    finally:
        rig.close()


def test_authorization_is_cached_and_a_rate_limited_auth_test_is_not_slept_on(database_url):
    rig = multi_rig(database_url, allowed=("T0NEWSHOP", "T0SECOND"))
    try:
        assert oauth_install(rig, "T0NEWSHOP", "xoxb-new-shop")[0] == 200
        assert oauth_install(rig, "T0SECOND", "xoxb-second")[0] == 200
        rig.standin.add_user("U0NEW", name="nora", team_id="T0NEWSHOP")
        rig.standin.add_channel("C1SALES", "sales", team_id="T0NEWSHOP")
        new = dict(ws=Workspace(team_id="T0NEWSHOP"), user_id="U0NEW", channel_id="C1SALES")
        asked = lambda: [c for c in rig.standin.calls_to("auth.test") if c.token == "xoxb-new-shop"]  # noqa: E731
        at_install = len(asked())  # the OAuth flow's own auth.test
        for _ in range(3):
            _, message = rig.ask("orders", **new)
            assert "Orders" in message.text + json.dumps(message.blocks)
        assert len(asked()) - at_install == 1  # authorization asked once, then cached
        # a team not yet cached, while auth.test is rate limited for 5 s: answered at once, not after 5 s
        rig.standin.add_channel("C3SECOND", "second", team_id="T0SECOND")
        rig.standin.fail_next("auth.test", status=429, retry_after=5)
        url = rig.standin.new_response_url(team_id="T0SECOND", channel_id="C3SECOND")
        reply = rig.side.post(slash_command("orders", response_url=url, ws=Workspace(team_id="T0SECOND"),
                                            channel_id="C3SECOND"))
        assert reply.status < 500 and reply.seconds < 5.0, (reply.status, reply.seconds)
    finally:
        rig.close()


def test_several_workspaces_without_an_allow_list_refuse_to_start(tmp_path):
    env = {"SLACK_SIGNING_SECRET": SECRET, "SLACK_CLIENT_ID": "111.222", "SLACK_CLIENT_SECRET": "s",
           "KPIBOT_CONFIG": str(tmp_path)}
    with pytest.raises(KpiError) as err:
        SlackSettings.from_env(env).check()
    assert "KPIBOT_ALLOWED_TEAMS" in str(err.value) and "config/access.yaml" in str(err.value)
    ok = SlackSettings.from_env(dict(env, KPIBOT_ALLOWED_TEAMS=" T0AAA, T0BBB ,"))
    ok.check()
    assert ok.allowed_teams == ("T0AAA", "T0BBB")
    (tmp_path / "access.yaml").write_text("admins: [U0ALICE]\nallowed_teams: [T0CCC, E0GRID]\n", encoding="utf-8")
    from_file = SlackSettings.from_env(env)
    from_file.check()
    assert from_file.allowed_teams == ("T0CCC", "E0GRID")
    (tmp_path / "access.yaml").write_text("allowed_teams: {T0CCC: yes}\n", encoding="utf-8")
    with pytest.raises(KpiError, match="allowed_teams must be a list"):
        SlackSettings.from_env(env)
    # one workspace (a bot token) needs no allow-list: the token's own team is the only one served
    SlackSettings.from_env({"SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-1",
                            "KPIBOT_CONFIG": str(tmp_path / "none")}).check()


def test_the_shipped_access_file_is_an_example_that_allows_nobody():
    assert (CONFIG / "access.yaml").exists()
    assert access_file_teams(CONFIG) == ()
    example = (CONFIG / "access.yaml").read_text(encoding="utf-8")
    assert "allowed_teams" in example and "KPIBOT_ALLOWED_TEAMS" in example


# -- signature first ----------------------------------------------------------------------------------


def sign_bytes(secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def post_bytes(rig: Rig, body: bytes, *, content_type: str = FORM, timestamp: str | None = None,
               signed: bool = True, headers: dict[str, str] | None = None) -> tuple[int, str, float]:
    ts = str(int(time.time())) if timestamp is None else timestamp
    h = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts}
    if signed:
        h["X-Slack-Signature"] = sign_bytes(SECRET, ts, body)
    h.update(headers or {})
    target = urlparse(rig.side.endpoint)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    started = time.perf_counter()
    try:
        conn.putrequest("POST", target.path)
        for k, v in h.items():
            conn.putheader(k, v.encode("latin-1"))
        conn.putheader("Content-Length", str(len(body)))
        try:
            conn.endheaders(body)
        except (BrokenPipeError, ConnectionResetError):
            # the server answered (413) and closed before the whole body was sent, as it should for a
            # body it refuses unread: its answer is still there to read
            pass
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace"), time.perf_counter() - started
    finally:
        conn.close()


def nesting_bomb(depth: int = 100_000) -> str:
    return '{"type": "block_actions", "x": ' + "[" * depth + "]" * depth + "}"


MALFORMED = {
    # name: (body, content type, signed?, timestamp, expected status)
    "invalid json, unsigned": (b'{"type": "event_callback", ', "application/json", False, None, 401),
    "invalid json, signed": (b'{"type": "event_callback", ', "application/json", True, None, 400),
    "invalid utf-8, unsigned": (b"command=%2Fkpi&text=\xff\xfe\xc3(", FORM, False, None, 401),
    "invalid utf-8, signed": (b"command=%2Fkpi&text=\xff\xfe\xc3(", FORM, True, None, 400),
    "nesting bomb, unsigned": (nesting_bomb().encode(), "application/json", False, None, 401),
    "nesting bomb, signed": (nesting_bomb().encode(), "application/json", True, None, 400),
    "nesting bomb in payload=, signed": (urlencode({"payload": nesting_bomb(5000)}).encode(), FORM, True, None, 400),
    "payload= not json, signed": (b"payload=%7Bnot+json", FORM, True, None, 400),
    "json that is not an object, signed": (b"[1, 2, 3]", "application/json", True, None, 400),
    "400-digit timestamp": (b"command=%2Fkpi&text=orders", FORM, True, "9" * 400, 401),
    "non-ascii digit timestamp": (b"command=%2Fkpi&text=orders", FORM, True, "153142061\u00b3", 401),
    "negative timestamp": (b"command=%2Fkpi&text=orders", FORM, True, "-1531420618", 401),
    "empty timestamp": (b"command=%2Fkpi&text=orders", FORM, False, "", 401),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_400_or_401_fast_and_no_traceback(rig, caplog, name):
    body, content_type, signed, timestamp, expected = MALFORMED[name]
    caplog.set_level(logging.DEBUG)
    status, reply, seconds = post_bytes(rig, body, content_type=content_type, signed=signed, timestamp=timestamp)
    assert status == expected, (status, reply)
    assert "Traceback" not in reply

    def ours(r) -> bool:  # the request's own handling (an earlier test's thread calling Slack is not this request)
        return r.name.startswith(("kpibot", "slack_bolt", "bot.", "kpi."))

    bad = [r for r in caplog.records if ours(r) and (r.exc_info or r.levelno >= logging.ERROR)]
    assert not bad, [r.getMessage() for r in bad]
    assert "Traceback" not in caplog.text


def test_missing_signature_headers_get_401(rig, caplog):
    body = slash_command("orders", response_url=rig.standin.new_response_url()).encode()
    for headers in ({}, {"X-Slack-Signature": sign_bytes(SECRET, str(int(time.time())), body)}):
        req = urllib.request.Request(rig.side.endpoint, data=body, headers={"Content-Type": FORM, **headers})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)  # noqa: S310 - loopback
        assert err.value.code == 401
        err.value.close()
    assert "Traceback" not in caplog.text
    time.sleep(0.3)
    assert not [m for m in rig.standin.messages if m.kind == "response_url"]


def test_a_25_mb_body_gets_413_before_it_is_read(rig, caplog):
    target = urlparse(rig.side.endpoint)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:  # the headers announce 25 MB; the app answers without waiting for (or reading) any of it
        conn.putrequest("POST", target.path)
        conn.putheader("Content-Type", FORM)
        conn.putheader("Content-Length", str(25 * 1024 * 1024))
        conn.putheader("X-Slack-Request-Timestamp", str(int(time.time())))
        conn.putheader("X-Slack-Signature", "v0=" + "0" * 64)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413
        resp.read()
    finally:
        conn.close()
    # (answered at all: the client never sends the 25 MB, so a server that read them would hang to the timeout)
    assert "Traceback" not in caplog.text
    # a signed body just over the cap is refused too; one under it is answered
    big = slash_command("orders " + "x" * 1_000_000, response_url=rig.standin.new_response_url()).encode()
    assert post_bytes(rig, big)[0] == 413
    assert rig.side.command("orders", response_url=rig.standin.new_response_url()).status == 200


class CountingInput(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def test_a_body_without_content_length_is_read_no_further_than_the_cap():
    from bot.request import Refused

    stream = CountingInput(b"x" * (25 * 1024 * 1024))
    environ = {"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_TYPE": FORM}
    with pytest.raises(Refused) as err:
        read_signed_body(environ, signing_secret=SECRET, max_bytes=1_000_000)
    assert err.value.status == 413 and stream.taken <= 1_000_001
    # a lying or absurd Content-Length is a 400, never an int() traceback
    for length in ("abc", "9" * 40, "-5"):
        with pytest.raises(Refused) as err:
            read_signed_body({"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": length}, signing_secret=SECRET)
        assert err.value.status in (400, 413)


def test_slacks_published_test_vector_passes_the_raw_byte_check():
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
            b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
            b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": FORM,
               "HTTP_X_SLACK_REQUEST_TIMESTAMP": "1531420618",
               "HTTP_X_SLACK_SIGNATURE": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}
    assert read_signed_body(environ, signing_secret="8f742231b10e8888abcd99yyyzzz85a5", now=1531420618 + 10) == body.decode()


def test_healthz_and_the_install_page_still_work(database_url):
    rig = multi_rig(database_url)
    try:
        with urllib.request.urlopen(rig.server.url + "/healthz", timeout=5) as resp:  # noqa: S310 - loopback
            assert resp.status == 200
        with urllib.request.urlopen(rig.server.url + "/slack/install", timeout=5) as resp:  # noqa: S310 - loopback
            assert "slack.com/oauth/v2/authorize" in resp.read().decode()
    finally:
        rig.close()


def test_the_access_example_file_documents_the_format():
    example = Path(CONFIG / "access.yaml").read_text(encoding="utf-8")
    assert all(line.startswith("#") or not line.strip() for line in example.splitlines())
