"""Attacks: forged, stale, re-signed, header-less and replayed requests are refused (401, nothing
answered); one workspace never sees another's goals; a non-admin changes nothing; and no secret ever
reaches a log line, even at DEBUG. SQLite and PostgreSQL.

With ``KPIBOT_RELIABILITY_REPORT_DIR`` set, the counts go to ``<dir>/security.json``.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import traceback
import urllib.request
from datetime import date
from urllib.parse import urlparse

import pytest

from bot.sandbox import SlackSide, Workspace, app_home_opened, block_action, sign, slash_command
from kpi.goals import GoalSpec
from kpi.state.store import Goals, NotFound

from ..test_slack_app import SECRET, Rig
from ..test_tenancy import MALFORMED, OTHER, multi_rig, post_bytes, sign_bytes, state_rows
from . import write_report
from .test_inputs import NON_ADMIN, REPLY_TIMEOUT, Probe, check_message

STATS = {"probes": 0, "refusals": 0, "leaks": 0, "log_records_checked": 0, "tests": {}}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    write_report("security", dict(STATS, passed=bool(STATS["tests"]) and all(v == "passed" for v in STATS["tests"].values())))


@pytest.fixture
def outcome(request):
    """Marks the test passed in the report only when its body ran to the end."""
    STATS["tests"][request.node.nodeid] = "failed"

    def passed():
        STATS["tests"][request.node.nodeid] = "passed"
    return passed


@pytest.fixture
def probe(database_url):
    p = Probe(database_url)
    yield p
    p.close()


def text_of(message) -> str:
    return (message.text or "") + "\n" + json.dumps(message.blocks or [], ensure_ascii=False)


def post_raw(rig: Rig, body: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(rig.side.endpoint, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


# -- request signatures -------------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def forgeries(rig: Rig, body: str) -> dict[str, int]:
    """Each forged request's HTTP status."""
    now = int(time.time())
    other = slash_command("revenue", response_url=rig.standin.new_response_url())
    old = now - 301
    return {
        "wrong secret": SlackSide(rig.server.url, "not-the-signing-secret").post(body).status,
        # Slack's window is 5 minutes each way; 10 minutes out stays out however slow a busy machine is
        "stale timestamp": rig.side.post(body, timestamp=now - 600).status,
        "future timestamp": rig.side.post(body, timestamp=now + 600).status,
        "signature of another body": rig.side.post(body, signature=sign(SECRET, now, other)).status,
        "signature of another timestamp": rig.side.post(body, timestamp=now, signature=sign(SECRET, now - 1, body)).status,
        "no signature": post_raw(rig, body, {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(now)}),
        "no timestamp": post_raw(rig, body, {"Content-Type": FORM, "X-Slack-Signature": sign(SECRET, now, body)}),
        "no headers": post_raw(rig, body, {"Content-Type": FORM}),
        "empty signature": rig.side.post(body, signature="").status,
        "v1 signature": rig.side.post(body, signature="v1=" + sign(SECRET, now, body)[3:]).status,
        "garbage timestamp": post_raw(rig, body, {"Content-Type": FORM, "X-Slack-Request-Timestamp": "soon",
                                                  "X-Slack-Signature": sign(SECRET, "soon", body)}),
        # a request captured with its valid signature and sent again more than 5 minutes later
        "replayed after 5 minutes": rig.side.post(body, timestamp=old, signature=sign(SECRET, old, body)).status,
    }


def test_forged_stale_and_replayed_requests_get_401_and_no_answer(probe, outcome):
    rig = probe.rig
    url = rig.standin.new_response_url()
    path = url[len(rig.standin.root_url):]
    body = slash_command("goal list", response_url=url)
    probe.settle()  # the seeds' answers and charts (a chart is shared in a DM) have all landed
    seen = len(rig.standin.messages)
    statuses = forgeries(rig, body)
    interaction = block_action("kpi_share", json.dumps({"q": "revenue"}), response_url=url)
    statuses["forged interaction"] = SlackSide(rig.server.url, "x" * 32).post(interaction).status
    STATS["probes"] += len(statuses)
    STATS["refusals"] += sum(s == 401 for s in statuses.values())
    assert {k: v for k, v in statuses.items() if v != 401} == {}
    # Work a request starts is queued before its HTTP reply: once nothing is left running, any answer
    # or share a forgery had started would be in the stand-in's record (no guessed quiet period)
    probe.settle()
    assert probe.uses(path)[0] == 0  # nothing answered...
    assert not [m for m in rig.standin.messages[seen:] if m.kind == "message"]  # ...nor shared anywhere
    assert probe.snapshot() == probe.baseline
    assert rig.side.post(body).status == 200  # the same request, correctly signed now, is answered
    rig.standin.wait_for(lambda: probe.uses(path)[0] >= 1, timeout=REPLY_TIMEOUT)
    probe.settle()
    assert probe.uses(path)[0] == 1  # once
    outcome()


