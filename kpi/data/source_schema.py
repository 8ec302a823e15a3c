"""Bringing a source database made by an earlier version up to the canonical schema (kpi.data.schema).

``upgrade_source(engine)`` looks first (one inspection) and changes only what differs, so that it is
cheap when there is nothing to do and can run before every import:

- the canonical tables that are missing are created;
- ``returns`` gets its own dimensions (``channel``, ``device``, ``country``, ``customer_id``), filled
  from each return's order in one UPDATE ("unknown" / ZZ when the order is not in the data);
- ``orders.customer_id`` becomes nullable (guest orders) and the ``country`` columns hold 64 characters
  (a country as the data wrote it). PostgreSQL: ``ALTER TABLE``. SQLite cannot drop a NOT NULL: the
  table is rebuilt by SQLite's documented procedure (create the new table, copy, drop, rename, indexes
  again) in one transaction; its text columns have no length to widen.

Only tables the bot made are touched: a table (or a view) whose columns are not the canonical ones is a
user's own and is left alone.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Column, Index, MetaData, Table, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from kpi.data import schema
from kpi.data.messages import Text
from kpi.db_writing import writing
from kpi.i18n import N_

RETURN_DIMENSIONS = {"channel": "'unknown'", "device": "'unknown'", "country": "'ZZ'", "customer_id": None}
_BEFORE = {  # the canonical columns of the first version of each table
    "returns": {"return_id", "order_id", "returned_at", "amount", "items"},
}


def _canonical(table: Table, columns: set[str]) -> bool:
    """``columns`` are the table's canonical ones (of this version or the first one)."""
    now = {c.name for c in table.columns}
    return columns == now or columns == _BEFORE.get(table.name, now)


def upgrade_source(engine: Engine, *, indexes: bool = False) -> list[str]:
    """Bring the source's canonical tables to this version's schema; what was changed, one line each.
    ``indexes``: also make the indexes this version defines differently (``kpibot db upgrade``, the release step;
    never before an import: building an index on a large table is the operator's moment to choose)."""
    if getattr(engine, "kpi_duckdb_path", None):  # a DuckDB file: changed on a private copy (kpi.db_writing)
        with writing(engine) as writer:
            if writer is not engine:
                return upgrade_source(writer, indexes=indexes)
    changes: list[str] = []
    created = schema.create_source_tables(engine)
    if created:
        changes.append(Text(N_("created tables: {tables}"), tables=", ".join(created)))
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    columns = {name: {c["name"]: c for c in insp.get_columns(name)} for name in schema.SOURCE_TABLES
               if name in tables and name not in created}
    dialect = engine.dialect.name

    returns_cols = columns.get("returns")
    if returns_cols is not None and _canonical(schema.returns, set(returns_cols)):
        missing = [c for c in RETURN_DIMENSIONS if c not in returns_cols]
        if missing:
            _add_return_dimensions(engine, missing, orders_ok="orders" in columns)
            changes.append(Text(N_("returns: added columns {columns}, filled from their orders"),
                                columns=", ".join(missing)))

    orders_cols = columns.get("orders")
    if orders_cols is not None and _canonical(schema.orders, set(orders_cols)) \
            and not orders_cols["customer_id"].get("nullable", True):
        if dialect == "sqlite":
            _rebuild_sqlite(engine, schema.orders, list(orders_cols))
        elif dialect == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL")
        if dialect in ("sqlite", "postgresql"):
            changes.append(Text(N_("orders: customer_id may be empty (guest orders)")))

    if dialect == "postgresql":
        widened = []
        with engine.begin() as conn:
            for name in ("orders", "customers", "traffic", "returns"):
                col = columns.get(name, {}).get("country")
                length = getattr(col["type"], "length", None) if col else None
                if col is not None and length is not None and length < schema.COUNTRY_LEN \
                        and _canonical(schema.SOURCE_TABLES[name], set(columns[name])):
                    q = conn.dialect.identifier_preparer.quote
                    conn.exec_driver_sql(
                        f"ALTER TABLE {q(name)} ALTER COLUMN country TYPE VARCHAR({int(schema.COUNTRY_LEN)})"
                    )
                    widened.append(name)
        if widened:
            changes.append(Text(N_("country columns widened to {n} characters: {tables}"),
                                n=schema.COUNTRY_LEN, tables=", ".join(widened)))
    if indexes and dialect not in schema.COLUMNAR:
        changes += _indexes(engine, [name for name in columns
                                     if _canonical(schema.SOURCE_TABLES[name], set(columns[name]))])
    return changes


