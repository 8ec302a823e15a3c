"""Shopify's admin orders export (Orders → Export → CSV) read into orders, customers and returns.

The export has one line per line item; the order's own columns (Financial Status, Subtotal, Shipping,
Taxes, Total, Discount Amount, Refunded Amount, Cancelled at, Source, addresses...) are filled on the
first line of each order only. What is taken:

- ``order_id`` = Name ("#1001"); ``placed_at`` = Created at ("2026-10-01 12:34:56 +0200");
- ``status`` = cancelled when Cancelled at is set or Financial Status is voided, else placed;
- ``subtotal`` = Subtotal (Shopify's is after discounts, before shipping and tax). For a shop whose
  prices include tax, Shopify's Subtotal includes it (then Total = Subtotal + Shipping): such an order
  is recognised by its Total and its Taxes are taken out of the subtotal — all of them, so tax on
  shipping, if any, is taken from the items too (the export does not split it);
- ``discount`` = Discount Amount, ``shipping`` = Shipping, ``tax`` = Taxes, ``currency`` = Currency;
- ``channel`` = Source (web, pos, shopify_draft_order, an app id...; empty → unknown), ``device``
  unknown (the export does not say), ``country`` = Shipping Country, else Billing Country, else ZZ;
- ``customer_id``: a "Customer ID" column when the export has one; else the first 16 hex digits of
  the SHA-256 of the lower-cased Email (stable, and no e-mail address is stored); else of the Phone;
  else the order is a guest order: no customer (counted in orders and revenue, not in customer KPIs).
- Refunded Amount > 0 on an order that is not cancelled gives a return ``<Name>:refund`` of that
  amount, with ``items`` = the order's quantity of line items when it is fully refunded (Financial
  Status refunded, or refunded ≥ Total), else 1. The export has no refund date: ``returned_at`` is the
  order's Created at (a "Refunded at" column is used when present). A refund on a cancelled order is
  a cancellation, not a return.
"""

from __future__ import annotations

import hashlib
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kpi.data.messages import Text, refusal
from kpi.errors import BadRow
from kpi.i18n import N_, trn

from .reading import RawFile
from .specs import LINE, SPECS, Prepared, date_columns, norm, number_columns
from .tables import prepare
from .values import Conventions, DateColumn, NumberColumn, Problems, parse_datetimes, parse_numbers, shown

REQUIRED = ["Name", "Created at", "Subtotal"]
OPTIONAL = [
    "Email",
    "Phone",
    "Customer ID",
    "Financial Status",
    "Currency",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Amount",
    "Lineitem quantity",
    "Refunded Amount",
    "Cancelled at",
    "Source",
    "Shipping Country",
    "Billing Country",
    "Refunded at",
]


def customer_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:16]