# A refusal reads no database and calls no Slack: milliseconds here. The bound catches a refusal that
# waits on something (a lock, a call, the rest of a body); generous, so that a busy machine (other
# processes on every core) does not trip it. The client gives up after 10 s.
REFUSAL_SECONDS = 5.0


def post_announced(rig: Rig, body: bytes) -> tuple[int, float]:
    """``body`` signed and announced (its ``Content-Length``), but only the headers sent: a body over the
    cap is refused on its length alone, unread (a server that read it would wait for it until the client
    gives up). Sending it all would race the refusal: the server closes on the unread bytes and the
    client, still writing them on a busy machine, gets a broken pipe instead of the 413."""
    ts = str(int(time.time()))
    target = urlparse(rig.side.endpoint)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    started = time.perf_counter()
    try:
        conn.putrequest("POST", target.path)
        conn.putheader("Content-Type", FORM)
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("X-Slack-Request-Timestamp", ts)
        conn.putheader("X-Slack-Signature", sign_bytes(SECRET, ts, body))
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - started
    finally:
        conn.close()


def test_malformed_unsigned_and_oversized_bodies_get_4xx_and_no_traceback(probe, caplog, outcome):
    """Signature first (issue 12): nothing is parsed before the signature, nothing is a 500."""
    rig = probe.rig
    probe.settle()  # the seeds' work has ended: every log record from here on is these requests' own
    caplog.set_level(logging.DEBUG)
    statuses = {}
    for name, (body, content_type, signed, timestamp, expected) in MALFORMED.items():
        status, _, seconds = post_bytes(rig, body, content_type=content_type, signed=signed, timestamp=timestamp)
        statuses[name] = (status, expected, seconds < REFUSAL_SECONDS)
    big = slash_command("orders " + "x" * 1_100_000, response_url=rig.standin.new_response_url()).encode()
    status, seconds = post_announced(rig, big)
    statuses["over the body cap"] = (status, 413, seconds < REFUSAL_SECONDS)
    STATS["probes"] += len(statuses)
    STATS["refusals"] += sum(s == e for s, e, _ in statuses.values())
    assert {k: v for k, v in statuses.items() if v[0] != v[1] or not v[2]} == {}
    probe.settle()  # nothing was started for them (work is queued before the reply), or it has now logged
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]
    assert probe.snapshot() == probe.baseline
    outcome()


# -- workspaces ---------------------------------------------------------------------------------------


def test_another_workspace_is_refused_and_seeds_nothing(probe, outcome):
    """Single-workspace mode: a signed request from another team gets a refusal, no numbers, no defaults."""
    rig = probe.rig
    rig.standin.add_team(OTHER.team_id, "xoxb-other-team")
    rig.standin.add_channel("C9OTHER", "other", team_id=OTHER.team_id)
    before = state_rows(rig)
    replies = [rig.side.post(slash_command(t, response_url=rig.standin.new_response_url(team_id=OTHER.team_id,
                                                                                         channel_id="C9OTHER"),
                                           ws=OTHER, channel_id="C9OTHER"))
               for t in ("conversion", "revenue by channel", "goal list", "digest list")]
    replies.append(rig.side.post(app_home_opened("U0OTTO", ws=OTHER), "application/json"))
    STATS["probes"] += len(replies)
    assert all(r.status == 200 for r in replies)
    assert all("another workspace" in r.body for r in replies[:-1]) and replies[-1].body == ""
    time.sleep(1.0)
    assert not [m for m in rig.standin.messages if m.team_id == OTHER.team_id]
    assert state_rows(rig) == before
    STATS["refusals"] += len(replies)
    outcome()


SECRET_GOAL = GoalSpec(metric="revenue", target_kind="relative_pct", target_value=0.10, start=date(2026, 1, 1),
                       deadline=date(2026, 12, 31), filters=(("channel", ("email",)),), owner="U0ALICE",
                       channel="C0GROWTH", text="revenue +10% channel=email by 2026-12-31 SECRET-PLAN-ZEBRA")


