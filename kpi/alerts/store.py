"""Alert rules and their states, per team, in the state database.

Every query filters by ``team_id``. A rule's state changes only through ``StateStore.save``, an UPDATE
guarded by the version read: of two workers evaluating the same rule at once, one makes the transition
and the other is told so (and sends nothing). Every transition is appended to ``alert_events``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine

from kpi.errors import KpiError
from kpi.state.store import NotFound, checked_id
from kpi.state.tables import alert_events, alert_rules, alert_states, deliveries

from .machine import AlertState
from .rules import RuleSpec


def _encode(obj) -> str:
    def enc(v):
        if isinstance(v, datetime):
            return {"$dt": v.isoformat()}
        if isinstance(v, tuple | list):
            return [enc(x) for x in v]
        return v

    return json.dumps({f.name: enc(getattr(obj, f.name)) for f in dataclasses.fields(obj)})


def _decode(cls, text: str):
    def dec(v):
        if isinstance(v, dict) and "$dt" in v:
            return datetime.fromisoformat(v["$dt"])
        if isinstance(v, list):
            return tuple(dec(x) for x in v)
        return v

    raw = json.loads(text)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: dec(v) for k, v in raw.items() if k in names})


def _naive(dt: datetime | None) -> datetime | None:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt else None


@dataclass(frozen=True)
class StoredRule:
    id: int
    team_id: str
    spec: RuleSpec
    created_by: str | None = None
    created_at: datetime | None = None
    paused_at: datetime | None = None  # the team uninstalled the app or lost its token (kpi.state.lifecycle)
    paused_reason: str | None = None


@dataclass(frozen=True)
class StoredState:
    rule_id: int
    state: AlertState
    version: int
    next_eval_at: datetime | None
    message_channel: str | None
    message_ts: str | None


class AlertRules:
    def __init__(self, engine: Engine, team_id: str):
        if not team_id:
            raise KpiError("a workspace (team id) is required")
        self.engine = engine
        self.team_id = team_id

    def add(self, spec: RuleSpec, *, created_by: str | None = None, now: datetime | None = None) -> StoredRule:
        stamp = _naive(now or datetime.now(UTC))
        with self.engine.begin() as conn:
            rule_id = conn.execute(insert(alert_rules).values(
                team_id=self.team_id, metric=spec.metric, spec=_encode(spec), text=spec.text or "",
                created_by=created_by, created_at=stamp)).inserted_primary_key[0]
            conn.execute(insert(alert_states).values(rule_id=rule_id, team_id=self.team_id, state=_encode(AlertState()),
                                                     version=0, next_eval_at=stamp))
        return self.get(rule_id)

    def list(self) -> list[StoredRule]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_rules).where(alert_rules.c.team_id == self.team_id).order_by(alert_rules.c.id))
            return [_rule(r) for r in rows]

    def get(self, rule_id: int) -> StoredRule:
        with self.engine.connect() as conn:
            row = conn.execute(select(alert_rules).where(and_(alert_rules.c.team_id == self.team_id,
                                                              alert_rules.c.id == checked_id(rule_id, "alert rule")))).first()
        if row is None:
            raise NotFound("alert rule", rule_id)
        return _rule(row)

    def remove(self, rule_id: int) -> StoredRule:
        rule = self.get(rule_id)
        with self.engine.begin() as conn:
            conn.execute(alert_states.delete().where(and_(alert_states.c.team_id == self.team_id,
                                                          alert_states.c.rule_id == rule.id)))
            conn.execute(alert_rules.delete().where(and_(alert_rules.c.team_id == self.team_id,
                                                         alert_rules.c.id == rule.id)))
        return rule


def _rule(row) -> StoredRule:
    return StoredRule(row.id, row.team_id, _decode(RuleSpec, row.spec), row.created_by, row.created_at,
                      row.paused_at, row.paused_reason)


def all_rules(engine: Engine, *, include_paused: bool = False) -> list[StoredRule]:
    """Every team's rules: for the worker only. Paused ones are left out unless asked for."""
    q = select(alert_rules)
    if not include_paused:
        q = q.where(alert_rules.c.paused_at.is_(None))
    with engine.connect() as conn:
        return [_rule(r) for r in conn.execute(q.order_by(alert_rules.c.id))]


class StateStore:
    def __init__(self, engine: Engine, team_id: str):
        self.engine = engine
        self.team_id = team_id

    def load(self, rule_id: int) -> StoredState:
        with self.engine.connect() as conn:
            row = conn.execute(select(alert_states).where(and_(alert_states.c.team_id == self.team_id,
                                                               alert_states.c.rule_id == checked_id(rule_id, "alert rule")))).first()
        if row is None:
            raise NotFound("alert rule", rule_id)
        return StoredState(row.rule_id, _decode(AlertState, row.state), row.version,
                           row.next_eval_at.replace(tzinfo=UTC) if row.next_eval_at else None,
                           row.message_channel, row.message_ts)

    def save(self, previous: StoredState, state: AlertState, *, now: datetime, next_eval_at: datetime | None = None,
             reason: str = "", value: float | None = None, sample: float | None = None,
             outbox: list[dict] | None = None) -> bool:
        """Store a transition made from ``previous``, with the notifications it decided (``outbox``: delivery
        rows, written in the same transaction); False when another worker changed the state first."""
        values = {"state": _encode(state), "version": previous.version + 1, "evaluated_at": _naive(now)}
        if next_eval_at is not None:
            values["next_eval_at"] = _naive(next_eval_at)
        with self.engine.begin() as conn:
            done = conn.execute(update(alert_states).where(and_(
                alert_states.c.team_id == self.team_id, alert_states.c.rule_id == previous.rule_id,
                alert_states.c.version == previous.version)).values(**values)).rowcount
            if done and outbox:
                conn.execute(insert(deliveries), outbox)
            if done and (state.state != previous.state.state or reason):
                conn.execute(insert(alert_events).values(
                    team_id=self.team_id, rule_id=previous.rule_id, at=_naive(now), from_state=previous.state.state,
                    to_state=state.state, reason=reason[:64] or "evaluated", value=value, sample=sample))
        return bool(done)

    def episode_started(self, rule_id: int, episode_end: datetime | None = None) -> datetime | None:
        """When the rule last started firing (from the transition log): an episode's start, for its duration."""
        q = select(alert_events.c.at).where(and_(alert_events.c.team_id == self.team_id,
                                                 alert_events.c.rule_id == int(rule_id),
                                                 alert_events.c.to_state == "firing",
                                                 alert_events.c.from_state != "firing"))
        if episode_end is not None:
            q = q.where(alert_events.c.at <= _naive(episode_end))
        with self.engine.connect() as conn:
            at = conn.execute(q.order_by(alert_events.c.id.desc()).limit(1)).scalar()
        return at.replace(tzinfo=UTC) if at else None

    def set_message(self, rule_id: int, channel: str | None, ts: str | None) -> None:
        """The episode's first message: repeats and the resolution go in its thread, status updates to it."""
        with self.engine.begin() as conn:
            conn.execute(update(alert_states).where(and_(alert_states.c.team_id == self.team_id,
                                                         alert_states.c.rule_id == int(rule_id)))
                         .values(message_channel=channel, message_ts=ts))

    def events(self, rule_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_events).where(and_(alert_events.c.team_id == self.team_id,
                                                                alert_events.c.rule_id == int(rule_id)))
                                .order_by(alert_events.c.id))
            return [dict(r._mapping) for r in rows]
