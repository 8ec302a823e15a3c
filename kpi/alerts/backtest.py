"""Replay a rule over a history of observations: how often would it have fired?"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .machine import AlertState, Observation, evaluate
from .rules import RuleSpec


@dataclass(frozen=True)
class Backtest:
    fires: list[datetime]  # when each episode started
    resolves: list[datetime]  # when each episode resolved
    evaluations: int
    no_data: int  # evaluations that ended in no_data
    errors: int = 0  # evaluations that ended in error
    reasons: dict[str, int] = field(default_factory=dict)  # how often each named reason came up


def backtest(rule: RuleSpec, observations: list[Observation]) -> Backtest:
    """Run ``evaluate`` over the observations in time order (each at ``obs.at``), from a fresh state.
    Fires and resolves are state changes, so quiet hours and mutes do not change the counts."""
    state = AlertState()
    fires: list[datetime] = []
    resolves: list[datetime] = []
    no_data = errors = 0
    reasons: dict[str, int] = {}
    for obs in sorted(observations, key=lambda o: o.at):
        t = evaluate(rule, state, obs, obs.at)
        if t.state.episode > state.episode:
            fires.append(obs.at)
        if state.fired_at is not None and t.state.fired_at is None:
            resolves.append(obs.at)
        no_data += t.state.state == "no_data"
        errors += t.state.state == "error"
        reasons[t.reason] = reasons.get(t.reason, 0) + 1
        state = t.state
    return Backtest(fires=fires, resolves=resolves, evaluations=len(observations), no_data=no_data,
                    errors=errors, reasons=reasons)
