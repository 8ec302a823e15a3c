"""Alert messages (bot.render.alerts): each kind's content in English and French, the buttons, and Slack's
limits for big breakdowns and long rule lists. Results are built by hand, as in tests/test_blocks.py."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.render.alerts import (
    alert_message,
    backtest_message,
    condition_words,
    duration_words,
    explain_message,
    mention_ref,
    rules_list_message,
)
from kpi.metrics.engine import OTHER, Value
from tests.test_blocks import CATALOG, all_text, assert_message_ok, make_result, row

try:
    from kpi.alerts import AlertState, RuleSpec
except ImportError:  # kpi.alerts not written yet: stand-ins with the same fields
    @dataclasses.dataclass(frozen=True)
    class RuleSpec:  # type: ignore[no-redef]
        metric: str
        condition: str
        threshold: float
        clear_threshold: float | None = None
        window_days: int = 7
        min_sample: int = 0
        consecutive: int = 1
        interval_minutes: int = 15
        repeat_minutes: int = 1440
        channel: str | None = None
        mention: str | None = None
        quiet_start: str | None = None
        quiet_end: str | None = None
        timezone: str = "UTC"
        filters: tuple = ()
        text: str = ""

    @dataclasses.dataclass(frozen=True)
    class AlertState:  # type: ignore[no-redef]
        state: str = "ok"
        since: datetime | None = None
        breaches: int = 0
        episode: int = 0
        fired_at: datetime | None = None
        last_notified_at: datetime | None = None
        repeats: int = 0
        acknowledged_by: str | None = None
        snoozed_until: datetime | None = None
        muted_until: datetime | None = None
        held: tuple = ()
        last_value: float | None = None
        last_sample: float | None = None
        last_error: str | None = None


PARIS = ZoneInfo("Europe/Paris")
FIRED = datetime(2026, 11, 24, 14, 0, tzinfo=PARIS)
NOW = FIRED + timedelta(hours=2, minutes=15)
RETURN_RATE = CATALOG.metrics["return_rate"]
REVENUE = CATALOG.metrics["revenue"]


def rule(**kw) -> RuleSpec:
    base = dict(metric="return_rate", condition="above", threshold=0.08, clear_threshold=0.07, window_days=7,
                min_sample=500, consecutive=2, interval_minutes=15, repeat_minutes=1440, channel="C0ALERTS",
                mention="<@U0OWNER>", quiet_start=None, quiet_end=None, timezone="Europe/Paris", filters=(),
                text="")
    base.update(kw)
    return RuleSpec(**base)


def firing(**kw) -> AlertState:
    base = dict(state="firing", since=FIRED, breaches=2, episode=4, fired_at=FIRED, last_notified_at=FIRED,
                repeats=0, acknowledged_by=None, snoozed_until=None, muted_until=None, held=(),
                last_value=0.091, last_sample=1234, last_error=None)
    base.update(kw)
    return AlertState(**base)


def return_rate(value: float = 0.091, sample: float = 1234, **kw):
    return make_result("return_rate", current=Value(value, value * sample, sample, sample),
                       previous=Value(0.06, 60, 1000, 1000), series=[0.05, 0.06, 0.07, 0.08, 0.09, 0.09, 0.091], **kw)


def by_channel(n: int = 4, key=lambda i: f"ch{i}"):
    """Groups whose return rate moved by (i - 1) points: ch0 down, ch1 flat, the last one up most."""
    rows = [row(key(i), "return_rate", 0.06 + 0.01 * (i - 1), 0.06, 1 / n) for i in range(n)]
    return make_result("return_rate", current=Value(0.091), previous=Value(0.06), breakdown_by="channel",
                       breakdown=rows)


def fire(**kw):
    args = dict(kind="fire", now=FIRED)
    args.update(kw)
    return alert_message(3, args.pop("rule", rule()), RETURN_RATE, args.pop("state", firing()),
                         args.pop("result", return_rate()), **args)


def text_of(block: dict) -> str:
    return norm(block["text"]["text"])


def norm(text: str) -> str:
    """Babel's (narrow) no-break spaces as spaces, for readable French expectations."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def actions(msg) -> list[dict]:
    return [b for b in msg.blocks if b["type"] == "actions"]


# -- fire ------------------------------------------------------------------------------------------


