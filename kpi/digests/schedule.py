"""Which digests are due, as a pure function of the schedules and the time (DESIGN.md section 7).

A digest is due on each local day its schedule runs, at its local time in its own time zone (so 08:00
Europe/Paris is 07:00 UTC in winter and 06:00 UTC in summer). Once due it is sent if within the grace
time (late, and marked so, when more than ``LATE_AFTER`` behind), and skipped beyond it. A schedule
created after a day's time does not owe that day's digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from kpi.state.store import Schedule

GRACE = timedelta(hours=4)
LATE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Due:
    schedule: Schedule
    day: date  # the local day of the digest
    due_at: datetime  # UTC, aware
    action: str  # send | skip
    late_by: timedelta

    @property
    def key(self) -> str:
        return digest_key(self.schedule.id, self.day)

    @property
    def late(self) -> bool:
        return self.late_by > LATE_AFTER


def digest_key(schedule_id: int, day: date) -> str:
    return f"digest:{schedule_id}:{day.isoformat()}"


def due_digests(schedules: list[Schedule], now: datetime, *, grace: timedelta = GRACE) -> list[Due]:
    now = now.astimezone(UTC)
    out = []
    for s in schedules:
        local_today = now.astimezone(s.tz).date()
        for day in (local_today - timedelta(days=1), local_today):
            if not s.runs_on(day):
                continue
            due = s.due_at(day)
            if due > now:
                continue
            if s.created_at is not None and due < s.created_at.replace(tzinfo=UTC):
                continue
            late_by = now - due
            out.append(Due(s, day, due, "send" if late_by <= grace else "skip", late_by))
    return out


def next_due(schedule: Schedule, after: datetime) -> datetime:
    """The next time a schedule's digest is due after ``after`` (for listings)."""
    day = after.astimezone(schedule.tz).date()
    for i in range(8):
        d = day + timedelta(days=i)
        if schedule.runs_on(d) and schedule.due_at(d) > after:
            return schedule.due_at(d)
    raise ValueError("a schedule with no day")
