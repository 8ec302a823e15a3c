"""Benchmark: the KPI engine against the same aggregate written by hand in SQL.

    python bench/engine.py [--sizes 100000,1000000,10000000] [--backends sqlite,postgresql] [--repeat 5]

For each source size (demo shop data, built once and kept in bench/data/ or in a PostgreSQL schema
``bench_<size>``), it times three questions through the engine and by hand-written SQL, in the same
process, alternating, best of ``--repeat``:
  - conversion last 7 days           (orders and sessions over a 7-day window)
  - revenue YTD by channel           (a grouped sum over the year so far)
  - revenue, 90-day daily series     (90 daily buckets)
Ratios engine / hand are what matter (machines here are shared and noisy). Each size is measured in a
fresh subprocess so that its peak RSS is its own. PostgreSQL is used when KPIBOT_BENCH_POSTGRES_URL
(or KPIBOT_TEST_POSTGRES_URL) is set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from kpi.db import make_engine  # noqa: E402
from kpi.metrics.catalog import load_catalog  # noqa: E402
from kpi.metrics.engine import KpiEngine, KpiRequest  # noqa: E402
from kpi.metrics.periods import parse_period  # noqa: E402

TZ = ZoneInfo("UTC")
TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=TZ)
DAYS = 730
DATA = ROOT / "bench" / "data"


def pg_url() -> str | None:
    from kpi.settings import _normalise_url

    url = os.environ.get("KPIBOT_BENCH_POSTGRES_URL") or os.environ.get("KPIBOT_TEST_POSTGRES_URL")
    return _normalise_url(url) if url else None


def source_url(backend: str, size: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DATA / f'shop-{size}.db'}"
    base = pg_url()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3Dbench_{size}"


def build(backend: str, size: int) -> None:
    """Create the demo shop of ``size`` orders unless it is already there."""
    from kpi.data.demo import generate_demo_data, source_is_empty
    from kpi.data.schema import create_source_tables

    if backend == "sqlite":
        DATA.mkdir(parents=True, exist_ok=True)
    else:
        admin = make_engine(pg_url())
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS bench_{size}"))
        admin.dispose()
    engine = make_engine(source_url(backend, size))
    create_source_tables(engine)
    if source_is_empty(engine):
        t = time.perf_counter()
        generate_demo_data(engine, days=DAYS, orders_per_day=max(1, size // DAYS), seed=7, today=TODAY, tz=TZ)
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        print(f"  built {backend} {size:,} orders in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    engine.dispose()


def hand_written(conn, dialect: str):
    """The same aggregates, written by hand as one would without the engine."""
    p7 = parse_period("last 7 days", now=NOW, tz=TZ)
    ytd = parse_period("ytd", now=NOW, tz=TZ)
    p90 = parse_period("last 90 days", now=NOW, tz=TZ)

    def utc(d: datetime) -> datetime:
        return d.astimezone(UTC).replace(tzinfo=None)

    def conversion():
        orders = conn.execute(text(
            "SELECT count(*) FROM orders WHERE placed_at >= :s AND placed_at < :e AND status <> 'cancelled'"),
            {"s": utc(p7.start), "e": utc(p7.end)}).scalar()
        sessions = conn.execute(text("SELECT sum(sessions) FROM traffic WHERE day >= :s AND day < :e"),
                                {"s": p7.start.date(), "e": p7.end.date()}).scalar()
        return orders / sessions

    def ytd_by_channel():
        return conn.execute(text(
            "SELECT channel, sum(subtotal) FROM orders WHERE placed_at >= :s AND placed_at < :e "
            "AND status <> 'cancelled' GROUP BY channel"), {"s": utc(ytd.start), "e": utc(ytd.end)}).all()

    def series90():
        day = "date(placed_at)" if dialect == "sqlite" else "CAST(placed_at AS DATE)"
        return conn.execute(text(
            f"SELECT {day} AS d, sum(subtotal) FROM orders WHERE placed_at >= :s AND placed_at < :e "  # noqa: S608 - constant
            f"AND status <> 'cancelled' GROUP BY {day}"), {"s": utc(p90.start), "e": utc(p90.end)}).all()

    return {"conversion last 7 days": conversion, "revenue YTD by channel": ytd_by_channel,
            "revenue 90-day daily series": series90}


def through_engine(engine: KpiEngine):
    p7 = parse_period("last 7 days", now=NOW, tz=TZ)
    ytd = parse_period("ytd", now=NOW, tz=TZ)
    p90 = parse_period("last 90 days", now=NOW, tz=TZ)
    return {
        "conversion last 7 days": lambda: engine.ask(KpiRequest("conversion_rate", p7, compare=None, series=False)),
        "revenue YTD by channel": lambda: engine.ask(KpiRequest("revenue", ytd, compare=None, breakdown="channel",
                                                                series=False, top=100)),
        "revenue 90-day daily series": lambda: engine.ask(KpiRequest("revenue", p90, compare=None, granularity="day")),
    }


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _statements(engine, fn) -> int:
    """How many SQL statements ``fn`` sends to ``engine``."""
    from sqlalchemy import event

    sent = []

    def count(*_args):
        sent.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(sent)


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def window_rows(conn, backend: str) -> tuple[int, str]:
    """How many orders the 7-day window holds, and the plan the database chose for it."""
    p7 = parse_period("last 7 days", now=NOW, tz=TZ)
    params = {"s": p7.start.astimezone(UTC).replace(tzinfo=None), "e": p7.end.astimezone(UTC).replace(tzinfo=None)}
    sql = "SELECT count(*) FROM orders WHERE placed_at >= :s AND placed_at < :e AND status <> 'cancelled'"
    rows = conn.execute(text(sql), params).scalar()
    explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
    plan = " / ".join(str(r[-1]).strip() for r in conn.execute(text(explain + sql), params).all()[:2])
    return rows, plan


def measure(backend: str, size: int, repeat: int) -> dict:
    """Runs in its own subprocess: times and this process's own peak RSS (reset after start-up)."""
    src = make_engine(source_url(backend, size))
    with open("/proc/self/clear_refs", "w") as f:  # the peak RSS inherited at fork is not ours
        f.write("5")
    base_rss = _rss_mb("VmRSS")
    engine = KpiEngine(load_catalog(ROOT / "config"), src, tz=TZ, clock=lambda: NOW)
    out = {"backend": backend, "size": size, "queries": {}}
    with src.connect() as conn:
        out["window_rows"], out["window_plan"] = window_rows(conn, backend)
        hand = hand_written(conn, src.dialect.name)
        eng = through_engine(engine)
        for name in hand:
            hand[name](), eng[name]()  # warm the caches once
            h = e = float("inf")
            for _ in range(2):  # alternate, so that noise hits both alike
                h = min(h, best(hand[name], repeat))
                e = min(e, best(eng[name], repeat))
            out["queries"][name] = {"hand_ms": h * 1000, "engine_ms": e * 1000, "ratio": e / h}
    # the full answer a user gets (comparison, series, as-of) for the record
    full = KpiRequest("conversion_rate", parse_period("last 7 days", now=NOW, tz=TZ))
    out["full_answer_ms"] = best(lambda: engine.ask(full), repeat) * 1000
    # like for like: "revenue this month" compared with the same span of last month and tested against the same
    # change in the months before (one statement), against the bare value of the month so far
    mtd = parse_period("this month", now=NOW, tz=TZ)
    compared = KpiRequest("revenue", mtd, compare="previous")
    bare = KpiRequest("revenue", mtd, compare=None)
    out["mtd_compared_ms"] = best(lambda: engine.ask(compared), repeat) * 1000
    out["mtd_bare_ms"] = best(lambda: engine.ask(bare), repeat) * 1000
    out["mtd_statements"] = {name: _statements(src, lambda r=req: engine.ask(r))
                             for name, req in (("compared", compared), ("bare", bare))}
    # degrade per KPI: the count of values that are not numbers in orders.subtotal (SQLite only), asked once per
    # column every NUMBERS_TTL seconds and cached: its cost, not paid by the questions above once warm
    with src.connect() as conn:
        out["not_numbers_ms"] = best(lambda: engine.sql.count_not_numbers("orders.subtotal", conn), repeat) * 1000
    out["peak_rss_mb"] = _rss_mb("VmHWM")
    out["rss_growth_mb"] = out["peak_rss_mb"] - base_rss
    src.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # internal: backend:size, run in a subprocess
    args = ap.parse_args()
    if args.measure:
        backend, size = args.measure.split(":")
        print(json.dumps(measure(backend, int(size), args.repeat)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b for b in args.backends.split(",") if b == "sqlite" or pg_url()]
    results = []
    for backend in backends:
        for size in sizes:
            build(backend, size)
            proc = subprocess.run([sys.executable, __file__, "--measure", f"{backend}:{size}", "--repeat", str(args.repeat)],
                                  capture_output=True, text=True, check=True)
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; {datetime.now(UTC):%Y-%m-%d}")
    print()
    print("| backend | orders | question | hand SQL ms | engine ms | engine / hand |")
    print("|---|---:|---|---:|---:|---:|")
    for r in results:
        for name, q in r["queries"].items():
            print(f"| {r['backend']} | {r['size']:,} | {name} | {q['hand_ms']:.2f} | {q['engine_ms']:.2f} | {q['ratio']:.2f} |")
    print()
    print("| backend | orders | orders in the 7-day window | engine µs per window order | full /kpi conversion answer ms "
          "| peak RSS MB | RSS growth while querying MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        per_row = r["queries"]["conversion last 7 days"]["engine_ms"] * 1000 / max(1, r["window_rows"])
        print(f"| {r['backend']} | {r['size']:,} | {r['window_rows']:,} | {per_row:.2f} | {r['full_answer_ms']:.2f} "
              f"| {r['peak_rss_mb']:.0f} | {r['rss_growth_mb']:.1f} |")
    print()
    print("| backend | orders | revenue this month, compared like for like and tested ms | the bare value ms "
          "| compared / bare | statements (compared, bare) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        st = r["mtd_statements"]
        print(f"| {r['backend']} | {r['size']:,} | {r['mtd_compared_ms']:.2f} | {r['mtd_bare_ms']:.2f} "
              f"| {r['mtd_compared_ms'] / r['mtd_bare_ms']:.2f} | {st['compared']}, {st['bare']} |")
    print()
    for r in results:
        print(f"- values that are not numbers in orders.subtotal, counted once per 10 minutes ({r['backend']} "
              f"{r['size']:,}): {r['not_numbers_ms']:.2f} ms")
    for r in results:
        print(f"- plan of the 7-day window, {r['backend']} {r['size']:,}: `{r['window_plan']}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
