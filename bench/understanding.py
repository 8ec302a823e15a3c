"""Benchmark: how well, and how fast, the question reader understands what people type in Slack.

    python bench/understanding.py [--repeat 5] [--engine-repeat 20]

For the corpus (tests/corpus/questions.yaml, what the reader is tuned on) and for the held-out set
(bench/heldout_questions.yaml, phrasings the corpus does not hold), it prints how many questions are read
exactly right, read wrongly (a reading that differs from the expected one, or a reading of a question
that must be refused: each listed) and refused (a question that has a reading, or one refused for
another reason than expected: each listed), judged as tests/test_corpus.py judges them.

Then the cost of reading: the median microseconds of one ``read_question`` over every corpus question
(all questions in turn, ``--repeat`` rounds, after one warm-up round), next to the engine's own time for
answering ``conversion`` (last 7 days vs previous, with its daily series) on a small demo shop it builds
in a temporary SQLite file (60 days, about 100 orders a day), as a ratio.

Targets: at least 98% right, 0 wrong, reading under 2 ms. While kpi.metrics.reader does not exist,
it says so and exits 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HELDOUT = ROOT / "bench" / "heldout_questions.yaml"
TARGET_RIGHT = 0.98
TARGET_READ_MS = 2.0
VERDICTS = ("right", "wrong", "refused", "crashed")


def missing() -> list[str]:
    return [m for m in ("kpi.metrics.reader", "kpi.metrics.values") if importlib.util.find_spec(m) is None]


def report(name: str, path: Path, outcomes) -> dict:
    counts = Counter(o.verdict for o in outcomes)
    n = len(outcomes)
    print(f"{name}: {path.relative_to(ROOT)}, {n} questions")
    share = counts["right"] / n if n else 0.0
    marks = {"right": f"target >= {TARGET_RIGHT:.0%} {'ok' if share >= TARGET_RIGHT else 'MISSED'}",
             "wrong": f"target 0 {'ok' if not counts['wrong'] else 'MISSED'}",
             "refused": "", "crashed": "target 0 " + ("ok" if not counts["crashed"] else "MISSED")}
    for verdict in VERDICTS:
        if verdict == "crashed" and not counts[verdict]:
            continue
        label = {"right": "read right", "wrong": "read wrongly"}.get(verdict, verdict)
        print(f"  {label:<13}{counts[verdict]:>5}  {counts[verdict] / n if n else 0:6.1%}   {marks[verdict]}")
    by_lang = []
    for lang in ("en", "fr", "de"):
        mine = [o for o in outcomes if o.entry.get("lang") == lang]
        if mine:
            right = sum(o.verdict == "right" for o in mine)
            by_lang.append(f"{lang} {right}/{len(mine)} ({right / len(mine):.1%})")
    print(f"  right by language: {', '.join(by_lang)}")
    for verdict in ("wrong", "crashed", "refused"):
        chosen = [o for o in outcomes if o.verdict == verdict]
        if chosen:
            print(f"  {verdict}:")
            for o in chosen:
                print(f"    - {o.describe()}")
    print()
    return {"n": n, **counts}


def time_reading(read, questions: list[str], repeat: int) -> list[float]:
    """Microseconds per read_question: every question in turn, ``repeat`` rounds (after a warm-up)."""
    samples: list[float] = []
    for rnd in range(repeat + 1):
        for q in questions:
            t = time.perf_counter()
            try:
                read(q)
            except Exception:  # noqa: BLE001, S110 - refusals are timed like readings
                pass
            if rnd:
                samples.append((time.perf_counter() - t) * 1e6)
    return samples


def time_engine(repeat: int) -> tuple[float, int]:
    """Median microseconds of the engine answering ``conversion`` on a small demo shop, and its orders."""
    from kpi.data.demo import generate_demo_data
    from kpi.data.schema import create_source_tables
    from kpi.db import make_engine
    from kpi.metrics.catalog import load_catalog
    from kpi.metrics.engine import KpiEngine, KpiRequest
    from kpi.metrics.periods import default_period
    from tests.test_corpus import CATALOG, NOW, TZ

    with tempfile.TemporaryDirectory() as tmp:
        source = make_engine(f"sqlite:///{Path(tmp) / 'shop.db'}")
        try:
            create_source_tables(source)
            summary = generate_demo_data(source, days=60, orders_per_day=100, seed=7, today=NOW.date(), tz=TZ)
            engine = KpiEngine(load_catalog(CATALOG), source, tz=TZ, clock=lambda: NOW)
            request = KpiRequest("conversion_rate", default_period(now=NOW, tz=TZ))
            engine.ask(request)  # warm the caches once
            samples = []
            for _ in range(repeat):
                t = time.perf_counter()
                engine.ask(request)
                samples.append((time.perf_counter() - t) * 1e6)
        finally:
            source.dispose()
    return statistics.median(samples), summary.orders


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="rounds over the corpus when timing the reader")
    ap.add_argument("--engine-repeat", type=int, default=20, help="answers timed for the engine")
    args = ap.parse_args()
    if gone := missing():
        print(f"{' and '.join(gone)} does not exist yet: there is no reader to measure.")
        return 1

    import tests.test_corpus as tc
    from kpi.metrics.catalog import load_catalog

    catalog = load_catalog(tc.CATALOG)
    read = tc.make_reader()
    corpus = tc.load_entries(tc.CORPUS)
    heldout = tc.load_entries(HELDOUT)
    for name, entries in (("corpus", corpus), ("held-out", heldout)):
        if bad := tc.problems(entries, catalog):
            print(f"{name}: {len(bad)} malformed entries (the numbers below count them as the reader reads them):")
            print("\n".join(f"  - {p}" for p in bad))
            print()

    print(f"Clock {tc.NOW:%Y-%m-%d %H:%M} {tc.TZ}; targets: >= {TARGET_RIGHT:.0%} right, 0 wrong, "
          f"reading < {TARGET_READ_MS:g} ms\n")
    report("corpus", tc.CORPUS, tc.judge_all(corpus, read))
    report("held-out", HELDOUT, tc.judge_all(heldout, read))

    questions = [e["q"] for e in corpus]
    samples = time_reading(read, questions, args.repeat)
    reading_us = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    engine_us, orders = time_engine(args.engine_repeat)
    ok = "ok" if reading_us < TARGET_READ_MS * 1000 else "MISSED"
    print(f"cost of reading ({len(questions)} corpus questions x {args.repeat} rounds, interleaved):")
    print(f"  read_question       median {reading_us:9.1f} µs   p95 {p95:9.1f} µs   "
          f"target < {TARGET_READ_MS * 1000:g} µs {ok}")
    print(f"  engine 'conversion' median {engine_us:9.1f} µs   (last 7 days vs previous, daily series; "
          f"demo shop, 60 days, {orders:,} orders, SQLite)")
    print(f"  reading / engine    {reading_us / engine_us:.3f}  (reading is {reading_us / engine_us:.1%} of the "
          f"engine's answer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
