"""Modal submissions claimed by their view id, so that creating from a form is idempotent.

Slack may deliver a ``view_submission`` twice (a retry, a second click on Submit while the first is
being worked on). The lazy part of the listener claims ``(team, view id)`` first: one claimant inserts
the row (the primary key decides), creates the goal or rule, and records its id (``done``). A claim
whose creation was refused (not allowed, a check failed) is released, so the corrected form, which
keeps its view id, can be submitted again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kpi.state.tables import form_submissions


class Submissions:
    def __init__(self, engine: Engine, team_id: str):
        self.engine = engine
        self.team_id = team_id

    def _where(self, view_id: str):
        return and_(form_submissions.c.team_id == self.team_id, form_submissions.c.view_id == view_id)

    def claim(self, view_id: str, kind: str) -> bool:
        """True for the one caller that may create the object of this view; False if another has or did."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(form_submissions).values(
                    team_id=self.team_id, view_id=view_id, kind=kind, status="pending",
                    created_at=datetime.now(UTC).replace(tzinfo=None)))
            return True
        except IntegrityError:
            return False

    def done(self, view_id: str, object_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(form_submissions).where(self._where(view_id)).values(status="done", object_id=object_id))

    def release(self, view_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(form_submissions).where(self._where(view_id)))

    def object_id(self, view_id: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(form_submissions.c.object_id).where(self._where(view_id))).scalar()


__all__ = ["Submissions"]
