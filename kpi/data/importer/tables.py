"""The canonical tables as the importer sees them: which fields a file must or may have, how each
is converted, and the checks that span fields or lines (natural keys, currency, opens ≤ delivered)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Table

from kpi.data import schema
from kpi.data.messages import Text, joined, refusal
from kpi.errors import BadRow
from kpi.i18n import N_, tr, trn

from .values import (
    Column,
    Conventions,
    DateColumn,
    NumberColumn,
    Problems,
    normalise_currency,
    parse_country,
    parse_datetimes,
    parse_numbers,
    parse_status,
    parse_text,
    shown,
)

LINE = "_line"  # the column of a prepared frame that holds each row's file line


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # id, dim, country, currency, status, money, count, timestamp, day
    required: bool = False
    default: Any = None  # for an absent column or an empty value (None and not required: NULL)
    stored: bool = True  # False: checked but not stored (a currency column in a returns file)


@dataclass(frozen=True)
class TableSpec:
    table: Table
    key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def stored(self) -> list[str]:
        return [f.name for f in self.fields if f.stored]

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def max_len(self, name: str) -> int | None:
        return getattr(self.table.c[name].type, "length", None)


def _f(name: str, kind: str, required: bool = False, default: Any = None, stored: bool = True) -> FieldSpec:
    return FieldSpec(name, kind, required, default, stored)


_CHECKED_CURRENCY = _f("currency", "currency", stored=False)

SPECS: dict[str, TableSpec] = {
    s.name: s
    for s in [
        TableSpec(
            schema.orders,
            ("order_id",),
            (
                _f("order_id", "id", True),
                _f("customer_id", "id", True),
                _f("placed_at", "timestamp", True),
                _f("status", "status", default="placed"),
                _f("subtotal", "money", True),
                _f("discount", "money", default=0.0),
                _f("shipping", "money", default=0.0),
                _f("tax", "money", default=0.0),
                _f("currency", "currency"),
                _f("channel", "dim", default="unknown"),
                _f("device", "dim", default="unknown"),
                _f("country", "country", default="ZZ"),
            ),
        ),
        TableSpec(
            schema.returns,
            ("return_id",),
            (
                _f("return_id", "id", True),
                _f("order_id", "id", True),
                _f("returned_at", "timestamp", True),
                _f("amount", "money", True),
                _f("items", "count", default=1),
                _CHECKED_CURRENCY,
            ),
        ),
        TableSpec(
            schema.customers,
            ("customer_id",),
            (
                _f("customer_id", "id", True),
                _f("first_order_at", "timestamp"),
                _f("acquisition_channel", "dim", default="unknown"),
                _f("country", "country", default="ZZ"),
            ),
        ),
        TableSpec(
            schema.traffic,
            ("day", "channel", "device", "country"),
            (
                _f("day", "day", True),
                _f("channel", "dim", default="unknown"),
                _f("device", "dim", default="unknown"),
                _f("country", "country", default="ZZ"),
                _f("sessions", "count", True),
                _f("visitors", "count", True),
                _f("carts", "count", default=0),
            ),
        ),
        TableSpec(
            schema.marketing_spend,
            ("day", "channel"),
            (
                _f("day", "day", True),
                _f("channel", "dim", default="unknown"),
                _f("amount", "money", True),
                _CHECKED_CURRENCY,
            ),
        ),
        TableSpec(
            schema.email_campaigns,
            ("campaign_id",),
            (
                _f("campaign_id", "id", True),
                _f("sent_at", "timestamp", True),
                _f("delivered", "count", True),
                _f("unique_opens", "count", True),
                _f("clicks", "count", default=0),
            ),
        ),
    ]
}


def norm(name: str) -> str:
    """How column names are compared: case-insensitive, surrounding spaces stripped, inner runs of
    spaces, '-' and '_' equal (so "Order ID" is order_id)."""
    return re.sub(r"[\s_\-]+", "_", name.strip().casefold()).strip("_")


def match_columns(
    path: str, header: list[str], spec: TableSpec, column_map: dict[str, str] | None
) -> tuple[dict[str, int], list[str]]:
    """Which file column holds each field (by index), and the columns left unused."""
    fields = {f.name for f in spec.fields}
    problems: list[Text] = []
    assign: dict[str, int] = {}
    normed = [norm(h) for h in header]
    for file_col, target in (column_map or {}).items():
        target_n = norm(target)
        if target_n not in fields:
            problems.append(Text(N_("--map {column}={field}: {table} has no field {name} (fields: {fields})"),
                                 column=file_col, field=target, table=spec.name, name=repr(target),
                                 fields=", ".join(sorted(fields))))
            continue
        hits = [i for i, h in enumerate(header) if h.casefold() == file_col.strip().casefold()]
        hits = hits or [i for i, h in enumerate(normed) if h == norm(file_col)]
        if not hits:
            problems.append(Text(N_("--map {column}={field}: the file has no column {name}"), column=file_col,
                                 field=target, name=repr(file_col)))
        elif len(hits) > 1:
            problems.append(Text(N_("--map {column}={field}: the file has {n} columns named {name}"), column=file_col,
                                 field=target, n=len(hits), name=repr(file_col)))
        elif target_n in assign:
            problems.append(Text(N_("--map: two columns are mapped to {field}"), field=target_n))
        else:
            assign[target_n] = hits[0]
    used = set(assign.values())
    conflicting = set()
    for f in spec.fields:
        if f.name in assign:
            continue
        hits = [i for i, h in enumerate(normed) if h == f.name and i not in used]
        if len(hits) > 1:
            conflicting.add(f.name)
            names = [repr(header[i]) for i in hits]
            problems.append(Text(N_("columns {columns} both mean {field} (--map one of them to {field})"),
                                 columns=Text(lambda lang, names=names: tr(lang, " and ").join(names)), field=f.name))
        elif hits:
            assign[f.name] = hits[0]
            used.add(hits[0])
    missing = [
        f.name for f in spec.fields if f.required and f.name not in assign and f.name not in conflicting
    ]
    if missing:
        found = ", ".join(repr(h) for h in header if h)
        problems.append(Text(lambda lang: trn(
            lang, "missing required column {columns} (the file has: {found}; --map FILE_COLUMN=FIELD names a "
            "column differently)", "missing required columns {columns} (the file has: {found}; --map "
            "FILE_COLUMN=FIELD names a column differently)", len(missing),
            columns=", ".join(missing), found=found or tr(lang, "none"))))
    if problems:
        raise refusal(
            path=path,
            bad_rows=[BadRow(1, joined(problems))],
            reason=Text(N_("the header does not fit {table}"), table=spec.name),
        )
    ignored = [h for i, h in enumerate(header) if i not in used and h]
    return assign, ignored


@dataclass
class Prepared:
    frame: pd.DataFrame  # typed values of every stored field, plus LINE
    present: list[str]  # the stored fields the file gives (the others got their defaults)
    currency: str | None  # the currency of the amounts (the file's, or the shop's when it has none)


def number_columns(spec: TableSpec, columns: dict[str, pd.Series], lines: np.ndarray) -> list[NumberColumn]:
    return [
        NumberColumn(f.name, columns[f.name], lines)
        for f in spec.fields
        if f.kind in ("money", "count") and f.name in columns
    ]


def date_columns(spec: TableSpec, columns: dict[str, pd.Series], lines: np.ndarray) -> list[DateColumn]:
    return [
        DateColumn(f.name, columns[f.name], lines)
        for f in spec.fields
        if f.kind in ("timestamp", "day") and f.name in columns
    ]


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
) -> Prepared:
    """Convert and check the text ``columns`` (field → stripped strings) of ``spec``'s table; bad lines
    go to ``problems``, file-wide reasons to ``general``."""
    n = len(lines)
    numbers = numbers if numbers is not None else number_columns(spec, columns, lines)
    dates = dates if dates is not None else date_columns(spec, columns, lines)
    conv = conventions or Conventions.detect(numbers, dates, problems)
    typed_columns: dict[str, Column] = {c.name: c for c in numbers + dates}
    out: dict[str, Any] = {}
    for f in spec.fields:
        if f.kind == "currency":
            continue
        if f.name not in columns:
            out[f.name] = _constant(f, n)
            continue
        col = typed_columns.get(f.name) or Column(f.name, columns[f.name], lines)
        if f.kind in ("id", "dim"):
            out[f.name] = parse_text(
                col,
                problems,
                max_len=spec.max_len(f.name),
                default=None if f.required else f.default,
                lower=f.kind == "dim",
            )
        elif f.kind == "country":
            out[f.name] = parse_country(col, problems)
        elif f.kind == "status":
            out[f.name] = parse_status(col, problems)
        elif f.kind in ("money", "count"):
            out[f.name] = parse_numbers(
                col, conv, problems, default=None if f.required else f.default, integer=f.kind == "count"
            )
        else:
            out[f.name] = parse_datetimes(
                col, conv, problems, tz=tz, required=f.required, day=f.kind == "day"
            )
    frame = pd.DataFrame(out)
    frame[LINE] = lines
    currency_col = Column("currency", columns["currency"], lines) if "currency" in columns else None
    file_currency = _currency(path, spec, currency_col, currency, problems, general)
    stores_currency = spec.field("currency") is not None and spec.field("currency").stored
    if stores_currency:
        frame["currency"] = file_currency or ""
    _check_keys(spec, frame, problems)
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
    return Prepared(frame[spec.stored + [LINE]], present, file_currency)


def _constant(f: FieldSpec, n: int):
    if f.kind == "timestamp":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if f.kind == "money":
        return np.full(n, float(f.default or 0.0))
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
) -> str | None:
    """The one currency of the file's amounts; mixed currencies are refused line by line."""
    if shop is not None and normalise_currency(shop) is None:
        raise refusal(path=path, reason=Text(N_("{value} is not a currency code (ISO 4217: EUR, USD, ...)"),
                                                   value=repr(shop)))
    shop = normalise_currency(shop) if shop else None
    if col is None:
        if spec.name == "orders" and shop is None:
            raise refusal(
                path=path,
                bad_rows=[BadRow(1, Text(N_("no currency column")))],
                reason=Text(N_("the file has no currency column: give the shop currency (KPIBOT_CURRENCY)")),
            )
        return shop
    codes = [normalise_currency(u) if u else shop for u in col.uniques]
    bad = np.array([c is None for c in codes], dtype=bool)
    empty = np.array([u == "" for u in col.uniques], dtype=bool)
    col.flag(
        problems,
        bad & ~empty,
        lambda v: Text(N_("currency {value} is not a currency code (ISO 4217: EUR, USD, ...)"), value=shown(v)),
    )
    col.flag(problems, bad & empty, lambda v: Text(N_("currency is empty (and no shop currency was given)")))
    per_code: dict[str, int] = {}
    for code, count in zip(codes, col.counts.tolist(), strict=True):
        if code is not None:
            per_code[code] = per_code.get(code, 0) + count
    if not per_code:
        return shop
    main = max(per_code, key=lambda c: per_code[c])
    if len(per_code) > 1:
        is_main = np.array([c == main for c in codes], dtype=bool)
        first_line = int(col.lines[int(np.flatnonzero(is_main[col.codes])[0])])
        col.flag_index(
            problems,
            ~is_main & ~bad,
            lambda i: Text(
                N_("currency {code} differs from {main} (line {line} and {n} more): one file, one currency"),
                code=codes[i], main=main, line=first_line, n=per_code[main] - 1,
            ),
        )
    if shop and main != shop:
        general.append(Text(N_("the file's amounts are in {file} but the shop currency is {shop}"), file=main, shop=shop))
    return main


def _check_keys(spec: TableSpec, frame: pd.DataFrame, problems: Problems) -> None:
    key = list(spec.key)
    valid = np.ones(len(frame), dtype=bool)
    for k in key:
        col = frame[k]
        valid &= col.notna().to_numpy() & (col != "").to_numpy()
    sub = frame.loc[valid, key + [LINE]]
    dup = sub.duplicated(key, keep=False).to_numpy()
    if not dup.any():
        return
    d = sub[dup]
    first_line = d.groupby(key, sort=False)[LINE].transform("min").to_numpy()
    lines = d[LINE].to_numpy()
    values = d[key].astype(str).agg(", ".join, axis=1).to_numpy() if len(key) > 1 else d[key[0]].to_numpy()
    label = spec.key[0] if len(key) == 1 else "(" + ", ".join(key) + ")"
    for line, first, value in zip(lines.tolist(), first_line.tolist(), values.tolist(), strict=True):
        if line != first:
            problems.add(line, Text(N_("duplicate {key} {value}: already on line {line}"), key=label, value=shown(value),
                                    line=first))
