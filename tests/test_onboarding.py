"""Issue 12, item 6 (lifecycle), through signed HTTP against the Slack stand-in: the shop's currency
everywhere; digests that name owners without pinging them; first contact as an onboarding card in the
App Home instead of posts into #general; every goal reachable; ``kpibot socket`` honest about connecting."""

from __future__ import annotations

import json

import pytest

from .test_slack_app import Rig


@pytest.fixture
def rig(database_url):
    r = Rig(database_url)  # a EUR shop (KPIBOT_CURRENCY=EUR)
    yield r
    r.close()


def text_of(message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


# -- (d) the shop's currency everywhere ----------------------------------------------------------------

def test_a_eur_shop_sees_euros_in_alert_lists_goal_restatements_and_backtests(rig):
    _, added = rig.ask("alert add aov below 100 over 7 days in <#C0GROWTH|growth>")
    assert "€" in text_of(added) and "$" not in text_of(added), text_of(added)
    _, listing = rig.ask("alert list")
    assert "€100" in text_of(listing) and "$" not in text_of(listing)
    rule_id = max(r.id for r in __import__("kpi.alerts.store", fromlist=["AlertRules"])
                  .AlertRules(rig.services.state(), "T0STANDIN").list())
    _, tested = rig.ask(f"alert test {rule_id}")
    assert "€100" in text_of(tested) and "$" not in text_of(tested)
    _, restated = rig.ask("goal add revenue 5000 by 2026-12-31")
    seen = text_of(restated)
    assert "€" in seen and "$" not in seen, seen


# -- (b) digests name owners, ping only a goal that just turned off track ------------------------------

TEAM = "T0STANDIN"


def _send_digest(rig, channel: str = "C0GROWTH"):
    from datetime import date, timedelta

    from bot.digests import DigestSender
    from bot.teams import TeamClients
    from kpi.state.store import Schedules

    from .test_engine import NOW

    schedule = Schedules(rig.services.state(), TEAM).add(channel, local_time="08:00", timezone="Europe/Paris",
                                                         days=("mon", "tue", "wed", "thu", "fri"), created_by="test")
    seen = len(rig.standin.messages)
    outcome = DigestSender(rig.services, TeamClients(rig.services, rig.slack),
                           clock=lambda: NOW + timedelta(minutes=1)).send(schedule, date(2026, 11, 24))
    assert outcome.status == "sent", outcome
    return next(m for m in rig.standin.messages[seen:] if m.kind == "message" and m.channel == channel)


def _add_goals(rig, texts):
    from datetime import date

    from kpi.goals import parse_goal
    from kpi.state.store import Goals

    engine = rig.services.kpi_engine()
    store = Goals(rig.services.state(), TEAM)
    return [store.add(parse_goal(t, engine.catalog, today=date(2026, 11, 24), tz=rig.services.settings.tz),
                      created_by="test") for t in texts]


def test_the_digest_names_owners_and_pings_only_a_goal_that_just_turned_off_track(rig):
    _add_goals(rig, ["orders 1000 from 2026-11-23 to 2026-12-07 owner @U0ALICE",  # off track since today
                     "orders 100000 from 2026-11-01 to 2026-12-31 owner @U0BRUNO",  # off track for weeks
                     "orders 1 from 2026-11-01 to 2026-12-31 owner @U0CARLA"])  # achieved
    seen = text_of(_send_digest(rig))
    assert "<@U0ALICE>" in seen  # the one status change to off track: its owner is told
    assert "<@U0BRUNO" not in seen and "<@U0CARLA" not in seen  # the others are named, not pinged
    assert "@U0BRUNO" in seen and "@U0CARLA" in seen


def test_digest_owner_names_come_from_the_names_given(rig):
    from datetime import date

    from bot.render.digest import digest_message
    from kpi.digests.compose import compose_digest
    from kpi.state.store import Goals

    _add_goals(rig, ["orders 100000 from 2026-11-01 to 2026-12-31 owner @U0BRUNO"])
    digest = compose_digest(rig.services.kpi_engine(), Goals(rig.services.state(), TEAM).list(), team_id=TEAM,
                            today=date(2026, 11, 24))
    seen = text_of(digest_message(digest, names={"U0BRUNO": "bruno"}))
    assert "@bruno" in seen and "<@U0BRUNO" not in seen
