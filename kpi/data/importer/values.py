"""Turning the text of a CSV column into typed values, naming every line that does not convert.

A :class:`Column` is the stripped text of one column and the file line of each value. Each distinct
value is converted once (a column of a million rows holds far fewer distinct amounts, days or
countries), and the result is spread back over the rows. Every bad value is recorded in a
:class:`Problems` collector with its line and reason. Conventions that only the whole file can settle
(the decimal separator, day/month order) are decided once by :class:`Conventions` from every numeric
and every date column of the file, then applied to each column.

One module: every converter (numbers, dates, times, countries, currencies, ids) reports into the same
``Problems`` and reads the same file-wide ``Conventions``; they are written, and reviewed, side by side.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kpi.data.messages import Text, joined
from kpi.errors import BadRow
from kpi.i18n import N_

# -- collecting problems -----------------------------------------------------------------------------


class Problems:
    """Reasons per file line; one line may collect several."""

    def __init__(self) -> None:
        self._by_line: dict[int, list[str]] = {}

    def add(self, line: int, reason: str | Text) -> None:
        self._by_line.setdefault(int(line), []).append(reason)

    def flag_rows(self, rows: np.ndarray, lines: np.ndarray, reason: Callable[[int], str]) -> None:
        """Record ``reason(row)`` for every row index in ``rows``."""
        for i in np.asarray(rows).tolist():
            self.add(lines[i], reason(i))

    def __bool__(self) -> bool:
        return bool(self._by_line)

    def __len__(self) -> int:
        return len(self._by_line)

    def bad_rows(self) -> list[BadRow]:
        return [BadRow(line, joined(reasons)) for line, reasons in sorted(self._by_line.items())]


def shown(value: object, limit: int = 40) -> str:
    """A value quoted for a message, shortened when long."""
    value = str(value)
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


class Column:
    """The stripped text of one column (``values``), the file line of each row, and its distinct values
    (``uniques``, with ``codes`` giving each row's position in them)."""

    def __init__(self, name: str, values: pd.Series, lines: np.ndarray):
        self.name = name
        self.values = values.reset_index(drop=True)
        self.lines = np.asarray(lines)

    @cached_property
    def _factorized(self) -> tuple[np.ndarray, list[str]]:
        codes, uniques = pd.factorize(self.values)
        return codes, uniques.tolist()

    @property
    def codes(self) -> np.ndarray:
        return self._factorized[0]

    @property
    def uniques(self) -> list[str]:
        return self._factorized[1]

    @cached_property
    def counts(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.uniques))

    def spread(self, per_unique: np.ndarray) -> np.ndarray:
        """Per-row values from per-unique ones."""
        return np.asarray(per_unique)[self.codes]

    def flag(self, problems: Problems, bad: np.ndarray, reason: Callable[[str], str]) -> None:
        """Record ``reason(value)`` on every row whose distinct value is marked in ``bad``."""
        uniques = self.uniques
        self.flag_index(problems, bad, lambda i: reason(uniques[i]))

    def flag_index(self, problems: Problems, bad: np.ndarray, reason: Callable[[int], str]) -> None:
        """Record ``reason(i)`` on every row whose distinct value ``i`` is marked in ``bad``."""
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        messages: dict[int, str] = {}
        codes = self.codes
        for i in np.flatnonzero(bad[codes]).tolist():
            c = int(codes[i])
            if c not in messages:
                messages[c] = reason(c)
            problems.add(self.lines[i], messages[c])


# -- numbers -----------------------------------------------------------------------------------------

_PLAIN = re.compile(r"-?\d+(?:\.\d{1,2})?")  # the common case: no grouping, at most two decimals
_GROUP_SPACE = "\u00a0\u202f "  # spaces used to group thousands (never a decimal separator)
_DOT = re.compile(rf"-?(?:\d{{1,3}}(?:[,{_GROUP_SPACE}]\d{{3}})+|\d+)(?:\.\d+)?")
_COMMA = re.compile(rf"-?(?:\d{{1,3}}(?:[.{_GROUP_SPACE}]\d{{3}})+|\d+)(?:,\d+)?")
_STRIP_DOT = re.compile(f"[,{_GROUP_SPACE}]")
_STRIP_COMMA = re.compile(f"[.{_GROUP_SPACE}]")


