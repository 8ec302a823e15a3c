"""An alert's buttons follow the slash commands' permission rules (issue 14, item 8): anyone in the workspace
may acknowledge, only admins (and the listed users) may snooze, as ``/kpi alert mute`` is admin-only;
``config/access.yaml`` (``alert_buttons``) changes either. The clicker is checked in the workspace the
message was posted in: a payload naming a user or a team of another workspace changes nothing and is
refused. Values that cannot be read get a clear private reply, never silence or a traceback.
Signed HTTP to the running app, replies from the Slack stand-in; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from urllib.parse import parse_qs, urlencode

import pytest

from bot.sandbox import Workspace, block_action
from kpi.alerts.store import StateStore
from kpi.errors import KpiError

from . import test_slack_app
from .test_alerts_flow import T0, Clock, add_rule, notifier
from .test_slack_app import Rig

TEAM = "T0STANDIN"
WAIT = 60


def press(rig, action_id: str, value: str, *, user_id: str = "U0ALICE", ws: Workspace | None = None,
          user_team: str | None = None, channel_id: str = "C0GENERAL") -> str:
    """Click a button of the firing message; the private reply's text. ``user_team`` puts another team in
    the payload's ``user.team_id`` (a forged or foreign clicker)."""
    ws = ws or Workspace()
    url = rig.standin.new_response_url(team_id=ws.team_id, user_id=user_id, channel_id=channel_id,
                                       message_ts="1732521600.000100")
    body = block_action(action_id, value, response_url=url, user_id=user_id, ws=ws, block_id="alert_actions",
                        ephemeral=False, channel_id=channel_id)
    if user_team is not None:
        payload = json.loads(parse_qs(body)["payload"][0])
        payload["user"]["team_id"] = user_team
        body = urlencode({"payload": json.dumps(payload)})
    seen = len(rig.standin.messages)
    reply = rig.side.post(body)
    assert reply.status == 200, reply.body
    rig.standin.wait_for(lambda: [m for m in rig.standin.messages[seen:] if m.kind == "response_url"], timeout=WAIT)
    [answer] = [m for m in rig.standin.messages[seen:] if m.kind == "response_url"]
    text = (answer.text or "") + json.dumps(answer.blocks or [])
    assert "Traceback" not in text and answer.response_type in (None, "ephemeral")
    return text


def firing(rig):
    rule = add_rule(rig)
    notifier(rig, Clock(T0)).check()
    assert state(rig, rule).state == "firing"
    return rule


def state(rig, rule, team: str = TEAM):
    return StateStore(rig.services.state(), team).load(rule.id).state


def events(rig, rule, team: str = TEAM) -> list[str]:
    return [e["reason"] for e in StateStore(rig.services.state(), team).events(rule.id)]


@pytest.fixture
def configured(database_url, tmp_path, monkeypatch):
    """A Rig whose config/access.yaml says ``access`` (the shipped config otherwise)."""

    def make(access: str) -> Rig:
        config = tmp_path / "config"
        shutil.copytree(test_slack_app.CONFIG, config)
        (config / "access.yaml").write_text(access, encoding="utf-8")
        monkeypatch.setattr(test_slack_app, "CONFIG", config)
        made.append(Rig(database_url))
        return made[-1]

    made: list[Rig] = []
    yield make
    for r in made:
        r.close()


def test_anyone_may_acknowledge_only_admins_may_snooze_by_default(rig):
    rule = firing(rig)
    refused = press(rig, "alert_snooze_1h", f"{rule.id}:1", user_id="U0BRUNO")
    assert "admins" in refused or "administrateurs" in refused  # Bruno reads French
    refused = press(rig, "alert_snooze_tomorrow", f"{rule.id}:1", user_id="U0BRUNO")
    assert state(rig, rule).snoozed_until is None and "alert_snooze_1h" not in events(rig, rule)
    assert "Snoozed for an hour" in press(rig, "alert_snooze_1h", f"{rule.id}:1")  # Alice is an admin
    assert state(rig, rule).snoozed_until is not None
    press(rig, "alert_ack", f"{rule.id}:1", user_id="U0BRUNO")  # not an admin: acknowledging is for anyone
    assert state(rig, rule).acknowledged_by == "U0BRUNO"
    assert "email" in press(rig, "alert_explain", f"{rule.id}:1", user_id="U0GRETA")  # reading too


def test_access_yaml_changes_who_may_press_what(configured):
    rig = configured("alert_buttons:\n  acknowledge: admins\n  snooze: anyone\n")
    rule = firing(rig)
    refused = press(rig, "alert_ack", f"{rule.id}:1", user_id="U0GRETA")
    assert "Admins" in refused or "admin" in refused.lower()
    assert state(rig, rule).acknowledged_by is None
    press(rig, "alert_snooze_1h", f"{rule.id}:1", user_id="U0GRETA")
    assert state(rig, rule).snoozed_until is not None
    press(rig, "alert_ack", f"{rule.id}:1")
    assert state(rig, rule).acknowledged_by == "U0ALICE"


