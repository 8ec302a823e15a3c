"""A file's rows prepared for a canonical table (kpi.data.importer.specs says which fields it must or may have):
each field converted, and the checks that span fields, lines or chunks (natural keys, currency, opens ≤
delivered); the first pass over a big file (FileSurvey) that settles what only the whole file can."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kpi.data.messages import Text, refusal
from kpi.errors import BadRow
from kpi.i18n import N_

from .specs import (  # the specs, read here and by the other modules through this one
    LINE,
    NORMALISED_IDS,
    FieldSpec,
    Prepared,
    TableSpec,
    date_columns,
    number_columns,
)
from .values import (
    Column,
    Conventions,
    ConventionTally,
    DateColumn,
    NumberColumn,
    Problems,
    normal_id,
    normalise_currency,
    parse_country,
    parse_datetimes,
    parse_numbers,
    parse_status,
    parse_text,
    shown,
)


def prepare(
    path: str,
    spec: TableSpec,
    columns: dict[str, pd.Series],
    lines: np.ndarray,
    *,
    tz: ZoneInfo,
    currency: str | None,
    problems: Problems,
    general: list[Text],
    conventions: Conventions | None = None,
    numbers: list[NumberColumn] | None = None,
    dates: list[DateColumn] | None = None,
    check_keys: bool = True,
    currency_explicit: bool = True,
    facts: FileFacts | None = None,
) -> Prepared:
    """Convert and check the text ``columns`` (field → stripped strings) of ``spec``'s table; bad lines
    go to ``problems``, file-wide reasons to ``general``. ``facts``: what the whole file settles (a chunk
    of a big file is prepared with them: conventions, currency, the keys of the chunks before)."""
    n = len(lines)
    numbers = numbers if numbers is not None else number_columns(spec, columns, lines)
    dates = dates if dates is not None else date_columns(spec, columns, lines)
    if facts is not None:
        conv = facts.conventions
        conv.flag_mixed(numbers, problems)
    else:
        conv = conventions or Conventions.detect(numbers, dates, problems)
    typed_columns: dict[str, Column] = {c.name: c for c in numbers + dates}
    out: dict[str, Any] = {}
    extra: dict[str, np.ndarray] = {}
    unknown: dict[str, int] = {}
    for f in spec.fields:
        if f.kind == "currency":
            continue
        if f.name not in columns:
            if f.stored:
                out[f.name] = _constant(f, n)
            continue
        target = out if f.stored else extra
        col = typed_columns.get(f.name) or Column(f.name, columns[f.name], lines)
        if f.kind in ("id", "dim"):
            target[f.name] = parse_text(
                col,
                problems,
                max_len=spec.max_len(f.name) if f.stored else 64,
                default=None if f.required else f.default,
                lower=f.kind == "dim",
                nullable=f.nullable,
                normalise_id=f.name in NORMALISED_IDS,
            )
        elif f.kind == "country":
            target[f.name] = parse_country(col, unknown)
        elif f.kind == "status":
            target[f.name] = parse_status(col, problems)
        elif f.kind in ("money", "count"):
            target[f.name] = parse_numbers(
                col, conv, problems, default=None if f.required else f.default, integer=f.kind == "count",
                signed=f.signed, decimals=f.decimals,
            )
        else:
            target[f.name] = parse_datetimes(
                col, conv, problems, tz=tz, required=f.required, day=f.kind == "day"
            )
    frame = pd.DataFrame(out)
    frame[LINE] = lines
    currency_col = Column("currency", columns["currency"], lines) if "currency" in columns else None
    if facts is not None:
        file_currency = facts.currency.flag(currency_col, problems)
    else:
        file_currency = _currency(path, spec, currency_col, currency, problems, general, currency_explicit)
    stores_currency = spec.field("currency") is not None and spec.field("currency").stored
    if stores_currency:
        frame["currency"] = file_currency or ""
    if check_keys:
        _check_keys(spec, frame, problems, facts.keys if facts is not None else None)
    if spec.name == "email_campaigns":
        opens, delivered = frame["unique_opens"].to_numpy(), frame["delivered"].to_numpy()
        for i in np.flatnonzero(opens > delivered).tolist():
            problems.add(
                int(lines[i]),
                Text(N_("unique_opens {opens} is greater than delivered {delivered} (opens are among delivered emails)"),
                     opens=opens[i], delivered=delivered[i]),
            )
    present = [f.name for f in spec.fields if f.stored and (f.name in columns or f.name in spec.key)]
    if stores_currency and "currency" not in present:
        present.append("currency")
    return Prepared(frame[spec.stored + [LINE]], present, file_currency, extra, unknown, currency_col is not None)


def _constant(f: FieldSpec, n: int):
    if f.kind == "timestamp":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if f.kind == "money":
        return np.full(n, float(0.0 if f.default is None else f.default))
    if f.kind == "count":
        return np.full(n, int(f.default or 0), dtype=np.int64)
    return np.full(n, f.default, dtype=object)


def _currency(
    path: str,
    spec: TableSpec,
    col: Column | None,
    shop: str | None,
    problems: Problems,
    general: list[Text],
    explicit: bool = True,
) -> str | None:
    """The one currency of the file's amounts; mixed currencies are refused line by line. A shop currency
    that is only a default (not ``explicit``) gives way to the file's."""
    tally = CurrencyTally(path, spec, shop)
    tally.add(col)
    tally.decide(col is not None, general, explicit)
    return tally.flag(col, problems)


