"""The alert state machine: table-driven transitions with the time passed in, and properties over
random histories (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi.alerts import (
    AlertState,
    Notification,
    Observation,
    RuleSpec,
    acknowledge,
    backtest,
    breaching,
    evaluate,
    in_quiet_hours,
    mute,
    snooze,
)

T0 = datetime(2025, 10, 20, 9, 0, tzinfo=UTC)
RETURNS = RuleSpec(metric="return_rate", condition="above", threshold=0.08)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def observation(what: tuple, now: datetime) -> Observation:
    kind = what[0]
    if kind == "error":
        return Observation(None, None, now, error="boom")
    if kind == "stale":
        return Observation(0.5, 100, now, stale=True)
    if kind == "cmp":
        return Observation(what[1], 1000, now, comparison=what[2])
    return Observation(what[1], what[2], now)  # ("sample" | "obs", value, sample)


def run(rule: RuleSpec, steps, state: AlertState | None = None):
    """Steps: (minutes after T0, what). ``what`` is a value, ("sample", value, sample), ("error",),
    ("stale",), ("cmp", value, comparison), or an action ("ack", user) / ("snooze", minutes) /
    ("mute", minutes or None). Returns [(state, reason, [steps notified])] for the evaluations."""
    state = state or AlertState()
    out = []
    for minutes, what in steps:
        now = at(minutes)
        if isinstance(what, tuple) and what[0] in ("ack", "snooze", "mute"):
            if what[0] == "ack":
                again = acknowledge(state, what[1], now)
                assert acknowledge(again, what[1], now) == again  # a double click acts once
                state = again
            elif what[0] == "snooze":
                state = snooze(state, at(what[1]))
            else:
                state = mute(state, None if what[1] is None else at(what[1]))
            continue
        if isinstance(what, tuple):
            obs = observation(what, now)
        else:
            obs = Observation(what, 10_000, now)
        t = evaluate(rule, state, obs, now)
        assert evaluate(rule, state, obs, now) == t
        out.append((t.state.state, t.reason, [n.step for n in t.notify]))
        state = t.state
    return out, state


CASES = [
    ("fire then resolve", RETURNS,
     [(0, 0.05), (15, 0.09), (30, 0.09), (45, 0.05), (60, 0.05)],
     [("ok", "ok", []), ("firing", "fired", ["fire"]), ("firing", "still_firing", []),
      ("ok", "resolved", ["resolve"]), ("ok", "ok", [])]),
    ("at the threshold is not above it", RETURNS, [(0, 0.08)], [("ok", "ok", [])]),
    ("consecutive=3", replace(RETURNS, consecutive=3),
     [(0, 0.09), (15, 0.09), (30, 0.05), (45, 0.09), (60, 0.09), (75, 0.09), (90, 0.09)],
     [("pending", "breach_pending", []), ("pending", "breach_pending", []), ("ok", "pending_cleared", []),
      ("pending", "breach_pending", []), ("pending", "breach_pending", []), ("firing", "fired", ["fire"]),
      ("firing", "still_firing", [])]),
    ("hysteresis", replace(RETURNS, clear_threshold=0.07),
     [(0, 0.09), (15, 0.075), (30, 0.07), (45, 0.069), (60, 0.075)],
     [("firing", "fired", ["fire"]), ("firing", "still_firing", []), ("firing", "still_firing", []),
      ("ok", "resolved", ["resolve"]), ("ok", "ok", [])]),
    ("below, hysteresis", RuleSpec(metric="conversion_rate", condition="below", threshold=0.015, clear_threshold=0.02),
     [(0, 0.014), (15, 0.019), (30, 0.021)],
     [("firing", "fired", ["fire"]), ("firing", "still_firing", []), ("ok", "resolved", ["resolve"])]),
    ("repeats every 24 h", RETURNS,
     [(0, 0.09), (12 * 60, 0.09), (24 * 60, 0.09), (24 * 60 + 15, 0.09), (47 * 60, 0.09), (48 * 60, 0.09)],
     [("firing", "fired", ["fire"]), ("firing", "still_firing", []), ("firing", "repeat_due", ["repeat1"]),
      ("firing", "still_firing", []), ("firing", "still_firing", []), ("firing", "repeat_due", ["repeat2"])]),
    ("ack stops repeats, not the resolve; the next episode repeats again", RETURNS,
     [(0, 0.09), (5, ("ack", "U1")), (6, ("ack", "U2")), (24 * 60, 0.09), (25 * 60, 0.05), (26 * 60, 0.09),
      (50 * 60, 0.09)],
     [("firing", "fired", ["fire"]), ("firing", "acknowledged", []), ("ok", "resolved", ["resolve"]),
      ("firing", "fired", ["fire"]), ("firing", "repeat_due", ["repeat1"])]),
    ("snooze 1 h, then the reminder; a longer snooze", RETURNS,
     [(0, 0.09), (5, ("snooze", 65)), (30, 0.09), (65, 0.09), (80, 0.09), (90, ("snooze", 72 * 60)),
      (65 + 24 * 60, 0.09), (72 * 60, 0.09)],
     [("firing", "fired", ["fire"]), ("firing", "still_firing", []), ("firing", "repeat_due", ["repeat1"]),
      ("firing", "still_firing", []), ("firing", "snoozed", []), ("firing", "repeat_due", ["repeat2"])]),
    ("mute: nothing sent, state tracked, late fire after the mute", RETURNS,
     [(0, ("mute", 60)), (15, 0.09), (30, 0.09), (60, 0.09), (75, 0.09)],
     [("firing", "muted", []), ("firing", "still_firing", []), ("firing", "unmuted_firing", ["fire"]),
      ("firing", "still_firing", [])]),
    ("an episode fired and resolved under a mute says nothing", RETURNS,
     [(0, ("mute", 60)), (15, 0.09), (30, 0.05), (60, 0.09), (75, 0.05)],
     [("firing", "muted", []), ("ok", "muted", []), ("firing", "fired", ["fire"]), ("ok", "resolved", ["resolve"])]),
    ("unannounced episode resolving after the mute stays silent", RETURNS,
     [(0, ("mute", 20)), (15, 0.09), (20, ("mute", None)), (30, ("stale",)), (45, 0.05)],
     [("firing", "muted", []), ("no_data", "stale", ["no_data"]), ("ok", "resolved_unannounced", [])]),
    ("error reported once per entry", RETURNS,
     [(0, ("error",)), (15, ("error",)), (30, ("error",)), (45, 0.05), (60, ("error",))],
     [("error", "query_failed", ["error"]), ("error", "error_again", []), ("error", "error_again", []),
      ("ok", "recovered_from_error", []), ("error", "query_failed", ["error2"])]),
    ("no data from ok is silent; small samples never fire", replace(RETURNS, min_sample=100),
     [(0, ("sample", 0.9, 12)), (15, ("sample", 0.9, 99)), (30, ("sample", 0.9, None)), (45, ("sample", 0.05, 100))],
     [("no_data", "below_min_sample", []), ("no_data", "still_no_data", []), ("no_data", "still_no_data", []),
      ("ok", "recovered_from_no_data", [])]),
    ("no data while firing: said once, the episode continues", replace(RETURNS, min_sample=100),
     [(0, 0.09), (15, ("stale",)), (30, ("sample", 0.09, 5)), (45, 0.09), (60, ("stale",)), (75, 0.05)],
     [("firing", "fired", ["fire"]), ("no_data", "stale", ["no_data"]), ("no_data", "still_no_data", []),
      ("firing", "recovered_from_no_data", []), ("no_data", "stale", ["no_data2"]), ("ok", "resolved", ["resolve"])]),
    ("error while firing: the episode continues", RETURNS,
     [(0, 0.09), (15, ("error",)), (30, 0.09), (45, 0.05)],
     [("firing", "fired", ["fire"]), ("error", "query_failed", ["error"]), ("firing", "recovered_from_error", []),
      ("ok", "resolved", ["resolve"])]),
    ("change below -20% vs the previous window", RuleSpec(metric="revenue", condition="change_below", threshold=-0.2),
     [(0, ("cmp", 70, None)), (15, ("cmp", 70, 0)), (30, ("cmp", 81, 100)), (45, ("cmp", 79, 100)), (60, ("cmp", 80, 100)), (75, ("cmp", 81, 100))],
     [("no_data", "no_comparison", []), ("no_data", "still_no_data", []), ("ok", "recovered_from_no_data", []),
      ("firing", "fired", ["fire"]), ("firing", "still_firing", []),  # exactly at the clear threshold: still on
      ("ok", "resolved", ["resolve"])]),
    ("no repeats with repeat 0", replace(RETURNS, repeat_minutes=0),
     [(0, 0.09), (48 * 60, 0.09)], [("firing", "fired", ["fire"]), ("firing", "still_firing", [])]),
]


@pytest.mark.parametrize("name,rule,steps,expected", CASES, ids=[c[0] for c in CASES])
def test_transitions(name, rule, steps, expected):
    got, _ = run(rule, steps)
    assert got == expected


# -- quiet hours, across midnight and the end of summer time in Paris ---------------------------------

PARIS_QUIET = replace(RETURNS, quiet_start="22:00", quiet_end="08:00", timezone="Europe/Paris", repeat_minutes=60)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 10, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize("when,quiet", [
    (utc(25, 19, 59), False),  # 21:59 CEST
    (utc(25, 20, 0), True),  # 22:00 CEST
    (utc(26, 6, 59), True),  # 07:59 CET, after the clocks went back
    (utc(26, 7, 0), False),  # 08:00 CET
    (utc(26, 12, 0), False),
])
def test_quiet_hours_wrap_midnight_in_local_time(when, quiet):
    assert in_quiet_hours(PARIS_QUIET, when) is quiet


def test_quiet_hours_hold_then_release_in_order():
    state = AlertState()
    seen = []
    for now, value in [(utc(25, 21, 30), 0.09), (utc(26, 0, 30), 0.09), (utc(26, 1, 30), 0.05),
                       (utc(26, 6, 45), 0.05), (utc(26, 7, 0), 0.05), (utc(26, 7, 15), 0.05)]:
        t = evaluate(PARIS_QUIET, state, Observation(value, 1000, now), now)
        seen.append((t.state.state, t.reason, [n.step for n in t.notify]))
        state = t.state
    assert seen == [("firing", "quiet_hours_held", []), ("firing", "quiet_hours_deferred", []),
                    ("ok", "quiet_hours_held", []), ("ok", "ok", []),
                    ("ok", "held_released", ["fire", "resolve"]), ("ok", "ok", [])]
    assert state.held == ()


def test_repeats_are_deferred_not_held_during_quiet_hours():
    state = AlertState()
    seen = []
    for now in [utc(25, 19, 30), utc(25, 20, 30), utc(25, 23, 30), utc(26, 7, 0), utc(26, 7, 30), utc(26, 8, 0)]:
        t = evaluate(PARIS_QUIET, state, Observation(0.09, 1000, now), now)
        seen.append((t.reason, [n.step for n in t.notify]))
        state = t.state
    assert seen == [("fired", ["fire"]), ("quiet_hours_deferred", []), ("quiet_hours_deferred", []),
                    ("repeat_due", ["repeat1"]), ("still_firing", []), ("repeat_due", ["repeat2"])]


def test_acknowledge_snooze_mute_are_idempotent_and_scoped():
    fired = evaluate(RETURNS, AlertState(), Observation(0.09, 10, T0), T0).state
    assert acknowledge(AlertState(), "U1", T0) == AlertState()  # nothing open: nothing to acknowledge
    assert acknowledge(fired, "U1", T0, episode=fired.episode + 1) == fired  # an old button
    once = acknowledge(fired, "U1", T0)
    assert once.acknowledged_by == "U1" and acknowledge(once, "U2", T0) == once
    assert snooze(snooze(fired, at(60)), at(60)) == snooze(fired, at(60))
    assert mute(mute(fired, at(60)), None).muted_until is None


def test_breaching_uses_the_clear_threshold_only_when_firing():
    rule = replace(RETURNS, clear_threshold=0.07)
    obs = Observation(0.075, 100, T0)
    assert breaching(rule, obs, "ok") is False and breaching(rule, obs, "firing") is True
    assert breaching(rule, Observation(None, None, T0), "ok") is None


def test_backtest_counts_episodes():
    rule = replace(RETURNS, min_sample=50, consecutive=2)
    values = [0.05] * 10 + [0.09] * 5 + [0.05] * 10 + [0.10] * 1 + [0.05] * 4 + [0.12] * 3 + [None] * 2 + [0.05] * 5
    days = [T0 + timedelta(days=i) for i in range(len(values))]
    obs = [Observation(v, 100, d) for v, d in zip(values, days, strict=True)]
    obs[38] = replace(obs[38], sample=10)
    result = backtest(rule, list(reversed(obs)))  # order does not matter: sorted by time
    assert result.fires == [days[11], days[31]]
    assert result.resolves == [days[15], days[35]]
    assert result.evaluations == len(values) and result.no_data == 3


# -- properties ---------------------------------------------------------------------------------------

rules = st.builds(
    lambda cond, thr, gap, consecutive, min_sample, repeat, quiet, tz: RuleSpec(
        metric="return_rate", condition=cond, threshold=thr,
        clear_threshold=(thr - gap if cond == "above" else thr + gap) if gap is not None else None,
        consecutive=consecutive, min_sample=min_sample, repeat_minutes=repeat,
        quiet_start=quiet[0] if quiet else None, quiet_end=quiet[1] if quiet else None, timezone=tz),
    st.sampled_from(["above", "below"]), st.sampled_from([0.3, 0.5, 0.7]),
    st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.1])), st.integers(1, 3), st.sampled_from([0, 50]),
    st.sampled_from([0, 60, 1440]), st.one_of(st.none(), st.sampled_from([("22:00", "08:00"), ("09:00", "17:00")])),
    st.sampled_from(["UTC", "Europe/Paris"]),
)
events = st.lists(st.tuples(
    st.integers(1, 600),  # minutes since the previous event
    st.one_of(
        st.tuples(st.just("obs"), st.one_of(st.none(), st.floats(0, 1)), st.sampled_from([None, 10, 100])),
        st.tuples(st.just("error")), st.tuples(st.just("stale")),
        st.tuples(st.just("ack")), st.tuples(st.just("snooze"), st.integers(1, 2000)),
        st.tuples(st.just("mute"), st.one_of(st.none(), st.integers(1, 2000))),
    )), max_size=60)


def history(rule: RuleSpec, evs):
    """Every evaluation as (prev, obs, now, transition)."""
    state, now, out = AlertState(), T0, []
    for gap, ev in evs:
        now += timedelta(minutes=gap)
        if ev[0] == "ack":
            state = acknowledge(state, "U1", now)
        elif ev[0] == "snooze":
            state = snooze(state, now + timedelta(minutes=ev[1]))
        elif ev[0] == "mute":
            state = mute(state, None if ev[1] is None else now + timedelta(minutes=ev[1]))
        else:
            obs = observation(ev, now)
            t = evaluate(rule, state, obs, now)
            out.append((state, obs, now, t))
            state = t.state
    return out


SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(rules, events)
def test_no_notification_without_a_state_change_but_repeats_releases_and_late_fires(rule, evs):
    """A transition that keeps the state notifies only repeats, held notifications released, and the
    late fire of an episode whose fire a mute dropped (reason unmuted_firing)."""
    for prev, _, _, t in history(rule, evs):
        if t.state.state == prev.state:
            for n in t.notify:
                assert n.kind == "repeat" or n.encode() in prev.held or t.reason == "unmuted_firing", (prev, t)


@SETTINGS
@given(rules, events)
def test_episodes_resolve_at_most_once_after_their_fire_and_steps_are_unique(rule, evs):
    sent: list[Notification] = [n for *_, t in history(rule, evs) for n in t.notify]
    keys = [(n.episode, n.step) for n in sent]
    assert len(keys) == len(set(keys))  # delivery-log keys never collide
    fired: set[int] = set()
    resolved: set[int] = set()
    for n in sent:
        if n.kind == "fire":
            fired.add(n.episode)
        if n.kind == "resolve":
            assert n.episode in fired and n.episode not in resolved
            resolved.add(n.episode)
        if n.kind == "repeat":
            assert n.episode in fired


@SETTINGS
@given(rules, st.lists(st.floats(0, 1), min_size=1, max_size=40), st.booleans())
def test_a_value_between_clear_and_threshold_never_flaps(rule, fractions, start_firing):
    rule = replace(rule, clear_threshold=rule.threshold - 0.1 if rule.condition == "above" else rule.threshold + 0.1,
                   min_sample=0)
    low, high = sorted((rule.clear, rule.threshold))
    state = AlertState()
    now = T0
    if start_firing:
        for _ in range(rule.consecutive):
            fire = 0.95 if rule.condition == "above" else 0.05
            state = evaluate(rule, state, Observation(fire, 100, now), now).state
            now += timedelta(minutes=15)
        assert state.state == "firing"
    for f in fractions:
        value = low + (high - low) * (0.001 + 0.998 * f)  # strictly between
        t = evaluate(rule, state, Observation(value, 100, now), now)
        assert t.state.state == ("firing" if start_firing else "ok")
        # a fire held through quiet hours is released when they end: that is the episode's first notice,
        # late, not a flap; nothing else may fire or resolve
        new = [n for n in t.notify if n.encode() not in state.held]
        assert not any(n.kind in ("fire", "resolve") for n in new)
        state, now = t.state, now + timedelta(minutes=15)


@SETTINGS
@given(rules, events)
def test_a_sample_below_the_minimum_never_fires(rule, evs):
    rule = replace(rule, min_sample=50)
    for prev, obs, _, t in history(rule, evs):
        if obs.sample is None or obs.sample < 50:
            assert t.state.episode == prev.episode and t.state.state != "firing"
            assert t.reason != "fired"


@SETTINGS
@given(rules, events)
def test_evaluate_is_deterministic(rule, evs):
    for prev, obs, now, t in history(rule, evs):
        assert evaluate(rule, prev, obs, now) == t


# -- rules that require significance ------------------------------------------------------------------

SIGNIFICANT = replace(RETURNS, significant=True, clear_threshold=0.07)


def test_a_breach_that_is_not_significant_does_not_count():
    steps = [Observation(0.09, 20, at(0), significant=False), Observation(0.09, 20, at(15), significant=None),
             Observation(0.09, 5000, at(30), significant=True)]
    state, seen = AlertState(), []
    for obs in steps:
        t = evaluate(SIGNIFICANT, state, obs, obs.at)
        seen.append((t.state.state, t.reason, [n.step for n in t.notify]))
        state = t.state
    assert seen == [("ok", "not_significant", []), ("ok", "not_significant", []), ("firing", "fired", ["fire"])]
    # the same observations without the requirement: the first one fires
    assert evaluate(RETURNS, AlertState(), steps[0], at(0)).reason == "fired"
    assert breaching(SIGNIFICANT, steps[0], "ok") is False and breaching(RETURNS, steps[0], "ok") is True


def test_a_significant_rule_resolves_and_stays_firing_without_a_test():
    state = evaluate(SIGNIFICANT, AlertState(), Observation(0.09, 5000, at(0), significant=True), at(0)).state
    assert state.state == "firing"
    # still above the clear threshold, no longer significant: the episode goes on (hysteresis decides)
    t = evaluate(SIGNIFICANT, state, Observation(0.075, 5000, at(15), significant=False), at(15))
    assert (t.state.state, t.reason) == ("firing", "still_firing")
    # below the clear threshold, untested: resolved as any rule
    t = evaluate(SIGNIFICANT, t.state, Observation(0.05, 5000, at(30)), at(30))
    assert (t.state.state, t.reason, [n.step for n in t.notify]) == ("ok", "resolved", ["resolve"])


def test_consecutive_breaches_must_each_be_significant():
    rule = replace(SIGNIFICANT, consecutive=2)
    state, reasons = AlertState(), []
    for minutes, sig in [(0, True), (15, False), (30, True), (45, True)]:
        t = evaluate(rule, state, Observation(0.09, 5000, at(minutes), significant=sig), at(minutes))
        reasons.append(t.reason)
        state = t.state
    assert reasons == ["breach_pending", "not_significant", "breach_pending", "fired"]


# -- the observation: which test a rule is held to (kpi.alerts.evaluation) ----------------------------

def _asker(result):
    from types import SimpleNamespace

    class FixedAsker:
        engine = SimpleNamespace(tz=UTC)

        def ask(self, request):
            assert request.metric == result.metric.key
            return result

    return FixedAsker()


def _conversion(orders: float, sessions: float, before: tuple[float, float] = (100, 5000)):
    from kpi.metrics.engine import Value
    from tests.test_blocks import make_result

    return make_result("conversion_rate", current=Value(orders / sessions, orders, sessions, sessions),
                       previous=Value(before[0] / before[1], before[0], before[1], before[1]))


def test_a_conversion_breach_on_a_tiny_sample_fires_only_without_significance():
    from kpi.alerts.evaluation import breach_significance, observe

    plain = RuleSpec(metric="conversion_rate", condition="below", threshold=0.02)
    significant = replace(plain, significant=True)
    tiny = _conversion(1, 200)  # 0.5% on 200 sessions: below 2%, but p ≈ 0.09
    obs, _ = observe(_asker(tiny), significant, T0)
    assert obs.value == pytest.approx(0.005) and obs.significant is False
    assert evaluate(significant, AlertState(), obs, T0).state.state == "ok"
    obs_plain, _ = observe(_asker(tiny), plain, T0)
    assert obs_plain.significant is None  # not tested when the rule does not ask
    assert evaluate(plain, AlertState(), obs_plain, T0).reason == "fired"
    test = breach_significance(significant, tiny)
    assert test is not None and test.method == "binomial" and test.p_value > 0.05

    large = _conversion(100, 20_000)  # 0.5% on 20,000 sessions
    obs, _ = observe(_asker(large), significant, T0)
    assert obs.significant is True
    assert evaluate(significant, AlertState(), obs, T0).reason == "fired"
    assert breach_significance(significant, large).p_value < 0.001


def test_the_direction_of_the_threshold_test_follows_the_condition():
    from kpi.alerts.evaluation import breach_significance

    above = RuleSpec(metric="conversion_rate", condition="above", threshold=0.02, significant=True)
    assert breach_significance(above, _conversion(600, 20_000)).significant is True  # 3% on 20,000
    assert breach_significance(above, _conversion(100, 20_000)).significant is False  # 0.5%: not above


def test_a_change_rule_follows_the_engine_s_test_and_never_crashes_without_one():
    from kpi.alerts.evaluation import breach_significance, observe
    from kpi.metrics.engine import Change, Value
    from kpi.metrics.significance import Significance
    from tests.test_blocks import make_result

    rule = RuleSpec(metric="revenue", condition="change_below", threshold=-0.2, significant=True)
    base = make_result("revenue", current=Value(700.0), previous=Value(1000.0))  # -30%

    def with_test(sig):
        return replace(base, change=Change(-300.0, -0.3, False, significance=sig))

    noise = with_test(Significance("history_band", False, low=600.0, high=1400.0, history=8))
    real = with_test(Significance("history_band", True, low=900.0, high=1100.0, history=8))
    for result, expected in [(noise, False), (with_test(None), False), (replace(base, change=None), False),
                             (real, True)]:
        obs, _ = observe(_asker(result), rule, T0)
        assert obs.significant is expected
        assert (evaluate(rule, AlertState(), obs, T0).reason == "fired") is expected
    assert breach_significance(rule, noise).low == 600.0
    # without the requirement, the same noisy change fires
    obs, _ = observe(_asker(noise), replace(rule, significant=False), T0)
    assert evaluate(replace(rule, significant=False), AlertState(), obs, T0).reason == "fired"
