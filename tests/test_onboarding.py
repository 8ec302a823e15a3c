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


def _send_digest(rig, channel: str = "C0GROWTH", days=("mon", "tue", "wed", "thu", "fri")):
    from datetime import date, timedelta

    from bot.digests import DigestSender
    from bot.teams import TeamClients
    from kpi.state.store import Schedules

    from .test_engine import NOW

    schedule = Schedules(rig.services.state(), TEAM).add(channel, local_time="08:00", timezone="Europe/Paris",
                                                         days=days, created_by="test")
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
    assert "@bruno" in seen  # by the name Slack gives (users.info), as plain text
    assert "@U0CARLA" in seen  # someone Slack does not know keeps the id the goal was set with


@pytest.mark.parametrize("days, pinged", [(("mon", "tue", "wed", "thu", "fri"), False), (("tue",), True)])
def test_turned_off_track_is_against_the_schedules_previous_digest(rig, days, pinged):
    """Off track since Monday 23 (it started on the 18th): a weekday digest told it on Monday, so Tuesday's
    only names its owner; a Tuesdays-only digest last ran on the 17th, before the goal existed, so
    Tuesday's is the first to tell it and pings the owner."""
    _add_goals(rig, ["orders 1000 from 2026-11-18 to 2026-12-02 owner @U0ALICE"])
    seen = text_of(_send_digest(rig, days=days))
    assert ("<@U0ALICE>" in seen) is pinged
    assert ("@alice" in seen) is not pinged  # otherwise named, not pinged


def test_previous_run_of_a_schedule():
    from datetime import date

    from bot.digests import previous_run
    from kpi.state.store import Schedule

    def schedule(days):
        return Schedule(id=1, team_id=TEAM, channel="C0GROWTH", timezone="Europe/Paris", days=days)

    monday = date(2026, 11, 30)
    assert previous_run(schedule(("mon", "tue", "wed", "thu", "fri")), monday) == date(2026, 11, 27)  # Friday
    assert previous_run(schedule(("mon", "tue", "wed", "thu", "fri", "sat", "sun")), monday) == date(2026, 11, 29)
    assert previous_run(schedule(("mon",)), monday) == date(2026, 11, 23)


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


# -- (a) first contact: an onboarding card in the App Home, nothing posted, nothing scheduled ---------


def _home(rig, user="U0ALICE", *, after: int = 0) -> dict:
    """The Home view published for ``user`` once more than ``after`` views.publish calls were made."""
    rig.standin.wait_for(lambda: len(rig.standin.calls_to("views.publish")) > after, timeout=20)
    rig.standin.wait_for(lambda: (rig.standin.team_id, user) in rig.standin.home_views, timeout=20)
    return rig.standin.home_views[(rig.standin.team_id, user)]


def _select_channel(rig, channel: str, user="U0ALICE"):
    from urllib.parse import parse_qs, urlencode

    from bot.sandbox import block_action

    body = block_action("kpi_onboarding_digest", "", response_url=rig.standin.new_response_url(), user_id=user)
    payload = json.loads(parse_qs(body)["payload"][0])
    payload["container"] = {"type": "view", "view_id": "V0HOME"}
    payload["view"] = {"id": "V0HOME", "type": "home"}
    payload["actions"] = [{"action_id": "kpi_onboarding_digest", "block_id": "onboarding", "type": "conversations_select",
                           "selected_conversation": channel, "action_ts": "1732521600.000200"}]
    return rig.side.post(urlencode({"payload": json.dumps(payload)}))


def _click_alerts(rig, user="U0ALICE"):
    from bot.sandbox import block_action

    return rig.side.post(block_action("kpi_onboarding_alerts", "default", response_url=rig.standin.new_response_url(),
                                      user_id=user))


def _schedules_and_rules(rig):
    from kpi.alerts.store import AlertRules
    from kpi.state.store import Schedules

    return Schedules(rig.services.state(), TEAM).list(), AlertRules(rig.services.state(), TEAM).list()


