"""Writing prepared rows: an upsert on the natural key that knows what it inserted, updated or left
alone, and the upkeep of ``customers`` from orders.

Existing rows are read only for the keys of the file, a chunk of keys at a time with bound parameters
(never the whole table); only new and changed rows are written, WRITE_CHUNK rows per statement
execution. SQLite gets ``INSERT .. ON CONFLICT DO UPDATE`` through the driver's executemany;
PostgreSQL ``INSERT .. SELECT FROM unnest(<one array per column>) ON CONFLICT DO UPDATE``; another
dialect an UPDATE by key for changed rows (so that the columns a file does not have keep their values,
which a delete-and-insert would reset) and an INSERT for new ones. The caller holds the transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sqlalchemy import ARRAY, Table, and_, any_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kpi.data import schema
from kpi.data.messages import Text, refusal
from kpi.i18n import N_

from .specs import LINE
from .values import as_python

NATIVE_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
KEY_CHUNK = 5000  # keys per lookup query, at most (x key columns = bound parameters)
WRITE_CHUNK = 10_000  # rows per executemany
MULTI_VALUES = {"chdb", "clickhousedb", "clickhouse"}  # dialects written with one multi-row INSERT
MULTI_VALUES_ROWS = 2000  # rows per such INSERT (x columns = bound parameters)


def _counts(inserted: int = 0, updated: int = 0, unchanged: int = 0) -> dict[str, int]:
    return {"inserted": inserted, "updated": updated, "unchanged": unchanged}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and round(float(a), 2) == round(float(b), 2)
    return a == b


def table_is_empty(conn: Connection, table: Table) -> bool:
    return conn.execute(select(1).select_from(table).limit(1)).first() is None


def _max_parameters(conn: Connection) -> int:
    """Bound parameters one statement may carry (SQLite before 3.32 allows 999)."""
    if conn.dialect.name == "sqlite":
        return 30000 if sqlite3.sqlite_version_info >= (3, 32) else 999
    return 30000


def fetch_existing(
    conn: Connection, table: Table, key: Sequence[str], keys: list, fields: Sequence[str]
) -> dict:
    """``{key: (field values...)}`` for the rows of ``table`` whose key is in ``keys``."""
    found: dict = {}
    unique = list(dict.fromkeys(keys))
    key_cols = [table.c[k] for k in key]
    cols = key_cols + [table.c[f] for f in fields]
    nkey = len(key)
    step = max(1, min(KEY_CHUNK, _max_parameters(conn) // nkey))
    for start in range(0, len(unique), step):
        chunk = unique[start : start + step]
        if nkey > 1:
            cond = tuple_(*key_cols).in_(chunk)
        elif conn.dialect.name == "postgresql":  # one array parameter, not thousands
            cond = key_cols[0] == any_(bindparam("keys", chunk, type_=ARRAY(key_cols[0].type)))
        else:
            cond = key_cols[0].in_(chunk)
        rows = conn.execute(select(*cols).where(cond)).all()
        if nkey == 1:
            found.update((r[0], tuple(r[1:])) for r in rows)
        else:
            found.update((tuple(r[:nkey]), tuple(r[nkey:])) for r in rows)
    return found


def _storage_form(conn: Connection, table: Table, columns: dict[str, list]) -> dict[str, list]:
    """SQLite: the values as the driver receives them (the columns' bind processors applied once), so
    that they are compared with the stored values as stored and written without further work."""
    out = {}
    for name, values in columns.items():
        proc = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        out[name] = list(map(proc, values)) if proc else values
    return out


def _fetch_stored_sqlite(
    conn: Connection, table: Table, key: Sequence[str], keys: list, fields: Sequence[str]
) -> dict:
    """Like fetch_existing, with the values as SQLite stores them, through the driver's cursor (no
    result processing: parsing a million timestamps back costs more than the comparison)."""
    found: dict = {}
    unique = list(dict.fromkeys(keys))
    q = conn.dialect.identifier_preparer
    nkey = len(key)
    columns = ", ".join(q.quote(c) for c in [*key, *fields])
    if nkey == 1:
        lhs, one = q.quote(key[0]), "?"
    else:  # a row value IN needs a VALUES list on SQLite
        lhs, one = "(" + ", ".join(q.quote(k) for k in key) + ")", "(" + ", ".join("?" * nkey) + ")"
    step = max(1, min(KEY_CHUNK, _max_parameters(conn) // nkey))
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(unique), step):
            chunk = unique[start : start + step]
            marks = ", ".join([one] * len(chunk))
            rhs = f"({marks})" if nkey == 1 else f"(VALUES {marks})"
            # identifiers come from the schema (quoted), every value is a bound parameter
            sql = f"SELECT {columns} FROM {q.format_table(table)} WHERE {lhs} IN {rhs}"  # noqa: S608
            cursor.execute(sql, chunk if nkey == 1 else [v for k in chunk for v in k])
            if nkey == 1:
                found.update((r[0], r[1:]) for r in cursor.fetchall())
            else:
                found.update((r[:nkey], r[nkey:]) for r in cursor.fetchall())
    finally:
        cursor.close()
    return found


def write_rows(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    columns: dict[str, list],
    rows: np.ndarray,
    update_fields: Sequence[str],
    existing: set | dict,
    stored: bool = False,
) -> None:
    """Write the rows at positions ``rows`` of ``columns`` (field → values, in storage form when
    ``stored``): inserted when new, their ``update_fields`` set when the key exists."""
    if len(rows) == 0:
        return
    names = list(columns)
    make = NATIVE_UPSERT.get(conn.dialect.name)
    if conn.dialect.name == "postgresql" and make is not None:
        _write_postgresql(conn, table, key, columns, rows, update_fields)
        return
    if make is not None:
        stmt = make(table)
        if update_fields:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(key), set_={f: stmt.excluded[f] for f in update_fields}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        _executemany(conn, stmt, names, columns, rows, stored)
        return
    # any other dialect: UPDATE the rows that exist, INSERT the others
    nkey = len(key)
    keys = columns[key[0]] if nkey == 1 else list(zip(*(columns[k] for k in key), strict=True))
    is_old = np.fromiter((keys[i] in existing for i in rows), dtype=bool, count=len(rows))
    _executemany(conn, insert(table), names, columns, rows[~is_old])
    if update_fields and is_old.any() and conn.dialect.name in MULTI_VALUES:
        _replace_rows(conn, table, key, columns, rows[is_old], update_fields, keys)
        return
    if update_fields and is_old.any():
        stmt = (
            update(table)
            .where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in key)))
            .values({f: bindparam(f"v_{f}") for f in update_fields})
        )
        renamed = {f"k_{k}": columns[k] for k in key} | {f"v_{f}": columns[f] for f in update_fields}
        _executemany(conn, stmt, list(renamed), renamed, rows[is_old])


def _replace_rows(conn: Connection, table: Table, key: Sequence[str], columns: dict[str, list], rows: np.ndarray,
                  update_fields: Sequence[str], keys: list) -> None:
    """ClickHouse: an UPDATE may not change a sorting-key column (``placed_at``), so a changed row is deleted and
    inserted again, with the stored values of the columns the file does not give (read first). This runs in an
    import's staging copy (kpi.db_clickhouse): readers never see a row missing."""
    others = [c.name for c in table.columns if c.name not in key]
    wanted = [keys[i] for i in rows.tolist()]
    stored = fetch_existing(conn, table, key, wanted, others)
    merged = [dict(zip(others, stored[k], strict=True)) | {f: columns[f][i] for f in [*update_fields, *key]}
              for i, k in zip(rows.tolist(), wanted, strict=True)]
    out = {c.name: [r[c.name] for r in merged] for c in table.columns}
    key_cols = [table.c[k] for k in key]
    for start in range(0, len(wanted), KEY_CHUNK):
        chunk = wanted[start : start + KEY_CHUNK]
        cond = key_cols[0].in_(chunk) if len(key) == 1 else tuple_(*key_cols).in_(chunk)
        conn.execute(delete(table).where(cond))
    _executemany(conn, insert(table), list(out), out, np.arange(len(wanted)))


