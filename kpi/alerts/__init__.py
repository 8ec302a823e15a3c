"""Alerts (DESIGN.md section 8): rules parsed from text, a pure state machine, and a backtest.

No Slack here and no clock: time is always a parameter."""

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
