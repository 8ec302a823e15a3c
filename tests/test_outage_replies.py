"""Every command answers, even when the state database is down (issue 14, item 1): each slash command,
button and form submission made during a real outage of the state database gets exactly one reply, in the
user's language, saying what was not done, with a reference and no traceback; nothing is written.

The state database is its own database here (the shop's data stays up), and the outage is real:
- SQLite: the state file is moved away and a directory takes its place (a volume gone), and the open
  connections are closed as a restarted server would close them: every new connection fails;
- PostgreSQL: the state schema is renamed: every statement on a state table fails.
Signed HTTP to the running app; replies read from the Slack stand-in."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select, table, text

from bot.app import build_app, create_slack_tables, wsgi_app
from bot.config import SlackSettings
from bot.sandbox import AppServer, SlackSide, block_action
from bot.standin import SlackStandIn
from kpi.db import cached_engine, make_engine
from kpi.services import Services
from kpi.settings import Settings
from kpi.state.tables import upgrade

from .test_engine import NOW
from .test_slack_app import CONFIG, SECRET, _fill

TEAM = "T0STANDIN"
WAIT = 60  # generous: a loaded 2-core machine


class OutageRig:
    """The app with its state database apart from the shop's data, and a switch to take the state down."""

    def __init__(self, source_url: str, state_url: str, down, up):
        upgrade(state_url)
        _fill(source_url)
        self.state_url, self._down, self._up = state_url, down, up
        self.services = Services(Settings(database_url=state_url, source_url=source_url, timezone="Europe/Paris",
                                          config_dir=CONFIG, currency="EUR"), clock=lambda: NOW)
        self.standin = SlackStandIn().start()
        self.slack = SlackSettings(signing_secret=SECRET, bot_token=self.standin.bot_token, api_url=self.standin.base_url)
        create_slack_tables(self.services, self.slack)
        self.server = AppServer(wsgi_app(self.services, self.slack, build_app(self.services, self.slack))).start()
        self.side = SlackSide(self.server.url, SECRET)
        self.channels = 0

    def channel(self) -> str:
        """A channel of its own for each request: its replies are counted apart."""
        self.channels += 1
        cid = f"C0OUT{self.channels:03d}"
        self.standin.add_channel(cid, f"out{self.channels}")
        return cid

    def replies(self, channel: str) -> list:
        return [m for m in self.standin.messages if m.kind == "response_url" and m.channel == channel]

    def command(self, words: str, user_id: str = "U0ALICE") -> str:
        channel = self.channel()
        reply = self.side.command(words, response_url=self.standin.new_response_url(channel_id=channel, user_id=user_id),
                                  user_id=user_id, user_name=user_id.lower(), channel_id=channel, channel_name="out")
        assert reply.status == 200, reply.body
        return channel

    def button(self, action_id: str, value: str, user_id: str = "U0ALICE") -> str:
        channel = self.channel()
        url = self.standin.new_response_url(channel_id=channel, user_id=user_id, message_ts="1732521600.000100")
        reply = self.side.post(block_action(action_id, value, response_url=url, user_id=user_id, channel_id=channel,
                                            block_id="alert_actions", ephemeral=False))
        assert reply.status == 200, reply.body
        return channel

    def counts(self) -> dict[str, int]:
        engine = make_engine(self.state_url)
        with engine.connect() as conn:
            out = {t: conn.execute(select(func.count()).select_from(table(t))).scalar()
                   for t in ("teams", "goals", "alert_rules", "alert_states", "alert_events", "digest_schedules",
                             "form_submissions")}
        engine.dispose()
        return out

    def down(self) -> None:
        self._down()

    def up(self) -> None:
        self._up()

    def close(self) -> None:
        self.server.stop()
        self.standin.stop()


