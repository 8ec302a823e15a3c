"""Alerts (DESIGN.md section 8): rules parsed from text, a pure state machine, and a backtest.

rules       a rule's text (English, French, German) or form -> ``RuleSpec``
machine     the state machine ok -> pending -> firing -> ok (+ no_data, error): a pure function
backtest    what a rule would have done over past days
store       rules and states per team in the state database, guarded transitions, the outbox
evaluation  observations from the engine -> transitions, batched per distinct question

May import: ``kpi.metrics``, ``kpi.state``, ``kpi.errors``, ``kpi.i18n``, ``kpi.refs``. No Slack here and no
clock: time is always a parameter."""

from .backtest import Backtest, backtest
from .machine import (
    STATES,
    AlertState,
    Notification,
    Observation,
    Transition,
    acknowledge,
    breaching,
    evaluate,
    in_quiet_hours,
    mute,
    snooze,
)
from .rules import CONDITIONS, RuleError, RuleSpec, UnknownRuleMetric, parse_rule

__all__ = [
    "CONDITIONS", "STATES", "AlertState", "Backtest", "Notification", "Observation", "RuleError", "RuleSpec",
    "Transition", "UnknownRuleMetric", "acknowledge", "backtest", "breaching", "evaluate", "in_quiet_hours",
    "mute", "parse_rule", "snooze",
]