@dataclass
class _NumberScan:
    """Per distinct value: does it read as a decimal-point number, a decimal-comma one, and as what."""

    dot: np.ndarray
    comma: np.ndarray
    dot_value: np.ndarray
    comma_value: np.ndarray


def _scan_numbers(uniques: list[str]) -> _NumberScan:
    n = len(uniques)
    dot, comma = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    dot_value, comma_value = np.full(n, np.nan), np.full(n, np.nan)
    for i, v in enumerate(uniques):
        if not v:
            continue
        if _PLAIN.fullmatch(v):
            dot[i] = True
            dot_value[i] = float(v)
            if "." not in v:  # reads the same in both conventions
                comma[i] = True
                comma_value[i] = dot_value[i]
            continue
        if _DOT.fullmatch(v):
            dot[i] = True
            dot_value[i] = float(_STRIP_DOT.sub("", v))
        if _COMMA.fullmatch(v):
            comma[i] = True
            comma_value[i] = float(_STRIP_COMMA.sub("", v).replace(",", "."))
    return _NumberScan(dot, comma, dot_value, comma_value)


class NumberColumn(Column):
    @cached_property
    def scan(self) -> _NumberScan:
        return _scan_numbers(self.uniques)


# -- dates and times ---------------------------------------------------------------------------------

