"""Answers show the data's currency (issue 13): the shop's currency is the currency of its stored orders (the most
frequent one), else the team's in config/teams.yaml, else KPIBOT_CURRENCY, else USD. GBP data is answered in
pounds by the command line, in Slack and in the digest, whatever the process's KPIBOT_CURRENCY default.

Real databases (SQLite, and PostgreSQL when KPIBOT_TEST_POSTGRES_URL is set); the shop is tests/test_engine.py's.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from kpi import services as services_module
from kpi.data import schema
from kpi.db import make_engine
from kpi.services import Services
from kpi.settings import Settings
from kpi.state.tables import import_runs, upgrade

from . import test_slack_app
from .test_engine import CUSTOMERS, NOW, ORDERS, RETURNS, SPEND, TRAFFIC

CONFIG = Path(__file__).resolve().parent.parent / "config"
WEEK = "2026-11-17..2026-11-23"


def _fill(url: str, currency: str = "GBP") -> None:
    engine = make_engine(url)
    schema.create_source_tables(engine)
    with engine.begin() as conn:
        for table, rows in [(schema.orders, [{**o, "currency": currency} for o in ORDERS]),
                            (schema.customers, CUSTOMERS), (schema.traffic, TRAFFIC), (schema.returns, RETURNS),
                            (schema.marketing_spend, SPEND)]:
            conn.execute(insert(table), rows)
    engine.dispose()


@pytest.fixture
def env(monkeypatch, database_url, tmp_path):
    """The command line on a GBP shop, KPIBOT_CURRENCY unset (state and source in one database)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("KPI_SOURCE_URL", raising=False)
    monkeypatch.delenv("KPIBOT_CONFIG", raising=False)
    monkeypatch.delenv("KPIBOT_CURRENCY", raising=False)
    monkeypatch.setenv("KPIBOT_TIMEZONE", "Europe/Paris")
    from bot.cli import main

    assert main(["db", "upgrade", "--no-source"]) == 0
    _fill(database_url)
    return main


def test_kpibot_ask_prints_the_datas_currency(env, capsys):
    capsys.readouterr()
    assert env(["ask", "revenue", WEEK]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Revenue, Nov 17\u2009–\u200923, 2026: £340.00"
    assert "$" not in out and "€" not in out


def test_kpibot_ask_in_the_datas_currency_even_when_kpibot_currency_says_otherwise(env, capsys, monkeypatch):
    monkeypatch.setenv("KPIBOT_CURRENCY", "EUR")
    capsys.readouterr()
    assert env(["ask", "aov", WEEK]) == 0
    assert "£85.00" in capsys.readouterr().out  # 340 / 4 orders


def test_the_digest_is_in_the_datas_currency(env, capsys):
    capsys.readouterr()
    assert env(["digest", "preview", "--team", "T0GBPSHOP"]) == 0
    out = capsys.readouterr().out
    assert "£" in out and "$" not in out


def test_slack_answers_in_the_datas_currency(database_url, monkeypatch):
    monkeypatch.setattr(test_slack_app, "_fill", _fill)  # the rig's shop, its orders in GBP
    rig = test_slack_app.Rig(database_url)  # its settings say EUR, as KPIBOT_CURRENCY would
    try:
        assert rig.services.currency() == "GBP"  # read from the orders (settings follow once it is read)
        assert rig.services.settings.currency == "GBP"
        _, message = rig.ask(f"revenue {WEEK}")
        seen = test_slack_app._text(message)
        assert "£340.00" in seen and "€" not in seen and "$" not in seen
    finally:
        rig.close()


def _services(url: str, config: Path = CONFIG, currency: str = "USD", explicit: bool = False) -> Services:
    return Services(Settings(database_url=url, source_url=url, timezone="Europe/Paris", config_dir=config,
                             currency=currency, currency_explicit=explicit), clock=lambda: NOW)


def test_mixed_currencies_give_the_most_frequent_and_every_one(database_url):
    upgrade(database_url)
    _fill(database_url)
    engine = make_engine(database_url)
    with engine.begin() as conn:  # one order of four in EUR
        conn.execute(update(schema.orders).where(schema.orders.c.order_id == ORDERS[0]["order_id"])
                     .values(currency="EUR"))
    engine.dispose()
    services = _services(database_url)
    assert services.settings.currency == "USD"  # reading the settings waits for no database: nothing read yet
    assert services.currency() == "GBP" and services.settings.currency == "GBP"
    assert services.currencies()[0] == "GBP" and set(services.currencies()) == {"GBP", "EUR"}


def test_the_currency_is_read_again_after_an_import(database_url, monkeypatch):
    upgrade(database_url)
    _fill(database_url)
    services = _services(database_url, currency="EUR")
    assert services.currency() == "GBP"
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(schema.orders).values(currency="CHF"))
    assert services.currency() == "GBP"  # cached: no import since
    monkeypatch.setattr(services_module, "CURRENCY_EVERY", 0.0)
    with engine.begin() as conn:
        conn.execute(insert(import_runs).values(started_at=datetime(2026, 11, 24), file_name="orders.csv",
                                                file_sha256="0" * 64, format="csv", status="loaded"))
    engine.dispose()
    assert services.currency() == "CHF" and services.currencies() == ["CHF"]
    assert services.settings.currency == "CHF"


def test_no_data_yet_the_teams_currency_then_kpibot_currency_then_usd(database_url, tmp_path, monkeypatch):
    upgrade(database_url)
    empty = tmp_path / "empty.db"
    schema.create_source_tables(make_engine(f"sqlite:///{empty}"))
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / "teams.yaml").write_text(f"teams:\n  T0CHF:\n    source: sqlite:///{empty}\n    currency: chf\n"
                                       f"  T0NONE:\n    source: sqlite:///{empty}\n")
    monkeypatch.delenv("KPIBOT_CURRENCY", raising=False)
    root = Services(Settings.from_env({"DATABASE_URL": database_url, "KPI_SOURCE_URL": f"sqlite:///{empty}",
                                       "KPIBOT_CONFIG": str(config)}))
    assert root.settings.currency == "USD" and not root.settings.currency_explicit
    assert root.for_team("T0CHF").settings.currency == "CHF"
    assert root.for_team("T0NONE").settings.currency == "USD"
    assert root.for_team("T0CHF").currencies() == []
    explicit = Services(Settings.from_env({"DATABASE_URL": database_url, "KPI_SOURCE_URL": f"sqlite:///{empty}",
                                           "KPIBOT_CONFIG": str(config), "KPIBOT_CURRENCY": "eur"}))
    assert explicit.settings.currency == "EUR" and explicit.settings.currency_explicit
    assert explicit.for_team("T0NONE").settings.currency == "EUR"
    assert explicit.for_team("T0CHF").settings.currency == "CHF"
    # once the team's shop has orders, their currency wins
    _fill(f"sqlite:///{empty}", currency="JPY")
    fresh = Services(Settings.from_env({"DATABASE_URL": database_url, "KPI_SOURCE_URL": f"sqlite:///{empty}",
                                        "KPIBOT_CONFIG": str(config)}))
    assert fresh.for_team("T0CHF").currency() == "JPY" and fresh.for_team("T0CHF").settings.currency == "JPY"


def test_a_source_that_is_not_there_falls_back_without_raising(tmp_path):
    services = _services(f"sqlite:///{tmp_path / 'nothing' / 'no.db'}", currency="EUR")
    assert services.currency() == "EUR" and services.currencies() == [] and services.settings.currency == "EUR"
