"""Questions as people type them, end to end: through signed Slack requests (the answer says how it read the
question), and through `kpibot ask` (the reading in the output and in --json). Values of dimensions come from
the data: a value the shop does not have is refused with the ones it has, never answered 0.

The shop is tests/test_engine.py's: channels email, paid_search, social, direct; devices mobile, desktop;
countries FR, US, DE.
"""

from __future__ import annotations

import json

import pytest

from bot.sandbox import block_action
from kpi.cli import main

from .test_cli import env, shop  # noqa: F401 - fixtures
from .test_slack_app import _text as _raw_text


def _text(message) -> str:
    """What a reader sees, Babel's thin and no-break spaces read as spaces."""
    return _raw_text(message).replace("\u2009", " ").replace("\u202f", " ").replace("\xa0", " ")


def test_the_answer_says_how_it_read_the_question(rig):
    _, message = rig.ask("how are we doing on conversion on mobile?")
    text = _text(message)
    assert "Read as: Conversion rate · last 7 days · device = mobile · vs previous period" in text
    assert "last 7 days (Nov 17 – 23)" in text  # the answer gives the dates
    _, fr = rig.ask("taux de conversion en France", user_id="U0BRUNO", user_name="bruno")
    assert "Compris : Taux de conversion · 7 derniers jours" in _text(fr) and "pays = FR" in _text(fr)


def test_a_value_the_data_does_not_hold_is_refused_with_the_known_ones(rig):
    _, message = rig.ask("conversion channel=tiktok")
    text = _text(message)
    assert "No channel 'tiktok' in the data" in text
    assert "direct, email, paid_search, social" in text
    assert "0.0%" not in text and "€0.00" not in text
    _, fr = rig.ask("chiffre d'affaires via tiktok", user_id="U0BRUNO", user_name="bruno")
    assert "Je ne connais pas « tiktok »" in _text(fr)


def test_slack_escaping_is_read_once_at_the_entry(rig):
    """Slack sends a typed & as &amp; (the stand-in escapes as Slack does): 'revenue & orders' asks for both."""
    _, message = rig.ask("revenue & orders yesterday")
    text = _text(message)
    assert "Revenue & Orders · yesterday" in text or "Revenue &amp; Orders · yesterday" in text
    headers = [b["text"]["text"] for b in message.blocks if b["type"] == "header"]
    assert headers == ["Revenue", "Orders"]


def test_a_ranked_breakdown_lists_the_best_first(rig):
    _, message = rig.ask("which channel converts best last week")
    text = _text(message)
    assert "best channel first" in text
    assert "*By channel*" in text


@pytest.mark.parametrize("question, expect", [
    ("how are we doing on conversion?", "Conversion rate, last 7 days"),
    ("what's our AOV this month compared to last month", "Average order value, this month"),
    ("top countries by revenue", "by country:"),
    ("quel est le taux d'abandon de panier cette semaine", "Cart abandonment rate, this week"),
    ("revenue this week vs last week", "Revenue, this week"),
    ("today vs yesterday orders", "Orders, today"),
    ("conversion on mobile", "[device=mobile]"),
    ("revenue in france", "[country=FR]"),
    ("average basket size this week", "Average order value, this week"),
    ("Revenue?", "Revenue, last 7 days"),
    ("revenue country=france", "[country=FR]"),
])
def test_the_issue_examples_answer_in_the_cli(shop, capsys, question, expect):  # noqa: F811 - fixture
    assert main(["ask", question]) == 0
    out = capsys.readouterr().out
    assert expect in out
    assert "read as: " in out


def test_the_cli_refuses_tiktok_naming_the_known_channels(shop, capsys):  # noqa: F811 - fixture
    assert main(["ask", "conversion channel=tiktok"]) == 2
    err = capsys.readouterr().err
    assert "No channel 'tiktok' in the data. Known: direct, email, paid_search, social." in err
    assert main(["--lang", "de", "ask", "Umsatz in Narnia"]) == 2
    assert "„Narnia“ kenne ich nicht" in capsys.readouterr().err


def test_json_carries_the_reading(shop, capsys):  # noqa: F811 - fixture
    assert main(["ask", "revenue and orders on mobile yesterday", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reading"]["metrics"] == ["revenue", "orders"]
    assert data["reading"]["period"] == "yesterday" and data["reading"]["filters"] == {"device": ["mobile"]}
    assert data["reading"]["text"].startswith("Revenue & Orders · yesterday")
    assert [a["metric"]["key"] for a in data["also"]] == ["orders"]


def test_a_close_second_reading_is_offered_as_a_button_and_answers_when_clicked(rig):
    """'last week' is answered as the calendar week; 'the last 7 days' is offered, and clicking it answers that."""
    _, message = rig.ask("orders last week")
    assert "Read as: Orders · last week" in _text(message)
    buttons = {e["action_id"]: e for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    assert buttons["kpi_reask"]["text"]["text"] == "Did you mean: orders last 7 days?"
    seen = len(rig.standin.messages)
    url = rig.standin.new_response_url()
    reply = rig.side.post(block_action("kpi_reask", buttons["kpi_reask"]["value"], response_url=url))
    assert reply.status == 200
    rig.standin.wait_for(lambda: any(m.kind == "response_url" for m in rig.standin.messages[seen:]), timeout=20)
    again = next(m for m in rig.standin.messages[seen:] if m.kind == "response_url")
    assert "Read as: Orders · last 7 days" in _text(again)
    assert again.replace_original
    _, plain = rig.ask("orders yesterday")  # nothing close to offer
    assert "kpi_reask" not in json.dumps(plain.blocks)
