"""The state database: migrations match the models, and one workspace never sees or changes another's
goals or schedules, whatever id it names. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kpi.db import make_engine
from kpi.errors import KpiError
from kpi.goals import GoalSpec
from kpi.state.delivery import DeliveryLog
from kpi.state.store import Goals, NotFound, Schedules, parse_days, parse_local_time
from kpi.state.tables import state_metadata, upgrade


def Spec() -> GoalSpec:  # noqa: N802 - reads like the spec it builds
    return GoalSpec(metric="revenue", target_kind="relative_pct", target_value=0.10, start=date(2026, 1, 1),
                    deadline=date(2026, 12, 31), filters=(("channel", ("email",)),), owner="U0ALICE",
                    channel="C0GROWTH", watch=("conversion_rate",), text="revenue +10% channel=email by 2026-12-31")


@pytest.fixture
def state(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_migrations_create_exactly_the_models(state):
    with state.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), state_metadata)
    assert [d for d in diff if "kpibot_alembic_version" not in str(d)] == []


def test_goals_round_trip(state):
    goal = Goals(state, "T0A").add(Spec(), created_by="U0ALICE")
    again = Goals(state, "T0A").get(goal.id)
    assert again.filters == (("channel", ("email",)),) and again.watch == ("conversion_rate",)
    assert again.start == date(2026, 1, 1) and again.target_value == pytest.approx(0.10)


def test_one_workspace_cannot_see_or_change_another_workspaces_goals_and_schedules(state):
    a_goal = Goals(state, "T0A").add(Spec())
    a_schedule = Schedules(state, "T0A").add("C0GENERAL", timezone="Europe/Paris")
    b_goals, b_schedules = Goals(state, "T0B"), Schedules(state, "T0B")
    assert b_goals.list() == [] and b_schedules.list() == []
    for attempt in (lambda: b_goals.get(a_goal.id), lambda: b_goals.archive(a_goal.id),
                    lambda: b_goals.freeze(a_goal.id, 1.0, "achieved"), lambda: b_schedules.get(a_schedule.id),
                    lambda: b_schedules.remove(a_schedule.id)):
        with pytest.raises(NotFound) as err:
            attempt()
        assert "T0A" not in str(err.value) and "revenue" not in str(err.value)  # nothing leaked
    b_schedules.record_error(a_schedule.id, "hijacked")
    assert Goals(state, "T0A").get(a_goal.id).archived_at is None
    assert Schedules(state, "T0A").get(a_schedule.id).last_error is None
    with pytest.raises(KpiError):
        Goals(state, "")


def test_archived_goals_leave_the_list(state):
    goals = Goals(state, "T0A")
    g = goals.add(Spec())
    goals.archive(g.id)
    assert goals.list() == [] and [x.id for x in goals.list(include_archived=True)] == [g.id]


def test_schedule_fields_are_checked():
    assert parse_days("mon-fri") == ("mon", "tue", "wed", "thu", "fri")
    assert parse_days("lun,mer,ven") == ("mon", "wed", "fri")
    assert parse_days("daily")[-1] == "sun"
    assert parse_local_time("8am") == "08:00" and parse_local_time("8h30") == "08:30" and parse_local_time("18:05") == "18:05"
    for bad in ("25:00", "soon"):
        with pytest.raises(KpiError):
            parse_local_time(bad)
    with pytest.raises(KpiError):
        parse_days("someday")


def test_a_schedule_needs_a_real_time_zone(state):
    with pytest.raises(KpiError, match="not a time zone"):
        Schedules(state, "T0A").add("C0GENERAL", timezone="Mars/Olympus")


def test_a_delivery_key_is_claimed_once(state):
    first, second = DeliveryLog(state, worker="a"), DeliveryLog(state, worker="b")
    claim = first.claim("digest:1:2026-11-24", team_id="T0A", kind="digest", due_at=datetime(2026, 11, 24, 7))
    assert claim is not None
    assert second.claim("digest:1:2026-11-24", team_id="T0A", kind="digest") is None
    first.release(claim, "Slack unreachable")
    again = second.claim("digest:1:2026-11-24", team_id="T0A", kind="digest")
    assert again is not None
    second.sent(again, ts="1.2", channel="C0GENERAL")
    assert first.status("digest:1:2026-11-24")["status"] == "sent"
    assert not first.skip("digest:1:2026-11-24", team_id="T0A", kind="digest", reason="late")


def test_a_removed_schedule_id_is_never_reused(state):
    """Delivery keys carry the schedule id: a new schedule must not find an old one's digest 'already sent'."""
    schedules = Schedules(state, "T0A")
    first = schedules.add("C0GENERAL", timezone="UTC")
    schedules.remove(first.id)
    assert schedules.add("C0GROWTH", timezone="UTC").id != first.id


def test_one_workspace_cannot_see_or_change_another_workspaces_alert_rules(state):
    from pathlib import Path

    from kpi.alerts.machine import mute
    from kpi.alerts.rules import parse_rule
    from kpi.alerts.store import AlertRules, StateStore
    from kpi.metrics.catalog import load_catalog

    catalog = load_catalog(Path(__file__).resolve().parent.parent / "config")
    ours = AlertRules(state, "T0A").add(parse_rule("return rate above 8% over 7 days in #ops", catalog))
    theirs = AlertRules(state, "T0B")
    assert theirs.list() == []
    for attempt in (lambda: theirs.get(ours.id), lambda: theirs.remove(ours.id),
                    lambda: StateStore(state, "T0B").load(ours.id)):
        with pytest.raises(NotFound) as err:
            attempt()
        assert "return" not in str(err.value)
    assert AlertRules(state, "T0A").get(ours.id).spec.metric == "return_rate"
    stored = StateStore(state, "T0A").load(ours.id)
    assert StateStore(state, "T0A").save(stored, mute(stored.state, None), now=datetime(2026, 11, 24))
    assert not StateStore(state, "T0A").save(stored, stored.state, now=datetime(2026, 11, 24))  # stale version
