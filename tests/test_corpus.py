"""The question reader against the corpus of questions people type in Slack (tests/corpus/questions.yaml).

Each entry is read by ``kpi.metrics.reader.read_question`` on a fixed clock (Sunday 2026-11-29 10:00,
Europe/Paris) and the shop's dimension values, and judged:

  right    the reading is the expected one (KPIs in any order, filters as {dimension: sorted values}),
           or a question that must be refused is refused for the expected part
  wrong    a reading that differs from the expected one, or a reading of a question that must be refused
  refused  a question with a reading that was refused, or one refused for another part than expected
  crashed  anything but a QueryError escaped the reader

The corpus passes when at least 98% of its entries are right and none is wrong or crashed; every entry
that is not right is listed. The module is skipped while kpi.metrics.reader (or kpi.metrics.values)
does not exist. bench/understanding.py uses the same judging for its numbers.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "questions.yaml"
CATALOG = ROOT / "config" / "metrics.yaml"
TZ = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=TZ)
SHOP_VALUES = {
    "channel": ["organic_search", "paid_search", "social", "email", "direct", "referral"],
    "device": ["desktop", "mobile", "tablet"],
    "country": ["US", "GB", "DE", "FR", "CA", "AU"],
}
REQUIRED_RIGHT = 0.98
PARTS = ("kpi", "filter", "period")
FIELDS = ("kpi", "period", "compare", "filters", "breakdown", "top", "rank")


def missing_modules() -> list[str]:
    """The reader's modules that do not exist yet."""
    return [m for m in ("kpi.metrics.reader", "kpi.metrics.values") if importlib.util.find_spec(m) is None]


if missing_modules():
    pytest.skip(f"{' and '.join(missing_modules())} not written yet", allow_module_level=True)

from bot.markup import from_slack  # noqa: E402
from kpi.errors import PeriodError, QueryError, UnknownMetric  # noqa: E402
from kpi.metrics.catalog import load_catalog  # noqa: E402
from kpi.metrics.periods import parse_period  # noqa: E402
from kpi.metrics.reader import ReadingError, read_question  # noqa: E402
from kpi.metrics.values import DimensionValues  # noqa: E402

# -- the corpus ------------------------------------------------------------------------------------


def load_entries(path: Path = CORPUS) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    assert isinstance(entries, list), f"{path}: a list of entries expected"
    return entries


def problems(entries: list[dict], catalog) -> list[str]:
    """What is wrong with the entries themselves (not with the reader): unknown keys, invalid periods..."""
    out: list[str] = []
    seen: set[str] = set()
    for i, e in enumerate(entries):
        where = f"entry {i + 1} ({e.get('q')!r})" if isinstance(e, dict) else f"entry {i + 1}"
        if not isinstance(e, dict) or not isinstance(e.get("q"), str) or not e["q"].strip():
            out.append(f"{where}: no question text")
            continue
        text = " ".join(e["q"].lower().split())
        if text in seen:
            out.append(f"{where}: duplicate question")
        seen.add(text)
        if e.get("lang") not in ("en", "fr", "de"):
            out.append(f"{where}: lang must be en, fr or de")
        if "refuse" in e:
            if e["refuse"] not in PARTS:
                out.append(f"{where}: refuse must be one of {', '.join(PARTS)}")
            if set(e) & set(FIELDS):
                out.append(f"{where}: a refused question has no reading fields")
            continue
        if missing := [f for f in FIELDS if f not in e]:
            out.append(f"{where}: missing {', '.join(missing)}")
            continue
        kpis = e["kpi"]
        if not isinstance(kpis, list) or not kpis or any(k not in catalog.metrics for k in kpis):
            out.append(f"{where}: kpi must list catalog keys, not {kpis!r}")
            kpis = []
        try:
            if parse_period(str(e["period"]), now=NOW, tz=TZ).key != str(e["period"]):
                out.append(f"{where}: period {e['period']!r} is not a canonical period key")
        except QueryError as exc:
            out.append(f"{where}: period {e['period']!r}: {exc}")
        if e["compare"] not in ("previous", "year", "none"):
            out.append(f"{where}: compare must be previous, year or none")
        filters = e["filters"] or {}
        for dim, values in filters.items():
            if dim not in SHOP_VALUES or not values or any(v not in SHOP_VALUES[dim] for v in values):
                out.append(f"{where}: filter {dim}={values!r} is not a shop value")
        if e["breakdown"] not in (None, *SHOP_VALUES):
            out.append(f"{where}: breakdown must be channel, device, country or null")
        if e["top"] is not None and (not isinstance(e["top"], int) or e["top"] < 1):
            out.append(f"{where}: top must be a positive number or null")
        if e["rank"] not in (None, "best", "worst"):
            out.append(f"{where}: rank must be best, worst or null")
        for key in kpis:
            dims = catalog.dimensions_of(catalog.metrics[key])
            for dim in [*filters, *([e["breakdown"]] if e["breakdown"] else [])]:
                if dim in SHOP_VALUES and dim not in dims:
                    out.append(f"{where}: {key} cannot be filtered or broken down by {dim}")
    return out


# -- judging ---------------------------------------------------------------------------------------