def _indexes(engine: Engine, names: list[str]) -> list[str]:
    """Each canonical table's indexes as this version defines them: one missing is created, one whose columns
    changed (a covering index that reads one more column) is made again."""
    changes: list[str] = []
    for name in names:
        have = schema.index_columns(engine, name)  # an expression (lower(channel)) is None in its place
        for index in schema.SOURCE_TABLES[name].indexes:
            wanted = [getattr(e, "name", None) if isinstance(e, Column) else None for e in index.expressions]
            if have.get(index.name) == wanted:
                continue
            with engine.begin() as conn:
                if index.name in have and conn.dialect.name == "postgresql":
                    # built beside the old one (reads go on: CREATE INDEX blocks writes only), then swapped: the
                    # exclusive lock of DROP INDEX is held for the swap, not for the build
                    q = conn.dialect.identifier_preparer.quote
                    building = Index(f"{index.name}__new", *[c.name for c in index.columns])
                    Table(name, MetaData(), *[Column(c.name, c.type) for c in index.columns], building)
                    building.create(conn)
                    index.drop(conn)
                    conn.exec_driver_sql(f"ALTER INDEX {q(building.name)} RENAME TO {q(index.name)}")
                else:  # SQLite writes one transaction at a time anyway; readers keep their snapshot
                    if index.name in have:
                        index.drop(conn)
                    index.create(conn)
            changes.append(Text(N_("{table}: index {index} on {columns}"), table=name, index=index.name,
                                columns=", ".join(e.name if isinstance(e, Column) else str(e) for e in index.expressions)))
    return changes


def _add_return_dimensions(engine: Engine, missing: list[str], orders_ok: bool) -> None:
    """The columns added and filled in one transaction: a fill that fails takes the new columns with it, so the
    next upgrade adds and fills them again (SQLite's driver would run ALTER TABLE outside the transaction: the
    transaction is opened explicitly there)."""
    q = engine.dialect.identifier_preparer.quote
    statements = [f"ALTER TABLE returns ADD COLUMN {q(name)} {schema.returns.c[name].type.compile(dialect=engine.dialect)}"
                  for name in missing]
    # identifiers and defaults are this module's constants; no value from the data is in the text
    sets = []
    for name in missing:
        found = (f"(SELECT o.{q(name)} FROM orders o WHERE o.order_id = returns.order_id)"  # noqa: S608
                 if orders_ok else "NULL")
        default = RETURN_DIMENSIONS[name]
        sets.append(f"{q(name)} = COALESCE({found}, {default})" if default else f"{q(name)} = {found}")
    statements.append("UPDATE returns SET " + ", ".join(sets))  # noqa: S608
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
        return
    with _sqlite_transaction(engine) as (_, cur):
        for sql in statements:
            cur.execute(sql)


def _rebuild_sqlite(engine: Engine, table: Table, old_columns: list[str]) -> None:
    """SQLite's twelve steps (sqlite.org/lang_altertable.html, "other kinds of table schema changes"):
    foreign keys off, one transaction: create the new table, copy the rows, drop the old one, rename the
    new one, create the indexes again, check the foreign keys, commit, foreign keys back on."""
    new = Table(f"{table.name}__new", MetaData(), *[Column(c.name, c.type, primary_key=c.primary_key,
                                                           nullable=c.nullable, server_default=c.server_default)
                                                    for c in table.columns])
    with _sqlite_transaction(engine, foreign_keys_off=True) as (conn, cur):
        _rebuild_steps(conn, cur, table, new, old_columns)


@contextmanager
def _sqlite_transaction(engine: Engine, *, foreign_keys_off: bool = False):
    """(connection, driver cursor) inside one explicit SQLite transaction, committed at the end or rolled back on
    any error: the driver would otherwise run DDL (ALTER, CREATE, DROP) outside a transaction."""
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        isolation = dbapi.isolation_level
        dbapi.isolation_level = None  # the statements below say where the transaction starts and ends
        cur = dbapi.cursor()
        try:
            if foreign_keys_off:
                cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield conn, cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                if foreign_keys_off:
                    cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()
            dbapi.isolation_level = isolation


def _rebuild_steps(conn: Connection, cur, table: Table, new: Table, old_columns: list[str]) -> None:
    q = conn.dialect.identifier_preparer.quote
    cur.execute(str(CreateTable(new).compile(dialect=conn.dialect)))
    names = ", ".join(q(c) for c in old_columns)
    cur.execute(f"INSERT INTO {q(new.name)} ({names}) SELECT {names} FROM {q(table.name)}")  # noqa: S608
    cur.execute(f"DROP TABLE {q(table.name)}")
    cur.execute(f"ALTER TABLE {q(new.name)} RENAME TO {q(table.name)}")
    for index in table.indexes:
        cur.execute(str(CreateIndex(index).compile(dialect=conn.dialect)))
    bad = cur.execute("PRAGMA foreign_key_check").fetchall()
    if bad:
        raise RuntimeError(f"foreign key check failed after rebuilding {table.name}: {bad[:3]}")