def test_team_b_never_sees_team_a_goal(probe, outcome):
    rig = probe.rig
    state = rig.services.state()
    ours = Goals(state, "T0STANDIN").add(SECRET_GOAL, created_by="U0ALICE")
    rig.standin.add_team("T0OTHER", "xoxb-other-team")
    rig.standin.add_user("U0OTTO", name="otto", team_id="T0OTHER", is_admin=True)
    rig.standin.add_channel("C9OTHER", "other", team_id="T0OTHER")
    other = dict(ws=Workspace(team_id="T0OTHER"), user_id="U0OTTO", channel_id="C9OTHER")
    texts = [f"goal show {ours.id}", "goal list", f"goal archive {ours.id}", "digest preview", "digest list",
             "alert list", f"alert test {ours.id}", "goal", "revenue"]
    for text in texts:
        url = rig.standin.new_response_url(team_id="T0OTHER", channel_id="C9OTHER", user_id="U0OTTO")
        reply = rig.side.post(slash_command(text, response_url=url, **other))
        STATS["probes"] += 1
        assert reply.status in (200, 401) and "SECRET-PLAN-ZEBRA" not in reply.body
    time.sleep(1.0)
    to_b = [m for m in rig.standin.messages if m.team_id == "T0OTHER"]
    assert not [m for m in to_b if "SECRET-PLAN-ZEBRA" in text_of(m) or "ZEBRA" in text_of(m).upper()]
    assert not [c for c in rig.standin.calls if "ZEBRA" in json.dumps(c.params, default=str) and
                c.token == "xoxb-other-team"]
    STATS["refusals"] += len(texts) - len([m for m in to_b if m.kind == "response_url"])
    assert Goals(state, "T0STANDIN").get(ours.id).archived_at is None
    # the store itself: team B naming A's id finds nothing and is told nothing
    for attempt in (lambda: Goals(state, "T0OTHER").get(ours.id), lambda: Goals(state, "T0OTHER").archive(ours.id)):
        STATS["probes"] += 1
        with pytest.raises(NotFound) as err:
            attempt()
        STATS["refusals"] += 1
        assert "T0STANDIN" not in str(err.value) and "ZEBRA" not in str(err.value) and "revenue" not in str(err.value)
    assert Goals(state, "T0STANDIN").get(ours.id).archived_at is None
    outcome()


# -- a non-admin --------------------------------------------------------------------------------------


def test_a_non_admin_changes_nothing(probe, outcome):
    goal = Goals(probe.rig.services.state(), "T0STANDIN").list()[0]
    texts = ["goal add revenue +10% by 2026-12-31 owner <@U0BRUNO> <#C0GROWTH|growth>", f"goal archive {goal.id}",
             "goal ajouter conversion 3.5% by 2026-12-31", f"goal archiver {goal.id}",
             "digest add <#C0GROWTH|growth> 08:30 mon-fri Europe/Paris", "digest remove 1", "digest delete 1",
             "alert add conversion below 1.5% over 3 days in <#C0GROWTH|growth>", "alert mute 1 4h", "alert unmute 1",
             "alert remove 1", "alert delete 2"]
    for text in texts:
        STATS["probes"] += 1
        reply, path = probe.send(text, NON_ADMIN)
        assert reply.status == 200
        probe.rig.standin.wait_for(lambda: probe.uses(path)[0] >= 1, timeout=10)  # noqa: B023 - used at once
        message = probe.uses(path)[1]
        check_message(message, text)
        assert "admin" in text_of(message).lower(), (text, text_of(message))
        assert probe.snapshot() == probe.baseline, text
        STATS["refusals"] += 1
    assert not probe.rig.standin.opened_views  # no form opened by a command that names what to change
    # the form commands open the form first (views.open is the first call: the trigger lives 3 s), then the
    # permission check replaces it with the refusal; nothing can be submitted and nothing changes
    for text in ("goal add", "alert add"):
        STATS["probes"] += 1
        trigger = probe.rig.standin.new_trigger_id(user_id=NON_ADMIN)
        url = probe.rig.standin.new_response_url(user_id=NON_ADMIN)
        seen = len(probe.rig.standin.updated_views)
        reply = probe.rig.side.command(text, response_url=url, user_id=NON_ADMIN, user_name=NON_ADMIN[3:].lower(),
                                       trigger_id=trigger)
        assert reply.status == 200
        probe.rig.standin.wait_for(lambda: len(probe.rig.standin.updated_views) > seen, timeout=20)  # noqa: B023
        refusal = json.dumps(probe.rig.standin.updated_views[-1], ensure_ascii=False).lower()
        assert "admin" in refusal and '"submit"' not in refusal, (text, refusal[:300])
        assert probe.snapshot() == probe.baseline, text
        STATS["refusals"] += 1
    outcome()