def test_fire_says_value_threshold_window_sample_since_and_mention():
    msg = fire()
    assert_message_ok(msg)
    assert msg.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: Return rate above 8.0%",
                                                        "emoji": True}}
    body = text_of(msg.blocks[1])
    assert "*9.1%* (threshold 8.0%, clears below 7.0%)" in body
    assert "Last 7 days  ·  1,234 orders" in body
    assert "Firing since 24 Nov, 14:00 CET" in body
    assert "<@U0OWNER>" in body and "<@U0OWNER>" in msg.text
    footer = all_text(msg.blocks)
    assert "Rule #3" in footer and "above 8.0% over the last 7 days (clears below 7.0%, min 500 orders, 2 checks in a row)" in footer
    assert msg.text.startswith(":rotating_light: Return rate above 8.0%: 9.1%")


def test_fire_french():
    msg = fire(lang="fr", currency="EUR")
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]) == ":rotating_light: Taux de retour au-dessus de 8,0 %"
    body = text_of(msg.blocks[1])
    assert "*9,1 %* (seuil 8,0 %, revient sous 7,0 %)" in body
    assert re.search(r"Les 7 derniers jours  ·  1 234 commandes", body)
    assert "En alerte depuis le 24 nov. à 14:00 CET" in body
    labels = [e["text"]["text"] for e in actions(msg)[0]["elements"]]
    assert labels == ["Prendre en charge", "Suspendre 1 h", "Suspendre jusqu'à demain 09:00", "Expliquer"]
    assert "Règle n°3" in all_text(msg.blocks)


def test_fire_buttons_and_their_values():
    msg = fire()
    [block] = actions(msg)
    assert block["block_id"] == "alert_actions" and msg.blocks[-1] is block
    elements = block["elements"]
    assert [e["action_id"] for e in elements] == ["alert_ack", "alert_snooze_1h", "alert_snooze_tomorrow", "alert_explain"]
    assert all(e["value"] == "3:4" for e in elements)
    assert elements[0]["style"] == "primary" and all("style" not in e for e in elements[1:])
    assert [e["text"]["text"] for e in elements] == ["Acknowledge", "Snooze 1 h", "Snooze until tomorrow 09:00", "Explain"]


def test_chart_image_or_sparkline():
    with_chart = fire(chart_file_id="F0CHART")
    images = [b for b in with_chart.blocks if b["type"] == "image"]
    assert images and images[0]["slack_file"] == {"id": "F0CHART"} and images[0]["alt_text"]
    assert "▁" not in all_text(with_chart.blocks)
    without = fire()
    assert not [b for b in without.blocks if b["type"] == "image"]
    assert "`▁" in all_text(without.blocks)


def test_fire_without_result_uses_the_state():
    msg = fire(result=None, state=firing(last_value=0.095, last_sample=800))
    assert_message_ok(msg)
    assert "*9.5%*" in text_of(msg.blocks[1]) and "800 orders" in text_of(msg.blocks[1])