_TIME_TAIL = (
    r"(?:[ T,]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)
_YMD = re.compile(r"(?P<y>\d{4})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{1,2})" + _TIME_TAIL)
_XYY = re.compile(r"(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4})" + _TIME_TAIL)
_MIN_YEAR, _MAX_YEAR = 1900, 2199


def _parts_to_datetime(y: int, mo: int, d: int, m: re.Match) -> datetime | None:
    """A datetime from the date parts and the time tail of a match (aware when it has an offset)."""
    hour = int(m["H"]) if m["H"] else 0
    minute = int(m["M"]) if m["M"] else 0
    second = int(m["S"]) if m["S"] else 0
    micro = int((m["F"] or "0")[:6].ljust(6, "0"))
    if m["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m["ampm"][0] in "Pp" else 0)
    tz = m["tz"]
    if tz in ("Z", "UTC", "GMT"):
        tz = "+00:00"
    try:
        naive = datetime(y, mo, d, hour, minute, second, micro)
    except ValueError:
        return None
    if not tz:
        return naive
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    offset = timedelta(minutes=int(digits[:2]) * 60 + int(digits[2:4] or 0))
    try:
        return naive.replace(tzinfo=timezone(sign * offset))
    except ValueError:
        return None


@dataclass
class _DateScan:
    """Per distinct value: the datetime ISO 8601 (or yyyy/mm/dd) gave, or the nn/nn/yyyy match that
    waits for the file's day/month order, or neither (not a date)."""

    parsed: list  # datetime (naive = local, aware = with an offset) or None
    pending: dict[int, re.Match]


def _scan_dates(uniques: list[str]) -> _DateScan:
    fromiso = datetime.fromisoformat
    parsed: list = [None] * len(uniques)
    pending: dict[int, re.Match] = {}
    for i, v in enumerate(uniques):
        if not v:
            continue
        try:
            parsed[i] = fromiso(v)
            continue
        except ValueError:
            pass
        m = _YMD.fullmatch(v)
        if m:
            parsed[i] = _parts_to_datetime(int(m["y"]), int(m["b"]), int(m["c"]), m)
            continue
        m = _XYY.fullmatch(v)
        if m:
            pending[i] = m
    return _DateScan(parsed, pending)


class DateColumn(Column):
    @cached_property
    def scan(self) -> _DateScan:
        return _scan_dates(self.uniques)

    @cached_property
    def pending(self) -> dict[int, re.Match]:
        """scan.pending (the nn/nn/yyyy values), without parsing the other dates when there is no scan yet:
        a value that starts with one or two digits and a separator is never ISO 8601 nor yyyy/mm/dd."""
        if "scan" in self.__dict__:
            return self.scan.pending
        pending: dict[int, re.Match] = {}
        for i, v in enumerate(self.uniques):
            if len(v) > 2 and (v[1] in "-/." or v[2] in "-/."):
                m = _XYY.fullmatch(v)
                if m:
                    pending[i] = m
        return pending


# -- file-wide conventions ---------------------------------------------------------------------------


@dataclass
class Conventions:
    """What the file as a whole says about its number and date formats.

    - ``decimal``: "." or ","; decided by the values that can only be read one way ("12.50", "1,234.50"
      → point; "12,50", "1.234,50" → comma). With no such value, "." is assumed and values that would
      read differently in the two conventions ("1,234", "1.234") are refused as ambiguous. A file using
      both has the lines of the less frequent convention refused.
    - ``day_first``: for dates written nn/nn/yyyy (or nn-nn-yyyy): True when a value has its first
      number above 12, False when a value has its second number above 12, None when no value settles
      it (then every such date whose two numbers differ is refused as ambiguous). A file with both
      kinds follows the more frequent one and has the others refused. Dates written with dots
      (01.10.2026) are always day first.
    """

    decimal: str = "."
    decimal_settled: bool = False
    day_first: bool | None = None
    order_example: tuple[int, str] | None = None  # a line that settled day_first, for messages
    mixed_example: tuple[int, str] | None = None  # both decimal conventions: a line of the file's, for messages

    @classmethod
    def detect(cls, numbers: list[NumberColumn], dates: list[DateColumn], problems: Problems) -> Conventions:
        tally = ConventionTally()
        tally.add(numbers, dates)
        conv = tally.decide()
        conv.flag_mixed(numbers, problems)
        return conv

    def flag_mixed(self, numbers: list[NumberColumn], problems: Problems) -> None:
        """When the file uses both decimal conventions: refuse the values of the less frequent one."""
        if self.mixed_example is None:
            return
        minority = "." if self.decimal == "," else ","
        ref_line, ref_value = self.mixed_example
        what = {".": N_("{name} {value} uses a decimal point but line {line} ({example}) uses a decimal comma: "
                        "one file, one number format"),
                ",": N_("{name} {value} uses a decimal comma but line {line} ({example}) uses a decimal point: "
                        "one file, one number format")}
        for col in numbers:
            s = col.scan
            col.flag(
                problems,
                (s.comma & ~s.dot) if minority == "," else (s.dot & ~s.comma),
                lambda v, name=col.name: Text(
                    what[minority], name=name, value=shown(v), line=ref_line, example=shown(ref_value)
                ),
            )


class ConventionTally:
    """What Conventions.detect counts, added up over the parts of a file read one after the other (a big
    file is read in chunks): per number column, the values that read only with a decimal point or only
    with a decimal comma, per date column the nn/nn/yyyy dates whose first or second number is above 12,
    each with the first line that has one. Nothing of the rows is kept."""

    def __init__(self) -> None:
        # column → style ("." / ",") or day-first (True / False) → [count, (line, value) of the first]
        self.numbers: dict[str, dict] = {}
        self.dates: dict[str, dict] = {}

    def add(self, numbers: list[NumberColumn], dates: list[DateColumn]) -> None:
        for col in numbers:
            per = self.numbers.setdefault(col.name, {})
            for style, mask in ((".", col.scan.dot & ~col.scan.comma), (",", col.scan.comma & ~col.scan.dot)):
                if mask.any():
                    count = int(col.counts[mask].sum())
                    if style in per:
                        per[style][0] += count
                    else:
                        row = int(np.flatnonzero(mask[col.codes])[0])
                        per[style] = [count, (int(col.lines[row]), col.values.iat[row])]
        for col in dates:
            per = self.dates.setdefault(col.name, {})
            for i, m in col.pending.items():
                a, b = int(m["a"]), int(m["b"])
                if m["sep"] != "." and (a > 12) != (b > 12):
                    first = a > 12
                    if first in per:
                        per[first][0] += int(col.counts[i])
                    else:
                        row = int(np.flatnonzero(col.codes == i)[0])
                        per[first] = [int(col.counts[i]), (int(col.lines[row]), m.string)]

    def decide(self) -> Conventions:
        conv = Conventions()
        counts = {".": 0, ",": 0}
        example: dict[str, tuple[int, str]] = {}
        for per in self.numbers.values():
            for style, (count, ex) in sorted(per.items(), key=lambda kv: kv[0] != "."):
                counts[style] += count
                example.setdefault(style, ex)
        if counts["."] or counts[","]:
            conv.decimal = "," if counts[","] > counts["."] else "."
            conv.decimal_settled = True
        if counts["."] and counts[","]:
            conv.mixed_example = example[conv.decimal]
        order_counts = {True: 0, False: 0}
        order_example: dict[bool, tuple[int, str]] = {}
        for per in self.dates.values():
            for first, (count, ex) in per.items():
                order_counts[first] += count
                order_example.setdefault(first, ex)
        if order_counts[True] or order_counts[False]:
            conv.day_first = order_counts[True] >= order_counts[False]
            conv.order_example = order_example[conv.day_first]
        return conv


# -- converters --------------------------------------------------------------------------------------


def parse_numbers(
    col: NumberColumn,
    conv: Conventions,
    problems: Problems,
    *,
    default: float | int | None,
    integer: bool = False,
    signed: bool = False,
    decimals: int | None = 2,
) -> np.ndarray:
    """Floats (money, rounded to ``decimals``: cents; None: as written) or integers (counts), never
    negative unless ``signed``; ``default`` fills empty values (None: an empty value is a bad line)."""
    scan, name = col.scan, col.name
    empty = np.array([u == "" for u in col.uniques], dtype=bool)
    ok = scan.dot if conv.decimal == "." else scan.comma
    value = (scan.dot_value if conv.decimal == "." else scan.comma_value).copy()
    other_only = (scan.comma & ~scan.dot) if conv.decimal == "." else (scan.dot & ~scan.comma)
    if conv.decimal_settled:
        ambiguous = np.zeros(len(empty), dtype=bool)
    else:
        ambiguous = scan.dot & scan.comma & ~np.isclose(scan.dot_value, scan.comma_value, equal_nan=True)
    if default is None:
        col.flag(problems, empty, lambda v: Text(N_("{name} is empty"), name=name))
    # a value of the other convention was refused already, by Conventions.detect
    col.flag(problems, ~empty & ~ok & ~other_only, lambda v: Text(N_("{name} {value} is not a number"), name=name,
                                                                  value=shown(v)))
    col.flag(
        problems,
        ambiguous & ~empty,
        lambda v: Text(
            N_("{name} {value} is ambiguous (a thousands separator or a decimal one?) and no other number "
               "in the file tells: write it without a thousands separator"), name=name, value=shown(v)
        ),
    )
    good = ~empty & ok & ~ambiguous
    if not signed:
        col.flag(problems, good & (value < 0),
                 lambda v: Text(N_("{name} {value} is negative"), name=name, value=shown(v)))
        good &= ~(value < 0)
    if integer:
        whole = np.isfinite(value) & (np.floor(value) == value)
        col.flag(problems, good & ~whole,
                 lambda v: Text(N_("{name} {value} is not a whole number"), name=name, value=shown(v)))
        too_big = good & whole & (np.nan_to_num(value) > 2**31 - 1)
        col.flag(problems, too_big, lambda v: Text(N_("{name} {value} is too large"), name=name, value=shown(v)))
        out = np.where(good & whole & ~too_big, value, 0).astype(np.int64)
    else:
        too_big = good & (np.abs(np.nan_to_num(value)) >= 1e12)
        col.flag(problems, too_big, lambda v: Text(N_("{name} {value} is too large"), name=name, value=shown(v)))
        out = np.where(good & ~too_big, value, 0.0)
        if decimals is not None:
            out = np.round(out, decimals)
    if default is not None:
        out[empty] = default
    return col.spread(out)


def parse_datetimes(
    col: DateColumn, conv: Conventions, problems: Problems, *, tz: ZoneInfo, required: bool, day: bool = False
) -> np.ndarray:
    """Naive UTC ``datetime64[us]`` (NaT where empty or bad); with ``day=True``, ``date`` objects of the
    day as written (a time other than midnight, or an offset, is refused)."""
    scan, name = col.scan, col.name
    uniques = col.uniques
    parsed = list(scan.parsed)
    reasons: dict[int, Text] = {}
    for i, m in scan.pending.items():
        a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
        if m["sep"] == "." or a == b:
            day_first = True
        elif (a > 12) != (b > 12):
            day_first = a > 12
            if conv.day_first is not None and day_first != conv.day_first:
                line, example = conv.order_example or (0, "")
                if day_first:
                    msgid = N_("{name} {value} reads day/month/year but line {line} ({example}) is "
                               "month/day/year: one file, one date format")
                else:
                    msgid = N_("{name} {value} reads month/day/year but line {line} ({example}) is "
                               "day/month/year: one file, one date format")
                reasons[i] = Text(msgid, name=name, value=shown(m.string), line=line, example=shown(example))
                continue
        elif conv.day_first is None:
            reasons[i] = Text(
                N_("{name} {value} is ambiguous (day/month or month/day?) and no date in the file "
                   "has a day above 12 to tell: write dates as YYYY-MM-DD"), name=name, value=shown(m.string)
            )
            continue
        else:
            day_first = conv.day_first
        d, mo = (a, b) if day_first else (b, a)
        parsed[i] = _parts_to_datetime(y, mo, d, m)
    n = len(uniques)
    out: list = [None] * n
    local = np.zeros(n, dtype=bool)
    for i, dt in enumerate(parsed):
        if dt is None:
            if i in reasons:
                pass
            elif uniques[i] == "":
                if required:
                    reasons[i] = Text(N_("{name} is empty"), name=name)
            else:
                reasons[i] = Text(N_("{name} {value} is not a date or time"), name=name, value=shown(uniques[i]))
            continue
        if not _MIN_YEAR <= dt.year <= _MAX_YEAR:
            reasons[i] = Text(N_("{name} {value} is out of range (years {first}–{last})"), name=name,
                              value=shown(uniques[i]), first=_MIN_YEAR, last=_MAX_YEAR)
            continue
        off = dt.utcoffset()
        if day:
            if off is not None or dt.hour or dt.minute or dt.second or dt.microsecond:
                reasons[i] = Text(N_("{name} {value} should be a day (YYYY-MM-DD), not a time"), name=name,
                                  value=shown(uniques[i]))
            else:
                out[i] = dt.date()
            continue
        if off is None:
            out[i] = dt
            local[i] = True
        else:
            out[i] = dt.replace(tzinfo=None) - off
    if reasons:
        bad = np.zeros(n, dtype=bool)
        bad[list(reasons)] = True
        col.flag_index(problems, bad, reasons.__getitem__)
    if day:
        return col.spread(np.array(out, dtype=object))
    stamps = pd.DatetimeIndex(out).as_unit("us").to_numpy().copy()
    if local.any() and str(tz) not in ("UTC", "Etc/UTC"):
        sub = pd.DatetimeIndex(stamps[local])
        # a local time that happens twice (clocks go back) is taken at its first occurrence; one that
        # never happens (clocks go forward) is moved forward by the gap
        aware = sub.tz_localize(tz, ambiguous=np.ones(len(sub), dtype=bool), nonexistent="shift_forward")
        stamps[local] = aware.tz_convert("UTC").tz_localize(None).as_unit("us").to_numpy()
    return col.spread(stamps)


def parse_text(
    col: Column,
    problems: Problems,
    *,
    max_len: int | None,
    default: str | None,
    lower: bool = False,
    nullable: bool = False,
    normalise_id: bool = False,
) -> np.ndarray:
    """Text as given (lower-cased for dimensions); ``default`` fills empty values (None: an empty value
    is a bad line, unless ``nullable``: then it is None). ``normalise_id``: an id a spreadsheet wrote as
    a float ("15240.0") is the integer it stands for ("15240")."""
    name = col.name
    uniques = col.uniques
    if normalise_id:
        uniques = [normal_id(u) for u in uniques]
    empty = np.array([u == "" for u in uniques], dtype=bool)
    if default is None and not nullable:
        col.flag(problems, empty, lambda v: Text(N_("{name} is empty"), name=name))
    out = [default if u == "" else (u.lower() if lower else u) for u in uniques]
    if max_len:
        long = np.array([len(u) > max_len for u in uniques], dtype=bool)
        col.flag(problems, long, lambda v: Text(N_("{name} {value} is longer than {max} characters"), name=name,
                                                value=shown(v), max=max_len))
    return col.spread(np.array(out, dtype=object))


_FLOAT_ID = re.compile(r"(\d+)\.0+")


def normal_id(value: str) -> str:
    """An id as stored: surrounding spaces stripped, and ``15240.0`` (a spreadsheet's float) → ``15240``."""
    value = value.strip()
    m = _FLOAT_ID.fullmatch(value)
    return m[1] if m else value


@lru_cache(maxsize=1)
def _countries() -> dict[str, str | None]:
    """Country names and codes (casefolded, without accents' variants collapsed) → ISO 3166 alpha-2 code;
    None for the values that mean "no country" (→ ZZ). Babel's territory names in English, French and
    German, the alpha-2 and alpha-3 codes, and the common forms outside ISO's list."""
    from babel import Locale

    names: dict[str, str | None] = {}
    for lang in ("en", "fr", "de"):
        for code, label in Locale(lang).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(code.casefold(), code)
                names.setdefault(_country_key(label), code)
    for alpha3, code in _ALPHA3.items():
        names.setdefault(alpha3.casefold(), code)
    for name, code in _COUNTRY_ALIASES.items():
        names[_country_key(name)] = code
    return names


def _country_key(value: str) -> str:
    return re.sub(r"[\s.]+", " ", value.casefold().replace("’", "'")).strip()


# ISO 3166-1 alpha-3 → alpha-2 (the codes of every country that has both)
_ALPHA3 = dict(pair.split(":") for pair in (
    "AFG:AF ALA:AX ALB:AL DZA:DZ ASM:AS AND:AD AGO:AO AIA:AI ATA:AQ ATG:AG ARG:AR ARM:AM ABW:AW AUS:AU AUT:AT "
    "AZE:AZ BHS:BS BHR:BH BGD:BD BRB:BB BLR:BY BEL:BE BLZ:BZ BEN:BJ BMU:BM BTN:BT BOL:BO BES:BQ BIH:BA BWA:BW "
    "BVT:BV BRA:BR IOT:IO BRN:BN BGR:BG BFA:BF BDI:BI CPV:CV KHM:KH CMR:CM CAN:CA CYM:KY CAF:CF TCD:TD CHL:CL "
    "CHN:CN CXR:CX CCK:CC COL:CO COM:KM COG:CG COD:CD COK:CK CRI:CR CIV:CI HRV:HR CUB:CU CUW:CW CYP:CY CZE:CZ "
    "DNK:DK DJI:DJ DMA:DM DOM:DO ECU:EC EGY:EG SLV:SV GNQ:GQ ERI:ER EST:EE SWZ:SZ ETH:ET FLK:FK FRO:FO FJI:FJ "
    "FIN:FI FRA:FR GUF:GF PYF:PF ATF:TF GAB:GA GMB:GM GEO:GE DEU:DE GHA:GH GIB:GI GRC:GR GRL:GL GRD:GD GLP:GP "
    "GUM:GU GTM:GT GGY:GG GIN:GN GNB:GW GUY:GY HTI:HT HMD:HM VAT:VA HND:HN HKG:HK HUN:HU ISL:IS IND:IN IDN:ID "
    "IRN:IR IRQ:IQ IRL:IE IMN:IM ISR:IL ITA:IT JAM:JM JPN:JP JEY:JE JOR:JO KAZ:KZ KEN:KE KIR:KI PRK:KP KOR:KR "
    "KWT:KW KGZ:KG LAO:LA LVA:LV LBN:LB LSO:LS LBR:LR LBY:LY LIE:LI LTU:LT LUX:LU MAC:MO MDG:MG MWI:MW MYS:MY "
    "MDV:MV MLI:ML MLT:MT MHL:MH MTQ:MQ MRT:MR MUS:MU MYT:YT MEX:MX FSM:FM MDA:MD MCO:MC MNG:MN MNE:ME MSR:MS "
    "MAR:MA MOZ:MZ MMR:MM NAM:NA NRU:NR NPL:NP NLD:NL NCL:NC NZL:NZ NIC:NI NER:NE NGA:NG NIU:NU NFK:NF MKD:MK "
    "MNP:MP NOR:NO OMN:OM PAK:PK PLW:PW PSE:PS PAN:PA PNG:PG PRY:PY PER:PE PHL:PH PCN:PN POL:PL PRT:PT PRI:PR "
    "QAT:QA REU:RE ROU:RO RUS:RU RWA:RW BLM:BL SHN:SH KNA:KN LCA:LC MAF:MF SPM:PM VCT:VC WSM:WS SMR:SM STP:ST "
    "SAU:SA SEN:SN SRB:RS SYC:SC SLE:SL SGP:SG SXM:SX SVK:SK SVN:SI SLB:SB SOM:SO ZAF:ZA SGS:GS SSD:SS ESP:ES "
    "LKA:LK SDN:SD SUR:SR SJM:SJ SWE:SE CHE:CH SYR:SY TWN:TW TJK:TJ TZA:TZ THA:TH TLS:TL TGO:TG TKL:TK TON:TO "
    "TTO:TT TUN:TN TUR:TR TKM:TM TCA:TC TUV:TV UGA:UG UKR:UA ARE:AE GBR:GB USA:US UMI:UM URY:UY UZB:UZ VUT:VU "
    "VEN:VE VNM:VN VGB:VG VIR:VI WLF:WF ESH:EH YEM:YE ZMB:ZM ZWE:ZW XKX:XK"
).split())

# forms found in real exports that are not ISO names (None: no country, stored as ZZ)
_COUNTRY_ALIASES: dict[str, str | None] = {
    "UK": "GB", "U.K.": "GB", "Great Britain": "GB", "Britain": "GB", "England": "GB", "Scotland": "GB",
    "Wales": "GB", "Northern Ireland": "GB", "United Kingdom of Great Britain and Northern Ireland": "GB",
    "Grande-Bretagne": "GB", "Angleterre": "GB", "Großbritannien": "GB", "Grossbritannien": "GB", "England (UK)": "GB",
    "EIRE": "IE", "Éire": "IE", "Republic of Ireland": "IE",
    "RSA": "ZA", "Republic of South Africa": "ZA",
    "USA": "US", "U.S.A.": "US", "U.S.": "US", "United States of America": "US", "America": "US",
    "Amerika": "US", "Vereinigte Staaten von Amerika": "US", "États-Unis d'Amérique": "US",
    "Czech Republic": "CZ", "Tschechische Republik": "CZ", "République tchèque": "CZ",
    "Holland": "NL", "The Netherlands": "NL", "Hollande": "NL",
    "Korea": "KR", "South Korea": "KR", "Republic of Korea": "KR", "Korea, Republic of": "KR", "Südkorea": "KR",
    "Corée": "KR", "North Korea": "KP",
    "Russia": "RU", "Russian Federation": "RU", "Russland": "RU", "Russie": "RU",
    "Vietnam": "VN", "Viet Nam": "VN", "Iran": "IR", "Syria": "SY", "Laos": "LA", "Moldova": "MD",
    "Macedonia": "MK", "Bolivia": "BO", "Venezuela": "VE", "Tanzania": "TZ", "Taiwan": "TW",
    "Brunei": "BN", "Ivory Coast": "CI", "Cape Verde": "CV", "Swaziland": "SZ", "Burma": "MM",
    "Turkey": "TR", "Türkei": "TR", "Turquie": "TR", "Vatican": "VA", "Vatican City": "VA",
    "Hong Kong": "HK", "Hong Kong SAR": "HK", "Macau": "MO", "Macao SAR": "MO", "Palestine": "PS",
    "UAE": "AE", "U.A.E.": "AE", "Emirates": "AE",
    "Deutschland": "DE", "Allemagne": "DE", "Germany (DE)": "DE", "Schweiz": "CH", "Suisse": "CH",
    "Österreich": "AT", "Autriche": "AT", "Belgien": "BE", "Belgique": "BE",
    "Unspecified": None, "Unknown": None, "Not set": None, "(not set)": None, "N/A": None,
    "None": None, "-": None, "Other": None, "Unbekannt": None, "Inconnu": None, "Non spécifié": None,
    "ZZ": None,
}  # fmt: skip


def parse_country(col: Column, unknown: dict[str, int] | None = None) -> np.ndarray:
    """ISO 3166 alpha-2 codes (upper case) from codes (alpha-2, alpha-3) and names in English, French or
    German, and the common forms outside ISO's list ("EIRE", "UK", "USA", "RSA", "Holland"...); empty,
    "unspecified", "unknown" → ZZ. A value that is none of these is kept as written (a territory group
    such as "European Community" or "Channel Islands" is still a country of the data) and counted, per
    value, in ``unknown`` (value → lines) so that the import can say so."""
    known = _countries()
    out: list[str] = []
    for u, count in zip(col.uniques, col.counts.tolist(), strict=True):
        if u == "":
            out.append("ZZ")
            continue
        key = _country_key(u)
        if key in known:
            out.append(known[key] or "ZZ")
        else:
            out.append(u)
            if unknown is not None:
                unknown[u] = unknown.get(u, 0) + count
    return col.spread(np.array(out, dtype=object))


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def normalise_currency(value: str) -> str | None:
    code = value.strip().upper()
    return code if len(code) == 3 and code in _currencies() else None


_PLACED = {
    "placed", "paid", "partially_paid", "authorized", "pending", "fulfilled", "unfulfilled", "partial",
    "partially_fulfilled", "shipped", "delivered", "completed", "complete", "processing", "open", "closed",
    "on_hold", "refunded", "partially_refunded",
}  # fmt: skip
_CANCELLED = {"cancelled", "canceled", "voided", "void", "failed"}
# a row that is a credit note (a refund document), not an order: loaded as a return
CREDIT = "credit"
CREDIT_WORDS = frozenset({"refund", "credit_note", "creditnote", "credit", "return", "credit_memo", "gutschrift",
                          "avoir", "erstattung", "remboursement"})


def status_key(value: str) -> str:
    """How status words are compared: case-insensitive, spaces and '-' as '_', WooCommerce's ``wc-`` prefix
    dropped."""
    key = re.sub(r"[\s\-]+", "_", value.strip().casefold())
    return key[3:] if key.startswith("wc_") else key


def parse_status(col: Column, problems: Problems) -> np.ndarray:
    """placed or cancelled (or CREDIT for a credit note); an unknown word is a bad line."""
    def one(v: str) -> str | None:
        key = status_key(v)
        if key == "":
            return "placed"
        if key in _CANCELLED:
            return "cancelled"
        if key in CREDIT_WORDS:
            return CREDIT
        return "placed" if key in _PLACED else None

    out = [one(u) for u in col.uniques]
    name = col.name
    col.flag(
        problems,
        np.array([s is None for s in out], dtype=bool),
        lambda v: Text(
            N_("{name} {value} is not a status: use placed or cancelled (paid, fulfilled, ... mean "
               "placed; canceled, voided mean cancelled)"), name=name, value=shown(v)
        ),
    )
    return col.spread(np.array([s or "placed" for s in out], dtype=object))


def as_python(values: pd.Series | np.ndarray) -> list:
    """Plain Python values for a driver: datetime, date, float, int, str, None."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[us]").astype(object).tolist()
    if arr.dtype == object:  # a NULL (a guest order's customer) may have become NaN on its way
        missing = pd.isna(arr)
        if missing.any():
            arr = arr.copy()
            arr[missing] = None
    return arr.tolist()
