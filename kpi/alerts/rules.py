"""What an alert rule is (``RuleSpec``), and a rule written in English or French, to one.

    return rate above 8% over 7 days clear below 7% in #ops
    conversion below 1.5% over 3 days min 500 sessions mention @here
    revenue change below -20% over 1 day channel=email every 30m repeat 4h quiet 22:00-08:00 #growth
    taux de retour au-dessus de 8 % sur 7 jours          conversion en dessous de 1,5 % sur 3 jours min 500
    orders below 10 today                                 aov above 120 for 2 checks

Parts, in any order after the KPI: a condition and threshold (``above|over|more than|>``,
``below|under|less than|<``, ``au-dessus de``, ``en dessous de``, ``supérieur à``, ``inférieur à``;
``change above|below`` or ``drops|rises by more than`` for the relative change vs the previous window);
``clear below 7%`` (hysteresis); a window (``over 7 days``, ``sur 7 jours``, ``over 2 weeks``,
``today``: 0); ``min 500 [sessions]``; ``for 3 checks`` / ``3 fois de suite`` (consecutive);
``every 30m``; ``repeat 4h`` / ``no repeat``; ``quiet 22:00-08:00``; filters ``channel=email``; a
channel ``#ops`` / ``#C123``; mentions ``@alice``, ``@here``, ``@U123`` (the Slack layer turns Slack's markup into these);
``significant`` / ``only when significant`` (``significatif``, ``significative``, ``signifikant``): fire only on a
statistically significant breach (a rate beyond its threshold by an exact binomial test, or a change the engine
found significant). A plain threshold on a KPI that is not a rate cannot require it.

For a percentage KPI, ``8%``, ``8 pts`` and a bare ``8`` all mean 8% (a bare number below 1 is a
fraction: ``0.08``). A ``%`` on a KPI that is not a percentage is refused (say ``change above 10%``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpi.errors import QueryError, UnknownMetric
from kpi.i18n import N_, tr
from kpi.metrics.catalog import Catalog, Metric, normalise
from kpi.metrics.query import take_filters
from kpi.metrics.values import DimensionValues, checked_filters
from kpi.refs import USER_ID, take_channels

CONDITIONS = ("above", "below", "change_above", "change_below")
FIELDS = ("metric", "condition", "threshold", "clear_threshold", "window", "min_sample", "consecutive",
          "interval", "repeat", "channel", "mention", "quiet", "filters", "timezone", "significant")


class RuleError(QueryError):
    """A rule that cannot be set as written; ``field`` (one of ``FIELDS``) names the part at fault."""

    field: str = "metric"

    def __init__(self, message: str, field: str | None = None, /, **values: object):
        super().__init__(message, **values)
        if field is not None:
            self.field = field


class UnknownRuleMetric(UnknownMetric, RuleError):
    """An unknown KPI in a rule: both an ``UnknownMetric`` (with suggestions) and a ``RuleError``."""

    def __init__(self, name: str, suggestions: list[str]):
        super().__init__(name, suggestions)
        self.field = "metric"


@dataclass(frozen=True)
class RuleSpec:
    metric: str  # catalog key
    condition: str  # above | below | change_above | change_below (relative change vs the previous window)
    threshold: float  # KPI units (0.08 for 8%), or the relative change for change_* (0.2 for +20%)
    clear_threshold: float | None = None  # hysteresis: above fires at > threshold, resolves at < clear
    window_days: int = 7  # trailing complete days; 0: today so far
    min_sample: int = 0  # no alert on tiny samples (the KPI's sample)
    consecutive: int = 1  # breaching evaluations before firing
    # a breach counts only when statistically significant: for above/below, the rate's counts against the
    # threshold (exact binomial test); for change_*, the engine's test of the change. Resolving needs no test.
    significant: bool = False
    interval_minutes: int = 15  # evaluation interval
    repeat_minutes: int = 1440  # repeat while firing and not acknowledged; 0: never
    channel: str | None = None  # Slack channel id, or "#name"
    mention: str | None = None  # "<@U123>", "<!here>", "@alice" (several: space separated)
    quiet_start: str | None = None  # "22:00" local
    quiet_end: str | None = None  # "08:00"
    timezone: str = "UTC"
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    text: str = ""

    @property
    def clear(self) -> float:
        return self.threshold if self.clear_threshold is None else self.clear_threshold


# -- patterns (on normalised text: lower case, no accents) ------------------------------------------

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_AMOUNT = (r"(?P<sign>[+\-\u2212\u2013])?\s*(?:[$€£]\s*)?(?P<num>" + _NUM + r")\s*(?P<mult>k|m|mn|million|millions)?"
           r"\s*(?P<unit>%|pts?|points?|pp|€|\$|£|eur|euros?|usd)?(?![\w%])")
_ABOVE = (r"above|over|more than|greater than|higher than|exceeds?|>=?|goes above|rises above|"
          r"au[- ]dessus d[e']|superieure? a|plus d[e']|depasse|>")
_BELOW = (r"below|under|less than|lower than|fewer than|<=?|goes below|falls below|drops below|"
          r"en[- ]dessous d[e']|au[- ]dessous d[e']|inferieure? a|moins d[e']|sous")
_UNIT_MIN = {"m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "h": 60, "hr": 60, "hrs": 60, "hour": 60,
             "hours": 60, "heure": 60, "heures": 60, "d": 1440, "day": 1440, "days": 1440, "j": 1440,
             "jour": 1440, "jours": 1440}
_DURATION = r"(?P<n>\d+)\s*(?P<u>minutes?|mins?|m|hours?|hrs?|h|heures?|days?|d|jours?|j)\b"
_SAMPLE_WORDS = (r"sessions?|orders?|commandes?|visits?|visites?|visitors?|visiteurs?|samples?|echantillons?|"
                 r"emails?|carts?|paniers?|customers?|clients?")
_SIGNIFICANT = (r"\b(?:(?:only|seulement|uniquement|nur)\s+)?(?:(?:when|if|si|quand|wenn|falls)\s+)?"
                r"(?:(?:it\s+is|it's|is|est|c'est|ist)\s+)?(?:(?:statistically|statistiquement|statistisch)\s+)?"
                r"(?:significant(?:ly)?|significatif|significative|significativement|signifikant)\b")
_FILLERS = set("""alert alerte alerter when if si quand is est goes passe the le la les l de du des d in on at
dans sur a au aux me us notify notifier post poster to and et rule regle warn tell send envoyer mention
mentionner ping channel canal please svp stp rate""".split()) - {"rate"}


def parse_rule(text: str, catalog: Catalog, *, tz_name: str = "UTC", values: DimensionValues | None = None) -> RuleSpec:
    """Parse an alert rule; raises ``RuleError`` (with ``field``) or ``UnknownRuleMetric``. With ``values`` (the
    data's), a filter value the data does not hold is refused."""
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleError("Unknown time zone '{zone}'.", "timezone", zone=tz_name) from exc
    raw = " " + text + " "
    channel, raw = _take_channel(raw)
    mention, raw = _take_mentions(raw)
    s = " " + normalise(raw) + " "
    filters, s = _take_filters(s, catalog)
    fields: dict = {}

    if m := re.search(r"\b(?:quiet(?:\s+hours)?|heures? calmes?|silence|ne pas deranger|dnd)\s*:?\s*(?:from\s+|de\s+)?"
                      r"(?P<a>\d{1,2})(?:[:h](?P<am>\d{2})|h)?\s*(?:-|–|to|a|au|until|jusqu'a)\s*"
                      r"(?P<b>\d{1,2})(?:[:h](?P<bm>\d{2})|h)?\b", s):
        fields["quiet_start"] = _clock(m["a"], m["am"])
        fields["quiet_end"] = _clock(m["b"], m["bm"])
        s = _cut(s, m)
    if re.search(r"\b(?:quiet|heures? calmes?|ne pas deranger|dnd)\b", s):
        raise RuleError("Give quiet hours as a range, for example 'quiet 22:00-08:00'.", "quiet")

    if re.search(r"\b(?:no repeats?|never repeat|don't repeat|do not repeat|sans (?:rappel|repetition)|pas de rappel)\b", s):
        fields["repeat_minutes"] = 0
        s = re.sub(r"\b(?:no repeats?|never repeat|don't repeat|do not repeat|sans (?:rappel|repetition)|pas de rappel)\b",
                   " | ", s)
    if m := re.search(r"\b(?:repeat|repeats|remind(?:er)?|rappel(?:er)?|repeter)\s+(?:every\s+|each\s+|toutes les\s+|"
                      r"tous les\s+|chaque\s+)?" + _DURATION, s):
        fields["repeat_minutes"] = _minutes(m, "repeat")
        s = _cut(s, m)
    if m := re.search(r"\b(?:every|each|check every|evaluate every|toutes les|tous les|chaque)\s+" + _DURATION, s):
        fields["interval_minutes"] = _minutes(m, "interval")
        s = _cut(s, m)
    if m := re.search(r"\b(?:for|pendant|during|after|apres)\s+(?P<n>\d+)\s+(?:consecutive\s+)?"
                      r"(?:checks?|evaluations?|times|runs|verifications?|controles?|fois(?: de suite)?)\b"
                      r"|\b(?P<n2>\d+)\s+(?:consecutive checks?|checks? in a row|times in a row|fois de suite|"
                      r"evaluations? consecutives?|verifications? consecutives?)\b", s):
        fields["consecutive"] = int(m["n"] or m["n2"])
        if fields["consecutive"] < 1:
            raise RuleError("Consecutive checks: 1 or more.", "consecutive")
        s = _cut(s, m)
    if m := re.search(r"\b(?:min(?:imum)?(?:\s+sample)?|at least|au moins|echantillon(?:\s+min(?:imum)?)?)\s*(?:of|de|:|=)?\s*"
                      r"(?P<sign>-)?(?P<num>\d[\d ,.]*?\d|\d)\s*(?P<mult>k)?(?:\s+(?:" + _SAMPLE_WORDS + r"))?(?![\w%])", s):
        if m["sign"]:
            raise RuleError("The minimum sample cannot be negative.", "min_sample")
        try:
            n = float(m["num"].replace(" ", "").replace(",", "")) * (1000 if m["mult"] else 1)
        except ValueError as exc:
            raise RuleError("'{text}' is not a sample size.", "min_sample", text=m["num"]) from exc
        if n != int(n):
            raise RuleError("The minimum sample is a whole number.", "min_sample")
        fields["min_sample"] = int(n)
        s = _cut(s, m)
    elif re.search(r"\b(?:min(?:imum)?|at least|au moins)\b", s):
        raise RuleError("Give the minimum sample as a number, for example 'min 500 sessions'.", "min_sample")
    if m := re.search(_SIGNIFICANT, s):
        fields["significant"] = True
        s = _cut(s, m)
    if m := re.search(r"\b(?:today(?: so far)?|so far today|aujourd'hui|aujourd hui|du jour|jusqu'a maintenant)\b", s):
        fields["window_days"] = 0
        s = _cut(s, m)
    if m := re.search(r"\b(?:(?:over|in|during|for|on|within|sur|en|pendant|dans)\s+)?(?:the\s+|les\s+)?"
                      r"(?:last|past|trailing|rolling)?\s*(?P<n>-?\d+)\s+(?:(?:derniers|dernieres|glissants?)\s+)?"
                      r"(?P<u>days?|weeks?|jours?|semaines?)(?:\s+(?:glissants?|derniers|dernieres))?\b"
                      r"|\b(?P<n2>-?\d+)(?P<u2>d|j|w)\b", s):
        if "window_days" in fields:
            raise RuleError("Two windows: 'today' and a number of days; give one.", "window")
        n, unit = int(m["n"] or m["n2"]), m["u"] or m["u2"]
        days = n * (7 if unit[0] in "ws" else 1)
        if not 0 <= days <= 365:
            raise RuleError("The window is from 0 (today) to 365 days, not {days}.", "window", days=days)
        fields["window_days"] = days
        s = _cut(s, m)

    clear_raw = None
    if m := re.search(r"\b(?:clears?|resolves?|recovers?|resets?|ok|retour a la normale|resolue?|levee?|efface)\s+"
                      r"(?:(?:when|if|at|si|quand|a)\s+)?(?:(?:it\s+is|it's|is|goes|est|passe)\s+)?"
                      rf"(?:(?P<dir>{_ABOVE}|{_BELOW})\s*)?{_AMOUNT}", s):
        clear_raw = m
        s = _cut(s, m)
    elif re.search(r"\b(?:clears?|resolves?)\b", s):
        raise RuleError("Give the clear threshold as a value, for example 'clear below 7%'.", "clear_threshold")

    condition, amount = None, None
    change_word = (r"\b(?:change|variation|evolution|delta)\s+(?:(?:is|goes|est|passe)\s+)?(?P<cdir>" + _ABOVE + "|"
                   + _BELOW + r")\s*" + _AMOUNT)
    change_verb = (r"\b(?P<vdir>drops?|falls?|declines?|rises?|grows?|jumps?|increases?|decreases?|"
                   r"baisse|chute|recule|hausse|augmente|monte|progresse)\s+(?:by\s+|de\s+)?(?:more than\s+|over\s+|"
                   r"plus de\s+|plus d'|over\s+)?" + _AMOUNT)
    found = list(re.finditer(change_word, s)) + list(re.finditer(change_verb, s))
    if found:
        m = found[0]
        if m.re.pattern == change_word:
            condition = "change_above" if re.fullmatch(_ABOVE, m["cdir"]) else "change_below"
            amount = _parts(m)
        else:
            down = re.match(r"drop|fall|decline|decrease|baisse|chute|recule", m["vdir"]) is not None
            condition = "change_below" if down else "change_above"
            num, mult, unit, sign = _parts(m)
            amount = (num, mult, unit, "-" if down else "+")
        s = _cut(s, m)
    plain = list(re.finditer(rf"(?<![\w])(?P<dir>{_ABOVE}|{_BELOW})\s*{_AMOUNT}", s))
    if found and plain or len(found) > 1 or len(plain) > 1:
        raise RuleError("One condition per rule, for example 'above 8%'.", "condition")
    if plain:
        m = plain[0]
        condition = "above" if re.fullmatch(_ABOVE, m["dir"]) else "below"
        amount = _parts(m)
        s = _cut(s, m)
    if condition is None and re.search(rf"(?<![\w])(?:{_ABOVE}|{_BELOW}|change|drops?|rises?)(?![\w])", s):
        metric = _find_metric(s, catalog)
        raise RuleError("No threshold: say for example 'above {example}'.", "threshold", example=_example(metric))

    metric = _find_metric(s, catalog)
    if condition is None:
        raise RuleError("No condition: say for example '{name} above {example}' or '{name} change below -20%'.",
                        "condition", name=metric.name, example=_example(metric))
    assert amount is not None
    threshold = _value(amount, metric, condition, "threshold")
    clear = None
    if clear_raw is not None:
        clear = _value(_parts(clear_raw), metric, condition, "clear_threshold")
        up = condition.endswith("above")
        if clear_raw["dir"] and (re.fullmatch(_ABOVE, clear_raw["dir"]) is not None) == up:
            raise RuleError("The clear condition goes the other way: a rule 'above X' clears 'below Y'.",
                            "clear_threshold")
        if (up and clear > threshold) or (not up and clear < threshold):
            message = (N_("The clear threshold must be at or below the threshold ({threshold}).") if up
                       else N_("The clear threshold must be at or above the threshold ({threshold})."))
            raise RuleError(message, "clear_threshold", threshold=_show(threshold, metric, condition))
    if fields.get("significant"):
        _check_significance(metric, condition, threshold)
    filters = checked_filters(catalog, metric, filters, values, error=RuleError)
    return RuleSpec(metric=metric.key, condition=condition, threshold=threshold, clear_threshold=clear,
                    channel=channel, mention=mention, timezone=tz_name, filters=filters, text=text, **fields)


def _check_significance(metric: Metric, condition: str, threshold: float) -> None:
    """A plain threshold is tested for significance only on a rate of counts (a percentage ratio), and
    only strictly between 0% and 100%; a change rule can always require it."""
    if condition.startswith("change_"):
        return
    if metric.format != "percent" or metric.type != "ratio":
        raise RuleError(N_("Significance applies to rates or to change rules: {name} is not a rate. Say for "
                           "example '{name} change below -20% significant'."), "significant", name=metric.name)
    if not 0 < threshold < 1:
        raise RuleError(N_("A rule that requires significance needs a threshold between 0% and 100% (not "
                           "included)."), "significant")


# -- parts ------------------------------------------------------------------------------------------


def _cut(s: str, m: re.Match) -> str:
    return s[: m.start()] + " | " + s[m.end():]


def _take_channel(raw: str) -> tuple[str | None, str]:
    channels, raw = take_channels(raw)
    found = [cid or "#" + name for cid, name in channels]
    if len(set(found)) > 1:
        raise RuleError("One channel per rule, not {n}.", "channel", n=len(set(found)))
    return (found[0] if found else None), raw


def _take_mentions(raw: str) -> tuple[str | None, str]:
    found: list[str] = []

    def take(m: re.Match) -> str:
        if m[1]:
            found.append(f"<!{m[1].lower()}>")
        elif m[2]:
            found.append(f"<@{m[2]}>")
        elif m[3]:
            found.append(f"<!subteam^{m[3]}>")
        else:
            found.append("@" + m[4])
        return " | "

    raw = re.sub(rf"(?<![\w<])@(here|channel|everyone|ici|tous)\b|(?<![\w<])@({USER_ID})\b"
                 r"|(?<![\w<])@(S[A-Z0-9]+)\b|(?<![\w<])@([\w][\w.\-]*)", take, raw)
    found = [{"<!ici>": "<!here>", "<!tous>": "<!channel>"}.get(f, f) for f in found]
    return (" ".join(dict.fromkeys(found)) or None), raw


def _take_filters(s: str, catalog: Catalog):
    return take_filters(s, catalog, sep=" | ")


def _clock(h: str, m: str | None) -> str:
    hour, minute = int(h), int(m or 0)
    if hour > 23 or minute > 59:
        typed = f"{h}:{m or '00'}"
        raise RuleError("'{text}' is not a time of day.", "quiet", text=typed)
    return f"{hour:02d}:{minute:02d}"


def _minutes(m: re.Match, field: str) -> int:
    n = int(m["n"]) * _UNIT_MIN[m["u"]]
    if n <= 0:
        raise RuleError("A duration of 0 means nothing here.", field)
    return n


def _find_metric(s: str, catalog: Catalog) -> Metric:
    taken: list[tuple[int, int, str]] = []
    for alias, key in catalog.aliases.items():
        for m in re.finditer(rf"(?<![\w']){re.escape(alias)}(?![\w'])", s):
            if not any(a < m.end() and m.start() < b for a, b, _ in taken):
                taken.append((m.start(), m.end(), key))
    keys = list(dict.fromkeys(k for _, _, k in sorted(taken)))
    if len(keys) > 1:
        raise RuleError("One KPI per rule: {names}?", "metric",
                        names=lambda lang: tr(lang, " or ").join(catalog.metrics[k].name(lang) for k in keys))
    if keys:
        return catalog.metrics[keys[0]]
    rest = " ".join(w for w in re.sub(r"[|:;.!?()=<>]", " ", s).split() if w not in _FILLERS)
    if not rest:
        raise RuleError("Which KPI? For example: return rate above 8% over 7 days.", "metric")
    raise UnknownRuleMetric(rest, catalog.suggest(rest))


# -- numbers ----------------------------------------------------------------------------------------


def _parts(m: re.Match) -> tuple[float, str | None, str | None, str | None]:
    text = m["num"]
    text = text.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text) else text.replace(",", ".")
    return float(text), m["mult"], m["unit"], m["sign"]