def _write_postgresql(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    columns: dict[str, list],
    rows: np.ndarray,
    update_fields: Sequence[str],
) -> None:
    """PostgreSQL: ``INSERT .. SELECT FROM unnest(arrays) ON CONFLICT``, one statement and one array
    parameter per column for WRITE_CHUNK rows (a row per statement would be ten times slower)."""
    names = list(columns)
    arrays = [bindparam(f"a_{n}", type_=ARRAY(table.c[n].type)) for n in names]
    source = func.unnest(*arrays).table_valued(*names).render_derived()
    stmt = postgresql.insert(table).from_select(names, select(*(source.c[n] for n in names)))
    if update_fields:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={f: stmt.excluded[f] for f in update_fields}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    for start in range(0, len(rows), WRITE_CHUNK):
        idx = rows[start : start + WRITE_CHUNK].tolist()
        conn.execute(stmt, {f"a_{n}": [columns[n][i] for i in idx] for n in names})


def _executemany(
    conn: Connection, stmt, names: list[str], columns: dict[str, list], rows: np.ndarray, stored: bool = False
) -> None:
    """``stmt`` once per row at positions ``rows``, WRITE_CHUNK rows per executemany.

    On SQLite the statement is compiled once and the values go through the columns' own bind
    processors straight to the driver's executemany: what SQLAlchemy would send, without its per-row
    work (a million rows load three times faster)."""
    if len(rows) == 0:
        return
    raw = conn.dialect.name == "sqlite"
    if raw:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=names)
        order = list(compiled.positiontup or [])
        procs = [
            None if stored else compiled.binds[b].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            for b in order
        ]
        cols = [columns[compiled.binds[b].key] for b in order]
    else:
        cols = [columns[n] for n in names]
    for start in range(0, len(rows), WRITE_CHUNK):
        part = rows[start : start + WRITE_CHUNK]
        first, last = int(part[0]), int(part[-1])
        if last - first + 1 == len(part):
            slices = [c[first : last + 1] for c in cols]
        else:
            idx = part.tolist()
            slices = [[c[i] for i in idx] for c in cols]
        if raw:
            slices = [list(map(p, v)) if p else v for p, v in zip(procs, slices, strict=True)]
            conn.exec_driver_sql(compiled.string, list(zip(*slices, strict=True)))
        elif conn.dialect.name in MULTI_VALUES and stmt.is_insert:
            # one INSERT of many rows (each value a bound parameter): ClickHouse makes a part per INSERT, and
            # chdb's executemany runs one INSERT per row
            rows_ = [dict(zip(names, vals, strict=True)) for vals in zip(*slices, strict=True)]
            for at in range(0, len(rows_), MULTI_VALUES_ROWS):
                conn.execute(insert(stmt.table).values(rows_[at : at + MULTI_VALUES_ROWS]))
        else:
            conn.execute(stmt, [dict(zip(names, vals, strict=True)) for vals in zip(*slices, strict=True)])


