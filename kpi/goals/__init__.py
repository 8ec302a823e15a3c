"""SMART goals (DESIGN.md section 6): parsing, progress, status, projection and the SMART check.

Time is always a parameter (``today``: the shop's local date), never read here. Days are local dates,
so a goal across a daylight-saving change counts a 23- or 25-hour day as one day.

Definitions (every number below can be checked by hand; tests/test_goals.py pins them)

Span        [start, deadline + 1 day); ``days_total`` = deadline − start + 1.
Complete days  today's data is not in yet, so a goal reads the complete days [start, e) with
            e = min(max(today, start), deadline + 1). ``days_elapsed`` = e − start (complete days);
            ``days_left`` = deadline − today, the whole days after today (0 on the deadline day, which is
            in progress, like every "today"), clipped to [0, days_total]. On its first day a goal has
            nothing elapsed: expected 0, status no_data (waiting for data). Once today > deadline the goal is ``frozen``:
            its final value is the value at the deadline, its status achieved or missed, no range.

Additive KPIs (the catalog's ``additive``: revenue, orders, sessions, visitors, new customers, spend)
  baseline B       the KPI over the whole same span a year earlier [start − 1y, deadline − 1y + 1 day)
                   (29 February → 28 February), or the goal's own baseline, read as that whole-span total.
  target T         absolute: the value given, a total for the whole span; relative_pct: B × (1 + v);
                   relative_pt: B + v (refused at parse: points are for rates).
  current c        the running total over [start, e).
  expected x       seasonal: last year's share of B accumulated over [start − 1y, today − 1y), when last
                   year's span is fully in the data (the source has the KPI on or before start − 1y, and a
                   positive total); otherwise linear: days_elapsed ÷ days_total.
  baseline to date b = B × x: last year's running total to the same day (exactly so when seasonal).
  progress         where it is: c ÷ T, the running total as a share of the target (None unless T > 0).
                   Where it should be by now: x, the expected value T × x. Tracking last year scaled by
                   T/B day by day gives progress = x exactly; "+10% revenue this year" thus compares year
                   to date with last year's same days.
  expected value   the on-pace running total, T × x.
  achieved early   when c ≥ T (a running total only grows); a goal to lower an additive KPI (a ceiling)
                   is decided at the deadline only.

Rates and averages (everything else)
  baseline B       the KPI over [start − L, start), L = min(days_total, 365), or the goal's own. A KPI
                   that depends on its window's length (a measure conditioned on the window's bounds:
                   returning customer rate, "ordered before the window started", is higher over 28 days
                   than over a year) takes L = 28, the length of its current window, so that baseline
                   and current are measured alike.
  target T         absolute: the value given; relative_pct: B × (1 + v); relative_pt: B + v.
  current c        the KPI over [max(start, e − 28), e): the trailing 28 complete days, since the start for
                   a younger goal; when frozen, the 28 days ending with the deadline.
  expected x       linear (a rate does not accumulate: it has no seasonal share).
  progress         (c − B) ÷ (T − B); expected value B + (T − B) × x.

Both
  Undefined progress (None): no data, no target; rates: target = baseline, or no baseline. A relative_pct target of a zero
  baseline is undefined (GoalError at creation); relative_pt and absolute targets work from 0.
  Direction: up when T > B (down when T < B; the KPI's higher_is_better when either is unknown).
  Reached: c ≥ T going up, c ≤ T going down.
  Status, from the figures told with it (``telling``): frozen → achieved if reached, else missed
  (no_data if no value); nothing elapsed yet (first day, or not started), no value or no target →
  no_data ("waiting for data", never "on track"); reached → achieved (an additive ceiling only at the
  deadline). Then, with a projection: it reaches the target → on_track; it does not but its 95% range
  does (the range straddles the target) → at_risk; the whole range misses it → off_track. Without one
  (fewer than 7 points): no baseline or no progress → no_data; otherwise how far behind where it should
  be: additive c ÷ (T × x) − 1, rates progress − x (mirrored going down); ≥ −tolerance → on_track,
  ≥ −2 × tolerance → at_risk, otherwise off_track (tolerance 0.10).
  Projection: additive KPIs (``project_total``), the pace so far along the expected path continued:
  c ÷ x (with x the expected share at the end of the last complete day; linear: c × days_total ÷
  days_elapsed), so that it reaches T exactly when c ≥ T × x, where it should be by now; its 95% range
  from how each day's amount strays from that pace. Rates (``project``): least squares line through the
  trailing values (x = (days since the start + 1) ÷ days_total), read at x = 1, with its 95% prediction
  interval. None with fewer than 7 points. Frozen: the final value, no range.
  Pace (per 30 days): needed (T − c) ÷ (days_total − days_elapsed) × 30 (the days still to come, today
  included); actual: additive c ÷ days_elapsed × 30, rates (c − B) ÷ days_elapsed × 30. Relative pace:
  additive, the change over last year needed on the days still to come, (T − c) ÷ (B × (1 − x)) − 1, and
  achieved so far, c ÷ (B × x) − 1; rates, pace ÷ |B|.
  Achievable: see ``smart.history``: each of the last 24 complete months against the month ``lag``
  months earlier, lag = 12 for additive KPIs (year on year, relative change), the span in whole months
  (1 to 12) for rates (relative change for a relative_pct goal, otherwise the difference in the KPI's own
  unit: points for percentages, money for money, counts for counts). Only complete windows count: a pair
  whose earlier month starts before the KPI's data does (the engine's ``history_start``) is left out.
  Hits: changes at least as large as the goal's, in its direction. A goal beyond anything seen is
  accepted, with a warning.
Telling: ``telling.tell`` words a goal (status, where it is, where it should be by now, where it is
  heading) once for the digest, the goal card and list, the Home tab and the command line.
"""

from .measure import Baseline, baseline_of, goal_progress
from .parse import parse_goal
from .progress import (
    STATUSES,
    TRAILING_DAYS,
    Progress,
    compute_progress,
    expected_path,
    expected_share,
    linear_expected,
    project,
    project_total,
    seasonal_expected,
)
from .smart import SmartCheck, format_change, goal_change, smart_check
from .spec import (
    DEFAULT_WATCH,
    FIELDS,
    TARGET_KINDS,
    GoalError,
    GoalSpec,
    UnknownGoalMetric,
    days_elapsed,
    default_watch,
    last_year_span,
    target_value,
    year_earlier,
)

__all__ = [
    "DEFAULT_WATCH", "FIELDS", "STATUSES", "TARGET_KINDS", "TRAILING_DAYS", "Baseline", "GoalError", "GoalSpec",
    "Progress", "SmartCheck", "UnknownGoalMetric", "baseline_of", "compute_progress", "days_elapsed",
    "default_watch", "expected_path", "expected_share", "format_change", "goal_change", "goal_progress", "last_year_span",
    "linear_expected", "parse_goal", "project", "project_total", "seasonal_expected", "smart_check", "target_value",
    "year_earlier",
]
