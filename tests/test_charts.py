"""PNG charts (bot.charts): valid PNGs of a fixed size, gaps and all-empty series, locale-aware axes,
no pyplot global state, and safe from several threads at once. Charts that do not lie (issue 11): an
incomplete bucket is a hollow "so far" mark off the line, the comparison period a faint line named in the
legend, counts and money from zero, no cents on ticks from 1,000, one file per language."""

from __future__ import annotations

import math
import re
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot import charts
from bot.charts import chart_filename, series_chart, series_figure
from kpi.i18n import tr
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
    return charts.tick_labels(list(ax.get_yticks()), result.metric.format, kw.get("currency", "USD"),
                              kw.get("lang", "en"))


def spaces(text: str) -> str:
    """No-break spaces (narrow or not) as plain ones, to compare with what a reader sees."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def test_percent_axis_in_both_locales():
    result = make_result("conversion_rate", CONVERSION)
    en = _axis_labels(result)
    assert all(label.endswith("%") for label in en) and "3.0%" in en
    fr = [spaces(label) for label in _axis_labels(result, lang="fr")]
    assert "3,0 %" in fr
    assert spaces(charts._y_label(1234.5, "currency", "EUR", "fr")) == "1 234,50 €"  # a threshold: exact
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


# -- charts that do not lie (issue 11) ----------------------------------------------------------------------

REVENUE = [12_000.0 + 300.0 * (i % 7) for i in range(23)] + [4_100.0]  # Nov 1-24, the 24th at 15:30


def honest_result(key: str = "revenue", values: list[float | None] = REVENUE, *, last_complete: bool = False,
                  compared: list[float | None] | None = None) -> KpiResult:
    """This month so far (the last bucket cut short unless ``last_complete``), against last month's same
    days when ``compared`` is given: what the engine will hand the chart."""
    result = make_result(key, values, "this month")
    series = [replace(p, complete=last_complete or i < len(result.series) - 1) for i, p in enumerate(result.series)]
    if compared is None:
        return replace(result, series=series)
    previous = parse_period("last month", now=NOW, tz=TZ)
    comparison = [SeriesPoint(s, e, Value(v)) for (s, e), v in zip(previous.buckets("day"), compared, strict=False)]
    return replace(result, series=series, comparison_period=previous, comparison_series=comparison)


def lines(fig: Figure) -> dict[str, object]:
    """The figure's lines by gid (see ``series_figure``)."""
    return {line.get_gid(): line for line in fig.axes[0].lines if line.get_gid()}


def shown_y_labels(fig: Figure) -> list[str]:
    """The y tick labels as they are drawn (after the layout), '$' unescaped."""
    fig.canvas.draw()
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    return [t.get_text().replace("\\$", "$") for t, v in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)
            if bottom <= v <= top]


def test_an_incomplete_bucket_is_a_hollow_so_far_mark_not_a_point_of_the_line():
    fig = series_figure(honest_result())
    drawn = lines(fig)
    line = drawn["series"]
    ys = list(line.get_ydata())
    assert len(ys) == 24 and math.isnan(ys[-1])  # today so far is not on the line ...
    assert ys[:-1] == REVENUE[:-1]  # ... every complete day is
    mark = drawn["so_far"]
    assert list(mark.get_xdata()) == [23] and list(mark.get_ydata()) == [4_100.0]  # ... but a mark of its own
    assert mark.get_markerfacecolor() == "white" and mark.get_linestyle() == "None"  # hollow, not joined
    segment = drawn["so_far_segment"]
    assert list(segment.get_xdata()) == [22, 23] and segment.get_linestyle() == "--"  # a dashed way into it
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["so far"]


def test_a_day_that_is_over_is_a_point_and_a_gap_stays_a_gap():
    complete = lines(series_figure(honest_result(last_complete=True)))
    assert list(complete["series"].get_ydata())[-1] == 4_100.0 and "so_far" not in complete
    gap = lines(series_figure(honest_result(values=[*REVENUE[:-1], None])))  # nothing yet today
    assert "so_far" not in gap and "so_far_segment" not in gap and math.isnan(list(gap["series"].get_ydata())[-1])
    today = lines(series_figure(replace(make_result("orders", [3.0], "today"),
                                        series=[replace(make_result("orders", [3.0], "today").series[0],
                                                        complete=False)])))
    assert list(today["so_far"].get_ydata()) == [3.0] and "so_far_segment" not in today  # alone: no segment


