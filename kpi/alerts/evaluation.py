"""Evaluating alert rules: observations from the engine, the pure state machine, guarded persistence.

Rules that ask the same question (KPI, filters, window, comparison) share one engine query per pass, so
evaluating many rules costs about the distinct questions, not the rules (bench/alerts.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from kpi.errors import KpiError, new_ref, redact
from kpi.metrics.engine import KpiEngine, KpiRequest, KpiResult
from kpi.metrics.periods import parse_period
from kpi.metrics.significance import Significance, beyond_threshold, is_proportion
from kpi.state.delivery import outbox_row

from .machine import Notification, Observation, Transition, evaluate
from .rules import RuleSpec
from .store import StateStore, StoredRule, StoredState

log = logging.getLogger("kpibot.alerts")


def rule_request(engine: KpiEngine, spec: RuleSpec, now: datetime, *, series: bool = False) -> KpiRequest:
    """The question a rule asks: its KPI over its window (the last N complete days, or today so far)."""
    text = "today" if spec.window_days == 0 else f"last {spec.window_days} days"
    period = parse_period(text, now=now.astimezone(engine.tz), tz=engine.tz)
    compare = "previous" if spec.condition.startswith("change") else None
    return KpiRequest(spec.metric, period, compare=compare, filters=spec.filters, series=series)


class Asker:
    """``engine.ask`` with a per-pass memory: rules asking the same question share the answer."""

    def __init__(self, engine: KpiEngine):
        self.engine = engine
        self._results: dict[KpiRequest, KpiResult | Exception] = {}
        self.queries = 0

    def ask(self, request: KpiRequest) -> KpiResult:
        if request not in self._results:
            self.queries += 1
            try:
                self._results[request] = self.engine.ask(request)
            except Exception as exc:  # noqa: BLE001 - every rule asking this gets the same error state
                self._results[request] = exc
        hit = self._results[request]
        if isinstance(hit, Exception):
            raise hit
        return hit


def error_reason(spec: RuleSpec, exc: Exception) -> str:
    """Why a rule could not be evaluated, as its ``error`` state keeps and the channel is told it: a domain
    error says it (a KPI unavailable: which table or column the data lacks; values that are not numbers:
    which column and how many); anything else is named by its kind, without URLs, hosts or paths (the log has
    the whole message, with a reference)."""
    if isinstance(exc, KpiError):
        log.warning("alert query for %s refused: %s", spec.metric, exc)
        return redact(str(exc))[0][:ERROR_CHARS]
    ref = new_ref()
    log.warning("alert query for %s failed [ref %s]: %s: %s", spec.metric, ref, type(exc).__name__, exc)
    return f"{type(exc).__name__}: {redact(str(exc))[0][:200]} [ref {ref}]"


ERROR_CHARS = 300


def breach_significance(spec: RuleSpec, result: KpiResult | None) -> Significance | None:
    """The test a rule that requires significance is held to (None: it cannot be run, so not significant).

    ``above``/``below`` on a rate of counts: is the rate beyond the threshold, by a one-sided exact binomial
    test on its numerator and denominator? ``change_*``: the engine's test of the change (two proportions
    for a rate, the band of recent history for the rest)."""
    if result is None:
        return None
    if spec.condition.startswith("change_"):
        return getattr(result.change, "significance", None) if result.change is not None else None
    current, metric = result.current, result.metric
    if not is_proportion(metric.format, metric.type, current.numerator, current.denominator):
        return None
    assert current.numerator is not None and current.denominator is not None  # is_proportion says so
    return beyond_threshold(current.numerator, current.denominator, spec.threshold, above=spec.condition == "above")


def observe(asker: Asker, spec: RuleSpec, now: datetime) -> tuple[Observation, KpiResult | None]:
    try:
        result = asker.ask(rule_request(asker.engine, spec, now))
    except Exception as exc:  # noqa: BLE001 - a failed query is the rule's `error` state, reported once
        return Observation(value=None, sample=None, at=now, error=error_reason(spec, exc)), None
    significant = None
    if spec.significant:
        test = breach_significance(spec, result)
        significant = test is not None and test.significant
    return Observation(value=result.current.value, sample=result.current.sample, at=now,
                       comparison=result.comparison.value if result.comparison else None,
                       stale=result.stale, significant=significant, waiting=result.period.empty), result


@dataclass(frozen=True)
class Evaluated:
    rule: StoredRule
    before: StoredState
    transition: Transition
    result: KpiResult | None
    saved: bool  # False: another worker made this transition first (and sends its notifications)

    @property
    def notify(self) -> tuple[Notification, ...]:
        return self.transition.notify if self.saved else ()


def evaluate_rules(engine: KpiEngine, state: Engine, rules: list[StoredRule], now: datetime, *,
                   force: bool = False, clock: Callable[[], datetime] | None = None) -> tuple[list[Evaluated], int]:
    """Evaluate the rules due at ``now`` (all of them with ``force``). Returns what happened and how many
    distinct engine queries it took."""
    asker = Asker(engine)
    out = []
    for rule in rules:
        store = StateStore(state, rule.team_id)
        before = store.load(rule.id)
        if not force and before.next_eval_at and before.next_eval_at > now:
            continue
        obs, result = observe(asker, rule.spec, now)
        transition = evaluate(rule.spec, before.state, obs, now)
        outbox = [outbox_row(f"alert:{rule.id}:{n.episode}:{n.step}", team_id=rule.team_id, kind="alert",
                             channel=rule.spec.channel, now=now) for n in transition.notify]
        saved = store.save(before, transition.state, now=now,
                           next_eval_at=now + timedelta(minutes=max(1, rule.spec.interval_minutes)),
                           reason=transition.reason, value=obs.value, sample=obs.sample, outbox=outbox)
        out.append(Evaluated(rule, before, transition, result, saved))
    return out, asker.queries