@pytest.fixture
def outage(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        state_file = tmp_path / "state.db"
        state_url = f"sqlite:///{state_file}"
        away = tmp_path / "away"

        def down():
            cached_engine(state_url).dispose()  # the open connections closed, as by a server restart
            away.mkdir()
            for f in tmp_path.glob("state.db*"):
                shutil.move(str(f), away / f.name)
            state_file.mkdir()  # where the database was: nothing SQLite can open

        def up():
            state_file.rmdir()
            for f in away.iterdir():
                shutil.move(str(f), tmp_path / f.name)
            away.rmdir()

        rig = OutageRig(database_url, state_url, down, up)
        yield rig
        rig.close()
        return
    from .conftest import _pg_url

    schema = f"s_{uuid.uuid4().hex[:12]}"
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in _pg_url() else "?"
    state_url = f"{_pg_url()}{sep}options={quote(f'-csearch_path={schema}')}"

    def rename(old, new):
        with admin.begin() as conn:
            conn.execute(text(f'ALTER SCHEMA "{old}" RENAME TO "{new}"'))

    rig = OutageRig(database_url, state_url, lambda: rename(schema, schema + "_away"),
                    lambda: rename(schema + "_away", schema))
    yield rig
    rig.close()
    from kpi.db import dispose_cached_engines

    dispose_cached_engines()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}_away" CASCADE'))
    admin.dispose()


def seen(message) -> str:
    return (message.text or "") + "\n" + json.dumps(message.blocks or [], ensure_ascii=False)


def assert_told(message, *words: str) -> None:
    body = seen(message)
    for word in words:
        assert word in body, (word, body)
    assert "ref " in body or "réf" in body  # a reference the log carries with the details
    for leak in ("Traceback", "OperationalError", "ProgrammingError", "sqlite", "postgresql", "File \""):
        assert leak not in body, (leak, body)


def goal_submission(view: dict) -> str:
    values = {"metric": {"value": {"type": "static_select", "selected_option": {"value": "revenue"}}},
              "target": {"value": {"type": "plain_text_input", "value": "5000"}},
              "start": {"value": {"type": "datepicker", "selected_date": "2026-11-24"}},
              "deadline": {"value": {"type": "datepicker", "selected_date": "2026-12-31"}}}
    payload = {"type": "view_submission", "team": {"id": TEAM, "domain": "demo-shop"},
               "user": {"id": "U0ALICE", "team_id": TEAM}, "api_app_id": "A0KPIBOT", "token": "x",
               "trigger_id": "1.2.3", "is_enterprise_install": False, "enterprise": None,
               "view": {**view, "id": "V0OUTAGE", "team_id": TEAM, "state": {"values": values}, "hash": "h",
                        "app_id": "A0KPIBOT", "bot_id": "B0"}}
    return urlencode({"payload": json.dumps(payload)})


def test_every_command_button_and_form_gets_one_reply_saying_what_was_not_done(outage):
    rig = outage
    # before: the team seeded, a rule (firing or not, its buttons reach the database), the goal form opened
    seeded = rig.command("goal list")
    rig.standin.wait_for(lambda: rig.replies(seeded), timeout=WAIT)
    added = rig.command("alert add conversion below 1.5% over 3 days min 100 sessions in #general")
    rig.standin.wait_for(lambda: rig.replies(added), timeout=WAIT)
    assert rig.counts()["alert_rules"] == 1
    rig.side.command("goal add", response_url=rig.standin.new_response_url(), trigger_id=rig.standin.new_trigger_id())
    rig.standin.wait_for(lambda: rig.standin.opened_views, timeout=WAIT)
    view = rig.standin.opened_views[-1]
    view = view.get("view", view)
    before = rig.counts()

    rig.down()
    try:
        asked = {
            "goal add": (rig.command("goal add revenue +10% by 2026-12-31"), ("goal was not saved",)),
            "goal add (French)": (rig.command("objectif ajouter revenue +10% by 2026-12-31", user_id="U0BRUNO"),
                                  ("Désolé",)),  # in French (what was not done: once locale/ has it)
            "goal list": (rig.command("goal list"), ("Nothing could be read",)),
            "alert list": (rig.command("alert list"), ("Nothing could be read",)),
            "alert mute": (rig.command("alert mute 1 2h"), ("Nothing was saved or changed",)),
            "digest add": (rig.command("digest add #general 08:00"), ("Nothing was saved or changed",)),
            "acknowledge": (rig.button("alert_ack", "1:1"), ("alert was not acknowledged",)),
            "snooze": (rig.button("alert_snooze_1h", "1:1"), ("alert was not snoozed",)),
            "explain": (rig.button("alert_explain", "1:1"), ("Nothing could be read",)),
        }
        seen_dms = len([m for m in rig.standin.messages if m.channel.startswith("D")])
        form = rig.side.post(goal_submission(view))
        assert form.status == 200 and json.loads(form.body)["response_action"] == "update"  # "working on it"
        for channel, _ in asked.values():
            rig.standin.wait_for(lambda c=channel: rig.replies(c), timeout=WAIT)
        # the form's view id is unknown to the stand-in: the news comes in a DM, the form's text with it
        rig.standin.wait_for(lambda: len([m for m in rig.standin.messages if m.channel.startswith("D")]) > seen_dms,
                             timeout=WAIT)
    finally:
        rig.up()
    # a last command, answered with the database back: every earlier reply is in by then
    last = rig.command("goal list")
    rig.standin.wait_for(lambda: rig.replies(last), timeout=WAIT)
    assert "Nothing could be read" not in seen(rig.replies(last)[0])

    for what, (channel, words) in asked.items():
        replies = rig.replies(channel)
        assert len(replies) == 1, (what, [seen(m) for m in replies])
        assert replies[0].response_type == "ephemeral", what
        assert_told(replies[0], *words)
    [dm] = [m for m in rig.standin.messages if m.channel.startswith("D")][seen_dms:]
    assert_told(dm, "could not be saved right now")
    assert rig.counts() == before  # nothing written, nothing half-saved