class CurrencyTally:
    """The currency codes of a file's currency column, counted over its chunks (the first line of each),
    then the file's one currency decided and every other line flagged."""

    def __init__(self, path: str, spec: TableSpec, shop: str | None) -> None:
        if shop is not None and normalise_currency(shop) is None:
            raise refusal(path=path, reason=Text(N_("{value} is not a currency code (ISO 4217: EUR, USD, ...)"),
                                                 value=repr(shop)))
        self.path, self.spec = path, spec
        self.shop = normalise_currency(shop) if shop else None
        self.per_code: dict[str, list[int]] = {}  # code → [lines, first line]
        self.main: str | None = None

    def _codes(self, col: Column) -> list[str | None]:
        return [normalise_currency(u) if u else self.shop for u in col.uniques]

    def add(self, col: Column | None) -> None:
        if col is None:
            return
        codes = self._codes(col)
        new: dict[str, int] = {}  # a code not seen in the chunks before → its lines here
        for code, count in zip(codes, col.counts.tolist(), strict=True):
            if code is None:
                continue
            if code in self.per_code:
                self.per_code[code][0] += count
            else:
                new[code] = new.get(code, 0) + count
        if new:
            codes_arr = np.array([c or "" for c in codes], dtype=object)
            for code, count in new.items():
                row = int(np.flatnonzero((codes_arr == code)[col.codes])[0])
                self.per_code[code] = [count, int(col.lines[row])]

    def decide(self, has_column: bool, general: list[Text], explicit: bool) -> None:
        if not has_column:
            if self.spec.name == "orders" and self.shop is None:
                raise refusal(
                    path=self.path,
                    bad_rows=[BadRow(1, Text(N_("no currency column")))],
                    reason=Text(N_("the file has no currency column: give the shop currency (KPIBOT_CURRENCY)")),
                )
            return
        if not self.per_code:
            return
        self.main = max(self.per_code, key=lambda c: self.per_code[c][0])
        if self.shop and self.main != self.shop and explicit:
            general.append(Text(N_("the file's amounts are in {file} but the shop currency is {shop}"),
                                file=self.main, shop=self.shop))

    def flag(self, col: Column | None, problems: Problems) -> str | None:
        """Flag the lines of ``col`` (a chunk's) whose currency is not a code or not the file's; the
        currency of the amounts."""
        if col is None:
            return self.shop
        codes = self._codes(col)
        bad = np.array([c is None for c in codes], dtype=bool)
        empty = np.array([u == "" for u in col.uniques], dtype=bool)
        col.flag(
            problems,
            bad & ~empty,
            lambda v: Text(N_("currency {value} is not a currency code (ISO 4217: EUR, USD, ...)"), value=shown(v)),
        )
        col.flag(problems, bad & empty, lambda v: Text(N_("currency is empty (and no shop currency was given)")))
        if self.main is None:
            return self.shop
        main = self.main
        if len(self.per_code) > 1:
            is_main = np.array([c == main for c in codes], dtype=bool)
            first_line, n_main = self.per_code[main][1], self.per_code[main][0]
            col.flag_index(
                problems,
                ~is_main & ~bad,
                lambda i: Text(
                    N_("currency {code} differs from {main} (line {line} and {n} more): one file, one currency"),
                    code=codes[i], main=main, line=first_line, n=n_main - 1,
                ),
            )
        return main


class KeyIndex:
    """The natural keys of the chunks already prepared, as sorted 64-bit hashes with the line of each (a
    few bytes a row, not the keys): a key of a later chunk found here is a duplicate of that line."""

    def __init__(self) -> None:
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.lines = np.zeros(0, dtype=np.int64)

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """The line of each hash's key in an earlier chunk, 0 where it is new."""
        if not len(self.hashes) or not len(hashes):
            return np.zeros(len(hashes), dtype=np.int64)
        pos = np.searchsorted(self.hashes, hashes).clip(0, len(self.hashes) - 1)
        found = self.hashes[pos] == hashes
        return np.where(found, self.lines[pos], 0)

    def add(self, hashes: np.ndarray, lines: np.ndarray) -> None:
        h = np.concatenate([self.hashes, np.asarray(hashes, dtype=np.uint64)])
        ln = np.concatenate([self.lines, np.asarray(lines, dtype=np.int64)])
        order = np.argsort(h, kind="stable")
        self.hashes, self.lines = h[order], ln[order]


