"""Is a change real? Pure statistics on numbers the engine already has (scipy does the distributions).

* **Rates that are proportions** (conversion, return rate, open rate, cart abandonment: a percent KPI whose
  numerator counts a subset of its denominator): a two-sided two-proportion z-test on the counts of the two
  periods. A +0.3 pt conversion change on 2,000 sessions is noise (p ≈ 0.7); on 200,000 it is not.
* **Everything else** (revenue, orders, AOV, CAC...): the change is compared with the same change in recent
  history: the period and its comparison shifted back by whole weeks for spans shorter than a week (the same
  weekdays) and by the span otherwise. The change is within normal variation when the value lies inside the
  band comparison + mean ± 1.96 standard deviations of those earlier changes (the band is carried along).

Nothing here reads data or formats text.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import norm

ALPHA = 0.05  # a change is significant when p < ALPHA (two-sided), or outside the 95% band
Z95 = float(norm.ppf(1 - ALPHA / 2))
MIN_HISTORY = 4  # fewer comparable history periods: no band, the change is not tested
HISTORY_PERIODS = 8  # how many earlier periods the band is taken from (fewer when history is shorter)
HISTORY_DAYS = 400  # at most this many days of history are read for it: spans over 100 days are not tested


@dataclass(frozen=True)
class Significance:
    method: str  # "two_proportions" | "history_band"
    significant: bool
    p_value: float | None = None  # two_proportions: the test's two-sided p-value
    low: float | None = None  # history_band: the range of normal variation around the comparison value
    high: float | None = None
    history: int = 0  # history_band: how many earlier periods the band is taken from

    def as_json(self) -> dict:
        out: dict = {"method": self.method, "significant": self.significant}
        if self.p_value is not None:
            out["p_value"] = round(self.p_value, 6)
        if self.low is not None and self.high is not None:
            out["band"] = [self.low, self.high]
            out["history_periods"] = self.history
        return out


def is_proportion(fmt: str, metric_type: str, numerator: float | None, denominator: float | None) -> bool:
    """A percent ratio of counts whose numerator is part of its denominator."""
    return (fmt == "percent" and metric_type == "ratio" and numerator is not None and denominator is not None
            and denominator > 0 and 0 <= numerator <= denominator)


def two_proportions(x1: float, n1: float, x2: float, n2: float) -> Significance | None:
    """Two-sided pooled two-proportion z-test of x1/n1 against x2/n2; None when it cannot be run (an empty
    period, or counts that are not a part of their whole)."""
    if n1 <= 0 or n2 <= 0 or not (0 <= x1 <= n1) or not (0 <= x2 <= n2):
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):  # all or nothing in both periods: they cannot differ
        return Significance("two_proportions", False, p_value=1.0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    p = float(2 * norm.sf(abs(z)))
    return Significance("two_proportions", p < ALPHA, p_value=p)


def history_band(current: float, comparison: float, moves: Sequence[float | None]) -> Significance | None:
    """The change current − comparison against the same change in recent history: ``moves`` are the
    differences between earlier periods and their own comparisons (the same weekdays, the same kind of span).
    Normal variation is comparison + mean(moves) ± 1.96 × their standard deviation: a Tuesday that beats its
    Monday by as much as Tuesdays usually do is no news. None with fewer than ``MIN_HISTORY`` moves."""
    known = [v for v in moves if v is not None and math.isfinite(v)]
    if len(known) < MIN_HISTORY:
        return None
    spread = statistics.stdev(known)
    if spread == 0:  # history never moved (a fixed budget): no band to judge a change by
        return None
    centre = comparison + statistics.fmean(known)
    half = Z95 * spread
    low, high = centre - half, centre + half
    return Significance("history_band", not (low <= current <= high), low=low, high=high, history=len(known))


def beyond_threshold(x: float, n: float, threshold: float, above: bool) -> Significance | None:
    """Is the proportion x/n significantly above (or below) ``threshold``? A one-sided exact binomial test,
    for alert rules that require significance; None when it cannot be run."""
    from scipy.stats import binomtest

    if n <= 0 or not (0 <= x <= n) or not (0 < threshold < 1):
        return None
    k, total = round(x), round(n)
    if total == 0:
        return None
    p = float(binomtest(k, total, threshold, alternative="greater" if above else "less").pvalue)
    return Significance("binomial", p < ALPHA, p_value=p)
