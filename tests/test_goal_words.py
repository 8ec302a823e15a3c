"""Goals told once, consistently (issue 11): the status follows from where the goal is, where it should be
by now and where it is heading, and the digest, the goal card and list, the Home tab and the command line
say it in the same words (``kpi.goals.telling``). A fixed clock: every day below is given, never read."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.render.digest import digest_message, digest_text
from bot.render.goals import goal_detail_message, goal_line, goal_list_message, goal_plain
from bot.render.home import home_view, progress_bar
from bot.terminal import render_message
from kpi.digests.compose import Digest, GoalLine
from kpi.goals import GoalSpec, compute_progress
from kpi.goals.telling import share_text, tell
from kpi.metrics.catalog import load_catalog
from kpi.state.store import StoredGoal

CATALOG = load_catalog(Path(__file__).resolve().parent.parent / "config")
REVENUE = CATALOG.metrics["revenue"]
D = date.fromisoformat
YEAR = GoalSpec("revenue", "absolute", 8_430_000, D("2026-01-01"), D("2026-12-31"))
TODAY = D("2026-12-01")  # 334 complete days of 365


def stored(spec: GoalSpec, id: int = 1) -> StoredGoal:
    return StoredGoal(id=id, team_id="T1", metric=spec.metric, target_kind=spec.target_kind,
                      target_value=spec.target_value, start=spec.start, deadline=spec.deadline,
                      baseline=spec.baseline)


def steady(total: float, days: int, wobble: float = 0.0) -> list[tuple[date, float]]:
    """Running totals reaching ``total`` after ``days`` days, the same amount a day (± ``wobble``)."""
    out, running = [], 0.0
    for i in range(days):
        running += total / days + (wobble if i % 2 else -wobble)
        out.append((YEAR.start + timedelta(days=i), running))
    return out


def progress(current: float, trajectory, today: date = TODAY, spec: GoalSpec = YEAR):
    return compute_progress(spec, baseline=7_000_000, current=current, today=today, trajectory=trajectory,
                            additive=True)


def everywhere(spec: GoalSpec, p) -> dict[str, str]:
    """The goal as each surface shows it."""
    g = stored(spec)
    line = GoalLine(goal=g, metric=REVENUE, progress=p, watch=[])
    digest = Digest(team_id="T1", day=TODAY, tz="Europe/Paris", goals=[line], movers=[], trajectories={})
    card = goal_detail_message(g, REVENUE, p)
    listing = goal_list_message([(g, REVENUE, p)], home_hint=False)
    return {
        "digest": str(digest_message(digest).blocks),
        "digest preview": digest_text(digest),
        "card": render_message({"text": card.text, "blocks": card.blocks}),
        "list": str(listing.blocks),
        "home": str(home_view(headline=[], sections=[listing])["blocks"]),
        "cli": goal_plain(g, REVENUE, p, lang="en", currency="USD", with_id=True),  # `kpibot goals list`
    }


def test_the_reported_goal_is_not_on_track_when_its_projection_misses_the_target():
    # it was told "on track 150%" with "$7.83M now, target $8.43M" and a projection below target. Here
    # $7.3M so far is 87% of $8.43M where 334/365 = 91.5% was expected: heading for 7.3M x 365/334 = 7.98M
    p = progress(7_300_000, steady(7_300_000, 334))
    assert p.projection < p.target and p.status != "on_track"
    assert p.projection == pytest.approx(7_300_000 * 365 / 334) == p.projection_high  # a steady pace: no range
    assert p.status == "off_track"  # the whole range misses the target
    story = tell(REVENUE, p, lang="en", currency="USD")
    assert story.share == "87%" and "of the target $8.4M" in story.where  # 7.3 / 8.43, not "150%"
    assert story.projection == "projected at the deadline: $8M"
    for surface, text in everywhere(YEAR, p).items():
        assert "off track" in text and "on track" not in text, surface
        assert "87%" in text and "150%" not in text, surface


def test_on_track_and_at_risk_follow_the_projection_and_its_range():
    ahead = progress(7_830_000, steady(7_830_000, 334))  # heading for 8.557M >= 8.43M
    assert ahead.projection >= ahead.target and ahead.status == "on_track"
    noisy = progress(7_600_000, steady(7_600_000, 334, wobble=20_000))  # heading for 8.305M, range to 8.5M
    assert noisy.projection < noisy.target <= noisy.projection_high and noisy.status == "at_risk"
    assert noisy.projection_low > 7_600_000 - 1  # a running total does not fall below what is in
    assert "95% range" in tell(REVENUE, noisy, lang="en", currency="USD").projection


def test_a_goal_without_data_is_waiting_for_data_everywhere():
    not_started = GoalSpec("revenue", "absolute", 8_430_000, D("2027-01-01"), D("2027-12-31"))
    p = compute_progress(not_started, baseline=7_000_000, current=None, today=TODAY, additive=True)
    assert p.status == "no_data"
    for surface, text in everywhere(not_started, p).items():
        assert "waiting for data" in text and "on track" not in text, surface
    first_day = compute_progress(YEAR, baseline=7_000_000, current=0.0, today=YEAR.start, additive=True)
    assert first_day.status == "no_data"
    for surface, text in everywhere(YEAR, first_day).items():
        assert "waiting for data" in text and "on track" not in text and "no data yet" in text, surface


def test_no_minus_zero_percent():
    assert share_text(-0.0, "en") == "0%" and share_text(-0.004, "en") == "0%" and share_text(0.004, "fr") == "0\u202f%"
    assert share_text(-0.006, "en") == "-1%" and share_text(0.925, "en") == "93%"  # half up
    assert progress_bar(-0.003).endswith(" 0%")
    # a rate a hair below its baseline: the way to the target is -0.1%
    rate = GoalSpec("conversion_rate", "absolute", 0.03, D("2026-01-01"), D("2026-03-31"))
    p = compute_progress(rate, baseline=0.02, current=0.01999, today=D("2026-02-15"))
    conv = CATALOG.metrics["conversion_rate"]
    g = stored(rate)
    text = goal_line(g, conv, p, lang="en", currency="USD") + goal_plain(g, conv, p, lang="en", currency="USD")
    assert "-0%" not in text and "−0%" not in text and "0% of the way from 2.0% to 3.0%" in text