def _value(parts, metric: Metric, condition: str, field: str) -> float:
    """The threshold in the rule's unit: the KPI's unit, or a relative change for change_*."""
    num, mult, unit, sign = parts
    num *= -1 if sign and sign != "+" else 1
    if condition.startswith("change_"):
        if unit in ("pt", "pts", "point", "points", "pp") or mult or (unit and unit != "%"):
            raise RuleError("A change is relative: say for example 'change below -20%'.", field)
        return num / 100 if unit == "%" or abs(num) >= 1 else num
    if metric.format == "percent":
        if mult or unit not in (None, "%", "pt", "pts", "point", "points", "pp"):
            raise RuleError("{name} is a percentage: say for example 'above {example}'.", field, name=metric.name,
                            example=_example(metric))
        value = num / 100 if unit or abs(num) >= 1 else num
        if not 0 <= value <= 1:
            percent = f"{value * 100:g}"
            raise RuleError("{name} is a percentage between 0% and 100%, not {value}%.", field, name=metric.name,
                            value=percent)
        return value
    if unit in ("%", "pt", "pts", "point", "points", "pp"):
        typed = f"{num:g}"
        raise RuleError("{name} is not a percentage: give a value ('above {example}'), or for a "
                        "relative change say 'change above {value}%'.", field, name=metric.name,
                        example=_example(metric), value=typed)
    return num * {"k": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "millions": 1e6}.get(mult or "", 1)


def _example(metric: Metric) -> str:
    return {"percent": "8%", "currency": "120", "count": "100"}.get(metric.format, "2")


def _show(value: float, metric: Metric, condition: str) -> str:
    if condition.startswith("change_") or metric.format == "percent":
        return f"{value * 100:g}%"
    return f"{value:g}"
