"""Charts are drawn in a helper process, at low priority, never in the web process's own threads.

Drawing a PNG with matplotlib is ~50-150 ms of CPU under the GIL: in the process that acknowledges
Slack's requests it would delay every acknowledgement behind it. A one-worker process pool (spawned,
niced) draws them instead. ``KPIBOT_CHART_PROCESSES=0`` draws in the calling thread (scripts, debugging).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

from kpi.metrics.engine import KpiResult

log = logging.getLogger("kpibot.drawing")
_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _lower_priority() -> None:
    try:
        os.nice(10)
    except OSError:  # pragma: no cover - not permitted: draw at normal priority
        pass


def _draw(result: KpiResult, lang: str, currency: str, threshold: float | None = None) -> bytes:
    from .charts import series_chart

    return series_chart(result, lang=lang, currency=currency, threshold=threshold)


def _draw_digest(digest, lang: str) -> bytes | None:
    from .render.digest import digest_chart

    return digest_chart(digest, lang=lang)


def draw_digest_chart(digest, *, lang: str, timeout: float = 60) -> bytes | None:
    """The PNG of a digest's goal trajectories, or None (no goals, or not drawn in time)."""
    pool = _get_pool()
    try:
        if pool is None:
            return _draw_digest(digest, lang)
        return pool.submit(_draw_digest, digest, lang).result(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - logged; the digest goes out without its chart
        log.warning("digest chart not drawn: %s: %s", type(exc).__name__, exc)
        return None


def _get_pool() -> ProcessPoolExecutor | None:
    global _pool
    if int(os.environ.get("KPIBOT_CHART_PROCESSES", "1")) <= 0:
        return None
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=int(os.environ.get("KPIBOT_CHART_PROCESSES", "1")),
                                        mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority)
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
        return _pool


def draw_chart(result: KpiResult, *, lang: str, currency: str, threshold: float | None = None,
               timeout: float = 30) -> bytes | None:
    """The PNG of a result's series, or None when it could not be drawn in time (the answer keeps its
    text sparkline: a chart is never worth failing an answer)."""
    pool = _get_pool()
    try:
        if pool is None:
            return _draw(result, lang, currency, threshold)
        return pool.submit(_draw, result, lang, currency, threshold).result(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - logged; the answer goes on without its chart
        log.warning("chart not drawn: %s: %s", type(exc).__name__, exc)
        return None
