"""The benchmarks' shops, built once and kept on disk (``bench/data/``, PostgreSQL schemas ``bench_<name>``).

- ``build("sqlite"|"postgresql", size)``: the demo shop (``generate_demo_data``: 730 days ending 2026-11-23,
  seed 7, ``size // 730`` orders per day on average), then ``ANALYZE`` (SQLite) or ``VACUUM (ANALYZE)``
  (PostgreSQL: a table loaded by COPY and never vacuumed has no visibility map, so an index-only scan still
  fetches every heap row; autovacuum may be off, and is on the server this ran on).
- ``build("duckdb"|"chdb", size)``: the same rows, copied from the SQLite file (no indexes on DuckDB; a
  MergeTree ordered by ``placed_at`` on chdb).
- ``years=10``: a 10-year shop with the same recent volume as the 2-year one of ``size`` orders: 3,650 days,
  orders per day chosen so that the last 730 days hold as many orders as the 2-year shop (the demo's demand
  grows 15 % a year, so the 8 older years hold fewer orders a day).
- ``floor_columns(size)``: the orders' columns as numpy arrays sorted by time (the numpy floor), cached as .npz.
"""

from __future__ import annotations

import math
import os
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
TODAY = date(2026, 11, 24)
TZ = ZoneInfo("UTC")
TABLES = ("orders", "returns", "customers", "traffic", "marketing_spend", "email_campaigns")
GROWTH = 1.15  # the demo's demand trend (kpi.data.demo._GROWTH)


def pg_url() -> str | None:
    from kpi.settings import _normalise_url

    url = os.environ.get("KPIBOT_BENCH_POSTGRES_URL") or os.environ.get("KPIBOT_TEST_POSTGRES_URL")
    return _normalise_url(url) if url else None


def name_of(size: int, years: int = 2) -> str:
    return str(size) if years == 2 else f"{size}_{years}y"


def source_url(backend: str, size: int, years: int = 2) -> str:
    name = name_of(size, years)
    if backend == "sqlite":
        return f"sqlite:///{DATA / f'shop-{name}.db'}"
    if backend == "duckdb":
        return f"duckdb:///{DATA / f'shop-{name}.duckdb'}"
    if backend == "chdb":
        return f"chdb:///{DATA / f'chdb-{name}'}"
    base = pg_url()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3Dbench_{name}"


