"""Orders files as real exports write them: one row per product line, credit notes and negative lines
among the orders, guests without a customer id.

- A line-item file (``lines=True``) has one row per product line, the order's fields repeated on each.
  A line's amount is ``line_total``, else ``quantity × unit_price``; an order's subtotal is the sum of
  its lines' amounts, rounded to cents after summing. The order's own fields (customer, time, status,
  channel, device, country, subtotal when the file gives it per order) must be the same on every line
  of the order: a line that differs is a bad line naming the order's first line. Discount, shipping and
  tax are the order's, taken once: the first line that has a value.
- A credit note becomes a return: an order id written like a credit note (a ``C`` followed by digits,
  as in UCI's Online Retail exports: "C536379"), a status or ``type`` that says refund / credit note,
  or a line with a negative quantity or amount. A credit note's lines make one return whose id is the
  credit note's; a negative line inside an order is a return of its own, ``<order_id>:return:<n>``. The
  return's order is ``original_order_id`` when the file gives one, else the credit note's id (or the
  order's); its time is the credit note's, its amount and items the absolute values of the sums, and
  its dimensions (channel, device, country, customer) those of its own line.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from kpi.data.messages import Text
from kpi.i18n import N_

from .reading import RawFile, concat_raw
from .specs import LINE, SPECS, Prepared
from .tables import id_hashes
from .values import CREDIT, CREDIT_WORDS, Problems, shown, status_key

# fields an order's lines must agree on (besides subtotal when the file gives it per order)
ORDER_FIELDS = ("customer_id", "placed_at", "status", "channel", "device", "country")
ONCE_FIELDS = ("discount", "shipping", "tax")  # the order's, on its first line that has a value
RETURN_FIELDS = ["return_id", "order_id", "returned_at", "amount", "items", "channel", "device", "country",
                 "customer_id"]
_CREDIT_ID = r"C\d+"


def has_line_amounts(fields: set[str]) -> bool:
    return "line_total" in fields or {"quantity", "unit_price"} <= fields


def split_orders(
    prepared: Prepared,
    raw_text: dict[str, pd.Series],
    *,
    lines: bool,
    problems: Problems,
    numbered: bool | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The orders (one row per order, the spec's stored fields and LINE) and the returns (RETURN_FIELDS
    and LINE) of a prepared orders file. ``raw_text``: the text of the discount, shipping and tax columns
    the file has (to tell an empty value from a 0). ``numbered``: whether the file (all its chunks) has
    plain-number order ids; None: this frame's ids tell."""
    f = prepared.frame.reset_index(drop=True)
    x = prepared.extra
    n = len(f)
    row_lines = f[LINE].to_numpy()
    order_id = f["order_id"].astype(object).to_numpy()
    qty = x.get("quantity")
    if lines and has_line_amounts(set(x)):
        amount = np.full(n, np.nan)
        if "line_total" in x:
            amount = x["line_total"].astype(float).copy()
        if qty is not None and "unit_price" in x:
            product = qty.astype(float) * x["unit_price"].astype(float)
            amount = np.where(np.isnan(amount), product, amount)
        for i in np.flatnonzero(np.isnan(amount)).tolist():
            problems.add(int(row_lines[i]), Text(N_("the line has no amount: line_total, or quantity and "
                                                    "unit_price, are empty")))
        amount = np.nan_to_num(amount)
    else:
        amount = f["subtotal"].to_numpy(dtype=float)

    ids = pd.Series(order_id, dtype=object).fillna("")
    # "C536379" is a credit note where invoices are plain numbers (UCI's Online Retail); in a shop whose
    # order numbers are all written "C1001", it is an order like the others
    c_ids = ids.str.fullmatch(_CREDIT_ID).to_numpy(dtype=bool)
    if numbered is None:
        numbered = bool(ids.str.fullmatch(r"\d+").any())
    credit = c_ids.copy() if numbered else np.zeros(n, dtype=bool)
    credit |= f["status"].to_numpy() == CREDIT
    if "type" in x:
        codes, kinds = pd.factorize(pd.Series(x["type"], dtype=object).fillna(""))
        says = np.array([status_key(str(k)) in CREDIT_WORDS for k in kinds], dtype=bool)
        credit |= says[codes] if len(kinds) else np.zeros(n, dtype=bool)
    negative = amount < 0
    if qty is not None:
        negative |= np.nan_to_num(qty) < 0
    returned = credit | negative

    if lines and n:
        _check_agreement(f, order_id, row_lines, problems,
                         ORDER_FIELDS + (() if has_line_amounts(set(x)) else ("subtotal",)))

    # -- orders: the lines that are not returns, one order per order_id
    sale = np.flatnonzero(~returned)
    if lines:
        s = f.iloc[sale].copy()
        s["subtotal"] = amount[sale]
        grouped = s.groupby("order_id", sort=False)
        orders = grouped.first() if len(s) else s.set_index("order_id")
        orders[LINE] = grouped[LINE].min() if len(s) else orders[LINE]
        if has_line_amounts(set(x)):
            orders["subtotal"] = np.round(grouped["subtotal"].sum().to_numpy(), 2) if len(s) else []
        for name in ONCE_FIELDS:
            if name in raw_text and len(s):
                given = (raw_text[name].iloc[sale] != "").to_numpy()
                first = s.loc[given].groupby("order_id", sort=False)[name].first()
                orders[name] = orders.index.map(first).to_numpy(dtype=float, na_value=0.0)
        orders = orders.reset_index()
    else:
        orders = f.iloc[sale].reset_index(drop=True)
    orders["status"] = orders["status"].where(orders["status"] != CREDIT, "placed")
    orders = orders[SPECS["orders"].stored + [LINE]]

    # -- returns: a credit note's lines make one return; a negative line of an order is one of its own
    r = np.flatnonzero(returned)
    if not len(r):
        return orders, pd.DataFrame({c: [] for c in RETURN_FIELDS + [LINE]})
    rid = order_id[r].astype(object)
    is_note = credit[r]
    if (~is_note).any():
        own = pd.Series(rid[~is_note])
        nth = own.groupby(own, sort=False).cumcount().to_numpy() + 1
        rid[~is_note] = [f"{o}:return:{k}" for o, k in zip(own.tolist(), nth.tolist(), strict=True)]
    original = x.get("original_order_id")
    target = order_id[r].astype(object)
    if original is not None:
        given = np.array([bool(v) for v in original[r]], dtype=bool)
        target = np.where(given, original[r], target)
    part = pd.DataFrame({
        "return_id": rid,
        "order_id": target,
        "returned_at": f["placed_at"].to_numpy()[r],
        "amount": amount[r],
        "items": (np.nan_to_num(qty[r]) if qty is not None else np.ones(len(r))),
        "channel": f["channel"].to_numpy()[r],
        "device": f["device"].to_numpy()[r],
        "country": f["country"].to_numpy()[r],
        "customer_id": f["customer_id"].to_numpy()[r],
        LINE: row_lines[r],
    })
    g = part.groupby("return_id", sort=False)
    returns = g.first()
    returns["amount"] = np.round(np.abs(g["amount"].sum().to_numpy()), 2)
    returns["items"] = np.abs(np.round(g["items"].sum().to_numpy())).astype(np.int64)
    returns[LINE] = g[LINE].min()
    returns = returns.reset_index()[RETURN_FIELDS + [LINE]]
    limit = SPECS["returns"].max_len("return_id") or 64
    for i in np.flatnonzero([len(str(v)) > limit for v in returns["return_id"].tolist()]).tolist():
        problems.add(int(returns[LINE].iat[i]), Text(N_("return id {value} is longer than {max} characters"),
                                                     value=shown(returns["return_id"].iat[i]), max=limit))
    return orders, returns


