"""The app end to end, as Slack drives it: signed HTTP requests to the running app, replies read back
from the local Slack stand-in. Runs on SQLite and PostgreSQL.

The shop is tests/test_engine.py's hand-computed one; "now" is 2026-11-24 15:30 Paris, so ``/kpi
conversion`` (last 7 days) is 4 orders / 200 sessions = 2.0%, against 2.0% the 7 days before.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, text

from bot.app import build_app, create_slack_tables, wsgi_app
from bot.config import SlackSettings
from bot.sandbox import (
    AppServer,
    LazyWork,
    SlackSide,
    Workspace,
    app_home_opened,
    block_action,
    slash_command,
)
from bot.standin import SlackStandIn
from kpi.data import schema
from kpi.data.schema import create_source_tables
from kpi.db import make_engine
from kpi.services import Services
from kpi.settings import Settings
from kpi.state.tables import upgrade

from .test_engine import CAMPAIGNS, CUSTOMERS, NOW, ORDERS, RETURNS, SPEND, TRAFFIC

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _fill(url: str) -> None:
    engine = make_engine(url)
    create_source_tables(engine)
    with engine.begin() as conn:
        for table, rows in [(schema.orders, ORDERS), (schema.customers, CUSTOMERS), (schema.traffic, TRAFFIC),
                            (schema.marketing_spend, SPEND), (schema.returns, RETURNS),
                            (schema.email_campaigns, CAMPAIGNS)]:
            conn.execute(insert(table), rows)
    engine.dispose()


class Rig:
    """The app on a loopback port, Slack's side to drive it, and the stand-in to read replies."""

    def __init__(self, url: str, *, multi: bool = False):
        upgrade(url)
        _fill(url)
        self.url = url
        self.services = Services(Settings(database_url=url, source_url=url, timezone="Europe/Paris",
                                          config_dir=CONFIG, currency="EUR"), clock=lambda: NOW)
        self.standin = SlackStandIn().start()
        if multi:  # several workspaces keep their tokens encrypted (bot/installations.py): a key is required
            os.environ.setdefault("KPIBOT_TOKEN_KEY", Fernet.generate_key().decode())
            self.slack = SlackSettings(signing_secret=SECRET, client_id="111.222", client_secret="standin-secret",
                                       api_url=self.standin.base_url, allowed_teams=("T0NEWSHOP",))
        else:
            self.slack = SlackSettings(signing_secret=SECRET, bot_token=self.standin.bot_token,
                                       api_url=self.standin.base_url)
        create_slack_tables(self.services, self.slack)
        self.app = build_app(self.services, self.slack)
        self.lazy = LazyWork(self.app)  # the work after each acknowledgement, waited for by close()
        self.server = AppServer(wsgi_app(self.services, self.slack, self.app)).start()
        self.side = SlackSide(self.server.url, SECRET)

    def ask(self, text: str, **kwargs):
        """Send ``/kpi text``; returns (HTTP reply, the message that came back through the response_url)."""
        url = self.standin.new_response_url(team_id=kwargs.get("ws", Workspace()).team_id,
                                            user_id=kwargs.get("user_id", "U0ALICE"),
                                            channel_id=kwargs.get("channel_id", "C0GENERAL"))
        seen = len(self.standin.messages)
        reply = self.side.command(text, response_url=url, **kwargs)
        assert reply.status == 200, reply.body
        self.standin.wait_for(lambda: any(m.kind == "response_url" for m in self.standin.messages[seen:]), timeout=20)
        return reply, next(m for m in self.standin.messages[seen:] if m.kind == "response_url")

    def close(self):
        # the answers' last work (a chart, its record) ends before Slack and the databases go: none is cut off
        # half-way with a connection still out of its pool
        self.lazy.wait_idle(60)
        self.server.stop()
        self.standin.stop()


def _text(message) -> str:
    """Everything a reader sees in a message: fallback text and every text in its blocks."""
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def test_kpi_conversion_answers_with_value_comparison_sample_and_chart(rig):
    reply, message = rig.ask("conversion")
    assert reply.seconds < 3
    assert message.response_type == "ephemeral"
    seen = _text(message)
    assert "Conversion rate" in seen and "2.0%" in seen
    assert "200" in seen  # the sessions behind the rate
    assert "▁" in seen or "█" in seen  # the numbers come first, with a text sparkline...
    rig.standin.wait_for(lambda: any(m.replace_original for m in rig.standin.messages), timeout=20)
    message = next(m for m in rig.standin.messages if m.replace_original)  # ...then the chart replaces it
    assert message.response_type == "ephemeral" and "2.0%" in _text(message)
    images = [b for b in message.blocks if b["type"] == "image"]
    assert len(images) == 1
    file_id = images[0]["slack_file"]["id"]
    chart = next(f for f in rig.standin.files if f["id"] == file_id)
    assert chart["content"][:8] == b"\x89PNG\r\n\x1a\n"
    assert chart["channel_id"].startswith("D")  # shared in the asker's DM only: the answer stays private
    share = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert share and share[0]["action_id"] == "kpi_share"