def test_listed_admins_may_snooze(configured):
    rig = configured("admins:\n  - U0BRUNO\n")
    rule = firing(rig)
    press(rig, "alert_snooze_1h", f"{rule.id}:1", user_id="U0BRUNO")
    assert state(rig, rule).snoozed_until is not None


@pytest.mark.parametrize("access", ["alert_buttons:\n  snooze: everyone\n", "alert_buttons:\n  mute: anyone\n"])
def test_a_wrong_access_yaml_stops_the_app_with_a_clear_message(configured, access):
    with pytest.raises(KpiError) as err:
        configured(access)
    assert "alert_buttons" in str(err.value) and "anyone" in str(err.value)


def test_a_user_of_another_workspace_changes_nothing(rig):
    rule = firing(rig)
    rig.standin.add_team("T0ELSE", "xoxb-else")
    rig.standin.add_user("U0EVE", name="eve", team_id="T0ELSE", is_admin=True)
    before = events(rig, rule)
    # the payload says who she is: a user of another workspace
    told = press(rig, "alert_ack", f"{rule.id}:1", user_id="U0EVE", user_team="T0ELSE")
    assert "workspace" in told
    # ... or claims she belongs here: this workspace's Slack does not know her
    told = press(rig, "alert_snooze_1h", f"{rule.id}:1", user_id="U0EVE", user_team=TEAM)
    assert "workspace" in told
    told = press(rig, "alert_ack", f"{rule.id}:1", user_id="U0EVE")
    assert "workspace" in told
    assert state(rig, rule).acknowledged_by is None and state(rig, rule).snoozed_until is None
    assert events(rig, rule) == before


def test_a_payload_naming_another_installed_workspace_changes_nothing(database_url):
    """Two installed workspaces: a click sent as the other workspace (its own admin) on this one's rule
    finds no such rule there, and changes nothing here."""
    from .test_tenancy import multi_rig, oauth_install

    rig = multi_rig(database_url, allowed=("T0NEWSHOP", "T0SECOND"))
    try:
        for team in ("T0NEWSHOP", "T0SECOND"):
            assert oauth_install(rig, team, f"xoxb-{team.lower()}")[0] == 200
        rig.standin.add_channel("C0GENERAL", "general", team_id="T0NEWSHOP")
        rig.standin.add_channel("C0SECOND", "general", team_id="T0SECOND")
        rig.standin.add_user("U0ALICE", name="alice", team_id="T0NEWSHOP", is_admin=True)
        rig.standin.add_user("U0SAM", name="sam", team_id="T0SECOND", is_admin=True)
        from kpi.alerts.rules import parse_rule
        from kpi.alerts.store import AlertRules

        spec = parse_rule("return rate above 8% over 7 days in #C0GENERAL", rig.services.catalog(), tz_name="Europe/Paris")
        rule = AlertRules(rig.services.state(), "T0NEWSHOP").add(spec, created_by="test")
        second = Workspace(team_id="T0SECOND", team_domain="second")
        told = press(rig, "alert_snooze_1h", f"{rule.id}:0", user_id="U0SAM", ws=second, channel_id="C0SECOND")
        assert "Snoozed" not in told
        told = press(rig, "alert_ack", f"{rule.id}:0", user_id="U0SAM", ws=Workspace(team_id="T0NEWSHOP"),
                     user_team="T0SECOND")
        assert "workspace" in told
        assert [e for e in events(rig, rule, "T0NEWSHOP") if e.startswith("alert_")] == []
    finally:
        rig.close()


@pytest.mark.parametrize("value", ["abc", "1:x", "", "1", "1:1:1", "-1:1", "99999999999999999999:1"])
def test_an_alert_button_value_that_cannot_be_read_gets_a_clear_reply(rig, value):
    rule = firing(rig)
    told = press(rig, "alert_ack", value)
    assert "could not be read" in told and "/kpi alert list" in told
    assert state(rig, rule).acknowledged_by is None


@pytest.mark.parametrize("action_id", ["kpi_share", "kpi_reask"])
@pytest.mark.parametrize("value", ["not json", "[1, 2]", '{"q": 3}', "{"])
def test_a_question_button_value_that_cannot_be_read_gets_a_clear_reply(rig, action_id, value):
    url = rig.standin.new_response_url()
    seen = len(rig.standin.messages)
    assert rig.side.post(block_action(action_id, value, response_url=url)).status == 200
    rig.standin.wait_for(lambda: [m for m in rig.standin.messages[seen:] if m.kind == "response_url"], timeout=WAIT)
    [reply] = [m for m in rig.standin.messages[seen:] if m.kind in ("response_url", "message")]
    assert reply.kind == "response_url" and "could not be read" in reply.text and "/kpi" in reply.text
    assert reply.response_type in (None, "ephemeral") and not reply.replace_original
