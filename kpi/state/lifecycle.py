"""A team's life with the app: paused when it uninstalls the app or its token dies, resumed when it
installs again; and the Slack events already handled, so that a delivery Slack retries is processed once.

Pausing marks every digest schedule and alert rule of the team (``paused_at``, ``paused_reason``); the
worker skips paused rows (``all_schedules``, ``all_rules``) and the notifications still waiting in the
outbox for that team are closed (``skipped``), so nothing is sent, or retried, to a workspace whose
token is gone. Nothing is deleted: a reinstall resumes the team as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kpi.state.tables import alert_rules, deliveries, digest_schedules, slack_events

# why a team was paused: the Slack event, or the Web API error that showed its token was gone
REASONS = ("app_uninstalled", "tokens_revoked", "account_inactive", "token_revoked", "invalid_auth", "not_installed")
# Slack keeps retrying an event for about an hour (immediately, after 1 min, after 5 min): a day is ample
EVENT_MEMORY = timedelta(days=1)


def _now(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)


def pause_team(engine: Engine, team_id: str, reason: str, *, now: datetime | None = None) -> int:
    """Pause every schedule and rule of ``team_id`` (already paused ones keep their first reason) and
    close its pending outbox rows; returns how many schedules and rules were paused now."""
    stamp = _now(now)
    changed = 0
    with engine.begin() as conn:
        for table in (digest_schedules, alert_rules):
            changed += conn.execute(update(table).where(and_(table.c.team_id == team_id, table.c.paused_at.is_(None)))
                                    .values(paused_at=stamp, paused_reason=reason[:64])).rowcount
        conn.execute(update(deliveries).where(and_(deliveries.c.team_id == team_id, deliveries.c.status == "due"))
                     .values(status="skipped", finished_at=stamp, error=f"team paused: {reason}"[:2000]))
    return changed


def resume_team(engine: Engine, team_id: str) -> int:
    """The team installed the app again: its schedules and rules run again."""
    with engine.begin() as conn:
        return sum(conn.execute(update(table).where(and_(table.c.team_id == team_id, table.c.paused_at.is_not(None)))
                                .values(paused_at=None, paused_reason=None)).rowcount
                   for table in (digest_schedules, alert_rules))


def first_delivery(engine: Engine, event_id: str | None, *, team_id: str | None = None, event_type: str | None = None,
                   now: datetime | None = None) -> bool:
    """True the first time an ``event_id`` is seen, False for every later delivery of it (Slack's retries,
    whichever process or worker they reach). An event without an id is always processed."""
    if not event_id:
        return True
    try:
        with engine.begin() as conn:
            conn.execute(insert(slack_events).values(event_id=event_id[:64], team_id=(team_id or None),
                                                     event_type=(event_type or "")[:64] or None,
                                                     received_at=_now(now)))
    except IntegrityError:
        return False
    return True


def forget_old_events(engine: Engine, *, now: datetime | None = None, keep: timedelta = EVENT_MEMORY) -> int:
    """Delete event ids older than ``keep`` (the worker does it every minute)."""
    with engine.begin() as conn:
        return conn.execute(delete(slack_events).where(slack_events.c.received_at < _now(now) - keep)).rowcount


__all__ = ["EVENT_MEMORY", "REASONS", "first_delivery", "forget_old_events", "pause_team", "resume_team"]