def test_breakdown_and_french_question(rig):
    _, message = rig.ask("aov 2026-11-17..2026-11-23 by channel")
    seen = _text(message)
    assert "email" in seen and "paid_search" in seen and "€125.00" in seen  # email: 250 over 2 orders
    _, fr = rig.ask("taux de retour cette semaine vs l'an dernier", user_id="U0BRUNO", user_name="bruno")
    assert "Taux de retour" in _text(fr)


def test_french_user_gets_french_help(rig):
    _, message = rig.ask("", user_id="U0BRUNO", user_name="bruno")
    assert "période" in _text(message) or "periode" in _text(message)
    _, en = rig.ask("help")
    assert "period" in _text(en)


def test_list_and_unknown_kpi_with_suggestions(rig):
    _, listing = rig.ask("list")
    assert "Customer acquisition cost" in _text(listing)
    _, unknown = rig.ask("convrsn last week")
    assert "conversion" in _text(unknown)
    assert "Traceback" not in _text(unknown)
    _, period = rig.ask("conversion since forever")
    assert "last 7 days" in _text(period)


def test_the_word_payload_in_a_command_or_a_channel_name_is_still_answered(rig):
    _, message = rig.ask("payload")  # Bolt alone would take this body for an interaction and answer 404
    assert "payload" in _text(message)
    _, in_payloads = rig.ask("conversion", channel_id="C0PAYLOADS", channel_name="payloads")
    assert "2.0%" in _text(in_payloads)


@pytest.mark.parametrize("forgery", ["bad signature", "stale", "no signature"])
def test_forged_and_stale_requests_are_rejected(rig, forgery):
    body = slash_command("conversion", response_url=rig.standin.new_response_url())
    if forgery == "bad signature":
        reply = rig.side.post(body, signature="v0=" + "0" * 64)
    elif forgery == "stale":
        reply = rig.side.post(body, timestamp=int(time.time()) - 301)
    else:
        reply = rig.side.post(body, signature="")
    assert reply.status == 401
    time.sleep(0.3)
    assert not [m for m in rig.standin.messages if m.kind == "response_url"]


def test_share_posts_the_answer_visibly_with_the_chart_in_its_thread(rig):
    _, answer = rig.ask("revenue")
    value = next(e for b in answer.blocks if b["type"] == "actions" for e in b["elements"])["value"]
    rig.standin.fail_next("chat.postMessage", status=429, retry_after=1)
    seen = len(rig.standin.messages)
    reply = rig.side.post(block_action("kpi_share", value, response_url=rig.standin.new_response_url()))
    assert reply.status == 200
    rig.standin.wait_for(lambda: any(m.kind == "message" and m.channel == "C0GENERAL" and m.thread_ts
                                     for m in rig.standin.messages[seen:]), timeout=20)
    posted = [m for m in rig.standin.messages[seen:] if m.kind == "message" and m.channel == "C0GENERAL" and not m.thread_ts]
    assert len(posted) == 1  # the 429 was retried once, not posted twice
    assert "€340.00" in _text(posted[0]) and "U0ALICE" in _text(posted[0])


def test_share_in_a_private_channel_the_bot_is_not_in_falls_back_to_the_response_url(rig):
    rig.standin.add_channel("G0SECRET", "secret", is_member=False, is_private=True)
    _, answer = rig.ask("orders")
    value = next(e for b in answer.blocks if b["type"] == "actions" for e in b["elements"])["value"]
    seen = len(rig.standin.messages)
    rig.side.post(block_action("kpi_share", value, response_url=rig.standin.new_response_url(channel_id="G0SECRET"),
                               channel_id="G0SECRET"))
    rig.standin.wait_for(lambda: any(m.kind == "response_url" for m in rig.standin.messages[seen:]), timeout=20)
    shared = next(m for m in rig.standin.messages[seen:] if m.kind == "response_url")
    assert shared.response_type == "in_channel"


def test_app_home_shows_the_headline_kpis(rig):
    reply = rig.side.post(app_home_opened("U0ALICE"), "application/json")
    assert reply.status == 200
    rig.standin.wait_for(lambda: (rig.standin.team_id, "U0ALICE") in rig.standin.home_views, timeout=20)
    view = json.dumps(rig.standin.home_views[(rig.standin.team_id, "U0ALICE")], ensure_ascii=False)
    for label in ("Revenue", "Conversion rate", "Return rate"):
        assert label in view
    assert "Visitors" in view and ("goal" in view.lower())  # the seeded goals, with their progress
    assert "kpi_onboarding_digest" in view  # first contact: the onboarding card, no rule nobody asked for
    from kpi.alerts.rules import parse_rule
    from kpi.alerts.store import AlertRules

    AlertRules(rig.services.state(), rig.standin.team_id).add(
        parse_rule("return rate above 8% over 7 days in #general", rig.services.catalog(), tz_name="Europe/Paris"))
    rig.side.post(app_home_opened("U0ALICE"), "application/json")
    rig.standin.wait_for(lambda: len(rig.standin.calls_to("views.publish")) >= 2, timeout=20)
    view = json.dumps(rig.standin.home_views[(rig.standin.team_id, "U0ALICE")], ensure_ascii=False)
    assert "8.0%" in view  # the team's alert rules, with their state


