"""PNG charts (bot.charts): valid PNGs of a fixed size, gaps and all-empty series, locale-aware axes,
no pyplot global state, and safe from several threads at once."""

from __future__ import annotations

import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot import charts
from bot.charts import chart_filename, series_chart
from kpi.metrics.catalog import load_catalog
from kpi.metrics.engine import KpiResult, SeriesPoint, Value
from kpi.metrics.periods import parse_period

TZ = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=TZ)
ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(ROOT / "config")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_result(key: str, values: list[float | None], period: str = "last 30 days") -> KpiResult:
    p = parse_period(period, now=NOW, tz=TZ)
    points = [SeriesPoint(s, e, Value(v)) for (s, e), v in zip(p.buckets("day"), values, strict=False)]
    return KpiResult(metric=CATALOG.metrics[key], period=p, current=Value(values[-1] if values else None),
                     series=points, granularity="day", as_of=NOW)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


CONVERSION = [0.03 + 0.002 * (i % 5) if i % 9 else None for i in range(30)]


def test_a_png_of_fixed_size():
    png = series_chart(make_result("conversion_rate", CONVERSION), threshold=0.032)
    assert png.startswith(PNG_MAGIC)
    assert png_size(png) == (800, 400)
    assert 5_000 < len(png) < 200_000
    assert b"Matplotlib" not in png  # no software tag: the same result gives the same bytes
    assert png == series_chart(make_result("conversion_rate", CONVERSION), threshold=0.032)


@pytest.mark.parametrize("values", [[None] * 7, [], [None, None, 12.0, None]])
def test_empty_or_sparse_series_do_not_crash(values):
    png = series_chart(make_result("revenue", values, "last 7 days"), lang="fr", currency="EUR")
    assert png_size(png) == (800, 400)
    assert series_chart(make_result("revenue", values, "last 7 days"), threshold=100.0).startswith(PNG_MAGIC)


def _axis_labels(result: KpiResult, **kw) -> list[str]:
    """The y tick labels the chart would draw, through the chart's own formatter on a test figure."""
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0.02, 0.05])
    fmt = result.metric.format
    return [charts._y_label(v, fmt, kw.get("currency", "USD"), kw.get("lang", "en")) for v in ax.get_yticks()]


def test_percent_axis_in_both_locales():
    result = make_result("conversion_rate", CONVERSION)
    en = _axis_labels(result)
    assert all(label.endswith("%") for label in en) and "3.0%" in en
    fr = _axis_labels(result, lang="fr")
    assert "3,0 %" in fr
    assert charts._y_label(1234.5, "currency", "EUR", "fr").replace("\u202f", " ").replace("\xa0", " ") == "1 234,50 €"
    assert charts._y_label(250_000, "currency", "USD", "en") == "$250K"  # compact from 100,000
    assert charts._literal("$1,000 to $2,000") == r"\$1,000 to \$2,000"  # no mathtext between dollars


def test_revenue_chart_with_dollar_labels_and_threshold_renders():
    values = [1200.0, 1500.0, None, 900.0, 2000.0, 1800.0, 1750.0]
    png = series_chart(make_result("revenue", values, "last 7 days"), currency="USD", threshold=1000.0)
    assert png_size(png) == (800, 400)


def test_charts_from_four_threads_at_once():
    results = [make_result("conversion_rate", CONVERSION), make_result("revenue", [100.0 * i for i in range(30)]),
               make_result("orders", [float(i % 7) for i in range(30)]), make_result("return_rate", [None] * 30)]
    serial = [series_chart(r, lang="fr") for r in results]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda r: series_chart(r, lang="fr"), results * 2))
    assert parallel == serial * 2


def test_no_pyplot_and_no_global_state():
    code = (
        "import sys, matplotlib\n"
        # rcParams.copy(), not get_backend() nor rcParams['backend']: those resolve the backend via pyplot
        "before = dict.items(matplotlib.rcParams.copy())\n"
        "before = {k: v for k, v in before}\n"
        "from tests.test_charts import make_result, CONVERSION\n"
        "from bot.charts import series_chart\n"
        "series_chart(make_result('conversion_rate', CONVERSION), threshold=0.03)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
        "after = {k: v for k, v in dict.items(matplotlib.rcParams.copy())}\n"
        "assert after == before, 'global state changed'\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_chart_filename_is_safe_and_per_language():
    result = make_result("conversion_rate", [0.1], "last 7 days")
    assert chart_filename(result, "en") == "conversion_rate-last_7_days-en.png"
    assert chart_filename(result, "fr-FR") == "conversion_rate-last_7_days-fr.png"
    ranged = make_result("revenue", [1.0], "2026-10-01..2026-10-31")
    assert chart_filename(ranged, "de") == "revenue-2026-10-01_to_2026-10-31-de.png"


def test_an_answer_names_its_chart_in_its_language():
    """The file an answer uploads (and the demo saves by name) is not the same for an English and a French
    reader: a French chart never stands in for an English one, or the other way round."""
    from bot.answer import Answer  # the Slack layer, only here (the pyplot test imports this module)
    from bot.blocks import Message

    result = make_result("revenue", [1200.0, 1500.0], "last 7 days")
    names = {lang: Answer(Message(text=""), result, lang).chart_name for lang in ("en", "fr", "de")}
    assert names == {"en": "revenue-last_7_days-en.png", "fr": "revenue-last_7_days-fr.png",
                     "de": "revenue-last_7_days-de.png"}
    assert series_chart(result, lang="en") != series_chart(result, lang="fr")  # their contents differ too
