"""Sending digests: compose (kpi.digests.compose), render (bot.render.digest), deliver through the delivery log.

One ``DigestSender`` per process; the worker, ``kpibot digest send`` and the tests share it. Every send
goes through ``DeliveryLog.claim``, so two workers, a restart or a retry never send a digest twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from kpi.digests.compose import compose_digest
from kpi.digests.schedule import GRACE, Due, digest_key, due_digests
from kpi.errors import KpiError
from kpi.i18n import lang_of, tr
from kpi.services import Services
from kpi.state.delivery import Claim, DeliveryLog
from kpi.state.lifecycle import pause_team
from kpi.state.store import Goals, Schedule, Schedules, all_schedules

from .answer import upload_chart
from .delivery import Delivered, NotConfirmed, deliver, record
from .drawing import draw_digest_chart
from .render.digest import digest_message, owner_id

log = logging.getLogger("kpibot.digests")

# Slack errors that a retry will not fix: the schedule shows them until someone acts
# digests composed at once in this process (KPIBOT_DIGEST_CONCURRENCY, default 1): schedules due at the same minute
# wait for each other. Each 50-goal digest holds its series and chart (a worker composing three at once peaked
# ~65 MB higher than composing one, over the 300 MB target, issue 15), and they compete for the same cores.
_composing = threading.BoundedSemaphore(max(1, int(os.environ.get("KPIBOT_DIGEST_CONCURRENCY") or 1)))

PERMANENT = {"not_in_channel", "channel_not_found", "is_archived", "invalid_auth", "account_inactive",
             "token_revoked", "missing_scope", "restricted_action", "team_access_not_granted", "invalid_blocks",
             "msg_too_long", "no_permission"}
# the team's token is gone (uninstalled, revoked, deactivated): its schedules and rules are paused, not retried
REVOKED = {"account_inactive", "token_revoked", "invalid_auth"}
HINTS = {"not_in_channel": "invite the bot to the channel (/invite @KPI Bot)",
         "channel_not_found": "the channel does not exist or is private: invite the bot, or change the schedule",
         "is_archived": "the channel is archived: change the schedule's channel"}


@dataclass(frozen=True)
class Outcome:
    schedule_id: int
    team_id: str
    day: date
    status: str  # sent | already | failed | retry | skipped | empty | paused
    detail: str = ""
    ts: str | None = None


def previous_run(schedule: Schedule, day: date) -> date:
    """The last day before ``day`` on which ``schedule`` sends a digest (the day before when it never does)."""
    for back in range(1, 8):
        if schedule.runs_on(day - timedelta(days=back)):
            return day - timedelta(days=back)
    return day - timedelta(days=1)


class DigestSender:
    def __init__(self, services: Services, client_for: Callable[[str], WebClient], *,
                 clock: Callable[[], datetime] | None = None, worker: str | None = None, settle: float | None = None,
                 lease: timedelta | None = None):
        self.services = services
        self.client_for = client_for  # team id -> a WebClient with that team's bot token
        self.clock = clock or (lambda: datetime.now(UTC))
        self.log = DeliveryLog(services.state(), worker=worker, clock=self.clock, lease=lease)
        self.settle = settle  # seconds to wait after Slack did not answer before looking (bot.delivery)

    def tick(self) -> list[Outcome]:
        """What the worker does every minute: report interrupted sends, then send what is due."""
        outcomes = self.recover()
        outcomes += self.deliver_due()
        return outcomes

    def deliver_due(self, schedules: list[Schedule] | None = None) -> list[Outcome]:
        schedules = all_schedules(self.services.state()) if schedules is None else schedules
        outcomes = []
        for due in due_digests(schedules, self.clock()):
            if due.action == "skip":
                if self.log.skip(due.key, team_id=due.schedule.team_id, kind="digest", due_at=due.due_at,
                                 reason=f"not sent within the grace time ({GRACE}); due {due.due_at:%Y-%m-%d %H:%M} UTC"):
                    Schedules(self.services.state(), due.schedule.team_id).record_error(
                        due.schedule.id, f"digest of {due.day} skipped: the worker was down beyond the grace time")
                    outcomes.append(Outcome(due.schedule.id, due.schedule.team_id, due.day, "skipped"))
                continue
            outcome = self.send(due.schedule, due.day, key=due.key, late_by=due.late_by if due.late else None)
            if outcome.status != "already":  # the normal case of every tick after the send
                outcomes.append(outcome)
        return outcomes

    def send(self, schedule: Schedule, day: date, *, key: str | None = None, late_by: timedelta | None = None,
             resent: bool = False, force: bool = False) -> Outcome:
        key = key or digest_key(schedule.id, day)
        if schedule.paused_at is not None:  # the team uninstalled the app or lost its token
            return Outcome(schedule.id, schedule.team_id, day, "paused", schedule.paused_reason or "")
        if force:
            key = f"{key}#forced-{self.clock():%Y%m%dT%H%M%S%f}"
        claim = self.log.claim(key, team_id=schedule.team_id, kind="digest", due_at=schedule.due_at(day),
                               late=late_by is not None, channel=schedule.channel)
        if claim is None:
            return Outcome(schedule.id, schedule.team_id, day, "already")
        with self.log.hold(claim), _composing:  # the lease is renewed however long the source, Slack or the wait take
            return self._send(schedule, day, claim, late_by=late_by, resent=resent)

    def _send(self, schedule: Schedule, day: date, claim: Claim, *, late_by: timedelta | None,
              resent: bool) -> Outcome:
        key = claim.key
        schedules = Schedules(self.services.state(), schedule.team_id)
        try:
            shop = self.services.for_team(schedule.team_id)  # the team's shop (config/teams.yaml)
            engine = shop.kpi_engine()
            goals = Goals(self.services.state(), schedule.team_id).list()
            late_minutes = int(late_by.total_seconds() // 60) if late_by else 0
            # "turned off track" (the one time an owner is pinged) is against the schedule's previous digest:
            # Monday's, of a weekday schedule, against Friday's, not against the Sunday nobody read
            digest = compose_digest(engine, goals, team_id=schedule.team_id, today=day, content=schedule.content,
                                    previous_day=previous_run(schedule, day),
                                    late_by_minutes=late_minutes, due_at=schedule.due_at(day).astimezone(schedule.tz))
            lang = lang_of(self.services.settings.locale)
        except Exception as exc:  # noqa: BLE001 - the source or state database is down: retried next tick
            log.exception("digest %s could not be composed", key)
            self.log.release(claim, f"{type(exc).__name__}: {exc}")
            schedules.record_error(schedule.id, f"digest of {day} not composed ({type(exc).__name__}); retrying")
            return Outcome(schedule.id, schedule.team_id, day, "retry", type(exc).__name__)
        try:
            client = self.client_for(schedule.team_id)
        except KpiError as exc:  # no installation (uninstalled) or no usable token: not retried
            self.log.failed(claim, str(exc))
            schedules.record_error(schedule.id, str(exc))
            if not_installed(exc):
                pause_team(self.services.state(), schedule.team_id, "not_installed")
            return Outcome(schedule.id, schedule.team_id, day, "failed", "not_installed")
        # owners are named, not pinged: their names, when Slack says
        message = digest_message(digest, lang=lang, currency=shop.settings.currency, names=owner_names(client, goals))
        repeated = tr(lang, "(sent again: the first attempt was interrupted) {text}", text=message.text)
        try:
            delivered = deliver(client, self.log, claim, channel=schedule.channel, text=message.text,
                                blocks=message.blocks, settle=self.settle, repeated_text=repeated, unfurl_links=False)
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            if error in PERMANENT:
                self.log.failed(claim, error)
                if error in REVOKED:
                    pause_team(self.services.state(), schedule.team_id, error)
                    log.error("digest %s: the token of %s is gone (%s): the team is paused", key, schedule.team_id, error)
                    return Outcome(schedule.id, schedule.team_id, day, "failed", error)
                hint = HINTS.get(error, "")
                schedules.record_error(schedule.id, f"{error}: {hint}" if hint else error)
                log.error("digest %s to %s failed: %s", key, schedule.channel, error)
                return Outcome(schedule.id, schedule.team_id, day, "failed", error)
            self.log.release(claim, error)
            schedules.record_error(schedule.id, f"digest of {day}: Slack answered {error}; retrying")
            return Outcome(schedule.id, schedule.team_id, day, "retry", error)
        except (NotConfirmed, OSError) as exc:  # Slack unreachable, or no answer and nothing in the channel
            detail = str(exc) if isinstance(exc, NotConfirmed) else type(exc).__name__
            self.log.release(claim, detail)
            schedules.record_error(schedule.id, f"digest of {day} not confirmed by Slack ({detail}); retrying")
            return Outcome(schedule.id, schedule.team_id, day, "retry", detail)
        record(self.log, claim, delivered)
        schedules.record_error(schedule.id, self._story(schedule, day, claim, delivered, resent=resent))
        if not delivered.found:  # (a message found in the channel was its earlier attempt's, chart and all)
            try:  # the digest is out and marked sent: its chart is a bonus that never undoes that
                png = draw_digest_chart(digest, lang=lang)
                if png:
                    upload_chart(client, delivered.channel, png, f"goals-{day.isoformat()}-{lang}.png",
                                 title=tr(lang, "Goals"), thread_ts=delivered.ts)
            except Exception:  # noqa: BLE001 - logged; the outcome stays "sent"
                log.exception("digest %s: chart not attached", key)
        return Outcome(schedule.id, schedule.team_id, day, "sent", ts=delivered.ts)

    def _story(self, schedule: Schedule, day: date, claim: Claim, delivered: Delivered, *, resent: bool) -> str | None:
        """The schedule's note after a send: none when it simply went out; otherwise what happened, so
        that an interruption or a retry stays on record with how it ended."""
        if not (claim.retry or resent or delivered.found or claim.late):
            return None
        when = f"{self.clock():%Y-%m-%d %H:%M} UTC"
        if delivered.found:
            return (f"digest of {day}: an earlier attempt had reached Slack (ts {delivered.ts}); recorded at {when}, "
                    f"not posted again")
        if resent:
            return (f"digest of {day} was interrupted (a worker stopped between claim and send); "
                    f"sent at {when}, once")
        if claim.retry:
            return f"digest of {day}: sent at {when} after an earlier attempt failed"
        return f"digest of {day}: sent late, at {when}"

    def recover(self) -> list[Outcome]:
        """Sends whose worker's lease expired: reported on the schedule, then sent if still in time (the
        channel is looked at first: nothing is posted twice)."""
        outcomes = []
        for lost in self.log.recover():
            if lost.kind != "digest" or "#" in lost.key:
                continue
            _, schedule_id, day_text = lost.key.split(":")
            day = date.fromisoformat(day_text)
            schedules = Schedules(self.services.state(), lost.team_id)
            try:
                schedule = schedules.get(int(schedule_id))
            except Exception:  # noqa: BLE001 - the schedule was removed meanwhile: nothing to resend
                continue
            schedules.record_error(schedule.id, f"digest of {day} was interrupted (worker {lost.claimed_by} stopped "
                                                f"between claim and send)")
            if lost.due_at and self.clock() - lost.due_at <= GRACE:
                outcomes.append(self.send(schedule, day, key=lost.key, resent=True, late_by=self.clock() - lost.due_at))
            else:
                self.log.skip(lost.key, team_id=lost.team_id, kind="digest", reason="interrupted beyond the grace time",
                              due_at=lost.due_at)
                outcomes.append(Outcome(schedule.id, lost.team_id, day, "skipped", "interrupted beyond the grace time"))
        return outcomes


def not_installed(exc: KpiError) -> bool:
    """``TeamClients`` found no installation for the team (several workspaces): it uninstalled the app."""
    return "has not installed the app" in (getattr(exc, "msgid", "") or "")


def today_for(schedule: Schedule, now: datetime) -> date:
    return now.astimezone(schedule.tz).date()


__all__ = ["DigestSender", "Outcome", "Due", "REVOKED", "not_installed", "today_for"]


MAX_OWNER_LOOKUPS = 50


def owner_names(client, goals) -> dict[str, str]:
    """The display names of the goals' owners (user id -> name), from ``users.info``; an owner Slack cannot
    tell about is left out (the digest then shows what the goal was set with). Never raises."""
    ids = list(dict.fromkeys(user for user in map(owner_id, goals) if user))
    names: dict[str, str] = {}
    for user in ids[:MAX_OWNER_LOOKUPS]:
        try:
            info = client.users_info(user=user).get("user") or {}
        except Exception:  # noqa: BLE001 - a name is a nicety: the digest goes out without it
            continue
        profile = info.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or info.get("name")
        if name:
            names[user] = name
    return names
