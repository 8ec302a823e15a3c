"""The delivery log (DESIGN.md section 7): every notification the worker sends claims a row first.

The row's key is unique (``digest:<schedule>:<local date>``, ``alert:<rule>:<episode>:<step>``): the
database lets exactly one claimant insert it, whatever the number of workers, restarts or retries.
Only the claimant sends; it then records the Slack ``ts`` (status ``sent``) or the error (``failed``
for an error that a retry would not fix, such as ``not_in_channel``; the claim is *released* for a
transient one — Slack unreachable, the source database down — so that the next tick tries again
within the grace time).

Leases, not timeouts (issue 14): a claim is held until ``lease_until``; the worker holding it renews
the lease while it composes and sends (``hold``: a heartbeat), however long Slack or the source takes.
Only a claim whose lease has expired — its worker died or hung — is taken over by another worker.

Exactly once on Slack's side: every message carries its delivery key in its ``metadata``. A claim whose
key was attempted before (released after an error, taken over after an expired lease) comes back with
``retry=True``, and the sender then looks for the key in the channel's recent history before posting
(``bot.delivery``): a message Slack accepted late, or whose confirmation was lost, is found there and
recorded instead of being posted again.

Every step of a delivery is appended to its ``notes`` (claimed, posting, released and why, taken over,
found in the channel, sent late...): nothing overwrites an earlier note.

Alert notifications go through an *outbox*: the transition that decides them writes their rows with
status ``due`` in the same transaction as the new state (``outbox_row``). A pass takes each due row
(``claim_due``), sends it, and records ``sent``; a transient failure puts it back to ``due``, and so
does an expired lease. A decided alert is thus never lost, whatever fails after the decision.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kpi.state.tables import deliveries

log = logging.getLogger("kpibot.delivery")


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


# how long a claim is held without renewal; the holder renews it every LEASE / 4 while it works
LEASE = timedelta(seconds=_seconds("KPIBOT_DELIVERY_LEASE", 120))
ATTEMPT = "posting"  # the note written just before a message is handed to Slack


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    id: int
    key: str
    team_id: str
    late: bool = False
    queued: bool = False  # taken from the outbox (status ``due``): a release puts it back there
    # an earlier attempt of this key may have reached Slack: look in the channel before posting
    retry: bool = False
    since: datetime | None = None  # (UTC) when the key was first claimed: the history to look through
    taken_over: str | None = None  # the worker whose expired lease this claim took over


def outbox_row(key: str, *, team_id: str, kind: str, channel: str | None, now: datetime) -> dict:
    """A notification decided but not sent yet (status ``due``): written in the same transaction as the
    decision (an alert's transition), so that it cannot be lost between deciding and sending."""
    stamp = now.astimezone(UTC).replace(tzinfo=None)
    return dict(team_id=team_id, key=key, kind=kind, status="due", claimed_at=stamp,
                claimed_by="outbox", channel=channel, late=False, notes=f"{stamp:%Y-%m-%d %H:%M:%S} decided\n")


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
    def __init__(self, engine: Engine, *, worker: str | None = None, clock: Callable[[], datetime] | None = None,
                 lease: timedelta | None = None):
        self.engine = engine
        self.worker = worker or worker_id()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lease = lease or LEASE

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(tzinfo=None)

    def _line(self, text: str) -> str:
        return f"{self._now():%Y-%m-%d %H:%M:%S} {self.worker}: {text}\n"

    def _append(self, text: str):
        """``notes`` with one more line (an SQL expression: concurrent notes never overwrite each other)."""
        return func.coalesce(deliveries.c.notes, literal("")) + literal(self._line(text))

    def claim(self, key: str, *, team_id: str, kind: str, due_at: datetime | None = None, late: bool = False,
              channel: str | None = None) -> Claim | None:
        """The right to send ``key``, or None when someone already has it (or had it). A key released
        after an earlier attempt is taken again, marked ``retry``."""
        now = self._now()
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(deliveries).values(
                    team_id=team_id, key=key, kind=kind, status="claimed", claimed_at=now,
                    claimed_by=self.worker, late=late, channel=channel, lease_until=now + self.lease,
                    due_at=due_at.astimezone(UTC).replace(tzinfo=None) if due_at else None,
                    notes=self._line("claimed" + (" (late)" if late else "")),
                )).inserted_primary_key[0]
        except IntegrityError:
            return self._take_released(key, late=late)
        return Claim(new_id, key, team_id, late, since=now)

    def _take_released(self, key: str, *, late: bool) -> Claim | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.key == key)).first()
            if row is None or row.status != "released":
                return None
            won = conn.execute(update(deliveries).where(and_(deliveries.c.id == row.id, deliveries.c.status == "released"))
                               .values(status="claimed", claimed_by=self.worker, lease_until=self._now() + self.lease,
                                       late=row.late or late, notes=self._append("claimed again"))).rowcount
        if not won:
            return None
        return Claim(row.id, key, row.team_id, bool(row.late or late), retry=ATTEMPT in (row.notes or ""),
                     since=row.claimed_at)

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
                               .values(status="claimed", claimed_by=self.worker, lease_until=self._now() + self.lease,
                                       notes=self._append("taken from the outbox"))).rowcount
        if not won:
            return None
        return Claim(row.id, key, row.team_id, queued=True, retry=ATTEMPT in (row.notes or ""), since=row.claimed_at)

    # -- while working ---------------------------------------------------------------------------------
    def renew(self, claim: Claim) -> bool:
        """Extend the lease of a claim this worker still holds; False when it lost it (taken over)."""
        with self.engine.begin() as conn:
            return bool(conn.execute(update(deliveries).where(and_(
                deliveries.c.id == claim.id, deliveries.c.status == "claimed", deliveries.c.claimed_by == self.worker))
                .values(lease_until=self._now() + self.lease)).rowcount)

    @contextmanager
    def hold(self, claim: Claim, *, every: float | None = None) -> Iterator[None]:
        """Keep ``claim``'s lease alive while the block runs (a heartbeat thread renewing it every
        ``every`` seconds, default a quarter of the lease)."""
        stop = threading.Event()
        period = every if every is not None else max(self.lease.total_seconds() / 4, 0.05)

        def beat() -> None:
            while not stop.wait(period):
                try:
                    if not self.renew(claim):
                        log.warning("delivery %s: the lease was lost while working", claim.key)
                        return
                except Exception:  # noqa: BLE001 - the database blinked: the next beat tries again
                    log.warning("delivery %s: lease not renewed (database unavailable)", claim.key)

        thread = threading.Thread(target=beat, name=f"lease-{claim.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def note(self, claim: Claim, text: str) -> None:
        """One more line in the delivery's story (best effort: a note never fails a delivery)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(deliveries).where(deliveries.c.id == claim.id).values(notes=self._append(text)))
        except Exception:  # noqa: BLE001
            log.warning("delivery %s: note not written: %s", claim.key, text)

    # -- outcomes --------------------------------------------------------------------------------------
    def sent(self, claim: Claim, *, ts: str | None, channel: str | None = None, note: str = "sent") -> None:
        self._finish(claim, status="sent", slack_ts=ts, channel=channel, note=f"{note} (ts {ts})")

    def failed(self, claim: Claim, error: str) -> None:
        """An outcome a retry would not change: recorded, never sent again without --force."""
        self._finish(claim, status="failed", error=error[:2000], note=f"failed: {error[:500]}")

    def release(self, claim: Claim, error: str) -> None:
        """A transient failure: the claim is given back so the next tick can try again (to the outbox for
        a queued notification). The row and its story stay; the next claim of the key knows whether a
        message may already have reached Slack."""
        log.warning("delivery %s released for a retry: %s", claim.key, error)
        with self.engine.begin() as conn:
            mine = and_(deliveries.c.id == claim.id, deliveries.c.status == "claimed")
            conn.execute(update(deliveries).where(mine).values(
                status="due" if claim.queued else "released", error=error[:2000], lease_until=None,
                notes=self._append(f"released for a retry: {error[:500]}")))

    def skip(self, key: str, *, team_id: str, kind: str, reason: str, due_at: datetime | None = None) -> bool:
        """Record that ``key`` will not be sent (beyond the grace time). False if it was already handled."""
        claim = self.claim(key, team_id=team_id, kind=kind, due_at=due_at)
        if claim is None:
            return False
        self._finish(claim, status="skipped", error=reason, note=f"skipped: {reason}")
        log.warning("delivery %s skipped: %s", key, reason)
        return True

    def _finish(self, claim: Claim, *, note: str, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == claim.id).values(
                finished_at=self._now(), lease_until=None, notes=self._append(note), **values))

    def status(self, key: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.key == key)).first()
        return dict(row._mapping) if row else None

    def recover(self) -> list[Interrupted]:
        """Claims whose lease expired (their worker died or hung): released (a digest) or put back in the
        outbox (an alert) by exactly one caller, each with a note, and returned. The next claim of the key
        is a ``retry``: it looks in the channel before posting."""
        now = self._now()
        expired = or_(deliveries.c.lease_until < now,
                      and_(deliveries.c.lease_until.is_(None), deliveries.c.claimed_at < now - self.lease))
        with self.engine.connect() as conn:
            stale = conn.execute(select(deliveries).where(and_(deliveries.c.status == "claimed", expired))).all()
        found = []
        for row in stale:
            until = row.lease_until or row.claimed_at + self.lease
            note = f"interrupted: the lease of {row.claimed_by} expired at {until:%Y-%m-%d %H:%M:%S} UTC"
            values = {"status": "due" if row.kind == "alert" else "released", "error": note, "lease_until": None}
            with self.engine.begin() as conn:
                won = conn.execute(update(deliveries).where(and_(deliveries.c.id == row.id,
                                                                 deliveries.c.status == "claimed", expired))
                                   .values(notes=self._append(note), **values)).rowcount
            if won:
                log.error("delivery %s: the lease of %s expired at %s (worker died or hung): taken back",
                          row.key, row.claimed_by, until)
                found.append(Interrupted(row.key, row.team_id, row.kind, row.claimed_by, row.claimed_at,
                                         row.due_at.replace(tzinfo=UTC) if row.due_at else None, row.channel))
        return found
