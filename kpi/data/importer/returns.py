"""Returns keep their own channel, device, country and customer (a credit note's, or their order's): filled
from the stored orders when a file gives none (or leaves a cell empty), and given to returns loaded before
their orders once the orders come."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from kpi.data import schema

from .writing import KEY_CHUNK, fetch_existing

RETURN_DIMENSIONS = {"channel": "unknown", "device": "unknown", "country": "ZZ", "customer_id": None}


def fill_return_dimensions(conn: Connection, returns: pd.DataFrame, present: Sequence[str]) -> tuple[list[str], int]:
    """Give the returns of a file the dimensions it does not have from their stored orders (looked up a
    chunk of order ids at a time, bound parameters); the fields filled, and how many returns refer to an
    order that is not in the data (they keep the 'unknown' values)."""
    if returns.empty:
        return [], 0
    dims = list(RETURN_DIMENSIONS)
    ids = returns["order_id"].tolist()
    found = fetch_existing(conn, schema.orders, ["order_id"], ids, dims)
    for k, name in enumerate(dims):
        default = RETURN_DIMENSIONS[name]
        if name not in present:
            returns[name] = pd.Series([found[o][k] if o in found else default for o in ids], dtype=object).to_numpy()
        else:  # a cell the file left empty (read as the default) takes the order's value too
            given = returns[name].tolist()
            returns[name] = pd.Series([found[o][k] if (g is None or g == default) and o in found else g
                                       for g, o in zip(given, ids, strict=True)], dtype=object).to_numpy()
    return [d for d in dims if d not in present], sum(1 for o in ids if o not in found)


def has_orphan_returns(conn: Connection) -> bool:
    """Returns are stored with only the defaults for their dimensions (their order was not in the data when
    they were loaded): an orders import then gives them their order's."""
    r = schema.returns.c
    return conn.execute(select(1).where(r.customer_id.is_(None), r.channel == RETURN_DIMENSIONS["channel"],
                                        r.country == RETURN_DIMENSIONS["country"]).limit(1)).first() is not None


def adopt_returns(conn: Connection, order_ids: list) -> int:
    """The returns of these orders loaded before them (the default dimensions) take their dimensions; how many."""
    r, o = schema.returns.c, schema.orders
    values = {name: select(o.c[name]).where(o.c.order_id == r.order_id).scalar_subquery() for name in RETURN_DIMENSIONS}
    done = 0
    for start in range(0, len(order_ids), KEY_CHUNK):
        chunk = order_ids[start:start + KEY_CHUNK]
        stmt = (update(schema.returns).where(r.order_id.in_(chunk), r.customer_id.is_(None),
                                             r.channel == RETURN_DIMENSIONS["channel"],
                                             r.device == RETURN_DIMENSIONS["device"],
                                             r.country == RETURN_DIMENSIONS["country"]).values(values))
        done += conn.execute(stmt).rowcount or 0
    return done
