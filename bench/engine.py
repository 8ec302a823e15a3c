"""Benchmark: the KPI engine against hand SQL, an expert's SQL, DuckDB and a numpy floor, interleaved.

    python bench/engine.py [--sizes 1000000,10000000] [--backends sqlite,postgresql,duckdb,chdb]
                           [--rounds 7] [--plans] [--json FILE]

Sources: the demo shop (``kpibot demo-data``, 730 days ending 2026-11-23, seed 7, orders per day = size / 730),
built once and kept: ``bench/data/shop-<size>.db`` (SQLite, then ``ANALYZE``), schema ``bench_<size>`` on
PostgreSQL (``KPIBOT_BENCH_POSTGRES_URL``; then ``VACUUM (ANALYZE)``: autovacuum may be off, and a table never
vacuumed has no visibility map, so an index-only scan fetches every heap row), ``bench/data/shop-<size>.duckdb``
and ``bench/data/chdb-<size>/`` (copied from the SQLite file, same rows). See ``bench/sources.py``.

Questions (the shop's time zone is UTC, so a local day is a UTC day):
  conversion last 7 days; revenue YTD by channel; revenue 90-day daily series; revenue 365-day daily series
  with channel=email (what a goal with a filter asks); orders yesterday (a tiny question: the engine's overhead).
Contenders, per question, in the same process, round-robin over ``--rounds`` rounds (the order rotates):
  engine      ``KpiEngine.ask`` (no comparison; a series only where the question is one)
  engine SQL  the statements the engine sent, replayed on the raw DBAPI cursor: engine - engine SQL = its overhead
  hand        the hand-written SQL of the first version of this benchmark (``GROUP BY date(placed_at)``)
  expert      what an expert writes: one statement; a daily series as one range scan per day (a recursive CTE on
              SQLite, ``generate_series`` + ``CROSS JOIN LATERAL`` on PostgreSQL); ``GROUP BY`` day on DuckDB/chdb
  numpy       the floor: the columns in RAM sorted by time, ``np.searchsorted`` + sums
Reported: the median of each contender's times, and the median over rounds of the paired ratio engine / best
SQL (the faster of hand and expert in the same round, on the same backend). Answers are checked against each
other (to the cent). Each (backend, size) runs in its own subprocess. ``--plans`` prints the query plans of the
engine's statements and of the expert's (``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY PLAN``
on SQLite, ``EXPLAIN`` on DuckDB and chdb).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sources import DATA, build, floor_columns, pg_url, source_url  # noqa: E402,F401  (bench/sources.py)
from sqls import EXPERT, HAND, questions  # noqa: E402  (bench/sqls.py)

TZ = ZoneInfo("UTC")
TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=TZ)
CONTENDERS = ("engine", "engine SQL", "hand", "expert", "numpy")


# -- running SQL on the raw driver -----------------------------------------------------------------------
def _paramstyle(sql: str, backend: str) -> str:
    import re

    if backend == "postgresql":
        return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
    if backend == "duckdb":
        return re.sub(r"(?<!:):(\w+)", r"$\1", sql)
    return sql


class Raw:
    """Statements on the backend's own driver (no SQLAlchemy in the timing)."""

    def __init__(self, backend: str, src):
        self.backend = backend
        self.conn = src.raw_connection()

    def run(self, sql: str, params) -> list:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchall()
        finally:
            cur.close()

    def runner(self, sql: str, params):
        sql, params = self.style(sql, params)
        return lambda: self.run(sql, params)

    def style(self, sql: str, params: dict):
        """``:name`` parameters in the driver's style (chdb's DBAPI takes ``?`` and a tuple)."""
        if self.backend != "chdb":
            return _paramstyle(sql, self.backend), params
        import re

        names = re.findall(r"(?<!:):(\w+)", sql)
        return re.sub(r"(?<!:):(\w+)", "?", sql), tuple(str(params[n]) for n in names)

    def close(self):
        self.conn.close()


