"""Benchmark: composing a digest of 5, 50 and 500 goals over 1M orders.

    python bench/digest.py [--size 1000000] [--backend sqlite|postgresql]

The goals are drawn from 5 KPIs x 3 filters (15 distinct KPI questions, each with its KPIs to watch).
For each goal count it times ``compose_digest`` (best of 3), next to the time of answering each
distinct question once (``goal_progress`` of one goal per distinct (KPI, filters) pair, plus the
movers). A digest that batches its queries costs about the distinct questions' time whatever the
number of goals. Uses the demo shop that bench/engine.py builds.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import TODAY, build, pg_url, source_url  # noqa: E402  (bench/engine.py)

from kpi.db import make_engine  # noqa: E402
from kpi.digests.compose import compose_digest, spec_of  # noqa: E402
from kpi.goals import goal_progress, parse_goal  # noqa: E402
from kpi.metrics.catalog import load_catalog  # noqa: E402
from kpi.metrics.engine import KpiEngine  # noqa: E402
from kpi.state.store import StoredGoal  # noqa: E402

TEXTS = ["revenue +10% this year", "orders +8% this year", "conversion +5% in a year", "aov +3% in a year",
         "visitors +20% this year"]
FILTERS = ["", " channel=email", " channel=paid_search"]


def goals(n: int, catalog, today: date) -> list[StoredGoal]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        text = rng.choice(TEXTS) + rng.choice(FILTERS)
        spec = parse_goal(text, catalog, today=today, tz=ZoneInfo("UTC"))
        out.append(StoredGoal(id=i + 1, team_id="T0BENCH", metric=spec.metric, target_kind=spec.target_kind,
                              target_value=spec.target_value, start=spec.start, deadline=spec.deadline,
                              filters=spec.filters, baseline=spec.baseline, watch=spec.watch, text=text))
    return out


def best(fn, n=3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000


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
    # a fresh engine per measurement, so that no run profits from another's cached freshness queries
    new_engine = lambda: KpiEngine(catalog, make_engine(source_url(args.backend, args.size)), tz=ZoneInfo("UTC"))  # noqa: E731
    today = TODAY
    distinct = {}
    for g in goals(500, catalog, today):
        distinct.setdefault((g.metric, g.filters), g)

    def distinct_questions():
        engine = new_engine()
        for g in distinct.values():
            goal_progress(engine, spec_of(g), today=today)

    base = best(distinct_questions)
    print(f"digest composition, {args.backend}, {args.size:,} orders; {len(distinct)} distinct (KPI, filters) pairs; "
          f"answering each once: {base:.0f} ms")
    print()
    print("| goals | compose_digest ms | / distinct questions | / 50 goals |")
    print("|---:|---:|---:|---:|")
    rows = {}
    for n in (5, 50, 500):
        gs = goals(n, catalog, today)
        rows[n] = best(lambda gs=gs: compose_digest(new_engine(), gs, team_id="T0BENCH", today=today))
    for n, ms in rows.items():
        print(f"| {n} | {ms:.0f} | {ms / base:.2f} | {ms / rows[50]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
