"""Nothing twice (issue 14, points 2-4): what Slack received after everything settled, when Slack accepts a
message after the client stopped waiting, when a worker dies after Slack accepted its message, when a live
worker is slower than its lease, and when the database blinks right after Slack accepted. SQLite and
PostgreSQL; real processes killed with SIGKILL; the stand-in Slack, which (as Slack) applies a delayed call
after its client gave up and returns message metadata from conversations.history / .replies.

With KPIBOT_RELIABILITY_REPORT_DIR set, ``<dir>/exactly_once.json`` gets each scenario: tries, posts
expected, posts seen.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta

import pytest
from slack_sdk import WebClient

from bot.app import retry_handlers
from bot.delivery import key_of
from bot.digests import DigestSender
from kpi.alerts.evaluation import evaluate_rules
from kpi.alerts.store import StateStore
from kpi.state.store import Schedules

from . import write_report
from .test_faults import CLIENT_TIMEOUT, DUE, SETTLE, SLOW_SLACK, T0, TEAM, Clock, FaultRig

SCENARIOS: dict[str, dict] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    write_report("exactly_once", {"scenarios": [{"scenario": k, **v} for k, v in sorted(SCENARIOS.items())]})


def seen(name: str, backend: str, expected: int, posts: int) -> None:
    entry = SCENARIOS.setdefault(name, {"tries": 0, "expected": 0, "seen": 0})
    entry["tries"] += 1
    entry["expected"] += expected
    entry["seen"] += posts
    entry.setdefault("databases", []).append(backend)


@pytest.fixture
def rig(database_url):
    r = FaultRig(database_url)
    yield r
    r.close()


def backend(rig) -> str:
    return "postgresql" if rig.postgres else "sqlite"


def _post_and_die(rig, key: str, kind: str, at: datetime, *, due: datetime | None, text: str) -> None:
    """A worker process that claims ``key``, posts its message to Slack (the real ``bot.delivery.post``,
    metadata and all), and is killed before it can record anything."""
    claim = (f"claim = log.claim_due({key!r})\n" if kind == "alert" else
             f"claim = log.claim({key!r}, team_id={TEAM!r}, kind='digest', channel='C0GENERAL', "
             f"due_at=datetime.fromisoformat({due.isoformat()!r}))\n")
    code = (
        "import os, signal\n"
        "from datetime import datetime\n"
        "from slack_sdk import WebClient\n"
        "from bot.delivery import post\n"
        "from kpi.db import make_engine\n"
        "from kpi.state.delivery import DeliveryLog\n"
        f"log = DeliveryLog(make_engine({rig.url!r}), worker='doomed', clock=lambda: datetime.fromisoformat({at.isoformat()!r}))\n"
        + claim +
        "assert claim is not None\n"
        f"client = WebClient(token={rig.slack.bot_token!r}, base_url={rig.slack.api_url!r})\n"
        f"post(client, log, claim, channel='C0GENERAL', text={text!r}, blocks=None)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_digest_slack_accepted_before_its_worker_was_killed_is_not_posted_again(rig):
    s = rig.add_schedule()
    key = f"digest:{s.id}:2026-11-24"
    _post_and_die(rig, key, "digest", DUE + timedelta(seconds=3), due=DUE, text="KPI digest (first attempt)")
    assert [m.text for m in rig.posts()] == ["KPI digest (first attempt)"]
    # within the lease: respected; after it: taken back, found in the channel, recorded, not posted again
    assert [o for o in rig.sender(DUE + timedelta(seconds=30)).tick() if o.status == "sent"] == []
    outcomes = rig.sender(DUE + timedelta(minutes=3), worker="w2").tick()
    assert [o.status for o in outcomes] == ["sent"]
    rig.standin.wait_idle()
    posts = rig.posts()
    seen("digest: worker killed after Slack accepted", backend(rig), 1, len(posts))
    assert [m.text for m in posts] == ["KPI digest (first attempt)"]
    [row] = rig.log_rows("digest:")
    assert row["status"] == "sent" and row["slack_ts"] == posts[0].ts
    assert "found in C0GENERAL" in row["notes"] and "interrupted" in row["notes"]
    note = Schedules(rig.services.state(), TEAM).get(s.id).last_error
    assert "earlier attempt had reached Slack" in note
    assert [o for o in rig.sender(DUE + timedelta(hours=1)).tick() if o.status == "sent"] == []
    assert len(rig.posts()) == 1


def test_an_alert_slack_accepted_before_its_worker_was_killed_is_not_posted_again(rig):
    rule = rig.add_rule()
    evaluated, _ = evaluate_rules(rig.services.kpi_engine(), rig.services.state(), [rule], T0)
    assert [n.step for e in evaluated for n in e.notify] == ["fire"]
    key = f"alert:{rule.id}:1:fire"
    _post_and_die(rig, key, "alert", T0 + timedelta(seconds=2), due=None, text="Return rate above 8% (first attempt)")
    [doomed] = [m.ts for m in rig.posts()]
    clock = Clock(T0 + timedelta(minutes=3))
    sent = rig.notifier(clock, worker="w2").check()
    assert [(s.key, s.status) for s in sent] == [(key, "sent")]
    rig.standin.wait_idle()
    posts = rig.posts()
    seen("alert fire: worker killed after Slack accepted", backend(rig), 1, len(posts))
    assert [m.ts for m in posts] == [doomed]  # that one message, updated in place with its status and chart
    # the message found is the episode's: its status updates and resolution will go there, its chart too
    assert StateStore(rig.services.state(), TEAM).load(rule.id).message_ts == posts[0].ts
    assert any(f.get("thread_ts") == posts[0].ts for f in rig.standin.files)
    [row] = rig.log_rows("alert:")
    assert row["status"] == "sent" and "found in C0GENERAL" in row["notes"]


def test_a_live_worker_slower_than_its_lease_keeps_its_claim(rig):
    """Slack takes far longer than the lease to answer; the sending worker renews its lease meanwhile, so
    the other worker, checking all along, never takes the digest over. Real clocks, a short lease."""
    s = rig.add_schedule()
    day = date(2026, 11, 24)
    lease = timedelta(seconds=8)  # renewed every 2 s by the sending worker
    rig.standin.delay_next("chat.postMessage", 12)
    slow = DigestSender(rig.services, rig.clients(timeout=60), worker="w1", lease=lease, settle=SETTLE)
    other = DigestSender(rig.services, rig.clients(timeout=60), worker="w2", lease=lease, settle=SETTLE)
    out = []
    sending = threading.Thread(target=lambda: out.append(slow.send(s, day)))
    sending.start()
    rig.standin.wait_for(lambda: [r["claimed_by"] for r in rig.log_rows("digest:")] == ["w1"], timeout=60)
    taken, answers = [], []
    while sending.is_alive():
        taken += other.log.recover()
        answers.append(other.send(s, day).status)
        time.sleep(0.25)
    sending.join()
    rig.standin.wait_idle()
    posts = rig.posts()
    seen("digest: a live worker slower than its lease", backend(rig), 1, len(posts))
    assert [o.status for o in out] == ["sent"] and taken == [] and set(answers) == {"already"}, (out, taken)
    assert len(posts) == 1
    [row] = rig.log_rows("digest:")
    assert row["status"] == "sent" and row["claimed_by"] == "w1" and "interrupted" not in row["notes"]


@pytest.mark.parametrize("kind", ["digest", "alert"])
def test_slack_accepting_after_the_client_gave_up_is_posted_once(rig, kind):
    """Slack answers after the client's timeout, and posts the message anyway: the sender waits, looks in
    the channel, and records it; the next ticks post nothing."""
    rig.standin.delay_next("chat.postMessage", SLOW_SLACK)
    if kind == "digest":
        rig.add_schedule()
        statuses = [o.status for m in range(3)
                    for o in rig.sender(DUE + timedelta(minutes=m), worker=f"w{m % 2}", timeout=CLIENT_TIMEOUT).tick()]
    else:
        rig.add_rule()
        clock = Clock(T0)
        statuses = []
        for m in range(3):
            clock.now = T0 + timedelta(minutes=m)
            statuses += [s.status for s in rig.notifier(clock, worker=f"w{m % 2}", timeout=CLIENT_TIMEOUT).check()]
    rig.standin.wait_idle()
    posts = rig.posts()
    seen(f"{kind}: Slack accepts after the client's timeout", backend(rig), 1, len(posts))
    assert statuses.count("sent") == 1 and len(posts) == 1, (statuses, [p.text[:40] for p in posts])
    [row] = rig.log_rows(f"{kind}:")
    assert row["status"] == "sent" and "accepted it late" in row["notes"] and row["slack_ts"] == posts[0].ts


class BlinkingClient(WebClient):
    """Slack accepts the message; right then the state database loses the deliveries table (a blip)."""

    def __init__(self, rig, **kw):
        super().__init__(**kw)
        self.rig = rig
        self.blinked = False

    def chat_postMessage(self, **kwargs):  # noqa: N802 - slack_sdk's name
        answer = super().chat_postMessage(**kwargs)
        if not self.blinked and not kwargs.get("thread_ts"):
            self.blinked = True
            self.rig.rename("deliveries", "deliveries_away")
        return answer


def test_a_database_blip_after_slack_accepted_an_alert_leaves_no_orphan(rig):
    """The fire was posted, then its outcome could not be written: the next worker finds the message,
    records it, and attaches the chart the first never could. One message, with its chart."""
    rule = rig.add_rule()
    blinking = BlinkingClient(rig, token=rig.slack.bot_token, base_url=rig.slack.api_url,
                              retry_handlers=retry_handlers())
    from bot.alerts import AlertNotifier

    first = AlertNotifier(rig.services, lambda _team: blinking, clock=Clock(T0), worker="w1", settle=SETTLE).check()
    assert blinking.blinked and [s.status for s in first] == ["sent"]  # the message is out; its record is not
    rig.rename("deliveries_away", "deliveries")
    assert not any(f.get("thread_ts") for f in rig.standin.files)  # no chart: the first attempt stopped there
    later = rig.notifier(Clock(T0 + timedelta(minutes=5)), worker="w2").check()
    assert [s.status for s in later] == ["sent"]
    rig.standin.wait_idle()
    posts = rig.posts()
    seen("alert fire: database blip after Slack accepted", backend(rig), 1, len(posts))
    assert len(posts) == 1 and key_of({"metadata": posts[0].metadata}) == f"alert:{rule.id}:1:fire"
    assert any(f.get("thread_ts") == posts[0].ts for f in rig.standin.files)
    [row] = rig.log_rows("alert:")
    assert row["status"] == "sent" and "found in C0GENERAL" in row["notes"]
    assert [s for s in rig.notifier(Clock(T0 + timedelta(minutes=6)), worker="w1").check() if s.status == "sent"] == []
    assert len(rig.posts()) == 1


def test_the_stand_in_shows_metadata_only_when_asked_and_only_to_members(rig):
    """The Slack behaviour the above rely on (conversations.history): metadata with include_all_metadata
    only; a public channel the bot has not joined cannot be read (not_in_channel) though it can be posted
    to (chat:write.public); thread replies are read with conversations.replies."""
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=rig.slack.bot_token, base_url=rig.slack.api_url)
    meta = {"event_type": "kpibot_delivery", "event_payload": {"key": "k1"}}
    parent = client.chat_postMessage(channel="C0GENERAL", text="parent", metadata=meta)
    client.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=parent["ts"], metadata=meta)
    plain = client.conversations_history(channel="C0GENERAL")["messages"]
    assert [m["text"] for m in plain] == ["parent"] and "metadata" not in plain[0]
    full = client.conversations_history(channel="C0GENERAL", include_all_metadata=True)["messages"]
    assert full[0]["metadata"] == meta
    thread = client.conversations_replies(channel="C0GENERAL", ts=parent["ts"], include_all_metadata=True)
    assert [m["text"] for m in thread["messages"]] == ["parent", "reply"]
    rig.standin.add_channel("C0OUTSIDE", "outside", is_member=False)
    assert client.chat_postMessage(channel="C0OUTSIDE", text="x")["ok"]
    with pytest.raises(SlackApiError) as err:
        client.conversations_history(channel="C0OUTSIDE")
    assert err.value.response["error"] == "not_in_channel"
