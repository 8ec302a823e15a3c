"""ClickHouse as the source: chdb in process (``chdb:///path``, chdb-sqlalchemy's dialect ``chdb``) and a
ClickHouse server (``clickhousedb://user:password@host:8123/shop``, clickhouse-connect's dialect).

Tables: ``MergeTree`` sorted by time first (``ORDER BY (placed_at, order_id)``...), so that a time window
reads only its granules; with lightweight updates on (``enable_block_number_column``,
``enable_block_offset_column``), so that an import can ``UPDATE`` a row it has again.

Imports: ClickHouse has no transactions. ``writing(engine)`` (kpi.db_writing) gives an engine whose tables are
those of a staging database (``<database>_kpi_staging``: SQLAlchemy's ``schema_translate_map``) holding a copy
of the bot's tables; when the import ends without an error, each table is swapped with its copy by
``EXCHANGE TABLES`` (atomic per table), and the staging database, now holding the old tables, is dropped. A
refused or failed file drops the staging database: nothing of it was ever in the bot's tables. What holds:
a reader sees each table before or after the import, never a part of a file; between the swaps of two tables
(microseconds) it may see the new orders with the old customers.

chdb's own ``default`` database (engine Overlay) cannot exchange tables with another database: on chdb the
bot's tables live in the database ``kpi`` (Atomic), which each connection USEs.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateTable

from kpi.errors import KpiError
from kpi.i18n import N_

DIALECTS = {"chdb", "clickhousedb", "clickhouse"}
CHDB_DATABASE = "kpi"
# the sorting key of each canonical table: time first
ORDER_BY = {
    "orders": ("placed_at", "order_id"),
    "returns": ("returned_at", "return_id"),
    "customers": ("customer_id",),
    "traffic": ("day", "channel", "device", "country"),
    "marketing_spend": ("day", "channel"),
    "email_campaigns": ("sent_at", "campaign_id"),
}
# standard SQL where ClickHouse's defaults differ: an outer join's missing side is NULL (not '' or 0), and so is an
# aggregate over no row (MIN of no currency is NULL, not '')
SESSION_SETTINGS = {"join_use_nulls": 1, "aggregate_functions_null_for_empty": 1}
BOT_TABLES = {*ORDER_BY, "kpibot_imported_files"}  # what an import writes (and so copies)
SETTINGS = "enable_block_number_column = 1, enable_block_offset_column = 1"


def is_clickhouse(engine) -> bool:
    return engine.dialect.name in DIALECTS


def chdb_engine(url: str, **kwargs) -> Engine:
    """An engine on a chdb directory whose connections use the database ``kpi`` (made when missing)."""
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _use(dbapi_conn, _record):  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {CHDB_DATABASE} ENGINE = Atomic")
        cur.execute(f"USE {CHDB_DATABASE}")
        for name, value in SESSION_SETTINGS.items():
            cur.execute(f"SET {name} = {value}")
        cur.close()

    return engine


def create_table_sql(table, dialect) -> str:
    """``CREATE TABLE`` for ``table`` on ClickHouse: its columns as SQLAlchemy compiles them, a MergeTree
    sorted by time, lightweight updates on."""
    ddl = str(CreateTable(table).compile(dialect=dialect)).rstrip()
    body = ddl.split("\nENGINE")[0].rstrip()  # the column list, without the dialect's own ENGINE clause
    q = dialect.identifier_preparer.quote
    key = ORDER_BY.get(table.name) or tuple(c.name for c in table.primary_key.columns)
    order = ", ".join(q(c) for c in key) if key else ""
    return f"{body}\nENGINE = MergeTree\nORDER BY ({order})\nSETTINGS {SETTINGS}"


def create_tables(engine, tables) -> None:
    """The tables made in the live database, and in the staging one when ``engine`` is an import's writer."""
    stage = (engine.get_execution_options().get("schema_translate_map") or {}).get(None)
    q = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        for table in tables:
            sql = create_table_sql(table, conn.dialect)
            conn.exec_driver_sql(sql)
            if stage:
                conn.exec_driver_sql(sql.replace("CREATE TABLE ", f"CREATE TABLE {q(stage)}.", 1))


def _database(conn) -> str:
    return conn.exec_driver_sql("SELECT currentDatabase()").scalar()


@contextmanager
def staging(engine: Engine):
    """See the module's docstring: an engine writing into a staging copy, swapped in at the end."""
    q = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        live = _database(conn)
        stage = f"{live}_kpi_staging"
        engines = dict(conn.execute(text("SELECT name, engine FROM system.tables WHERE database = :d"), {"d": live}).all())
        tables = sorted(n for n in engines if n in BOT_TABLES)  # the shop's own tables are not the bot's to copy
        spread = [n for n in tables if not str(engines[n]).endswith("MergeTree")]
        if spread:  # a copy of a Distributed table would write into the shards: the cluster is loaded otherwise
            raise KpiError(N_("The tables {tables} of this ClickHouse database are not MergeTree tables (a "
                              "Distributed table over shards?): load the shards' own tables with your pipeline; "
                              "the bot only reads a cluster."), tables=", ".join(spread))
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(stage)} SYNC")
        conn.exec_driver_sql(f"CREATE DATABASE {q(stage)} ENGINE = Atomic")
        for name in tables:
            conn.exec_driver_sql(f"CREATE TABLE {q(stage)}.{q(name)} AS {q(live)}.{q(name)}")
            conn.exec_driver_sql(f"INSERT INTO {q(stage)}.{q(name)} SELECT * FROM {q(live)}.{q(name)}")  # noqa: S608
    writer = engine.execution_options(schema_translate_map={None: stage})
    try:
        yield writer
    except BaseException:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(stage)} SYNC")
        raise
    with engine.connect() as conn:
        def names(database: str) -> set[str]:
            return set(conn.execute(text("SELECT name FROM system.tables WHERE database = :d"), {"d": database}).scalars())

        now = names(live)
        for name in sorted(names(stage)):
            if name in now:
                conn.exec_driver_sql(f"EXCHANGE TABLES {q(stage)}.{q(name)} AND {q(live)}.{q(name)}")
            else:  # made by the import (a table it creates): moved in
                conn.exec_driver_sql(f"RENAME TABLE {q(stage)}.{q(name)} TO {q(live)}.{q(name)}")
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(stage)} SYNC")
