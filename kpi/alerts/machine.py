"""The alert state machine of DESIGN.md section 8, as pure functions.

``evaluate(rule, prev, obs, now)`` answers "what state now, and should we notify?" and names the reason,
like Alertmanager's notify stages: it reads no clock, no database and no Slack. The worker persists the
returned ``AlertState`` (guarded, so that two workers make one transition) and delivers ``notify`` with
the delivery-log key ``alert:<rule>:<episode>:<step>``.

States: ``ok → pending → firing → ok``, plus ``no_data`` and ``error``.

Choices, in the order ``evaluate`` applies them:

1. ``obs.error`` → ``error``. Entering it notifies ``error`` once; staying in it is silent
   (``error_again``).
2. stale source, no value, sample under ``min_sample`` (or no sample when a minimum is set), or no
   comparison for a ``change_*`` rule → ``no_data``. Entering it notifies ``no_data`` once, and only when
   a firing episode is open (people are watching); from ``ok``/``pending`` it is silent. A sample under
   the minimum therefore never fires.
3. An episode is *open* from its fire until its resolve (``fired_at`` is set), also through ``error``
   and ``no_data``: those neither resolve it nor start a new one. On recovery the breach is re-checked
   against the clear threshold: still breaching → ``firing`` again, same episode, silently
   (``recovered_from_no_data`` / ``recovered_from_error``); not breaching → ``resolve``, once. With no
   open episode, recovery starts afresh (consecutive breaches count from zero after a gap).
4. Breaches: ``pending`` until the ``consecutive``-th breach, then ``fire`` (a new episode). Hysteresis:
   an open episode stays firing until the value no longer breaches ``clear_threshold``. A rule that
   requires significance (``RuleSpec.significant``) counts a breach only when the observation says it is
   significant (``obs.significant``; untested is not enough: ``not_significant``); staying firing and
   resolving need no test, so an open episode resolves as usual.
5. Repeats: while firing, ``repeat{n}`` each ``repeat_minutes`` after the last notification (0: never),
   unless acknowledged (for this episode), or snoozed; the first evaluation at or after the end of a
   snooze sends the reminder.
6. Mute (``muted_until``): nothing is sent, not even what was held; the state is tracked as if it had
   been sent (repeat counters move on), so that unmuting sends no backlog. One exception keeps every
   Slack thread whole: an episode whose ``fire`` was dropped by the mute is announced by a late
   ``fire`` at the first unmuted evaluation if it is still firing (``unmuted_firing``), and if it
   resolves unannounced, its resolve is not sent either (``resolved_unannounced``).
7. Quiet hours ``[quiet_start, quiet_end)`` in the rule's time zone (may wrap midnight): ``fire``,
   ``resolve``, ``error`` and ``no_data`` go to ``held``; the first evaluation outside quiet hours sends
   all of them, in order (a fire and its resolve both held: both are sent, so the thread tells the
   story). Repeats are not held but deferred: a stale reminder is worthless, the due one goes out after
   quiet hours (and not at all right after released ones).

Steps are unique per episode so that delivery-log keys never collide: ``fire``, ``repeat1``,
``repeat2``..., ``resolve``; ``error``/``no_data`` the first time in an episode, then with the count
(``error2``, ``no_data3``...). Episode 0 holds the errors before any fire.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .rules import RuleSpec

STATES = ("ok", "pending", "firing", "no_data", "error")
KINDS = ("fire", "repeat", "resolve", "error", "no_data")


@dataclass(frozen=True)
class Observation:
    value: float | None
    sample: float | None
    at: datetime  # evaluation time (aware)
    comparison: float | None = None  # the previous window's value, for change_* conditions
    stale: bool = False  # the source data is older than the window allows
    error: str | None = None  # the query failed
    significant: bool | None = None  # is the breach statistically significant? None: not tested
    waiting: bool = False  # the window has not started in the data yet ("today" at 00:10): nothing to judge


@dataclass(frozen=True)
class AlertState:
    state: str = "ok"
    since: datetime | None = None
    breaches: int = 0  # consecutive breaching evaluations
    episode: int = 0  # increments when a new firing episode starts
    fired_at: datetime | None = None  # set while an episode is open (fire .. resolve)
    last_notified_at: datetime | None = None
    repeats: int = 0
    acknowledged_by: str | None = None
    snoozed_until: datetime | None = None
    muted_until: datetime | None = None
    held: tuple[str, ...] = ()  # "kind:episode:step", held during quiet hours
    last_value: float | None = None
    last_sample: float | None = None
    last_error: str | None = None
    notices: int = 0  # error/no_data notifications in this episode (for unique steps)
    announced: bool = False  # the fire of the open episode was sent or held (not dropped by a mute)


@dataclass(frozen=True)
class Notification:
    kind: str  # fire | repeat | resolve | error | no_data
    episode: int
    step: str  # fire, repeat<n>, resolve, error[<n>], no_data[<n>]

    def key(self, rule_id: str | int) -> str:
        """The delivery-log key."""
        return f"alert:{rule_id}:{self.episode}:{self.step}"

    def encode(self) -> str:
        return f"{self.kind}:{self.episode}:{self.step}"

    @classmethod
    def decode(cls, text: str) -> Notification:
        kind, episode, step = text.split(":", 2)
        return cls(kind, int(episode), step)


@dataclass(frozen=True)
class Transition:
    state: AlertState
    notify: tuple[Notification, ...]
    reason: str


# -- should it breach? ---------------------------------------------------------------------------------


def measured(rule: RuleSpec, obs: Observation) -> float | None:
    """The number compared with the threshold: the value, or for change_* the relative change vs the
    previous window (None when that is unknown or zero)."""
    if obs.value is None:
        return None
    if rule.condition.startswith("change_"):
        if obs.comparison is None or obs.comparison == 0:
            return None
        return (obs.value - obs.comparison) / abs(obs.comparison)
    return obs.value


def breaching(rule: RuleSpec, obs: Observation, state: str) -> bool | None:
    """Whether the observation breaches the rule; None when it cannot say. When ``state`` is
    ``firing`` the clear threshold decides (hysteresis): above fires at > threshold and stays firing
    while >= clear; below fires at < threshold and stays firing while <= clear."""
    x = measured(rule, obs)
    if x is None:
        return None
    clear = rule.threshold if rule.clear_threshold is None else rule.clear_threshold
    up = rule.condition in ("above", "change_above")
    if state == "firing":
        return x >= clear if up else x <= clear
    beyond = x > rule.threshold if up else x < rule.threshold
    return beyond and (not rule.significant or obs.significant is True)


def not_significant(rule: RuleSpec, obs: Observation) -> bool:
    """A breach of the threshold that does not count because the rule requires significance."""
    x = measured(rule, obs)
    if not rule.significant or x is None or obs.significant is True:
        return False
    return x > rule.threshold if rule.condition in ("above", "change_above") else x < rule.threshold


def in_quiet_hours(rule: RuleSpec, now: datetime) -> bool:
    if not rule.quiet_start or not rule.quiet_end:
        return False
    start, end = _hhmm(rule.quiet_start), _hhmm(rule.quiet_end)
    t = now.astimezone(ZoneInfo(rule.timezone)).time()
    if start == end:
        return False
    return start <= t < end if start < end else (t >= start or t < end)


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


# -- the transition -----------------------------------------------------------------------------------


def evaluate(rule: RuleSpec, prev: AlertState, obs: Observation, now: datetime) -> Transition:
    """The next state, what to notify and why. Pure: the same arguments give the same result."""
    if prev.muted_until is not None and now >= prev.muted_until:
        prev = replace(prev, muted_until=None)
    muted = prev.muted_until is not None
    state, core, reason = _core(rule, prev, obs, now, muted=muted)
    if state.state != prev.state:
        state = replace(state, since=now)
    last_error = obs.error if obs.error is not None else (prev.last_error if state.state == "error" else None)
    state = replace(state, last_value=obs.value, last_sample=obs.sample, last_error=last_error)

    if muted:
        dropped = core + tuple(Notification.decode(h) for h in state.held)
        if dropped:
            if any(n.kind == "fire" and n.episode == state.episode for n in dropped):
                state = replace(state, announced=False)
            return Transition(replace(state, held=(), last_notified_at=now if core else state.last_notified_at),
                              (), "muted")
        return Transition(state, (), reason)
    if in_quiet_hours(rule, now):
        held = tuple(n for n in core if n.kind != "repeat")
        if any(n.kind == "repeat" for n in core):  # deferred: undo the repeat
            state = replace(state, repeats=prev.repeats, last_notified_at=prev.last_notified_at,
                            snoozed_until=prev.snoozed_until)
            reason = "quiet_hours_deferred"
        if held:
            return Transition(replace(state, held=state.held + tuple(n.encode() for n in held)), (),
                              "quiet_hours_held")
        return Transition(state, (), reason)
    if state.held:
        released = tuple(Notification.decode(h) for h in state.held)
        if any(n.kind == "repeat" for n in core):
            state = replace(state, repeats=prev.repeats, snoozed_until=prev.snoozed_until)
            core = tuple(n for n in core if n.kind != "repeat")
        return Transition(replace(state, held=(), last_notified_at=now), released + core, "held_released")
    if core:
        state = replace(state, last_notified_at=now)
    return Transition(state, core, reason)


def _core(rule: RuleSpec, prev: AlertState, obs: Observation, now: datetime, *, muted: bool):
    """(state, notifications, reason), before mute and quiet hours."""
    open_episode = prev.fired_at is not None
    if obs.error is not None:
        if prev.state == "error":
            return prev, (), "error_again"
        state, note = _notice(replace(prev, state="error", breaches=0), "error")
        return state, (note,), "query_failed"

    if obs.waiting:  # today has no data yet: the rule keeps its state, and nobody is told "no data" nightly
        return prev, (), "window_not_started"
    why = _no_data_reason(rule, obs)
    if why is not None:
        if prev.state == "no_data":
            return prev, (), "still_no_data"
        state = replace(prev, state="no_data", breaches=0)
        if open_episode:
            state, note = _notice(state, "no_data")
            return state, (note,), why
        return state, (), why

    hit = breaching(rule, obs, "firing" if open_episode else prev.state)
    if open_episode:
        if not hit:
            ep = prev.episode
            state = replace(prev, state="ok", breaches=0, fired_at=None, acknowledged_by=None, snoozed_until=None,
                            announced=False)
            if not prev.announced and not muted:  # nobody was told it fired: no resolve either
                return state, (), "resolved_unannounced"
            return state, (Notification("resolve", ep, "resolve"),), "resolved"
        if prev.state != "firing":
            return replace(prev, state="firing"), (), f"recovered_from_{prev.state}"
        if not prev.announced and not muted:  # the fire was dropped by a mute that has ended: tell it now
            return replace(prev, announced=True), (Notification("fire", prev.episode, "fire"),), "unmuted_firing"
        return _repeat(rule, prev, now)

    if hit:
        breaches = prev.breaches + 1
        if breaches < max(rule.consecutive, 1):
            return replace(prev, state="pending", breaches=breaches), (), "breach_pending"
        ep = prev.episode + 1
        state = replace(prev, state="firing", breaches=breaches, episode=ep, fired_at=now, repeats=0,
                        last_notified_at=None, acknowledged_by=None, snoozed_until=None, notices=0, announced=True)
        return state, (Notification("fire", ep, "fire"),), "fired"
    state = replace(prev, state="ok", breaches=0)
    reason = {"pending": "pending_cleared", "no_data": "recovered_from_no_data",
              "error": "recovered_from_error"}.get(prev.state, "ok")
    return state, (), "not_significant" if not_significant(rule, obs) else reason


def _no_data_reason(rule: RuleSpec, obs: Observation) -> str | None:
    if obs.stale:
        return "stale"
    if obs.value is None:
        return "no_value"
    if rule.min_sample > 0 and (obs.sample is None or obs.sample < rule.min_sample):
        return "below_min_sample"
    if measured(rule, obs) is None:
        return "no_comparison"
    return None


def _notice(state: AlertState, kind: str) -> tuple[AlertState, Notification]:
    n = state.notices + 1
    return replace(state, notices=n), Notification(kind, state.episode, kind if n == 1 else f"{kind}{n}")


def _repeat(rule: RuleSpec, prev: AlertState, now: datetime):
    if rule.repeat_minutes <= 0:
        return prev, (), "still_firing"
    base = prev.last_notified_at or prev.fired_at or now
    snooze_over = prev.snoozed_until is not None and now >= prev.snoozed_until
    due = snooze_over or now - base >= timedelta(minutes=rule.repeat_minutes)
    if not due:
        return prev, (), "still_firing"
    if prev.acknowledged_by is not None:
        return prev, (), "acknowledged"
    if prev.snoozed_until is not None and now < prev.snoozed_until:
        return prev, (), "snoozed"
    n = prev.repeats + 1
    state = replace(prev, repeats=n, snoozed_until=None)
    return state, (Notification("repeat", prev.episode, f"repeat{n}"),), "repeat_due"


# -- what people do -----------------------------------------------------------------------------------


def acknowledge(state: AlertState, user: str, now: datetime, *, episode: int | None = None) -> AlertState:
    """Stop the repeats of the open episode and record who. Idempotent: the first acknowledgement
    stands, a second click changes nothing. A click for another episode (``episode``), or with no open
    episode, changes nothing either."""
    del now  # the time of the click is in the interaction log; the state does not need it
    if state.fired_at is None or state.acknowledged_by is not None:
        return state
    if episode is not None and episode != state.episode:
        return state
    return replace(state, acknowledged_by=user)


def snooze(state: AlertState, until: datetime) -> AlertState:
    """No repeats until ``until``; the first evaluation after it sends one. Idempotent."""
    if state.fired_at is None:
        return state
    return replace(state, snoozed_until=until)


def mute(state: AlertState, until: datetime | None) -> AlertState:
    """No notifications at all until ``until`` (None: unmute); the state is still tracked."""
    return replace(state, muted_until=until)
