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

Alert notifications go through an *outbox*: the transition that decides them writes their rows with
status ``due`` in the same transaction as the new state (``outbox_row``). A pass takes each due row
(``claim_due``), sends it, and records ``sent``; a transient failure puts it back to ``due``, and so
does a worker's death between taking and sending it (after ``CLAIM_TIMEOUT``). A decided alert is thus
never lost, whatever fails after the decision.
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

from kpi.state.tables import deliveries

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
    queued: bool = False  # taken from the outbox (status ``due``): a release puts it back there


def outbox_row(key: str, *, team_id: str, kind: str, channel: str | None, now: datetime) -> dict:
    """A notification decided but not sent yet (status ``due``): written in the same transaction as the
    decision (an alert's transition), so that it cannot be lost between deciding and sending."""
    return dict(team_id=team_id, key=key, kind=kind, status="due", claimed_at=now.astimezone(UTC).replace(tzinfo=None),
                claimed_by="outbox", channel=channel, late=False)


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

    def due(self, kind: str) -> list[dict]:
        """The outbox: notifications of ``kind`` decided and not sent yet, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries).where(and_(deliveries.c.kind == kind, deliveries.c.status == "due"))
                                .order_by(deliveries.c.id)).all()
        return [dict(r._mapping) for r in rows]

    def claim_due(self, key: str) -> Claim | None:
        """Take a notification from the outbox; None when another worker took it first."""
        with self.engine.begin() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.key == key)).first()
            if row is None:
                return None
            won = conn.execute(update(deliveries).where(and_(deliveries.c.id == row.id, deliveries.c.status == "due"))
                               .values(status="claimed", claimed_at=self._now(), claimed_by=self.worker)).rowcount
        return Claim(row.id, key, row.team_id, queued=True) if won else None

    def sent(self, claim: Claim, *, ts: str | None, channel: str | None = None) -> None:
        self._finish(claim, status="sent", slack_ts=ts, channel=channel)

    def failed(self, claim: Claim, error: str) -> None:
        """An outcome a retry would not change: recorded, never sent again without --force."""
        self._finish(claim, status="failed", error=error[:2000])

    def release(self, claim: Claim, error: str) -> None:
        """A transient failure: the claim is given back so the next tick can try again (to the outbox for
        a queued notification)."""
        log.warning("delivery %s released for a retry: %s", claim.key, error)
        with self.engine.begin() as conn:
            mine = and_(deliveries.c.id == claim.id, deliveries.c.status == "claimed")
            if claim.queued:
                conn.execute(update(deliveries).where(mine).values(status="due", error=error[:2000]))
            else:
                conn.execute(deliveries.delete().where(mine))

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
            note = (f"interrupted: claimed by {row.claimed_by} at {row.claimed_at:%Y-%m-%d %H:%M:%S} UTC "
                    f"and never confirmed")
            # a queued notification (an alert) goes back to the outbox and is sent again by the next pass;
            # a digest is marked interrupted and resent under its own rule (DigestSender.recover)
            values = ({"status": "due", "error": note} if row.claimed_by != "outbox" and row.kind == "alert"
                      else {"status": "interrupted", "finished_at": self._now(), "error": note})
            with self.engine.begin() as conn:
                won = conn.execute(update(deliveries).where(and_(deliveries.c.id == row.id, deliveries.c.status == "claimed"))
                                   .values(**values)).rowcount
            if won:
                log.error("delivery %s was claimed by %s at %s and never confirmed (worker died?)",
                          row.key, row.claimed_by, row.claimed_at)
                found.append(Interrupted(row.key, row.team_id, row.kind, row.claimed_by, row.claimed_at,
                                         row.due_at.replace(tzinfo=UTC) if row.due_at else None, row.channel))
        return found
