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
    assert "Panier moyen = revenue ÷ valued_orders" in json.dumps(fr.blocks, ensure_ascii=False)
    _, unknown = rig.ask("define happiness")
    assert "Unknown KPI 'happiness'" in unknown.text


def test_cli_metrics_define(shop, capsys):  # noqa: F811 - fixture
    assert main(["metrics", "--define", "aov"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Average order value = revenue ÷ valued_orders")
    assert main(["--lang", "de", "metrics", "--define"]) == 0
    out = capsys.readouterr().out
    assert "Konversionsrate = orders ÷ sessions" in out and "Höher ist besser." in out
    assert main(["metrics", "--define", "happiness"]) == 2


def test_finance_kpis_are_defined_with_their_formulas():
    """The definitions finance checks: each says what it counts, from which table, and what it leaves out."""
    lines = {key: "\n".join([d.formula, d.description, *d.parts, *d.notes]) for key, d in
             ((k, define(CATALOG, CATALOG.metrics[k], "en")) for k in CATALOG.metrics)}
    assert "revenue - refunds" in lines["net_revenue"] and "returns.amount" in lines["net_revenue"]
    assert "refunded ÷ revenue" in lines["refund_rate"]
    assert "subtotal > 0" in lines["aov"] and "zero_value_orders" in lines["aov"]
    assert "revenue ÷ orders" in lines["aov_all_orders"]
    assert "marketing_spend.channel (where amount > 0)" in lines["paid_cac"]
    assert "blended" in lines["cac"].lower()
    assert "COUNT(*) > 1" in lines["repeat_customer_rate"] and "Shopify" in lines["repeat_customer_rate"]
    assert "less than 12 months after customers.first_order_at" in lines["clv_12m"]
    assert "grows with the" in lines["clv"]
    assert "Neither direction is better" in lines["marketing_spend"]
    assert "customer_id is not empty" in lines["clv"]  # guest orders are no customer's revenue
