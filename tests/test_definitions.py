"""Definitions people can check: `/kpi define <kpi>` and `kpibot metrics --define` state the formula, the
tables and columns read and the conditions, from the catalog itself, in the reader's language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpi.cli import main
from kpi.metrics.catalog import load_catalog
from kpi.metrics.definitions import define

from .test_cli import env, shop  # noqa: F401 - fixtures

CATALOG = load_catalog(Path(__file__).resolve().parents[1] / "config" / "metrics.yaml")


@pytest.mark.parametrize("key", sorted(CATALOG.metrics))
@pytest.mark.parametrize("lang", ["en", "fr", "de"])
def test_every_kpi_has_a_definition_naming_what_it_reads(key, lang):
    d = define(CATALOG, CATALOG.metrics[key], lang)
    assert d.formula.startswith(CATALOG.metrics[key].name(lang) + " = ")
    for measure in CATALOG.measures_of(CATALOG.metrics[key]):
        line = next(p for p in d.parts if p.startswith(measure.key + ": "))
        assert measure.table in line and measure.time in line
        for condition in measure.where:
            assert condition.column in line


def test_conversion_is_orders_over_sessions_without_cancelled_orders():
    d = define(CATALOG, CATALOG.metrics["conversion_rate"], "en")
    assert d.formula == "Conversion rate = orders ÷ sessions"
    assert "orders: the number of rows of orders, rows whose placed_at falls in the period, only where status ≠ cancelled" in d.parts
    assert "sessions: the sum of traffic.sessions, rows whose day falls in the period" in d.parts
    assert define(CATALOG, CATALOG.metrics["cart_abandonment_rate"], "fr").formula == \
        "Taux d'abandon de panier = (carts - orders) ÷ carts"
    assert "Plus bas = mieux." in define(CATALOG, CATALOG.metrics["return_rate"], "fr").notes


def test_slack_define_answers_in_the_users_language(rig):
    _, message = rig.ask("define conversion")
    blocks = json.dumps(message.blocks, ensure_ascii=False)
    assert "Conversion rate = orders ÷ sessions" in blocks and "traffic.sessions" in blocks
    _, fr = rig.ask("définition du panier moyen", user_id="U0BRUNO", user_name="bruno")
    assert "Panier moyen = revenue ÷ orders" in json.dumps(fr.blocks, ensure_ascii=False)
    _, unknown = rig.ask("define happiness")
    assert "Unknown KPI 'happiness'" in unknown.text


def test_cli_metrics_define(shop, capsys):  # noqa: F811 - fixture
    assert main(["metrics", "--define", "aov"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Average order value = revenue ÷ orders")
    assert main(["--lang", "de", "metrics", "--define"]) == 0
    out = capsys.readouterr().out
    assert "Konversionsrate = orders ÷ sessions" in out and "Höher ist besser." in out
    assert main(["metrics", "--define", "happiness"]) == 2
