"""Load: signed ``/kpi`` requests from concurrent clients for a fixed time, against the web process.

    python bench/load.py [--clients 50] [--seconds 60] [--backend postgresql] [--size 1000000] [--json FILE]

The production web process (``kpibot serve``: gunicorn, 2 gthread workers) runs in a subprocess with
the local Slack stand-in as the Web API; ``--clients`` closed-loop clients (each a team member asking
one of a few questions, again and again) send commands signed as Slack signs them until ``--seconds``
have passed. Reports throughput, acknowledgement and answer latency p50/p99, errors (non-200, no answer
within 30 s) and the web process's memory (RSS of gunicorn's master and workers, sampled every second:
first, peak and last, to see whether it grows). Uses the demo shop bench/engine.py builds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import build, pg_url, source_url  # noqa: E402  (bench/engine.py)
from slack import SECRET, Arrivals, pct  # noqa: E402  (bench/slack.py)

from bot.sandbox import SlackSide  # noqa: E402
from bot.standin import SlackStandIn  # noqa: E402
from kpi.state.tables import upgrade  # noqa: E402

QUESTIONS = ["conversion", "aov last month by channel", "revenue this month vs last year", "return rate",
             "orders last 30 days by device", "taux de conversion cette semaine"]


def rss_mb(pid: int) -> float:
    """RSS of a process and its children (gunicorn's master and workers)."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--backend", default="postgresql", choices=["sqlite", "postgresql"])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if args.backend == "postgresql" and not pg_url():
        print("set KPIBOT_BENCH_POSTGRES_URL (or KPIBOT_TEST_POSTGRES_URL) for the PostgreSQL run", file=sys.stderr)
        return 2
    build(args.backend, args.size)
    state = f"sqlite:///{tempfile.mkdtemp()}/state.db"
    upgrade(state)
    with SlackStandIn() as standin:
        port = 32000 + os.getpid() % 1000
        env = {**os.environ, "DATABASE_URL": state, "KPI_SOURCE_URL": source_url(args.backend, args.size),
               "KPIBOT_TIMEZONE": "UTC", "SLACK_BOT_TOKEN": standin.bot_token, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": standin.base_url, "WEB_CONCURRENCY": "2", "KPIBOT_WEB_THREADS": "16"}
        web = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1):  # noqa: S310 - loopback
                        break
                except OSError:
                    time.sleep(0.1)
            side = SlackSide(base, SECRET)
            arrivals = Arrivals(standin)
            team = [f"U0LOAD{i:03d}" for i in range(args.clients)]
            for u in team:
                standin.add_user(u, name=u.lower())
            acks, answers, errors, done = [], [], [0], threading.Event()
            memory: list[float] = []

            def sample_memory():
                while not done.is_set():
                    memory.append(rss_mb(web.pid))
                    time.sleep(1)

            def client(user: str, seed: int):
                rng = random.Random(seed)
                while not done.is_set():
                    arrivals.reset(user)
                    started = time.perf_counter()
                    reply = side.command(rng.choice(QUESTIONS), response_url=standin.new_response_url(user_id=user),
                                         user_id=user)
                    ack = time.perf_counter() - started
                    arrived = arrivals.wait(user, 30) - started
                    if reply.status != 200 or arrived != arrived:
                        errors[0] += 1
                    else:
                        acks.append(ack * 1000)
                        answers.append(arrived * 1000)

            threads = [threading.Thread(target=sample_memory, daemon=True)]
            threads += [threading.Thread(target=client, args=(u, i), daemon=True) for i, u in enumerate(team)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            time.sleep(args.seconds)
            done.set()
            for t in threads:
                t.join(timeout=40)
            elapsed = time.perf_counter() - started
            arrivals.stop()
        finally:
            web.terminate()
            web.wait(10)
    figures = {
        "backend": args.backend, "orders": args.size, "clients": args.clients, "seconds": round(elapsed, 1),
        "answered": len(answers), "errors": errors[0], "throughput_per_s": round(len(answers) / elapsed, 1),
        "ack_p50_ms": round(pct(acks, .5), 1), "ack_p99_ms": round(pct(acks, .99), 1),
        "answer_p50_ms": round(pct(answers, .5), 1), "answer_p99_ms": round(pct(answers, .99), 1),
        "rss_first_mb": round(memory[0], 1) if memory else None, "rss_peak_mb": round(max(memory), 1) if memory else None,
        "rss_last_mb": round(memory[-1], 1) if memory else None,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