def test_first_home_visit_posts_and_schedules_nothing_and_shows_the_onboarding_card(rig):
    import time

    from bot.sandbox import app_home_opened

    assert rig.side.post(app_home_opened("U0ALICE"), "application/json").status == 200
    view = json.dumps(_home(rig), ensure_ascii=False)
    assert "conversations_select" in view and "kpi_onboarding_digest" in view and "kpi_onboarding_alerts" in view
    time.sleep(0.5)
    assert not [m for m in rig.standin.messages if m.kind == "message"]  # nothing posted into #general
    assert not rig.standin.calls_to("chat.postMessage")
    schedules, rules = _schedules_and_rules(rig)
    assert schedules == [] and rules == []  # nothing scheduled, no rule nobody asked for


def test_picking_a_channel_creates_one_digest_there_and_the_alert_button_the_default_rules(rig):
    from bot.sandbox import app_home_opened

    rig.side.post(app_home_opened("U0ALICE"), "application/json")
    _home(rig)
    published = len(rig.standin.calls_to("views.publish"))
    assert _select_channel(rig, "C0GROWTH").status == 200
    view = json.dumps(_home(rig, after=published), ensure_ascii=False)
    schedules, _ = _schedules_and_rules(rig)
    assert [s.channel for s in schedules] == ["C0GROWTH"] and schedules[0].days == ("mon", "tue", "wed", "thu", "fri")
    assert "kpi_onboarding_digest" not in view and "C0GROWTH" in view  # the Home updated: the picker is done
    published = len(rig.standin.calls_to("views.publish"))
    _select_channel(rig, "C0OTHER")  # a second pick (a double click, a stale Home) adds nothing
    _home(rig, after=published)
    assert [s.channel for s in _schedules_and_rules(rig)[0]] == ["C0GROWTH"]

    published = len(rig.standin.calls_to("views.publish"))
    assert _click_alerts(rig).status == 200
    view = json.dumps(_home(rig, after=published), ensure_ascii=False)
    _, rules = _schedules_and_rules(rig)
    assert len(rules) == 2 and {r.spec.channel for r in rules} == {"C0GROWTH"}  # in the digest's channel
    assert "kpi_onboarding_alerts" not in view
    published = len(rig.standin.calls_to("views.publish"))
    _click_alerts(rig)
    _home(rig, after=published)
    assert len(_schedules_and_rules(rig)[1]) == 2  # idempotent
    assert not [m for m in rig.standin.messages if m.kind == "message"]


def test_a_non_admin_cannot_set_up_the_digest(rig):
    from bot.sandbox import app_home_opened

    rig.side.post(app_home_opened("U0BRUNO"), "application/json")
    _home(rig, "U0BRUNO")
    published = len(rig.standin.calls_to("views.publish"))
    _select_channel(rig, "C0GROWTH", user="U0BRUNO")
    view = json.dumps(_home(rig, "U0BRUNO", after=published), ensure_ascii=False)
    # bruno reads French: the refusal names who may set it up, in his language
    assert "administrateurs" in view and _schedules_and_rules(rig)[0] == []


def test_a_team_seeded_before_keeps_its_digest_and_rules_and_sees_no_card(rig):
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from bot.sandbox import app_home_opened
    from kpi.state.store import Schedules
    from kpi.state.tables import teams

    with rig.services.state().begin() as conn:  # seeded by an earlier version: a digest in #general
        conn.execute(insert(teams).values(team_id=TEAM, seeded_at=datetime.now(UTC).replace(tzinfo=None)))
    Schedules(rig.services.state(), TEAM).add("#general", local_time="08:00", timezone="Europe/Paris",
                                               created_by="config")
    from kpi.seed import enable_default_alerts

    enable_default_alerts(rig.services.state(), TEAM, config_dir=rig.services.settings.config_dir,
                          catalog=rig.services.catalog(), shop_tz="Europe/Paris")
    rig.side.post(app_home_opened("U0ALICE"), "application/json")
    view = json.dumps(_home(rig), ensure_ascii=False)
    assert "kpi_onboarding" not in view
    schedules, rules = _schedules_and_rules(rig)
    assert [s.channel for s in schedules] == ["#general"] and len(rules) == 2


# -- (c) every goal reachable: the digest offers the complete list, the Home and the list page through ---

GOAL_ID = r"#(\d+) \*"


