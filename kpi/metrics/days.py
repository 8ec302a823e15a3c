"""Days as people write them ("oct 5", "5 octobre", "20/11", "20.11.", "1er au 15 novembre", "week 46",
"KW 46") and calendar arithmetic on dates, in every language of the period words (``kpi.metrics.periods``).
Pure functions of the text and ``today``."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta, tzinfo

MONTH_WORDS = {
    **{w: i + 1 for i, w in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                        "september", "october", "november", "december"])},
    **{w: i + 1 for i, w in enumerate(["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
                                        "septembre", "octobre", "novembre", "decembre"])},
    **{w: i + 1 for i, w in enumerate(["januar", "februar", "marz", "april", "mai", "juni", "juli", "august",
                                        "september", "oktober", "november", "dezember"])},
    "jan": 1, "janv": 1, "feb": 2, "fev": 2, "fevr": 2, "mar": 3, "apr": 4, "avr": 4, "jun": 6, "jul": 7,
    "juil": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
    "jaen": 1, "maerz": 3, "mrz": 3, "okt": 10, "dez": 12,
}

WEEK_NUMBER = re.compile(r"(?:week|wk|semaine|sem|kw|woche|calendar week)\s*(\d{1,2})(?:\s+(\d{4}))?")
_ORDINAL = re.compile(r"(\d{1,2})(?:st|nd|rd|th|er|e|eme)?\.?")
DAY_RANGE = re.compile(r"(?:du|from|vom|von|between|zwischen)?\s*(.+?)\s+(?:to|through|until|till|au|a|bis|and|und|et|-|–)\s+(.+)")


def month_of(text: str) -> str:
    return next((w for w in text.split() if w in MONTH_WORDS), "")


def day_of(text: str, today: date) -> date | None:
    """'oct 5', '5 october', '20 novembre', '1er novembre', '20/11', '20.11', '2026-10-05': a day, this year's
    unless that is after today (then last year's); None if the text is not a day."""
    s = text.strip()
    day = month = year = None
    if m := re.fullmatch(r"(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2}|\d{4}))?", s):
        a, b = int(m[1]), int(m[2])
        if a > 12 and b <= 12:
            day, month = a, b
        elif b > 12 and a <= 12:
            day, month = b, a
        elif a <= 12 and b <= 12 and "." in s:
            day, month = a, b  # 20.11 is German (day.month); 05/11 could be either: not read
        year = (int(m[3]) + (2000 if len(m[3]) == 2 else 0)) if m[3] else None
    else:
        words = s.split()
        if len(words) in (2, 3):
            if words[0] in MONTH_WORDS and (m := _ORDINAL.fullmatch(words[1])):
                month, day = MONTH_WORDS[words[0]], int(m[1])
            elif (m := _ORDINAL.fullmatch(words[0])) and words[1] in MONTH_WORDS:
                day, month = int(m[1]), MONTH_WORDS[words[1]]
            if len(words) == 3:
                year = int(words[2]) if re.fullmatch(r"\d{4}", words[2]) else -1
    if not day or not month or year == -1:
        return None
    found = date(year or today.year, month, day)
    if year is None and found > today:
        found = found.replace(year=today.year - 1)
    return found


# -- calendar arithmetic on dates --------------------------------------------------------------------


def today_of(now: datetime, tz: tzinfo) -> date:
    """The local date of ``now`` (a naive ``now`` is taken as local time)."""
    return (now.replace(tzinfo=tz) if now.tzinfo is None else now.astimezone(tz)).date()


def midnight(day: date, tz: tzinfo | None) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def add_months(day: date, months: int) -> date:
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def shift(day: date, unit: str, n: int) -> date:
    if unit in ("day", "week"):
        return day + timedelta(days=n * (7 if unit == "week" else 1))
    return add_months(day, n * {"month": 1, "quarter": 3, "year": 12}[unit])


def unit_start(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "year":
        return date(day.year, 1, 1)
    months = 3 if unit == "quarter" else 1
    return date(day.year, (day.month - 1) // months * months + 1, 1)


# the nth quarter, in words
QUARTER_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": 4,
             "premier": 1, "1er": 1, "deuxieme": 2, "2e": 2, "troisieme": 3, "3e": 3, "quatrieme": 4,
             "4e": 4, "dernier": 4, "erste": 1, "ersten": 1, "erstes": 1, "zweite": 2, "zweiten": 2, "zweites": 2,
             "dritte": 3, "dritten": 3, "drittes": 3, "vierte": 4, "vierten": 4, "viertes": 4, "1.": 1, "2.": 2,
             "3.": 3, "4.": 4, "1": 1, "2": 2, "3": 3, "4": 4}
NTH_QUARTER = re.compile(r"(first|1st|second|2nd|third|3rd|fourth|4th|last|premier|1er|deuxieme|2e|troisieme|3e|quatrieme|4e|dernier"
                          r"|erste[ns]?|zweite[ns]?|dritte[ns]?|vierte[ns]?|[1-4]\.?)\s+(?:quarter|trimestre|quartal)"
                          r"(?:\s+(?:of\s+|de\s+)?(\d{4}))?")
