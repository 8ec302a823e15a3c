"""The Slack layer in German: the help, an answer, the goal list and the alert rule list read in German
words with German numbers and dates (Babel's de_DE), and the German command words are understood.
Results are built by hand, as in tests/test_blocks.py; the last test drives the app as Slack does."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.answer import EXAMPLES, Asked, answer
from bot.blocks import help_message, kpi_answer
from bot.manage import ALERT_WORDS, DIGEST_WORDS, GOAL_WORDS, parse_duration
from bot.render.alerts import alert_message, rules_list_message
from bot.render.goals import goal_list_message
from bot.render.text import DEFAULT_EXAMPLES, colon
from kpi.metrics.engine import Value
from tests.test_alert_render import (
    FIRED,
    NOW,
    RETURN_RATE,
    AlertState,
    firing,
    resolved_state,
    return_rate,
    rule,
)
from tests.test_blocks import CATALOG, all_text, assert_message_ok, make_result, row
from tests.test_digest import _line

GERMAN_EXAMPLES = ["Konversionsrate", "Umsatz letzten Monat vs Vorjahr", "Bestellwert diesen Monat nach Kanal",
                   "Retourenquote diese Woche", "Bestellungen gestern Kanal=email"]


def seen(message) -> str:
    """The fallback text and every text of the blocks, Babel's (narrow) no-break spaces as spaces."""
    return (message.text + "\n" + all_text(message.blocks)).replace("\u202f", " ").replace("\xa0", " ")


def test_german_examples_are_questions_in_german():
    assert DEFAULT_EXAMPLES["de"] == GERMAN_EXAMPLES and EXAMPLES["de"] == GERMAN_EXAMPLES


def test_help_in_german():
    msg = help_message(lang="de")
    assert_message_ok(msg)
    text = seen(msg)
    assert "Beispiele" in text and "Zeitraum" in text
    for example in GERMAN_EXAMPLES:
        assert f"`/kpi {example}`" in text
    asked = answer(None, "hilfe", Asked("T1", "U1", "C1", lang="de")).message  # "hilfe" needs no database
    assert "`/kpi Retourenquote diese Woche`" in seen(asked) and "Beispiele" in seen(asked)


def test_answer_in_german():
    rows = [row("email", "revenue", 1234.5, 1000, 0.45), row("social", "revenue", 800, 900, 0.3)]
    result = make_result("revenue", "mtd", current=Value(1234.5), previous=Value(1000), breakdown_by="channel",
                         breakdown=rows, filters=(("device", ("mobile",)),), series=[300.0 + 20 * i for i in range(24)])
    msg = kpi_answer(result, lang="de", currency="EUR", share_value="{}")
    assert_message_ok(msg)
    text = seen(msg)
    assert msg.blocks[0]["text"]["text"] == "Umsatz"
    assert "*1.234,50 €*" in text and "1.000,00 €" in text and "+23,5 %" in text  # 23.45% rounded half up
    assert "Vorperiode" in text and "Nach Kanal" in text and "Anteil" in text and "45,0 %" in text
    assert "Filter: Gerät = mobile" in text
    assert "24.11.2026 06:00 CET" in text  # the data's time, in German order
    assert "Monat bis heute" in text


def test_goal_list_in_german():
    lines = [_line("revenue", 1, "at_risk", 0.55), _line("orders", 2, "on_track", 0.8)]
    msg = goal_list_message([(x.goal, x.metric, x.progress) for x in lines], lang="de", currency="EUR")
    assert_message_ok(msg)
    text = seen(msg)
    assert msg.blocks[0]["text"]["text"] == "Ziele (2)"
    assert "*Umsatz*" in text and "*Bestellungen*" in text and "Kanal = channel-1" in text
    assert "gefährdet" in text and "im Plan" in text
    assert "Zielwert 1.100,00 €" in text and "55 %" in text and "noch 6 Tage" in text
    assert "Noch kein Ziel" in goal_list_message([], lang="de").text


def test_alert_rule_list_in_german():
    snooze = datetime(2026, 11, 25, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    items = [
        (1, rule(), RETURN_RATE, AlertState(state="ok")),
        (2, rule(filters=(("channel", ("email",)),)), RETURN_RATE,
         firing(acknowledged_by="U0ACK", snoozed_until=snooze)),
        (3, rule(metric="revenue", condition="change_below", threshold=-0.2, clear_threshold=None, min_sample=0),
         CATALOG.metrics["revenue"], None),
    ]
    msg = rules_list_message(items, lang="de", now=NOW)
    assert_message_ok(msg)
    text = seen(msg)
    assert msg.blocks[0]["text"]["text"] == "Alarmregeln (3)"
    assert "*#2 Retourenquote* über 8,0 %" in text and "unter 7,0 %" in text and "500 Bestellungen" in text
    assert "Kanal = email" in text and "25. Nov., 09:00 CET" in text  # a German date
    assert "*#3 Umsatz* Veränderung unter −20,0 %" in text and "noch nicht ausgewertet" in text


def test_alert_thread_in_german_keeps_the_capital_of_a_kpi_name():
    resolved = alert_message(3, rule(), RETURN_RATE, resolved_state(), return_rate(0.065), kind="resolve", lang="de",
                             now=FIRED + timedelta(hours=3), fired_at=FIRED)
    assert "Retourenquote" in seen(resolved) and "6,5 %" in seen(resolved)  # German nouns keep their capital
    fired = alert_message(3, rule(), RETURN_RATE, firing(), return_rate(), kind="fire", lang="de", now=FIRED)
    assert_message_ok(fired)
    assert "9,1 %" in seen(fired) and "Schwellenwert 8,0 %" in seen(fired) and "Letzte 7 Tage" in seen(fired)


def test_german_typography_and_words():
    assert colon("de") == ": " and colon("fr") == "\u00a0: " and colon("en") == ": "  # French: no-break space
    assert {"ziel", "ziele"} <= set(GOAL_WORDS) and {"alarm", "alarme"} <= set(ALERT_WORDS)
    assert {"bericht", "zusammenfassung"} <= set(DIGEST_WORDS)
    assert parse_duration("2 Tage") == timedelta(days=2) and parse_duration("4 Std") == timedelta(hours=4)
    assert parse_duration("30 Minuten") == timedelta(minutes=30)


def test_a_german_user_manages_in_german_words(rig):
    """greta's Slack locale is de-DE: the German command words work and the replies are German."""
    greta = dict(user_id="U0GRETA", user_name="greta")
    _, goals = rig.ask("ziele liste", **greta)
    assert goals.blocks[0]["text"]["text"].startswith("Ziele (")
    _, rules = rig.ask("alarme", **greta)
    assert rules.blocks[0]["text"]["text"].startswith("Alarmregeln")
    _, unknown = rig.ask("ziel quatsch", **greta)
    assert "„quatsch“" in seen(unknown) and "/kpi goal add|list|show|archive" in seen(unknown)
    _, which = rig.ask("ziel anzeigen", **greta)
    assert "/kpi goal show 3" in seen(which) and "Which one" not in seen(which)
