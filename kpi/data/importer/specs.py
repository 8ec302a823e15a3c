"""The canonical tables as the importer sees them: which fields a file must or may have, and how each is
matched and converted (kpi.data.importer.tables prepares a file's rows with them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Table

from kpi.data import schema

from .values import DateColumn, NumberColumn

LINE = "_line"  # the column of a prepared frame that holds each row's file line


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # id, dim, country, currency, status, money, count, timestamp, day
    required: bool = False
    default: Any = None  # for an absent column or an empty value (None and not required: NULL)
    stored: bool = True  # False: read but not stored as such (a currency column in a returns file, line fields)
    nullable: bool = False  # a required column whose empty values are NULL (a guest order's customer_id)
    signed: bool = False  # negative numbers allowed (line amounts, credit notes)
    decimals: int | None = 2  # money rounded to cents when read; None: as written (rounded after summing)


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


def _f(name: str, kind: str, required: bool = False, default: Any = None, stored: bool = True,
       **kw: Any) -> FieldSpec:
    return FieldSpec(name, kind, required, default, stored, **kw)


# ids that spreadsheets turn into floats ("15240.0"): normalised to the integer they stand for
NORMALISED_IDS = frozenset({"order_id", "customer_id", "return_id", "original_order_id"})
# the fields of one product line of a line-item orders file (not stored: they make the order's subtotal)
LINE_FIELDS = ("quantity", "unit_price", "line_total")


_CHECKED_CURRENCY = _f("currency", "currency", stored=False)

SPECS: dict[str, TableSpec] = {
    s.name: s
    for s in [
        TableSpec(
            schema.orders,
            ("order_id",),
            (
                _f("order_id", "id", True),
                _f("customer_id", "id", True, nullable=True),  # empty: a guest order
                _f("placed_at", "timestamp", True),
                _f("status", "status", default="placed"),
                _f("subtotal", "money", True, signed=True),  # negative: a credit note, loaded as a return
                _f("discount", "money", default=0.0),
                _f("shipping", "money", default=0.0),
                _f("tax", "money", default=0.0),
                _f("currency", "currency"),
                _f("channel", "dim", default="unknown"),
                _f("device", "dim", default="unknown"),
                _f("country", "country", default="ZZ"),
                # line-item files (one row per product line): the line's amount
                _f("quantity", "money", default=np.nan, stored=False, signed=True, decimals=None),
                _f("unit_price", "money", default=np.nan, stored=False, signed=True, decimals=None),
                _f("line_total", "money", default=np.nan, stored=False, signed=True, decimals=None),
                # credit notes: the order a credit note refunds, and a column saying a row is one
                _f("original_order_id", "id", default="", stored=False),
                _f("type", "dim", default="", stored=False),
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
                # the return's own dimensions; absent: its order's (looked up when imported)
                _f("channel", "dim", default="unknown"),
                _f("device", "dim", default="unknown"),
                _f("country", "country", default="ZZ"),
                _f("customer_id", "id", nullable=True),
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


@dataclass
class Prepared:
    frame: pd.DataFrame  # typed values of every stored field, plus LINE
    present: list[str]  # the stored fields the file gives (the others got their defaults)
    currency: str | None  # the currency of the amounts (the file's, or the shop's when it has none)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # fields read but not stored (line fields)
    unknown_countries: dict[str, int] = field(default_factory=dict)  # country as written → lines
    currency_column: bool = False  # the file has a currency column


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