def days_and_rate(size: int, years: int) -> tuple[int, int]:
    """Days of data and average orders per day: ``years`` years whose last two hold ``size`` orders."""
    if years == 2:
        return 730, max(1, size // 730)
    g = math.log(GROWTH)
    span = years * 365
    mean_all = (GROWTH ** (span / 365.25) - 1) / (g * span / 365.25)
    recent = GROWTH ** ((span - 730) / 365.25) * (GROWTH ** (730 / 365.25) - 1) / (g * 730 / 365.25)
    mean2 = (GROWTH ** (730 / 365.25) - 1) / (g * 730 / 365.25)
    return span, max(1, round(size // 730 * mean2 / recent * mean_all / mean2))


def build(backend: str, size: int, years: int = 2) -> None:
    """Create the shop unless it is already there; vacuum and analyse what was built."""
    if backend in ("duckdb", "chdb"):
        build("sqlite", size, years)
        (_copy_to_duckdb if backend == "duckdb" else _copy_to_chdb)(size, years)
        return
    from kpi.data.demo import generate_demo_data, source_is_empty
    from kpi.data.schema import create_source_tables
    from kpi.db import make_engine

    name = name_of(size, years)
    if backend == "sqlite":
        DATA.mkdir(parents=True, exist_ok=True)
    else:
        admin = make_engine(pg_url())
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS bench_{name}"))
        admin.dispose()
    engine = make_engine(source_url(backend, size, years))
    create_source_tables(engine)
    if source_is_empty(engine):
        t = time.perf_counter()
        days, rate = days_and_rate(size, years)
        generate_demo_data(engine, days=days, orders_per_day=rate, seed=7, today=TODAY, tz=TZ)
        print(f"  built {backend} {name}: {days} days x {rate} orders a day in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    from kpi.data.source_schema import upgrade_source

    t = time.perf_counter()
    changed = upgrade_source(engine, indexes=True)  # the indexes this version wants (kpibot db upgrade)
    if changed:
        print(f"  upgraded {backend} {name} in {time.perf_counter() - t:.1f} s: {'; '.join(changed)}", file=sys.stderr)
    if backend == "postgresql":
        with engine.connect() as conn:
            last = conn.execute(text("SELECT last_vacuum FROM pg_stat_user_tables WHERE schemaname = :s "
                                     "AND relname = 'orders'"), {"s": f"bench_{name}"}).scalar()
        if last is None or changed:
            t = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in TABLES:
                    conn.execute(text(f"VACUUM (ANALYZE) bench_{name}.{table}"))
            print(f"  vacuumed bench_{name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    else:
        with engine.begin() as conn:
            if changed or not conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar():
                conn.execute(text("ANALYZE"))
    engine.dispose()


def _sqlite_file(size: int, years: int) -> str:
    return str(DATA / f"shop-{name_of(size, years)}.db")


def _chunks(table: str, size: int, years: int, rows: int = 1_000_000):
    import sqlite3

    import pandas as pd

    con = sqlite3.connect(_sqlite_file(size, years))
    try:
        yield from pd.read_sql_query(f"SELECT * FROM {table}", con, chunksize=rows)  # noqa: S608 - constant
    finally:
        con.close()


def _ddl(table: str, dialect) -> str:
    from sqlalchemy.schema import CreateTable

    from kpi.data import schema

    return str(CreateTable(getattr(schema, table)).compile(dialect=dialect))


def _copy_to_duckdb(size: int, years: int) -> None:
    import duckdb
    from sqlalchemy.dialects import postgresql

    path = DATA / f"shop-{name_of(size, years)}.duckdb"
    if path.exists():
        return
    t = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    for table in TABLES:
        con.execute(_ddl(table, postgresql.dialect()))
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        for chunk in _chunks(table, size, years):
            con.register("chunk", chunk[cols])
            con.execute(f"INSERT INTO {table} SELECT * FROM chunk")  # noqa: S608 - constant
            con.unregister("chunk")
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(path)
    print(f"  copied {name_of(size, years)} to DuckDB in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def chdb_session(url_or_engine):
    from chdb import session
    from sqlalchemy.engine import make_url

    url = make_url(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine.url
    return session.Session(url.database)


def _copy_to_chdb(size: int, years: int) -> None:
    """The canonical tables made by the bot itself on chdb (database ``kpi``, MergeTree sorted by time), filled
    from the SQLite file."""
    path = DATA / f"chdb-{name_of(size, years)}"
    if (path / ".complete").exists():
        return
    import shutil

    from kpi.data.schema import create_source_tables
    from kpi.db import make_engine

    t = time.perf_counter()
    shutil.rmtree(path, ignore_errors=True)
    engine = make_engine(source_url("chdb", size, years))
    create_source_tables(engine)
    sess = chdb_session(engine)
    sess.query("USE kpi")
    for table in TABLES:
        for chunk in _chunks(table, size, years):
            for col in chunk.columns:  # money as text: a float cast to Decimal(14, 2) is truncated (123.74 -> 123.73)
                if chunk[col].dtype.kind == "f":
                    chunk[col] = [None if v != v else f"{v:.2f}" for v in chunk[col].to_numpy()]
            cols = ", ".join(chunk.columns)
            sess.query(f"INSERT INTO kpi.{table} ({cols}) SELECT {cols} FROM Python(chunk)")  # noqa: S608 - constant
    engine.dispose()
    (path / ".complete").touch()
    print(f"  copied {name_of(size, years)} to chdb in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def floor_columns(size: int, years: int = 2) -> dict:
    """placed_at (int64 epoch seconds, sorted), subtotal, cancelled, channel (codes), channel names,
    and the traffic's sessions per day (day number -> sessions)."""
    import numpy as np
    import pandas as pd

    path = DATA / f"floor-{name_of(size, years)}.npz"
    if not path.exists():
        import sqlite3

        con = sqlite3.connect(_sqlite_file(size, years))
        df = pd.read_sql_query("SELECT placed_at, subtotal, status, channel FROM orders", con)
        tr = pd.read_sql_query("SELECT day, sum(sessions) AS s FROM traffic GROUP BY day ORDER BY day", con)
        con.close()
        ts = pd.to_datetime(df["placed_at"], format="%Y-%m-%d %H:%M:%S.%f").to_numpy().astype("datetime64[s]").astype(np.int64)
        order = np.argsort(ts, kind="stable")
        names, codes = np.unique(df["channel"].to_numpy().astype(str), return_inverse=True)
        days = pd.to_datetime(tr["day"]).to_numpy().astype("datetime64[D]").astype(np.int64)
        np.savez(path, placed_at=ts[order], subtotal=df["subtotal"].to_numpy(float)[order],
                 cancelled=(df["status"].to_numpy() == "cancelled")[order], channel=codes.astype(np.int8)[order],
                 channel_names=names, traffic_day=days, traffic_sessions=tr["s"].to_numpy(np.int64))
    z = np.load(path, allow_pickle=False)
    cols = {k: z[k] for k in z.files}
    cols["live_subtotal"] = np.where(cols["cancelled"], 0.0, cols["subtotal"])
    cols["live"] = (~cols["cancelled"]).astype(np.int64)
    by_channel = {}
    for i, name in enumerate(cols["channel_names"]):
        m = cols["channel"] == i
        by_channel[str(name)] = (cols["placed_at"][m], cols["live_subtotal"][m])
    cols["by_channel"] = by_channel
    return cols
