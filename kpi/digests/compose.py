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
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta

from kpi.errors import KpiError, KpiUnavailable, NonNumericValues
from kpi.goals import GoalSpec, Progress, expected_path, goal_progress, measure
from kpi.goals.spec import last_year_span
from kpi.metrics.catalog import Metric
from kpi.metrics.engine import KpiEngine, KpiRequest, KpiResult
from kpi.metrics.periods import default_period
from kpi.metrics.query import parse_query
from kpi.state.store import StoredGoal

log = logging.getLogger("kpibot.digest")

CONTENTS = ("goals", "watch", "movers")
TOP_MOVERS = 5
CHART_GOALS = 8  # trajectories are computed for the goals the chart draws: the ones furthest behind
WATCH_TOP = 3  # breakdown rows kept for a watched "sessions by channel"


@dataclass(frozen=True)
class GoalLine:
    goal: StoredGoal
    metric: Metric
    progress: Progress
    watch: list[KpiResult]  # the goal's KPIs to watch, last 7 days vs previous, with its filters
    # off track today and not the day before: the one time the digest pings the goal's owner
    turned_off_track: bool = False


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
    errors: list[tuple[StoredGoal, KpiError]] = field(default_factory=list)  # goals that could not be computed, and why
    content: tuple[str, ...] = CONTENTS  # the parts asked for (goals, watch, movers)
    # KPIs the shop's data cannot give (a table or column missing, values that are not numbers), by key, and
    # why: the digest shows the rest and names these in one short line
    unavailable: dict[str, KpiError] = field(default_factory=dict)


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


def spec_of(goal: StoredGoal) -> GoalSpec:
    """The ``GoalSpec`` of a stored goal (the same fields, without the row's id, team and bookkeeping)."""
    return GoalSpec(**{f.name: getattr(goal, f.name) for f in fields(GoalSpec)})


def compose_digest(engine: KpiEngine, goals: list[StoredGoal], *, team_id: str, today: date,
                   content: Iterable[str] = CONTENTS, late_by_minutes: int = 0,
                   due_at: datetime | None = None, late: bool | None = None,
                   previous_day: date | None = None) -> Digest:
    """The digest of ``team_id`` for the local day ``today``. ``goals`` are the team's goals (archived
    ones and other teams' are left out); ``content`` picks the parts (goals, watch, movers).
    ``late`` defaults to ``late_by_minutes > 0``.

    A goal off track today that was not on ``previous_day`` (default: the day before; its status then
    is computed from the data as it was, so nothing has to be remembered between digests) is marked
    ``turned_off_track``: the digest pings its owner that once, and only names owners otherwise."""
    content = tuple(content)
    cached = engine if isinstance(engine, CachingEngine) else CachingEngine(engine)
    now = datetime.combine(today, time(12), tzinfo=cached.tz)
    week = default_period(now=now, tz=cached.tz)  # the last 7 complete days

    lines: list[GoalLine] = []
    errors: list[tuple[StoredGoal, KpiError]] = []
    unavailable = _unavailable(cached)
    if "goals" in content:
        active = [g for g in goals if g.team_id == team_id and g.archived_at is None]
        progress_of = _memo(lambda key: goal_progress(cached, key[0], today=key[1]) if isinstance(key, tuple)
                            else goal_progress(cached, key, today=today))
        requests: dict[tuple, KpiRequest | KpiError] = {}  # (watch text, goal filters) -> request
        for goal in active:
            try:
                metric = cached.catalog.metric(goal.metric)
                # who owns a goal, where it is posted and what is watched with it change nothing to its
                # progress: goals that differ only there are computed once
                progress = progress_of(replace(spec_of(goal), owner=None, channel=None, watch=(), text=""))
            except KpiError as exc:
                log.warning("digest %s: goal #%s skipped: %s", team_id, goal.id, exc)
                errors.append((goal, exc))  # told in the reader's language: exc.localized(lang)
                _refused(unavailable, exc)
                continue
            watch = _watch(cached, goal, week, now, requests, unavailable) if "watch" in content else []
            turned = bool(goal.owner) and progress.status == "off_track" and _status_before(
                progress_of, goal, previous_day or today - timedelta(days=1)) != "off_track"
            lines.append(GoalLine(goal=goal, metric=metric, progress=progress, watch=watch, turned_off_track=turned))

    movers = _movers(cached, week, unavailable) if "movers" in content else []
    trajectories = {}
    for line in behind_first(lines)[:CHART_GOALS]:
        try:
            trajectories[line.goal.id] = trajectory(cached, line, today=today)
        except KpiError as exc:  # a chart without this goal, never a digest without its goals
            log.warning("digest %s: no trajectory for goal #%s: %s", team_id, line.goal.id, exc)
    log.debug("digest %s: %d requests, %d computed", team_id, cached.asked, cached.computed)
    return Digest(team_id=team_id, day=today, tz=str(cached.tz), goals=lines, movers=movers,
                  trajectories=trajectories, late=late_by_minutes > 0 if late is None else late,
                  late_by_minutes=late_by_minutes, due_at=due_at, errors=errors, content=content,
                  unavailable=unavailable)