def expected(entry: dict) -> dict | str:
    """The reading an entry expects, in the form ``observed`` gives; or the part a refusal names."""
    if "refuse" in entry:
        return entry["refuse"]
    return {
        "kpi": sorted(entry["kpi"]),
        "period": str(entry["period"]),
        "compare": None if entry["compare"] == "none" else entry["compare"],
        "filters": {dim: sorted(values) for dim, values in (entry["filters"] or {}).items()},
        "breakdown": entry["breakdown"],
        "top": entry["top"],
        "rank": entry["rank"],
    }


def observed(reading) -> dict:
    """A Reading in comparable form: KPIs in any order, filters as {dimension: sorted values}."""
    filters: dict[str, set[str]] = {}
    for dim, values in reading.filters:
        filters.setdefault(dim, set()).update(values)
    return {
        "kpi": sorted(reading.metrics),
        "period": reading.period.key,
        "compare": reading.compare,
        "filters": {dim: sorted(values) for dim, values in filters.items()},
        "breakdown": reading.breakdown,
        "top": reading.top,
        "rank": reading.rank,
    }


def refusal_part(exc: QueryError) -> str | None:
    if isinstance(exc, ReadingError):
        return getattr(exc, "part", None)
    if isinstance(exc, UnknownMetric):
        return "kpi"
    if isinstance(exc, PeriodError):
        return "period"
    return None


@dataclass(frozen=True)
class Outcome:
    entry: dict
    verdict: str  # right | wrong | refused | crashed
    got: object  # the reading (observed form), or a text saying how it was refused or crashed

    @property
    def want(self) -> dict | str:
        return expected(self.entry)

    def describe(self) -> str:
        want = self.want
        want = f"refused ({want})" if isinstance(want, str) else _short(want)
        got = self.got if isinstance(self.got, str) else _short(self.got)
        return f"[{self.entry['lang']}] {self.entry['q']!r}\n      expected: {want}\n      got:      {got}"


def _short(reading: dict) -> str:
    """A reading without its default fields, for messages."""
    parts = [f"kpi={','.join(reading['kpi'])}", f"period={reading['period']}",
             f"compare={reading['compare'] or 'none'}"]
    parts += [f"{dim}={','.join(v)}" for dim, v in reading["filters"].items()]
    parts += [f"{k}={reading[k]}" for k in ("breakdown", "top", "rank") if reading[k] is not None]
    return " ".join(parts)


def make_reader():
    """read_question bound to the corpus's catalog, clock and shop values."""
    catalog = load_catalog(CATALOG)
    values = DimensionValues.fixed(SHOP_VALUES)

    def read(text: str):
        # the corpus is text as Slack sends it: the app reads Slack's markup and escaping once, at the entry
        return read_question(from_slack(text), catalog, now=NOW, tz=TZ, values=values)

    return read


def judge(entry: dict, read) -> Outcome:
    want = expected(entry)
    try:
        reading = read(entry["q"])
    except QueryError as exc:
        part = refusal_part(exc)
        got = f"refused ({part or type(exc).__name__}): {exc}"
        return Outcome(entry, "right" if isinstance(want, str) and part == want else "refused", got)
    except Exception as exc:  # noqa: BLE001 - a crash is reported with the question, not raised
        return Outcome(entry, "crashed", f"crashed: {type(exc).__name__}: {exc}")
    try:
        got = observed(reading)
    except Exception as exc:  # noqa: BLE001
        return Outcome(entry, "crashed", f"crashed: not a Reading ({type(exc).__name__}: {exc}): {reading!r}")
    return Outcome(entry, "right" if got == want else "wrong", got)


def judge_all(entries: list[dict], read=None) -> list[Outcome]:
    read = read or make_reader()
    return [judge(e, read) for e in entries]


# -- tests -----------------------------------------------------------------------------------------


def test_the_corpus_is_well_formed():
    entries = load_entries()
    assert problems(entries, load_catalog(CATALOG)) == []
    langs = Counter(e["lang"] for e in entries)
    refusals = Counter(e["refuse"] for e in entries if "refuse" in e)
    assert len(entries) >= 420
    assert 0.40 <= langs["en"] / len(entries) <= 0.50, langs
    assert 0.25 <= langs["fr"] / len(entries) <= 0.35, langs
    assert 0.20 <= langs["de"] / len(entries) <= 0.30, langs
    assert 0.08 <= sum(refusals.values()) / len(entries) <= 0.12, refusals
    assert set(refusals) == set(PARTS), refusals


def test_the_reader_reads_the_corpus():
    outcomes = judge_all(load_entries())
    counts = Counter(o.verdict for o in outcomes)
    misses = [o for o in outcomes if o.verdict != "right"]
    share = counts["right"] / len(outcomes)
    ok = share >= REQUIRED_RIGHT and not counts["wrong"] and not counts["crashed"]
    if not ok:
        lines = [f"{counts['right']}/{len(outcomes)} right ({share:.1%}, at least {REQUIRED_RIGHT:.0%} needed), "
                 f"{counts['wrong']} wrong (0 allowed), {counts['refused']} refused, {counts['crashed']} crashed"]
        for verdict in ("wrong", "crashed", "refused"):
            chosen = [o for o in misses if o.verdict == verdict]
            if chosen:
                lines.append(f"\n{verdict.upper()} ({len(chosen)}):")
                lines += [f"  - {o.describe()}" for o in chosen]
        pytest.fail("\n".join(lines), pytrace=False)
