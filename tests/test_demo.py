"""The synthetic shop (kpi/data/demo.py): deterministic, refuses to overwrite, internally consistent, and
shaped like a real shop's KPIs. Every test runs on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text

import kpi.data.demo as demo
from kpi.data.demo import DemoSummary, generate_demo_data, source_is_empty
from kpi.data.schema import (
    SOURCE_TABLES,
    create_source_tables,
    customers,
    email_campaigns,
    marketing_spend,
    orders,
    returns,
    traffic,
)
from kpi.db import make_engine
from kpi.errors import KpiError

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2026, 4, 15)  # 60 days back covers the spring-forward of 2026-03-29
SMALL = dict(days=60, orders_per_day=50, today=TODAY, tz=PARIS)

KEYS = {
    "orders": "order_id",
    "returns": "return_id",
    "customers": "customer_id",
    "traffic": "day, channel, device, country",
    "marketing_spend": "day, channel",
    "email_campaigns": "campaign_id",
}


def _frame(conn, table) -> pd.DataFrame:
    rows = conn.execute(select(table)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in table.columns])


def _load(engine) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        return {name: _frame(conn, t) for name, t in SOURCE_TABLES.items()}


def _normal(value):
    if isinstance(value, float | int):  # SQLite hands back a whole-number NUMERIC as an int
        return round(float(value), 2)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _checksums(engine) -> dict[str, str]:
    """A digest of every row of every table, in key order, independent of the backend."""
    out = {}
    with engine.connect() as conn:
        for name, table in SOURCE_TABLES.items():
            key = [table.c[k.strip()] for k in KEYS[name].split(",")]
            rows = conn.execute(select(table).order_by(*key)).all()
            body = repr([tuple(_normal(v) for v in row) for row in rows])
            out[name] = hashlib.sha256(body.encode()).hexdigest()
    return out


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(t)).scalar_one() for name, t in SOURCE_TABLES.items()}


def _local_days(naive_utc: pd.Series, tz: ZoneInfo) -> pd.Series:
    return pd.to_datetime(naive_utc).dt.tz_localize("UTC").dt.tz_convert(tz).dt.date


@pytest.fixture
def small(source_engine) -> tuple[DemoSummary, dict[str, pd.DataFrame]]:
    summary = generate_demo_data(source_engine, seed=7, **SMALL)
    return summary, _load(source_engine)


def test_summary_matches_the_tables(source_engine, small):
    summary, data = small
    assert summary.days == 60
    assert summary.first_day == TODAY - timedelta(days=60)
    assert summary.last_day == TODAY - timedelta(days=1)
    assert _counts(source_engine) == {
        "orders": summary.orders,
        "returns": summary.returns,
        "customers": summary.customers,
        "traffic": summary.traffic_rows,
        "marketing_spend": summary.spend_rows,
        "email_campaigns": summary.campaigns,
    }
    assert 0.8 * 60 * 50 <= summary.orders <= 1.2 * 60 * 50  # orders_per_day is the period's average
    assert summary.campaigns >= 12  # about two a week
    assert summary.seconds > 0
    assert "orders" in summary.describe()
    # everything falls on the demo's local days, stored as naive UTC
    o = data["orders"]
    assert o["placed_at"].map(lambda t: t.tzinfo is None).all()
    placed_days = _local_days(o["placed_at"], PARIS)
    assert placed_days.min() == summary.first_day and placed_days.max() == summary.last_day
    assert set(data["traffic"]["day"]) == {summary.first_day + timedelta(days=i) for i in range(60)}
    assert set(data["marketing_spend"]["day"]) <= set(data["traffic"]["day"])
    sent_days = _local_days(data["email_campaigns"]["sent_at"], PARIS)
    assert sent_days.min() >= summary.first_day and sent_days.max() <= summary.last_day
    assert set(o["currency"]) == {"USD"}
    assert set(o["status"]) == {"placed", "cancelled"}
    assert o["order_id"].is_unique and data["customers"]["customer_id"].is_unique


def test_same_seed_same_rows_on_any_database(source_engine, tmp_path):
    generate_demo_data(source_engine, seed=11, **SMALL)
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        generate_demo_data(other, seed=11, **SMALL)  # creates the tables itself
        assert _checksums(source_engine) == _checksums(other)
        generate_demo_data(other, seed=12, replace=True, **SMALL)
        different = _checksums(other)
    finally:
        other.dispose()
    assert all(different[name] != same for name, same in _checksums(source_engine).items())


def test_generic_sqlalchemy_path_writes_the_same_rows(source_engine, tmp_path, monkeypatch):
    """The fast paths (executemany / COPY with text timestamps) store what SQLAlchemy itself would."""
    generate_demo_data(source_engine, seed=5, days=20, orders_per_day=30, today=TODAY, tz=PARIS)
    monkeypatch.setattr(demo, "_sink_for", demo._SqlAlchemySink)
    other = make_engine(f"sqlite:///{tmp_path / 'generic.db'}")
    try:
        generate_demo_data(other, seed=5, days=20, orders_per_day=30, today=TODAY, tz=PARIS)
        assert _checksums(source_engine) == _checksums(other)
        if source_engine.dialect.name == "sqlite":  # byte for byte, as stored
            query = text("SELECT order_id, placed_at, subtotal, tax FROM orders ORDER BY order_id")
            with source_engine.connect() as a, other.connect() as b:
                assert a.execute(query).all() == b.execute(query).all()
    finally:
        other.dispose()


def test_refuses_a_source_with_data_and_replace_replaces(source_engine):
    assert source_is_empty(source_engine)
    first = generate_demo_data(source_engine, seed=1, **SMALL)
    assert not source_is_empty(source_engine)
    before = _checksums(source_engine)
    with pytest.raises(KpiError, match="already holds shop data"):
        generate_demo_data(source_engine, seed=2, **SMALL)
    assert _checksums(source_engine) == before  # nothing was touched

    second = generate_demo_data(source_engine, seed=2, days=30, orders_per_day=40, today=TODAY, tz=PARIS, replace=True)
    assert second.orders != first.orders
    assert _counts(source_engine)["orders"] == second.orders  # nothing left over from the first run
    assert _counts(source_engine)["traffic"] == second.traffic_rows
    with source_engine.connect() as conn:
        first_placed = conn.execute(select(func.min(orders.c.placed_at))).scalar_one()
    assert first_placed >= datetime(2026, 3, 15) - timedelta(hours=2)


def test_refuses_when_any_canonical_table_holds_rows(source_engine):
    with source_engine.begin() as conn:
        conn.execute(marketing_spend.insert(), [{"day": date(2026, 1, 1), "channel": "social", "amount": 10.0}])
    assert source_is_empty(source_engine)  # no orders, no traffic
    with pytest.raises(KpiError, match="marketing_spend"):
        generate_demo_data(source_engine, **SMALL)
    summary = generate_demo_data(source_engine, replace=True, **SMALL)
    assert _counts(source_engine)["marketing_spend"] == summary.spend_rows


def test_empty_database_without_tables(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    try:
        assert source_is_empty(engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE unrelated (x INTEGER)"))
        assert source_is_empty(engine)
        create_source_tables(engine)
        with engine.begin() as conn:
            conn.execute(traffic.insert(), [{"day": date(2026, 1, 1), "channel": "direct", "device": "mobile",
                                             "country": "US", "sessions": 3, "visitors": 2, "carts": 0}])
        assert not source_is_empty(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"days": 0}, "--days"),
        ({"orders_per_day": 0}, "--orders-per-day"),
        ({"seed": -1}, "--seed"),
        ({"currency": "dollars"}, "currency"),
    ],
)
def test_rejects_bad_arguments(source_engine, kwargs, message):
    args = {**SMALL, **kwargs}
    with pytest.raises(KpiError, match=message):
        generate_demo_data(source_engine, **args)
    assert source_is_empty(source_engine)


def test_kpis_computed_from_the_tables_are_plausible(small):
    summary, data = small
    o, t, r = data["orders"], data["traffic"], data["returns"]
    ok = o[o["status"] == "placed"]
    assert 0.01 <= (o["status"] == "cancelled").mean() <= 0.05

    conversion = len(ok) / t["sessions"].sum()
    assert 0.01 <= conversion <= 0.05
    assert 0.5 <= 1 - len(ok) / t["carts"].sum() <= 0.9  # cart abandonment
    assert 0.03 <= len(r) / len(ok) <= 0.10  # return rate
    assert 50 <= ok["subtotal"].mean() <= 100  # average order value
    assert (t["visitors"] <= t["sessions"]).all() and (t["visitors"] >= 1).all()
    assert (t["carts"] <= t["sessions"]).all()
    assert t["visitors"].sum() < 0.9 * t["sessions"].sum()
    # orders come from the traffic: no cell has more orders than carts
    o_cells = o.assign(day=_local_days(o["placed_at"], PARIS)).groupby(["day", "channel", "device", "country"]).size()
    carts = t.set_index(["day", "channel", "device", "country"])["carts"]
    assert (o_cells <= carts.reindex(o_cells.index, fill_value=0)).all()
    # conversion by channel and device: email and desktop convert best, social and mobile worst
    by_channel = ok.groupby("channel").size() / t.groupby("channel")["sessions"].sum()
    by_device = ok.groupby("device").size() / t.groupby("device")["sessions"].sum()
    assert by_channel["email"] > by_channel["organic_search"] > by_channel["social"]
    assert by_device["desktop"] > by_device["mobile"]
    assert t.groupby("device")["sessions"].sum().idxmax() == "mobile"
    # money adds up
    assert (o[["subtotal", "discount", "shipping", "tax"]] >= 0).all().all()
    cents = o[["subtotal", "discount", "shipping", "tax"]].to_numpy(dtype=float) * 100
    assert np.allclose(cents, cents.round(), atol=1e-6)  # whole cents


def test_customers_are_consistent_with_orders(small):
    summary, data = small
    o, c = data["orders"], data["customers"]
    assert set(o["customer_id"]) == set(c["customer_id"])  # every order's customer, and no others
    ok = o[o["status"] == "placed"].sort_values(["placed_at", "order_id"])
    first = ok.groupby("customer_id").first()
    c = c.set_index("customer_id")
    with_order = c.loc[first.index]
    assert (with_order["first_order_at"] == first["placed_at"]).all()
    assert (with_order["acquisition_channel"] == first["channel"]).all()
    assert (with_order["country"] == first["country"]).all()
    never = c.index.difference(first.index)  # customers whose orders were all cancelled
    assert c.loc[never, "first_order_at"].isna().all()
    # an order's country is its customer's
    assert (o["country"].to_numpy() == c.loc[o["customer_id"], "country"].to_numpy()).all()

    # new customers every day; a growing share of returning customers
    new_per_day = _local_days(c["first_order_at"].dropna(), PARIS).value_counts()
    assert len(new_per_day) == summary.days and new_per_day.min() > 0
    ok = ok.assign(first=ok["customer_id"].map(c["first_order_at"]))
    half = pd.Timestamp(datetime.combine(summary.first_day + timedelta(days=30), datetime.min.time()))
    second = ok[ok["placed_at"] >= half]
    repeat_share = (second["placed_at"] > second["first"]).mean()  # orders by customers seen before
    assert repeat_share > 0.10
    first_half = ok[ok["placed_at"] < half]
    assert repeat_share > (first_half["placed_at"] > first_half["first"]).mean()
    per_customer = second.groupby("customer_id")["first"].first()
    assert (per_customer < half).mean() > 0.05  # the KPI's returning customer rate
    # marketing economics: CAC and CLV
    cac = data["marketing_spend"]["amount"].sum() / c["first_order_at"].notna().sum()
    clv = ok["subtotal"].sum() / ok["customer_id"].nunique()
    assert 15 <= cac <= 60
    assert clv / cac > 1


def test_returns_and_campaigns_are_consistent(small):
    summary, data = small
    o = data["orders"].set_index("order_id")
    r = data["returns"]
    assert r["return_id"].is_unique
    assert r["order_id"].isin(o.index).all()
    assert r["order_id"].is_unique  # at most one return per order
    placed = o.loc[r["order_id"], "placed_at"].to_numpy()
    delay = (r["returned_at"].to_numpy() - placed) / np.timedelta64(1, "D")
    assert delay.min() >= 3 and delay.max() <= 30
    assert (o.loc[r["order_id"], "status"] == "placed").all()
    assert _local_days(r["returned_at"], PARIS).max() <= summary.last_day
    assert (r["amount"].to_numpy() <= o.loc[r["order_id"], "subtotal"].to_numpy()).all()
    assert (r["amount"] > 0).all() and (r["items"] >= 1).all()

    e = data["email_campaigns"]
    assert (e["unique_opens"] <= e["delivered"]).all() and (e["clicks"] <= e["unique_opens"]).all()
    assert e["delivered"].min() >= 1000
    assert 0.2 <= e["unique_opens"].sum() / e["delivered"].sum() <= 0.35
    spend = data["marketing_spend"]
    assert set(spend["channel"]) == {"paid_search", "social", "email"}
    by_channel = spend.groupby("channel")["amount"].sum()
    assert by_channel["email"] < by_channel["social"] < by_channel["paid_search"]


def test_two_years_show_trend_and_seasonality(source_engine):
    tz = ZoneInfo("America/New_York")
    summary = generate_demo_data(source_engine, days=730, orders_per_day=100, seed=3, today=date(2026, 1, 10), tz=tz)
    with source_engine.connect() as conn:
        rows = conn.execute(
            select(orders.c.placed_at, orders.c.subtotal).where(orders.c.status == "placed")
        ).all()
        sessions = pd.DataFrame(conn.execute(select(traffic.c.day, traffic.c.sessions)).all(), columns=["day", "sessions"])
    o = pd.DataFrame(rows, columns=["placed_at", "subtotal"])
    o["day"] = pd.to_datetime(_local_days(o["placed_at"], tz))
    daily = o.groupby("day").agg(revenue=("subtotal", "sum"), orders=("subtotal", "size"))
    assert len(daily) == 730
    mean = daily["revenue"].mean()
    month = daily.index.month
    assert daily.loc[month.isin([11, 12]), "revenue"].mean() > 1.1 * mean  # the holiday peak
    assert daily.loc[month.isin([7, 8]), "revenue"].mean() < mean  # the summer dip
    weekday = daily.groupby(daily.index.day_of_week)["orders"].mean()
    assert weekday[5] < weekday.mean()  # a Saturday dip
    growth = daily["revenue"].iloc[365:].sum() / daily["revenue"].iloc[:365].sum()
    assert 1.05 <= growth <= 1.4
    # Black Friday 2025 (28 November) is the best day of its month
    november = daily.loc["2025-11"]
    assert november["orders"].idxmax() == pd.Timestamp("2025-11-28")
    # traffic follows the same calendar
    sessions["day"] = pd.to_datetime(sessions["day"])
    by_day = sessions.groupby("day")["sessions"].sum()
    assert by_day.loc["2025-11-28"] > 1.5 * by_day.loc["2025-10"].mean()
    # returning customer rate over the last quarter, as the KPI defines it
    with source_engine.connect() as conn:
        start = datetime(2025, 10, 1, 4)
        ordering = select(orders.c.customer_id).where(orders.c.status == "placed", orders.c.placed_at >= start).distinct()
        total = conn.execute(select(func.count()).select_from(ordering.subquery())).scalar_one()
        known = conn.execute(
            select(func.count()).select_from(customers).where(
                customers.c.customer_id.in_(ordering), customers.c.first_order_at < start
            )
        ).scalar_one()
        campaigns = conn.execute(select(func.count()).select_from(email_campaigns)).scalar_one()
        n_returns = conn.execute(select(func.count()).select_from(returns)).scalar_one()
    assert 0.25 <= known / total <= 0.45
    assert 180 <= campaigns <= 280
    assert 0.04 <= n_returns / summary.orders <= 0.08


@pytest.mark.parametrize("days, per_day", [(1, 1), (3, 2)])
def test_tiny_shops(source_engine, days, per_day):
    summary = generate_demo_data(source_engine, days=days, orders_per_day=per_day, seed=0,
                                 today=datetime(2026, 3, 29, 12), tz=ZoneInfo("UTC"))
    assert summary.first_day == date(2026, 3, 29) - timedelta(days=days)
    assert summary.returns == 0  # returns come 3 days or more after their order
    counts = _counts(source_engine)
    assert counts["orders"] == summary.orders and counts["customers"] == summary.customers
    assert counts["traffic"] == summary.traffic_rows > 0