def _goal_ids(blocks) -> set[int]:
    import re

    texts = [b["text"]["text"] for b in blocks if b.get("type") == "section" and b.get("text")]
    return {int(x) for t in texts for x in re.findall(GOAL_ID, t)}


def _pager(blocks) -> list[str]:
    return [e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id") == "kpi_goals_page"]


def _click_page(rig, value: str, *, ephemeral: bool, home: bool = False):
    from urllib.parse import parse_qs, urlencode

    from bot.sandbox import block_action

    url = rig.standin.new_response_url()
    body = block_action("kpi_goals_page", value, response_url=url, ephemeral=ephemeral)
    if home:
        payload = json.loads(parse_qs(body)["payload"][0])
        payload["container"] = {"type": "view", "view_id": "V0HOME"}
        payload["view"] = {"id": "V0HOME", "type": "home"}
        body = urlencode({"payload": json.dumps(payload)})
    seen = len(rig.standin.messages)
    published = len(rig.standin.calls_to("views.publish"))
    assert rig.side.post(body).status == 200
    if home:
        return _home(rig, after=published)["blocks"]
    rig.standin.wait_for(lambda: any(m.kind == "response_url" for m in rig.standin.messages[seen:]), timeout=20)
    return next(m for m in rig.standin.messages[seen:] if m.kind == "response_url").blocks


def test_with_63_goals_every_goal_is_reachable_from_the_digest_and_the_home(rig):
    from bot.sandbox import app_home_opened

    added = _add_goals(rig, [f"orders {100 + i} from 2026-11-01 to 2026-12-31" for i in range(63)])
    everyone = {g.id for g in added}
    digest = _send_digest(rig)
    assert _pager(digest.blocks) == ["0"]  # the digest shows 20 and offers the complete list
    seen, value = set(), "0"
    for _ in range(10):
        blocks = _click_page(rig, value, ephemeral=False if value == "0" and not seen else True)
        seen |= _goal_ids(blocks)
        forward = [v for v in _pager(blocks) if int(v) > int(value)]
        if not forward:
            break
        value = forward[0]
    assert seen == everyone

    rig.side.post(app_home_opened("U0ALICE"), "application/json")
    blocks = _home(rig)["blocks"]
    seen = _goal_ids(blocks)
    for _ in range(10):
        forward = [v for v in _pager(blocks) if v != "0"]
        if not forward:
            break
        blocks = _click_page(rig, forward[-1], ephemeral=False, home=True)
        seen |= _goal_ids(blocks)
    from kpi.state.store import Goals

    everyone = {g.id for g in Goals(rig.services.state(), TEAM).list()}  # the first visit seeded 3 examples
    assert len(everyone) == 66 and seen == everyone


# -- (e) `kpibot socket`: 'connected' only once connected; a bad token is named ------------------------


@pytest.fixture
def socket_env(rig, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", rig.url)
    monkeypatch.setenv("KPI_SOURCE_URL", rig.url)
    monkeypatch.setenv("SLACK_API_URL", rig.standin.base_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", rig.standin.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A0KPI-1-0123456789abcdef")
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _socket(capsys) -> tuple[int, str]:
    from bot.cli import main

    code = main(["socket"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_socket_with_a_bad_bot_token_exits_non_zero_and_names_the_token(socket_env, capsys):
    socket_env.setenv("SLACK_BOT_TOKEN", "xoxb-0000-revoked")
    code, out = _socket(capsys)
    assert code != 0
    assert "SLACK_BOT_TOKEN" in out and "invalid_auth" in out
    assert "connected" not in out and "unexpected error" not in out


def test_socket_with_a_bot_token_as_app_token_names_the_app_token(socket_env, capsys):
    socket_env.setenv("SLACK_APP_TOKEN", "xoxb-not-an-app-token")
    code, out = _socket(capsys)
    assert code != 0 and "SLACK_APP_TOKEN" in out and "xapp-" in out and "connected" not in out


def test_socket_says_connected_only_once_connected(socket_env, capsys):
    # the stand-in has no Socket Mode: apps.connections.open fails, and nothing may claim a connection
    code, out = _socket(capsys)
    assert code != 0 and "connected to Slack" not in out and "unexpected error" not in out
    assert "Socket Mode" in out
