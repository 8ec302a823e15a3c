"""The delivery log (DESIGN.md section 7): every notification the worker sends claims a row first.

The row's key is unique (``digest:<schedule>:<local date>``, ``alert:<rule>:<episode>:<step>``): the
database lets exactly one claimant insert it, whatever the number of workers, restarts or retries.
Only the claimant sends; it then records the Slack ``ts`` (status ``sent``) or the error (``failed``
for an error that a retry would not fix, such as ``not_in_channel``; the claim is *released* for a
transient one — Slack unreachable, the source database down — so that the next tick tries again
within the grace time).

A claim with no outcome after ``CLAIM_TIMEOUT`` means its worker died between claim and send: the next
tick marks it ``interrupted`` (one worker wins that update), reports it, and — the documented rule —
sends it once more under ``<key>#resent`` if still within the grace time, marked as resent. Slack
has no idempotency key, so a message interrupted after Slack accepted it may then appear twice; we
prefer that, visibly marked, to a digest silently lost.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .state import deliveries

log = logging.getLogger("kpibot.delivery")
CLAIM_TIMEOUT = timedelta(minutes=2)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    id: int
    key: str
    team_id: str
    late: bool = False


@dataclass(frozen=True)
class Interrupted:
    key: str
    team_id: str
    kind: str
    claimed_by: str
    claimed_at: datetime
    due_at: datetime | None
    channel: str | None


class DeliveryLog:
    def __init__(self, engine: Engine, *, worker: str | None = None, clock: Callable[[], datetime] | None = None):
        self.engine = engine
        self.worker = worker or worker_id()
        self.clock = clock or (lambda: datetime.now(UTC))

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(tzinfo=None)

    def claim(self, key: str, *, team_id: str, kind: str, due_at: datetime | None = None, late: bool = False,
              channel: str | None = None) -> Claim | None:
        """The right to send ``key``, or None when someone already has it (or had it)."""
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(deliveries).values(
                    team_id=team_id, key=key, kind=kind, status="claimed", claimed_at=self._now(),
                    claimed_by=self.worker, late=late, channel=channel,
                    due_at=due_at.astimezone(UTC).replace(tzinfo=None) if due_at else None,
                )).inserted_primary_key[0]
        except IntegrityError:
            return None
        return Claim(new_id, key, team_id, late)

    def sent(self, claim: Claim, *, ts: str | None, channel: str | None = None) -> None:
        self._finish(claim, status="sent", slack_ts=ts, channel=channel)

    def failed(self, claim: Claim, error: str) -> None:
        """An outcome a retry would not change: recorded, never sent again without --force."""
        self._finish(claim, status="failed", error=error[:2000])

    def release(self, claim: Claim, error: str) -> None:
        """A transient failure: the claim is given back so the next tick can try again."""
        log.warning("delivery %s released for a retry: %s", claim.key, error)
        with self.engine.begin() as conn:
            conn.execute(deliveries.delete().where(and_(deliveries.c.id == claim.id, deliveries.c.status == "claimed")))

    def skip(self, key: str, *, team_id: str, kind: str, reason: str, due_at: datetime | None = None) -> bool:
        """Record that ``key`` will not be sent (beyond the grace time). False if it was already handled."""
        claim = self.claim(key, team_id=team_id, kind=kind, due_at=due_at)
        if claim is None:
            return False
        self._finish(claim, status="skipped", error=reason)
        log.warning("delivery %s skipped: %s", key, reason)
        return True

    def _finish(self, claim: Claim, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == claim.id).values(finished_at=self._now(), **values))

    def status(self, key: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.key == key)).first()
        return dict(row._mapping) if row else None

    def recover(self) -> list[Interrupted]:
        """Claims whose worker never reported back: marked ``interrupted`` (by exactly one caller) and returned."""
        limit = self._now() - CLAIM_TIMEOUT
        with self.engine.connect() as conn:
            stale = conn.execute(select(deliveries).where(and_(
                deliveries.c.status == "claimed", deliveries.c.claimed_at < limit))).all()
        found = []
        for row in stale:
            with self.engine.begin() as conn:
                won = conn.execute(update(deliveries).where(and_(deliveries.c.id == row.id, deliveries.c.status == "claimed"))
                                   .values(status="interrupted", finished_at=self._now(),
                                           error=f"interrupted: claimed by {row.claimed_by} at {row.claimed_at:%Y-%m-%d %H:%M:%S} UTC "
                                                 f"and never confirmed")).rowcount
            if won:
                log.error("delivery %s was claimed by %s at %s and never confirmed (worker died?)",
                          row.key, row.claimed_by, row.claimed_at)
                found.append(Interrupted(row.key, row.team_id, row.kind, row.claimed_by, row.claimed_at,
                                         row.due_at.replace(tzinfo=UTC) if row.due_at else None, row.channel))
        return found