def captured(src, fn) -> list[tuple[str, object]]:
    """The statements (and their DBAPI parameters) that ``fn`` sends to ``src``."""
    from sqlalchemy import event

    sent: list[tuple[str, object]] = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        sent.append((statement, parameters))

    event.listen(src, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(src, "before_cursor_execute", grab)
    return sent


def explain(raw: Raw, sql: str, params) -> str:
    prefix = {"sqlite": "EXPLAIN QUERY PLAN ", "postgresql": "EXPLAIN (ANALYZE, BUFFERS) ",
              "duckdb": "EXPLAIN ", "chdb": "EXPLAIN "}[raw.backend]
    try:
        rows = raw.run(prefix + sql, params)
    except Exception as exc:  # noqa: BLE001 - a plan that cannot be shown is reported, not fatal
        return f"(no plan: {type(exc).__name__}: {exc})"
    if raw.backend == "sqlite":
        return "\n".join(f"{'  ' * 0}{r[-1]}" for r in rows)
    if raw.backend == "chdb":
        return "\n".join(str(r[0]) for r in rows)
    return "\n".join(str(r[-1] if raw.backend == "duckdb" else r[0]) for r in rows)


# -- one (backend, size): in its own process --------------------------------------------------------------
def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def measure(backend: str, size: int, rounds: int, plans: bool) -> dict:
    from kpi.db import make_engine
    from kpi.metrics.catalog import load_catalog
    from kpi.metrics.engine import KpiEngine

    out: dict = {"backend": backend, "size": size, "questions": {}, "errors": []}
    url = source_url(backend, size)
    try:
        src = make_engine(url)
        engine = KpiEngine(load_catalog(ROOT / "config"), src, tz=TZ, clock=lambda: NOW)
    except Exception as exc:  # noqa: BLE001 - the engine failing on a backend is a result
        out["errors"].append(f"engine on {url}: {type(exc).__name__}: {str(exc)[:300]}")
        engine = src = None
    raw = Raw(backend, src if src is not None else make_engine(url))
    floor = floor_columns(size)
    plan_text: list[str] = []
    for q in questions(NOW, TZ):
        fns: dict = {}
        answers: dict = {}
        hand_sql = HAND[q.key](backend)
        expert_sql = EXPERT[q.key](backend)
        fns["hand"] = raw.runner(hand_sql, q.params)
        if expert_sql is not None and expert_sql != hand_sql:
            fns["expert"] = raw.runner(expert_sql, q.params)
        fns["numpy"] = lambda q=q: q.floor(floor)
        if engine is not None:
            ask = lambda q=q: engine.ask(q.request)  # noqa: E731
            try:
                answers["engine"] = q.from_result(ask())
                statements = captured(src, ask)
                fns["engine"] = ask
                fns["engine SQL"] = (lambda st=statements: [raw.run(s, p) for s, p in st])
            except Exception as exc:  # noqa: BLE001
                out["errors"].append(f"engine, {q.key}: {type(exc).__name__}: {str(exc)[:300]}")
                statements = []
        else:
            statements = []
        for name in ("hand", "expert", "numpy"):
            if name in fns:
                try:
                    answers[name] = q.from_rows(fns[name]()) if name != "numpy" else fns[name]()
                except Exception as exc:  # noqa: BLE001
                    out["errors"].append(f"{name}, {q.key}: {type(exc).__name__}: {str(exc)[:300]}")
                    del fns[name]
        agree = q.agree(answers)
        times: dict[str, list[float]] = {k: [] for k in fns}
        ratios, overheads = [], []
        order = list(fns)
        inner = 3 if size <= 1_000_000 else 1
        for r in range(rounds):
            rot = order[r % len(order):] + order[:r % len(order)]
            this: dict[str, float] = {}
            for name in rot:
                best = float("inf")
                for _ in range(inner):
                    t = time.perf_counter()
                    fns[name]()
                    best = min(best, time.perf_counter() - t)
                this[name] = best * 1000
                times[name].append(this[name])
            sql_best = min([this[k] for k in ("hand", "expert") if k in this] or [float("nan")])
            if "engine" in this:
                ratios.append(this["engine"] / sql_best)
                overheads.append(this["engine"] - this["engine SQL"])
        out["questions"][q.key] = {
            "label": q.label, "ms": {k: _median(v) for k, v in times.items()},
            "engine_vs_best": _median(ratios), "engine_overhead_ms": _median(overheads),
            "statements": len(statements), "agree": agree,
        }
        if plans:
            plan_text.append(f"### {backend} {size:,}: {q.label}")
            for i, (s, p) in enumerate(statements):
                plan_text.append(f"engine statement {i + 1}:\n```\n{s.strip()[:1500]}\n```\nplan:\n```\n{explain(raw, s, p)}\n```")
            if expert_sql:
                e, p = raw.style(expert_sql, q.params)
                plan_text.append(f"expert:\n```\n{e.strip()}\n```\nplan:\n```\n{explain(raw, e, p)}\n```")
    out["plans"] = "\n".join(plan_text)
    raw.close()
    return out


# -- the whole run -----------------------------------------------------------------------------------------
def _git_commit() -> str:
    try:
        return subprocess.run(["git", "log", "-1", "--format=%h %cI %s"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def report(results: list[dict]) -> str:
    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{platform.system()} {platform.release()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {_git_commit()}",
             "", "| backend | orders | question | engine ms | engine SQL ms | hand ms | expert ms | numpy ms "
             "| engine / best SQL (median of paired) | engine overhead ms | answers agree |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]

    def f(x):
        return "–" if x is None or x != x else f"{x:.2f}"

    for r in results:
        for q in r["questions"].values():
            ms = q["ms"]
            lines.append(f"| {r['backend']} | {r['size']:,} | {q['label']} | {f(ms.get('engine'))} | {f(ms.get('engine SQL'))} "
                         f"| {f(ms.get('hand'))} | {f(ms.get('expert'))} | {f(ms.get('numpy'))} | {f(q['engine_vs_best'])} "
                         f"| {f(q['engine_overhead_ms'])} | {q['agree']} |")
    for r in results:
        for e in r["errors"]:
            lines.append(f"- FAILING {r['backend']} {r['size']:,}: {e}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--backends", default="sqlite,postgresql,duckdb,chdb")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--plans", action="store_true", help="print the query plans of the engine's and the expert's SQL")
    ap.add_argument("--json", help="also write the raw figures to this file")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds before a (backend, size) is reported hung")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # internal: backend:size, run in a subprocess
    args = ap.parse_args()
    if args.measure:
        backend, size = args.measure.split(":")
        print(json.dumps(measure(backend, int(size), args.rounds, args.plans)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b for b in args.backends.split(",") if b != "postgresql" or pg_url()]
    results = []
    for size in sizes:
        for backend in backends:
            try:
                build(backend, size)
            except Exception as exc:  # noqa: BLE001 - a backend that cannot be built is reported
                results.append({"backend": backend, "size": size, "questions": {},
                                "errors": [f"build: {type(exc).__name__}: {str(exc)[:300]}"], "plans": ""})
                continue
            cmd = [sys.executable, __file__, "--measure", f"{backend}:{size}", "--rounds", str(args.rounds)]
            try:
                proc = subprocess.run(cmd + (["--plans"] if args.plans else []), capture_output=True, text=True,
                                      timeout=args.timeout)
            except subprocess.TimeoutExpired:
                results.append({"backend": backend, "size": size, "questions": {}, "plans": "",
                                "errors": [f"measurement hung: no result after {args.timeout:.0f} s"]})
                continue
            if proc.returncode != 0:
                results.append({"backend": backend, "size": size, "questions": {}, "plans": "",
                                "errors": [f"measurement crashed: {proc.stderr.strip().splitlines()[-1:]}"]})
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  measured {backend} {size:,}", file=sys.stderr)
    print(report(results))
    if args.plans:
        for r in results:
            print()
            print(r.get("plans", ""))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