def test_the_comparison_period_is_a_faint_line_named_in_the_legend():
    compared = [11_000.0 + 250.0 * (i % 5) for i in range(24)]
    result = honest_result(compared=compared)
    fig = series_figure(result)
    drawn = lines(fig)
    faint, current = drawn["comparison"], drawn["series"]
    assert list(faint.get_xdata()) == list(current.get_xdata()) == list(range(24))  # the same x positions
    assert list(faint.get_ydata())[:-1] == compared[:-1]
    assert faint.get_alpha() < 1 and (current.get_alpha() or 1) == 1  # faint, behind the current period
    assert faint.get_color() == charts.COMPARISON and faint.get_zorder() < current.get_zorder()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [result.period.describe("en"), result.comparison_period.describe("en")]
    assert series_figure(honest_result()).axes[0].get_legend() is None  # one period: nothing to tell apart


def test_counts_and_money_start_at_zero_percentages_say_when_they_zoom():
    revenue = series_figure(honest_result(compared=[11_000.0] * 24))
    assert revenue.axes[0].get_ylim()[0] == 0  # 12,000..13,800 is not drawn as a cliff
    orders = series_figure(make_result("orders", [480.0 + i % 4 for i in range(30)]))
    assert orders.axes[0].get_ylim()[0] == 0 and orders.axes[0].get_ylabel() == ""
    refunds = series_figure(make_result("revenue", [500.0, -200.0, 300.0], "last 3 days"))
    assert refunds.axes[0].get_ylim()[0] < -200  # a negative value is shown, not cut off
    zoomed = series_figure(make_result("conversion_rate", CONVERSION)).axes[0]
    assert zoomed.get_ylim()[0] > 0 and zoomed.get_ylabel() == "axis does not start at 0"
    low = series_figure(make_result("conversion_rate", [0.0, 0.01, 0.03] * 10)).axes[0]
    assert low.get_ylim()[0] == 0 and low.get_ylabel() == ""  # never a negative rate on the scale


def test_tick_labels_have_no_cents_from_a_thousand():
    labels = shown_y_labels(series_figure(honest_result()))
    assert "$0" in labels and "$12,000" in labels
    assert not any(re.search(r"[.,]\d\d$", label) for label in labels), labels
    assert charts.tick_labels([0, 500_000, 1_000_000, 1_500_000], "currency") == ["$0", "$500K", "$1M", "$1.5M"]
    assert charts.tick_labels([1_000_000, 1_250_000, 1_500_000], "currency") == ["$1M", "$1.25M", "$1.5M"]  # exact
    assert [spaces(x) for x in charts.tick_labels([0, 250_000], "currency", "EUR", "de")] == ["0 €", "250.000 €"]
    assert [spaces(x) for x in charts.tick_labels([0, 250_000], "currency", "EUR", "fr")] == ["0 €", "250 k €"]
    assert ([spaces(x) for x in charts.tick_labels([0, 500_000, 1_000_000, 1_500_000], "currency", "EUR", "de")]
            == ["0 €", "500.000 €", "1 Mio. €", "1,5 Mio. €"])  # no '500000 €' between German millions
    assert charts.tick_labels([0, 12.5, 25], "currency") == ["$0.00", "$12.50", "$25.00"]  # cents below 1,000
    assert charts.tick_labels([0, 150_000], "count") == ["0", "150K"]
    assert charts.tick_labels([0.03, 0.0325, 0.035], "percent") == ["3.00%", "3.25%", "3.50%"]  # not 3.3%


def test_a_french_chart_speaks_french():
    result = honest_result(compared=[11_000.0] * 24)
    fig = series_figure(result, lang="fr", currency="EUR")
    ax = fig.axes[0]
    y = [spaces(label) for label in shown_y_labels(fig)]
    assert "12 000 €" in y and "0 €" in y
    x = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert x and all(label.endswith("nov.") for label in x), x
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [result.period.describe("fr"), result.comparison_period.describe("fr")]
    assert legend[1] != result.comparison_period.describe("en")
    assert [t.get_text() for t in ax.texts] == [tr("fr", charts.SO_FAR)]
    assert ax.get_title(loc="left").startswith("Chiffre d'affaires")


def test_an_honest_chart_is_still_the_same_bytes_every_time():
    result = honest_result(compared=[11_000.0 + i for i in range(24)])
    png = series_chart(result, lang="de", currency="EUR", threshold=10_000.0)
    assert png_size(png) == (800, 400)
    assert png == series_chart(result, lang="de", currency="EUR", threshold=10_000.0)
    assert png != series_chart(replace(result, comparison_series=[]), lang="de", currency="EUR", threshold=10_000.0)


def test_drawing_draws_the_readers_language(monkeypatch):
    from bot.drawing import draw_chart

    monkeypatch.setenv("KPIBOT_CHART_PROCESSES", "0")
    result = honest_result(compared=[11_000.0] * 24)
    fr = draw_chart(result, lang="fr", currency="EUR")
    assert fr == series_chart(result, lang="fr", currency="EUR")
    assert fr != draw_chart(result, lang="en", currency="EUR")