def test_goal_add_after_the_outage_saves_it(outage):
    """The apology said "try again": once the database is back, the same command saves the goal."""
    rig = outage
    seeded = rig.command("goal list")
    rig.standin.wait_for(lambda: rig.replies(seeded), timeout=WAIT)
    goals = rig.counts()["goals"]
    rig.down()
    try:
        failed = rig.command("goal add revenue 5000 by 2026-12-31")
        rig.standin.wait_for(lambda: rig.replies(failed), timeout=WAIT)
    finally:
        rig.up()
    assert rig.counts()["goals"] == goals
    again = rig.command("goal add revenue 5000 by 2026-12-31")
    rig.standin.wait_for(lambda: rig.replies(again), timeout=WAIT)
    assert "ref " not in seen(rig.replies(again)[0])
    assert rig.counts()["goals"] == goals + 1


def test_the_log_carries_the_reference_with_the_details(outage, caplog):
    rig = outage
    seeded = rig.command("goal list")
    rig.standin.wait_for(lambda: rig.replies(seeded), timeout=WAIT)
    rig.down()
    try:
        channel = rig.command("alert list")
        rig.standin.wait_for(lambda: rig.replies(channel), timeout=WAIT)
    finally:
        rig.up()
    body = seen(rig.replies(channel)[0])
    import re

    ref = re.search(r"ref ([0-9a-f]{8})", body)[1]
    logged = [r for r in caplog.records if ref in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the details: the exception, in the log only


@pytest.fixture(autouse=True)
def _no_leftover(tmp_path):
    yield
    assert not (Path(tmp_path) / "away").exists()


def test_the_form_sent_again_after_the_outage_saves_the_goal(outage):
    rig = outage
    rig.side.command("goal add", response_url=rig.standin.new_response_url(), trigger_id=rig.standin.new_trigger_id())
    rig.standin.wait_for(lambda: rig.standin.opened_views, timeout=WAIT)
    view = rig.standin.opened_views[-1]
    view = view.get("view", view)
    seeded = rig.command("goal list")  # the team's example goals, seeded before the reply
    rig.standin.wait_for(lambda: rig.replies(seeded), timeout=WAIT)
    goals = rig.counts()["goals"]
    dms = len([m for m in rig.standin.messages if m.channel.startswith("D")])
    rig.down()
    try:
        rig.side.post(goal_submission(view))
        rig.standin.wait_for(lambda: len([m for m in rig.standin.messages if m.channel.startswith("D")]) > dms,
                             timeout=WAIT)
    finally:
        rig.up()
    assert rig.counts()["goals"] == goals and rig.counts()["form_submissions"] == 0  # no claim left behind
    rig.side.post(goal_submission(view))
    rig.standin.wait_for(lambda: rig.counts()["goals"] == goals + 1, timeout=WAIT)


def test_a_form_sent_back_after_a_failure_is_a_new_submission():
    """A claim the failed save could not release must not make the same form, sent again, a duplicate."""
    from bot.listeners.views import submission_key

    values = {"state": {"values": {"target": {"value": {"value": "5000"}}}}, "id": "V1"}
    first = {**values, "private_metadata": json.dumps({"lang": "fr"})}
    again = {**values, "private_metadata": json.dumps({"lang": "fr", "attempt": "3f9c2a1b"})}
    assert submission_key(first) == submission_key(dict(first))  # a double click: one key
    assert submission_key(again) != submission_key(first)
