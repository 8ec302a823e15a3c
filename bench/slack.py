"""Benchmark: ``/kpi conversion`` over HTTP, as Slack sends it, against a source of 1M orders.

    python bench/slack.py [--size 1000000] [--backend sqlite|postgresql] [--requests 100]

Starts the production web process (``kpibot serve``: gunicorn, gthread workers) in a subprocess with
a local Slack stand-in as the Web API, sends signed slash commands one at a time and in bursts of 20
simultaneous requests, and reports p50/p99 of
  - acknowledgement: the HTTP 200 Slack waits for (the 3-second rule),
  - answer: from sending the command to the answer arriving at the response_url,
and the ratio of the answer time to the engine's own time for the same question (measured in this
process on the same source). Uses the demo shop that ``bench/engine.py`` builds (bench/data).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import build, pg_url, source_url  # noqa: E402  (bench/engine.py)

from bot.sandbox import SlackSide  # noqa: E402
from bot.standin import SlackStandIn  # noqa: E402
from kpi.db import make_engine  # noqa: E402
from kpi.metrics.catalog import load_catalog  # noqa: E402
from kpi.metrics.engine import KpiEngine  # noqa: E402
from kpi.metrics.query import parse_query  # noqa: E402
from kpi.state.tables import upgrade  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
QUESTION = "conversion"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


class Arrivals:
    """Watches the stand-in and notes when each user's answer (first response_url message) arrives."""

    def __init__(self, standin: SlackStandIn):
        self.standin = standin
        self.seen = 0
        self.first: dict[str, float] = {}
        self.events: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            messages = self.standin.messages
            for m in messages[self.seen:]:
                if (m.kind == "response_url" and not m.replace_original and m.user in self.events
                        and m.user not in self.first):
                    self.first[m.user] = time.perf_counter()
                    self.events.setdefault(m.user, threading.Event()).set()
            self.seen = len(messages)
            time.sleep(0.002)

    def reset(self, user: str) -> None:
        self.first.pop(user, None)
        self.events[user] = threading.Event()

    def wait(self, user: str, timeout: float) -> float:
        self.events.setdefault(user, threading.Event()).wait(timeout)
        return self.first.get(user, float("nan"))

    def stop(self):
        self._stop.set()


def run(concurrency: int, n: int, side: SlackSide, standin: SlackStandIn, arrivals: Arrivals, tag: str):
    """``n`` commands in bursts of ``concurrency``, from a team of ``concurrency`` people who ask again and
    again (so, as in real use, the app already knows their locale after their first question)."""
    acks, answers, errors = [], [], 0
    team = [f"U{tag}{i:03d}" for i in range(concurrency)]
    for u in team:
        standin.add_user(u, name=u.lower())

    def one(user: str):
        url = standin.new_response_url(user_id=user)
        started = time.perf_counter()
        reply = side.command(QUESTION, response_url=url, user_id=user)
        ack = time.perf_counter() - started
        return reply.status, ack, arrivals.wait(user, 30) - started

    # bursts: `concurrency` users send at the same instant, as when a team asks at the start of a meeting;
    # the next burst starts once every answer of this one is in (and the charts drawn)
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(0, n, concurrency):
            for u in team:
                arrivals.reset(u)
            for status, ack, answer in pool.map(one, team):
                if status != 200 or answer != answer:
                    errors += 1
                    continue
                acks.append(ack * 1000)
                answers.append(answer * 1000)
            time.sleep(1.0)
    return acks, answers, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    ap.add_argument("--requests", type=int, default=100)
    args = ap.parse_args()
    if args.backend == "postgresql" and not pg_url():
        print("set KPIBOT_BENCH_POSTGRES_URL for the PostgreSQL run", file=sys.stderr)
        return 2
    build(args.backend, args.size)
    source = source_url(args.backend, args.size)
    state = f"sqlite:///{tempfile.mkdtemp()}/state.db"
    upgrade(state)

    # the engine's own time for the same question, in this process
    engine = KpiEngine(load_catalog(ROOT / "config"), make_engine(source), tz=ZoneInfo("UTC"))
    request = parse_query(QUESTION, engine.catalog, now=engine.now(), tz=ZoneInfo("UTC")).request
    engine.ask(request)
    engine_ms = []
    for _ in range(30):
        t = time.perf_counter()
        engine.ask(request)
        engine_ms.append((time.perf_counter() - t) * 1000)

    with SlackStandIn() as standin:
        port = 31000 + os.getpid() % 1000
        env = {**os.environ, "DATABASE_URL": state, "KPI_SOURCE_URL": source, "KPIBOT_TIMEZONE": "UTC",
               "SLACK_BOT_TOKEN": standin.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": standin.base_url,
               "WEB_CONCURRENCY": "2", "KPIBOT_WEB_THREADS": "16"}
        web = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1):  # noqa: S310 - loopback
                        break
                except OSError:
                    time.sleep(0.1)
            side = SlackSide(base, SECRET)
            arrivals = Arrivals(standin)
            run(4, 8, side, standin, arrivals, "W")  # warm both workers up
            rows = []
            for concurrency in (1, 20):
                acks, answers, errors = run(concurrency, args.requests, side, standin, arrivals, f"C{concurrency}")
                rows.append((concurrency, acks, answers, errors))
            arrivals.stop()
        finally:
            web.terminate()
            web.wait(10)

    eng = statistics.median(engine_ms)
    print(f"`/kpi {QUESTION}` over HTTP, {args.backend}, {args.size:,} orders, {args.requests} requests per row; "
          f"web: gunicorn 2 workers x 16 threads; engine alone: p50 {eng:.1f} ms")
    print()
    print("| concurrent | ack p50 ms | ack p99 ms | answer p50 ms | answer p99 ms | errors | answer p50 / engine p50 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, acks, answers, errors in rows:
        print(f"| {concurrency} | {pct(acks, .5):.1f} | {pct(acks, .99):.1f} | {pct(answers, .5):.1f} | "
              f"{pct(answers, .99):.1f} | {errors} | {pct(answers, .5) / eng:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
