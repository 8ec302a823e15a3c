"""``kpibot worker``: APScheduler jobs derived from the digest schedules, on the state database, and
the alert rules' evaluations (``kpibot-alerts``, every minute: each rule on its own interval).

- one cron job per schedule (``digest-<id>``: its days, local time and time zone), with coalescing and
  a misfire grace time, so a digest fires at 08:00 local time across clock changes;
- ``kpibot-sync`` every 30 s re-derives those jobs from the schedule rows: a schedule added, changed or
  removed in Slack is followed without a restart;
- ``kpibot-tick`` every minute: the safety net that sends anything due and not yet sent (a digest
  missed while no worker ran goes out late, within the grace time) and reports interrupted sends;
- ``kpibot-inbox``, with ``KPIBOT_INBOX`` set, every ``KPIBOT_INBOX_INTERVAL`` seconds (default 60): the files
  that arrived in that folder are imported into the deployment's shop (``kpi.data.inbox``), each one logged
  in ``import_runs`` (which refreshes the dimension values the bot reads questions with); a refused file is
  logged, moved to ``refused/`` with its reasons, and shown to admins in the App Home.

Every send goes through the delivery log, so several workers may run side by side. They may also start
together: the job store's table is made by ``kpibot db upgrade`` (state migration 0008); a worker that
finds it missing creates it, and one that loses that race to another worker uses the table the winner made.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, IntegrityError

from kpi.digests.schedule import GRACE, digest_key
from kpi.errors import KpiError, new_ref
from kpi.i18n import N_, lang_of, tr
from kpi.services import Services, mapped_tables
from kpi.state.lifecycle import forget_old_events
from kpi.state.store import Schedules, all_schedules
from kpi.state.tables import log_import

from .config import SlackSettings
from .digests import DigestSender
from .teams import TeamClients

if TYPE_CHECKING:  # the importer brings in pandas (~60 MB): imported when the inbox is used, not at start-up
    from kpi.data.batch import Outcome
    from kpi.data.inbox import Inbox

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


INBOX_INTERVAL = 60  # seconds, KPIBOT_INBOX_INTERVAL


def inbox_settings(env=None) -> tuple[Path, int] | None:
    """``KPIBOT_INBOX`` (the folder) and ``KPIBOT_INBOX_INTERVAL`` (seconds between polls), or None."""
    env = os.environ if env is None else env
    folder = (env.get("KPIBOT_INBOX") or "").strip()
    if not folder:
        return None
    text = (env.get("KPIBOT_INBOX_INTERVAL") or "").strip() or str(INBOX_INTERVAL)
    try:
        interval = int(text)
    except ValueError:
        interval = 0
    if interval < 1:
        raise KpiError("KPIBOT_INBOX_INTERVAL={value}: write a number of seconds, at least 1", value=text)
    if not Path(folder).is_dir():
        raise KpiError("KPIBOT_INBOX={path}: no such folder", path=folder)
    return Path(folder), interval


def run_inbox(inbox: Inbox, services: Services) -> list[Outcome]:
    """One poll of the inbox into the deployment's shop, every file logged in ``import_runs``."""
    from kpi.data.batch import source_key

    settings = services.settings
    key = source_key(settings.source_url)
    # the operator's currency (KPIBOT_CURRENCY) binds the files; otherwise a file's own currency is the shop's
    currency = services.stated_currency()

    def logged(outcome: Outcome) -> None:
        try:
            log_import(services.state(), outcome.run_row(key))
        except Exception:  # noqa: BLE001 - the file is imported and moved; its log line is what is lost
            log.exception("inbox: %s %s but not logged in import_runs", outcome.name, outcome.status)

    return inbox.poll(services.source(), tz=settings.tz, currency=currency, currency_explicit=currency is not None,
                      on_file=logged, mapped=frozenset(mapped_tables(services)))


def inbox_tick() -> None:
    """The inbox's job. The job store is shared by the workers: one started without ``KPIBOT_INBOX`` (or since
    it was unset) runs the job as a no-op, and each worker that watches the inbox claims a file before
    importing it, so two workers never import the same one."""
    inbox: Inbox | None = _runtime.get("inbox")  # type: ignore[assignment]
    if inbox is None:
        return
    try:
        run_inbox(inbox, _sender().services)
    except Exception:  # noqa: BLE001 - the next poll tries again; the digests go on
        log.exception("inbox: poll failed; the files stay in the inbox for the next poll")


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


def interval_jobs(inbox_interval: int | None = None) -> list[tuple[str, str, dict]]:
    """(function, job id, interval) of the worker's interval jobs; the inbox's with an interval."""
    jobs = [("bot.worker:tick", "kpibot-tick", {"minutes": 1}),
            ("bot.worker:sync_jobs", "kpibot-sync", {"seconds": 30}),
            ("bot.worker:alerts_tick", "kpibot-alerts", {"minutes": 1})]
    if inbox_interval:
        jobs.append(("bot.worker:inbox_tick", "kpibot-inbox", {"seconds": inbox_interval}))
    return jobs


# TRANSLATORS: printed when `kpibot worker` cannot start because other workers kept changing the same rows
START_CONFLICT = N_("the worker could not start: other workers starting at the same moment changed the same "
                    "rows ({error}); start it again [ref {ref}]")
START_TRIES = 5


def start_scheduler(services: Services, slack: SlackSettings) -> BackgroundScheduler:
    """The scheduler started with its interval jobs (the inbox's when ``KPIBOT_INBOX`` is set). Workers
    starting together insert the same job rows; one that loses such a race (a unique violation) stops its
    scheduler and starts again, where the rows now exist and are replaced."""
    inbox = inbox_settings()
    for attempt in range(1, START_TRIES + 1):
        scheduler = build_scheduler(services, slack)
        if inbox is not None:
            from kpi.data.inbox import Inbox

            _runtime["inbox"] = Inbox(inbox[0], lang=lang_of(services.settings.locale))
        else:
            _runtime.pop("inbox", None)
        try:
            scheduler.start()
            now = datetime.now(UTC)
            for func, job_id, interval in interval_jobs(inbox[1] if inbox is not None else None):
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
    if "inbox" in _runtime:
        log.warning("worker watching the inbox %s", _runtime["inbox"].root)  # type: ignore[union-attr]
    stop.wait()
    stop_scheduler(scheduler)
    return 0