def _check_agreement(
    f: pd.DataFrame, order_id: np.ndarray, row_lines: np.ndarray, problems: Problems, fields: tuple[str, ...]
) -> None:
    """Every line of an order has the order's fields as its first line has them."""
    codes, _ = pd.factorize(pd.Series(order_id, dtype=object))
    first_row = pd.Series(np.arange(len(codes))).groupby(codes).transform("min").to_numpy()
    for name in fields:
        values = f[name]
        vcodes, _ = pd.factorize(values)
        differ = np.flatnonzero(vcodes != vcodes[first_row])
        shown_values = values.astype(str).to_numpy() if len(differ) else None
        for i in differ.tolist():
            j = int(first_row[i])
            problems.add(
                int(row_lines[i]),
                Text(N_("{field} {value} differs from line {line} of the same order {order} ({other}): an "
                        "order's lines must agree"), field=name, value=shown(_text(shown_values[i])),
                     line=int(row_lines[j]), order=shown(order_id[i]), other=shown(_text(shown_values[j]))),
            )


def _text(value: str) -> str:
    return "" if value in ("None", "NaT", "nan") else value


def order_chunks(chunks: Iterator[RawFile], column: int, scattered) -> Iterator[RawFile]:
    """The chunks of a line-item orders file with all the lines of an order in one chunk: the lines of a
    chunk's last order go with the next chunk, and the orders whose lines are apart in the file
    (``scattered``, hashes of their ids, found by the first pass) are held back and come last, together."""
    carry: RawFile | None = None
    held: list[RawFile] = []
    for chunk in chunks:
        if carry is not None:
            chunk, carry = concat_raw([carry, chunk]), None
        if len(scattered) and chunk.n_rows:
            apart = np.isin(id_hashes(chunk.columns[column]), scattered)
            if apart.any():
                held.append(chunk.take(apart))
                chunk = chunk.take(~apart)
        if not chunk.last and chunk.n_rows:
            h = id_hashes(chunk.columns[column])
            other = np.flatnonzero(h != h[-1])
            cut = int(other[-1]) + 1 if len(other) else 0
            tail = np.arange(chunk.n_rows) >= cut
            carry = chunk.take(tail)
            if cut == 0:
                continue
            chunk = chunk.take(~tail)
        yield chunk
    if carry is not None:
        held.append(carry)
    if held:
        yield concat_raw(held)
