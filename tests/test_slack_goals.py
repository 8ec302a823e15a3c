"""``/kpi goal`` and ``/kpi digest`` in Slack, signed over HTTP: who may change what, the SMART answer,
the modal and its field errors, and workspaces kept apart."""

from __future__ import annotations

import json
import time

import pytest

from bot.sandbox import Workspace, slash_command
from kpi.state.store import Goals, Schedules

from .test_slack_app import Rig


@pytest.fixture
def rig(database_url):
    r = Rig(database_url)
    yield r
    r.close()


def text_of(message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def test_an_admin_adds_a_smart_goal_and_everyone_reads_it(rig):
    _, reply = rig.ask("goal add revenue 5000 by 2026-12-31 owner <@U0ALICE|alice> <#C0GROWTH|growth>")
    seen = text_of(reply)
    assert "Error" not in seen and "Traceback" not in seen
    for word in ("Specific", "Measurable", "Achievable", "Time-bound"):
        assert word in seen or word.lower() in seen.lower()
    goals = Goals(rig.services.state(), "T0STANDIN").list()
    added = [g for g in goals if g.created_by == "U0ALICE"]
    assert len(added) == 1 and added[0].owner == "U0ALICE" and added[0].channel == "C0GROWTH"
    _, listing = rig.ask("goal list", user_id="U0BRUNO", user_name="bruno")  # not an admin: may read
    assert "revenue" in text_of(listing).lower() or "chiffre" in text_of(listing).lower()
    _, shown = rig.ask(f"goal show {added[0].id}")
    assert str(added[0].id) in text_of(shown)


def test_defaults_are_seeded_once_from_config(rig):
    rig.ask("goal list")
    goals = Goals(rig.services.state(), "T0STANDIN").list()
    assert {g.created_by for g in goals} == {"config"} and len(goals) == 3
    # no digest nobody asked for: the App Home's onboarding card offers it (tests/test_onboarding.py)
    assert Schedules(rig.services.state(), "T0STANDIN").list() == []
    Goals(rig.services.state(), "T0STANDIN").archive(goals[0].id)
    rig.ask("goal list")
    assert len(Goals(rig.services.state(), "T0STANDIN").list()) == 2


def test_a_non_admin_cannot_change_goals(rig):
    _, reply = rig.ask("goal add revenue +10% by 2026-12-31", user_id="U0BRUNO", user_name="bruno")
    assert "admin" in text_of(reply).lower()
    assert not [g for g in Goals(rig.services.state(), "T0STANDIN").list() if g.created_by == "U0BRUNO"]
    goal = Goals(rig.services.state(), "T0STANDIN").list()[0]
    rig.ask(f"goal archive {goal.id}", user_id="U0BRUNO", user_name="bruno")
    assert Goals(rig.services.state(), "T0STANDIN").get(goal.id).archived_at is None


def test_bad_goals_get_a_clear_answer(rig):
    for text, words in [("goal add revnue +10% by 2026-12-31", "revenue"),
                        ("goal add revenue +10% by 2020-01-01", "past"),
                        ("goal add revenue by 2026-12-31", "target")]:
        _, reply = rig.ask(text)
        seen = text_of(reply).lower()
        assert words in seen and "traceback" not in seen


def test_another_workspace_cannot_see_or_archive_our_goal(rig):
    rig.ask("goal list")
    ours = Goals(rig.services.state(), "T0STANDIN").list()[0]
    rig.standin.add_team("T0OTHER", "xoxb-other")
    rig.standin.add_user("U0OTTO", name="otto", team_id="T0OTHER", is_admin=True)
    rig.standin.add_channel("C9OTHER", "other", team_id="T0OTHER")
    other = dict(ws=Workspace(team_id="T0OTHER"), user_id="U0OTTO", channel_id="C9OTHER")
    # single-workspace mode answers only its own team's requests with its token; state is per team anyway
    for text in (f"goal show {ours.id}", f"goal archive {ours.id}"):
        url = rig.standin.new_response_url(team_id="T0OTHER", channel_id="C9OTHER", user_id="U0OTTO")
        rig.side.post(slash_command(text, response_url=url, **other))
    time.sleep(1.0)
    leaked = [m for m in rig.standin.messages if m.team_id == "T0OTHER" and ours.text and ours.text in text_of(m)]
    assert leaked == []
    assert Goals(rig.services.state(), "T0STANDIN").get(ours.id).archived_at is None


def test_goal_add_alone_opens_the_modal_and_a_bad_field_is_flagged(rig):
    url = rig.standin.new_response_url()
    rig.side.command("goal add", response_url=url, trigger_id=rig.standin.new_trigger_id())
    rig.standin.wait_for(lambda: rig.standin.opened_views, timeout=20)
    view = rig.standin.opened_views[-1]
    view = view.get("view", view)
    assert view["callback_id"] == "goal_add"
    assert {b["block_id"] for b in view["blocks"]} >= {"metric", "target", "deadline", "owner", "channel", "watch"}
    from bot.sandbox import signed_headers  # noqa: F401 - the submission is signed like any request

    def submission(target: str, deadline: str) -> str:
        from urllib.parse import urlencode

        values = {"metric": {"value": {"type": "static_select", "selected_option": {"value": "revenue"}}},
                  "target": {"value": {"type": "plain_text_input", "value": target}},
                  "start": {"value": {"type": "datepicker", "selected_date": "2026-11-24"}},
                  "deadline": {"value": {"type": "datepicker", "selected_date": deadline}}}
        payload = {"type": "view_submission", "team": {"id": "T0STANDIN", "domain": "demo-shop"},
                   "user": {"id": "U0ALICE", "team_id": "T0STANDIN"}, "api_app_id": "A0KPIBOT",
                   "token": "x", "trigger_id": "1.2.3", "is_enterprise_install": False, "enterprise": None,
                   "view": {**view, "id": "V0001", "team_id": "T0STANDIN", "state": {"values": values},
                            "hash": "h", "app_id": "A0KPIBOT", "bot_id": "B0"}}
        return urlencode({"payload": json.dumps(payload)})

    bad = rig.side.post(submission("+10%", "2020-01-01"))
    assert bad.status == 200
    errors = json.loads(bad.body)
    assert errors["response_action"] == "errors" and "deadline" in errors["errors"]
    # revenue has no baseline a year back here: known from the data only, so after the acknowledgement,
    # and told to the submitter (this hand-made view id is unknown to Slack: in a DM)
    seen = len(rig.standin.messages)
    no_history = rig.side.post(submission("+10%", "2026-12-31"))
    assert json.loads(no_history.body)["response_action"] == "update"
    rig.standin.wait_for(lambda: [m for m in rig.standin.messages[seen:] if m.channel.startswith("D")], timeout=20)
    assert not [g for g in Goals(rig.services.state(), "T0STANDIN").list() if g.created_by == "U0ALICE"]
    good = rig.side.post(submission("5000", "2026-12-31"))
    assert good.status == 200 and (good.body in ("", "{}") or "errors" not in good.body)
    rig.standin.wait_for(lambda: [g for g in Goals(rig.services.state(), "T0STANDIN").list() if g.created_by == "U0ALICE"],
                         timeout=20)


def test_digest_commands(rig):
    _, added = rig.ask("digest add <#C0GROWTH|growth> 08:30 mon-fri Europe/Paris")
    assert "08:30" in text_of(added)
    _, listing = rig.ask("digest list")
    assert "08:30" in text_of(listing) and "C0GROWTH" in text_of(listing)
    _, preview = rig.ask("digest preview")
    assert len(preview.blocks) <= 50
    schedule = [s for s in Schedules(rig.services.state(), "T0STANDIN").list() if s.channel == "C0GROWTH"][0]
    _, refused = rig.ask(f"digest remove {schedule.id}", user_id="U0BRUNO", user_name="bruno")
    assert "admin" in text_of(refused).lower()
    _, removed = rig.ask(f"digest remove {schedule.id}")
    assert str(schedule.id) in text_of(removed)