# -- secrets and logs ---------------------------------------------------------------------------------

TOKEN = re.compile(r"xox[abposr]-[\w-]+|xapp-[\w-]+")


def leaks_in(records, secrets: set[str]) -> list[str]:
    found = []
    for r in records:
        parts = [r.getMessage(), repr(r.args), r.name]
        if r.exc_info:
            parts.append("".join(traceback.format_exception(*r.exc_info)))
        if r.exc_text:
            parts.append(r.exc_text)
        seen = "\n".join(parts)
        hits = sorted({s for s in secrets if s in seen} | set(TOKEN.findall(seen)))
        if hits:
            found.append(f"{r.name} {r.levelname}: {hits} in {r.getMessage()[:300]!r}")
    return found


def debug_everywhere(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("slack_sdk", "slack_bolt", "slack_bolt.App", "kpibot", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)


def test_no_secret_in_any_log_line_at_debug(database_url, caplog, outcome):
    debug_everywhere(caplog)
    rig = Rig(database_url)
    try:
        _, answer = rig.ask("revenue")
        rig.standin.wait_for(lambda: any(m.replace_original for m in rig.standin.messages), timeout=20)
        value = next(e for b in answer.blocks if b["type"] == "actions" for e in b["elements"])["value"]
        seen = len(rig.standin.messages)
        rig.side.post(block_action("kpi_share", value, response_url=rig.standin.new_response_url()))
        rig.standin.wait_for(lambda: any(m.kind == "message" and m.thread_ts for m in rig.standin.messages[seen:]),
                             timeout=20)
        rig.ask("goal list")
        SlackSide(rig.server.url, "wrong-secret").command("revenue", response_url=rig.standin.new_response_url())
        secrets = {SECRET, rig.standin.bot_token}
    finally:
        rig.close()
    STATS["log_records_checked"] += len(caplog.records)
    leaks = leaks_in(caplog.records, secrets)
    STATS["leaks"] += len(leaks)
    assert caplog.records, "nothing was logged: the capture is not working"
    assert leaks == [], "\n".join(leaks[:10])
    outcome()


def test_no_secret_in_any_log_line_during_an_oauth_install(database_url, caplog, outcome):
    debug_everywhere(caplog)
    rig = multi_rig(database_url, allowed=("T0NEWSHOP",))
    try:
        _oauth_install(rig)
    finally:
        rig.close()
    secrets = {SECRET, rig.slack.client_secret, "xoxb-new-shop"}
    STATS["log_records_checked"] += len(caplog.records)
    leaks = leaks_in(caplog.records, secrets)
    STATS["leaks"] += len(leaks)
    assert leaks == [], "\n".join(leaks[:10])
    outcome()


def _oauth_install(rig: Rig) -> None:
    with urllib.request.urlopen(rig.server.url + "/slack/install", timeout=5) as resp:  # noqa: S310 - loopback
        page = resp.read().decode()
        cookie = resp.headers["Set-Cookie"].split(";")[0]
    state = re.search(r"state=([\w-]+)", page).group(1)
    code = rig.standin.new_oauth_code("T0NEWSHOP", "New Shop", "xoxb-new-shop", "U0BOTNEW")
    callback = urllib.request.Request(f"{rig.server.url}/slack/oauth_redirect?code={code}&state={state}",
                                      headers={"Cookie": cookie})
    with urllib.request.urlopen(callback, timeout=5) as r:  # noqa: S310 - loopback
        assert r.status == 200
    rig.standin.add_user("U0NEW", name="nora", team_id="T0NEWSHOP")
    rig.standin.add_channel("C1SALES", "sales", team_id="T0NEWSHOP")
    _, message = rig.ask("orders", ws=Workspace(team_id="T0NEWSHOP"), user_id="U0NEW", channel_id="C1SALES")
    assert "Orders" in text_of(message)