def test_a_failing_query_gets_an_apology_and_a_reference_the_log_carries(rig, caplog):
    rig.services.kpi_engine()  # built while the data is there...
    engine = make_engine(rig.url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE traffic"))  # ...then the source loses a table
    engine.dispose()
    with caplog.at_level(logging.ERROR, logger="kpibot.answer"):
        _, message = rig.ask("conversion")
    seen = _text(message)
    assert "Traceback" not in seen and "traffic" not in seen
    ref = next(r for r in caplog.records if "query failed" in r.getMessage()).getMessage().split("ref ")[1][:8]
    assert ref in seen


def test_acknowledged_at_once_while_the_database_is_locked(rig):
    engine = make_engine(rig.url)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        pytest.skip("SQLite in WAL mode never makes a reader wait: the lock test needs PostgreSQL")
    conn = engine.connect()
    conn.begin()
    conn.execute(text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
    try:
        url = rig.standin.new_response_url()
        reply = rig.side.command("revenue", response_url=url)
        assert reply.status == 200 and reply.seconds < 1.0  # well inside Slack's 3 s
        time.sleep(0.5)
        assert not [m for m in rig.standin.messages if m.kind == "response_url"]  # still waiting on the lock
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    rig.standin.wait_for(lambda: any(m.kind == "response_url" for m in rig.standin.messages), timeout=30)


def test_concurrent_commands_are_all_answered(rig):
    urls = [rig.standin.new_response_url() for _ in range(8)]
    replies = []

    def send(u):
        replies.append(rig.side.command("orders", response_url=u))

    threads = [threading.Thread(target=send, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 for r in replies)
    answers = lambda: [m for m in rig.standin.messages if m.kind == "response_url" and not m.replace_original]  # noqa: E731
    rig.standin.wait_for(lambda: len(answers()) == 8, timeout=30)
    rig.standin.wait_for(lambda: len([m for m in rig.standin.messages if m.replace_original]) == 8, timeout=30)


def test_healthz(rig):
    import urllib.request

    with urllib.request.urlopen(rig.server.url + "/healthz", timeout=5) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
        assert json.loads(resp.read()) == {"ok": True}


def test_oauth_install_then_a_command_from_the_new_workspace(database_url):
    import re
    import urllib.request

    rig = Rig(database_url, multi=True)
    try:
        with urllib.request.urlopen(rig.server.url + "/slack/install", timeout=5) as resp:  # noqa: S310 - loopback
            page = resp.read().decode()
            cookie = resp.headers["Set-Cookie"].split(";")[0]  # Secure: a browser on https sends it back
        assert "slack.com/oauth/v2/authorize" in page and "client_id=111.222" in page
        state = re.search(r"state=([\w-]+)", page).group(1)
        code = rig.standin.new_oauth_code("T0NEWSHOP", "New Shop", "xoxb-new-shop", "U0BOTNEW")
        callback = urllib.request.Request(f"{rig.server.url}/slack/oauth_redirect?code={code}&state={state}",
                                          headers={"Cookie": cookie})
        with urllib.request.urlopen(callback, timeout=5) as r:  # noqa: S310 - loopback
            assert r.status == 200
        engine = make_engine(database_url)
        with engine.connect() as conn:
            teams = [row[0] for row in conn.execute(text("SELECT team_id FROM slack_installations"))]
        engine.dispose()
        assert teams == ["T0NEWSHOP"]
        rig.standin.add_user("U0NEW", name="nora", team_id="T0NEWSHOP")
        rig.standin.add_channel("C1SALES", "sales", team_id="T0NEWSHOP")
        _, message = rig.ask("orders", ws=Workspace(team_id="T0NEWSHOP"), user_id="U0NEW", channel_id="C1SALES")
        assert "Orders" in _text(message)
        # a workspace that never installed the app is refused, not answered with someone else's token
        rig.standin.add_team("T0NOBODY", "xoxb-never-installed")
        rig.standin.add_channel("C2NOPE", "nope", team_id="T0NOBODY")
        body = slash_command("orders", response_url=rig.standin.new_response_url(team_id="T0NOBODY", channel_id="C2NOPE"),
                             ws=Workspace(team_id="T0NOBODY"), channel_id="C2NOPE")
        reply = rig.side.post(body)
        assert reply.status in (200, 401)
        time.sleep(0.3)
        assert not [m for m in rig.standin.messages if m.kind == "response_url" and "Orders" in m.text
                    and m.team_id == "T0NOBODY"]
    finally:
        rig.close()
