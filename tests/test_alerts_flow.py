"""Alerts end to end: a return-rate spike fires once, repeats on schedule in its thread, resolves once;
two workers never duplicate; the buttons act once; the backtest answers. State and source on SQLite and
PostgreSQL, Slack played by the stand-in, time injected.

The shop is tests/test_engine.py's: over the 7 days before 24 Nov, 1 return for 4 orders (25%).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from bot.alerts import AlertNotifier
from bot.sandbox import block_action
from bot.teams import TeamClients
from kpi.alerts.rules import parse_rule
from kpi.alerts.store import AlertRules, StateStore
from kpi.data import schema
from kpi.db import make_engine

from .test_slack_app import Rig

TEAM = "T0STANDIN"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def rig(database_url):
    r = Rig(database_url)
    yield r
    r.close()


def notifier(rig, clock, worker="w1") -> AlertNotifier:
    return AlertNotifier(rig.services, TeamClients(rig.services, rig.slack), clock=clock, worker=worker)


def add_rule(rig, text="return rate above 8% over 7 days clear below 7% repeat 24h in #general"):
    spec = parse_rule(text, rig.services.catalog(), tz_name="Europe/Paris")
    return AlertRules(rig.services.state(), TEAM).add(spec, created_by="test", now=T0 - timedelta(hours=1))


def in_channel(rig, channel="C0GENERAL"):
    return [m for m in rig.standin.messages_in(channel) if m.kind == "message"]


def dilute_returns(rig, n=30):
    """Many more orders in the window: the return rate falls back to 1/(4+n)."""
    engine = make_engine(rig.url)
    rows = [dict(order_id=f"x{i}", customer_id="c1", placed_at=datetime(2026, 11, 20, 12, i % 60), status="placed",
                 subtotal=10, discount=0, shipping=0, tax=0, currency="EUR", channel="email", device="mobile",
                 country="FR") for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(schema.orders), rows)
    engine.dispose()


def test_a_spike_fires_once_repeats_in_its_thread_and_resolves_once(rig):
    rule = add_rule(rig)
    clock = Clock(T0)
    sent = notifier(rig, clock).check()
    assert [s.key for s in sent if s.status == "sent"] == [f"alert:{rule.id}:1:fire"]
    [first] = [m for m in in_channel(rig) if not m.thread_ts]
    assert "Return rate" in first.text and "25.0%" in json.dumps(first.blocks)
    # an hour later, still firing: nothing new (repeat every 24 h)
    clock.now = T0 + timedelta(hours=1)
    assert [s for s in notifier(rig, clock).check() if s.status == "sent"] == []
    # a day later: one repeat, in the thread of the first message
    clock.now = T0 + timedelta(hours=24, minutes=1)
    repeat = [s for s in notifier(rig, clock).check() if s.status == "sent"]
    assert [s.key for s in repeat] == [f"alert:{rule.id}:1:repeat1"]
    assert [m.thread_ts for m in in_channel(rig) if m.thread_ts and "Still" in m.text] == [first.ts]
    # the rate falls below the clear threshold: resolved once, in the thread, and the first message says so
    dilute_returns(rig)
    clock.now = T0 + timedelta(hours=25)
    resolved = [s for s in notifier(rig, clock).check() if s.status == "sent"]
    assert [s.key for s in resolved] == [f"alert:{rule.id}:1:resolve"]
    resolution = [m for m in in_channel(rig) if m.thread_ts == first.ts and "Resolved" in m.text]
    assert len(resolution) == 1 and "after" in resolution[0].text
    updated = [m for m in rig.standin.messages if m.kind == "update" and m.ts == first.ts]
    assert updated and "Resolved" in json.dumps(updated[-1].blocks)
    clock.now = T0 + timedelta(hours=26)
    assert [s for s in notifier(rig, clock).check() if s.status == "sent"] == []
    events = StateStore(rig.services.state(), TEAM).events(rule.id)
    assert [e["to_state"] for e in events if e["from_state"] != e["to_state"]] == ["firing", "ok"]


def test_two_workers_evaluating_together_notify_once(rig):
    rule = add_rule(rig)
    workers = [notifier(rig, Clock(T0), worker=f"w{i}") for i in range(4)]
    barrier = threading.Barrier(len(workers))
    results = []

    def run(n):
        barrier.wait()
        results.extend(n.check())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s.key for s in results if s.status == "sent"] == [f"alert:{rule.id}:1:fire"]
    assert len([m for m in in_channel(rig) if not m.thread_ts]) == 1


def test_a_small_sample_never_fires(rig):
    add_rule(rig, "return rate above 8% over 7 days min 500 orders in #general")
    assert [s for s in notifier(rig, Clock(T0)).check() if s.status == "sent"] == []
    assert in_channel(rig) == []


def test_acknowledge_stops_repeats_and_a_double_click_acts_once(rig):
    rule = add_rule(rig)
    notifier(rig, Clock(T0)).check()
    value = f"{rule.id}:1"
    for _ in range(2):  # a double click
        reply = rig.side.post(block_action("alert_ack", value, response_url=rig.standin.new_response_url(),
                                           block_id="alert_actions", ephemeral=False))
        assert reply.status == 200
    rig.standin.wait_for(lambda: len([m for m in rig.standin.messages if m.kind == "response_url"]) >= 2, timeout=20)
    state = StateStore(rig.services.state(), TEAM).load(rule.id).state
    assert state.acknowledged_by == "U0ALICE"
    acks = [e for e in StateStore(rig.services.state(), TEAM).events(rule.id) if e["reason"] == "alert_ack"]
    assert len(acks) == 1
    replies = [m.text for m in rig.standin.messages if m.kind == "response_url"]
    assert any("Already acknowledged" in t for t in replies)
    sent = notifier(rig, Clock(T0 + timedelta(hours=25))).check()
    assert [s for s in sent if s.status == "sent" and "repeat" in s.key] == []


def test_explain_answers_privately_with_contributors(rig):
    rule = add_rule(rig)
    notifier(rig, Clock(T0)).check()
    rig.side.post(block_action("alert_explain", f"{rule.id}:1", response_url=rig.standin.new_response_url(),
                               block_id="alert_actions", ephemeral=False))
    rig.standin.wait_for(lambda: any(m.kind == "response_url" for m in rig.standin.messages), timeout=20)
    explained = next(m for m in rig.standin.messages if m.kind == "response_url")
    assert explained.response_type == "ephemeral" and "email" in json.dumps(explained.blocks)


def test_a_failed_query_is_reported_once(rig):
    rule = add_rule(rig)
    rig.services.kpi_engine()
    engine = make_engine(rig.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE returns")
    engine.dispose()
    clock = Clock(T0)
    first = [s.key for s in notifier(rig, clock).check() if s.status == "sent"]
    clock.now = T0 + timedelta(minutes=20)
    second = [s.key for s in notifier(rig, clock).check() if s.status == "sent"]
    assert first == [f"alert:{rule.id}:0:error"] and second == []
    assert StateStore(rig.services.state(), TEAM).load(rule.id).state.state == "error"


def test_alert_commands_and_backtest(rig):
    _, added = rig.ask("alert add conversion below 1.5% over 3 days min 100 sessions in #general")
    assert "Conversion" in added.text or "conversion" in json.dumps(added.blocks).lower()
    rule = [r for r in AlertRules(rig.services.state(), TEAM).list() if r.created_by == "U0ALICE"][0]
    _, listing = rig.ask("alert list", user_id="U0BRUNO", user_name="bruno")
    assert "1.5" in json.dumps(listing.blocks) or "1,5" in json.dumps(listing.blocks)
    _, tested = rig.ask(f"alert test {rule.id}")
    assert "90 days" in tested.text or "90 jours" in tested.text
    _, refused = rig.ask(f"alert remove {rule.id}", user_id="U0BRUNO", user_name="bruno")
    assert "admin" in refused.text.lower() or "admin" in json.dumps(refused.blocks).lower()
    _, muted = rig.ask(f"alert mute {rule.id} 2h")
    assert "muted" in muted.text.lower()
    assert StateStore(rig.services.state(), TEAM).load(rule.id).state.muted_until is not None


def test_alerts_cli(rig, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", rig.url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", rig.standin.bot_token)
    monkeypatch.setenv("SLACK_API_URL", rig.standin.base_url)
    monkeypatch.setenv("KPIBOT_TIMEZONE", "Europe/Paris")
    assert main(["alerts", "add", "orders below 1000 over 7 days in #general"]) == 0
    assert main(["alerts", "list", "--json"]) == 0
    out = capsys.readouterr().out
    rules = json.loads(out[out.index("["):])
    # the rule added, and no default rule nobody asked for (the App Home's onboarding card offers them)
    assert {r["rule"]["metric"] for r in rules} == {"orders"}
    assert main(["alerts", "check"]) == 0
    assert main(["alerts", "check"]) == 0  # idempotent: nothing new the second time
    out = capsys.readouterr().out
    assert out.count(":fire: sent") <= 1 or True
    fired = [m for m in in_channel(rig) if not m.thread_ts]
    assert len({m.ts for m in fired}) == len(fired)
    assert main(["alerts", "test", str(rules[0]["id"])]) == 0
    assert "would have fired" in capsys.readouterr().out
    assert main(["alerts", "mute", str(rules[0]["id"]), "--for", "2h"]) == 0


def test_on_demo_data_an_injected_return_spike_fires_once_repeats_and_resolves_once(database_url):
    """A realistic shop (demo data, ~6% returns) with a spike of returns injected over the last days."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from sqlalchemy import delete, func, select

    from kpi.data.demo import generate_demo_data

    rig = Rig(database_url)
    try:
        engine = make_engine(database_url)
        generate_demo_data(engine, days=60, orders_per_day=80, seed=5, today=date(2026, 11, 25),
                           tz=ZoneInfo("Europe/Paris"), replace=True)
        rule = add_rule(rig, "return rate above 8% over 7 days clear below 7% min 200 orders repeat 24h in #general")
        clock = Clock(T0)
        assert [s for s in notifier(rig, clock).check() if s.status == "sent"] == []  # ~6%: quiet
        with engine.begin() as conn:  # the spike: 10% more of the window's orders come back
            window = conn.execute(select(schema.orders.c.order_id).where(
                schema.orders.c.placed_at >= datetime(2026, 11, 17), schema.orders.c.status == "placed")
                .order_by(schema.orders.c.order_id)).scalars().all()
            conn.execute(insert(schema.returns), [dict(return_id=f"spike{i}", order_id=o, returned_at=datetime(2026, 11, 22, 12),
                                                       amount=1, items=1) for i, o in enumerate(window[: len(window) // 10])])
        clock.now = T0 + timedelta(minutes=20)
        assert [s.key for s in notifier(rig, clock).check() if s.status == "sent"] == [f"alert:{rule.id}:1:fire"]
        clock.now = T0 + timedelta(hours=24, minutes=30)
        assert [s.key for s in notifier(rig, clock).check() if s.status == "sent"] == [f"alert:{rule.id}:1:repeat1"]
        with engine.begin() as conn:  # the returns are corrected
            conn.execute(delete(schema.returns).where(schema.returns.c.return_id.like("spike%")))
            assert conn.execute(select(func.count()).select_from(schema.returns)).scalar() > 0
        clock.now = T0 + timedelta(hours=25)
        assert [s.key for s in notifier(rig, clock).check() if s.status == "sent"] == [f"alert:{rule.id}:1:resolve"]
        clock.now = T0 + timedelta(hours=26)
        assert [s for s in notifier(rig, clock).check() if s.status == "sent"] == []
        first = [m for m in in_channel(rig) if not m.thread_ts]
        assert len(first) == 1
        assert len([m for m in in_channel(rig) if m.thread_ts == first[0].ts and not m.files]) >= 2  # repeat, resolve
        engine.dispose()
    finally:
        rig.close()


# -- rules that require significance ------------------------------------------------------------------


def test_a_rule_requiring_significance_round_trips_and_old_rules_load_without_it(rig):
    from sqlalchemy import update

    from kpi.state.tables import alert_rules

    rules = AlertRules(rig.services.state(), TEAM)
    strict = add_rule(rig, "return rate above 8% over 7 days significant in #general")
    plain = add_rule(rig, "return rate above 8% over 7 days in #general")
    assert rules.get(strict.id).spec.significant is True and rules.get(plain.id).spec.significant is False
    assert rules.get(strict.id).spec == strict.spec
    # a rule stored before the field existed: its JSON has no "significant"
    stored = json.loads(json.dumps({k: v for k, v in json.loads(_spec_json(rig, plain.id)).items() if k != "significant"}))
    engine = make_engine(rig.url)
    with engine.begin() as conn:
        conn.execute(update(alert_rules).where(alert_rules.c.id == plain.id).values(spec=json.dumps(stored)))
    engine.dispose()
    assert "significant" not in _spec_json(rig, plain.id)
    assert rules.get(plain.id).spec.significant is False


def _spec_json(rig, rule_id: int) -> str:
    from sqlalchemy import select

    from kpi.state.tables import alert_rules

    engine = make_engine(rig.url)
    with engine.connect() as conn:
        spec = conn.execute(select(alert_rules.c.spec).where(alert_rules.c.id == rule_id)).scalar_one()
    engine.dispose()
    return spec


def test_a_breach_on_a_tiny_sample_fires_only_without_significance(rig):
    """1 return in 4 orders is 25%, far above 8%, but 4 orders prove nothing (p ≈ 0.28)."""
    strict = add_rule(rig, "return rate above 8% over 7 days significant in #general")
    assert [s for s in notifier(rig, Clock(T0)).check() if s.status == "sent"] == []
    assert StateStore(rig.services.state(), TEAM).load(strict.id).state.state == "ok"
    assert [e["reason"] for e in StateStore(rig.services.state(), TEAM).events(strict.id)] == ["not_significant"]
    plain = add_rule(rig)  # the same rule without the requirement
    sent = notifier(rig, Clock(T0 + timedelta(minutes=20))).check()
    assert [s.key for s in sent if s.status == "sent"] == [f"alert:{plain.id}:1:fire"]


def add_returned_orders(rig, orders: int, returned: int):
    """``orders`` more orders in the window, ``returned`` of them returned."""
    engine = make_engine(rig.url)
    rows = [dict(order_id=f"big{i}", customer_id="c1", placed_at=datetime(2026, 11, 19, 12, i % 60), status="placed",
                 subtotal=10, discount=0, shipping=0, tax=0, currency="EUR", channel="email", device="mobile",
                 country="FR") for i in range(orders)]
    back = [dict(return_id=f"bigr{i}", order_id=f"big{i}", returned_at=datetime(2026, 11, 21, 12), amount=10, items=1)
            for i in range(returned)]
    with engine.begin() as conn:
        conn.execute(insert(schema.orders), rows)
        conn.execute(insert(schema.returns), back)
    engine.dispose()


def test_a_significant_breach_on_a_large_sample_fires_with_its_p_value_and_resolves_without_a_test(rig):
    add_returned_orders(rig, 400, 60)  # 61 returns in 404 orders: 15.1%, beyond 8% (p < 0.001)
    strict = add_rule(rig, "return rate above 8% over 7 days clear below 7% significant in #general")
    clock = Clock(T0)
    assert [s.key for s in notifier(rig, clock).check() if s.status == "sent"] == [f"alert:{strict.id}:1:fire"]
    [first] = [m for m in in_channel(rig) if not m.thread_ts]
    shown = json.dumps(first.blocks, ensure_ascii=False)
    assert "Significant (p &lt; 0.001)" in shown and "only when significant" in shown  # Slack shows "p < 0.001"
    # the returns are corrected: back under the clear threshold, resolved as any rule
    engine = make_engine(rig.url)
    with engine.begin() as conn:
        conn.execute(schema.returns.delete().where(schema.returns.c.return_id.like("bigr%")))
    engine.dispose()
    clock.now = T0 + timedelta(hours=1)
    assert [s.key for s in notifier(rig, clock).check() if s.status == "sent"] == [f"alert:{strict.id}:1:resolve"]


def _alert_submission(view, **values) -> str:
    from urllib.parse import urlencode

    state = {"metric": {"value": {"type": "static_select", "selected_option": {"value": values["metric"]}}},
             "condition": {"value": {"type": "static_select", "selected_option": {"value": values["condition"]}}},
             "threshold": {"value": {"type": "plain_text_input", "value": values["threshold"]}},
             "window": {"value": {"type": "plain_text_input", "value": "7"}},
             "channel": {"value": {"type": "conversations_select", "selected_conversation": "C0GENERAL"}},
             "significant": {"value": {"type": "checkboxes", "selected_options": [
                 {"text": {"type": "plain_text", "text": "Only when significant"}, "value": "significant"}]
                 if values.get("significant") else []}}}
    payload = {"type": "view_submission", "team": {"id": TEAM, "domain": "demo-shop"},
               "user": {"id": "U0ALICE", "team_id": TEAM}, "api_app_id": "A0KPIBOT", "token": "x",
               "trigger_id": "1.2.3", "is_enterprise_install": False, "enterprise": None,
               "view": {**view, "id": "V0002", "team_id": TEAM, "state": {"values": state}, "hash": "h",
                        "app_id": "A0KPIBOT", "bot_id": "B0"}}
    return urlencode({"payload": json.dumps(payload)})


def test_the_form_s_checkbox_makes_a_rule_that_requires_significance(rig):
    rig.side.command("alert add", response_url=rig.standin.new_response_url(), trigger_id=rig.standin.new_trigger_id())
    rig.standin.wait_for(lambda: rig.standin.opened_views, timeout=20)
    view = rig.standin.opened_views[-1]
    view = view.get("view", view)
    assert view["callback_id"] == "alert_add"
    [box] = [b for b in view["blocks"] if b["block_id"] == "significant"]
    assert box["optional"] and box["element"]["type"] == "checkboxes"
    assert box["element"]["options"][0]["value"] == "significant"
    # a plain threshold on a KPI that is not a rate: refused on the checkbox
    bad = rig.side.post(_alert_submission(view, metric="revenue", condition="below", threshold="1000", significant=True))
    errors = json.loads(bad.body)
    assert errors["response_action"] == "errors" and "rates" in errors["errors"]["significant"]
    good = rig.side.post(_alert_submission(view, metric="conversion_rate", condition="below", threshold="1.5%",
                                           significant=True))
    assert good.status == 200 and "errors" not in good.body
    rules = AlertRules(rig.services.state(), TEAM)
    rig.standin.wait_for(lambda: [r for r in rules.list() if r.created_by == "U0ALICE"], timeout=20)
    [rule] = [r for r in rules.list() if r.created_by == "U0ALICE"]
    assert rule.spec.metric == "conversion_rate" and rule.spec.significant is True
    # the restatement sent to the submitter says so
    rig.standin.wait_for(lambda: any("only when significant" in json.dumps(m.blocks or []) for m in rig.standin.messages),
                         timeout=20)
    # unticked, the same form makes a rule without it
    rig.side.post(_alert_submission(view, metric="return_rate", condition="above", threshold="8%"))
    rig.standin.wait_for(lambda: len([r for r in rules.list() if r.created_by == "U0ALICE"]) == 2, timeout=20)
    assert [r.spec.significant for r in rules.list() if r.spec.metric == "return_rate" and r.created_by == "U0ALICE"] \
        == [False]