def test_top_contributors_are_the_groups_that_pushed_the_kpi_over():
    msg = fire(contributors=by_channel(4))
    table = next(text_of(b) for b in msg.blocks if b["type"] == "section" and "Top contributors" in text_of(b))
    lines = table.split("```")[1].strip().splitlines()
    assert lines[0].split()[0] == "channel" and "change" in lines[0]
    assert [x.split()[0] for x in lines[1:]] == ["ch3", "ch2", "ch1", "ch0"]
    assert "+2.0 pt" in lines[1]

    below = alert_message(3, rule(condition="below", threshold=0.03, clear_threshold=None), RETURN_RATE, firing(),
                          return_rate(), kind="fire", now=FIRED, contributors=by_channel(4))
    table = next(text_of(b) for b in below.blocks if b["type"] == "section" and "Top contributors" in text_of(b))
    assert table.split("```")[1].strip().splitlines()[1].split()[0] == "ch0"


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_huge_contributors_and_hostile_text_stay_within_limits(lang):
    keys = lambda i: (f"{i:03d}-" + "ü&<>`*_~" * 20)[:150]  # noqa: E731
    long_metric = dataclasses.replace(RETURN_RATE, label={"en": "R" * 300, "fr": "R" * 300})
    r = rule(text="<!channel> " + "x" * 5000, filters=(("country", tuple("<X>" * 50 for _ in range(40))),),
             mention="<!here> @alice U0ABC")
    msg = alert_message(3, r, long_metric, firing(episode=10**6), return_rate(), kind="fire", lang=lang,
                        now=FIRED, contributors=by_channel(500, keys))
    assert_message_ok(msg)
    text = all_text(msg.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<!here> @alice <@U0ABC>" in text
    table = next(text_of(b) for b in msg.blocks if b["type"] == "section" and "```" in text_of(b))
    assert len(table.split("```")[1].strip().splitlines()) == 1 + 5  # head + top 5


# -- repeat, resolve -------------------------------------------------------------------------------


def test_repeat_is_short_with_the_reminder_number():
    msg = alert_message(3, rule(), RETURN_RATE, firing(repeats=2, last_value=0.093), None, kind="repeat",
                        now=FIRED + timedelta(days=2))
    assert_message_ok(msg)
    assert len(msg.blocks) <= 2 and not actions(msg)
    assert "Still firing since 24 Nov, 14:00 CET, now 9.3% (reminder 2)" in text_of(msg.blocks[0])
    fr = alert_message(3, rule(), RETURN_RATE, firing(repeats=2, last_value=0.093), None, kind="repeat",
                       lang="fr", now=FIRED + timedelta(days=2))
    assert "Toujours en alerte depuis le 24 nov. à 14:00 CET, maintenant 9,3 % (rappel 2)" in text_of(fr.blocks[0])


def resolved_state(**kw) -> AlertState:
    """As the machine leaves it after a resolve: fired_at and acknowledged_by cleared, since = now."""
    return firing(state="ok", since=NOW, fired_at=None, last_value=0.065, **kw)


def test_resolve_says_value_bound_and_duration():
    msg = alert_message(3, rule(), RETURN_RATE, resolved_state(), return_rate(0.065), kind="resolve", now=NOW,
                        fired_at=FIRED)
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]) == ":white_check_mark: Resolved: return rate back to 6.5% (below 7.0%) after 2 h 15 min"
    assert not actions(msg)
    fr = alert_message(3, rule(), RETURN_RATE, resolved_state(), return_rate(0.065), kind="resolve", lang="fr",
                       now=NOW, fired_at=FIRED)
    assert text_of(fr.blocks[0]) == (":white_check_mark: Résolu : taux de retour revenu à 6,5 % (en dessous de 7,0 %) "
                                     "après 2 h 15 min")


def test_resolve_duration_ends_when_the_state_went_ok_and_needs_a_start():
    late = alert_message(3, rule(clear_threshold=None), RETURN_RATE, resolved_state(), None, kind="resolve",
                         now=NOW + timedelta(hours=9), fired_at=FIRED)  # released after quiet hours
    assert "back to 6.5% (below 8.0%) after 2 h 15 min" in late.text
    unknown = alert_message(3, rule(), RETURN_RATE, resolved_state(), None, kind="resolve", now=NOW)
    assert unknown.text.endswith("(below 7.0%)")


@pytest.mark.parametrize(("delta", "en", "fr"), [
    (timedelta(minutes=45), "45 min", "45 min"),
    (timedelta(hours=2, minutes=15), "2 h 15 min", "2 h 15 min"),
    (timedelta(hours=2), "2 h", "2 h"),
    (timedelta(days=1, minutes=30), "1 day", "1 jour"),
    (timedelta(days=3, hours=4, minutes=59), "3 days 4 h", "3 jours 4 h"),
    (timedelta(seconds=20), "less than a minute", "moins d'une minute"),
])
def test_duration_words(delta, en, fr):
    assert duration_words(delta) == en
    assert duration_words(delta, "fr") == fr


# -- status (chat.update of the first message) -----------------------------------------------------


