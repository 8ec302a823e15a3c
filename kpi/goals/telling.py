"""How a goal is told: the same words wherever a goal is shown (the digest, the goal card and list, the
Home tab, the command line), so that they cannot drift apart.

A goal is told with four pieces, all from one ``Progress``:

status      its word ("on track", "waiting for data"...), which follows from the three figures below
where       where it is: "$7.83M so far: 93% of the target $8.43M" (additive KPIs: the running total as a
            share of the target), "2.4% now: 80% of the way from 2.0% to 2.5%" (rates and averages)
expected    where it should be by now, on the same scale: "expected by now: $7.17M (85%)"
projection  where it is heading: "projected at the deadline: $8.10M (95% range $7.90M to $8.30M)"

Plain strings through ``kpi.i18n``; the Slack layer adds its markup around them.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpi.i18n import N_, babel_locale, format_percent, tr
from kpi.metrics.catalog import Metric
from kpi.metrics.formatting import format_value, percent_pattern

STATUS_WORDS: dict[str, str] = {
    "achieved": N_("achieved"),
    "on_track": N_("on track"),
    "at_risk": N_("at risk"),
    "off_track": N_("off track"),
    "missed": N_("missed"),
    "no_data": N_("waiting for data"),
}


@dataclass(frozen=True)
class GoalStory:
    status: str  # one of STATUS_WORDS' keys
    status_word: str  # "on track"
    share: str  # where it is as a share ("93%"), '' without one
    where: str  # "$7.83M so far: 93% of the target $8.43M"
    expected: str  # "expected by now: $7.17M (85%)", '' when there is no path to compare with
    projection: str  # "projected at the deadline: ...", '' without a projection

    def figures(self) -> list[str]:
        """The figures that are there, in their order: where, expected, projection."""
        return [x for x in (self.where, self.expected, self.projection) if x]


def status_of(progress) -> str:
    status = getattr(progress, "status", None) if progress is not None else None
    return status if status in STATUS_WORDS else "no_data"


def status_word(progress, lang: str) -> str:
    """'on track', 'waiting for data'... of a ``Progress`` (None: waiting for data)."""
    return tr(lang, STATUS_WORDS[status_of(progress)])


def share_text(share: float | None, lang: str) -> str:
    """A share in whole percent, rounded half up ('93%', '150%'); never '-0%': what rounds to zero is '0%'.
    '' for None."""
    if share is None or share != share:  # None or NaN
        return ""
    whole = int(abs(share) * 100 + 0.5) * (1 if share >= 0 else -1)
    loc = babel_locale(lang)
    return format_percent(whole / 100 if whole else 0.0, percent_pattern(loc, ""), locale=loc)


def tell(metric: Metric, progress, *, lang: str, currency: str, compact: bool = True) -> GoalStory:
    """The goal's four pieces in ``lang``; ``compact`` money and counts ('$7.8M') for one-line views."""

    def val(x: float | None) -> str:
        return format_value(x, metric.format, currency=currency, lang=lang, compact=compact)

    status = status_of(progress)
    word = tr(lang, STATUS_WORDS[status])
    if progress is None:
        return GoalStory(status, word, "", tr(lang, "no data yet"), "", "")
    current, target, baseline = progress.current, progress.target, progress.baseline
    share = share_text(progress.progress, lang)
    additive = getattr(progress, "additive", metric.additive)
    frozen = progress.frozen

    if current is None or (progress.days_elapsed == 0 and not frozen):
        where = (tr(lang, "no data yet, target {target}", target=val(target)) if target is not None
                 else tr(lang, "no data yet"))
    elif target is None:
        where = tr(lang, "{current} now, no target yet (no baseline to set it from)", current=val(current))
    elif not share:
        where = tr(lang, "{current} now, target {target}", current=val(current), target=val(target))
    elif additive:
        msg = N_("{current} in total: {share} of the target {target}") if frozen else \
            N_("{current} so far: {share} of the target {target}")
        where = tr(lang, msg, current=val(current), share=share, target=val(target))
    else:
        msg = N_("{current} at the deadline: {share} of the way from {baseline} to {target}") if frozen else \
            N_("{current} now: {share} of the way from {baseline} to {target}")
        where = tr(lang, msg, current=val(current), share=share, baseline=val(baseline), target=val(target))

    expected = ""
    if not frozen and status != "no_data" and progress.expected_value is not None and share:
        expected = tr(lang, "expected by now: {value} ({share})", value=val(progress.expected_value),
                      share=share_text(progress.expected, lang))

    projection = ""
    if not frozen and status != "no_data" and progress.projection is not None:
        low, high = progress.projection_low, progress.projection_high
        if low is not None and high is not None and val(low) != val(high):
            projection = tr(lang, "projected at the deadline: {value} (95% range {low} to {high})",
                            value=val(progress.projection), low=val(low), high=val(high))
        else:
            projection = tr(lang, "projected at the deadline: {value}", value=val(progress.projection))
    return GoalStory(status, word, share, where, expected, projection)


__all__ = ["STATUS_WORDS", "GoalStory", "share_text", "status_of", "status_word", "tell"]
