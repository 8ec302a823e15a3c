"""Reliability under faults: the source database going away mid-answer and mid-digest, Slack answering
429, 500 or nothing at all, a worker killed between claim and send, and two workers side by side for a
whole simulated day. The promises: a clear message to the user (never a traceback), every digest and
alert exactly once, the delivery log telling the truth. SQLite and PostgreSQL, the local stand-in.

With KPIBOT_RELIABILITY_REPORT_DIR set, ``<dir>/faults.json`` gets each fault and whether it held.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import insert, select, text

from bot.alerts import AlertNotifier
from bot.app import retry_handlers
from bot.digests import DigestSender
from bot.teams import TeamClients
from kpi.alerts.rules import parse_rule
from kpi.alerts.store import AlertRules
from kpi.data import schema
from kpi.db import make_engine
from kpi.state.delivery import LEASE
from kpi.state.store import Schedules
from kpi.state.tables import deliveries

from ..test_slack_app import Rig, _text
from . import write_report

TEAM = "T0STANDIN"
DUE = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday 24 November, 08:00 in Paris
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
# after Slack did not answer in time, how long a sender waits before looking in the channel: well past
# the moment the stand-in's delayed call takes effect (SLOW_SLACK after the client's CLIENT_TIMEOUT)
CLIENT_TIMEOUT, SLOW_SLACK, SETTLE = 0.5, 2.0, 8.0

# -- the report ----------------------------------------------------------------------------------------

FAULTS: dict[str, bool] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    write_report("faults", {"faults": [{"fault": k, "held": v} for k, v in sorted(FAULTS.items())]})


@pytest.fixture
def record(request):
    """``record(name)`` marks the fault as tested; it held if the test passed (the call's report is
    logged, and counted in ``testsfailed``, before this teardown runs)."""
    names = []
    failed_before = request.session.testsfailed
    yield names.append
    passed = request.session.testsfailed == failed_before and request.node.get_closest_marker("xfail") is None
    for name in names:
        FAULTS[name] = FAULTS.get(name, True) and passed


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FaultRig(Rig):
    """The Rig with connections named after this test on PostgreSQL, so that only they are terminated."""

    def __init__(self, url: str):
        self.app_name = f"kpibot_fault_{uuid.uuid4().hex[:12]}"
        if url.startswith("postgresql"):
            url += ("&" if "?" in url else "?") + f"application_name={self.app_name}"
        super().__init__(url)

    @property
    def postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def terminate_backends(self) -> int:
        admin = make_engine(self.url.split("?")[0])
        try:
            with admin.begin() as conn:
                return len(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND datname = current_database() AND application_name = :name"), {"name": self.app_name}).all())
        finally:
            admin.dispose()

    def rename(self, old: str, new: str) -> None:
        engine = make_engine(self.url)
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
        engine.dispose()

    def clients(self, timeout: float | None = None):
        if timeout is None:
            return TeamClients(self.services, self.slack)
        client = WebClient(token=self.slack.bot_token, base_url=self.slack.api_url, retry_handlers=retry_handlers(),
                           timeout=timeout)
        return lambda team_id: client

    def sender(self, now, worker="w1", timeout=None, **kw) -> DigestSender:
        return DigestSender(self.services, self.clients(timeout), clock=Clock(now) if isinstance(now, datetime)
                            else now, worker=worker, settle=SETTLE, **kw)

    def notifier(self, clock, worker="w1", timeout=None, **kw) -> AlertNotifier:
        return AlertNotifier(self.services, self.clients(timeout), clock=clock, worker=worker, settle=SETTLE, **kw)

    def add_schedule(self, local_time="08:00", tz="Europe/Paris", channel="C0GENERAL", days=None):
        kw = {"days": days} if days else {}
        return Schedules(self.services.state(), TEAM).add(channel, local_time=local_time, timezone=tz,
                                                            now=datetime(2026, 11, 23, 20, 0), **kw)  # nothing due before the 24th

    def add_rule(self, text_="return rate above 8% over 7 days clear below 7% repeat 24h in #general", at=None):
        spec = parse_rule(text_, self.services.catalog(), tz_name="Europe/Paris")
        return AlertRules(self.services.state(), TEAM).add(spec, created_by="test", now=at or T0 - timedelta(hours=1))

    def posts(self, channel="C0GENERAL", top=True):
        return [m for m in self.standin.messages_in(channel) if m.kind == "message" and (not top or not m.thread_ts)]

    def log_rows(self, prefix=""):
        with self.services.state().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(deliveries).order_by(deliveries.c.id))
                    if r.key.startswith(prefix)]


@pytest.fixture
def rig(database_url):
    r = FaultRig(database_url)
    yield r
    r.close()


def clean(message) -> bool:
    """A message a user may see: no Python internals."""
    seen = _text(message)
    return "Traceback" not in seen and "File \"" not in seen and "sqlalchemy" not in seen.lower()


# -- the source database stops in the middle of /kpi ----------------------------------------------------


def test_kpi_answers_after_the_source_connections_are_killed(rig, record):
    record("/kpi: source connections terminated (PostgreSQL) or source table gone")
    _, first = rig.ask("conversion")
    assert "2.0%" in _text(first)
    if rig.postgres:
        assert rig.terminate_backends() >= 1  # the app's pooled connections, and only ours
        _, after = rig.ask("conversion")
        seen = _text(after)
        assert clean(after)
        assert "2.0%" in seen or "ref" in seen  # pre-ping reconnects, or an apology with a reference
    rig.rename("orders", "orders_gone")
    _, broken = rig.ask("aov last 7 days")
    assert clean(broken)
    assert "Sorry, something went wrong (ref " in _text(broken)
    rig.rename("orders_gone", "orders")
    _, again = rig.ask("conversion")
    assert "2.0%" in _text(again) and clean(again)


# -- the source database fails during a digest ----------------------------------------------------------


class BreakingSender(DigestSender):
    """Breaks the source between claim and compose, once."""

    def __init__(self, *a, breaker, **kw):
        super().__init__(*a, **kw)
        self.breaker = breaker

    def send(self, *a, **kw):
        real = self.log.claim

        def claim_then_break(*ca, **ckw):
            got = real(*ca, **ckw)
            if got is not None and self.breaker:
                self.breaker()
                self.breaker = None
            return got

        self.log.claim = claim_then_break
        try:
            return super().send(*a, **kw)
        finally:
            self.log.claim = real


def test_a_digest_whose_source_fails_is_released_and_sent_once_on_the_next_tick(rig, record):
    """The source stops answering between claim and compose (its connections killed on PostgreSQL, its
    file unreadable on SQLite): the claim is given back and the next tick sends the digest, once."""
    record("digest: source fails between claim and compose")
    s = rig.add_schedule()
    broken = []

    def breaker():
        rig.services.kpi_engine()  # (built before: the failure is the database's, not the engine's start)
        if rig.postgres:
            admin = make_engine(rig.url)
            with admin.begin() as conn:  # every query of this schema fails until it is renamed back
                conn.execute(text("ALTER TABLE orders RENAME TO orders_away"))
                conn.execute(text("CREATE VIEW orders AS SELECT * FROM orders_away WHERE 1 / 0 = 1"))
            admin.dispose()
        else:
            rig.rename("orders", "orders_away")
            engine = make_engine(rig.url)
            with engine.begin() as conn:
                conn.execute(text("CREATE VIEW orders AS SELECT * FROM orders_away WHERE nosuchcolumn = 1"))
            engine.dispose()
        broken.append(True)

    def mend():
        engine = make_engine(rig.url)
        with engine.begin() as conn:
            conn.execute(text("DROP VIEW orders"))
            conn.execute(text("ALTER TABLE orders_away RENAME TO orders"))
        engine.dispose()

    first = BreakingSender(rig.services, rig.clients(), clock=Clock(DUE + timedelta(seconds=5)), worker="w1",
                           breaker=breaker).tick()
    assert broken
    assert [(o.status, o.day) for o in first] == [("retry", date(2026, 11, 24))]
    assert rig.posts() == []
    assert [r["status"] for r in rig.log_rows("digest:")] == ["released"]  # given back, its story kept
    assert "retrying" in Schedules(rig.services.state(), TEAM).get(s.id).last_error
    mend()
    second = rig.sender(DUE + timedelta(minutes=1), worker="w2").tick()
    assert [o.status for o in second] == ["sent"]
    third = rig.sender(DUE + timedelta(minutes=2), worker="w1").tick()
    assert [o for o in third if o.status == "sent"] == []
    assert len(rig.posts()) == 1
    [row] = rig.log_rows("digest:")
    assert row["status"] == "sent" and not row["late"]
    assert "released for a retry" in row["notes"] and row["notes"].index("released") < row["notes"].rindex("sent")


# -- Slack answers 429, 500, or nothing in time ---------------------------------------------------------


SLACK_FAULTS = [
    pytest.param(lambda s: s.fail_next("chat.postMessage", status=429, retry_after=1), None, id="429"),
    pytest.param(lambda s: s.fail_next("chat.postMessage", status=500), None, id="500"),
    pytest.param(lambda s: s.fail_next("chat.postMessage", status=503, times=2), None, id="503x2"),
    # Slack accepts the message after the client stopped waiting: a timeout is not "not sent"
    pytest.param(lambda s: s.delay_next("chat.postMessage", SLOW_SLACK), CLIENT_TIMEOUT, id="timeout"),
]


@pytest.mark.parametrize("fault, timeout", SLACK_FAULTS)
def test_a_digest_through_slack_faults_is_posted_once(rig, record, fault, timeout, request):
    name = request.node.callspec.id.split("-")[-1]
    record(f"digest: Slack {name}")
    rig.add_schedule()
    fault(rig.standin)
    ticks = [rig.sender(DUE + timedelta(minutes=m), worker=f"w{m % 2}", timeout=timeout).tick() for m in range(4)]
    statuses = [o.status for t in ticks for o in t]
    assert statuses.count("sent") == 1, statuses
    rig.standin.wait_idle()  # every call Slack received has taken effect: count after that
    assert len(rig.posts()) == 1, [m.text[:60] for m in rig.posts()]
    [row] = rig.log_rows("digest:")
    assert row["status"] == "sent"


ALERT_FAULTS = SLACK_FAULTS


@pytest.mark.parametrize("fault, timeout", ALERT_FAULTS)
def test_an_alert_through_slack_faults_is_posted_once(rig, record, fault, timeout, request):
    name = request.node.callspec.id.split("-")[-1]
    record(f"alert: Slack {name}")
    rule = rig.add_rule()
    fault(rig.standin)
    clock = Clock(T0)
    sent = []
    for m in range(4):
        clock.now = T0 + timedelta(minutes=m)
        sent += rig.notifier(clock, worker=f"w{m % 2}", timeout=timeout).check()
    assert [s.key for s in sent if s.status == "sent"] == [f"alert:{rule.id}:1:fire"], sent
    rig.standin.wait_idle()
    assert len(rig.posts()) == 1
    [row] = rig.log_rows("alert:")
    assert row["status"] == "sent"


def test_an_alert_fire_that_slack_keeps_refusing_is_retried_on_the_next_pass(rig, record):
    """Beyond the client's own retries (500 three times): the fire must still be sent on a later pass."""
    record("alert: Slack 500 beyond the client's retries")
    rule = rig.add_rule()
    rig.standin.fail_next("chat.postMessage", status=500, times=3)
    clock = Clock(T0)
    first = rig.notifier(clock).check()
    assert [s.status for s in first] == ["retry"]
    sent = []
    for m in range(1, 6):
        clock.now = T0 + timedelta(minutes=m)
        sent += [s for s in rig.notifier(clock).check() if s.status == "sent"]
    assert [s.key for s in sent] == [f"alert:{rule.id}:1:fire"]  # the decided fire waited in the outbox
    assert len(rig.posts()) == 1