def upsert(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    frame: pd.DataFrame,
    insert_fields: Sequence[str],
    update_fields: Sequence[str],
) -> dict[str, int]:
    """Upsert ``frame`` on ``key``: new rows get every field of ``insert_fields``, existing rows the
    ``update_fields`` (the fields the file gives); a row whose fields all equal the stored ones is
    not written and counts as unchanged."""
    n = len(frame)
    if n == 0:
        return _counts()
    columns = {f: as_python(frame[f]) for f in insert_fields}
    stored = conn.dialect.name == "sqlite" and conn.dialect.name in NATIVE_UPSERT
    if stored:
        columns = _storage_form(conn, table, columns)
    if table_is_empty(conn, table):
        write_rows(conn, table, key, columns, np.arange(n), update_fields, set(), stored)
        return _counts(inserted=n)
    keys = columns[key[0]] if len(key) == 1 else list(zip(*(columns[k] for k in key), strict=True))
    fetch = _fetch_stored_sqlite if stored else fetch_existing
    existing = fetch(conn, table, key, keys, update_fields)
    state = np.zeros(n, dtype=np.int8)  # 0 new, 1 changed, 2 unchanged
    new_values = list(zip(*(columns[f] for f in update_fields), strict=True)) if update_fields else [()] * n
    for i, (k, new) in enumerate(zip(keys, new_values, strict=True)):
        old = existing.get(k)
        if old is None:
            continue
        same = new == old or all(_same(a, b) for a, b in zip(new, old, strict=True))
        state[i] = 2 if same else 1
    write_rows(conn, table, key, columns, np.flatnonzero(state < 2), update_fields, existing, stored)
    return _counts(int((state == 0).sum()), int((state == 1).sum()), int((state == 2).sum()))


def maintain_customers(conn: Connection, orders: pd.DataFrame) -> dict[str, int]:
    """Give every customer of ``orders`` a customers row: a new one takes the channel and country of
    their first order (the earliest not cancelled, else the earliest); ``first_order_at`` becomes the
    earlier of the stored value and the customer's earliest order in the file that is not cancelled."""
    return write_customers(conn, customer_summary(orders))


