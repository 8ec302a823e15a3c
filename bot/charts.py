"""PNG charts of a KPI's series, for Slack (uploaded, then shown in an image block).

Thread-safe by construction: each chart is its own ``matplotlib.figure.Figure`` drawn by a
``FigureCanvasAgg``; pyplot (global state, GUI backends) is never imported and no rcParams are changed.
Fixed size (800×400 px), no PNG timestamp or software tag: the same result gives the same bytes.

What the chart must not do is mislead (issue 11):

- a bucket cut short by the data's "as of" (today so far, this week so far) is not a point of the line:
  it is a hollow marker reached by a dashed segment, marked "so far"; a bucket without data is a gap;
- the comparison period, when there is one, is a faint grey line on the same x positions, and the legend
  names both periods;
- counts and money are drawn from zero; a percentage may zoom in, and then says that its axis does not
  start at zero;
- tick labels say what they mean at the precision they need: no cents on $12,000, compact forms
  ($1.2M, 1,2 Mio. €) where the language has them, as many decimals as the ticks need to be exact;
- the words (dates, periods, "so far") are in the reader's language, so is the file name.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

from babel import Locale
from babel.dates import format_date
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from kpi.i18n import (
    N_,
    babel_locale,
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
    format_percent,
    lang_of,
    tr,
)
from kpi.metrics.engine import KpiResult, SeriesPoint
from kpi.metrics.formatting import format_value

WIDTH_IN, HEIGHT_IN, DPI = 8, 4, 100  # 800 x 400 px
LINE = "#1f6fb2"
COMPARISON = "#8c8c8c"
COMPARISON_ALPHA = 0.55
THRESHOLD = "#c0392b"
GREY = "#666666"
FROM_ZERO = ("count", "currency")  # additive amounts: a bar's height is read from zero, so is a line's
# TRANSLATORS: Babel date patterns (https://babel.pocoo.org/en/latest/dates.html#date-fields)
_DATE_FORMATS = {"day": N_("d MMM"), "week": N_("d MMM"), "month": N_("MMM yyyy")}
# TRANSLATORS: next to the last point of a chart whose period is not over (today so far, this week so far)
SO_FAR = N_("so far")
# TRANSLATORS: the y axis label of a chart of percentages zoomed in on its values
ZOOMED = N_("axis does not start at 0")


def series_chart(result: KpiResult, *, lang: str = "en", currency: str = "USD",
                 threshold: float | None = None) -> bytes:
    """The result's chart (see ``series_figure``) as PNG bytes."""
    return png_bytes(series_figure(result, lang=lang, currency=currency, threshold=threshold))


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def series_figure(result: KpiResult, *, lang: str = "en", currency: str = "USD",
                  threshold: float | None = None) -> Figure:
    """The result's series as a line (gaps where there is no data, a hollow "so far" point for a bucket
    that is not over), the comparison period's series as a faint line behind it, y axis in the KPI's format
    and the reader's locale (from zero for counts and money), an optional dashed threshold line.

    The lines carry gids, for whoever inspects the figure: ``series`` (complete buckets only),
    ``so_far`` (the incomplete buckets' markers), ``so_far_segment`` (the dashed segments into them),
    ``comparison`` and ``comparison_so_far``."""
    lang = lang_of(lang)
    m = result.metric
    points = result.series
    n = len(points)
    compared = result.comparison_series[:n] if result.comparison_period is not None else []

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.11, right=0.97, top=0.9, bottom=0.1)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(_literal(f"{m.name(lang)} · {result.period.describe(lang)}"), loc="left", fontsize=12)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.3)

    drawn = [v for p in (*points, *compared) if (v := _value(p)) is not None]
    has_data = bool(drawn)
    if has_data:
        small = n > 31
        if any(_value(p) is not None for p in compared):
            assert result.comparison_period is not None
            _draw_line(ax, compared, gid="comparison", label=result.comparison_period.describe(lang),
                       color=COMPARISON, alpha=COMPARISON_ALPHA, width=1.5, small=small, zorder=2)
        _draw_line(ax, points, gid="series", label=result.period.describe(lang), color=LINE, alpha=1.0,
                   width=2, small=small, zorder=3, so_far=tr(lang, SO_FAR))
        if any(line.get_gid() == "comparison" for line in ax.lines):  # two periods: which is which
            lines = {line.get_gid(): line for line in ax.lines}
            ax.legend(handles=[lines["series"], lines["comparison"]], loc="best", fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, tr(lang, "no data"), transform=ax.transAxes, ha="center", va="center", color=GREY, fontsize=14)
    if threshold is not None and math.isfinite(threshold):
        drawn.append(threshold)
        ax.axhline(threshold, color=THRESHOLD, linestyle="--", linewidth=1.2)
        ax.annotate(_literal(_y_label(threshold, m.format, currency, lang)), xy=(1, threshold),
                    xycoords=("axes fraction", "data"), xytext=(-4, 4), textcoords="offset points",
                    ha="right", va="bottom", color=THRESHOLD, fontsize=9)

    if drawn:
        _y_range(ax, drawn, m.format, lang)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=m.format == "count"))
        ax.yaxis.set_major_formatter(TickLabels(m.format, currency, lang))
    else:
        ax.set_yticks([])
    if points:
        pattern = tr(lang, _DATE_FORMATS.get(result.granularity or "day", _DATE_FORMATS["day"]))
        labels = [format_date(p.start.date(), pattern, locale=babel_locale(lang)) for p in points]
        ax.set_xlim(-0.5, n - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _pos: labels[int(round(v))] if 0 <= round(v) < len(labels) and v == round(v) else ""))
    else:
        ax.set_xticks([])
    ax.tick_params(labelsize=9, colors=GREY)
    return fig