def _unavailable(engine) -> dict[str, KpiError]:
    """The KPIs the engine knows it cannot give (its cached look at the source's tables: no query)."""
    look = getattr(engine, "unavailable", None)
    try:
        return dict(look()) if callable(look) else {}
    except KpiError:
        return {}


def _refused(unavailable: dict[str, KpiError], exc: KpiError) -> None:
    """A KPI refused because of the data (a table or column missing, values that are not numbers) is named in
    the digest's line of what is unavailable."""
    if isinstance(exc, KpiUnavailable | NonNumericValues) and exc.metric:
        unavailable.setdefault(exc.metric, exc)


def _status_before(progress_of, goal: StoredGoal, day: date) -> str | None:
    """The goal's status as of ``day`` (None when it did not exist yet or cannot be computed)."""
    if day < goal.start:
        return None
    try:
        return progress_of((replace(spec_of(goal), owner=None, channel=None, watch=(), text=""), day)).status
    except KpiError:
        return None


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
           requests: dict[tuple, KpiRequest | KpiError], unavailable: dict[str, KpiError] | None = None
           ) -> list[KpiResult]:
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
        except KpiError as exc:  # a KPI dropped from the catalog, or unavailable: the goal is still shown
            log.info("goal #%s: KPI to watch %r skipped: %s", goal.id, text, exc)
            if unavailable is not None:
                _refused(unavailable, exc)
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


def _movers(engine: CachingEngine, week, unavailable: dict[str, KpiError] | None = None) -> list[KpiResult]:
    results = []
    for metric in engine.catalog.metrics.values():
        if not metric.headline or (unavailable and metric.key in unavailable):
            continue
        try:
            results.append(engine.ask(KpiRequest(metric=metric.key, period=week, compare="previous", series=False)))
        except KpiError as exc:
            log.info("top movers: %s skipped: %s", metric.key, exc)
            if unavailable is not None:
                _refused(unavailable, exc)

    def size(r: KpiResult) -> float:
        """How far it moved; a move that is noise (within normal variation) or measured against a comparison
        the data does not fully cover is no mover."""
        ch = r.change
        if ch is None or ch.relative is None or r.comparison_partial:
            return -1.0
        if ch.significance is not None and not ch.significance.significant:
            return -1.0
        return abs(ch.relative)

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
    """(day, actual, expected value) for each complete day of the goal, as ``kpi.goals`` defines them:
    additive KPIs, the running total since the start against the on-pace total T × x (x the expected
    share: last year's seasonal share when its history is complete, else linear); rates and averages,
    the trailing value against B + (T − B) × x (x linear). The questions are those ``goal_progress``
    asked, so through the digest's ``CachingEngine`` they cost nothing more."""
    goal, metric, progress = line.goal, line.metric, line.progress
    spec = spec_of(goal)
    upto = min(max(today, spec.start), spec.end)  # the complete days [start, upto), as goal_progress reads
    if upto <= spec.start:
        return []
    base, target = progress.baseline, progress.target
    if metric.additive:
        ly_start, ly_end = last_year_span(spec)
        ly_daily = measure.daily_values(engine, spec, ly_start, ly_end)
        complete = any(v.value for _, v in ly_daily) and measure.history_complete(engine, spec, ly_start)
        share = expected_path(spec, [(d, v.value) for d, v in ly_daily] if complete else [])
        running, actual = 0.0, []
        for day, v in measure.daily_values(engine, spec, spec.start, upto):
            running += v.value or 0.0
            actual.append((day, running))
        return [(day, value, None if target is None else target * share(day)) for day, value in actual]
    trailing = getattr(measure, "trailing_trajectory", None) or measure._trailing_trajectory
    points = dict(trailing(engine, spec, metric, upto))
    out = []
    day = spec.start
    while day < upto:
        x = ((day - spec.start).days + 1) / spec.days_total
        expected = None if base is None or target is None else base + (target - base) * x
        out.append((day, points.get(day), expected))
        day += timedelta(days=1)
    return out


def progress_series(line: GoalLine, points: list[tuple[date, float | None, float | None]]
                    ) -> list[tuple[date, float | None, float | None]]:
    """A trajectory as progress shares, on the scale of ``Progress.progress``: (day, where it was, where it
    should have been). Additive KPIs: the running total ÷ the target against the expected share; rates:
    (c − B) ÷ (T − B) against x. Empty when the goal has no target (or no baseline for a rate), or a rate's
    target equals its baseline, or an additive target is not positive."""
    p = line.progress
    base, target = p.baseline, p.target
    additive = getattr(p, "additive", line.metric.additive)
    if target is None or (additive and target <= 0) or (not additive and (base is None or target == base)):
        return []
    out = []
    for day, actual, expected in points:
        if expected is None:
            x = None
        elif additive:
            x = expected / target
        else:
            x = (expected - base) / (target - base)
        if actual is None:
            prog = None
        else:
            prog = actual / target if additive else (actual - base) / (target - base)
        out.append((day, prog, x))
    return out


__all__ = ["CONTENTS", "CachingEngine", "Digest", "GoalLine", "behind_first", "compose_digest", "progress_series",
           "shortfall", "spec_of", "trajectory", "watch_request"]
