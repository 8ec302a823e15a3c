"""Benchmark: ``kpibot import`` speed and memory (issue 13), on SQLite.

    python bench/import.py [--quick] [--backends sqlite,postgresql] [--write bench/RESULTS.md]

Measures, each in a fresh subprocess (so that its peak RSS is its own), on a new database:
  - a plain orders file (one row per order) of 100,000 and 1,000,000 rows: rows per second, and the
    peak RSS the import added to the process — flat in file size if reading is chunked;
  - a line-item orders file (``--table orders --lines``: several lines per order, aggregated into
    orders) of 100,000 and 1,000,000 lines: lines per second and peak RSS. Measured only when the importer has the
    ``lines`` option; otherwise the table says so (no number is made up);
  - a folder of 100 daily orders files (1,000 orders each) through the command line as a user runs it
    (``kpibot import DIR --table orders``: content hashes, one transaction per file, the import log):
    the whole folder's seconds, against the target of 60 s; then the same folder again (every file
    skipped by its hash).
``--quick`` divides the file sizes by 5 (20,000 and 200,000 rows, 20,000 and 200,000 lines, 100 files of 200
orders) to run in under 3 minutes. The files are generated into a temporary folder; nothing is written
to the repository unless ``--write FILE`` (a section appended to that file).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHANNELS = np.array(["email", "paid_search", "social", "organic", "direct"])
DEVICES = np.array(["desktop", "mobile", "tablet"])
COUNTRIES = np.array(["FR", "DE", "GB", "US", "ES"])
START = np.datetime64("2024-01-01T00:00:00")


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB (Linux); ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- generated files -----------------------------------------------------------------------------------
def orders_file(path: Path, n: int, *, seed: int = 1, first: int = 0, day: int | None = None) -> Path:
    """``n`` orders, one row each (order ids from ``first``); spread over 2 years, or all on ``day``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    if day is None:
        seconds = rng.integers(0, 730 * 86400, n)
    else:
        seconds = day * 86400 + rng.integers(0, 86400, n)
    frame = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(first, first + n)],
        "customer_id": [f"C{c}" for c in rng.integers(0, max(n // 3, 1), n)],
        "placed_at": (START + seconds.astype("timedelta64[s]")).astype(str),
        "subtotal": np.round(rng.gamma(2.0, 40.0, n), 2),
        "currency": "EUR",
        "channel": CHANNELS[rng.integers(0, len(CHANNELS), n)],
        "device": DEVICES[rng.integers(0, len(DEVICES), n)],
        "country": COUNTRIES[rng.integers(0, len(COUNTRIES), n)],
        "status": "placed",
    })
    frame.to_csv(path, index=False)
    return path


def lines_file(path: Path, n_lines: int, *, seed: int = 2) -> Path:
    """``n_lines`` product lines, 1 to 5 per order, the order's fields repeated on each line."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    per_order = rng.integers(1, 6, n_lines)  # more than enough orders; cut at n_lines lines
    order_of_line = np.repeat(np.arange(len(per_order)), per_order)[:n_lines]
    n_orders = int(order_of_line[-1]) + 1
    seconds = rng.integers(0, 730 * 86400, n_orders)
    customer = rng.integers(0, max(n_orders // 3, 1), n_orders)
    channel = rng.integers(0, len(CHANNELS), n_orders)
    frame = pd.DataFrame({
        "order_id": np.char.add("L", order_of_line.astype(str)),
        "customer_id": np.char.add("C", customer[order_of_line].astype(str)),
        "placed_at": (START + seconds[order_of_line].astype("timedelta64[s]")).astype(str),
        "currency": "EUR",
        "channel": CHANNELS[channel[order_of_line]],
        "sku": np.char.add("SKU", rng.integers(0, 5000, n_lines).astype(str)),
        "quantity": rng.integers(1, 4, n_lines),
        "unit_price": np.round(rng.gamma(2.0, 12.0, n_lines), 2),
    })
    frame.to_csv(path, index=False)
    return path


# -- one measurement, in its own process -------------------------------------------------------------------
def measure(kind: str, path: Path, url: str) -> dict:
    from zoneinfo import ZoneInfo

    from kpi.data import importer
    from kpi.data.schema import create_source_tables
    from kpi.db import make_engine

    engine = make_engine(url)
    create_source_tables(engine)
    if kind == "lines" and "lines" not in inspect.signature(importer.import_csv).parameters:
        return {"kind": kind, "supported": False}
    base = _rss_mb("VmRSS")
    started = time.perf_counter()
    result = importer.import_csv(engine, path, "orders", tz=ZoneInfo("UTC"), currency="EUR",
                                 **({"lines": True} if kind == "lines" else {}))
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"kind": kind, "supported": True, "rows": result.rows_read, "orders": result.per_table["orders"]["inserted"],
            "seconds": seconds, "rows_per_s": result.rows_read / seconds, "rss_growth_mb": _rss_mb("VmHWM") - base}


def folder_run(folder: Path, url: str) -> dict:
    """``kpibot import DIR --table orders`` twice, as a user runs it (the command line, a new process each)."""
    env = {**os.environ, "DATABASE_URL": url, "KPIBOT_CURRENCY": "EUR", "KPIBOT_TIMEZONE": "UTC"}
    env.pop("KPI_SOURCE_URL", None)
    subprocess.run([sys.executable, "-m", "kpi.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    out = {}
    for run in ("first", "again"):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "kpi.cli", "import", str(folder), "--table", "orders"],
                              env=env, capture_output=True, text=True, cwd=ROOT)
        out[run] = {"seconds": time.perf_counter() - started, "exit": proc.returncode,
                    "summary": proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]}
    return out


def child(kind: str, path: str, url: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--measure", kind, path, url], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{kind} {path}: the measurement failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


SCHEMAS: list[tuple[str, str]] = []  # PostgreSQL schemas made for a run, dropped at its end


def drop_schemas() -> None:
    from sqlalchemy import text

    from kpi.db import make_engine

    for base, schema in SCHEMAS:
        admin = make_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    SCHEMAS.clear()


def database(backend: str, tmp: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / (name + '.db')}"
    from sqlalchemy import text

    from kpi.db import make_engine
    from kpi.settings import _normalise_url

    base = _normalise_url(os.environ.get("KPIBOT_BENCH_POSTGRES_URL") or os.environ["KPIBOT_TEST_POSTGRES_URL"])
    schema = f"bench_import_{name}_{os.getpid()}"
    SCHEMAS.append((base, schema))
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def run(args) -> list[str]:
    scale = 5 if args.quick else 1
    small, large, n_lines = 100_000 // scale, 1_000_000 // scale, 1_000_000 // scale
    per_day = 1000 // scale
    backends = [b for b in args.backends.split(",")
                if b == "sqlite" or os.environ.get("KPIBOT_BENCH_POSTGRES_URL") or os.environ.get("KPIBOT_TEST_POSTGRES_URL")]
    rows: list[dict] = []
    folders: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="kpibot-bench-import-") as tmpdir:
        tmp = Path(tmpdir)
        files = {"small": orders_file(tmp / "orders-small.csv", small),
                 "large": orders_file(tmp / "orders-large.csv", large, seed=3),
                 "lines-small": lines_file(tmp / "lines-small.csv", n_lines // 10, seed=4),
                 "lines": lines_file(tmp / "lines.csv", n_lines)}
        daily = tmp / "daily"
        daily.mkdir()
        for d in range(100):
            orders_file(daily / f"orders_{d:03d}.csv", per_day, seed=10 + d, first=d * per_day, day=d)
        for backend in backends:
            for name, kind in (("small", "orders"), ("large", "orders"), ("lines-small", "lines"), ("lines", "lines")):
                r = child(kind, str(files[name]), database(backend, tmp, f"{backend}_{name}"))
                rows.append({**r, "backend": backend, "file_mb": files[name].stat().st_size / 1e6})
            folders[backend] = folder_run(daily, database(backend, tmp, f"{backend}_folder"))
    out = [f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
           f"{platform.system()} {platform.release()}; {datetime.now(UTC):%Y-%m-%d}" + (" (--quick)" if args.quick else ""),
           "", "| backend | file | rows in the file | MB | seconds | rows per second | peak RSS added MB |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        label = "orders, one row per order" if r["kind"] == "orders" else "order lines (--lines)"
        if not r["supported"]:
            out.append(f"| {r['backend']} | {label} | – | {r['file_mb']:.0f} | not measured: this importer has no "
                       f"`lines` option yet | – | – |")
            continue
        extra = f" → {r['orders']:,} orders" if r["kind"] == "lines" else ""
        out.append(f"| {r['backend']} | {label} | {r['rows']:,}{extra} | {r['file_mb']:.0f} | {r['seconds']:.1f} "
                   f"| {r['rows_per_s']:,.0f} | {r['rss_growth_mb']:.0f} |")
    out.append("")
    for kind, what in (("orders", "rows"), ("lines", "lines")):
        measured = [r for r in rows if r["kind"] == kind and r["supported"]]
        for backend in backends:
            pair = [r for r in measured if r["backend"] == backend]
            if len(pair) == 2 and pair[0]["rss_growth_mb"] > 0:
                ratio = pair[1]["rss_growth_mb"] / pair[0]["rss_growth_mb"]
                out.append(f"- {backend}: memory for {pair[1]['rows']:,} {what} is {ratio:.1f}× that for "
                           f"{pair[0]['rows']:,} {what} ({'flat' if ratio < 2 else 'grows with the file'}).")
    out += ["", "| backend | folder | first run s (target < 60) | again, all skipped s | summary |",
            "|---|---|---:|---:|---|"]
    for backend, f in folders.items():
        out.append(f"| {backend} | 100 daily files × {per_day:,} orders | {f['first']['seconds']:.1f} "
                   f"| {f['again']['seconds']:.1f} | {f['first']['summary']} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="files 5 times smaller: under 3 minutes")
    ap.add_argument("--backends", default="sqlite", help="sqlite, postgresql (KPIBOT_BENCH_POSTGRES_URL or "
                                                         "KPIBOT_TEST_POSTGRES_URL)")
    ap.add_argument("--write", metavar="FILE", help="append the results as a section of FILE (e.g. bench/RESULTS.md)")
    ap.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # internal: kind, file, database URL
    args = ap.parse_args()
    if args.measure:
        kind, path, url = args.measure
        print(json.dumps(measure(kind, Path(path), url)))
        return 0
    started = time.perf_counter()
    try:
        lines = run(args)
    finally:
        drop_schemas()
    lines.append("")
    lines.append(f"(the benchmark took {time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))
    if args.write:
        with open(args.write, "a", encoding="utf-8") as f:
            f.write("\n## Import (`bench/import.py`)\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
