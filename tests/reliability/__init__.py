"""The reliability suite. With ``KPIBOT_RELIABILITY_REPORT_DIR`` set, each module writes what it tried and
what held to ``<dir>/<name>.json`` (``write_report``); ``bench/reliability.py`` renders docs/RELIABILITY.md."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_report(name: str, report: dict) -> None:
    """``report`` as ``<KPIBOT_RELIABILITY_REPORT_DIR>/<name>.json``; nothing when the variable is unset."""
    target = os.environ.get("KPIBOT_RELIABILITY_REPORT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        Path(target, f"{name}.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