def _value(point: SeriesPoint) -> float | None:
    v = point.value.value
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _draw_line(ax, points: Sequence[SeriesPoint], *, gid: str, label: str, color: str, alpha: float, width: float,
               small: bool, zorder: float, so_far: str | None = None) -> None:
    """One series: its complete buckets as a line with markers (None is a gap); each incomplete bucket
    with a value as a hollow marker, reached by a dashed segment from its neighbours; ``so_far`` written
    next to it when given."""
    prefix = "" if gid == "series" else f"{gid}_"
    values = [_value(p) for p in points]
    whole = [math.nan if v is None or not p.complete else v for p, v in zip(points, values, strict=True)]
    ax.plot(range(len(whole)), whole, color=color, alpha=alpha, linewidth=width, marker="o",
            markersize=3 if small else 4, label=_literal(label), gid=gid, zorder=zorder)
    partial = [i for i, (p, v) in enumerate(zip(points, values, strict=True)) if not p.complete and v is not None]
    for i in partial:
        for j in (i - 1, i + 1):
            if 0 <= j < len(values) and values[j] is not None:
                ax.plot([j, i], [values[j], values[i]], color=color, alpha=alpha, linewidth=width * 0.75,
                        linestyle=(0, (3, 2)), gid=f"{prefix}so_far_segment",
                        zorder=zorder)
    if partial:
        ax.plot(partial, [values[i] for i in partial], linestyle="none", marker="o", markersize=7,
                markerfacecolor="white", markeredgecolor=color, markeredgewidth=1.5, alpha=alpha,
                gid=f"{prefix}so_far", zorder=zorder + 0.5)
    if so_far:
        last = len(values) - 1
        for i in partial:  # on the side away from the segment that comes in from the left
            before = values[i - 1] if i > 0 else None
            below = before is not None and before > values[i]
            ax.annotate(_literal(so_far), xy=(i, values[i]), xytext=(6 if i == last else 0, -9 if below else 8),
                        textcoords="offset points", ha="right" if i == last else "center",
                        va="top" if below else "bottom", color=color, fontsize=8, fontstyle="italic",
                        gid="so_far_label", zorder=zorder + 1)


def _y_range(ax, values: list[float], fmt: str, lang: str) -> None:
    """Counts and money from zero (or from below it when a value is negative); a percentage of values that
    are never negative not below zero, and a note when its axis is zoomed in (does not start at zero)."""
    lo, hi = min(values), max(values)
    if fmt in FROM_ZERO:
        if hi <= 0 and lo >= 0:  # nothing but zeros: a flat line at the bottom of a visible scale
            ax.set_ylim(0, 1)
        elif lo >= 0:
            ax.set_ylim(bottom=0)
        elif hi <= 0:
            ax.set_ylim(top=0)
        return
    bottom, _top = ax.get_ylim()
    if lo >= 0 > bottom:
        ax.set_ylim(bottom=0)
    elif bottom > 0:  # said beside the axis itself, where the eye reads the scale
        ax.set_ylabel(tr(lang, ZOOMED), fontsize=8, color=GREY, fontstyle="italic")