def test_status_firing_acknowledged_snoozed():
    msg = alert_message(3, rule(), RETURN_RATE, firing(), return_rate(), kind="status", now=NOW)
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]).startswith(":red_circle: *Firing* since 24 Nov, 14:00 CET")
    assert msg.blocks[1]["type"] == "header" and len(actions(msg)[0]["elements"]) == 4
    assert "<@U0OWNER>" not in all_text(msg.blocks)  # an update does not mention again

    snooze = datetime(2026, 11, 25, 9, 0, tzinfo=PARIS)
    acked = alert_message(3, rule(), RETURN_RATE, firing(acknowledged_by="U0ACK", snoozed_until=snooze), None,
                          kind="status", now=NOW)
    status = text_of(acked.blocks[0])
    assert "Acknowledged by <@U0ACK>" in status and "Snoozed until 25 Nov, 09:00 CET" in status
    assert [e["action_id"] for e in actions(acked)[0]["elements"]] == [
        "alert_snooze_1h", "alert_snooze_tomorrow", "alert_explain"]
    assert acked.text.startswith(":red_circle: *Firing*")

    expired = alert_message(3, rule(), RETURN_RATE, firing(snoozed_until=FIRED), None, kind="status", now=NOW)
    assert "Snoozed" not in text_of(expired.blocks[0])
    fr = alert_message(3, rule(), RETURN_RATE, firing(acknowledged_by="U0ACK", snoozed_until=snooze), None,
                       kind="status", lang="fr", now=NOW)
    assert "Pris en charge par <@U0ACK>" in text_of(fr.blocks[0]) and "Suspendu jusqu'au 25 nov. à 09:00 CET" in text_of(fr.blocks[0])


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_resolved_status_has_no_buttons(lang):
    msg = alert_message(3, rule(), RETURN_RATE, resolved_state(), return_rate(0.065), kind="status", lang=lang,
                        now=NOW, fired_at=FIRED, contributors=by_channel(4), chart_file_id="F0CHART")
    assert_message_ok(msg)
    assert not actions(msg)
    assert text_of(msg.blocks[0]) == (":white_check_mark: *Resolved* after 2 h 15 min" if lang == "en"
                                      else ":white_check_mark: *Résolu* après 2 h 15 min")
    assert text_of(msg.blocks[1]).startswith(":white_check_mark: ")


def test_status_no_data_and_error_keep_the_buttons():
    nd = alert_message(3, rule(), RETURN_RATE, firing(state="no_data", since=NOW), None, kind="status", now=NOW)
    assert ":grey_question: *No data* since 24 Nov, 16:15 CET" in text_of(nd.blocks[0]) and actions(nd)
    err = alert_message(3, rule(), RETURN_RATE, firing(state="error", last_error="timeout"), None, kind="status",
                        now=NOW)
    assert "*Could not evaluate*: timeout" in text_of(err.blocks[0]) and actions(err)


# -- error, no data --------------------------------------------------------------------------------


def test_error_is_short_and_escaped():
    state = firing(state="error", last_error="OperationalError: <boom> & " + "x" * 5000 + "\nTraceback ...")
    msg = alert_message(3, rule(), RETURN_RATE, state, None, kind="error", now=NOW)
    assert_message_ok(msg)
    line = text_of(msg.blocks[0])
    assert line.startswith(":warning: Could not evaluate Return rate above 8.0% (rule #3): OperationalError: &lt;boom&gt; &amp; ")
    assert "Traceback" not in line and len(line) < 500
    fr = alert_message(3, rule(), RETURN_RATE, state, None, kind="error", lang="fr", now=NOW)
    assert text_of(fr.blocks[0]).startswith(":warning: Impossible d'évaluer Taux de retour au-dessus de 8,0 % (règle n°3) : ")


def test_no_data_says_why():
    small = alert_message(3, rule(), RETURN_RATE, firing(state="no_data", last_sample=12), None, kind="no_data", now=NOW)
    assert_message_ok(small)
    assert text_of(small.blocks[0]) == (":grey_question: No data for Return rate above 8.0% (rule #3): "
                                        "sample 12 &lt; 500 minimum")
    stale = make_result("return_rate", current=Value(0.09, 90, 1000, 1000), as_of=FIRED - timedelta(days=2))
    msg = alert_message(3, rule(), RETURN_RATE, firing(state="no_data"), stale, kind="no_data", now=NOW)
    assert "the source is stale (data up to 22 Nov, 14:00 CET)" in text_of(msg.blocks[0])
    fr = alert_message(3, rule(), RETURN_RATE, firing(state="no_data", last_sample=12), None, kind="no_data",
                       lang="fr", now=NOW)
    assert "Pas de données pour Taux de retour" in norm(fr.text) and "échantillon 12 &lt; 500 minimum" in fr.text


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        fire(kind="fired")


