"""DuckDB through duckdb-engine, with the reflection SQLAlchemy 2.1 needs.

duckdb-engine (0.17, the newest) is a subclass of SQLAlchemy's PostgreSQL dialect and reflects a table's
columns with the PostgreSQL catalog query. Since SQLAlchemy 2.0.45 that query reads
``pg_catalog.pg_collation`` (its ``collnamespace`` and ``pg_collation_is_visible``); DuckDB 2.0 has a stub
``pg_collation`` with two columns only, so reflecting any table fails (duckdb-engine issues #1379 and #1391,
an unreleased fix in its pull request #1393; duckdb issue #22069 added the stub, which SQLAlchemy 2.1 still
outgrows). ``DuckDBDialect`` reads the columns from DuckDB's own catalog function ``duckdb_columns()``
instead, and the indexes from ``duckdb_indexes()`` (duckdb-engine returns none, with a warning). Everything
else is duckdb-engine's. ``register()`` makes ``duckdb://`` URLs use it in this process; ``kpi.db`` calls it.
Remove this module once duckdb-engine reflects columns under SQLAlchemy 2.1 on its own.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.dialects import registry
from sqlalchemy.sql import sqltypes

_TYPE = re.compile(r"^\s*([A-Za-z_ ]+?)\s*(?:\((.*)\))?\s*$")
_TYPES = {  # DuckDB's type names (duckdb_columns().data_type) and the SQLAlchemy types they read as
    "BOOLEAN": sqltypes.Boolean, "TINYINT": sqltypes.SmallInteger, "SMALLINT": sqltypes.SmallInteger,
    "INTEGER": sqltypes.Integer, "BIGINT": sqltypes.BigInteger, "HUGEINT": sqltypes.Numeric,
    "UTINYINT": sqltypes.SmallInteger, "USMALLINT": sqltypes.Integer, "UINTEGER": sqltypes.BigInteger,
    "UBIGINT": sqltypes.Numeric, "FLOAT": sqltypes.Float, "REAL": sqltypes.Float, "DOUBLE": sqltypes.Float,
    "DECIMAL": sqltypes.Numeric, "NUMERIC": sqltypes.Numeric, "VARCHAR": sqltypes.String, "TEXT": sqltypes.String,
    "DATE": sqltypes.Date, "TIME": sqltypes.Time, "TIMESTAMP": sqltypes.DateTime,
    "TIMESTAMP_S": sqltypes.DateTime, "TIMESTAMP_MS": sqltypes.DateTime, "TIMESTAMP_NS": sqltypes.DateTime,
    "TIMESTAMP WITH TIME ZONE": sqltypes.DateTime, "INTERVAL": sqltypes.Interval, "BLOB": sqltypes.LargeBinary,
    "UUID": sqltypes.Uuid,
}


def reflected_type(data_type: str) -> sqltypes.TypeEngine:
    """The SQLAlchemy type of a DuckDB column type name ("DECIMAL(14,2)", "VARCHAR", "TIMESTAMP"...)."""
    m = _TYPE.match(data_type or "")
    if not m:
        return sqltypes.NullType()
    name, args = m.group(1).upper(), m.group(2)
    kind = _TYPES.get(name)
    if kind is None:
        return sqltypes.NullType()
    if kind is sqltypes.Numeric:
        p, _, s = (args or "").partition(",")
        return sqltypes.Numeric(int(p), int(s or 0)) if p.strip().isdigit() else sqltypes.Numeric()
    if kind is sqltypes.DateTime:
        return sqltypes.DateTime(timezone="TIME ZONE" in name)
    return kind()


def _dialect_class():
    from duckdb_engine import Dialect

    class DuckDBDialect(Dialect):
        """duckdb-engine's dialect, reflecting columns and indexes from DuckDB's catalog functions. Its statements
        are PostgreSQL's, whose compiled forms SQLAlchemy caches (duckdb-engine leaves the cache off, unset)."""

        supports_statement_cache = True

        def _rows(self, connection, sql: str, schema: str | None, filter_names):
            params = {"schema": schema or "main"}
            where = "schema_name = :schema AND database_name = current_database()"
            if filter_names:
                names = list(filter_names)
                params |= {f"n{i}": n for i, n in enumerate(names)}
                where += " AND table_name IN (" + ", ".join(f":n{i}" for i in range(len(names))) + ")"
            # the text is this module's; the schema and table names are bound parameters
            return connection.execute(text(sql.format(where=where)), params).mappings().all()

        def get_multi_columns(self, connection, schema=None, filter_names=None, scope=None, kind=None, **kw):
            rows = self._rows(connection, "SELECT table_name, column_name, data_type, is_nullable, column_default, "
                                          "comment FROM duckdb_columns() WHERE {where} "
                                          "ORDER BY table_name, column_index", schema, filter_names)
            out: dict = {}
            for r in rows:
                out.setdefault((schema, r["table_name"]), []).append({
                    "name": r["column_name"], "type": reflected_type(r["data_type"]),
                    "nullable": bool(r["is_nullable"]), "default": r["column_default"],
                    "autoincrement": False, "comment": r["comment"] or None,
                })
            return out.items()

        def get_columns(self, connection, table_name, schema=None, **kw):
            found = dict(self.get_multi_columns(connection, schema, [table_name]))
            if (schema, table_name) not in found:
                from sqlalchemy.exc import NoSuchTableError

                raise NoSuchTableError(table_name)
            return found[(schema, table_name)]

        def get_multi_indexes(self, connection, schema=None, filter_names=None, scope=None, kind=None, **kw):
            rows = self._rows(connection, "SELECT table_name, index_name, is_unique, expressions "
                                          "FROM duckdb_indexes() WHERE {where} ORDER BY index_name",
                              schema, filter_names)
            out: dict = {}
            for r in rows:
                columns = [c.strip().strip('"') for c in str(r["expressions"]).strip("[]").split(",") if c.strip()]
                out.setdefault((schema, r["table_name"]), []).append(
                    {"name": r["index_name"], "column_names": columns, "unique": bool(r["is_unique"])})
            return out.items()

        def get_multi_pk_constraint(self, connection, schema=None, filter_names=None, scope=None, kind=None, **kw):
            rows = self._rows(connection, "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                                          "WHERE {where} AND constraint_type = 'PRIMARY KEY'", schema, filter_names)
            return [((schema, r["table_name"]), {"constrained_columns": list(r["constraint_column_names"]),
                                                 "name": None}) for r in rows]

        # what the bot never reads, and PostgreSQL's catalog queries for which DuckDB lacks (REGCLASS, pg_collation)
        def _nothing(self, connection, schema=None, filter_names=None, scope=None, kind=None, **kw):
            return []

        get_multi_foreign_keys = get_multi_unique_constraints = get_multi_check_constraints = _nothing
        get_multi_table_comment = get_multi_table_options = _nothing

        def get_indexes(self, connection, table_name, schema=None, **kw):
            return dict(self.get_multi_indexes(connection, schema, [table_name])).get((schema, table_name), [])

    return DuckDBDialect


_registered = False


def register() -> None:
    """``duckdb://`` URLs open with DuckDBDialect in this process (a no-op without duckdb-engine)."""
    global _registered
    if _registered:
        return
    try:
        import duckdb_engine  # noqa: F401
    except ImportError:
        return
    module = __import__(__name__, fromlist=["DuckDBDialect"])
    module.DuckDBDialect = _dialect_class()
    registry.register("duckdb", __name__, "DuckDBDialect")
    _registered = True