class TickLabels(Formatter):
    """The y tick labels, all formatted together (how many decimals, whether compact, depends on the
    ticks shown, not on one value)."""

    def __init__(self, fmt: str, currency: str, lang: str):
        self.fmt, self.currency, self.lang = fmt, currency, lang
        self._labels: dict[float, str] = {}

    def set_locs(self, locs):
        super().set_locs(locs)
        values = [float(v) for v in locs]
        self._labels = dict(zip(values, tick_labels(values, self.fmt, self.currency, self.lang), strict=True))

    def __call__(self, x, pos=None):
        label = self._labels.get(float(x))
        return _literal(label if label is not None else tick_labels([float(x)], self.fmt, self.currency, self.lang)[0])


def tick_labels(values: Sequence[float], fmt: str, currency: str = "USD", lang: str = "en") -> list[str]:
    """Labels for the ticks ``values`` of a KPI's axis, in the reader's locale: money without cents from
    1,000 (or when every tick is whole), compact from 100,000 where the language abbreviates the number
    (not German thousands: '250.000 €'), percentages with one decimal or as many as the ticks need."""
    if not values:
        return []
    loc = babel_locale(lang)
    big = max(abs(v) for v in values)
    if fmt in FROM_ZERO and big >= 100_000 and _abbreviates(big, loc):
        return _compact(values, fmt, currency, loc)
    if fmt == "currency":
        if big >= 1_000 or all(_whole(v) for v in values):
            return [_whole_currency(v, currency, loc) for v in values]
        return [format_currency(v, currency, locale=loc) for v in values]
    if fmt == "count":
        return [format_decimal(round(v), locale=loc) for v in values]
    if fmt == "percent":
        places = next((d for d in (1, 2, 3) if all(_whole(v * 100 * 10**d) for v in values)), 3)
        pattern = Locale.parse(loc).percent_formats[None].pattern.replace("#,##0", "#,##0." + "0" * places)
        return [format_percent(v, pattern, locale=loc) for v in values]
    return [format_value(v, fmt, currency=currency, lang=lang) for v in values]


def _whole(x: float) -> bool:
    return abs(x - round(x)) < 1e-6 * max(1.0, abs(x))


def _abbreviates(value: float, loc: str) -> bool:
    """Whether the locale has a compact form for numbers this large ('250K', '250 k'; German has none
    below a million)."""
    return any(ch.isalpha() for ch in format_compact_decimal(value, locale=loc))


def _whole_currency(value: float, currency: str, loc: str) -> str:
    """An amount without its cents, as the locale writes money: '$12,000', '12 000 €', '12.000 €'."""
    pattern = Locale.parse(loc).currency_formats["standard"].pattern.replace("0.00", "0")
    return format_currency(value, currency, format=pattern, locale=loc, currency_digits=False)


def _compact(values: Sequence[float], fmt: str, currency: str, loc: str) -> list[str]:
    """Compact labels with the fewest decimals that keep every tick exact ($1M, $1.25M, $1.5M); a tick the
    language has no short form for is written in full ('500.000 €' beside '1 Mio. €')."""
    def labels(places: int) -> list[str]:
        out = []
        for v in values:
            if not _abbreviates(abs(v), loc):
                out.append(_whole_currency(v, currency, loc) if fmt == "currency" else format_decimal(round(v), locale=loc))
            elif fmt == "currency":
                out.append(format_compact_currency(v, currency, locale=loc, fraction_digits=places))
            else:
                out.append(format_compact_decimal(v, locale=loc, fraction_digits=places))
        return out

    exact = labels(3)
    return next((shown for places in (0, 1, 2) if (shown := labels(places)) == exact), exact)


def chart_filename(result: KpiResult, lang: str) -> str:
    """'conversion_rate-last_7_days-fr.png': letters, digits, '_', '-' and one '.png'. The language is part
    of the name: the chart's words are, and a French chart is not an English one."""
    period = result.period.key.replace("..", "_to_")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{result.metric.key}-{period}").strip("_-")
    return f"{name[:120] or 'chart'}-{lang_of(lang)}.png"


def _y_label(value: float, fmt: str, currency: str, lang: str) -> str:
    """A single value on the axis (the threshold): exactly as the KPI shows it."""
    return format_value(value, fmt, currency=currency, lang=lang)


def _literal(text: str) -> str:
    """Dollar signs shown as such, never as mathtext delimiters ('$1 to $2' is not a formula)."""
    return text.replace("$", r"\$")