# -- condition words -------------------------------------------------------------------------------


def test_condition_words():
    assert condition_words(rule(), RETURN_RATE) == (
        "above 8.0% over the last 7 days (clears below 7.0%, min 500 orders, 2 checks in a row)")
    assert condition_words(rule(clear_threshold=0.08, min_sample=0, consecutive=1), RETURN_RATE) == (
        "above 8.0% over the last 7 days")
    assert condition_words(rule(condition="below", threshold=0.02, clear_threshold=0.025, window_days=0,
                                min_sample=0, consecutive=1), RETURN_RATE) == "below 2.0% today so far (clears above 2.5%)"
    assert condition_words(rule(metric="revenue", condition="change_below", threshold=-0.2, clear_threshold=None,
                                window_days=1, min_sample=0, consecutive=1), REVENUE) == (
        "change below −20.0% over the last day vs the day before")
    assert norm(condition_words(rule(), RETURN_RATE, "fr")) == (
        "au-dessus de 8,0 % sur les 7 derniers jours (revient sous 7,0 %, min. 500 commandes, "
        "2 contrôles de suite)")
    assert condition_words(rule(metric="revenue", condition="above", threshold=10000, clear_threshold=None,
                                min_sample=0, consecutive=1), REVENUE, currency="EUR") == (
        "above €10,000.00 over the last 7 days")


def test_change_rule_fire_shows_the_change_and_both_values():
    r = rule(metric="revenue", condition="change_above", threshold=0.2, clear_threshold=0.1, min_sample=0)
    result = make_result("revenue", current=Value(1250.0), previous=Value(1000.0))
    msg = alert_message(5, r, REVENUE, firing(), result, kind="fire", now=FIRED)
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]) == ":rotating_light: Revenue: change above +20.0%"
    body = text_of(msg.blocks[1])
    assert "*+25.0%* vs the previous window (threshold +20.0%, clears below +10.0%)" in body
    assert "now $1,250.00, before $1,000.00" in body


def test_mentions():
    assert mention_ref("here") == "<!here>"
    assert mention_ref("<@U1ABC|al> @channel S0TEAM") == "<@U1ABC|al> <!channel> <!subteam^S0TEAM>"
    assert mention_ref("<!everyone>") == "<!everyone>"
    assert mention_ref("<b>") == "&lt;b&gt;"
    assert mention_ref(None) == ""


# -- explain ---------------------------------------------------------------------------------------


def test_explain_shows_each_breakdown_biggest_movers_first():
    device = [row(k, "return_rate", v, 0.06, 0.5) for k, v in (("mobile", 0.061), ("desktop", 0.1))]
    by_device = make_result("return_rate", current=Value(0.09), previous=Value(0.06), breakdown_by="device",
                            breakdown=device)
    msg = explain_message(rule(), RETURN_RATE, [by_channel(4), by_device, make_result("return_rate", current=Value(1))])
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]) == "Explain: Return rate above 8.0%"
    tables = [text_of(b) for b in msg.blocks if b["type"] == "section"]
    assert len(tables) == 2
    firsts = [[x.split()[0] for x in tb.split("```")[1].strip().splitlines()[1:]] for tb in tables]
    assert firsts == [["ch3", "ch0", "ch2", "ch1"], ["desktop", "mobile"]]  # |+2 pt| ≥ |−1 pt| ...
    fr = explain_message(rule(), RETURN_RATE, [by_channel(4)], lang="fr")
    assert text_of(fr.blocks[0]).startswith("Explication : Taux de retour") and "Par canal" in all_text(fr.blocks)
    empty = explain_message(rule(), RETURN_RATE, [])
    assert "No breakdown" in all_text(empty.blocks)