def prepare_shopify(
    raw: RawFile,
    *,
    tz: ZoneInfo,
    currency: str | None,
    problems: Problems,
    general: list[Text],
    notes: list[Text],
    currency_explicit: bool = True,
) -> tuple[Prepared, pd.DataFrame, list[str]]:
    """The orders (prepared like a canonical orders file) and returns of a Shopify export, and the
    columns that were not used."""
    by_norm: dict[str, int] = {}
    for i, h in enumerate(raw.header):
        by_norm.setdefault(norm(h), i)
    missing = [c for c in REQUIRED if norm(c) not in by_norm]
    if missing:
        raise refusal(
            path=raw.path,
            bad_rows=[BadRow(1, Text(lambda lang: trn(lang, "missing column {columns}", "missing columns {columns}",
                                                      len(missing), columns=", ".join(missing))))],
            reason=Text(N_("this is not a Shopify orders export (Shopify admin → Orders → Export → CSV)")),
        )
    used = {by_norm[norm(c)] for c in REQUIRED + OPTIONAL if norm(c) in by_norm}
    ignored = [h for i, h in enumerate(raw.header) if i not in used and h]
    n = raw.n_rows
    empty = pd.Series([""] * n, dtype="str")

    def col(name: str) -> pd.Series:
        i = by_norm.get(norm(name))
        return raw.columns[i] if i is not None else empty

    lines = raw.lines
    name = col("Name")
    problems.flag_rows(
        np.flatnonzero((name == "").to_numpy()), lines, lambda _i: Text(N_("Name (the order number) is empty"))
    )
    first = (~name.duplicated() & (name != "")).to_numpy()
    # a second line of an order that carries the order's own columns again: the order is in the file twice
    order_fields = (col("Subtotal") != "") | (col("Financial Status") != "")
    again = (~first & (name != "") & order_fields).to_numpy()
    first_line = pd.Series(lines[first], index=name[first].to_numpy())
    for i in np.flatnonzero(again):
        problems.add(
            int(lines[i]),
            Text(N_("order {order} is in the file twice: already on line {line}"), order=shown(name.iat[i]),
                 line=int(first_line[name.iat[i]])),
        )

    o = np.flatnonzero(first)
    olines = lines[o]

    def at(s: pd.Series) -> pd.Series:
        return s.iloc[o].reset_index(drop=True)

    order_id = at(name)
    cancelled = (at(col("Cancelled at")) != "") | (at(col("Financial Status")).str.lower() == "voided")
    country = at(col("Shipping Country")).where(at(col("Shipping Country")) != "", at(col("Billing Country")))

    # the customer: an id when the export has one, else a hash of the e-mail (any line of the order)
    email = col("Email").groupby(name).transform("max") if "email" in by_norm else empty
    phone = col("Phone").groupby(name).transform("max") if "phone" in by_norm else empty
    cid, em, ph = at(col("Customer ID")), at(email), at(phone)
    customer = [
        c
        if c
        else customer_key(e)
        if e
        else customer_key("".join(ch for ch in p if ch.isdigit() or ch == "+"))
        if p
        else ""  # a guest order: no customer
        for c, e, p in zip(cid.tolist(), em.tolist(), ph.tolist(), strict=True)
    ]

    columns = {
        "order_id": order_id,
        "customer_id": pd.Series(customer, dtype="str"),
        "placed_at": at(col("Created at")),
        "status": pd.Series(np.where(cancelled.to_numpy(), "cancelled", "placed"), dtype="str"),
        "subtotal": at(col("Subtotal")),
        "channel": at(col("Source")),
        "country": country,
    }
    for field, source in (
        ("discount", "Discount Amount"),
        ("shipping", "Shipping"),
        ("tax", "Taxes"),
        ("currency", "Currency"),
    ):
        if norm(source) in by_norm:
            columns[field] = at(col(source))
    spec = SPECS["orders"]
    numbers = number_columns(spec, columns, olines)
    extra = {
        "Total": NumberColumn("Total", at(col("Total")), olines),
        "Refunded Amount": NumberColumn("Refunded Amount", at(col("Refunded Amount")), olines),
        "Lineitem quantity": NumberColumn("Lineitem quantity", col("Lineitem quantity"), lines),
    }
    dates = date_columns(spec, columns, olines)
    refunded_at = DateColumn("Refunded at", at(col("Refunded at")), olines)
    conv = Conventions.detect(numbers + list(extra.values()), dates + [refunded_at], problems)
    prepared = prepare(
        raw.path,
        spec,
        columns,
        olines,
        tz=tz,
        currency=currency,
        problems=problems,
        general=general,
        conventions=conv,
        numbers=numbers,
        dates=dates,
        currency_explicit=currency_explicit,
    )
    frame = prepared.frame
    total = parse_numbers(extra["Total"], conv, problems, default=np.nan)
    refunded = parse_numbers(extra["Refunded Amount"], conv, problems, default=0.0)
    quantity = parse_numbers(extra["Lineitem quantity"], conv, problems, default=1, integer=True)
    refund_day = parse_datetimes(refunded_at, conv, problems, tz=tz, required=False)

    # prices that include tax: Total = Subtotal + Shipping, and the Taxes are inside the Subtotal
    sub, ship, tax = frame["subtotal"].to_numpy(), frame["shipping"].to_numpy(), frame["tax"].to_numpy()
    known = ~np.isnan(total)
    inclusive = (
        known & (tax > 0) & (np.abs(sub + ship - total) < 0.011) & (np.abs(sub + ship + tax - total) >= 0.011)
    )
    if inclusive.any():
        frame.loc[inclusive, "subtotal"] = np.round(sub[inclusive] - tax[inclusive], 2)
        k = int(inclusive.sum())
        notes.append(Text(lambda lang: trn(
            lang, "{n} order with prices including tax: the tax was taken out of the subtotal",
            "{n} orders with prices including tax: the tax was taken out of the subtotal", k)))

    # returns from refunds
    qty_per_order = pd.Series(quantity).groupby(name.to_numpy()).sum()
    full = (at(col("Financial Status")).str.lower() == "refunded").to_numpy() | (
        known & (refunded >= total - 0.005)
    )
    is_return = (refunded > 0) & ~frame["status"].eq("cancelled").to_numpy()
    returned_at = np.where(np.isnat(refund_day), frame["placed_at"].to_numpy(), refund_day)
    items = np.where(full, order_id.map(qty_per_order).fillna(1).to_numpy(dtype=np.int64), 1)
    returns = pd.DataFrame(
        {
            "return_id": (order_id + ":refund")[is_return].to_numpy(),
            "order_id": order_id[is_return].to_numpy(),
            "returned_at": returned_at[is_return],
            "amount": refunded[is_return],
            "items": items[is_return],
            # the return's own dimensions: its order's
            "channel": frame["channel"].to_numpy()[is_return],
            "device": frame["device"].to_numpy()[is_return],
            "country": frame["country"].to_numpy()[is_return],
            "customer_id": frame["customer_id"].to_numpy()[is_return],
            LINE: olines[is_return],
        }
    )
    limit = SPECS["returns"].max_len("return_id") or 64
    long = np.flatnonzero([len(r) > limit for r in returns["return_id"].tolist()])
    rlines = returns[LINE].to_numpy()
    problems.flag_rows(
        long, rlines, lambda i: Text(N_("Name {value} is too long for a return id"), value=shown(returns["order_id"].iat[i]))
    )
    return prepared, returns, ignored