def key_hashes(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(frame[key].astype(object), index=False).to_numpy(dtype=np.uint64)


def id_hashes(values: pd.Series) -> np.ndarray:
    """64-bit hashes of ids as the importer stores them (normal_id), per row."""
    codes, uniques = pd.factorize(values)
    normal = np.array([normal_id(str(u)) for u in uniques], dtype=object)
    if not len(normal):
        return np.zeros(len(values), dtype=np.uint64)
    return pd.util.hash_array(normal)[codes]


@dataclass
class FileFacts:
    """What the whole file settles, counted by a first pass over its chunks, for preparing each chunk."""

    conventions: Conventions
    currency: CurrencyTally
    keys: KeyIndex = field(default_factory=KeyIndex)
    numbered_ids: bool = False  # an orders file with plain-number order ids ("C536379" is then a credit note)
    scattered: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # line-item orders whose
    # lines are not together in the file (hashes of their ids): read together after the others


class FileSurvey:
    """The first pass: ConventionTally, CurrencyTally, and for orders whether ids are plain numbers and (a
    line-item file) which orders have their lines apart."""

    def __init__(self, path: str, spec: TableSpec, shop: str | None, lines: bool) -> None:
        self.spec, self.lines = spec, lines
        self.conventions = ConventionTally()
        self.currency = CurrencyTally(path, spec, shop)
        self.has_currency = False
        self.numbered = False
        self._starts: list[np.ndarray] = []  # hashes of the order id where a run of an order's lines starts
        self._last: np.uint64 | None = None

    def add(self, columns: dict[str, pd.Series], lines: np.ndarray) -> None:
        self.conventions.add(number_columns(self.spec, columns, lines), date_columns(self.spec, columns, lines))
        if "currency" in columns:
            self.has_currency = True
            self.currency.add(Column("currency", columns["currency"], lines))
        if self.spec.name == "orders" and "order_id" in columns and len(lines):
            ids = columns["order_id"]
            if not self.numbered:  # as normal_id stores them: "15240.0" is 15240
                self.numbered = bool(ids.str.strip().str.fullmatch(r"\d+(?:\.0+)?").any())
            if self.lines:
                h = id_hashes(ids)
                start = np.ones(len(h), dtype=bool)
                start[1:] = h[1:] != h[:-1]
                if self._last is not None:
                    start[0] = h[0] != self._last
                self._starts.append(h[start])
                self._last = h[-1]

    def facts(self, general: list[Text], explicit: bool) -> FileFacts:
        self.currency.decide(self.has_currency, general, explicit)
        scattered = np.zeros(0, dtype=np.uint64)
        if self._starts:
            starts = np.sort(np.concatenate(self._starts))
            scattered = np.unique(starts[1:][starts[1:] == starts[:-1]])
        return FileFacts(self.conventions.decide(), self.currency, numbered_ids=self.numbered, scattered=scattered)


def _check_keys(spec: TableSpec, frame: pd.DataFrame, problems: Problems, seen: KeyIndex | None = None) -> None:
    """A natural key twice in the file is refused, naming the first line; ``seen``: the keys of the file's
    chunks before this one (this chunk's first occurrences are added)."""
    key = list(spec.key)
    valid = np.ones(len(frame), dtype=bool)
    for k in key:
        col = frame[k]
        valid &= col.notna().to_numpy() & (col != "").to_numpy()
    sub = frame.loc[valid, key + [LINE]]
    dup = sub.duplicated(key, keep=False).to_numpy()
    earlier = np.zeros(len(sub), dtype=np.int64)
    if seen is not None and len(sub):
        hashes = key_hashes(sub, key)
        earlier = seen.find(hashes)
        first_here = ~sub.duplicated(key, keep="first").to_numpy() & (earlier == 0)
        seen.add(hashes[first_here], sub[LINE].to_numpy()[first_here])
        dup = dup | (earlier > 0)
    if not dup.any():
        return
    d = sub[dup]
    first_line = d.groupby(key, sort=False)[LINE].transform("min").to_numpy()
    first_line = np.where(earlier[dup] > 0, earlier[dup], first_line)
    lines = d[LINE].to_numpy()
    values = d[key].astype(str).agg(", ".join, axis=1).to_numpy() if len(key) > 1 else d[key[0]].to_numpy()
    label = spec.key[0] if len(key) == 1 else "(" + ", ".join(key) + ")"
    for line, first, value in zip(lines.tolist(), first_line.tolist(), values.tolist(), strict=True):
        if line != first:
            problems.add(line, Text(N_("duplicate {key} {value}: already on line {line}"), key=label, value=shown(value),
                                    line=first))
