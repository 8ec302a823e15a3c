"""PNG charts of a KPI's series, for Slack (uploaded, then shown in an image block).

Thread-safe by construction: each chart is its own ``matplotlib.figure.Figure`` drawn by a
``FigureCanvasAgg``; pyplot (global state, GUI backends) is never imported and no rcParams are changed.
Fixed size (800×400 px), no PNG timestamp or software tag: the same result gives the same bytes.
"""

from __future__ import annotations

import io
import math
import re

from babel.dates import format_date
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from kpi.i18n import N_, babel_locale, lang_of, tr
from kpi.metrics.engine import KpiResult
from kpi.metrics.formatting import format_value

WIDTH_IN, HEIGHT_IN, DPI = 8, 4, 100  # 800 x 400 px
LINE = "#1f6fb2"
THRESHOLD = "#c0392b"
GREY = "#666666"
# TRANSLATORS: Babel date patterns (https://babel.pocoo.org/en/latest/dates.html#date-fields)
_DATE_FORMATS = {"day": N_("d MMM"), "week": N_("d MMM"), "month": N_("MMM yyyy")}


def series_chart(result: KpiResult, *, lang: str = "en", currency: str = "USD",
                 threshold: float | None = None) -> bytes:
    """The result's series as a line (gaps where there is no data), y axis in the KPI's format and the
    reader's locale, an optional dashed threshold line. PNG bytes."""
    lang = lang_of(lang)
    m = result.metric
    points = result.series
    ys = [math.nan if p.value.value is None else float(p.value.value) for p in points]

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.11, right=0.97, top=0.9, bottom=0.1)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(_literal(f"{m.name(lang)} · {result.period.describe(lang)}"), loc="left", fontsize=12)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.3)

    has_data = any(not math.isnan(y) for y in ys)
    if has_data:
        ax.plot(range(len(ys)), ys, color=LINE, linewidth=2, marker="o", markersize=3 if len(ys) > 31 else 4)
    else:
        ax.text(0.5, 0.5, tr(lang, "no data"), transform=ax.transAxes, ha="center", va="center", color=GREY, fontsize=14)
    if threshold is not None and math.isfinite(threshold):
        ax.axhline(threshold, color=THRESHOLD, linestyle="--", linewidth=1.2)
        ax.annotate(_literal(_y_label(threshold, m.format, currency, lang)), xy=(1, threshold),
                    xycoords=("axes fraction", "data"), xytext=(-4, 4), textcoords="offset points",
                    ha="right", va="bottom", color=THRESHOLD, fontsize=9)

    if has_data or threshold is not None:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=m.format == "count"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _literal(_y_label(v, m.format, currency, lang))))
    else:
        ax.set_yticks([])
    if points:
        pattern = tr(lang, _DATE_FORMATS.get(result.granularity or "day", _DATE_FORMATS["day"]))
        labels = [format_date(p.start.date(), pattern, locale=babel_locale(lang)) for p in points]
        ax.set_xlim(-0.5, len(points) - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _pos: labels[int(round(v))] if 0 <= round(v) < len(labels) and v == round(v) else ""))
    else:
        ax.set_xticks([])
    ax.tick_params(labelsize=9, colors=GREY)

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def chart_filename(result: KpiResult, lang: str) -> str:
    """'conversion_rate-last_7_days-fr.png': letters, digits, '_', '-' and one '.png'. The language is part
    of the name: the chart's words are, and a French chart is not an English one."""
    period = result.period.key.replace("..", "_to_")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{result.metric.key}-{period}").strip("_-")
    return f"{name[:120] or 'chart'}-{lang_of(lang)}.png"


def _y_label(value: float, fmt: str, currency: str, lang: str) -> str:
    return format_value(value, fmt, currency=currency, lang=lang, compact=True)


def _literal(text: str) -> str:
    """Dollar signs shown as such, never as mathtext delimiters ('$1 to $2' is not a formula)."""
    return text.replace("$", r"\$")
