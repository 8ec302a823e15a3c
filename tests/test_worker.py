"""Digest schedules and their delivery: local times across clock changes, exactly one digest per
schedule and day whatever the number of workers, late and skipped digests, interrupted sends,
Slack errors. Real state database (SQLite and PostgreSQL), the local Slack stand-in, time injected."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import SlackSettings
from bot.digests import DigestSender
from bot.standin import SlackStandIn
from bot.teams import TeamClients
from bot.worker import build_scheduler, sync
from kpi.digests.schedule import due_digests
from kpi.state.delivery import LEASE
from kpi.state.store import Schedule, Schedules

from .test_slack_app import CONFIG, _fill

PARIS = ZoneInfo("Europe/Paris")
TEAM = "T0STANDIN"


def schedule(**kw) -> Schedule:
    base = dict(id=1, team_id=TEAM, channel="C0GENERAL", local_time="08:00", timezone="Europe/Paris",
                created_at=datetime(2026, 1, 1))
    return Schedule(**{**base, **kw})


@pytest.mark.parametrize("day, utc_hour", [
    (date(2026, 3, 27), 7),   # Friday before the spring change: CET, UTC+1
    (date(2026, 3, 30), 6),   # Monday after it: CEST, UTC+2
    (date(2026, 10, 23), 6),  # Friday before the autumn change: CEST
    (date(2026, 10, 26), 7),  # Monday after it: CET
])
def test_08_00_paris_is_due_at_the_right_utc_time_across_clock_changes(day, utc_hour):
    s = schedule()
    due_at = datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)
    assert s.due_at(day) == due_at
    assert not [d for d in due_digests([s], due_at - timedelta(seconds=1)) if d.day == day]
    [due] = [d for d in due_digests([s], due_at + timedelta(seconds=30)) if d.day == day]
    assert due.action == "send" and not due.late


def test_weekends_late_and_skipped_and_new_schedules():
    s = schedule()
    saturday = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)
    assert [d for d in due_digests([s], saturday) if d.day == date(2026, 11, 28)] == []
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # due at 07:00 UTC
    [late] = [d for d in due_digests([s], monday + timedelta(hours=1)) if d.day == date(2026, 11, 30)]
    assert late.action == "send" and late.late and late.late_by == timedelta(hours=1)
    [missed] = [d for d in due_digests([s], monday + timedelta(hours=5)) if d.day == date(2026, 11, 30)]
    assert missed.action == "skip"
    created_after = schedule(created_at=datetime(2026, 11, 30, 9, 0))
    assert [d for d in due_digests([created_after], monday + timedelta(hours=3)) if d.day == date(2026, 11, 30)] == []


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(database_url):
    """State and source in one database (the hand-computed shop), the stand-in, a schedule at 08:00 Paris."""
    from kpi.services import Services
    from kpi.settings import Settings
    from kpi.state.tables import upgrade

    upgrade(database_url)
    _fill(database_url)
    standin = SlackStandIn().start()
    services = Services(Settings(database_url=database_url, source_url=database_url, timezone="Europe/Paris",
                                 config_dir=CONFIG, currency="EUR"))
    slack = SlackSettings(signing_secret="x" * 16, bot_token=standin.bot_token, api_url=standin.base_url)
    schedules = Schedules(services.state(), TEAM)
    s = schedules.add("C0GENERAL", local_time="08:00", timezone="Europe/Paris", now=datetime(2026, 1, 1))
    yield services, slack, standin, s
    standin.stop()


def sender(world, now: datetime, worker: str = "w1") -> DigestSender:
    services, slack, _, _ = world
    return DigestSender(services, TeamClients(services, slack), clock=Clock(now), worker=worker)


DUE = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday 24 November, 08:00 in Paris


def digests_in(standin, channel="C0GENERAL"):
    return [m for m in standin.messages_in(channel) if m.kind == "message" and not m.thread_ts]


def test_two_workers_started_together_send_one_digest(world):
    _, _, standin, _ = world
    workers = [sender(world, DUE + timedelta(seconds=20), worker=f"w{i}") for i in range(4)]
    barrier = threading.Barrier(len(workers))
    results = []

    def run(w):
        barrier.wait()
        results.extend(w.tick())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [o for o in results if o.status == "sent" and o.day == date(2026, 11, 24)]
    assert len(sent) == 1
    assert len(digests_in(standin)) == 1
    # and a later tick, or a restart, sends nothing more
    assert [o for o in sender(world, DUE + timedelta(minutes=30), "w9").tick() if o.status == "sent"] == []
    assert len(digests_in(standin)) == 1


def test_slack_429_then_ok_gives_one_message(world):
    _, _, standin, _ = world
    standin.fail_next("chat.postMessage", status=429, retry_after=1)
    outcomes = sender(world, DUE + timedelta(seconds=5)).tick()
    assert [o.status for o in outcomes if o.day == date(2026, 11, 24)] == ["sent"]
    assert len(digests_in(standin)) == 1


def test_a_channel_the_bot_is_not_in_is_a_visible_error_not_a_crash(world, capsys, monkeypatch):
    services, slack, standin, s = world
    standin.add_channel("G0HIDDEN", "hidden", is_member=False, is_private=True)
    schedules = Schedules(services.state(), TEAM)
    hidden = schedules.add("G0HIDDEN", local_time="08:00", timezone="Europe/Paris", now=datetime(2026, 1, 1))
    outcomes = sender(world, DUE + timedelta(seconds=5)).tick()
    failed = [o for o in outcomes if o.schedule_id == hidden.id and o.day == date(2026, 11, 24)]
    assert failed[0].status == "failed" and failed[0].detail == "channel_not_found"
    assert "channel_not_found" in schedules.get(hidden.id).last_error
    # shown in `kpibot digest list`
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(CONFIG))
    assert main(["digest", "list"]) == 0
    out = capsys.readouterr().out
    assert "G0HIDDEN" in out and "channel_not_found" in out


def test_a_digest_missed_while_down_goes_out_late_within_grace_and_is_skipped_beyond(world):
    _, _, standin, _ = world
    late = sender(world, DUE + timedelta(hours=1, minutes=12)).tick()
    assert [o.status for o in late if o.day == date(2026, 11, 24)] == ["sent"]
    [message] = digests_in(standin)
    assert "late" in message.text.lower() or "retard" in message.text.lower()
    # the next day the worker is down until after the grace time: skipped, logged, nothing posted
    skipped = sender(world, DUE + timedelta(days=1, hours=5)).tick()
    assert [o.status for o in skipped if o.day == date(2026, 11, 25)] == ["skipped"]
    assert len(digests_in(standin)) == 1


def test_a_worker_killed_between_claim_and_send_is_reported_on_the_next_tick(world):
    services, _, standin, s = world
    claim_at = DUE + timedelta(seconds=3)
    code = (
        "import os, signal, sys\n"
        "from datetime import datetime, timezone\n"
        "from kpi.db import make_engine\n"
        "from kpi.state.delivery import DeliveryLog\n"
        f"log = DeliveryLog(make_engine({services.settings.database_url!r}), worker='doomed',"
        f" clock=lambda: datetime.fromisoformat({claim_at.isoformat()!r}))\n"
        f"assert log.claim('digest:{s.id}:2026-11-24', team_id='{TEAM}', kind='digest',"
        f" due_at=datetime.fromisoformat({DUE.isoformat()!r}))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    # within the claim timeout the claim is respected: nothing sent, nothing reported
    assert [o for o in sender(world, claim_at + timedelta(seconds=30)).tick() if o.status == "sent"] == []
    assert digests_in(standin) == []
    outcomes = sender(world, claim_at + LEASE + timedelta(minutes=1)).tick()
    assert [o.status for o in outcomes] == ["sent"]
    [message] = digests_in(standin)
    # the dead worker never reached Slack ("posting" is not in the delivery's story): sent once, late, not
    # marked as a repeat; the schedule keeps the interruption on record with how it ended
    assert "late" in message.text and "sent again" not in message.text
    note = Schedules(services.state(), TEAM).get(s.id).last_error
    assert "interrupted" in note and "once" in note
    assert [o for o in sender(world, claim_at + LEASE + timedelta(minutes=2)).tick() if o.status == "sent"] == []


def test_digest_send_is_idempotent_without_force(world):
    _, _, standin, s = world
    first = sender(world, DUE + timedelta(hours=2))
    assert first.send(s, date(2026, 11, 24)).status == "sent"
    assert first.send(s, date(2026, 11, 24)).status == "already"
    assert first.send(s, date(2026, 11, 24), force=True).status == "sent"
    assert len(digests_in(standin)) == 2


def test_the_worker_derives_jobs_from_schedules_and_follows_changes(world):
    services, slack, _, s = world
    scheduler = build_scheduler(services, slack)
    sync(scheduler, services)
    job = scheduler.get_job(f"digest-{s.id}")
    after = datetime(2026, 3, 27, 8, 30, tzinfo=PARIS)  # Friday, after that day's digest
    nxt = job.trigger.get_next_fire_time(None, after)
    assert nxt.astimezone(UTC) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # Monday 08:00 CEST
    schedules = Schedules(services.state(), TEAM)
    schedules.remove(s.id)
    other = schedules.add("C0GROWTH", local_time="09:30", timezone="America/New_York", days=("mon",))
    sync(scheduler, services)
    assert scheduler.get_job(f"digest-{s.id}") is None
    job = scheduler.get_job(f"digest-{other.id}")
    assert job.trigger.get_next_fire_time(None, datetime(2026, 11, 25, tzinfo=UTC)) == \
        datetime(2026, 11, 30, 9, 30, tzinfo=ZoneInfo("America/New_York"))
