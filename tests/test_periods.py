"""Periods as the user sees them: exact local ranges for every accepted form, in English and French,
their comparisons, their buckets across DST changes, and clear errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kpi.errors import PeriodError
from kpi.metrics.periods import ACCEPTED_FORMS, GRANULARITIES, day_range, default_period, parse_period

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=PARIS)  # a Tuesday, ISO week 48


def D(s: str) -> date:
    return date.fromisoformat(s)


def parse(text: str, now: datetime = NOW, tz: ZoneInfo = PARIS):
    return parse_period(text, now=now, tz=tz)


def dates(p) -> tuple[date, date, date]:
    return p.start.date(), p.end.date(), p.full_end.date()


# text -> (first day, exclusive end, exclusive end of the whole period, English description)
CASES = {
    "today": ("2026-11-24", "2026-11-25", "2026-11-25", "today (Nov 24)"),
    "Today": ("2026-11-24", "2026-11-25", "2026-11-25", "today (Nov 24)"),
    "aujourd'hui": ("2026-11-24", "2026-11-25", "2026-11-25", "today (Nov 24)"),
    "aujourd’hui": ("2026-11-24", "2026-11-25", "2026-11-25", "today (Nov 24)"),
    "yesterday": ("2026-11-23", "2026-11-24", "2026-11-24", "yesterday (Nov 23)"),
    "hier": ("2026-11-23", "2026-11-24", "2026-11-24", "yesterday (Nov 23)"),
    "last 7 days": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "7 days": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "past 7 days": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "7d": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "in the last 7 days?": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "les 7 derniers jours": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "7 derniers jours": ("2026-11-17", "2026-11-24", "2026-11-24", "last 7 days (Nov 17\u2009–\u200923)"),
    "last 30 days": ("2026-10-25", "2026-11-24", "2026-11-24", "last 30 days (Oct 25\u2009–\u2009Nov 23)"),
    "last 4 weeks": ("2026-10-27", "2026-11-24", "2026-11-24", "last 4 weeks (Oct 27\u2009–\u2009Nov 23)"),  # complete days up to today
    "les 4 dernières semaines": ("2026-10-27", "2026-11-24", "2026-11-24", "last 4 weeks (Oct 27\u2009–\u2009Nov 23)"),
    "last 3 months": ("2026-08-24", "2026-11-24", "2026-11-24", "last 3 months (Aug 24\u2009–\u2009Nov 23)"),
    "3 derniers mois": ("2026-08-24", "2026-11-24", "2026-11-24", "last 3 months (Aug 24\u2009–\u2009Nov 23)"),
    "this week": ("2026-11-23", "2026-11-25", "2026-11-30", "this week (Nov 23\u2009–\u200924, so far)"),
    "cette semaine": ("2026-11-23", "2026-11-25", "2026-11-30", "this week (Nov 23\u2009–\u200924, so far)"),
    "WTD": ("2026-11-23", "2026-11-25", "2026-11-30", "week to date (Nov 23\u2009–\u200924, so far)"),
    "last week": ("2026-11-16", "2026-11-23", "2026-11-23", "last week (Nov 16\u2009–\u200922)"),
    "la semaine dernière": ("2026-11-16", "2026-11-23", "2026-11-23", "last week (Nov 16\u2009–\u200922)"),
    "semaine derniere": ("2026-11-16", "2026-11-23", "2026-11-23", "last week (Nov 16\u2009–\u200922)"),
    "this month": ("2026-11-01", "2026-11-25", "2026-12-01", "this month (Nov 1\u2009–\u200924, so far)"),
    "ce mois-ci": ("2026-11-01", "2026-11-25", "2026-12-01", "this month (Nov 1\u2009–\u200924, so far)"),
    "ce mois": ("2026-11-01", "2026-11-25", "2026-12-01", "this month (Nov 1\u2009–\u200924, so far)"),
    "MTD": ("2026-11-01", "2026-11-25", "2026-12-01", "month to date (Nov 1\u2009–\u200924, so far)"),
    "month to date": ("2026-11-01", "2026-11-25", "2026-12-01", "month to date (Nov 1\u2009–\u200924, so far)"),
    "depuis le début du mois": ("2026-11-01", "2026-11-25", "2026-12-01", "month to date (Nov 1\u2009–\u200924, so far)"),
    "last month": ("2026-10-01", "2026-11-01", "2026-11-01", "last month (Oct 1\u2009–\u200931)"),
    "le mois dernier": ("2026-10-01", "2026-11-01", "2026-11-01", "last month (Oct 1\u2009–\u200931)"),
    "mois dernier": ("2026-10-01", "2026-11-01", "2026-11-01", "last month (Oct 1\u2009–\u200931)"),
    "this quarter": ("2026-10-01", "2026-11-25", "2027-01-01", "this quarter (Oct 1\u2009–\u2009Nov 24, so far)"),
    "ce trimestre": ("2026-10-01", "2026-11-25", "2027-01-01", "this quarter (Oct 1\u2009–\u2009Nov 24, so far)"),
    "QTD": ("2026-10-01", "2026-11-25", "2027-01-01", "quarter to date (Oct 1\u2009–\u2009Nov 24, so far)"),
    "last quarter": ("2026-07-01", "2026-10-01", "2026-10-01", "last quarter (Jul 1\u2009–\u2009Sep 30)"),
    "le trimestre dernier": ("2026-07-01", "2026-10-01", "2026-10-01", "last quarter (Jul 1\u2009–\u2009Sep 30)"),
    "this year": ("2026-01-01", "2026-11-25", "2027-01-01", "this year (Jan 1\u2009–\u2009Nov 24, so far)"),
    "cette année": ("2026-01-01", "2026-11-25", "2027-01-01", "this year (Jan 1\u2009–\u2009Nov 24, so far)"),
    "cette annee": ("2026-01-01", "2026-11-25", "2027-01-01", "this year (Jan 1\u2009–\u2009Nov 24, so far)"),
    "YTD": ("2026-01-01", "2026-11-25", "2027-01-01", "year to date (Jan 1\u2009–\u2009Nov 24, so far)"),
    "year to date": ("2026-01-01", "2026-11-25", "2027-01-01", "year to date (Jan 1\u2009–\u2009Nov 24, so far)"),
    "depuis le début de l'année": ("2026-01-01", "2026-11-25", "2027-01-01", "year to date (Jan 1\u2009–\u2009Nov 24, so far)"),
    "last year": ("2025-01-01", "2026-01-01", "2026-01-01", "last year (Jan 1\u2009–\u2009Dec 31)"),
    "l'an dernier": ("2025-01-01", "2026-01-01", "2026-01-01", "last year (Jan 1\u2009–\u2009Dec 31)"),
    "l’année dernière": ("2025-01-01", "2026-01-01", "2026-01-01", "last year (Jan 1\u2009–\u2009Dec 31)"),
    "annee derniere": ("2025-01-01", "2026-01-01", "2026-01-01", "last year (Jan 1\u2009–\u2009Dec 31)"),
    "october": ("2026-10-01", "2026-11-01", "2026-11-01", "October 2026"),
    "October 2026": ("2026-10-01", "2026-11-01", "2026-11-01", "October 2026"),
    "oct 2026": ("2026-10-01", "2026-11-01", "2026-11-01", "October 2026"),
    "octobre": ("2026-10-01", "2026-11-01", "2026-11-01", "October 2026"),
    "octobre 2026": ("2026-10-01", "2026-11-01", "2026-11-01", "October 2026"),
    "en octobre": ("2026-10-01", "2026-11-01", "2026-11-01", "October 2026"),
    "december": ("2025-12-01", "2026-01-01", "2026-01-01", "December 2025"),  # not started in 2026 yet
    "décembre": ("2025-12-01", "2026-01-01", "2026-01-01", "December 2025"),
    "february 2024": ("2024-02-01", "2024-03-01", "2024-03-01", "February 2024"),
    "november": ("2026-11-01", "2026-11-25", "2026-12-01", "November 2026 (Nov 1\u2009–\u200924, 2026, so far)"),
    "Q3 2026": ("2026-07-01", "2026-10-01", "2026-10-01", "Q3 2026"),
    "q3": ("2026-07-01", "2026-10-01", "2026-10-01", "Q3 2026"),
    "2026 Q3": ("2026-07-01", "2026-10-01", "2026-10-01", "Q3 2026"),
    "T3 2026": ("2026-07-01", "2026-10-01", "2026-10-01", "Q3 2026"),
    "q4": ("2026-10-01", "2026-11-25", "2027-01-01", "Q4 2026 (Oct 1\u2009–\u2009Nov 24, 2026, so far)"),
    "2025": ("2025-01-01", "2026-01-01", "2026-01-01", "2025"),
    "2026-10-01..2026-10-31": ("2026-10-01", "2026-11-01", "2026-11-01", "Oct 1\u2009–\u200931, 2026"),
    "2026-10-01 to 2026-10-31": ("2026-10-01", "2026-11-01", "2026-11-01", "Oct 1\u2009–\u200931, 2026"),
    "du 2026-10-01 au 2026-10-31": ("2026-10-01", "2026-11-01", "2026-11-01", "Oct 1\u2009–\u200931, 2026"),
    "2026-11-20..2026-11-30": ("2026-11-20", "2026-11-25", "2026-12-01", "Nov 20\u2009–\u200930, 2026 (Nov 20\u2009–\u200924, 2026, so far)"),
    "2026-10-05": ("2026-10-05", "2026-10-06", "2026-10-06", "Oct 5, 2026"),
    "2026-W46": ("2026-11-09", "2026-11-16", "2026-11-16", "week 2026-W46 (Nov 9\u2009–\u200915, 2026)"),
}


@pytest.mark.parametrize("text", CASES)
def test_parse_gives_the_exact_local_range(text):
    start, end, full_end, described = CASES[text]
    p = parse(text)
    assert dates(p) == (D(start), D(end), D(full_end))
    assert p.start.tzinfo is PARIS and p.start.hour == 0 and p.end.hour == 0
    assert p.partial == (end != full_end)
    assert p.describe() == described


@pytest.mark.parametrize("text", CASES)
def test_key_parses_back_to_the_same_period(text):
    p = parse(text)
    assert parse(p.key) == p


@pytest.mark.parametrize(
    "text, unit, count, rolling",
    [
        ("today", "day", 1, True),
        ("last 7 days", "day", 7, True),
        ("last 4 weeks", "week", 4, True),
        ("last 3 months", "month", 3, True),
        ("last week", "week", 1, False),
        ("MTD", "month", 1, False),
        ("Q3 2026", "quarter", 1, False),
        ("2025", "year", 1, False),
        ("2026-10-01..2026-10-31", "month", 1, False),  # the dates of a month are the month
        ("2026-10-01..2026-10-30", "day", 30, False),
    ],
)
def test_unit_count_and_rolling(text, unit, count, rolling):
    p = parse(text)
    assert (p.unit, p.count, p.rolling) == (unit, count, rolling)


@pytest.mark.parametrize(
    "text, french",
    [
        ("today", "aujourd'hui (24 nov.)"),
        ("yesterday", "hier (23 nov.)"),
        ("last 7 days", "7 derniers jours (17–23 nov.)"),
        ("last 4 weeks", "4 dernières semaines (27 oct.\u2009–\u200923 nov.)"),
        ("last 3 months", "3 derniers mois (24 août\u2009–\u200923 nov.)"),
        ("MTD", "mois en cours (1–24 nov., jusqu'ici)"),
        ("this month", "ce mois-ci (1–24 nov., jusqu'ici)"),
        ("this week", "cette semaine (23–24 nov., jusqu'ici)"),
        ("last week", "la semaine dernière (16–22 nov.)"),
        ("last month", "le mois dernier (1–31 oct.)"),
        ("last year", "l'année dernière (1 janv.\u2009–\u200931 déc.)"),
        ("october 2026", "octobre 2026"),
        ("december", "décembre 2025"),
        ("Q3 2026", "T3 2026"),
        ("2026-10-01..2026-10-31", "1–31 oct. 2026"),
    ],
)
def test_describe_in_french(text, french):
    assert parse(text).describe("fr") == french


def test_default_period_is_the_last_7_complete_days():
    p = default_period(now=NOW, tz=PARIS)
    assert dates(p) == (D("2026-11-17"), D("2026-11-24"), D("2026-11-24"))
    assert p == parse("last 7 days")


def test_today_is_the_local_date_of_now_whatever_its_zone():
    late_utc = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # already the 25th in Paris
    assert parse("today", now=late_utc).start.date() == D("2026-11-25")
    assert parse("today", now=late_utc, tz=NEW_YORK).start.date() == D("2026-11-24")


def test_explicit_range_is_inclusive_of_both_dates():
    p = parse("2026-10-01..2026-10-31")
    assert p.end == datetime(2026, 11, 1, tzinfo=PARIS)
    assert p.days == 31


def test_days_and_total_days_of_a_partial_month():
    p = parse("this month")
    assert (p.days, p.total_days, p.partial) == (24, 30, True)


# -- comparisons -------------------------------------------------------------------------------------

# text, now, previous (start, exclusive end), year ago (start, exclusive end)
COMPARISONS = [
    ("today", NOW, ("2026-11-23", "2026-11-24"), ("2025-11-24", "2025-11-25")),
    ("yesterday", NOW, ("2026-11-22", "2026-11-23"), ("2025-11-23", "2025-11-24")),
    ("last 7 days", NOW, ("2026-11-10", "2026-11-17"), ("2025-11-17", "2025-11-24")),
    ("last 3 months", NOW, ("2026-05-24", "2026-08-24"), ("2025-08-24", "2025-11-24")),
    ("this month", NOW, ("2026-10-01", "2026-10-25"), ("2025-11-01", "2025-11-25")),
    ("last month", NOW, ("2026-09-01", "2026-10-01"), ("2025-10-01", "2025-11-01")),
    ("october", NOW, ("2026-09-01", "2026-10-01"), ("2025-10-01", "2025-11-01")),
    ("Q3 2026", NOW, ("2026-04-01", "2026-07-01"), ("2025-07-01", "2025-10-01")),
    ("this quarter", NOW, ("2026-07-01", "2026-08-25"), ("2025-10-01", "2025-11-25")),
    ("2025", NOW, ("2024-01-01", "2025-01-01"), ("2024-01-01", "2025-01-01")),
    # the dates of a month compare as the month does (with "october": September)
    ("2026-10-01..2026-10-31", NOW, ("2026-09-01", "2026-10-01"), ("2025-10-01", "2025-11-01")),
    # ISO weeks: a year ago is 52 weeks back, so weekdays match (Mon 2026-11-16 -> Mon 2025-11-17)
    ("last week", NOW, ("2026-11-09", "2026-11-16"), ("2025-11-17", "2025-11-24")),
    ("this week", NOW, ("2026-11-16", "2026-11-18"), ("2025-11-24", "2025-11-26")),
    ("last 4 weeks", NOW, ("2026-09-29", "2026-10-27"), ("2025-10-28", "2025-11-25")),
    # month to date on March 30: 30 days, clipped at the end of February
    ("MTD", datetime(2026, 3, 30, 9, tzinfo=PARIS), ("2026-02-01", "2026-03-01"), ("2025-03-01", "2025-03-31")),
    # on March 31 the month is complete (today included): the previous one is all of February
    ("MTD", datetime(2026, 3, 31, 9, tzinfo=PARIS), ("2026-02-01", "2026-03-01"), ("2025-03-01", "2025-04-01")),
    # 29 February a year earlier is 28 February
    ("2028-02-29", datetime(2028, 3, 5, tzinfo=PARIS), ("2028-02-28", "2028-02-29"), ("2027-02-28", "2027-03-01")),
    ("february 2028", datetime(2028, 3, 5, tzinfo=PARIS), ("2028-01-01", "2028-02-01"), ("2027-02-01", "2027-03-01")),
    ("2028-02-25..2028-02-29", datetime(2028, 3, 5, tzinfo=PARIS),
     ("2028-02-20", "2028-02-25"), ("2027-02-25", "2027-03-01")),
]


@pytest.mark.parametrize("text, now, previous, year_ago", COMPARISONS)
def test_previous_and_year_ago(text, now, previous, year_ago):
    p = parse(text, now=now)
    prev, ago = p.previous(), p.year_ago()
    assert (prev.start.date(), prev.end.date()) == (D(previous[0]), D(previous[1]))
    assert (ago.start.date(), ago.end.date()) == (D(year_ago[0]), D(year_ago[1]))
    assert not prev.partial and not ago.partial  # comparison periods are over


def test_comparison_periods_have_readable_labels():
    assert parse("today").previous().describe() == "yesterday (Nov 23)"
    assert parse("last month").previous().describe("fr") == "septembre 2026"
    assert parse("Q3 2026").year_ago().describe() == "Q3 2025"
    assert parse("last week").previous().describe() == "week 2026-W46 (Nov 9\u2009–\u200915, 2026)"
    # a comparison's dates carry their year: "Oct 1 – 24" alone could be any October
    assert parse("this month").previous().describe() == "Oct 1\u2009–\u200924, 2026"
    assert parse("last 7 days").previous().previous().describe() == "Nov 3\u2009–\u20099, 2026"
    assert parse("this month").previous().key == "2026-10-01..2026-10-24"  # still a key parse_period reads


def test_previous_of_a_partial_period_has_the_same_number_of_days():
    p = parse("this month")
    assert p.previous().days == p.days == 24


# -- buckets -----------------------------------------------------------------------------------------


def test_granularities():
    assert GRANULARITIES == ("day", "week", "month")
    with pytest.raises(ValueError):
        parse("last month").buckets("hour")


def test_day_buckets_cover_the_period():
    b = parse("last 7 days").buckets("day")
    assert len(b) == 7
    assert b[0] == (datetime(2026, 11, 17, tzinfo=PARIS), datetime(2026, 11, 18, tzinfo=PARIS))
    assert all(b[i][1] == b[i + 1][0] for i in range(6)) and b[-1][1] == parse("last 7 days").end


def test_week_buckets_are_iso_weeks_clipped_to_the_period():
    b = parse("october 2026").buckets("week")
    starts = [s.date() for s, _ in b]
    assert starts == [D("2026-10-01"), D("2026-10-05"), D("2026-10-12"), D("2026-10-19"), D("2026-10-26")]
    assert b[-1][1].date() == D("2026-11-01")


def test_month_buckets_clip_to_a_partial_period():
    b = parse("this quarter").buckets("month")
    assert [(s.date(), e.date()) for s, e in b] == [
        (D("2026-10-01"), D("2026-11-01")),
        (D("2026-11-01"), D("2026-11-25")),
    ]


@pytest.mark.parametrize(
    "tz, day, hours, offsets",
    [
        (PARIS, "2026-03-29", 23, (1, 2)),  # spring forward
        (PARIS, "2026-10-25", 25, (2, 1)),  # fall back
        (NEW_YORK, "2026-03-08", 23, (-5, -4)),
        (NEW_YORK, "2026-11-01", 25, (-4, -5)),
    ],
)
def test_day_buckets_across_dst_are_local_midnights(tz, day, hours, offsets):
    p = parse(day, now=datetime(2026, 12, 1, tzinfo=tz), tz=tz)
    [(start, end)] = p.buckets("day")
    assert (start.hour, end.hour) == (0, 0)
    assert start.utcoffset() == timedelta(hours=offsets[0]) and end.utcoffset() == timedelta(hours=offsets[1])
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=hours)


def test_month_with_dst_change_spans_the_right_instants():
    p = parse("march 2026")
    assert p.end.astimezone(UTC) - p.start.astimezone(UTC) == timedelta(days=31, hours=-1)
    assert all(s.hour == 0 and e.hour == 0 for s, e in p.buckets("week"))


def test_day_range_gives_local_midnights():
    start, end = day_range(D("2026-03-29"), D("2026-03-30"), PARIS)
    assert start.isoformat() == "2026-03-29T00:00:00+01:00"
    assert end.isoformat() == "2026-03-30T00:00:00+02:00"


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["garbage", "", "last 0 days", "last seven", "2026-02-30", "2026-W60", "Q5 2026"])
def test_text_that_is_not_a_period(text):
    with pytest.raises(PeriodError) as err:
        parse(text)
    assert "last 7 days" in str(err.value) and "Q3 2026" in str(err.value)
    assert err.value.accepted == ACCEPTED_FORMS["en"]


@pytest.mark.parametrize("text", ["2027", "december 2026", "2026-11-25", "q1 2027", "2026-12-01..2026-12-31"])
def test_future_period(text):
    with pytest.raises(PeriodError, match="is in the future") as err:
        parse(text)
    assert "last 7 days" in str(err.value)


def test_reversed_range():
    with pytest.raises(PeriodError, match="starts after it ends") as err:
        parse("2026-10-31..2026-10-01")
    assert "2026-10-01..2026-10-31" in str(err.value)


def test_accepted_forms_are_all_understood():
    for lang in ("en", "fr"):
        for form in ACCEPTED_FORMS[lang]:
            parse(form)


@pytest.mark.parametrize("text, key", [
    ("the last quarter of 2025", "q4_2025"), ("first quarter 2026", "q1_2026"), ("3rd quarter", "q3_2026"),
    ("dernier trimestre 2025", "q4_2025"), ("deuxième trimestre 2026", "q2_2026"),
    ("vierten Quartal 2025", "q4_2025"), ("3. Quartal 2026", "q3_2026"),
])
def test_a_quarter_in_words(text, key):
    assert parse(text).key == key
