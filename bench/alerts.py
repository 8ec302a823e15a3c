"""Benchmark: evaluating 10, 100 and 1,000 alert rules over 1M orders.

    python bench/alerts.py [--size 1000000] [--backend sqlite|postgresql]

Rules are drawn from 5 KPIs x 3 windows x 2 filters (30 distinct questions). For each rule count it
times one evaluation pass of every rule (``evaluate_rules(force=True)``: queries, the state machine,
guarded state writes, the transition log), next to the time of asking the distinct questions once.
Rules that ask the same question share its answer, so the pass grows with distinct questions (plus a
small per-rule cost for the state row), not with the number of rules. The state database is a fresh
SQLite file. Uses the demo shop that bench/engine.py builds.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import NOW, build, pg_url, source_url  # noqa: E402  (bench/engine.py)

from kpi.alerts.evaluation import evaluate_rules, rule_request  # noqa: E402
from kpi.alerts.rules import parse_rule  # noqa: E402
from kpi.alerts.store import AlertRules, all_rules  # noqa: E402
from kpi.db import make_engine  # noqa: E402
from kpi.metrics.catalog import load_catalog  # noqa: E402
from kpi.metrics.engine import KpiEngine  # noqa: E402
from kpi.state.tables import upgrade  # noqa: E402

TEXTS = ["return rate above 8%", "conversion below 1.5%", "aov below 60", "revenue change below -20%",
         "orders below 100"]
WINDOWS = [" over 1 day", " over 3 days", " over 7 days"]
FILTERS = ["", " channel=email"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    if args.backend == "postgresql" and not pg_url():
        print("set KPIBOT_BENCH_POSTGRES_URL for the PostgreSQL run", file=sys.stderr)
        return 2
    build(args.backend, args.size)
    catalog = load_catalog(ROOT / "config")
    source = source_url(args.backend, args.size)
    specs = [parse_rule(t + w + f + " in #ops", catalog) for t in TEXTS for w in WINDOWS for f in FILTERS]

    def engine():
        return KpiEngine(catalog, make_engine(source), tz=ZoneInfo("UTC"), clock=lambda: NOW)

    def distinct():
        e = engine()
        for spec in specs:
            e.ask(rule_request(e, spec, NOW))

    times = []
    for _ in range(3):
        t = time.perf_counter()
        distinct()
        times.append(time.perf_counter() - t)
    base = min(times) * 1000
    print(f"alert evaluation, {args.backend}, {args.size:,} orders; {len(specs)} distinct questions; asking each "
          f"once: {base:.0f} ms")
    print()
    print("| rules | one evaluation pass ms | distinct queries run | / distinct questions | per rule ms |")
    print("|---:|---:|---:|---:|---:|")
    rng = random.Random(3)
    for n in (10, 100, 1000):
        state_url = f"sqlite:///{tempfile.mkdtemp()}/state.db"
        upgrade(state_url)
        state = make_engine(state_url)
        store = AlertRules(state, "T0BENCH")
        for _ in range(n):
            store.add(rng.choice(specs))
        rules = all_rules(state)
        best, queries = float("inf"), 0
        for _ in range(2):
            t = time.perf_counter()
            _, queries = evaluate_rules(engine(), state, rules, NOW, force=True)
            best = min(best, (time.perf_counter() - t) * 1000)
        print(f"| {n} | {best:.0f} | {queries} | {best / base:.2f} | {best / n:.2f} |")
        state.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