def test_explain_cuts_the_other_row_with_its_groups():
    rows = [row(f"c{i}", "revenue", 100.0 + i * 10, 100.0, 0.05) for i in range(15)] + [
        row(OTHER, "revenue", 5000.0, 100.0, 0.25)]
    result = make_result("revenue", current=Value(1e4), previous=Value(9e3), breakdown_by="channel", breakdown=rows,
                         total_groups=40)
    msg = explain_message(rule(metric="revenue"), REVENUE, [result])
    table = next(text_of(b) for b in msg.blocks if b["type"] == "section")
    lines = table.split("```")[1].strip().splitlines()
    assert len(lines) == 11 and lines[1].startswith("c14") and "other" not in table
    assert "top 10 of 40" in table


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_explain_with_many_huge_breakdowns_fits(lang):
    keys = lambda i: (f"{i:03d}-" + "ü&<>`*_~" * 20)[:150]  # noqa: E731
    msg = explain_message(rule(), RETURN_RATE, [by_channel(300, keys) for _ in range(60)], lang=lang)
    assert_message_ok(msg)


# -- /kpi alert list -------------------------------------------------------------------------------


def test_rules_list_lines():
    snooze = datetime(2026, 11, 25, 9, 0, tzinfo=PARIS)
    items = [
        (1, rule(), RETURN_RATE, AlertState(state="ok")),
        (2, rule(filters=(("channel", ("email",)),)), RETURN_RATE,
         firing(acknowledged_by="U0ACK", snoozed_until=snooze)),
        (3, rule(channel="#ops"), RETURN_RATE, AlertState(state="pending")),
        (4, rule(), RETURN_RATE, AlertState(state="no_data", muted_until=snooze)),
        (5, rule(), RETURN_RATE, AlertState(state="error")),
        (6, rule(), RETURN_RATE, None),
    ]
    msg = rules_list_message(items, now=NOW)
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]) == "Alert rules (6)"
    lines = "\n".join(text_of(b) for b in msg.blocks[1:] if b["type"] == "section").splitlines()
    assert [x.split()[0] for x in lines] == ["🔴", "⚠️", "🟡", "⚪", "🟢", "⚪"]  # firing first
    assert lines[0].startswith("🔴 *#2 Return rate* above 8.0% over the last 7 days (clears below 7.0%")
    assert "channel = email" in lines[0] and "to <#C0ALERTS>" in lines[0]
    assert "💤 snoozed until 25 Nov, 09:00 CET" in lines[0] and "👀 acknowledged by <@U0ACK>" in lines[0]
    assert "to #ops" in lines[2]
    assert "🔇 muted until 25 Nov, 09:00 CET" in lines[3]
    assert "not evaluated yet" in lines[5]
    later = rules_list_message(items, now=snooze + timedelta(minutes=1))
    assert "snoozed" not in all_text(later.blocks) and "muted" not in all_text(later.blocks)
    fr = rules_list_message(items, lang="fr", now=NOW)
    assert text_of(fr.blocks[0]) == "Règles d'alerte (6)" and "suspendue jusqu'au 25 nov. à 09:00 CET" in norm(all_text(fr.blocks))
    assert "Add one" in rules_list_message([]).text


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_500_rules_fit_with_a_note(lang):
    r = rule(filters=(("country", tuple(f"country-{i:02d}-<&>" for i in range(12))), ("device", ("mobile",))),
             text="note", mention="<!here>")
    items = [(i, r, RETURN_RATE, firing(acknowledged_by="U0ACK", snoozed_until=NOW + timedelta(hours=1)))
             for i in range(1, 501)]
    msg = rules_list_message(items, lang=lang, now=NOW)
    assert_message_ok(msg)
    note = msg.blocks[-1]["elements"][0]["text"]
    shown = sum(text_of(b).count("\n") + 1 for b in msg.blocks if b["type"] == "section")
    assert shown < 500 and str(500 - shown) in note
    assert "more rules" in note if lang == "en" else "règles de plus" in note


# -- /kpi alert test -------------------------------------------------------------------------------


