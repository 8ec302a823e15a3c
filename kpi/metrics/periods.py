"""Periods: what "last 7 days", "octobre", "Q3 2026" or "MTD" mean, as half-open local ranges.

Pure functions: the current time is always a parameter, never read from the clock. A period is
[start, end) between local midnights of the shop's time zone; ``end`` never goes past the start of
tomorrow, ``full_end`` is where the calendar period ends (later than ``end`` while it is not over).

Every period has a ``key``, a canonical machine form that ``parse_period`` accepts back
("last_7_days", "mtd", "2026-10", "q3_2026", "2026-W46", "2026-10-01..2026-10-31"), and its
English and French labels are derived from that key. A period that is not over is cut by the engine at
the data's "as of" (``Period.until``); its comparisons keep the elapsed span to the same time of day.

One module: the phrases, the canonical keys they read to, and the Period built, shifted and labelled from
those keys are one grammar; apart, a key could be written that nothing parses back.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from babel.dates import format_interval, format_skeleton, format_time, get_month_names

from kpi.errors import PeriodError
from kpi.i18n import N_, babel_locale, tr, trnp

from .days import (
    DAY_RANGE,
    MONTH_WORDS,
    NTH_QUARTER,
    QUARTER_ORDINALS,
    WEEK_NUMBER,
    add_months,
    day_of,
    midnight,
    month_of,
    shift,
    today_of,
    unit_start,
)

GRANULARITIES = ("day", "week", "month")

ACCEPTED_FORMS: dict[str, list[str]] = {
    "en": ["today", "yesterday", "last 7 days", "last 4 weeks", "last 3 months", "this week", "last week",
           "this month", "last month", "MTD", "this quarter", "last quarter", "QTD", "this year", "last year",
           "YTD", "october", "october 2026", "Q3 2026", "2026", "2026-10-05", "2026-10-01..2026-10-31"],
    "fr": ["aujourd'hui", "hier", "les 7 derniers jours", "cette semaine", "la semaine dernière",
           "ce mois-ci", "le mois dernier", "depuis le début du mois", "ce trimestre", "le trimestre dernier",
           "cette année", "l'année dernière", "depuis le début de l'année", "octobre", "octobre 2026",
           "T3 2026", "2026", "2026-10-05", "du 2026-10-01 au 2026-10-31"],
    "de": ["heute", "gestern", "letzte 7 Tage", "diese Woche", "letzte Woche", "diesen Monat", "letzten Monat",
           "seit Monatsbeginn", "dieses Quartal", "letztes Quartal", "dieses Jahr", "letztes Jahr",
           "seit Jahresbeginn", "Oktober", "Oktober 2026", "Q3 2026", "2026", "2026-10-05",
           "vom 2026-10-01 bis 2026-10-31"],
}


# canonical key -> phrases (accents removed, lower case, after leading articles are dropped)
_PHRASES = {
    "today": ["today", "todays", "aujourd'hui", "aujourdhui", "aujourd hui", "du jour", "heute", "heutige"],
    "yesterday": ["yesterday", "yesterdays", "hier", "d'hier", "gestern", "gestrige", "gestrigen"],
    "this_week": ["this week", "current week", "cette semaine", "diese woche", "dieser woche", "aktuelle woche"],
    "this_month": ["this month", "current month", "ce mois", "ce mois-ci", "ce mois ci", "diesen monat",
                   "dieser monat", "diesem monat", "aktueller monat"],
    "this_quarter": ["this quarter", "current quarter", "ce trimestre", "dieses quartal", "diesem quartal",
                     "aktuelles quartal"],
    "this_year": ["this year", "current year", "cette annee", "dieses jahr", "diesem jahr", "aktuelles jahr"],
    "wtd": ["wtd", "week to date", "semaine en cours", "seit wochenbeginn", "woche bis heute"],
    "mtd": ["mtd", "month to date", "mois en cours", "seit monatsbeginn", "seit monatsanfang", "monat bis heute"],
    "qtd": ["qtd", "quarter to date", "trimestre en cours", "seit quartalsbeginn", "quartal bis heute"],
    "ytd": ["ytd", "year to date", "annee en cours", "seit jahresbeginn", "seit jahresanfang", "jahr bis heute"],
    "last_week": ["last week", "previous week", "semaine derniere", "semaine precedente", "semaine passee",
                  "letzte woche", "letzten woche", "vorige woche", "vorigen woche", "vergangene woche",
                  "vergangenen woche", "vorwoche"],
    "last_month": ["last month", "previous month", "mois dernier", "mois precedent", "mois passe", "letzten monat",
                   "letzter monat", "letztem monat", "vorigen monat", "vergangenen monat", "vormonat"],
    "last_quarter": ["last quarter", "previous quarter", "trimestre dernier", "trimestre precedent",
                     "trimestre passe", "letztes quartal", "letzten quartal", "letztem quartal", "vorquartal",
                     "vergangenes quartal", "vergangenen quartal"],
    "last_year": ["last year", "previous year", "annee derniere", "an dernier", "an passe", "annee precedente",
                  "annee passee", "letztes jahr", "letzten jahr", "letztem jahr", "vorjahr", "vergangenes jahr",
                  "vergangenen jahr"],
}
_PHRASE_KEYS = {phrase: key for key, phrases in _PHRASES.items() for phrase in phrases}
_TD_UNITS = {"wtd": "week", "mtd": "month", "qtd": "quarter", "ytd": "year"}
_FR_UNITS = {"semaine": "week", "mois": "month", "trimestre": "quarter", "annee": "year", "an": "year"}
_ROLL_UNITS = {"d": "days", "day": "days", "days": "days", "j": "days", "jour": "days", "jours": "days",
               "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
               "semaine": "weeks", "semaines": "weeks",
               "mo": "months", "mos": "months", "month": "months", "months": "months", "mois": "months",
               "tag": "days", "tage": "days", "tagen": "days", "woche": "weeks", "wochen": "weeks",
               "monat": "months", "monate": "months", "monaten": "months"}

_DATE = r"(\d{4}-\d{2}-\d{2})"
_LEADING = re.compile(r"^(?:(?:in|for|during|over|the|on|en|pour|sur|durant|pendant|le|la|les|ces|im|am|fur|die|der|den|dem"
                      r"|wahrend|uber)\s+|l')+")
_RANGE = re.compile(rf"(?:du|from|between|vom|von|zwischen)?\s*{_DATE}\s*(?:\.\.\.?|to|until|au|a|-|–|—|and|et|bis|und)"
                    rf"\s*{_DATE}")
_SINCE_START = re.compile(r"depuis (?:le )?debut (?:de la |du |de l'|de l |de )?(semaine|mois|trimestre|annee|an)")
_ROLLING = [
    re.compile(r"(?:(?:last|past|previous|trailing|letzte|letzten|vergangene|vergangenen)\s*)?(\d{1,4})\s*([a-z]+)"),
    # last 7 days, 7d, 7 jours, letzte 7 Tage
    re.compile(r"(\d{1,4})\s+(?:derniers|dernieres|precedents|precedentes)\s+([a-z]+)"),  # 7 derniers jours
    re.compile(r"(?:derniers|dernieres)\s+(\d{1,4})\s+([a-z]+)"),  # derniers 7 jours
]
_MONTH_YEAR = re.compile(r"([a-z]+)\.?\s*(\d{4})?|(\d{4})\s+([a-z]+)")
_QUARTER = re.compile(r"(?:[qt]|quartal\s*)([1-4])(?:\s*-?\s*(\d{4}))?|(\d{4})\s*-?\s*[qt]([1-4])"
                      r"|([1-4])\.?\s*quartal(?:\s+(\d{4}))?")
_ISO_WEEK = re.compile(r"(\d{4})\s*-?\s*w(\d{1,2})")
_ISO_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class Period:
    start: datetime  # local midnight, inclusive
    end: datetime  # exclusive: a local midnight, or the data's "as of" while the period is not over
    full_end: datetime  # end of the whole calendar period (== end when the period is over)
    label: str  # English label
    unit: str  # day | week | month | quarter | year: the unit comparisons shift by
    count: int  # how many units
    rolling: bool  # "last N days/weeks/months", today, yesterday
    key: str  # canonical machine form, accepted back by parse_period

    @property
    def partial(self) -> bool:
        """The period is not over: it ends at the data's "as of" (or at today's start), before its calendar end."""
        return self.end < self.full_end

    @property
    def days(self) -> int:
        """Complete days covered (a day cut at 09:00 does not count)."""
        return (self.end.date() - self.start.date()).days

    @property
    def total_days(self) -> int:
        return (self.full_end.date() - self.start.date()).days

    @property
    def last_day(self) -> date:
        """The last local day the period touches (a period cut at 09:00 on the 29th: the 29th)."""
        return (self.end - timedelta(microseconds=1)).date() if self.end > self.start else self.start.date()

    @property
    def cut(self) -> time | None:
        """The time of day the period ends at when that is not midnight (today so far: 09:00)."""
        t = self.end.timetz().replace(tzinfo=None)
        return None if t == time(0) else t

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    def until(self, moment: datetime) -> Period:
        """The period cut at ``moment`` (the data's "as of", never in the future): a period that is not over
        ends there, so it is compared like for like; a period already over by then is returned as it is."""
        moment = moment.astimezone(self.start.tzinfo) if self.start.tzinfo else moment
        if _utc(moment) >= _utc(self.end):  # in UTC: wall times repeat on the day summer time ends
            return self
        return replace(self, end=moment if _utc(moment) > _utc(self.start) else self.start)

    def previous(self) -> Period:
        """The period before, of equal length: rolling periods and whole calendar periods move back by
        count × unit; a calendar period that is not over keeps its elapsed span, to the same time of day,
        clipped at the end of the earlier unit (March 1..30 → February 1..28; today to 09:00 → yesterday
        to 09:00)."""
        start, end = self.start.date(), self.end.date()
        earlier = shift(start, self.unit, -self.count)
        if self.cut is None and shift(start, self.unit, self.count) == end:  # whole units
            return self._derived(earlier, start, "yesterday" if self.key == "today" else None)
        new_end = earlier + timedelta(days=(end - start).days)
        if new_end >= start:
            return self._derived(earlier, start)
        return self._derived(earlier, new_end, end_time=self.cut)

    def year_ago(self) -> Period:
        """The same dates a year earlier (29 February → 28 February), to the same time of day; ISO-week
        periods move back 52 weeks so that weekdays match."""
        start, end = self.start.date(), self.end.date()
        if self.unit == "week":
            return self._derived(start - timedelta(weeks=52), end - timedelta(weeks=52), end_time=self.cut)
        if self.cut is not None:
            return self._derived(add_months(start, -12), add_months(end, -12), end_time=self.cut)
        last = add_months(end - timedelta(days=1), -12)
        return self._derived(add_months(start, -12), last + timedelta(days=1))

    def buckets(self, granularity: str) -> list[tuple[datetime, datetime]]:
        """Consecutive [start, end) local ranges covering the period: days, ISO weeks or calendar
        months, the first and last clipped to the period (the last one at its cut: today so far)."""
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
        tz = self.start.tzinfo
        day, stop, out = self.start.date(), self.end.date(), []
        while day < stop:
            nxt = min(shift(unit_start(day, granularity), granularity, 1), stop)
            out.append((midnight(day, tz), midnight(nxt, tz)))
            day = nxt
        if self.cut is not None:
            first = unit_start(stop, granularity)
            if out and out[-1][0].date() >= first:
                out[-1] = (out[-1][0], self.end)
            else:
                out.append((max(midnight(first, tz), self.start), self.end))
        return out

    def span(self, lang: str = "en") -> str:
        """The dates covered, as people write them ('Nov 1 – 28', '1–28 nov.'), with the time of day of a
        cut ('Nov 29, until 09:00')."""
        first, last = self.start.date(), self.last_day
        loc = babel_locale(lang)
        # the year is implied by "this month" or "last 7 days", not by the dates of a comparison or a range
        skeleton = "MMMd" if first.year == last.year and _RELATIVE.fullmatch(self.key) else "yMMMd"
        text = _dates(first, last, skeleton, lang)
        if self.cut is not None:
            text = tr(lang, "{dates}, until {time}", dates=text,
                      time=format_time(self.cut, "short", locale=loc))
        return text

    def name(self, lang: str = "en") -> str:
        """The period's name alone: 'this month', 'ce mois-ci', 'October 2026'."""
        return _label(self.key, lang)

    def describe(self, lang: str = "en") -> str:
        """The label in ``lang`` with the dates it covers, unless the label is those dates; a period that is
        not over says so: 'this month (Nov 1 – 28, so far)'."""
        label = _label(self.key, lang)
        if self.partial:
            if _ABSOLUTE.fullmatch(self.key):  # dates typed as a range: the whole range, written for people
                label = replace(self, end=self.full_end).span(lang)
            return tr(lang, "{label} ({dates}, so far)", label=label, dates=self.span(lang))
        if _ABSOLUTE.fullmatch(self.key):  # a range or a date: its dates, written the reader's way
            return self.span(lang)
        if _CALENDAR.fullmatch(self.key) and self.cut is None:  # October 2026, Q3 2026, 2026: dates are in it
            return label
        return tr(lang, "{label} ({dates})", label=label, dates=self.span(lang))

    def _derived(self, start: date, end: date, key: str | None = None, end_time: time | None = None) -> Period:
        if end_time is not None:
            key = f"{start}..{end}"
            stop = datetime.combine(end, end_time, tzinfo=self.start.tzinfo)
            return Period(midnight(start, self.start.tzinfo), stop, stop, _label(key, "en"), self.unit, self.count,
                          self.rolling, key)
        key = key or _natural_key(start, end, self.unit)
        return _make(start, end, end, self.unit, self.count, self.rolling, key, self.start.tzinfo)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment


_RELATIVE = re.compile(r"today|yesterday|this_\w+|last_\w+|[wmqy]td")
_ABSOLUTE = re.compile(r"\d{4}-\d{2}-\d{2}(?:\.\.\d{4}-\d{2}-\d{2})?")
_CALENDAR = re.compile(r"\d{4}(?:-\d{2})?|q\d_\d{4}")


def parse_period(text: str, *, now: datetime, tz: tzinfo) -> Period:
    """Parse an English or French period; raise PeriodError, with the accepted forms, if it cannot."""
    today = today_of(now, tz)
    try:
        key = _to_key(_normalise(text), today)
        return _build(key, today, tz, text)
    except (ValueError, OverflowError) as exc:  # 2026-02-30, week 60, "last 9999 months"...
        raise PeriodError(text, ACCEPTED_FORMS["en"]) from exc


def default_period(*, now: datetime, tz: tzinfo) -> Period:
    """The last 7 complete days."""
    return _build("last_7_days", today_of(now, tz), tz, "last 7 days")


@lru_cache(maxsize=1024)
def _dates(first: date, last: date, skeleton: str, lang: str) -> str:
    """The dates from ``first`` to ``last`` as Babel writes them in ``lang`` (remembered: an answer writes the same
    few spans several times, and Babel takes a tenth of a millisecond each)."""
    loc = babel_locale(lang)
    if last <= first:
        return format_skeleton(skeleton, first, locale=loc)
    return format_interval(first, last, skeleton, locale=loc)


def day_range(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """Local midnights for the dates [start, end)."""
    return midnight(start, tz), midnight(end, tz)


# -- parsing ---------------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    s = unicodedata.normalize("NFKD", text.strip().lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("’", "'").replace("ʼ", "'").replace("_", " ").replace(",", " ")
    s = re.sub(r"\s+", " ", s).strip(" ?!.")
    s = s.replace("ß", "ss")
    s = re.sub(r"\s+(?:so far|jusqu'ici|jusqu'a present|bisher|bis jetzt)$", "", s)
    return _LEADING.sub("", s).strip()


def _to_key(s: str, today: date) -> str:
    """The canonical key of a normalised text; ValueError if it is not a period."""
    if s in _PHRASE_KEYS:
        return _PHRASE_KEYS[s]
    if m := _SINCE_START.fullmatch(s):
        return {"week": "wtd", "month": "mtd", "quarter": "qtd", "year": "ytd"}[_FR_UNITS[m[1]]]
    if m := _RANGE.fullmatch(s):
        return f"{m[1]}..{m[2]}"
    if re.fullmatch(_DATE, s):
        return s
    if m := _ISO_WEEK.fullmatch(s):
        return f"{m[1]}-W{int(m[2]):02d}"
    if m := _ISO_MONTH.fullmatch(s):
        return f"{m[1]}-{m[2]}"
    if re.fullmatch(r"\d{4}", s):
        return s
    if m := _QUARTER.fullmatch(s):
        q = int(m[1] or m[4] or m[5])
        year = m[2] or m[3] or m[6] or (today.year if q <= (today.month - 1) // 3 + 1 else today.year - 1)
        return f"q{q}_{year}"
    for pattern in _ROLLING:
        if (m := pattern.fullmatch(s)) and m[2] in _ROLL_UNITS and int(m[1]) > 0:
            return f"last_{int(m[1])}_{_ROLL_UNITS[m[2]]}"
    if m := NTH_QUARTER.fullmatch(s):  # the fourth quarter 2025, le dernier trimestre 2025, das vierte Quartal
        q, year = QUARTER_ORDINALS[m[1]], int(m[2]) if m[2] else None
        if year is None:
            year = today.year if q <= (today.month - 1) // 3 + 1 else today.year - 1
        return f"q{q}_{year}"
    if m := WEEK_NUMBER.fullmatch(s):  # week 46, semaine 47, KW 46: an ISO week, this year's unless future
        week, year = int(m[1]), int(m[2]) if m[2] else today.isocalendar()[0]
        if not m[2] and date.fromisocalendar(year, week, 1) > today:
            year -= 1
        return f"{year}-W{week:02d}"
    if day := day_of(s, today):
        return day.isoformat()
    if m := DAY_RANGE.fullmatch(s):  # nov 1 to nov 15, du 1er au 15 novembre, vom 1. bis 15. november
        last = day_of(m[2], today)
        first = day_of(m[1], today) or (day_of(f"{m[1]} {month_of(m[2])}", today) if last else None)
        if first and last:
            if first > last and first.year == last.year and not re.search(r"\d{4}", m[1]):
                first = first.replace(year=first.year - 1)
            return f"{first}..{last}"
    if (m := _MONTH_YEAR.fullmatch(s)) and (m[1] or m[4]) in MONTH_WORDS:
        month = MONTH_WORDS[m[1] or m[4]]
        year = m[2] or m[3] or (today.year if month <= today.month else today.year - 1)
        return f"{year}-{month:02d}"
    raise ValueError(s)


def _build(key: str, today: date, tz: tzinfo, text: str) -> Period:
    """The period of a canonical key, as of ``today``."""
    unit, count, rolling = "day", 1, False
    if key == "today":
        start, full_end, rolling = today, today + timedelta(days=1), True
    elif key == "yesterday":
        start, full_end, rolling = today - timedelta(days=1), today, True
    elif m := re.fullmatch(r"last_(\d+)_(days|weeks|months)", key):
        # every complete day up to today: "last 4 weeks" is the 28 days that end yesterday, not the 4 ISO
        # weeks before this one (which would leave out the days of this week that are over)
        unit, count, rolling = m[2][:-1], int(m[1]), True
        full_end = today
        start = shift(full_end, unit, -count)
    elif key.startswith(("this_", "last_")) or key in _TD_UNITS:
        unit = _TD_UNITS.get(key) or key[5:]
        start = unit_start(today, unit)
        if key.startswith("last_"):
            start = shift(start, unit, -1)
        full_end = shift(start, unit, 1)
    elif m := re.fullmatch(r"(\d{4})-(\d{2})", key):
        unit, start = "month", date(int(m[1]), int(m[2]), 1)
        full_end = shift(start, unit, 1)
    elif m := re.fullmatch(r"q(\d)_(\d{4})", key):
        unit, start = "quarter", date(int(m[2]), 3 * int(m[1]) - 2, 1)
        full_end = shift(start, unit, 1)
    elif re.fullmatch(r"\d{4}", key):
        unit, start = "year", date(int(key), 1, 1)
        full_end = shift(start, unit, 1)
    elif m := re.fullmatch(r"(\d{4})-W(\d{2})", key):
        unit, start = "week", date.fromisocalendar(int(m[1]), int(m[2]), 1)
        full_end = start + timedelta(weeks=1)
    elif re.fullmatch(_DATE, key):
        start = date.fromisoformat(key)
        full_end = start + timedelta(days=1)
    else:  # an explicit range, both dates inclusive
        first, last = (date.fromisoformat(d) for d in key.split(".."))
        if first > last:
            raise _error(text, N_("The period '{text}' starts after it ends ({first} is after {last}). "
                                  "Try one of: {accepted}."), first=first, last=last)
        start, full_end, count = first, last + timedelta(days=1), (last - first).days + 1
        for calendar_unit in ("year", "quarter", "month"):  # the dates of a month compare as the month does
            if start == unit_start(start, calendar_unit) and full_end == shift(start, calendar_unit, 1):
                unit, count = calendar_unit, 1
                break
    if start > today:
        raise _error(text, N_("The period '{text}' is in the future (it starts on {start}). Try one of: {accepted}."),
                     start=start)
    end = min(full_end, today + timedelta(days=1))
    return _make(start, end, full_end, unit, count, rolling, key, tz)


def _error(text: str, message: str, **values: object) -> PeriodError:
    """A PeriodError that says what is wrong with a period that was read (the message is a msgid)."""
    err = PeriodError(text, ACCEPTED_FORMS["en"])
    err.msgid = message
    err.values = {**err.values, **values}
    err.args = (err.localized("en"),)
    return err


# -- labels ----------------------------------------------------------------------------------------

_NAMED = {
    "today": N_("today"), "yesterday": N_("yesterday"),
    "this_week": N_("this week"), "this_month": N_("this month"), "this_quarter": N_("this quarter"),
    "this_year": N_("this year"),
    "last_week": N_("last week"), "last_month": N_("last month"), "last_quarter": N_("last quarter"),
    "last_year": N_("last year"),
    "wtd": N_("week to date"), "mtd": N_("month to date"), "qtd": N_("quarter to date"), "ytd": N_("year to date"),
}


def _rolling_label(n: int, units: str, lang: str) -> str:
    # TRANSLATORS: the last N complete days/weeks/months up to today, not the previous calendar week/month
    if units == "days":
        return trnp(lang, "rolling", "last day", "last {n} days", n)
    if units == "weeks":
        return trnp(lang, "rolling", "last week", "last {n} weeks", n)
    return trnp(lang, "rolling", "last month", "last {n} months", n)


def _label(key: str, lang: str) -> str:
    """The period's name in ``lang``: its words from the catalogs, its month names from Babel."""
    if key in _NAMED:
        return tr(lang, _NAMED[key])
    if m := re.fullmatch(r"last_(\d+)_(days|weeks|months)", key):
        return _rolling_label(int(m[1]), m[2], lang)
    if m := re.fullmatch(r"(\d{4})-(\d{2})", key):
        return f"{get_month_names('wide', context='stand-alone', locale=babel_locale(lang))[int(m[2])]} {m[1]}"
    if m := re.fullmatch(r"q(\d)_(\d{4})", key):
        return tr(lang, "Q{quarter} {year}", quarter=m[1], year=m[2])
    if re.fullmatch(r"\d{4}-W\d{2}", key):
        return tr(lang, "week {week}", week=key)
    return key  # a year, a date or a range reads the same in every language


def _natural_key(start: date, end: date, unit: str) -> str:
    """The key of a derived period: its calendar name when it is exactly one calendar unit."""
    if unit == "week" and start.weekday() == 0 and end == start + timedelta(weeks=1):
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if unit in ("month", "quarter", "year") and start.day == 1:
        if end == shift(start, "year", 1) and start.month == 1:
            return str(start.year)
        if end == shift(start, "quarter", 1) and start.month % 3 == 1:
            return f"q{start.month // 3 + 1}_{start.year}"
        if end == shift(start, "month", 1):
            return f"{start.year}-{start.month:02d}"
    if end == start + timedelta(days=1):
        return start.isoformat()
    return f"{start}..{end - timedelta(days=1)}"


def _make(start: date, end: date, full_end: date, unit: str, count: int, rolling: bool, key: str,
          tz: tzinfo | None) -> Period:
    return Period(midnight(start, tz), midnight(end, tz), midnight(full_end, tz), _label(key, "en"),
                  unit, count, rolling, key)


_GLUE = ("first second third fourth premier deuxieme troisieme quatrieme dernier erste ersten zweite zweiten dritte "
         "dritten vierte vierten 1st 2nd 3rd 4th 2e 3e 4e in for during over the on en pour sur durant pendant le la les ces im am fur die der den dem wahrend uber l' "
         "du de d' from between to until till through au a bis und and et vom von zwischen last past previous trailing "
         "letzte letzten vergangene vergangenen derniers dernieres precedents precedentes depuis debut seit so far "
         "jusqu'ici bisher week wk semaine sem kw woche calendar quarter quartal trimestre st nd rd th er eme of")


def period_vocabulary() -> frozenset[str]:
    """Every word a period phrase may hold, besides numbers: a reader tries only runs of these words."""
    words = {w for phrases in _PHRASES.values() for p in phrases for w in p.split()}
    words |= set(MONTH_WORDS) | set(_ROLL_UNITS) | set(_GLUE.split())
    return frozenset(words)
