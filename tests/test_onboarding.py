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
