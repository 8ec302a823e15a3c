"""`kpibot db upgrade` on a source an earlier version made: the covering index rebuilt (only then, never before an
import), and the returns' new columns added and filled in one transaction (a failed fill leaves no half-done
table behind), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import inspect

from kpi.data import source_schema
from kpi.data.schema import index_columns
from kpi.data.source_schema import upgrade_source
from kpi.db import make_engine

from .test_import_real import old_schema


def _columns(engine, table: str, index: str) -> list[str]:
    return index_columns(engine, table)[index]


@pytest.fixture
def old_source(database_url):
    engine = make_engine(database_url)
    old = old_schema()
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.tables["orders"].insert(), [
            {"order_id": "A1", "customer_id": "c1", "placed_at": datetime(2026, 10, 1), "subtotal": 50,
             "discount": 0, "shipping": 0, "tax": 0, "currency": "EUR", "channel": "email", "country": "FR"}])
        conn.execute(old.tables["returns"].insert(), [
            {"return_id": "R1", "order_id": "A1", "returned_at": datetime(2026, 10, 3), "amount": 20}])
    yield engine
    engine.dispose()


def test_the_covering_index_is_rebuilt_by_db_upgrade_only(old_source):
    assert _columns(old_source, "orders", "ix_orders_placed_at") == ["placed_at", "status", "subtotal"]
    upgrade_source(old_source)  # what an import runs first: no index is built behind the user's back...
    if old_source.dialect.name == "sqlite":  # ...except that SQLite rebuilt the whole table (guests: customer_id
        # may be empty, which SQLite cannot change in place), indexes included; put the old one back to go on
        with old_source.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_orders_placed_at")
            conn.exec_driver_sql("CREATE INDEX ix_orders_placed_at ON orders (placed_at, status, subtotal)")
    assert _columns(old_source, "orders", "ix_orders_placed_at") == ["placed_at", "status", "subtotal"]
    assert upgrade_source(old_source) == []
    said = " | ".join(map(str, upgrade_source(old_source, indexes=True)))
    assert "ix_orders_placed_at" in said
    assert _columns(old_source, "orders", "ix_orders_placed_at") == [
        "placed_at", "status", "subtotal", "customer_id", "currency"]
    assert set(index_columns(old_source, "orders")) == {  # the one built beside it was renamed, not left over
        "ix_orders_placed_at", "ix_orders_customer", "ix_orders_currency", "ix_orders_channel_time"}
    assert upgrade_source(old_source, indexes=True) == []


def test_a_fill_that_fails_takes_the_new_columns_with_it(old_source, monkeypatch):
    monkeypatch.setitem(source_schema.RETURN_DIMENSIONS, "channel", "no_such_column")  # the fill's UPDATE fails
    with pytest.raises(Exception):  # noqa: B017 - the database's own error, whichever the dialect raises
        upgrade_source(old_source)
    assert "channel" not in {c["name"] for c in inspect(old_source).get_columns("returns")}
    monkeypatch.undo()
    upgrade_source(old_source)  # the next upgrade adds and fills them
    with old_source.connect() as conn:
        assert conn.exec_driver_sql("SELECT channel, country FROM returns").all() == [("email", "FR")]
