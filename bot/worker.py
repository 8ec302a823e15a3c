"""``kpibot worker``: APScheduler jobs derived from the digest schedules, on the state database, and
the alert rules' evaluations (``kpibot-alerts``, every minute: each rule on its own interval).

- one cron job per schedule (``digest-<id>``: its days, local time and time zone), with coalescing and
  a misfire grace time, so a digest fires at 08:00 local time across clock changes;
- ``kpibot-sync`` every 30 s re-derives those jobs from the schedule rows: a schedule added, changed or
  removed in Slack is followed without a restart;
- ``kpibot-tick`` every minute: the safety net that sends anything due and not yet sent (a digest
  missed while no worker ran goes out late, within the grace time) and reports interrupted sends.

Every send goes through the delivery log, so several workers may run side by side.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from kpi.digests.schedule import GRACE, digest_key
from kpi.services import Services
from kpi.state.lifecycle import forget_old_events
from kpi.state.store import Schedules, all_schedules

from .config import SlackSettings
from .digests import DigestSender
from .teams import TeamClients

log = logging.getLogger("kpibot.worker")
_runtime: dict[str, object] = {}  # what the job functions (referenced by name in the job store) run with


def _sender() -> DigestSender:
    return _runtime["sender"]  # type: ignore[return-value]


def housekeeping(services: Services) -> None:
    """Every minute: Slack event ids older than a day, and OAuth states of abandoned installs, deleted."""
    from .installations import purge_expired_states

    try:
        forget_old_events(services.state())
        purge_expired_states(services.state())
    except Exception:  # noqa: BLE001 - clean-up never stops the digests
        log.exception("housekeeping failed")


def tick() -> None:
    housekeeping(_sender().services)
    for outcome in _sender().tick():
        log.info("digest %s/%s %s: %s %s", outcome.team_id, outcome.schedule_id, outcome.day, outcome.status, outcome.detail)


def alerts_tick() -> None:
    """Evaluate the alert rules whose interval has come, and send what the state machine says."""
    for sent in _runtime["alerts"].check():  # type: ignore[union-attr]
        log.info("alert %s: %s %s", sent.key, sent.status, sent.detail)


def run_schedule(team_id: str, schedule_id: int) -> None:
    """A schedule's cron job: send today's digest (a no-op if the tick or another worker already did)."""
    sender = _sender()
    schedule = Schedules(sender.services.state(), team_id).get(schedule_id)
    if schedule.paused_at is not None:  # its team uninstalled the app: the next sync removes the job
        return
    now = sender.clock()
    day = now.astimezone(schedule.tz).date()
    late_by = now - schedule.due_at(day)
    outcome = sender.send(schedule, day, key=digest_key(schedule.id, day),
                          late_by=late_by if late_by.total_seconds() > 300 else None)
    log.info("digest %s/%s %s: %s %s", team_id, schedule_id, day, outcome.status, outcome.detail)


def sync_jobs() -> None:
    scheduler: BackgroundScheduler = _runtime["scheduler"]  # type: ignore[assignment]
    sync(scheduler, _sender().services)


def job_signature(schedule) -> str:
    return f"{schedule.days}|{schedule.local_time}|{schedule.timezone}"


def sync(scheduler, services: Services) -> None:
    """Make the digest jobs match the schedule rows (add, change, remove)."""
    wanted = {f"digest-{s.id}": s for s in all_schedules(services.state())}
    for job in scheduler.get_jobs():
        if job.id.startswith("digest-") and job.id not in wanted:
            scheduler.remove_job(job.id)
    for job_id, s in wanted.items():
        job = scheduler.get_job(job_id)
        if job is not None and job.kwargs.get("signature") == job_signature(s):
            continue
        hour, minute = s.local_time.split(":")
        scheduler.add_job("bot.worker:run_schedule_job", CronTrigger(day_of_week=",".join(s.days), hour=int(hour),
                                                                      minute=int(minute), timezone=s.tz),
                          id=job_id, replace_existing=True, kwargs={"team_id": s.team_id, "schedule_id": s.id,
                                                                     "signature": job_signature(s)})


def run_schedule_job(team_id: str, schedule_id: int, signature: str = "") -> None:
    run_schedule(team_id, schedule_id)


def build_scheduler(services: Services, slack: SlackSettings, *, clients: TeamClients | None = None) -> BackgroundScheduler:
    from .alerts import AlertNotifier

    clients = clients or TeamClients(services, slack)
    sender = DigestSender(services, clients)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=services.state(), tablename="apscheduler_jobs")},
        job_defaults={"coalesce": True, "misfire_grace_time": int(GRACE.total_seconds()), "max_instances": 1},
        timezone=UTC,
    )
    _runtime.update(sender=sender, scheduler=scheduler, alerts=AlertNotifier(services, clients))
    return scheduler


def run_worker(services: Services, slack: SlackSettings, *, stop: threading.Event | None = None) -> int:
    scheduler = build_scheduler(services, slack)
    scheduler.start()
    now = datetime.now(UTC)
    scheduler.add_job("bot.worker:tick", "interval", minutes=1, id="kpibot-tick", replace_existing=True, next_run_time=now)
    scheduler.add_job("bot.worker:sync_jobs", "interval", seconds=30, id="kpibot-sync", replace_existing=True,
                      next_run_time=now)
    scheduler.add_job("bot.worker:alerts_tick", "interval", minutes=1, id="kpibot-alerts", replace_existing=True,
                      next_run_time=now)
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not the main thread (tests)
            pass
    log.warning("worker started: %d digest schedules", len(all_schedules(services.state())))
    stop.wait()
    scheduler.shutdown(wait=True)
    return 0
