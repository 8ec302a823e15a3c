"""The bot's state, per team: goals and digest schedules. Every query filters by ``team_id``: a team
never reads or changes another team's rows, whatever id it names (an id of another team is "not
found", exactly like an id that does not exist)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine

from kpi.errors import KpiError
from kpi.i18n import N_
from kpi.state.tables import digest_schedules, goals

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONTENTS = ("goals", "watch", "movers")


_NOT_FOUND = {
    "goal": N_("No goal #{ident} in this workspace."),
    "digest schedule": N_("No digest schedule #{ident} in this workspace."),
    "alert rule": N_("No alert rule #{ident} in this workspace."),
}


class NotFound(KpiError):
    def __init__(self, what: str, ident: object):
        self.what = what
        super().__init__(_NOT_FOUND.get(what) or N_("No {what} #{ident} in this workspace."), what=what, ident=ident)


MAX_ID = 2**31 - 1  # the integer columns' range on every database


def checked_id(ident, what: str) -> int:
    """An id as the database can hold it; anything else is simply not found (never a database error)."""
    try:
        value = int(ident)
    except (TypeError, ValueError):
        raise NotFound(what, ident) from None
    if not 1 <= value <= MAX_ID:
        raise NotFound(what, ident)
    return value


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class StoredGoal:
    id: int
    team_id: str
    metric: str
    target_kind: str
    target_value: float
    start: date
    deadline: date
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    baseline: float | None = None
    owner: str | None = None
    channel: str | None = None
    watch: tuple[str, ...] = ()
    text: str = ""
    created_by: str | None = None
    created_at: datetime | None = None
    archived_at: datetime | None = None
    final_value: float | None = None
    final_status: str | None = None


def _goal(row) -> StoredGoal:
    m = dict(row._mapping)
    m["filters"] = tuple((d, tuple(v)) for d, v in json.loads(m["filters"] or "[]"))
    m["watch"] = tuple(json.loads(m["watch"] or "[]"))
    return StoredGoal(**m)


class Goals:
    def __init__(self, engine: Engine, team_id: str):
        if not team_id:
            raise KpiError("a workspace (team id) is required")
        self.engine = engine
        self.team_id = team_id

    def add(self, spec, *, created_by: str | None = None, now: datetime | None = None) -> StoredGoal:
        """Store a goal from a ``GoalSpec`` (kpi.goals) or any object with the same fields."""
        values = dict(
            team_id=self.team_id, metric=spec.metric, target_kind=spec.target_kind, target_value=spec.target_value,
            start=spec.start, deadline=spec.deadline, baseline=spec.baseline, owner=spec.owner, channel=spec.channel,
            filters=json.dumps([[d, list(v)] for d, v in spec.filters]), watch=json.dumps(list(spec.watch)),
            text=spec.text or "", created_by=created_by, created_at=(now or _now()),
        )
        with self.engine.begin() as conn:
            new_id = conn.execute(insert(goals).values(**values)).inserted_primary_key[0]
        return self.get(new_id)

    def list(self, *, include_archived: bool = False) -> list[StoredGoal]:
        q = select(goals).where(goals.c.team_id == self.team_id)
        if not include_archived:
            q = q.where(goals.c.archived_at.is_(None))
        with self.engine.connect() as conn:
            return [_goal(r) for r in conn.execute(q.order_by(goals.c.id))]

    def get(self, goal_id: int) -> StoredGoal:
        with self.engine.connect() as conn:
            row = conn.execute(select(goals).where(and_(goals.c.team_id == self.team_id,
                                                        goals.c.id == checked_id(goal_id, "goal")))).first()
        if row is None:
            raise NotFound("goal", goal_id)
        return _goal(row)

    def archive(self, goal_id: int, *, now: datetime | None = None) -> StoredGoal:
        return self._update(goal_id, archived_at=now or _now())

    def freeze(self, goal_id: int, final_value: float | None, final_status: str) -> StoredGoal:
        """A goal whose deadline passed keeps its final value and status for good."""
        return self._update(goal_id, final_value=final_value, final_status=final_status)

    def _update(self, goal_id: int, **values) -> StoredGoal:
        with self.engine.begin() as conn:
            done = conn.execute(update(goals).where(and_(goals.c.team_id == self.team_id,
                                                         goals.c.id == checked_id(goal_id, "goal")))
                                .values(**values)).rowcount
        if not done:
            raise NotFound("goal", goal_id)
        return self.get(goal_id)


@dataclass(frozen=True)
class Schedule:
    id: int
    team_id: str
    channel: str
    local_time: str = "08:00"
    timezone: str = "UTC"
    days: tuple[str, ...] = DAYS[:5]
    content: tuple[str, ...] = CONTENTS
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    paused_at: datetime | None = None  # the team uninstalled the app or its token died (kpi.state.lifecycle)
    paused_reason: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def at(self) -> time:
        h, m = self.local_time.split(":")
        return time(int(h), int(m))

    def runs_on(self, day: date) -> bool:
        return DAYS[day.weekday()] in self.days

    def due_at(self, day: date) -> datetime:
        """The moment (UTC, aware) of the digest on a local day; a local time that does not exist that day
        (clocks jump forward) is taken after the jump, one that exists twice at its first occurrence."""
        local = datetime.combine(day, self.at, tzinfo=self.tz)
        back = local.astimezone(UTC).astimezone(self.tz)
        if back.replace(tzinfo=None) != local.replace(tzinfo=None):  # a skipped local time: after the jump
            local = back
        return local.astimezone(UTC)


def _schedule(row) -> Schedule:
    m = dict(row._mapping)
    m["days"] = tuple(d for d in m["days"].split(",") if d)
    m["content"] = tuple(c for c in m["content"].split(",") if c)
    return Schedule(**m)


def parse_days(text: str) -> tuple[str, ...]:
    """'mon-fri', 'weekdays', 'mon,wed,fri', 'daily', 'lun-ven' -> day names."""
    fr = {"lun": "mon", "mar": "tue", "mer": "wed", "jeu": "thu", "ven": "fri", "sam": "sat", "dim": "sun"}
    t = text.strip().lower()
    if t in ("weekdays", "workdays", "semaine", "jours ouvres", "jours ouvrés"):
        return DAYS[:5]
    if t in ("daily", "every day", "everyday", "tous les jours", "quotidien"):
        return DAYS
    out: list[str] = []
    for part in t.replace(" ", "").split(","):
        a, _, b = part.partition("-")
        a, b = fr.get(a[:3], a[:3]), fr.get(b[:3], b[:3]) if b else None
        if a not in DAYS or (b is not None and b not in DAYS):
            raise KpiError("'{text}' is not a list of days (use mon-fri, weekdays, daily or mon,wed,fri)", text=text)
        out += list(DAYS[DAYS.index(a): DAYS.index(b) + 1]) if b else [a]
    return tuple(d for d in DAYS if d in out)


def parse_local_time(text: str) -> str:
    t = text.strip().lower().replace("h", ":").rstrip(":")
    try:
        if t.endswith(("am", "pm")):
            h, _, m = t[:-2].strip().partition(":")
            hour = int(h) % 12 + (12 if t.endswith("pm") else 0)
            minute = int(m or 0)
        else:
            h, _, m = t.partition(":")
            hour, minute = int(h), int(m or 0)
    except ValueError:
        raise KpiError("'{text}' is not a time of day (use 08:00, 8am or 8h30)", text=text) from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise KpiError("'{text}' is not a time of day (use 08:00, 8am or 8h30)", text=text)
    return f"{hour:02d}:{minute:02d}"


class Schedules:
    def __init__(self, engine: Engine, team_id: str):
        if not team_id:
            raise KpiError("a workspace (team id) is required")
        self.engine = engine
        self.team_id = team_id

    def add(self, channel: str, *, local_time: str = "08:00", timezone: str = "UTC", days=DAYS[:5],
            content=CONTENTS, created_by: str | None = None, now: datetime | None = None) -> Schedule:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise KpiError("'{zone}' is not a time zone (use an IANA name such as Europe/Paris)", zone=timezone) from None
        if not channel:
            raise KpiError("a digest needs a channel")
        bad = [c for c in content if c not in CONTENTS]
        if bad:
            raise KpiError("unknown digest content {content} (use {allowed})", content=", ".join(bad),
                           allowed=", ".join(CONTENTS))
        stamp = now or _now()
        with self.engine.begin() as conn:
            new_id = conn.execute(insert(digest_schedules).values(
                team_id=self.team_id, channel=channel, local_time=parse_local_time(local_time), timezone=timezone,
                days=",".join(days), content=",".join(content), created_by=created_by, created_at=stamp,
                updated_at=stamp)).inserted_primary_key[0]
        return self.get(new_id)

    def list(self) -> list[Schedule]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(digest_schedules).where(digest_schedules.c.team_id == self.team_id)
                                .order_by(digest_schedules.c.id))
            return [_schedule(r) for r in rows]

    def get(self, schedule_id: int) -> Schedule:
        with self.engine.connect() as conn:
            row = conn.execute(select(digest_schedules).where(and_(
                digest_schedules.c.team_id == self.team_id,
                digest_schedules.c.id == checked_id(schedule_id, "digest schedule")))).first()
        if row is None:
            raise NotFound("digest schedule", schedule_id)
        return _schedule(row)

    def remove(self, schedule_id: int) -> Schedule:
        schedule = self.get(schedule_id)
        with self.engine.begin() as conn:
            conn.execute(digest_schedules.delete().where(and_(
                digest_schedules.c.team_id == self.team_id, digest_schedules.c.id == schedule.id)))
        return schedule

    def record_error(self, schedule_id: int, error: str | None, *, now: datetime | None = None) -> None:
        """Shown in ``digest list``: the last delivery problem of a schedule (None clears it)."""
        with self.engine.begin() as conn:
            conn.execute(update(digest_schedules).where(and_(
                digest_schedules.c.team_id == self.team_id,
                digest_schedules.c.id == checked_id(schedule_id, "digest schedule")))
                .values(last_error=error, last_error_at=(now or _now()) if error else None))


def all_schedules(engine: Engine, *, include_paused: bool = False) -> list[Schedule]:
    """Every team's schedules: for the worker only, which serves every team. Paused ones (their team
    uninstalled the app or lost its token) are left out unless asked for."""
    q = select(digest_schedules)
    if not include_paused:
        q = q.where(digest_schedules.c.paused_at.is_(None))
    with engine.connect() as conn:
        return [_schedule(r) for r in conn.execute(q.order_by(digest_schedules.c.id))]


__all__ = ["Goals", "Schedules", "StoredGoal", "Schedule", "NotFound", "all_schedules", "parse_days",
           "parse_local_time"]
