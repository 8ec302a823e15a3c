"""The canonical shop data (the *source*), DESIGN.md section 3.

Field names are a contract: the importer, the catalog, the docs and the tests use them. Timestamps are
stored as naive UTC; ``traffic.day`` and ``marketing_spend.day`` are dates in the shop's time zone.
Every time column is indexed (with the columns the headline KPIs read, so that a time-window query
is an index range scan that touches only the window).
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateTable

from kpi.db_clickhouse import create_tables, is_clickhouse
from kpi.db_writing import writing

source_metadata = MetaData()
# column stores: the tables without the secondary indexes (a scan reads only the columns it needs, and skips
# row groups by their min/max; an ART index on DuckDB would slow every import and hold memory)
COLUMNAR = {"duckdb", "chdb", "clickhousedb", "clickhouse"}
# an ISO 3166 alpha-2 code, or a country as the data wrote it when it is none ("European Community")
COUNTRY_LEN = 64


def _money(name: str, nullable: bool = False) -> Column:
    return Column(name, Numeric(14, 2, asdecimal=False), nullable=nullable)


orders = Table(
    "orders",
    source_metadata,
    Column("order_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=True),  # NULL: a guest order (no customer account)
    Column("placed_at", DateTime(), nullable=False),
    Column("status", String(16), nullable=False, server_default="placed"),
    _money("subtotal"),
    _money("discount"),
    _money("shipping"),
    _money("tax"),
    Column("currency", String(3), nullable=False),
    Column("channel", String(64), nullable=False, server_default="unknown"),
    Column("device", String(32), nullable=False, server_default="unknown"),
    Column("country", String(COUNTRY_LEN), nullable=False, server_default="ZZ"),
    # the window KPIs (revenue, orders, AOV, conversion, the customers' revenue without guests, the check that a
    # period's orders are in one currency) read only this index: a covering range scan
    Index("ix_orders_placed_at", "placed_at", "status", "subtotal", "customer_id", "currency"),
    Index("ix_orders_customer", "customer_id", "placed_at"),
    # the least and greatest currency in two index probes: when every order is in the answer's currency, the
    # engine's sums skip checking each row's (28-65% of a daily series' time)
    Index("ix_orders_currency", "currency"),
)

returns = Table(
    "returns",
    source_metadata,
    Column("return_id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("returned_at", DateTime(), nullable=False),
    _money("amount"),
    Column("items", Integer, nullable=False, server_default="1"),
    # the return's own dimensions (its order's, or the credit note's own line): a return whose order is
    # not in the data still counts in its breakdowns
    Column("channel", String(64), nullable=True),
    Column("device", String(32), nullable=True),
    Column("country", String(COUNTRY_LEN), nullable=True),
    Column("customer_id", String(64), nullable=True),
    Index("ix_returns_returned_at", "returned_at"),
    Index("ix_returns_order", "order_id"),
)
# SQLAlchemy does not reflect an index on an expression on SQLite and warns at every reflection of the table
# (the engine's, the dimension values'): it is ours and expected
EXPRESSION_INDEX_WARNING = "Skipped unsupported reflection of expression-based index"
warnings.filterwarnings("ignore", message=EXPRESSION_INDEX_WARNING)

# a goal or a question filtered by channel ("email revenue this year") reads its channel's rows only: the engine
# compares lower(channel) (people type "email" for "Email"); the key and the columns after it make it a covering
# range scan (a 365-day email series at 10M orders on PostgreSQL: 2.6 s without it, 0.2 s with it)
Index("ix_orders_channel_time", func.lower(orders.c.channel), orders.c.placed_at, orders.c.status,
      orders.c.subtotal, orders.c.channel, orders.c.currency)

customers = Table(
    "customers",
    source_metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("first_order_at", DateTime(), nullable=True),
    Column("acquisition_channel", String(64), nullable=False, server_default="unknown"),
    Column("country", String(COUNTRY_LEN), nullable=False, server_default="ZZ"),
    Index("ix_customers_first_order_at", "first_order_at"),
)

traffic = Table(
    "traffic",
    source_metadata,
    Column("day", Date(), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("device", String(32), primary_key=True),
    Column("country", String(COUNTRY_LEN), primary_key=True),
    Column("sessions", Integer, nullable=False),
    Column("visitors", Integer, nullable=False),
    Column("carts", Integer, nullable=False, server_default="0"),
)

marketing_spend = Table(
    "marketing_spend",
    source_metadata,
    Column("day", Date(), primary_key=True),
    Column("channel", String(64), primary_key=True),
    _money("amount"),
)

email_campaigns = Table(
    "email_campaigns",
    source_metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("sent_at", DateTime(), nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("unique_opens", Integer, nullable=False),
    Column("clicks", Integer, nullable=False, server_default="0"),
    Index("ix_email_campaigns_sent_at", "sent_at"),
)

SOURCE_TABLES: dict[str, Table] = {t.name: t for t in source_metadata.sorted_tables}


def index_columns(bind, table: str) -> dict[str, list[str | None]]:
    """The indexes of ``table``: name -> its columns in order, None for an expression (``lower(channel)``).
    SQLite's reflection skips an index on an expression, with a warning: those are read from its catalog."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=EXPRESSION_INDEX_WARNING)
        found = {ix["name"]: list(ix["column_names"]) for ix in inspect(bind).get_indexes(table)}
    if bind.dialect.name == "sqlite":
        with bind.connect() if isinstance(bind, Engine) else nullcontext(bind) as conn:
            names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                         "AND sql IS NOT NULL", (table,)).scalars().all()
            for name in names:
                if name not in found:
                    quoted = conn.dialect.identifier_preparer.quote(name)
                    found[name] = [row[2] for row in conn.exec_driver_sql(f"PRAGMA index_info({quoted})")]
    return found


def create_source_tables(engine: Engine) -> list[str]:
    """Create the canonical tables (and their indexes) that do not exist yet; return the names created.

    Existing tables or views of the same name are left alone: a user may point ``KPI_SOURCE_URL`` at a
    database whose ``orders`` is a view over their own schema.
    """
    existing = set(inspect(engine).get_table_names()) | set(inspect(engine).get_view_names())
    missing = [t for t in source_metadata.sorted_tables if t.name not in existing]
    if not missing:
        return []
    if is_clickhouse(engine):  # one CREATE TABLE is atomic: made in place (and in an import's staging copy)
        create_tables(engine, missing)
        return [t.name for t in missing]
    with writing(engine) as writer:  # DuckDB: a private copy, published at the end (kpi.db_writing)
        if writer.dialect.name in COLUMNAR:
            with writer.begin() as conn:
                for table in missing:
                    conn.execute(CreateTable(table))
        else:
            source_metadata.create_all(writer, tables=missing)
    return [t.name for t in missing]


def stored_currency(engine: Engine) -> str | None:
    """The currency of the orders stored in the source (one row read), None when there are none yet or the
    source has no orders table."""
    names = set(inspect(engine).get_table_names()) | set(inspect(engine).get_view_names())
    if "orders" not in names:
        return None
    with engine.connect() as conn:
        value = conn.execute(select(orders.c.currency).limit(1)).scalar()
    return str(value).strip().upper() if value else None