def customer_summary(orders: pd.DataFrame, before: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per customer of ``orders`` (and of ``before``, the summary of a file's chunks before):
    their first order (the earliest not cancelled, else the earliest; the first line on a tie) with its
    channel and country, and ``earliest``, the time of their earliest order not cancelled (NaT if none)."""
    orders = orders[orders["customer_id"].notna().to_numpy()]  # guest orders have no customer
    f = orders[["customer_id", "placed_at", "status", "channel", "country", LINE]].assign(
        _cancelled=(orders["status"] == "cancelled").to_numpy()
    ).drop(columns=["status"])
    earliest = f["placed_at"].to_numpy(dtype="datetime64[us]").copy()
    earliest[f["_cancelled"].to_numpy(dtype=bool)] = np.datetime64("NaT")
    f["earliest"] = earliest
    if f.empty:
        return before if before is not None else f
    return merge_customer_summaries([before, f] if before is not None and len(before) else [f])


def merge_customer_summaries(parts: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    """The customer_summary of the orders of every part (summaries of chunks of one file); None when
    they have no customer."""
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return None
    f = pd.concat(parts, ignore_index=True)
    first = f.sort_values(["_cancelled", "placed_at", LINE], kind="stable").drop_duplicates("customer_id")
    earliest = f.groupby("customer_id", sort=False)["earliest"].min()
    first = first.assign(earliest=first["customer_id"].map(earliest).to_numpy())
    return first.reset_index(drop=True)


def write_customers(conn: Connection, summary: pd.DataFrame) -> dict[str, int]:
    """maintain_customers from a customer_summary."""
    if summary.empty:
        return _counts()
    cust = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "first_order_at": summary["earliest"].to_numpy().astype("datetime64[us]"),
            "acquisition_channel": summary["channel"].to_numpy(),
            "country": summary["country"].to_numpy(),
        }
    )
    table = schema.customers
    fields = ["customer_id", "first_order_at", "acquisition_channel", "country"]
    columns = {c: as_python(cust[c]) for c in fields}
    n = len(cust)
    if table_is_empty(conn, table):
        write_rows(conn, table, ["customer_id"], columns, np.arange(n), [], set())
        return _counts(inserted=n)
    ids = columns["customer_id"]
    existing = fetch_existing(conn, table, ["customer_id"], ids, ["first_order_at"])
    new = np.fromiter((c not in existing for c in ids), dtype=bool, count=n)
    earlier = np.zeros(n, dtype=bool)
    for i, (cid, at) in enumerate(zip(ids, columns["first_order_at"], strict=True)):
        if not new[i] and at is not None:
            old = existing[cid][0]
            earlier[i] = old is None or at < old
    write_rows(conn, table, ["customer_id"], columns, np.flatnonzero(new), [], existing)
    update_cols = {"customer_id": ids, "first_order_at": columns["first_order_at"]}
    write_rows(
        conn, table, ["customer_id"], update_cols, np.flatnonzero(earlier), ["first_order_at"], existing
    )
    return _counts(int(new.sum()), int(earlier.sum()), int(n - new.sum() - earlier.sum()))


# a return's own dimensions, and what they are when its order is not in the data
@contextmanager
def sqlite_cache(conn: Connection, kib: int = 64 * 1024):
    """A larger page cache while a big file is written (SQLite's default 2 MB makes index updates
    of a million rows go to disk), back to what it was afterwards. 64 MB holds the key indexes of a
    few million rows; the cache is process memory, so more would make a big import's peak grow with
    its file again (256 MB: +190 MB for a million orders, for 8 % of the time)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def check_database_currency(
    conn: Connection, path: str, file_currency: str | None, shop: str | None
) -> None:
    """The amounts of a shop are in one currency: the one of the orders already stored."""
    stored = conn.execute(select(schema.orders.c.currency).limit(1)).scalar()
    if stored is None:
        return
    for what, cur in (
        (N_("the file's amounts are in {currency} but the orders in the database are in {stored}"), file_currency),
        (N_("the shop currency is in {currency} but the orders in the database are in {stored}"), shop),
    ):
        if cur and cur.upper() != stored:
            raise refusal(path=path, reason=Text(what, currency=cur.upper(), stored=stored))
