"""``kpibot worker``: APScheduler jobs derived from the digest schedules, on the state database, and
the alert rules' evaluations (``kpibot-alerts``, every minute: each rule on its own interval).

- one cron job per schedule (``digest-<id>``: its days, local time and time zone), with coalescing and
  a misfire grace time, so a digest fires at 08:00 local time across clock changes;
- ``kpibot-sync`` every 30 s re-derives those jobs from the schedule rows: a schedule added, changed or
  removed in Slack is followed without a restart;
- ``kpibot-tick`` every minute: the safety net that sends anything due and not yet sent (a digest
  missed while no worker ran goes out late, within the grace time) and reports interrupted sends.

Every send goes through the delivery log, so several workers may run side by side. They may also start
together: the job store's table is made by ``kpibot db upgrade`` (state migration 0008); a worker that
finds it missing creates it, and one that loses that race to another worker uses the table the winner made.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, IntegrityError

from kpi.digests.schedule import GRACE, digest_key
from kpi.errors import new_ref
from kpi.i18n import N_, lang_of, tr
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
            try:
                scheduler.remove_job(job.id)
            except JobLookupError:  # another worker removed it first
                pass
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


class StateJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store on the state database. Its table comes from ``kpibot db upgrade``;
    when it is missing, the store creates it as APScheduler does, and a creation that fails because another
    worker created it at the same moment (PostgreSQL: ``UniqueViolation`` on ``pg_type``, or
    ``DuplicateTable``) is not an error: the table is there."""

    def start(self, scheduler, alias):
        BaseJobStore.start(self, scheduler, alias)
        try:
            self.jobs_t.create(self.engine, checkfirst=True)
        except DBAPIError:
            if not inspect(self.engine).has_table(self.jobs_t.name, schema=self.jobs_t.schema):
                raise
            log.info("the job store's table was created by another worker meanwhile")


class JobThreads(ThreadPoolExecutor):
    """APScheduler's thread pool, which can be waited for without the scheduler's locks: its
    ``shutdown(wait=True)`` holds the job store lock while it waits, and a running job that asks the
    scheduler for its jobs (``kpibot-sync``) then waits for that lock forever (a worker stopped during
    a sync hung)."""

    def drain(self) -> None:
        self._pool.shutdown(wait=True)


def stop_scheduler(scheduler: BackgroundScheduler) -> None:
    """No new job starts; the running ones finish (a digest being sent is sent)."""
    scheduler.shutdown(wait=False)
    executor = scheduler._executors.get("default")  # noqa: SLF001 - ours (build_scheduler)
    if isinstance(executor, JobThreads):
        executor.drain()


def build_scheduler(services: Services, slack: SlackSettings, *, clients: TeamClients | None = None) -> BackgroundScheduler:
    from .alerts import AlertNotifier

    clients = clients or TeamClients(services, slack)
    sender = DigestSender(services, clients)
    scheduler = BackgroundScheduler(
        jobstores={"default": StateJobStore(engine=services.state(), tablename="apscheduler_jobs")},
        executors={"default": JobThreads(10)},
        job_defaults={"coalesce": True, "misfire_grace_time": int(GRACE.total_seconds()), "max_instances": 1},
        timezone=UTC,
    )
    _runtime.update(sender=sender, scheduler=scheduler, alerts=AlertNotifier(services, clients))
    return scheduler


# TRANSLATORS: printed when `kpibot worker` cannot start because other workers kept changing the same rows
START_CONFLICT = N_("the worker could not start: other workers starting at the same moment changed the same "
                    "rows ({error}); start it again [ref {ref}]")
START_TRIES = 5


def start_scheduler(services: Services, slack: SlackSettings) -> BackgroundScheduler:
    """The scheduler started with its three interval jobs. Workers starting together insert the same job
    rows; one that loses such a race (a unique violation) stops its scheduler and starts again, where the
    rows now exist and are replaced."""
    for attempt in range(1, START_TRIES + 1):
        scheduler = build_scheduler(services, slack)
        try:
            scheduler.start()
            now = datetime.now(UTC)
            for func, job_id, interval in (("bot.worker:tick", "kpibot-tick", {"minutes": 1}),
                                           ("bot.worker:sync_jobs", "kpibot-sync", {"seconds": 30}),
                                           ("bot.worker:alerts_tick", "kpibot-alerts", {"minutes": 1})):
                scheduler.add_job(func, "interval", id=job_id, replace_existing=True, next_run_time=now, **interval)
            return scheduler
        except IntegrityError:
            if scheduler.running:
                stop_scheduler(scheduler)
            if attempt == START_TRIES:
                raise
            log.info("another worker was starting at the same moment: starting again (%d)", attempt)
    raise AssertionError("unreachable")


def run_worker(services: Services, slack: SlackSettings, *, stop: threading.Event | None = None) -> int:
    try:
        scheduler = start_scheduler(services, slack)
    except IntegrityError as exc:  # not a connection problem: DATABASE_URL is not to blame
        ref = new_ref()
        log.error("worker start failed [ref %s]", ref, exc_info=True)
        error = type(exc.orig if exc.orig is not None else exc).__name__
        print("kpibot: " + tr(lang_of(services.settings.locale), START_CONFLICT, error=error, ref=ref), file=sys.stderr)
        return 1
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not the main thread (tests)
            pass
    log.warning("worker started: %d digest schedules", len(all_schedules(services.state())))
    stop.wait()
    stop_scheduler(scheduler)
    return 0
