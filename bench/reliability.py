"""Regenerate docs/RELIABILITY.md: run the reliability suite and the load benchmark, write the figures.

    KPIBOT_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test python bench/reliability.py [--clients 50] [--seconds 60]

The suite (tests/reliability) writes what it tried and what held as JSON into a temporary directory
(``KPIBOT_RELIABILITY_REPORT_DIR``); bench/load.py adds throughput, latencies and the web process's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out", default=str(ROOT / "docs" / "RELIABILITY.md"))
    args = ap.parse_args()
    report = Path(tempfile.mkdtemp(prefix="kpibot-reliability-"))
    env = {**os.environ, "KPIBOT_RELIABILITY_REPORT_DIR": str(report)}
    started = time.perf_counter()
    suite = subprocess.run([sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    suite_seconds = time.perf_counter() - started
    summary = (suite.stdout.strip().splitlines() or ["(no output)"])[-1]
    load_file = report / "load.json"
    backend = "postgresql" if (os.environ.get("KPIBOT_BENCH_POSTGRES_URL") or os.environ.get("KPIBOT_TEST_POSTGRES_URL")) else "sqlite"
    subprocess.run([sys.executable, "bench/load.py", "--clients", str(args.clients), "--seconds", str(args.seconds),
                    "--backend", backend, "--json", str(load_file)], cwd=ROOT, env=env, check=False)
    parts = {p.stem: json.loads(p.read_text()) for p in sorted(report.glob("*.json"))}
    lines = [
        "# Reliability",
        "",
        "What was tried against KPI Bot, and what held. Regenerate with",
        "`KPIBOT_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test python bench/reliability.py`",
        "(the suite in `tests/reliability`, which is also part of the README's test command, then `bench/load.py`).",
        "",
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} vCPUs, "
        f"Python {platform.python_version()}; databases: SQLite and PostgreSQL.",
        "",
        f"Suite: `{summary}` in {suite_seconds:.0f} s (exit code {suite.returncode}).",
        "",
        "| area | what was tried | figures |",
        "|---|---|---|",
    ]
    titles = {"inputs": "Generated `/kpi` inputs (signed HTTP)", "security": "Security probes",
              "files": "Bad files through the importer", "faults": "Faults", "state_restart": "State database restart"}
    for name, data in parts.items():
        if name == "load":
            continue
        figures = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in data.items() if not isinstance(v, list | dict))
        nested = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items() if isinstance(v, list | dict)]
        lines.append(f"| {titles.get(name, name)} | {name} | {figures}{'; ' if nested and figures else ''}{'; '.join(nested)} |")
    load = parts.get("load")
    lines += ["", "## Load (`bench/load.py`)", ""]
    if load:
        lines += [
            f"{load['clients']} closed-loop clients for {load['seconds']} s of signed `/kpi` questions against `kpibot serve` "
            f"(gunicorn, 2 gthread workers) over {load['orders']:,} orders on {load['backend']}, Slack played by the local stand-in, "
            "all on the same 2 vCPUs.",
            "",
            "| answered | errors | throughput /s | ack p50 ms | ack p99 ms | answer p50 ms | answer p99 ms | web RSS first / peak / last MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
            f"| {load['answered']} | {load['errors']} | {load['throughput_per_s']} | {load['ack_p50_ms']} | {load['ack_p99_ms']} | "
            f"{load['answer_p50_ms']} | {load['answer_p99_ms']} | {load['rss_first_mb']} / {load['rss_peak_mb']} / {load['rss_last_mb']} |",
        ]
    else:
        lines.append("(the load run did not complete)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return suite.returncode


if __name__ == "__main__":
    sys.exit(main())
