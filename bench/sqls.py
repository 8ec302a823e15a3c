# ruff: noqa: S608 - the SQL is built from constants of this file only
"""The questions of bench/engine.py, and their SQL as written by hand and by an expert, per backend.

Parameters are ``:name`` (rewritten to each driver's style by bench/engine.py). Bounds are naive UTC
datetimes (the shop's time zone is UTC: a local day is a UTC day). ``HAND`` is the first version of this
benchmark (what one writes without thinking about the plan); ``EXPERT`` is what one writes knowing the
engine: one statement, and a daily series as one index range scan per day where the store is a row store
(a recursive CTE of day bounds on SQLite, ``generate_series`` + ``CROSS JOIN LATERAL`` on PostgreSQL), a
plain ``GROUP BY`` day on the columnar engines. None: the hand SQL is already the expert's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

LIVE = "status <> 'cancelled'"


@dataclass
class Question:
    key: str
    label: str
    request: object  # KpiRequest
    params: dict
    kind: str  # value | groups | series
    floor: Callable[[dict], object]

    def from_result(self, result) -> object:
        if self.kind == "value":
            return result.current.value
        if self.kind == "groups":
            return {row.key: row.value.value for row in result.breakdown}
        return [(p.start.astimezone(UTC).date(), p.value.value or 0.0) for p in result.series]

    def from_rows(self, rows) -> object:
        if isinstance(rows, str):  # chdb: CSV
            import csv
            import io

            rows = [tuple(r) for r in csv.reader(io.StringIO(rows))]
        if self.kind == "value":
            row = rows[0]
            return float(row[0]) / float(row[1]) if len(row) == 2 else float(row[0])
        if self.kind == "groups":
            return {str(k): float(v) for k, v in rows}
        out = []
        for d, v in rows:
            d = d if not isinstance(d, str) else datetime.fromisoformat(d[:19] if len(d) > 10 else d)
            out.append((d.date() if isinstance(d, datetime) else d, float(v or 0)))
        return sorted(out)

    def agree(self, answers: dict) -> str:
        """'yes' when every contender gives the same answer to the cent, else who differs and how."""
        if len(answers) < 2:
            return "–"
        ref_name, ref = next(iter(answers.items()))
        bad = []
        for name, a in answers.items():
            if not _same(self.kind, ref, a):
                bad.append(f"{name} != {ref_name}")
        return "yes" if not bad else "NO: " + ", ".join(bad)


def _same(kind: str, a, b) -> bool:
    if kind == "value":
        return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1, abs(a)) + 0.005 * (abs(a) > 1)
    if kind == "groups":
        return set(a) == set(b) and all(abs(a[k] - b[k]) < 0.005 for k in a)
    da = {d: v for d, v in a if v}
    db = {d: v for d, v in b if v}
    return set(da) == set(db) and all(abs(da[d] - db[d]) < 0.005 for d in da)


def _utc(d: datetime) -> datetime:
    return d.astimezone(UTC).replace(tzinfo=None)


def questions(now: datetime, tz) -> list[Question]:
    from kpi.metrics.engine import KpiRequest
    from kpi.metrics.periods import parse_period

    def period(text: str):
        p = parse_period(text, now=now, tz=tz)
        return p, {"s": _utc(p.start), "e": _utc(p.end)}

    p7, w7 = period("last 7 days")
    w7 = {**w7, "ds": p7.start.date(), "de": p7.end.date()}
    ytd, wy = period("ytd")
    p90, w90 = period("last 90 days")
    p365, w365 = period("last 365 days")
    w365 = {**w365, "ch": "email"}
    yday, wyd = period("yesterday")
    return [
        Question("conversion", "conversion last 7 days",
                 KpiRequest("conversion_rate", p7, compare=None, series=False), w7, "value", _floor_conversion(w7)),
        Question("ytd_channel", "revenue YTD by channel",
                 KpiRequest("revenue", ytd, compare=None, breakdown="channel", series=False, top=100), wy, "groups",
                 _floor_groups(wy)),
        Question("series90", "revenue 90-day daily series",
                 KpiRequest("revenue", p90, compare=None, granularity="day"), w90, "series", _floor_series(w90, None)),
        Question("series365_email", "revenue 365-day daily series, channel=email",
                 KpiRequest("revenue", p365, compare=None, granularity="day", filters=(("channel", ("email",)),)),
                 w365, "series", _floor_series(w365, "email")),
        Question("tiny", "orders yesterday (tiny)", KpiRequest("orders", yday, compare=None, series=False), wyd,
                 "value", _floor_count(wyd)),
    ]


# -- the numpy floor: columns in RAM sorted by time ------------------------------------------------------------
def _sec(d: datetime) -> int:
    return int(d.replace(tzinfo=UTC).timestamp())


def _floor_conversion(w):
    def run(c):
        lo, hi = np.searchsorted(c["placed_at"], [_sec(w["s"]), _sec(w["e"])])
        orders = int(c["live"][lo:hi].sum())
        d0, d1 = (np.datetime64(w["ds"], "D").astype(np.int64), np.datetime64(w["de"], "D").astype(np.int64))
        a, b = np.searchsorted(c["traffic_day"], [d0, d1])
        return orders / float(c["traffic_sessions"][a:b].sum())
    return run


def _floor_count(w):
    def run(c):
        lo, hi = np.searchsorted(c["placed_at"], [_sec(w["s"]), _sec(w["e"])])
        return float(c["live"][lo:hi].sum())
    return run


def _floor_groups(w):
    def run(c):
        lo, hi = np.searchsorted(c["placed_at"], [_sec(w["s"]), _sec(w["e"])])
        sums = np.bincount(c["channel"][lo:hi], weights=c["live_subtotal"][lo:hi], minlength=len(c["channel_names"]))
        return {str(n): round(float(s), 2) for n, s in zip(c["channel_names"], sums, strict=True) if s}
    return run


def _floor_series(w, channel):
    def run(c):
        t, v = (c["placed_at"], c["live_subtotal"]) if channel is None else c["by_channel"][channel]
        start, end = _sec(w["s"]), _sec(w["e"])
        bounds = np.arange(start, end + 1, 86400)
        idx = np.searchsorted(t, bounds)
        cs = np.concatenate(([0.0], np.cumsum(v[idx[0]:idx[-1]])))
        sums = cs[idx[1:] - idx[0]] - cs[idx[:-1] - idx[0]]
        first = w["s"].date()
        return [(first + timedelta(days=i), round(float(s), 2)) for i, s in enumerate(sums)]
    return run


# -- SQL -------------------------------------------------------------------------------------------------------
def _day(backend: str) -> str:
    return {"sqlite": "date(placed_at)", "postgresql": "CAST(placed_at AS DATE)", "duckdb": "CAST(placed_at AS DATE)",
            "chdb": "toDate(placed_at)"}[backend]


def _ne(backend: str) -> str:
    return LIVE


CONV_HAND = ("SELECT (SELECT count(*) FROM orders WHERE placed_at >= :s AND placed_at < :e AND status <> 'cancelled'), "
             "(SELECT sum(sessions) FROM traffic WHERE day >= :ds AND day < :de)")

HAND = {
    "conversion": lambda b: CONV_HAND,
    "ytd_channel": lambda b: ("SELECT channel, sum(subtotal) FROM orders WHERE placed_at >= :s AND placed_at < :e "
                              "AND status <> 'cancelled' GROUP BY channel"),
    "series90": lambda b: (f"SELECT {_day(b)} AS d, sum(subtotal) FROM orders WHERE placed_at >= :s AND placed_at < :e "
                           f"AND status <> 'cancelled' GROUP BY {_day(b)} ORDER BY 1"),
    "series365_email": lambda b: (f"SELECT {_day(b)} AS d, sum(subtotal) FROM orders WHERE placed_at >= :s "
                                  f"AND placed_at < :e AND status <> 'cancelled' AND channel = :ch "
                                  f"GROUP BY {_day(b)} ORDER BY 1"),
    "tiny": lambda b: "SELECT count(*) FROM orders WHERE placed_at >= :s AND placed_at < :e AND status <> 'cancelled'",
}


def _per_day(backend: str, extra: str) -> str | None:
    if backend == "sqlite":
        return ("WITH RECURSIVE days(d) AS (SELECT datetime(:s) UNION ALL SELECT datetime(d, '+1 day') FROM days "
                "WHERE datetime(d, '+1 day') < datetime(:e)) "
                "SELECT date(d), (SELECT sum(subtotal) FROM orders WHERE placed_at >= d "
                f"AND placed_at < datetime(d, '+1 day') AND status <> 'cancelled'{extra}) FROM days")
    if backend == "postgresql":
        return ("SELECT CAST(g.d AS DATE), s.v FROM generate_series(CAST(:s AS timestamp), "
                "CAST(:e AS timestamp) - interval '1 day', interval '1 day') AS g(d) "
                "CROSS JOIN LATERAL (SELECT sum(subtotal) AS v FROM orders WHERE placed_at >= g.d "
                f"AND placed_at < g.d + interval '1 day' AND status <> 'cancelled'{extra}) AS s")
    return None  # columnar: GROUP BY day (the hand SQL) is the expert's


EXPERT = {
    "conversion": lambda b: None,
    "ytd_channel": lambda b: None,
    "series90": lambda b: _per_day(b, ""),
    # lower(channel): what the orders index on (lower(channel), placed_at, ...) serves (kpi.data.schema)
    "series365_email": lambda b: _per_day(b, " AND lower(channel) = :ch"),
    "tiny": lambda b: None,
}
