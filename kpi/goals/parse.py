"""A goal written in English or French, to a ``GoalSpec``.

    revenue +10% by 2026-12-31 owner @alice #growth        +10% online sales this year
    conversion 3.5% by 2027-06-30                           conversion +0.5pt by june 2027
    return rate from 8% to 6% by 2027-03-31                 revenue +10% channel=email watch conversion,aov
    chiffre d'affaires +10 % d'ici le 31/12/2026            taux de conversion +0,5 pt en un an

Parts, in any order: the KPI; a target (``+10%`` relative, ``+0.5pt`` points, rates only, or an
absolute value ``3.5%``, ``$150k``, ``1 500``; ``from 8% to 6%`` gives a baseline and an absolute
target); a deadline (``by|before|until|d'ici|avant|jusqu'au`` a date, a month, ``Q3 2027``, the end of
the year...; ``in a year|in 6 months|en un an``; ``this|next year|quarter|month``, ``cette année``,
``in 2027``); a start (``from|since|depuis (le)`` a date; default today, or the start of the named
period); ``baseline 2.4%``; filters ``channel=email``; an owner (``@U123``, a bare
``@alice`` kept as text); a channel (``#C123``, ``#growth``; the Slack layer turns Slack's markup into these); ``watch a, b`` KPIs.

Dates: ISO ``2026-12-31``, ``31/12/2026`` (day first), ``31 décembre 2026``, ``December 31, 2026``. A
month without a year is its next end (``by March`` in November: March of next year). For a
percentage KPI a bare number of 1 or more is read in percent (``3.5`` is 3.5%), below 1 as a
fraction (``0.035``).
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timedelta, tzinfo

from kpi.i18n import N_, tr
from kpi.metrics.catalog import Catalog, Metric, normalise
from kpi.metrics.query import take_filters
from kpi.metrics.values import DimensionValues
from kpi.refs import USER_ID, take_channels

from .spec import (
    GoalError,
    GoalSpec,
    UnknownGoalMetric,
    add_months,
    check_filters,
    default_watch,
    target_value,
)

_MONTHS = {
    **{m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                        "september", "october", "november", "december"])},
    **{m: i + 1 for i, m in enumerate(["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
                                        "septembre", "octobre", "novembre", "decembre"])},
    "jan": 1, "janv": 1, "feb": 2, "fev": 2, "fevr": 2, "mar": 3, "apr": 4, "avr": 4, "jun": 6, "jul": 7,
    "juil": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_DATE = (rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{4}}|\d{{1,2}}(?:er|st|nd|rd|th)?\s+{_MONTH}\s*\d{{4}}"
         rf"|{_MONTH}\s*\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})")
_SIGN = r"[+\-\u2212\u2013]"
_NUM = r"\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_AMOUNT = (rf"(?:[$€£]\s*)?(?P<num>{_NUM})\s*(?P<mult>k|m|mn|million|millions|bn|billion)?\s*"
           r"(?P<unit>%|pts?|points?|pp|€|\$|£|eur|euros?|usd|dollars?)?(?![\w%])")
_DEADLINE_KW = (r"(?:by|before|until|till|through|deadline|due(?:\s+(?:by|on))?|ends?(?:\s+on)?|d'ici|avant|"
                r"jusqu'(?:au|a|en)|au plus tard(?:\s+le)?|echeance(?:\s+le)?|pour)")
_START_KW = (r"(?:from|since|starting(?:\s+(?:on|from))?|starts?(?:\s+on)?|depuis|a partir du|a partir de|"
             r"a compter du|commencant le|debut)")
_ARTICLE = r"(?:(?:the|le|la|this|cette|ce)\s+|l')?"
_UNITS = {"day": "day", "days": "day", "jour": "day", "jours": "day", "week": "week", "weeks": "week",
          "semaine": "week", "semaines": "week", "month": "month", "months": "month", "mois": "month",
          "year": "year", "years": "year", "an": "year", "ans": "year", "annee": "year", "annees": "year",
          "quarter": "quarter", "quarters": "quarter", "trimestre": "quarter", "trimestres": "quarter"}
_ONE = ("a", "an", "one", "un", "une")
_PERIODS = [  # (pattern with the unit as a group, offset in units from the current one)
    (r"this\s+(year|quarter|month)|current\s+(year|quarter|month)", 0),
    (r"cette\s+(annee)|ce\s+(trimestre|mois)(?:-ci|\s+ci)?", 0),
    (r"next\s+(year|quarter|month)", 1),
    (r"l'(annee)\s+prochaine|(?:l'|le\s+)?(an|trimestre|mois)\s+prochain", 1),
]
_WATCH = r"\b(?:also\s+watch|watch(?:ing)?|kpis?\s+to\s+watch|a\s+surveiller|surveiller|suivre)\b\s*:?"
_FILLERS = set("""goal goals objective objectives objectif objectifs target cible kpi increase raise grow boost improve
reach hit get lift lower reduce cut decrease to of the our my a an in on at for with and set new owner owned
responsable pilote proprietaire channel canal dans post poster notify et de du des le la les l d un une notre nos
augmenter atteindre hausse baisse reduire diminuer passer faire pour sur en au aux by""".split())


def parse_goal(text: str, catalog: Catalog, *, today: date | datetime, tz: tzinfo | None = None,
               values: DimensionValues | None = None) -> GoalSpec:
    """Parse a goal; raises ``GoalError`` (with ``field``) or ``UnknownGoalMetric`` (an ``UnknownMetric``
    too, with suggestions). ``today`` is the shop's local date (a datetime is converted with ``tz``); with
    ``values`` (the data's), a filter value the data does not hold is refused."""
    if isinstance(today, datetime):
        today = (today.astimezone(tz) if tz is not None and today.tzinfo is not None else today).date()
    raw = html.unescape(text or "")
    owner, raw = _take_owner(raw)
    channel, raw = _take_channel(raw)
    s = " " + normalise(raw) + " "
    filters, s = _take_filters(s, catalog)
    start, deadline, s = _take_dates(s, today)

    baseline_raw = target_raw = None
    if m := re.search(rf"\b(?:from|de|d')\s*(?P<a>{_SIGN}?{_AMOUNT.replace('(?P<', '(?P<a_')})\s+(?:to|a)\s+"
                      rf"(?P<b>{_AMOUNT.replace('(?P<', '(?P<b_')})", s):
        baseline_raw, target_raw = _amount_parts(m, "a_"), ("absolute", _amount_parts(m, "b_"))
        s = _cut(s, m)
    if m := re.search(rf"\b(?:baseline|base|reference|referentiel)\s*(?:of|de|:|=|at|a|is|est)?\s*(?P<sign>{_SIGN})?{_AMOUNT}", s):
        if baseline_raw is not None:
            raise GoalError("Two baselines: give one.", "baseline")
        baseline_raw = _amount_parts(m, "", sign=m["sign"])
        s = _cut(s, m)
    if re.search(r"\b(?:baseline|reference)\b", s):
        raise GoalError("Give the baseline as a number, for example 'baseline 2.4%'.", "baseline")
    for kind, pattern in (("relative_pt", rf"(?P<sign>{_SIGN})\s*(?P<num>{_NUM})\s*(?:pts?|points?|pp)(?![\w])"),
                          ("relative_pct", rf"(?P<sign>{_SIGN})\s*(?P<num>{_NUM})\s*%"),
                          ("signed", rf"(?P<sign>{_SIGN})\s*{_AMOUNT}"),
                          ("absolute", rf"(?<![\w.,])(?:(?:to|at|a)\s+)?{_AMOUNT}")):
        for m in list(re.finditer(pattern, s)):
            if kind == "signed":
                raise GoalError("'{text}': say how the change is measured, +10% (relative) or "
                                "+0.5pt (points, for rates), or give the target value itself.", "target",
                                text=m.group(0).strip())
            if target_raw is not None:
                raise GoalError("Two targets: give one (+10%, +0.5pt or a value such as 3.5%).", "target")
            target_raw = (kind, _amount_parts(m, "", sign=m["sign"] if kind.startswith("relative") else None))
            s = _cut(s, m)

    watch_text = ""
    if m := re.search(_WATCH + r"(?P<list>[^|]*)", s):
        watch_text = m["list"]
        s = _cut(s, m)
    metric = _find_metric(s, catalog)
    filters = check_filters(catalog, metric, filters, values)
    watch = _watch_list(watch_text, catalog) if watch_text.strip() else default_watch(metric.key, catalog)

    if target_raw is None:
        raise GoalError("No target for {name}: say +10%, +0.5pt (rates) or a value such as {example}.", "target",
                        name=metric.name, example="3.5%" if metric.format == "percent" else "150000")
    kind, (num, mult, unit, sign) = target_raw
    baseline = _to_unit(baseline_raw, metric, "baseline") if baseline_raw else None
    if kind == "relative_pt" and metric.format != "percent":
        raise GoalError("Points (pt) are for rates; {name} is not one: say +10% or give the target value.",
                        "target", name=metric.name)
    if kind == "absolute":
        value = _to_unit((num, mult, unit, sign), metric, "target")
    else:
        value = (-1 if sign and sign != "+" else 1) * num / 100
        if value == 0:
            raise GoalError("A change of 0 is no target.", "target")
        if kind == "relative_pct" and baseline == 0:
            raise GoalError("A percent of a zero baseline means nothing: give the target value itself.", "target")
    if deadline is None:
        raise GoalError("No deadline: add one, for example 'by 2026-12-31', 'by June', 'in a year' or 'this year'.",
                        "deadline")
    start = start or today
    if deadline < today:
        raise GoalError("The deadline {deadline} is in the past.", "deadline", deadline=deadline)
    if deadline < start:
        raise GoalError("The deadline {deadline} is before the start {start}.", "deadline", deadline=deadline,
                        start=start)
    spec = GoalSpec(metric=metric.key, target_kind=kind, target_value=value, start=start, deadline=deadline,
                    filters=filters, baseline=baseline, owner=owner, channel=channel, watch=watch, text=text)
    if baseline is not None and abs(target_value(spec, baseline) - baseline) <= 1e-12 * max(1.0, abs(baseline)):
        raise GoalError("The target equals the baseline: there is nothing to achieve.", "target")
    return spec


# -- parts -----------------------------------------------------------------------------------------


def _cut(s: str, m: re.Match) -> str:
    """The text with the match replaced by a clause separator."""
    return s[: m.start()] + " | " + s[m.end():]


def _take_owner(raw: str) -> tuple[str | None, str]:
    owners: list[str] = []

    def take(m: re.Match) -> str:
        owners.append(m[1] or "@" + m[2])
        return " | "

    raw = re.sub(rf"(?<![\w<])@({USER_ID})\b|(?<![\w<])@([\w][\w.\-]*)", take, raw)
    if not owners and (m := re.search(r"(?i)\b(?:owner|owned by|responsable|pilote|propriétaire)\s*:?\s+([\w][\w.\-]*)", raw)):
        owners.append(m[1])
        raw = raw[: m.start()] + " | " + raw[m.end():]
    if len(set(owners)) > 1:
        raise GoalError("One owner per goal, not {n}.", "owner", n=len(set(owners)))
    return (owners[0] if owners else None), raw


def _take_channel(raw: str) -> tuple[str | None, str]:
    found, raw = take_channels(raw)
    channels = [cid or name for cid, name in found]
    if len(set(channels)) > 1:
        raise GoalError("One channel per goal, not {n}.", "channel", n=len(set(channels)))
    return (channels[0] if channels else None), raw


def _take_filters(s: str, catalog: Catalog):
    return take_filters(s, catalog, sep=" | ")


def _take_dates(s: str, today: date) -> tuple[date | None, date | None, str]:
    """(start, deadline, rest of the text): ranges, starts, deadlines, durations, named periods, then a
    bare date (a deadline)."""
    found: dict[str, date] = {}

    def put(key: str, value: date) -> None:
        if key in found and found[key] != value:
            message = (N_("Two starts: {first} and {second}.") if key == "start"
                       else N_("Two deadlines: {first} and {second}."))
            raise GoalError(message, "deadline", first=found[key], second=value)
        found[key] = value

    def sub(pattern: str, handle) -> None:
        nonlocal s
        while m := re.search(pattern, s):
            handle(m)
            s = _cut(s, m)

    sub(rf"\b(?:from|du|between|entre\s+le|entre)\s+{_ARTICLE}(?P<a>{_DATE})\s+(?:to|until|till|through|au|a|and|et\s+le|et)"
        rf"\s+{_ARTICLE}(?P<b>{_DATE})", lambda m: (put("start", _to_date(m["a"])), put("deadline", _to_date(m["b"]))))
    sub(rf"\b{_START_KW}\s+{_ARTICLE}(?P<d>{_DATE})", lambda m: put("start", _to_date(m["d"])))
    sub(rf"\b{_START_KW}\s+{_ARTICLE}(?P<m>{_MONTH})\s*(?P<y>\d{{4}})?",
        lambda m: put("start", date(int(m["y"] or today.year), _MONTHS[m["m"].rstrip(".")], 1)))
    kw = rf"\b{_DEADLINE_KW}\s+{_ARTICLE}"
    sub(kw + rf"(?P<d>{_DATE})", lambda m: put("deadline", _to_date(m["d"])))
    sub(kw + r"(?P<y>\d{4})-(?P<mo>\d{2})\b", lambda m: put("deadline", _month_end(int(m["y"]), int(m["mo"]))))
    sub(kw + r"(?:end\s+of\s+(?:the\s+|this\s+)?(?P<u>year|quarter|month)|fin\s+(?:de\s+l'|d'|de\s+la\s+|du\s+|de\s+ce\s+|"
        r"de\s+cette\s+|de\s+)?(?P<f>annee|an|trimestre|mois)|(?P<ye>year[\s-]end))\b",
        lambda m: put("deadline", _unit_end(today, _UNITS.get(m["u"] or m["f"] or "year", "year"))))
    sub(kw + r"(?:(?:the\s+)?end\s+of\s+|fin\s+(?:de\s+|d')?)?[qt](?P<q>[1-4])\s*(?P<y>\d{4})?\b",
        lambda m: put("deadline", _quarter_end(today, int(m["q"]), m["y"])))
    sub(kw + rf"(?:(?:the\s+)?end\s+of\s+|fin\s+(?:de\s+|d')?)?(?P<m>{_MONTH})\s*(?P<y>\d{{4}})?",
        lambda m: put("deadline", _next_month_end(today, _MONTHS[m["m"].rstrip(".")], m["y"])))
    sub(r"\b(?:by|before|until|d'ici|avant|jusqu'(?:au|a|en)|au plus tard)\s+(?:(?:the\s+)?end\s+of\s+|fin\s+)?"
        r"(?P<y>20\d\d)\b", lambda m: put("deadline", date(int(m["y"]), 12, 31)))

    def duration(m: re.Match) -> None:
        n = 1 if m["n"] in _ONE else int(m["n"])
        begin = found.get("start", today)
        found.setdefault("start", begin)
        unit = _UNITS[m["u"]]
        end = begin + timedelta(days=n * (1 if unit == "day" else 7)) if unit in ("day", "week") else \
            add_months(begin, n * {"month": 1, "quarter": 3, "year": 12}[unit])
        put("deadline", end - timedelta(days=1))

    sub(r"\b(?:in|within|over|en|dans|sous|sur|d'ici)\s+(?:the\s+next\s+|les\s+)?(?P<n>a|an|one|un|une|\d{1,3})\s+"
        r"(?P<u>" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b", duration)
    for pattern, offset in _PERIODS:
        def period(m: re.Match, offset=offset) -> None:
            unit = _UNITS[next(g for g in m.groups() if g)]
            first = add_months(_unit_start(today, unit), offset * (12 if unit == "year" else 3 if unit == "quarter" else 1))
            found.setdefault("start", first)
            put("deadline", _unit_end(first, unit))

        sub(r"\b(?:(?:for|during|in|over|pour|sur|en|durant|pendant)\s+)?" + f"(?:{pattern})", period)

    def year(m: re.Match) -> None:
        found.setdefault("start", date(int(m["y"]), 1, 1))
        put("deadline", date(int(m["y"]), 12, 31))

    sub(r"\b(?:in|for|during|en|pour|durant|pendant)\s+(?P<y>20\d\d)\b", year)
    sub(rf"(?P<d>{_DATE})", lambda m: put("deadline", _to_date(m["d"])))
    return found.get("start"), found.get("deadline"), s


def _to_date(text: str) -> date:
    t = text.strip()
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", t):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", t):
            a, b = int(m[1]), int(m[2])
            day, month = (b, a) if b > 12 >= a else (a, b)  # day first, unless that cannot be
            return date(int(m[3]), month, day)
        if m := re.fullmatch(rf"(\d{{1,2}})(?:er|st|nd|rd|th)?\s+({_MONTH})\s*(\d{{4}})", t):
            return date(int(m[3]), _MONTHS[m[2].rstrip(".")], int(m[1]))
        if m := re.fullmatch(rf"({_MONTH})\s*(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})", t):
            return date(int(m[3]), _MONTHS[m[1].rstrip(".")], int(m[2]))
    except ValueError:
        pass
    raise GoalError("'{text}' is not a date.", "deadline", text=text)


def _month_end(year: int, month: int) -> date:
    return add_months(date(year, month, 1), 1) - timedelta(days=1)


def _next_month_end(today: date, month: int, year: str | None) -> date:
    if year:
        return _month_end(int(year), month)
    end = _month_end(today.year, month)
    return end if end >= today else _month_end(today.year + 1, month)


def _quarter_end(today: date, q: int, year: str | None) -> date:
    end = _month_end(int(year) if year else today.year, 3 * q)
    return end if year or end >= today else _month_end(today.year + 1, 3 * q)


def _unit_start(day: date, unit: str) -> date:
    if unit == "year":
        return date(day.year, 1, 1)
    months = 3 if unit == "quarter" else 1
    return date(day.year, (day.month - 1) // months * months + 1, 1)


def _unit_end(day: date, unit: str) -> date:
    start = _unit_start(day, unit)
    return add_months(start, {"year": 12, "quarter": 3, "month": 1}[unit]) - timedelta(days=1)


# -- numbers -----------------------------------------------------------------------------------------


def _amount_parts(m: re.Match, prefix: str, sign: str | None = None):
    """(number, multiplier word, unit, sign) from a match of ``_AMOUNT`` (groups named with ``prefix``)."""
    groups = m.groupdict()
    text = groups[prefix + "num"].replace(" ", "")
    text = text.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text) else text.replace(",", ".")
    if sign is None and prefix:  # "from -2% to ...": the sign sits before the amount
        lead = m[prefix[:-1]].lstrip()
        sign = lead[0] if lead and lead[0] in "+-\u2212\u2013" else None
    return float(text), groups.get(prefix + "mult"), groups.get(prefix + "unit"), sign


def _to_unit(parts, metric: Metric, field: str) -> float:
    """A number in the KPI's unit: 3.5% -> 0.035 for a percentage, 150k -> 150000."""
    num, mult, unit, sign = parts
    num *= -1 if sign and sign != "+" else 1
    if metric.format == "percent":
        if mult:
            typed = f"{num:g}{mult}"
            raise GoalError("'{text}' is not a percentage.", field, text=typed)
        value = num / 100 if unit in ("%", "pt", "pts", "point", "points", "pp") or abs(num) >= 1 else num
        if not 0 <= value <= 1:
            percent = f"{value * 100:g}"
            raise GoalError("{name} is a percentage between 0% and 100%, not {value}%.", field, name=metric.name,
                            value=percent)
        return value
    if unit == "%":
        typed = f"{num:g}"
        raise GoalError("{name} is not a percentage: say +{value}% for a change, or give the value itself.", field,
                        name=metric.name, value=typed)
    return num * {"k": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "millions": 1e6, "bn": 1e9, "billion": 1e9}.get(mult or "", 1)


# -- KPIs ----------------------------------------------------------------------------------------------


def _alias_at(text: str, catalog: Catalog) -> list[tuple[int, int, str]]:
    """Every non-overlapping alias occurrence (start, end, key), longest aliases first."""
    taken: list[tuple[int, int, str]] = []
    for alias, key in catalog.aliases.items():
        for m in re.finditer(rf"(?<![\w']){re.escape(alias)}(?![\w'])", text):
            if not any(a < m.end() and m.start() < b for a, b, _ in taken):
                taken.append((m.start(), m.end(), key))
    return sorted(taken)


def _find_metric(s: str, catalog: Catalog) -> Metric:
    hits = _alias_at(s, catalog)
    keys = list(dict.fromkeys(k for _, _, k in hits))
    if len(keys) > 1:
        raise GoalError("One KPI per goal: {names}? (Put the others after 'watch'.)", "metric",
                        names=lambda lang: tr(lang, " or ").join(catalog.metrics[k].name(lang) for k in keys))
    if keys:
        return catalog.metrics[keys[0]]
    rest = " ".join(w for w in re.sub(r"[|:;.!?()]", " ", s).split() if w not in _FILLERS)
    if not rest:
        raise GoalError("Which KPI? For example: revenue +10% this year, conversion 3.5% by 2027-06-30.", "metric")
    raise UnknownGoalMetric(rest, catalog.suggest(rest))


def _watch_list(text: str, catalog: Catalog) -> tuple[str, ...]:
    """KPIs separated by commas, 'and', 'et', '+' or nothing at all ("conversion aov")."""
    out: list[str] = []
    for chunk in re.split(r",|;|\+|&|\band\b|\bet\b", text):
        chunk = re.sub(r"\b(?:by|par)\s+\w+", " ", chunk).strip()  # "sessions by channel": the KPI is enough
        if not chunk:
            continue
        hits = _alias_at(chunk, catalog)
        leftover = chunk
        for a, b, _ in reversed(hits):
            leftover = leftover[:a] + " " + leftover[b:]
        if leftover.split():
            name = " ".join(leftover.split())
            raise UnknownGoalMetric(name, catalog.suggest(name), field="watch")
        out += [k for _, _, k in hits if k not in out]
    return tuple(out)
