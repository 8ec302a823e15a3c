"""Alert rules written in English and French, and every refusal with the field at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.markup import to_plain
from kpi.alerts.rules import RuleError, RuleSpec, UnknownRuleMetric, parse_rule
from kpi.errors import QueryError, UnknownMetric
from kpi.metrics.catalog import load_catalog

CATALOG = load_catalog(Path(__file__).resolve().parents[1] / "config" / "metrics.yaml")

PARSED = [
    ("return rate above 8% over 7 days clear below 7% in #ops",
     dict(metric="return_rate", condition="above", threshold=0.08, clear_threshold=0.07, window_days=7, channel="#ops")),
    ("conversion below 1.5% over 3 days min 500 sessions mention @here",
     dict(metric="conversion_rate", condition="below", threshold=0.015, window_days=3, min_sample=500, mention="<!here>")),
    ("revenue change below -20% over 1 day channel=email every 30m repeat 4h quiet 22:00-08:00 #growth",
     dict(metric="revenue", condition="change_below", threshold=-0.2, window_days=1, interval_minutes=30,
          repeat_minutes=240, quiet_start="22:00", quiet_end="08:00", channel="#growth",
          filters=(("channel", ("email",)),))),
    ("taux de retour au-dessus de 8 % sur 7 jours",
     dict(metric="return_rate", condition="above", threshold=0.08, window_days=7)),
    ("conversion en dessous de 1,5 % sur 3 jours min 500",
     dict(metric="conversion_rate", condition="below", threshold=0.015, window_days=3, min_sample=500)),
    ("orders below 10 today", dict(metric="orders", condition="below", threshold=10, window_days=0)),
    ("aov above 120 for 2 checks", dict(metric="aov", condition="above", threshold=120, consecutive=2, window_days=7)),
    # more phrasings
    ("revenue drops by more than 20% over 7 days", dict(metric="revenue", condition="change_below", threshold=-0.2)),
    ("chiffre d'affaires baisse de plus de 20 % sur 1 jour",
     dict(metric="revenue", condition="change_below", threshold=-0.2, window_days=1)),
    ("sessions change above 50% today", dict(metric="sessions", condition="change_above", threshold=0.5, window_days=0)),
    ("taux de conversion inférieur à 2 % 3 fois de suite heures calmes 22h-8h",
     dict(metric="conversion_rate", condition="below", threshold=0.02, consecutive=3, quiet_start="22:00",
          quiet_end="08:00")),
    ("cart abandonment above 0.8 over 2 weeks <#C0123ABC|ops> <@U42ABC> no repeat",
     dict(metric="cart_abandonment_rate", threshold=0.8, window_days=14, channel="C0123ABC", mention="<@U42ABC>",
          repeat_minutes=0)),
    ("revenue below $1.5k today mention @alice", dict(metric="revenue", threshold=1500, mention="@alice")),
    ("conversion below 2 pts over 7 days", dict(metric="conversion_rate", threshold=0.02)),
    ("return rate above 8% clear at 7% country=fr,de",
     dict(clear_threshold=0.07, filters=(("country", ("fr", "de")),))),
    ("conversion below 1.5% clear above 2% min 1 500 sessions", dict(clear_threshold=0.02, min_sample=1500)),
]


@pytest.mark.parametrize("text,expected", PARSED, ids=[t for t, _ in PARSED])
def test_parse(text, expected):
    rule = parse_rule(to_plain(text), CATALOG, tz_name="Europe/Paris")  # as typed in Slack
    assert isinstance(rule, RuleSpec)
    assert rule.text == to_plain(text) and rule.timezone == "Europe/Paris"
    for name, value in expected.items():
        got = getattr(rule, name)
        assert got == (pytest.approx(value) if isinstance(value, float) else value), name


def test_defaults():
    rule = parse_rule("aov above 120", CATALOG)
    assert (rule.window_days, rule.min_sample, rule.consecutive, rule.interval_minutes, rule.repeat_minutes) == \
        (7, 0, 1, 15, 1440)
    assert rule.clear_threshold is None and rule.clear == 120 and rule.channel is None and rule.timezone == "UTC"


ERRORS = [
    ("revenue over 7 days", "condition"),
    ("revenue 100", "condition"),
    ("revenue above", "threshold"),
    ("aov above 10%", "threshold"),  # a percent on a KPI that is not a percentage
    ("conversion above 150%", "threshold"),
    ("revenue change above 5 pts", "threshold"),
    ("return rate above 8% clear below 9%", "clear_threshold"),
    ("conversion below 2% clear above 1%", "clear_threshold"),
    ("aov above 120 clear above 100", "clear_threshold"),
    ("aov above 120 clears", "clear_threshold"),
    ("orders below 10 over 400 days", "window"),
    ("orders below 10 over -1 days", "window"),
    ("aov above 120 today over 3 days", "window"),
    ("conversion below 2% min -5", "min_sample"),
    ("conversion below 2% min lots", "min_sample"),
    ("revenue above 100 #a #b", "channel"),
    ("revenue above 100 quiet 25:00-08:00", "quiet"),
    ("revenue above 100 quiet please", "quiet"),
    ("revenue above 100 above 200", "condition"),
    ("revenue aov above 100", "metric"),
    ("above 100", "metric"),
    ("orders below 10 every 0m", "interval"),
    ("email open rate below 10% channel=email", "filters"),
]


@pytest.mark.parametrize("text,field", ERRORS, ids=[t for t, _ in ERRORS])
def test_errors(text, field):
    with pytest.raises(RuleError) as info:
        parse_rule(text, CATALOG)
    assert info.value.field == field
    assert isinstance(info.value, QueryError) and str(info.value)


def test_unknown_metric_is_both_kinds_with_suggestions():
    with pytest.raises(UnknownRuleMetric) as info:
        parse_rule("revnue above 100 over 7 days", CATALOG)
    err = info.value
    assert isinstance(err, UnknownMetric) and isinstance(err, RuleError)
    assert err.field == "metric" and err.name == "revnue" and err.suggestions


def test_unknown_time_zone():
    with pytest.raises(RuleError) as info:
        parse_rule("aov above 120", CATALOG, tz_name="Mars/Olympus")
    assert info.value.field == "timezone"


# -- significance ---------------------------------------------------------------------------------------

SIGNIFICANT = [
    ("conversion below 1.5% over 3 days significant", dict(metric="conversion_rate", condition="below", window_days=3)),
    ("return rate above 8% only when significant min 500 orders in #ops",
     dict(metric="return_rate", condition="above", min_sample=500, channel="#ops")),
    ("revenue drops by more than 20% over 7 days statistically significant",
     dict(metric="revenue", condition="change_below", threshold=-0.2)),
    ("taux de conversion inférieur à 2 % sur 7 jours si significatif",
     dict(metric="conversion_rate", condition="below", threshold=0.02)),
    ("chiffre d'affaires baisse de plus de 20 % sur 1 jour seulement si la baisse est significative",
     dict(metric="revenue", condition="change_below", window_days=1)),
    ("taux de retour au-dessus de 8 % significatif", dict(metric="return_rate", condition="above")),
    ("konversionsrate below 2% nur wenn signifikant", dict(metric="conversion_rate", condition="below")),
    ("umsatz change below -20% signifikant", dict(metric="revenue", condition="change_below")),
]


@pytest.mark.parametrize("text,expected", SIGNIFICANT, ids=[t for t, _ in SIGNIFICANT])
def test_the_significant_keyword_in_three_languages(text, expected):
    rule = parse_rule(text, CATALOG)
    assert rule.significant is True
    for name, value in expected.items():
        got = getattr(rule, name)
        assert got == (pytest.approx(value) if isinstance(value, float) else value), name


def test_significance_is_off_unless_asked_and_is_a_rule_field():
    from kpi.alerts.rules import FIELDS

    assert parse_rule("conversion below 1.5% over 3 days", CATALOG).significant is False
    assert RuleSpec(metric="revenue", condition="above", threshold=1).significant is False
    assert "significant" in FIELDS


@pytest.mark.parametrize("text", ["revenue below 1000 significant", "aov above 120 only when significant",
                                  "commandes en dessous de 10 aujourd'hui significatif"])
def test_a_plain_threshold_on_a_kpi_that_is_not_a_rate_refuses_significance(text):
    with pytest.raises(RuleError) as info:
        parse_rule(text, CATALOG)
    assert info.value.field == "significant"
    message = info.value.localized("en")
    assert "rates" in message and "change" in message


def test_significance_needs_a_threshold_strictly_between_0_and_100_percent():
    for text in ("conversion above 0% significant", "return rate below 100% significant"):
        with pytest.raises(RuleError) as info:
            parse_rule(text, CATALOG)
        assert info.value.field == "significant"
    assert parse_rule("revenue change above 50% significant", CATALOG).significant  # any KPI's change can
