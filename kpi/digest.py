"""Digest composition (DESIGN.md section 7): what a team's morning digest says, as plain data.

``compose_digest`` gathers, for one team and one local day: each active goal with its progress and the
KPIs to watch with it (last 7 days vs the 7 before, with the goal's filters), the top movers among the
headline KPIs, and the trajectories of the goals furthest behind (for the chart). Nothing here knows
Slack: ``bot.render.digest`` turns a ``Digest`` into a message, a chart and a terminal preview.

Batching: goals share KPI queries. Every question goes through one ``CachingEngine`` per call, which
answers identical requests (same KPI, period, comparison, filters...) once; so the work grows with the
distinct (KPI, filters, window) pairs of the team, not with its number of goals. Identical goals are
computed once too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from .catalog import Metric
from .engine import KpiEngine, KpiRequest, KpiResult
from .errors import KpiError
from .periods import default_period, parse_period
from .query import parse_query
from .store import StoredGoal

if TYPE_CHECKING:  # kpi.goals is imported late at run time (see _goals_api)
    from .goals import Progress

log = logging.getLogger("kpibot.digest")

CONTENTS = ("goals", "watch", "movers")
TOP_MOVERS = 5
CHART_GOALS = 8  # trajectories are computed for the goals the chart draws: the ones furthest behind
TRAILING_DAYS = 28  # the default trailing window of rates and averages (DESIGN.md section 6)
WATCH_TOP = 3  # breakdown rows kept for a watched "sessions by channel"


@dataclass(frozen=True)
class GoalLine:
    goal: StoredGoal
    metric: Metric
    progress: Progress
    watch: list[KpiResult]  # the goal's KPIs to watch, last 7 days vs previous, with its filters


@dataclass(frozen=True)
class Digest:
    team_id: str
    day: date
    tz: str
    goals: list[GoalLine]
    movers: list[KpiResult]  # headline KPIs, last 7 days vs previous, by |relative change| desc, top 5
    # goal id -> (day, actual value: cumulative or trailing, expected path value), in the KPI's unit
    trajectories: dict[int, list[tuple[date, float | None, float | None]]]
    late: bool = False
    late_by_minutes: int = 0
    due_at: datetime | None = None  # when the digest was due (aware): "sent at 09:12 instead of 08:00"
    errors: list[tuple[StoredGoal, str]] = field(default_factory=list)  # goals that could not be computed
    content: tuple[str, ...] = CONTENTS  # the parts asked for (goals, watch, movers)


class CachingEngine:
    """A ``KpiEngine`` stand-in that answers each distinct request once (errors included).

    Same ``ask``, ``now``, ``catalog`` and ``tz`` as the engine; anything else is forwarded to it. Use one
    per composition: the cache never expires."""

    def __init__(self, engine: KpiEngine):
        self._engine = engine
        self.catalog = engine.catalog
        self.tz = engine.tz
        self._cache: dict[object, KpiResult | KpiError] = {}
        self.asked = 0  # requests received
        self.computed = 0  # requests the engine answered

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def now(self) -> datetime:
        return self._engine.now()

    def ask(self, req: KpiRequest) -> KpiResult:
        self.asked += 1
        key = _request_key(req)
        hit = self._cache.get(key)
        if hit is None:
            self.computed += 1
            try:
                hit = self._engine.ask(req)
            except KpiError as exc:
                hit = exc
            self._cache[key] = hit
        if isinstance(hit, KpiError):
            raise hit
        return hit


def _request_key(req: KpiRequest) -> object:
    """The request itself when hashable; otherwise its fields with lists turned into tuples."""
    try:
        hash(req)
        return req
    except TypeError:
        return tuple(_frozen(getattr(req, f.name)) for f in fields(req))


def _frozen(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def _goals_api():
    """kpi.goals, imported late (it imports the engine and the catalog like this module)."""
    from . import goals

    return goals


def spec_of(goal: StoredGoal):
    """The ``GoalSpec`` of a stored goal (same fields, without the row's id, team and bookkeeping)."""
    api = _goals_api()
    if hasattr(api, "spec_of"):
        return api.spec_of(goal)
    names = {f.name for f in fields(api.GoalSpec)}
    return api.GoalSpec(**{n: getattr(goal, n) for n in names if hasattr(goal, n)})


def compose_digest(engine: KpiEngine, goals: list[StoredGoal], *, team_id: str, today: date,
                   content: Iterable[str] = CONTENTS, late_by_minutes: int = 0,
                   due_at: datetime | None = None, late: bool | None = None) -> Digest:
    """The digest of ``team_id`` for the local day ``today``. ``goals`` are the team's goals (archived
    ones and other teams' are left out); ``content`` picks the parts (goals, watch, movers).
    ``late`` defaults to ``late_by_minutes > 0``."""
    content = tuple(content)
    cached = engine if isinstance(engine, CachingEngine) else CachingEngine(engine)
    now = datetime.combine(today, time(12), tzinfo=cached.tz)
    week = default_period(now=now, tz=cached.tz)  # the last 7 complete days

    lines: list[GoalLine] = []
    errors: list[tuple[StoredGoal, str]] = []
    if "goals" in content:
        active = [g for g in goals if g.team_id == team_id and g.archived_at is None]
        progress_of = _memo(lambda spec: _goals_api().goal_progress(cached, spec, today=today))
        requests: dict[tuple, KpiRequest | KpiError] = {}  # (watch text, goal filters) -> request
        for goal in active:
            try:
                metric = cached.catalog.metric(goal.metric)
                progress = progress_of(spec_of(goal))
            except KpiError as exc:
                log.warning("digest %s: goal #%s skipped: %s", team_id, goal.id, exc)
                errors.append((goal, str(exc)))
                continue
            watch = _watch(cached, goal, week, now, requests) if "watch" in content else []
            lines.append(GoalLine(goal=goal, metric=metric, progress=progress, watch=watch))

    movers = _movers(cached, week) if "movers" in content else []
    trajectories = {}
    for line in behind_first(lines)[:CHART_GOALS]:
        try:
            trajectories[line.goal.id] = trajectory(cached, line, today=today)
        except KpiError as exc:  # a chart without this goal, never a digest without its goals
            log.warning("digest %s: no trajectory for goal #%s: %s", team_id, line.goal.id, exc)
    log.debug("digest %s: %d requests, %d computed", team_id, cached.asked, cached.computed)
    return Digest(team_id=team_id, day=today, tz=str(cached.tz), goals=lines, movers=movers,
                  trajectories=trajectories, late=late_by_minutes > 0 if late is None else late,
                  late_by_minutes=late_by_minutes, due_at=due_at, errors=errors, content=content)


def _memo(fn: Callable):
    cache: dict = {}

    def call(arg):
        try:
            hash(arg)
        except TypeError:
            return fn(arg)
        key = arg
        if key not in cache:
            try:
                cache[key] = fn(arg)
            except KpiError as exc:
                cache[key] = exc
        if isinstance(cache[key], KpiError):
            raise cache[key]
        return cache[key]

    return call


# -- KPIs to watch and top movers ------------------------------------------------------------------


def _watch(engine: CachingEngine, goal: StoredGoal, week, now: datetime,
           requests: dict[tuple, KpiRequest | KpiError]) -> list[KpiResult]:
    out = []
    for text in goal.watch:
        key = (text, _frozen(goal.filters))
        if key not in requests:  # parsing "sessions by channel" once per team, not once per goal
            try:
                requests[key] = watch_request(engine, text, goal.filters, week, now)
            except KpiError as exc:
                requests[key] = exc
        try:
            req = requests[key]
            if isinstance(req, KpiError):
                raise req
            out.append(engine.ask(req))
        except KpiError as exc:  # a KPI dropped from the catalog: the goal is still shown
            log.info("goal #%s: KPI to watch %r skipped: %s", goal.id, text, exc)
    return out


def watch_request(engine, text: str, filters, week, now: datetime) -> KpiRequest:
    """A KPI to watch ("conversion", "sessions by channel") over ``week`` vs the week before, with the
    goal's filters on the dimensions that KPI has."""
    catalog = engine.catalog
    breakdown, extra = None, ()
    try:
        metric = catalog.metric(text)
    except KpiError:
        parsed = parse_query(text, catalog, now=now, tz=engine.tz).request
        metric, breakdown, extra = catalog.metric(parsed.metric), parsed.breakdown, parsed.filters
    dims = set(catalog.dimensions_of(metric))
    merged = dict((d, tuple(v)) for d, v in filters if d in dims)
    merged.update((d, tuple(v)) for d, v in extra)
    return KpiRequest(metric=metric.key, period=week, compare="previous", filters=tuple(sorted(merged.items())),
                      breakdown=breakdown, top=WATCH_TOP, series=False)


def _movers(engine: CachingEngine, week) -> list[KpiResult]:
    results = []
    for metric in engine.catalog.metrics.values():
        if not metric.headline:
            continue
        try:
            results.append(engine.ask(KpiRequest(metric=metric.key, period=week, compare="previous", series=False)))
        except KpiError as exc:
            log.info("top movers: %s skipped: %s", metric.key, exc)

    def size(r: KpiResult) -> float:
        rel = r.change.relative if r.change is not None else None
        return -1.0 if rel is None else abs(rel)

    moving = [r for r in results if size(r) > 0]
    return sorted(moving, key=lambda r: (-size(r), r.metric.key))[:TOP_MOVERS]


# -- goals furthest behind and their trajectories --------------------------------------------------

_STATUS_ORDER = {"off_track": 0, "at_risk": 1, "missed": 2, "no_data": 3, "on_track": 4, "achieved": 5}


def shortfall(progress) -> float:
    """How far behind its expected progress a goal is (positive: behind)."""
    p, e = getattr(progress, "progress", None), getattr(progress, "expected", None)
    if p is None or e is None:
        return float("-inf")
    return float(e) - float(p)


def behind_first(lines: list[GoalLine]) -> list[GoalLine]:
    """Goals needing attention first: by status (off track, at risk, missed, no data, on track, achieved),
    then furthest behind, then by id."""
    return sorted(lines, key=lambda x: (_STATUS_ORDER.get(getattr(x.progress, "status", ""), 6),
                                        -shortfall(x.progress), x.goal.id))


def trajectory(engine, line: GoalLine, *, today: date) -> list[tuple[date, float | None, float | None]]:
    """(day, actual, expected) from the goal's start to yesterday (or its deadline): the actual value is
    the accumulation since the start for additive KPIs, the trailing-window value for rates and averages
    (from the daily numerators and denominators); the expected path goes from the baseline to the target
    along the expected progress (linear in time)."""
    goal, metric, progress = line.goal, line.metric, line.progress
    last = min(today, goal.deadline) - timedelta(days=1)  # the last complete day
    if last < goal.start:
        return []
    window = 0 if metric.additive else _trailing_days(progress)
    first = goal.start - timedelta(days=max(window - 1, 0))
    now = datetime.combine(today, time(12), tzinfo=engine.tz)
    period = parse_period(f"{first.isoformat()}..{last.isoformat()}", now=now, tz=engine.tz)
    result = engine.ask(KpiRequest(metric=metric.key, period=period, compare=None, filters=tuple(goal.filters),
                                   granularity="day", series=True))
    daily = {p.start.date(): p.value for p in result.series}
    baseline, target = getattr(progress, "baseline", None), getattr(progress, "target", None)
    span = max((goal.deadline - goal.start).days, 1)
    out: list[tuple[date, float | None, float | None]] = []
    running = 0.0
    day = goal.start
    while day <= last:
        if metric.additive:
            v = daily.get(day)
            running += (v.value or 0.0) if v is not None else 0.0
            actual: float | None = running
        else:
            actual = _trailing(metric, daily, day, window)
        expected = None
        if baseline is not None and target is not None:
            expected = baseline + (target - baseline) * min(((day - goal.start).days + 1) / span, 1.0)
        out.append((day, actual, expected))
        day += timedelta(days=1)
    return out


def _trailing_days(progress) -> int:
    """The trailing window of a rate's 'current' value, read from ``Progress.current_window`` when it says
    (a 'last_28_days' key or a 'a..b' range), else the default."""
    text = str(getattr(progress, "current_window", "") or "")
    if text.startswith("last_") and text.endswith("_days"):
        try:
            return max(1, int(text[5:-5]))
        except ValueError:
            return TRAILING_DAYS
    if ".." in text:
        try:
            a, b = (date.fromisoformat(x.strip()) for x in text.split(".."))
            return max(1, (b - a).days + 1)
        except ValueError:
            return TRAILING_DAYS
    return TRAILING_DAYS


def _trailing(metric: Metric, daily: dict, day: date, window: int) -> float | None:
    """The value over the ``window`` days ending on ``day``: Σ numerators ÷ Σ denominators when the
    daily values carry them (rates, averages), else the day's own value."""
    num = den = 0.0
    seen = False
    for i in range(window):
        v = daily.get(day - timedelta(days=i))
        if v is None or v.numerator is None or v.denominator is None:
            continue
        num, den, seen = num + v.numerator, den + v.denominator, True
    if seen:
        return num / den if den else None
    v = daily.get(day)
    return v.value if v is not None else None


__all__ = ["CONTENTS", "CachingEngine", "Digest", "GoalLine", "behind_first", "compose_digest", "shortfall",
           "spec_of", "trajectory", "watch_request"]
