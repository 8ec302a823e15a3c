"""What a goal is (``GoalSpec``), its errors, and the arithmetic of its span and target."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from kpi.errors import QueryError, UnknownMetric
from kpi.metrics.catalog import Catalog, Metric
from kpi.metrics.values import DimensionValues, checked_filters

TARGET_KINDS = ("absolute", "relative_pct", "relative_pt")
FIELDS = ("metric", "target", "deadline", "baseline", "owner", "channel", "watch")

# supporting KPIs watched with a goal on a KPI, unless the goal names its own (DESIGN.md section 6)
_SALES_WATCH = ("conversion_rate", "cart_abandonment_rate")
DEFAULT_WATCH: dict[str, tuple[str, ...]] = {
    "revenue": _SALES_WATCH, "orders": _SALES_WATCH, "aov": _SALES_WATCH,
    "visitors": ("sessions",), "sessions": ("sessions",),
    "conversion_rate": ("cart_abandonment_rate", "sessions"),
}


class GoalError(QueryError):
    """A goal that cannot be set as written. ``field`` names the part of the goal at fault (one of
    ``FIELDS``), so that a form can show the message beside it."""

    field: str = "metric"

    def __init__(self, message: str, field: str | None = None, /, **values: object):
        super().__init__(message, **values)
        if field is not None:
            self.field = field


class UnknownGoalMetric(UnknownMetric, GoalError):
    """An unknown KPI in a goal (as the goal's KPI, or among those to watch): both an ``UnknownMetric``
    (with suggestions) and a ``GoalError`` (with its field)."""

    def __init__(self, name: str, suggestions: list[str], field: str = "metric"):
        super().__init__(name, suggestions)
        self.field = field


@dataclass(frozen=True)
class GoalSpec:
    """What a person asked for. The storage layer persists exactly these fields."""

    metric: str  # catalog key
    target_kind: str  # "absolute" | "relative_pct" | "relative_pt"
    target_value: float  # absolute: in the KPI's unit (0.035 for 3.5%); relative_pct: 0.10 for +10%; relative_pt: 0.005
    start: date  # local date, inclusive
    deadline: date  # local date, inclusive: the span is [start, deadline + 1 day)
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    baseline: float | None = None  # given by the user (additive KPIs: a whole-span total), else computed
    owner: str | None = None  # Slack user id, or the text after a bare "@"
    channel: str | None = None  # Slack channel id, or a channel name without "#"
    watch: tuple[str, ...] = ()  # supporting KPIs (catalog keys)
    text: str = ""  # the original text

    @property
    def end(self) -> date:
        """The exclusive end of the span: the day after the deadline."""
        return self.deadline + timedelta(days=1)

    @property
    def days_total(self) -> int:
        return (self.end - self.start).days


def target_value(spec: GoalSpec, baseline: float | None) -> float | None:
    """The target in the KPI's unit: absolute as given; relative_pct baseline × (1 + v); relative_pt
    baseline + v. None when it depends on a baseline that is unknown, or (percent) zero."""
    if spec.target_kind == "absolute":
        return spec.target_value
    if baseline is None:
        return None
    if spec.target_kind == "relative_pct":
        return None if baseline == 0 else baseline + abs(baseline) * spec.target_value
    return baseline + spec.target_value


def days_elapsed(spec: GoalSpec, today: date) -> int:
    """Complete local days of the span before ``today`` (today itself is not over)."""
    return min(max((today - spec.start).days, 0), spec.days_total)


def year_earlier(day: date) -> date:
    """The same date a year earlier (29 February -> 28 February)."""
    return day.replace(year=day.year - 1, day=min(day.day, calendar.monthrange(day.year - 1, day.month)[1]))


def last_year_span(spec: GoalSpec) -> tuple[date, date]:
    """[start, end) of the same calendar span a year earlier."""
    return year_earlier(spec.start), year_earlier(spec.deadline) + timedelta(days=1)


def add_months(day: date, months: int) -> date:
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def default_watch(metric: str, catalog: Catalog) -> tuple[str, ...]:
    return tuple(k for k in DEFAULT_WATCH.get(metric, ()) if k in catalog.metrics)


def check_filters(catalog: Catalog, metric: Metric, filters, values: DimensionValues | None = None):
    """The goal's filters, checked (a dimension the KPI has, a value the data holds) and in the data's own
    values ('france' -> 'FR')."""
    return checked_filters(catalog, metric, filters, values, error=GoalError, dimension_field="metric")


