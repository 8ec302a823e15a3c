"""The command line as scripts and people use it: exit codes, one-line errors, JSON, both databases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import insert, inspect

from kpi.cli import main
from kpi.data import schema
from kpi.db import make_engine

from .test_engine import CUSTOMERS, ORDERS, RETURNS, TRAFFIC


@pytest.fixture
def env(monkeypatch, database_url, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("KPI_SOURCE_URL", raising=False)
    monkeypatch.delenv("KPIBOT_CONFIG", raising=False)
    monkeypatch.setenv("KPIBOT_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("KPIBOT_CURRENCY", "EUR")
    return database_url


@pytest.fixture
def shop(env):
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(env)
    with engine.begin() as conn:
        for table, rows in [(schema.orders, ORDERS), (schema.customers, CUSTOMERS),
                            (schema.traffic, TRAFFIC), (schema.returns, RETURNS)]:
            conn.execute(insert(table), rows)
    engine.dispose()
    return env


def test_db_upgrade_creates_state_and_source_tables_and_is_idempotent(env, capsys):
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(env)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"orders", "returns", "customers", "traffic", "marketing_spend", "email_campaigns"} <= names
    assert {"import_runs", "kpibot_alembic_version"} <= names
    assert "nothing to create" in capsys.readouterr().out


def test_ask_prints_value_comparison_and_sparkline(shop, capsys):
    assert main(["ask", "revenue", "2026-11-17..2026-11-23", "vs", "previous"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Revenue, Nov 17\u2009–\u200923, 2026: €340.00"  # the dates, written for people
    assert "+€200.00 (+142.9%)" in out  # vs 140 in Nov 10-16
    assert "good" in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")


def test_ask_in_french_formats_numbers_the_french_way(shop, capsys):
    assert main(["ask", "panier moyen du 2026-11-17 au 2026-11-23", "--lang", "fr"]) == 0
    out = capsys.readouterr().out
    assert "85,00\xa0€" in out
    assert "Panier moyen" in out


def test_ask_breakdown(shop, capsys):
    assert main(["ask", "revenue 2026-11-17..2026-11-23 by channel"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.startswith("    ")]
    assert [(cells[0], cells[1]) for cells in lines] == [("email", "€250.00"), ("paid_search", "€50.00"), ("social", "€40.00")]


def test_ask_json_has_numerator_denominator_and_sample(shop, capsys):
    assert main(["ask", "conversion 2026-11-17..2026-11-23", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["current"] == {"value": 0.02, "numerator": 4.0, "denominator": 200.0, "sample": 200.0}
    assert data["metric"]["key"] == "conversion_rate"
    assert data["period"]["start"] == "2026-11-17T00:00:00+01:00"
    assert data["period"]["partial"] is False


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ask", "convrsn"], "Did you mean conversion?"),
        (["ask", "conversion", "since", "forever"], "Try one of:"),
        (["ask", "conversion", "by", "colour"], "it can by: channel, country, device"),
        (["ask", "revenue", "december", "2099"], "in the future"),
    ],
)
def test_bad_questions_exit_2_with_one_clear_line(shop, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("kpibot: ")


def test_ask_before_any_data_says_what_to_run(env, capsys):
    assert main(["ask", "conversion"]) == 2
    err = capsys.readouterr().err
    assert "kpibot db upgrade" in err and "Traceback" not in err


def test_unreachable_database_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    assert main(["ask", "conversion"]) == 1
    err = capsys.readouterr().err
    assert "could not answer" in err and "Traceback" not in err and err.count("\n") == 1


def test_metrics_lists_every_kpi_with_its_aliases(env, capsys):
    assert main(["metrics", "--json"]) == 0
    catalog = json.loads(capsys.readouterr().out)
    keys = {m["key"] for m in catalog}
    assert {"revenue", "orders", "aov", "conversion_rate", "cac", "clv", "clv_cac_ratio", "return_rate",
            "new_customers", "returning_customer_rate", "sessions", "visitors", "cart_abandonment_rate",
            "email_open_rate"} <= keys
    conv = next(m for m in catalog if m["key"] == "conversion_rate")
    assert "taux de conversion" in conv["aliases"]["fr"]


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "kpi.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("db", "metrics", "ask", "import", "demo-data"):
        assert command in out


def test_import_loads_all_or_nothing_and_logs_every_run(env, tmp_path, capsys):
    assert main(["db", "upgrade"]) == 0
    bad = tmp_path / "orders.csv"
    bad.write_text("order_id,customer_id,placed_at,subtotal,currency\n"
                   "A1,c1,2026-11-20 10:00,12.50,EUR\nA2,c2,2026-11-21 11:00,-3,EUR\nA3,c3,2026-11-22,x,EUR\n")
    assert main(["import", str(bad), "--table", "orders"]) == 2
    err = capsys.readouterr().err
    # a negative subtotal is a credit note (a return), not an error: only line 4 is refused, and the file
    # with it (its return included)
    assert "line 4:" in err and "line 3:" not in err and "nothing was loaded" in err and "Traceback" not in err
    good = tmp_path / "good.csv"
    good.write_text("order_id,customer_id,placed_at,subtotal,currency\nA1,c1,2026-11-20 10:00,12.50,EUR\n")
    assert main(["import", str(good), "--table", "orders"]) == 0
    assert main(["import", str(good), "--table", "orders", "--force"]) == 0  # loaded before: only when forced
    out = capsys.readouterr().out
    assert "1 inserted" in out and "1 unchanged" in out
    engine = make_engine(env)
    with engine.connect() as conn:
        runs = conn.exec_driver_sql("SELECT status, inserted, unchanged FROM import_runs ORDER BY id").all()
        orders = conn.exec_driver_sql("SELECT order_id FROM orders").all()
        returns = conn.exec_driver_sql("SELECT count(*) FROM returns").scalar()
    engine.dispose()
    assert returns == 0
    assert [tuple(r) for r in runs] == [("refused", 0, 0), ("loaded", 1, 0), ("loaded", 0, 1)]
    assert [r[0] for r in orders] == ["A1"]
