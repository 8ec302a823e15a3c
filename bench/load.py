"""Load and memory: the web process under signed ``/kpi`` requests, or the worker under digests, with the memory
of every process it starts (grandchildren included: the chart helper).

    python bench/load.py [--process web|worker] [--clients 20] [--seconds 60] [--idle 10]
                         [--backend sqlite|postgresql] [--size 1000000] [--digests 3] [--json FILE]
    python bench/load.py --report RUN.json [RUN.json ...]     (the memory table of bench/RESULTS.md)

web:    ``kpibot serve`` (gunicorn) in a subprocess with the local Slack stand-in as the Web API; ``--clients``
        closed-loop clients (team members asking one of a few questions, again and again) send commands
        signed as Slack signs them for ``--seconds``. Throughput, acknowledgement and answer latency p50/p99,
        errors (non-200, no answer within 30 s).
worker: ``kpibot worker`` with 50 goals and ``--digests`` digest schedules (each in its own channel) due at each
        minute of the run: every minute, that many 50-goal digests (with their charts) are composed at once.
Memory is sampled every second over the whole process tree (the process, its children and theirs: gunicorn's
master and workers, the chart helper each one forks), in three phases: idle after start-up (``--idle``
seconds), under load, and idle again after it. Two sums are given:
  RSS  each process's resident pages, added up. Pages a forked process shares with its parent (the imported
       code, copy-on-write) are counted once per process: this overstates the tree's memory.
  PSS  proportional set size (/proc/PID/smaps_rollup): a page shared by n processes counts 1/n in each, so
       the sum of PSS is the real pages the tree holds, which is what a container's memory limit counts.
The targets (issue 15: web tree < 350 MB, worker < 300 MB, idle and under load) are judged on the PSS sum.
Uses the demo shop that bench/engine.py builds.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from slack import SECRET, Arrivals, pct  # noqa: E402  (bench/slack.py)
from sources import build, pg_url, source_url  # noqa: E402  (bench/sources.py)

from bot.sandbox import SlackSide  # noqa: E402
from bot.standin import SlackStandIn  # noqa: E402
from kpi.state.tables import upgrade  # noqa: E402

QUESTIONS = ["conversion", "aov last month by channel", "revenue this month vs last year", "return rate",
             "orders last 30 days by device", "taux de conversion cette semaine"]
TEAM = "T0STANDIN"


# -- the process tree's memory ----------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    """Direct children of ``pid``, over all its threads (a process forked by a thread is that thread's child)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            out += [int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[tuple[int, int]]:
    """(pid, depth) of ``pid`` and all its descendants."""
    out, todo = [], [(pid, 0)]
    while todo:
        p, d = todo.pop()
        out.append((p, d))
        todo += [(c, d + 1) for c in children(p)]
    return out


def _kb(path: str, field: str) -> float | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def role(pid: int, depth: int, process: str) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        cmd = ""
    if depth == 0:
        return "gunicorn master" if process == "web" else "worker"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"  # started beside a spawned helper
    if process == "web" and depth == 1 and "multiprocessing" not in cmd:
        return "gunicorn worker"
    return "chart helper"


def snapshot(pid: int, process: str) -> dict:
    procs = []
    for p, d in tree(pid):
        rss, pss = _kb(f"/proc/{p}/status", "VmRSS"), _kb(f"/proc/{p}/smaps_rollup", "Pss")
        if rss is None or pss is None:
            continue
        procs.append({"pid": p, "role": role(p, d, process), "rss": rss, "pss": pss})
    return {"rss": sum(x["rss"] for x in procs), "pss": sum(x["pss"] for x in procs), "procs": procs}


class Sampler:
    def __init__(self, pid: int, process: str):
        self.pid, self.process = pid, process
        self.phases: dict[str, list[dict]] = {}
        self.phase = "start-up"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.phases.setdefault(self.phase, []).append(snapshot(self.pid, self.process))
            self._stop.wait(1)

    def stop(self):
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict:
        out = {}
        for phase, snaps in self.phases.items():
            peak = max(snaps, key=lambda s: s["pss"])
            by_role: dict[str, list] = {}
            for p in peak["procs"]:
                by_role.setdefault(p["role"], []).append(p)
            out[phase] = {
                "samples": len(snaps),
                "pss_peak_mb": round(peak["pss"], 1), "rss_peak_mb": round(max(s["rss"] for s in snaps), 1),
                "pss_last_mb": round(snaps[-1]["pss"], 1), "rss_last_mb": round(snaps[-1]["rss"], 1),
                "processes_peak": max(len(s["procs"]) for s in snaps), "processes_last": len(snaps[-1]["procs"]),
                "at_pss_peak": {r: {"n": len(ps), "rss_mb": round(sum(p["rss"] for p in ps), 1),
                                    "pss_mb": round(sum(p["pss"] for p in ps), 1)} for r, ps in by_role.items()},
            }
        return out


def _wait_http(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the web process did not answer /healthz")


# -- the web process under /kpi commands ------------------------------------------------------------------
def run_web(args, env: dict, standin) -> dict:
    port = 32000 + os.getpid() % 1000
    web = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                           env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    sampler = Sampler(web.pid, "web").start()
    figures: dict = {}
    try:
        _wait_http(base)
        side = SlackSide(base, SECRET)
        arrivals = Arrivals(standin)
        team = [f"U0LOAD{i:03d}" for i in range(args.clients)]
        for u in team:
            standin.add_user(u, name=u.lower())
        # one question first, alone: the engine's first-use lookups (KpiEngine.sql's rates table) run
        # concurrently in every thread otherwise, and nested pool checkouts can exhaust the pool (see RESULTS.md)
        arrivals.reset(team[0])
        t = time.perf_counter()
        side.command("revenue", response_url=standin.new_response_url(user_id=team[0]), user_id=team[0])
        figures["first_answer_ms"] = round((arrivals.wait(team[0], 60) - t) * 1000, 1)
        sampler.phase = "idle"
        time.sleep(args.idle)
        acks, answers, errors, done = [], [], [0], threading.Event()

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

        threads = [threading.Thread(target=client, args=(u, i), daemon=True) for i, u in enumerate(team)]
        sampler.phase = "load"
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        done.set()
        for t in threads:
            t.join(timeout=40)
        elapsed = time.perf_counter() - started
        arrivals.stop()
        sampler.phase = "idle after"
        time.sleep(args.idle)
        figures = {
            **figures, "answered": len(answers), "errors": errors[0], "throughput_per_s": round(len(answers) / elapsed, 1),
            "ack_p50_ms": round(pct(acks, .5), 1), "ack_p99_ms": round(pct(acks, .99), 1),
            "answer_p50_ms": round(pct(answers, .5), 1), "answer_p99_ms": round(pct(answers, .99), 1),
        }
    finally:
        sampler.stop()
        web.terminate()
        web.wait(10)
    return {**figures, "memory": sampler.summary()}


# -- the worker under digests -----------------------------------------------------------------------------
def prepare_worker(state: str, standin, digests: int, seconds: float, first: datetime) -> int:
    """50 goals and ``digests`` schedules due at each minute of the run; returns how many digests are due."""
    from digest import goals as bench_goals

    from kpi.db import make_engine
    from kpi.metrics.catalog import load_catalog
    from kpi.state.store import DAYS, Goals, Schedules

    engine = make_engine(state)
    store = Goals(engine, TEAM)
    today = datetime.now(UTC).date()
    for g in bench_goals(50, load_catalog(ROOT / "config"), today):
        store.add(g, now=datetime.now(UTC) - timedelta(days=1))
    schedules = Schedules(engine, TEAM)
    n = 0
    for minute in range(max(1, int(seconds // 60))):
        at = first + timedelta(minutes=minute)
        for i in range(digests):
            channel = f"C0LOAD{minute:02d}{i:02d}"
            standin.add_channel(channel, f"load-{minute}-{i}")
            schedules.add(channel, local_time=f"{at:%H:%M}", timezone="UTC", days=DAYS,
                          now=datetime.now(UTC) - timedelta(days=1))
            n += 1
    engine.dispose()
    return n


def run_worker(args, env: dict, standin, state: str) -> dict:
    # the first digests are due at the first whole minute after start-up and the idle phase
    soon = datetime.now(UTC) + timedelta(seconds=args.idle + 25)
    first = soon.replace(second=0, microsecond=0) + timedelta(minutes=1)
    due = prepare_worker(state, standin, args.digests, args.seconds, first)
    worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = Sampler(worker.pid, "worker").start()
    try:
        time.sleep(5)
        sampler.phase = "idle"
        time.sleep(max(0.0, (first - datetime.now(UTC)).total_seconds() - 1))
        sampler.phase = "load"
        started = time.perf_counter()
        deadline = started + args.seconds + 120
        while time.perf_counter() < deadline:
            sent = sum(1 for c in standin_channels(standin) if standin.messages_in(c))
            if sent >= due and time.perf_counter() - started >= args.seconds:
                break
            time.sleep(2)
        sampler.phase = "idle after"
        time.sleep(args.idle)
    finally:
        sampler.stop()
        worker.terminate()
        worker.wait(20)
    sent = sum(1 for c in standin_channels(standin) if standin.messages_in(c))
    return {"digests_due": due, "digests_sent": sent, "memory": sampler.summary()}


def standin_channels(standin) -> list[str]:
    return [c for c in standin._world.teams[TEAM].channels if c.startswith("C0LOAD")]  # noqa: SLF001 - bench


def report(files: list[str]) -> str:
    """The memory table of several runs' --json files (bench/RESULTS.md)."""
    lines = ["| run | phase | processes (peak, last) | tree PSS MB (peak) | tree PSS MB (last) | tree RSS MB (peak) "
             "| by process at the PSS peak: RSS / PSS MB | answers/s | ack p50 / p99 ms | answer p50 / p99 ms |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name in files:
        d = json.loads(Path(name).read_text())
        label = f"{d['process']}, {d['backend']} {d['orders']:,}" + (f", {d['clients']} clients" if d["process"] == "web"
                                                                     else f", {d.get('digests_due')} digests")
        if d.get("settings"):
            label += " (" + ", ".join(f"{k}={v}" for k, v in d["settings"].items()) + ")"
        for phase in ("idle", "load", "idle after"):
            m = d["memory"].get(phase)
            if not m:
                continue
            procs = "; ".join(f"{r} x{v['n']}: {v['rss_mb']:.0f} / {v['pss_mb']:.0f}" for r, v in m["at_pss_peak"].items())
            perf = (f"| {d['throughput_per_s']} | {d['ack_p50_ms']} / {d['ack_p99_ms']} | {d['answer_p50_ms']} / "
                    f"{d['answer_p99_ms']} |" if phase == "load" and d["process"] == "web" else "| | | |")
            lines.append(f"| {label} | {phase} | {m['processes_peak']}, {m.get('processes_last', '–')} "
                         f"| {m['pss_peak_mb']:.0f} | {m['pss_last_mb']:.0f} | {m['rss_peak_mb']:.0f} | {procs} {perf}")
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:2] == ["--report"]:
        print(report(sys.argv[2:]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--process", default="web", choices=["web", "worker"])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--digests", type=int, default=3, help="worker: digests due at each minute of the run")
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "duckdb"])
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
        env = {**os.environ, "DATABASE_URL": state, "KPI_SOURCE_URL": source_url(args.backend, args.size),
               "KPIBOT_TIMEZONE": "UTC", "SLACK_BOT_TOKEN": standin.bot_token, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": standin.base_url}
        if args.process == "web":
            result = run_web(args, env, standin)
        else:
            result = run_worker(args, env, standin, state)
    settings = {k: os.environ[k] for k in ("WEB_CONCURRENCY", "KPIBOT_WEB_THREADS", "KPIBOT_LISTENER_THREADS",
                                            "KPIBOT_CHART_PROCESSES", "KPIBOT_CHART_IDLE_SECONDS",
                                            "KPIBOT_DIGEST_CONCURRENCY") if k in os.environ}
    figures = {"process": args.process, "backend": args.backend, "orders": args.size, "clients": args.clients,
               "seconds": args.seconds, "settings": settings, **result}
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
