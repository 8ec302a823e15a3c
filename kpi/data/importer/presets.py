"""The exports shops actually have, read as they are (``kpibot import FILE --format NAME``).

- ``online-retail``: the UCI Online Retail and Online Retail II line-item format (InvoiceNo or Invoice,
  StockCode, Description, Quantity, InvoiceDate, UnitPrice or Price, CustomerID or Customer ID,
  Country): one row per product line, credit notes ("C536379") and negative lines loaded as returns,
  empty customer ids as guest orders. The data sets are in pounds sterling: GBP unless a currency is
  given.
- ``woocommerce-orders``: the WooCommerce "Customer / Order / Coupon Export" orders CSV, in its default
  one-row-per-item format (order_id, order_number, order_date, status, shipping_total, tax_total,
  discount_total, refunded_total, order_currency, customer_id, billing_email, billing_country,
  shipping_country, item_quantity, item_total, item_refunded_qty...): the lines' ``item_total`` (after
  discounts, before tax) make the subtotal; statuses completed, processing, on-hold and refunded are
  placed orders, cancelled, failed and pending (not paid) are cancelled; ``refunded_total`` is a return
  ``<order>:refund`` (the export has no refund date: the order's); a guest (customer_id 0) is the hash
  of their billing e-mail when there is one, else a guest order. WooCommerce's own Analytics → Orders
  download (Date, Order #, Status, Customer, Customer type, Product(s), Items sold, Coupon(s), Net
  sales) is read too: one row per order, Net sales as the subtotal, a negative row (a refund) a return.
- ``ga4-traffic``: a Google Analytics 4 report or exploration exported as CSV (its ``#`` comment lines
  skipped): Date (YYYYMMDD), Session default channel group, Device category, Country, Sessions, Total
  users, Add to carts.
- ``shopify-orders``: Shopify's admin orders export (kpi.data.importer.shopify).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from kpi.data.messages import Text, refusal
from kpi.errors import BadRow
from kpi.i18n import N_, trn

from .lines import RETURN_FIELDS
from .reading import RawFile
from .shopify import customer_key
from .specs import LINE, norm
from .values import Problems, shown, status_key

ONLINE_RETAIL = {  # field → the column names of the two versions of the data set
    "order_id": ("InvoiceNo", "Invoice"),
    "quantity": ("Quantity",),
    "placed_at": ("InvoiceDate",),
    "unit_price": ("UnitPrice", "Price"),
    "customer_id": ("CustomerID", "Customer ID"),
    "country": ("Country",),
}
GA4 = {
    "day": ("Date",),
    "channel": ("Session default channel group", "Session primary channel group", "Default channel group",
                "First user default channel group", "Session source / medium"),
    "device": ("Device category",),
    "country": ("Country",),
    "sessions": ("Sessions",),
    "visitors": ("Total users", "Active users", "Users"),
    "carts": ("Add to carts", "Add-to-carts"),
}
_WC_CANCELLED = {"cancelled", "failed", "pending", "checkout_draft", "trash"}
_WC_REQUIRED = ("order_date", "status", "item_total")


def _find(raw: RawFile, names: tuple[str, ...]) -> int | None:
    normed = [norm(h) for h in raw.header]
    for name in names:
        if norm(name) in normed:
            return normed.index(norm(name))
    return None


def _missing(raw: RawFile, wanted: dict[str, tuple[str, ...]], required: list[str], what: Text) -> None:
    missing = [wanted[f][0] for f in required if _find(raw, wanted[f]) is None]
    if missing:
        raise refusal(
            path=raw.path,
            bad_rows=[BadRow(1, Text(lambda lang: trn(lang, "missing column {columns}", "missing columns {columns}",
                                                      len(missing), columns=", ".join(missing))))],
            reason=what,
        )


def online_retail_map(raw: RawFile) -> dict[str, str]:
    """The --map that reads an Online Retail file as a line-item orders file."""
    _missing(raw, ONLINE_RETAIL, ["order_id", "quantity", "placed_at", "unit_price", "customer_id"],
             Text(N_("this is not an Online Retail export (InvoiceNo, Quantity, InvoiceDate, UnitPrice, "
                     "CustomerID, Country)")))
    return {raw.header[i]: f for f, names in ONLINE_RETAIL.items() if (i := _find(raw, names)) is not None}


def ga4_map(raw: RawFile) -> tuple[dict[str, str], np.ndarray]:
    """The --map that reads a GA4 export as a traffic file, and the rows to keep (not the totals row)."""
    _missing(raw, GA4, ["day", "sessions", "visitors"],
             Text(N_("this is not a Google Analytics 4 export (Date, Sessions, Total users)")))
    mapping = {raw.header[i]: f for f, names in GA4.items() if (i := _find(raw, names)) is not None}
    first = raw.columns[0].str.casefold() if raw.columns else pd.Series([], dtype="str")
    keep = ~first.isin(["grand total", "total", "totals"]).to_numpy()
    return mapping, keep


def keep_rows(raw: RawFile, keep: np.ndarray) -> RawFile:
    if keep.all():
        return raw
    return RawFile(raw.path, raw.header, [c[keep].reset_index(drop=True) for c in raw.columns], raw.lines[keep],
                   raw.encoding, raw.delimiter, raw.notes)


def woocommerce(raw: RawFile) -> tuple[RawFile, Callable[[pd.DataFrame, Problems], pd.DataFrame] | None, bool]:
    """A WooCommerce export as a canonical orders file, the refunds it holds (a function of the typed
    orders, for load_raw's ``more_returns``), and whether its rows are product lines. The extension's
    export has a row per item; WooCommerce's own Analytics → Orders download (Date, Order #, Status,
    Customer, Customer type, Product(s), Items sold, Coupon(s), Net sales) a row per order."""
    have = {norm(h): i for i, h in reversed(list(enumerate(raw.header)))}
    if {"order_#", "net_sales", "date"} <= set(have):
        return _woocommerce_analytics(raw, have), None, False
    missing = [c for c in _WC_REQUIRED if c not in have] + ([] if "order_number" in have or "order_id" in have
                                                            else ["order_id"])
    if missing:
        raise refusal(
            path=raw.path,
            bad_rows=[BadRow(1, Text(lambda lang: trn(lang, "missing column {columns}", "missing columns {columns}",
                                                      len(missing), columns=", ".join(missing))))],
            reason=Text(N_("this is not a WooCommerce orders export (Customer / Order / Coupon Export, one row "
                           "per item)")),
        )
    n = raw.n_rows
    empty = pd.Series([""] * n, dtype="str")

    def col(name: str) -> pd.Series:
        i = have.get(name)
        return raw.columns[i] if i is not None else empty

    order = col("order_number") if "order_number" in have else col("order_id")
    order = order.where(order != "", col("order_id"))
    status_words = col("status").map(status_key)
    status = np.where(status_words.isin(_WC_CANCELLED).to_numpy(), "cancelled", "placed")
    account = col("customer_id")
    email = col("billing_email")
    customer = [
        a if a not in ("", "0") else (customer_key(e) if e else "")
        for a, e in zip(account.tolist(), email.tolist(), strict=True)
    ]
    country = col("shipping_country").where(col("shipping_country") != "", col("billing_country"))
    columns = {
        "order_id": order,
        "customer_id": pd.Series(customer, dtype="str"),
        "placed_at": col("order_date"),
        "status": pd.Series(status, dtype="str"),
        "line_total": col("item_total"),
        "quantity": col("item_quantity") if "item_quantity" in have else pd.Series(["1"] * n, dtype="str"),
        "discount": col("discount_total"),
        "shipping": col("shipping_total"),
        "tax": col("tax_total"),
        "country": country,
    }
    if "order_currency" in have:
        columns["currency"] = col("order_currency")
    canonical = RawFile(raw.path, list(columns), list(columns.values()), raw.lines, raw.encoding, raw.delimiter,
                        raw.notes)
    refunded_text = col("refunded_total")
    refunded_qty_text = col("item_refunded_qty")
    lines = raw.lines

    def refunds(orders: pd.DataFrame, problems: Problems) -> pd.DataFrame:
        refunded = pd.to_numeric(refunded_text.replace("", "0"), errors="coerce").to_numpy()
        for i in np.flatnonzero(np.isnan(refunded)).tolist():
            problems.add(int(lines[i]), Text(N_("refunded_total {value} is not a number"),
                                             value=shown(refunded_text.iat[i])))
        qty = np.abs(np.nan_to_num(pd.to_numeric(refunded_qty_text.replace("", "0"), errors="coerce").to_numpy()))
        ids = order.to_numpy()
        per_order = pd.DataFrame({"order_id": ids, "refunded": np.nan_to_num(refunded), "qty": qty})
        g = per_order.groupby("order_id", sort=False)
        amount = g["refunded"].max()
        items = g["qty"].sum()
        o = orders[(orders["status"] != "cancelled").to_numpy()].copy()
        o["amount"] = o["order_id"].map(amount).fillna(0.0).to_numpy()
        o = o[(o["amount"] > 0).to_numpy()]
        return pd.DataFrame({
            "return_id": (o["order_id"] + ":refund").to_numpy(),
            "order_id": o["order_id"].to_numpy(),
            "returned_at": o["placed_at"].to_numpy(),
            "amount": np.round(o["amount"].to_numpy(dtype=float), 2),
            "items": np.maximum(o["order_id"].map(items).fillna(0).to_numpy(), 1).astype(np.int64),
            "channel": o["channel"].to_numpy(),
            "device": o["device"].to_numpy(),
            "country": o["country"].to_numpy(),
            "customer_id": o["customer_id"].to_numpy(),
            LINE: o[LINE].to_numpy(),
        })[RETURN_FIELDS + [LINE]]

    return canonical, refunds, True


def _woocommerce_analytics(raw: RawFile, have: dict[str, int]) -> RawFile:
    """The Analytics orders report: Net sales (after coupons, before tax and shipping) is the subtotal; the
    report names customers but has no id: a customer is the hash of their name, an empty one a guest."""
    n = raw.n_rows
    empty = pd.Series([""] * n, dtype="str")

    def col(name: str) -> pd.Series:
        i = have.get(name)
        return raw.columns[i] if i is not None else empty

    status_words = col("status").map(status_key)
    customer = [customer_key(c) if c else "" for c in col("customer").tolist()]
    columns = {
        "order_id": col("order_#"),
        "customer_id": pd.Series(customer, dtype="str"),
        "placed_at": col("date"),
        "status": pd.Series(np.where(status_words.isin(_WC_CANCELLED).to_numpy(), "cancelled", "placed"),
                            dtype="str"),
        "subtotal": col("net_sales"),
    }
    return RawFile(raw.path, list(columns), list(columns.values()), raw.lines, raw.encoding, raw.delimiter,
                   raw.notes)
