"""Benchmark: composing a morning digest of 50 goals (and 5, 500) at 1M and 10M orders, per backend, and a
10-year shop against a 2-year shop with the same recent volume.

    python bench/digest.py [--sizes 1000000,10000000] [--backends sqlite,postgresql,duckdb] [--goals 5,50,500]
                           [--years 2,10] [--repeat 3]

The goals are drawn from 5 KPIs x 3 filters (15 distinct KPI questions, each with its KPIs to watch).
For each (backend, size, years) it times ``compose_digest`` with a fresh engine per run (no run profits from
another's cached freshness queries): the median of ``--repeat`` runs (one run when the first takes over a
minute). ``--years 10`` uses the shop of bench/sources.py: 3,650 days whose last 730 hold as many orders as
the 2-year shop of the same size (the older years hold fewer orders a day: the demo's demand grows 15 % a
year); it is built for the 1M size only. Uses the shops that bench/engine.py builds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sources import TODAY, build, pg_url, source_url  # noqa: E402  (bench/sources.py)

from kpi.db import make_engine  # noqa: E402
from kpi.digests.compose import compose_digest  # noqa: E402
from kpi.goals import parse_goal  # noqa: E402
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


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median, min) of ``repeat`` runs in ms; one run when the first takes over a minute."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        if times[0] > 60_000:
            break
    return statistics.median(times), min(times)


def digest_ms(backend: str, size: int, years: int, n: int, repeat: int) -> tuple[float, float]:
    catalog = load_catalog(ROOT / "config")
    gs = goals(n, catalog, TODAY)

    def run():
        src = make_engine(source_url(backend, size, years))
        try:
            compose_digest(KpiEngine(catalog, src, tz=ZoneInfo("UTC")), gs, team_id="T0BENCH", today=TODAY)
        finally:
            src.dispose()

    return timed(run, repeat)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--backends", default="sqlite,postgresql,duckdb")
    ap.add_argument("--goals", default="50")
    ap.add_argument("--years", default="2,10")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    backends = [b for b in args.backends.split(",") if b != "postgresql" or pg_url()]
    counts = [int(n) for n in args.goals.split(",")]
    print("| backend | orders (last 2 years) | years of history | goals | compose_digest ms (median) | min ms | runs |")
    print("|---|---:|---:|---:|---:|---:|---|")
    rows = {}
    for backend in backends:
        for size in (int(s) for s in args.sizes.split(",")):
            for years in (int(y) for y in args.years.split(",")):
                if years != 2 and size != 1_000_000:
                    continue
                try:
                    build(backend, size, years)
                    for n in counts:
                        med, low = digest_ms(backend, size, years, n, args.repeat)
                        rows[(backend, size, years, n)] = med
                        print(f"| {backend} | {size:,} | {years} | {n} | {med:,.0f} | {low:,.0f} | {args.repeat} |",
                              flush=True)
                except Exception as exc:  # noqa: BLE001 - a backend that fails is a result
                    print(f"| {backend} | {size:,} | {years} | – | FAILING: {type(exc).__name__}: "
                          f"{str(exc)[:200]} | | |", flush=True)
    print()
    for (backend, size, years, n), ms in rows.items():
        if years == 10 and (backend, size, 2, n) in rows:
            print(f"- {backend}, {n} goals: the 10-year shop takes {ms / rows[(backend, size, 2, n)]:.2f}x the "
                  f"2-year shop with the same recent volume ({size:,} orders in the last 2 years)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