# -- a worker killed between claim and send ---------------------------------------------------------------


def _claim_and_die(rig, key: str, kind: str, at: datetime, due: datetime | None) -> None:
    code = (
        "import os, signal\n"
        "from datetime import datetime\n"
        "from kpi.db import make_engine\n"
        "from kpi.state.delivery import DeliveryLog\n"
        f"log = DeliveryLog(make_engine({rig.url!r}), worker='doomed', clock=lambda: datetime.fromisoformat({at.isoformat()!r}))\n"
        + (f"assert log.claim_due({key!r})\n" if kind == "alert" else  # alerts are taken from the outbox
           f"assert log.claim({key!r}, team_id={TEAM!r}, kind={kind!r}, channel='C0GENERAL',"
           f" due_at={'datetime.fromisoformat(' + repr(due.isoformat()) + ')' if due else 'None'})\n")
        + "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr


def test_a_digest_killed_after_claim_is_reported_and_resent_once_and_a_late_one_is_skipped(rig, record):
    record("digest: worker SIGKILLed between claim and send")
    s = rig.add_schedule()
    nyc = rig.add_schedule("12:30", "America/New_York", channel="C0GROWTH")
    _claim_and_die(rig, f"digest:{s.id}:2026-11-24", "digest", DUE + timedelta(seconds=3), DUE)
    nyc_due = nyc.due_at(date(2026, 11, 24))
    _claim_and_die(rig, f"digest:{nyc.id}:2026-11-24", "digest", nyc_due + timedelta(seconds=3), nyc_due)
    # the Paris one is recovered in time; the New York one only 5 hours later: beyond the grace time
    out = rig.sender(DUE + LEASE + timedelta(minutes=1)).tick()
    assert [o.status for o in out if o.schedule_id == s.id] == ["sent"]
    late = rig.sender(nyc_due + timedelta(hours=5)).tick()
    assert [(o.status, o.detail) for o in late if o.schedule_id == nyc.id] == [
        ("skipped", "interrupted beyond the grace time")]
    assert "interrupted" in Schedules(rig.services.state(), TEAM).get(nyc.id).last_error
    [paris] = rig.posts()
    # the dead worker never reached Slack (no "posting" in its story): sent once, late, not marked a repeat
    assert "late" in paris.text and "sent again" not in paris.text
    assert rig.posts("C0GROWTH") == []
    keys = Counter(r["key"] for r in rig.log_rows("digest:"))
    assert keys == {f"digest:{s.id}:2026-11-24": 1, f"digest:{nyc.id}:2026-11-24": 1}  # one row per digest
    rows = {r["key"]: r for r in rig.log_rows("digest:")}
    assert rows[f"digest:{s.id}:2026-11-24"]["status"] == "sent"
    assert rows[f"digest:{nyc.id}:2026-11-24"]["status"] == "skipped"
    story = rows[f"digest:{s.id}:2026-11-24"]["notes"]  # the whole story, in order
    assert [w for w in ("doomed: claimed", "interrupted", "claimed again", "posting", "sent") if w in story] == [
        "doomed: claimed", "interrupted", "claimed again", "posting", "sent"], story
    assert story.index("interrupted") < story.index("claimed again") < story.index("posting")
    # a restarted worker sends nothing more
    again = rig.sender(DUE + timedelta(hours=1)).tick()
    assert [o for o in again if o.status == "sent"] == [] and len(rig.posts()) == 1


def test_an_alert_fire_killed_after_claim_is_sent_once_by_the_next_worker(rig, record):
    """A worker took the fire from the outbox and died: after the claim timeout it goes back to the outbox."""
    record("alert: SIGKILL after claim -> fire resent")
    rule = rig.add_rule()
    clock = Clock(T0)
    # the doomed worker evaluated first: the state says firing (saved), then it claimed the fire and died
    from kpi.alerts.evaluation import evaluate_rules

    evaluated, _ = evaluate_rules(rig.services.kpi_engine(), rig.services.state(), [rule], T0)
    assert [n.step for e in evaluated for n in e.notify] == ["fire"]
    _claim_and_die(rig, f"alert:{rule.id}:1:fire", "alert", T0 + timedelta(seconds=2), None)
    outcome = {}
    for m in (1, 3, 5, 30):
        clock.now = T0 + timedelta(minutes=m)
        notifier = rig.notifier(clock, worker="w2")
        outcome[m] = [(s.key, s.status) for s in notifier.check()]
        recovered = notifier.log.recover()
        outcome[f"recover{m}"] = [r.key for r in recovered]
    rows = {r["key"]: r["status"] for r in rig.log_rows("alert:")}
    assert outcome[1] == [] and len(rig.posts()) == 1, outcome  # respected within the timeout, then sent once
    assert rows[f"alert:{rule.id}:1:fire"] == "sent", (rows, outcome)


# -- two workers side by side for a whole day -----------------------------------------------------------


def test_two_workers_for_a_day_send_every_digest_and_alert_exactly_once(rig, record):
    record("two workers x 24 h: every digest and alert exactly once")
    schedules = [rig.add_schedule("08:00", "Europe/Paris", "C0GENERAL"),
                 rig.add_schedule("12:30", "America/New_York", "C0GROWTH"),
                 rig.add_schedule("18:00", "UTC", "C0GENERAL")]
    day_start = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    rules = [rig.add_rule("return rate above 8% over 7 days clear below 7% in #general", at=day_start),
             rig.add_rule("return rate above 10% over 7 days clear below 9% every 30m in #general", at=day_start),
             rig.add_rule("aov above 1000000 over 7 days in #general", at=day_start)]
    clock = Clock(day_start)
    workers = [(rig.sender(clock, worker=f"d{i}"), rig.notifier(clock, worker=f"a{i}")) for i in range(2)]
    engine = make_engine(rig.url)

    def orders(prefix, n, when):
        with engine.begin() as conn:
            conn.execute(insert(schema.orders), [dict(
                order_id=f"{prefix}{i}", customer_id="c1", placed_at=when, status="placed", subtotal=10, discount=0,
                shipping=0, tax=0, currency="EUR", channel="email", device="mobile", country="FR") for i in range(n)])

    # the hand-computed shop breaches both return-rate rules at once (25%); at 10:00 many new orders dilute
    # it to 1/34 (recovery); at 15:00 returns on them breach again (a second episode)
    events = {datetime(2026, 11, 24, 10, 0, tzinfo=UTC): lambda: orders("d", 30, datetime(2026, 11, 22, 12)),
              datetime(2026, 11, 24, 15, 0, tzinfo=UTC): lambda: _returns(engine, 10)}
    step = timedelta(minutes=5)
    outcomes = []
    i = 0
    while clock.now < day_start + timedelta(hours=24):
        if clock.now in events:
            events[clock.now]()
        digests, alerts = workers[i % 2]
        outcomes += [("d", o.status) for o in digests.tick()]
        outcomes += [("a", s.status) for s in alerts.check()]
        i += 1
        clock.now += step
    engine.dispose()
    keys = Counter(r["key"] for r in rig.log_rows())
    assert all(v == 1 for v in keys.values()), keys
    expected = {f"digest:{s.id}:2026-11-24" for s in schedules}
    expected |= {f"alert:{rules[0].id}:1:fire", f"alert:{rules[0].id}:1:resolve", f"alert:{rules[0].id}:2:fire",
                 f"alert:{rules[1].id}:1:fire", f"alert:{rules[1].id}:1:resolve", f"alert:{rules[1].id}:2:fire"}
    assert set(keys) == expected, sorted(set(keys) ^ expected)
    assert all(r["status"] == "sent" for r in rig.log_rows()), rig.log_rows()
    assert Counter(s for _, s in outcomes) == {"sent": len(expected)}
    digests = [m for ch in ("C0GENERAL", "C0GROWTH") for m in rig.posts(ch) if "Goal" in m.text or "goal" in m.text
               or "igest" in m.text]
    fires = [m for m in rig.posts("C0GENERAL") if "Return rate" in m.text]
    assert len(fires) == 4
    resolves = [m for m in rig.posts("C0GENERAL", top=False) if m.thread_ts and "Resolved" in m.text]
    assert len(resolves) == 2
    top = rig.posts("C0GENERAL") + rig.posts("C0GROWTH")
    assert len(top) == 3 + 4, [m.text[:50] for m in top]
    assert digests  # the digests are among them


def _returns(engine, n):
    with engine.begin() as conn:
        existing = {r[0] for r in conn.execute(select(schema.returns.c.return_id))}
        conn.execute(insert(schema.returns), [dict(
            return_id=f"r{i}", order_id=f"d{i}", returned_at=datetime(2026, 11, 23, 12), amount=10)
            for i in range(n) if f"r{i}" not in existing])