def test_backtest_lists_fires_with_durations():
    tz = PARIS
    fires = [datetime(2026, 9, 2, 10, tzinfo=tz), datetime(2026, 10, 14, 8, tzinfo=tz),
             datetime(2026, 11, 1, 8, tzinfo=tz), datetime(2026, 11, 20, 8, tzinfo=tz)]
    resolves = [datetime(2026, 9, 2, 13, tzinfo=tz), datetime(2026, 10, 16, 8, tzinfo=tz),
                datetime(2026, 11, 1, 9, 30, tzinfo=tz)]
    msg = backtest_message(3, rule(), RETURN_RATE, fires, resolves, 91)
    assert_message_ok(msg)
    assert text_of(msg.blocks[0]) == "Test of rule #3: Return rate above 8.0%"
    assert text_of(msg.blocks[1]) == ("Over the last 90 days this rule would have fired 4 times: 2 Sep (for 3 h), "
                                      "14 Oct (for 2 days), 1 Nov (for 1 h 30 min), 20 Nov (still firing)")
    assert "91 evaluations" in all_text(msg.blocks)
    fr = backtest_message(3, rule(), RETURN_RATE, fires, resolves, 91, lang="fr")
    assert text_of(fr.blocks[1]).startswith("Sur les 90 derniers jours, cette règle se serait déclenchée 4 fois : "
                                            "2 sept. (pendant 3 h), 14 oct. (pendant 2 jours)")
    none = backtest_message(3, rule(), RETURN_RATE, [], [], 500, days=30)
    assert text_of(none.blocks[1]) == "Over the last 30 days this rule would not have fired."
    once = backtest_message(3, rule(), RETURN_RATE, fires[:1], resolves[:1], 500, days=30)
    assert "would have fired once: 2 Sep (for 3 h)" in once.text
    one_day = backtest_message(3, rule(), RETURN_RATE, [], [], 96, days=1)
    assert one_day.text.startswith("Over the last day this rule")


def test_backtest_with_many_fires_fits():
    start = datetime(2026, 1, 1, tzinfo=PARIS)
    fires = [start + timedelta(hours=6 * i) for i in range(400)]
    resolves = [f + timedelta(hours=1) for f in fires]
    msg = backtest_message(3, rule(), RETURN_RATE, fires, resolves, 10_000, days=100)
    assert_message_ok(msg)
    assert "400 times" in msg.text and "…and 340 more" in text_of(msg.blocks[1])


# -- rules that require significance ---------------------------------------------------------------


def _test(significant=True, p=None, low=None, high=None):
    from kpi.metrics.significance import Significance

    method = "history_band" if low is not None else "binomial"
    return Significance(method, significant, p_value=p, low=low, high=high, history=8 if low is not None else 0)


def test_the_rule_s_words_say_it_requires_significance():
    from kpi.i18n import tr

    r = rule(significant=True, min_sample=0, consecutive=1, clear_threshold=None)
    assert condition_words(r, RETURN_RATE) == "above 8.0% over the last 7 days (only when significant)"
    assert tr("fr", "only when significant") in condition_words(r, RETURN_RATE, "fr")
    assert "significant" not in condition_words(rule(min_sample=0, consecutive=1, clear_threshold=None), RETURN_RATE)
    listing = rules_list_message([(1, r, RETURN_RATE, AlertState(state="ok"))], now=NOW)
    assert "(only when significant)" in all_text(listing.blocks)


def test_a_fire_shows_the_p_value_of_a_rule_that_requires_significance():
    r = rule(significant=True)
    msg = fire(rule=r, significance=_test(p=0.0123))
    assert_message_ok(msg)
    body = text_of(msg.blocks[1])
    assert "Significant (p = 0.012)" in body
    assert "only when significant" in all_text(msg.blocks)
    assert "p &lt; 0.001" in text_of(fire(rule=r, significance=_test(p=0.00001)).blocks[1])
    assert "0,012" in text_of(fire(rule=r, significance=_test(p=0.0123), lang="fr").blocks[1])
    # a rule that does not require it, or no test: no such line
    assert "Significant" not in all_text(fire(significance=_test(p=0.0123)).blocks)
    assert "Significant" not in all_text(fire(rule=r).blocks)


def test_a_change_rule_shows_the_band_of_normal_variation():
    r = rule(metric="revenue", condition="change_below", threshold=-0.2, clear_threshold=None, min_sample=0,
             significant=True)
    result = make_result("revenue", current=Value(700.0), previous=Value(1000.0))
    msg = alert_message(5, r, REVENUE, firing(), result, kind="fire", now=FIRED,
                        significance=_test(low=900.0, high=1100.0))
    assert_message_ok(msg)
    assert "Outside normal variation ($900.00 to $1,100.00)" in text_of(msg.blocks[1])
    status = alert_message(5, r, REVENUE, firing(), result, kind="status", now=NOW,
                           significance=_test(False, low=600.0, high=1400.0))
    assert "Within normal variation ($600.00 to $1,400.00)" in all_text(status.blocks)
