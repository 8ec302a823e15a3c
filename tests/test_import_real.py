"""Real exports through the importer, as a new user loads them: a line-item file in UCI Online Retail form
(guest orders, credit notes, ids written by a spreadsheet as ``15240.0``, country names outside ISO's
list), WooCommerce's and Google Analytics 4's exports, and a source database made by an earlier version.

The Online Retail file is generated here, deterministically, in the data set's own format (InvoiceNo,
StockCode, Description, Quantity, InvoiceDate as m/d/yyyy h:mm, UnitPrice, CustomerID, Country); every
stored number is checked against an independent pandas computation from the file's text.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    inspect,
    select,
)

from kpi.data import schema
from kpi.data.importer import PRESETS, import_csv, import_preset, stored_currency
from kpi.data.source_schema import upgrade_source
from kpi.db import make_engine
from kpi.errors import ImportRefused

from .test_importer import bad_lines, rows, snapshot, write

LONDON = ZoneInfo("Europe/London")
PARIS = ZoneInfo("Europe/Paris")
DATA = Path(__file__).parent / "data"

# country as written → what the shop's data should say (the test's own table, not the importer's)
COUNTRIES = {
    "United Kingdom": "GB", "EIRE": "IE", "France": "FR", "Germany": "DE", "Deutschland": "DE",
    "Espagne": "ES", "RSA": "ZA", "USA": "US", "Czech Republic": "CZ", "Netherlands": "NL",
    "Unspecified": "ZZ", "European Community": "European Community", "Channel Islands": "Channel Islands",
}  # fmt: skip
WEIGHTS = [60, 6, 6, 5, 2, 2, 2, 2, 2, 3, 3, 4, 3]
PRICES = [0.42, 0.85, 1.25, 1.695, 2.55, 3.39, 4.95, 12.75]


def online_retail(seed: int = 2010, invoices: int = 420) -> str:
    """An Online Retail export: invoices of 1-6 lines, a tenth of them credit notes ("C" + number, negative
    quantities), some invoices with a negative discount line, a fifth of them guests (no CustomerID),
    customer ids written as "17850.0" or "17850"."""
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                "Country"])
    names = list(COUNTRIES)
    p = np.array(WEIGHTS, dtype=float) / sum(WEIGHTS)
    customers = {12346 + i: names[rng.choice(len(names), p=p)] for i in range(140)}
    start = datetime(2010, 12, 1, 8, 0)
    for k in range(invoices):
        number = 536365 + k
        credit = rng.random() < 0.1
        guest = rng.random() < 0.2
        cid = int(rng.choice(list(customers)))
        country = names[rng.choice(len(names), p=p)] if guest else customers[cid]
        written = "" if guest else (f"{cid}.0" if rng.random() < 0.7 else str(cid))
        at = start + pd.Timedelta(days=int(rng.integers(0, 89)), minutes=int(rng.integers(0, 600)))
        when = f"{at.month}/{at.day}/{at.year} {at.hour}:{at.minute:02d}"
        invoice = f"C{number}" if credit else str(number)
        for line in range(int(rng.integers(1, 7))):
            qty = int(rng.integers(1, 25)) * (-1 if credit else 1)
            w.writerow([invoice, f"2{line:04d}", f"ITEM {line}, boxed", qty, when, PRICES[rng.integers(len(PRICES))],
                        written, country])
        if not credit and rng.random() < 0.05:
            w.writerow([invoice, "D", "Discount", -1, when, f"{rng.integers(1, 10)}.50", written, country])
    return out.getvalue()


def expected(text: str) -> dict:
    """The KPIs of the file, computed by pandas from its text alone."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    df["amount"] = df["Quantity"].astype(float) * df["UnitPrice"].astype(float)
    df["customer"] = df["CustomerID"].str.replace(r"\.0+$", "", regex=True)
    df["country"] = df["Country"].map(COUNTRIES)
    df["at"] = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.tz_localize(LONDON).dt.tz_convert(None)
    credit = df["InvoiceNo"].str.startswith("C")
    negative = (df["Quantity"].astype(float) < 0) | (df["amount"] < 0)
    sales = df[~credit & ~negative]
    orders = sales.groupby("InvoiceNo").agg(subtotal=("amount", "sum"), customer=("customer", "first"),
                                            country=("country", "first"), at=("at", "first"))
    orders["subtotal"] = orders["subtotal"].round(2)
    notes = df[credit].groupby("InvoiceNo").agg(amount=("amount", "sum"), country=("country", "first"))
    lines = df[~credit & negative][["amount", "country"]]
    returns = pd.concat([notes, lines])
    returns["amount"] = returns["amount"].abs().round(2)
    return {
        "lines": len(df),
        "orders": len(orders),
        "revenue": round(orders["subtotal"].sum(), 2),
        "guests": int((orders["customer"] == "").sum()),
        "customers": orders.loc[orders["customer"] != "", "customer"].nunique(),
        "credit_notes": len(notes),
        "negative_lines": len(lines),
        "returns": len(returns),
        "refunded": round(returns["amount"].sum(), 2),
        "revenue_by_country": orders.groupby("country")["subtotal"].sum().round(2).to_dict(),
        "returns_by_country": returns.groupby("country")["amount"].sum().round(2).to_dict(),
        "orders_by_month": orders.groupby(orders["at"].dt.month).size().to_dict(),
        "ec_lines": int((df["Country"] == "European Community").sum()),
    }


@pytest.fixture(scope="module")
def retail_text() -> str:
    return online_retail()


def test_an_online_retail_export_loads_in_one_command_and_every_number_matches(source_engine, tmp_path, retail_text):
    path = write(tmp_path, retail_text, "online_retail.csv")
    want = expected(retail_text)
    assert want["guests"] > 10 and want["credit_notes"] > 10 and want["negative_lines"] > 0  # the file has them all
    result = import_preset(source_engine, path, "online-retail", tz=LONDON)
    assert result.rows_read == want["lines"]
    assert result.per_table["orders"]["inserted"] == want["orders"]
    assert result.per_table["customers"]["inserted"] == want["customers"]
    assert result.per_table["returns"]["inserted"] == want["returns"]
    notes = " | ".join(result.notes)
    assert f"{want['guests']} guest orders" in notes
    assert f"{want['returns']} credit notes or negative lines loaded as returns" in notes
    assert f"'European Community' ({want['ec_lines']} lines)" in notes and "'Channel Islands'" in notes
    assert "EIRE" not in notes and "Unspecified" not in notes  # recognised: IE, and no country (ZZ)

    o, r, c = schema.orders, schema.returns, schema.customers
    with source_engine.connect() as conn:
        n_orders, revenue = conn.execute(select(func.count(), func.sum(o.c.subtotal))).one()
        guests = conn.execute(select(func.count()).where(o.c.customer_id.is_(None))).scalar()
        n_customers = conn.execute(select(func.count()).select_from(c)).scalar()
        n_returns, refunded = conn.execute(select(func.count(), func.sum(r.c.amount))).one()
        by_country = dict(conn.execute(select(o.c.country, func.sum(o.c.subtotal)).group_by(o.c.country)).all())
        returns_by_country = dict(conn.execute(select(r.c.country, func.sum(r.c.amount)).group_by(r.c.country)).all())
        placed = [p for (p,) in conn.execute(select(o.c.placed_at))]
        ids = {i for (i,) in conn.execute(select(o.c.customer_id).where(o.c.customer_id.is_not(None)))}
        currencies = {cur for (cur,) in conn.execute(select(o.c.currency).distinct())}
    assert (n_orders, guests, n_customers) == (want["orders"], want["guests"], want["customers"])
    assert revenue == pytest.approx(want["revenue"], abs=0.005)
    assert (n_returns, round(refunded, 2)) == (want["returns"], pytest.approx(want["refunded"], abs=0.005))
    assert {k: round(v, 2) for k, v in by_country.items()} == pytest.approx(want["revenue_by_country"])
    assert {k: round(v, 2) for k, v in returns_by_country.items()} == pytest.approx(want["returns_by_country"])
    assert pd.Series([p.month for p in placed]).value_counts().to_dict() == want["orders_by_month"]
    assert not any(i.endswith(".0") for i in ids)  # 17850.0 and 17850 are one customer
    assert currencies == {"GBP"} and stored_currency(source_engine) == "GBP"  # the data set's currency

    again = import_preset(source_engine, path, "online-retail", tz=LONDON)
    assert {t: (v["inserted"], v["updated"]) for t, v in again.per_table.items()} == {
        "orders": (0, 0), "customers": (0, 0), "returns": (0, 0)}


def test_the_online_retail_ii_column_names_load_the_same(source_engine, tmp_path, retail_text):
    head, *body = retail_text.splitlines(keepends=True)
    renamed = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    result = import_preset(source_engine, write(tmp_path, renamed + "".join(body[:300])), "online-retail", tz=LONDON)
    want = expected(head + "".join(body[:300]))
    assert (result.per_table["orders"]["inserted"], result.per_table["returns"]["inserted"]) == (
        want["orders"], want["returns"])
    with pytest.raises(ImportRefused, match="not an Online Retail export"):
        import_preset(source_engine, DATA / "ga4_traffic_export.csv", "online-retail", tz=LONDON)


def test_a_line_item_file_whose_lines_disagree_is_refused_whole(source_engine, tmp_path, retail_text):
    head, first, second, *rest = retail_text.splitlines(keepends=True)
    invoice = first.split(",")[0]
    assert second.startswith(invoice + ",")  # an invoice of several lines
    other = second.replace(second.split(",")[-2], "99999.0", 1)  # another customer on the second line
    before = snapshot(source_engine)
    with pytest.raises(ImportRefused) as info:
        import_preset(source_engine, write(tmp_path, head + first + other + "".join(rest)), "online-retail", tz=LONDON)
    assert snapshot(source_engine) == before
    lines = bad_lines(info.value)
    assert list(lines) == [3]
    assert "customer_id '99999' differs from line 2 of the same order" in lines[3]


LINE_ITEMS = """\
Order,Customer,Date,SKU,Qty,Unit price,Line total,Shipping,Tax,Currency,Country
1001,c1,2026-10-01 10:00,A,2,9.99,,4.90,4.00,EUR,Allemagne
1001,c1,2026-10-01 10:00,B,1,0.333,,,,EUR,Allemagne
1001,c1,2026-10-01 10:00,C,,,5.00,,,EUR,Allemagne
1002,,2026-10-02 11:00,A,1,9.99,,0,2.00,EUR,Vereinigtes Königreich
1002,,2026-10-02 11:00,A,-1,9.99,,,,EUR,Vereinigtes Königreich
R-7,c1,2026-10-03 09:00,A,-1,9.99,,,,EUR,fra
"""
LINE_MAP = {"Order": "order_id", "Customer": "customer_id", "Date": "placed_at", "Qty": "quantity",
            "Unit price": "unit_price", "Line total": "line_total"}


def test_line_items_are_aggregated_into_orders(source_engine, tmp_path):
    result = import_csv(source_engine, write(tmp_path, LINE_ITEMS), "orders", tz=PARIS, column_map=LINE_MAP, lines=True)
    assert result.per_table["orders"]["inserted"] == 2
    got = rows(source_engine, "orders", "order_id", "customer_id", "subtotal", "shipping", "tax", "country")
    # 2 × 9.99 + 0.333 + 5.00 = 25.313 → 25.31 (rounded after summing); shipping and tax taken once
    assert got == [("1001", "c1", 25.31, 4.9, 4.0, "DE"), ("1002", None, 9.99, 0.0, 2.0, "GB")]
    # a negative line of an order, and a line of an order with only a negative line: returns of their own
    assert rows(source_engine, "returns", "return_id", "order_id", "amount", "items", "country", "customer_id") == [
        ("1002:return:1", "1002", 9.99, 1, "GB", None),
        ("R-7:return:1", "R-7", 9.99, 1, "FR", "c1"),
    ]
    assert rows(source_engine, "customers", "customer_id") == [("c1",)]
    assert any("1 guest order" in n for n in result.notes)


def test_a_line_item_file_needs_amounts(source_engine, tmp_path):
    text = "order_id,customer_id,placed_at,sku,currency\n1,c1,2026-10-01,A,EUR\n"
    before = snapshot(source_engine)
    with pytest.raises(ImportRefused) as info:
        import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS, lines=True)
    assert "needs line_total, or quantity and unit_price" in str(info.value)
    assert snapshot(source_engine) == before
    with pytest.raises(ImportRefused, match="only an orders file can have one row per product line"):
        import_csv(source_engine, write(tmp_path, text), "traffic", tz=PARIS, lines=True)
    # without --lines, the same order twice is still a duplicate
    dup = "order_id,customer_id,placed_at,subtotal,currency\n1,c1,2026-10-01,5,EUR\n1,c1,2026-10-01,6,EUR\n"
    with pytest.raises(ImportRefused, match="duplicate order_id '1': already on line 2"):
        import_csv(source_engine, write(tmp_path, dup, "dup.csv"), "orders", tz=PARIS)


def test_credit_notes_in_an_orders_file_become_returns(source_engine, tmp_path):
    text = (
        "order_id,customer_id,placed_at,status,type,original_order_id,subtotal,currency,channel,country\n"
        "15240.0,  9.0 ,2026-10-01 10:00,paid,order,,50.00,EUR,web,FR\n"
        "C77,9,2026-10-04 10:00,paid,,,12.50,EUR,web,FR\n"  # a credit note by its id
        "CN-3,9,2026-10-05 10:00,paid,credit note,15240.0,-7.25,EUR,email,DE\n"  # by its type, for an order
        "X9,,2026-10-06 10:00,refund,,,3.00,EUR,,Unspecified\n"  # by its status, a guest's
        "15241,9,2026-10-07 10:00,paid,,,-4.00,EUR,web,EIRE\n"  # a negative subtotal
    )
    result = import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS)
    assert result.per_table["orders"]["inserted"] == 1
    assert rows(source_engine, "orders", "order_id", "customer_id", "subtotal") == [("15240", "9", 50.0)]
    assert rows(source_engine, "returns", "return_id", "order_id", "amount", "channel", "country", "customer_id") == [
        ("15241:return:1", "15241", 4.0, "web", "IE", "9"),
        ("C77", "C77", 12.5, "web", "FR", "9"),
        ("CN-3", "15240", 7.25, "email", "DE", "9"),
        ("X9", "X9", 3.0, "unknown", "ZZ", None),
    ]


def test_order_numbers_that_all_start_with_c_are_orders(source_engine, tmp_path):
    # "C536379" means a credit note only beside plain invoice numbers; a shop numbering its orders C1001,
    # C1002 ... has orders, not a file of refunds
    text = ("order_id,customer_id,placed_at,subtotal,currency\n"
            "C1001,a,2026-10-01 10:00,20.00,EUR\nC1002,b,2026-10-02 10:00,30.00,EUR\n")
    result = import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS)
    assert result.per_table["orders"]["inserted"] == 2
    assert rows(source_engine, "orders", "order_id", "subtotal") == [("C1001", 20.0), ("C1002", 30.0)]
    assert rows(source_engine, "returns", "return_id") == []


def test_a_returns_file_takes_its_orders_dimensions_and_says_which_have_none(source_engine, tmp_path):
    orders = "order_id,customer_id,placed_at,subtotal,currency,channel,device,country\n" \
             "15,c1,2026-10-01,50,EUR,email,mobile,Frankreich\n"
    import_csv(source_engine, write(tmp_path, orders), "orders", tz=PARIS)
    returns = "return_id,order_id,returned_at,amount\nR1,15,2026-10-05,20\nR2,ZZ-404,2026-10-06,5\nR3,15.0,2026-10-07,1\n"
    result = import_csv(source_engine, write(tmp_path, returns, "r.csv"), "returns", tz=PARIS)
    assert result.inserted == 3
    assert "1 return refers to an order not in the data: counted in totals, shown as unknown in breakdowns" \
        in result.notes
    assert rows(source_engine, "returns", "return_id", "order_id", "channel", "device", "country", "customer_id") == [
        ("R1", "15", "email", "mobile", "FR", "c1"),
        ("R2", "ZZ-404", "unknown", "unknown", "ZZ", None),
        ("R3", "15", "email", "mobile", "FR", "c1"),  # 15.0: the spreadsheet's float of order 15
    ]
    # the file's own dimensions win over the order's
    own = "return_id,order_id,returned_at,amount,country\nR1,15,2026-10-05,20,BE\n"
    import_csv(source_engine, write(tmp_path, own, "own.csv"), "returns", tz=PARIS)
    assert rows(source_engine, "returns", "country", "channel", where=lambda t: t.c.return_id == "R1") == [("BE", "email")]


def test_ids_and_countries_as_real_files_write_them(source_engine, tmp_path):
    text = (
        "order_id,customer_id,placed_at,subtotal,currency,country\n"
        "15240.0,17850.00,2026-10-01,1,EUR,Royaume-Uni\n"
        "15240.5,17850,2026-10-01,1,EUR,ESP\n"
        "A15240.0,c1,2026-10-01,1,EUR,Holland\n"
        "7,c2,2026-10-01,1,EUR,European Community\n"
        "8,c3,2026-10-01,1,EUR,unknown\n"
        "9,c4,2026-10-01,1,EUR,Korea\n"
    )
    result = import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS)
    assert rows(source_engine, "orders", "order_id", "customer_id", "country") == [
        ("15240", "17850", "GB"), ("15240.5", "17850", "ES"), ("7", "c2", "European Community"),
        ("8", "c3", "ZZ"), ("9", "c4", "KR"), ("A15240.0", "c1", "NL"),
    ]
    assert "country values not recognised, kept as written: 'European Community' (1 line)" in result.notes


def test_the_files_currency_becomes_the_shops_unless_one_was_given(source_engine, tmp_path):
    gbp = "order_id,customer_id,placed_at,subtotal,currency\nG1,c1,2026-10-01,10,GBP\n"
    path = write(tmp_path, gbp)
    with pytest.raises(ImportRefused, match="in GBP but the shop currency is USD"):
        import_csv(source_engine, path, "orders", tz=PARIS, currency="USD", currency_explicit=True)
    assert stored_currency(source_engine) is None
    import_csv(source_engine, path, "orders", tz=PARIS, currency="USD")  # USD was only the default
    assert stored_currency(source_engine) == "GBP"
    # the database's currency holds: another currency is refused, a file without one is in GBP
    eur = "order_id,customer_id,placed_at,subtotal,currency\nE1,c1,2026-10-01,10,EUR\n"
    with pytest.raises(ImportRefused, match="in EUR but the orders in the database are in GBP"):
        import_csv(source_engine, write(tmp_path, eur, "e.csv"), "orders", tz=PARIS, currency="USD")
    plain = "order_id,customer_id,placed_at,subtotal\nP1,c1,2026-10-01,10\n"
    import_csv(source_engine, write(tmp_path, plain, "p.csv"), "orders", tz=PARIS, currency="USD")
    assert rows(source_engine, "orders", "order_id", "currency") == [("G1", "GBP"), ("P1", "GBP")]


def test_the_woocommerce_export_loads_orders_and_refunds(source_engine):
    result = import_preset(source_engine, DATA / "woocommerce_orders_export.csv", "woocommerce-orders", tz=PARIS)
    assert result.rows_read == 8  # line items
    assert result.per_table == {
        "orders": {"inserted": 7, "updated": 0, "unchanged": 0},
        "customers": {"inserted": 5, "updated": 0, "unchanged": 0},  # 5, 7, 8, 9 and a guest's e-mail
        "returns": {"inserted": 2, "updated": 0, "unchanged": 0},
    }
    got = {r[0]: r[1:] for r in rows(source_engine, "orders", "order_id", "status", "subtotal", "discount", "shipping",
                                     "tax", "currency", "country")}
    assert got == {
        "1001": ("placed", 35.0, 0.0, 4.9, 7.98, "EUR", "FR"),  # two lines; shipping once
        "1002": ("placed", 30.0, 3.33, 0.0, 6.0, "EUR", "DE"),  # item_total is after the discount
        "1003": ("placed", 25.0, 0.0, 0.0, 5.0, "EUR", "FR"),  # refunded: placed, and a return
        "1004": ("cancelled", 10.0, 0.0, 4.9, 2.98, "EUR", "BE"),  # failed
        "1005": ("cancelled", 10.0, 0.0, 4.9, 2.98, "EUR", "NL"),  # pending payment
        "1006": ("placed", 20.0, 0.0, 4.9, 4.98, "EUR", "SE"),  # on-hold
        "1007": ("cancelled", 10.0, 0.0, 0.0, 2.0, "EUR", "NL"),
    }
    customers = dict(rows(source_engine, "orders", "order_id", "customer_id"))
    assert customers["1001"] == customers["1003"] == "5"
    assert len(customers["1002"]) == 16 and "@" not in customers["1002"]  # a guest with an e-mail: its hash
    assert customers["1006"] is None  # a guest without one
    assert rows(source_engine, "returns", "return_id", "order_id", "amount", "items", "country") == [
        ("1003:refund", "1003", 30.0, 1, "FR"),
        ("1006:refund", "1006", 5.0, 1, "SE"),
    ]
    revenue = sum(v[1] for v in got.values() if v[0] == "placed")
    assert revenue == pytest.approx(110.0)


WC_ANALYTICS = """\
Date,Order #,Status,Customer,Customer type,Product(s),Items sold,Coupon(s),Net sales,Origin
2026-10-01T10:15:00,1001,completed,Anne Martin,new,"2× Mug, Teapot",3,,35.00,Direct
2026-10-02T08:00:00,1002,processing,Bernd Koch,new,Kettle,1,WELCOME10,30.00,Organic: Google
2026-10-04T09:00:00,1004,failed,Chloé Durand,new,Spoon,2,,10.00,Direct
2026-10-06T14:45:00,1006,on-hold,,new,Plate,4,,20.00,Unknown
2026-10-08T09:00:00,1003,refunded,Anne Martin,returning,Vase,1,,-25.00,Direct
"""


def test_woocommerces_own_analytics_orders_download_loads_too(source_engine, tmp_path):
    path = write(tmp_path, WC_ANALYTICS)
    result = import_preset(source_engine, path, "woocommerce-orders", tz=PARIS, currency="EUR")
    assert result.per_table["orders"]["inserted"] == 4
    got = rows(source_engine, "orders", "order_id", "status", "subtotal", "currency")
    assert got == [("1001", "placed", 35.0, "EUR"), ("1002", "placed", 30.0, "EUR"),
                   ("1004", "cancelled", 10.0, "EUR"), ("1006", "placed", 20.0, "EUR")]
    customers = dict(rows(source_engine, "orders", "order_id", "customer_id"))
    assert customers["1006"] is None and len(customers["1001"]) == 16  # a name is hashed, never stored
    assert rows(source_engine, "returns", "return_id", "amount", "returned_at") == [
        ("1003:return:1", 25.0, datetime(2026, 10, 8, 7, 0))]


def test_the_ga4_export_loads_as_traffic_with_or_without_the_preset(source_engine, tmp_path):
    path = DATA / "ga4_traffic_export.csv"
    want = [
        (date(2026, 10, 1), "direct", "desktop", "GB", 300, 280, 20),
        (date(2026, 10, 1), "organic search", "desktop", "FR", 1200, 950, 96),
        (date(2026, 10, 1), "organic search", "mobile", "FR", 1800, 1500, 110),
        (date(2026, 10, 1), "paid search", "mobile", "DE", 640, 600, 52),
        (date(2026, 10, 2), "email", "mobile", "ZZ", 45, 40, 6),
        (date(2026, 10, 2), "organic search", "desktop", "FR", 1100, 900, 88),
        (date(2026, 10, 2), "organic social", "tablet", "DE", 12, 11, 0),
    ]
    result = import_preset(source_engine, path, "ga4-traffic", tz=PARIS)
    assert (result.table, result.inserted) == ("traffic", 7)
    assert rows(source_engine, "traffic") == want
    # the README's command: the same file, the same rows (nothing new)
    again = import_csv(source_engine, path, "traffic", tz=PARIS, column_map={"Date": "day", "Sessions": "sessions"})
    assert (again.inserted, again.unchanged) == (0, 7)
    # a bad value is named with the file's own line number (the comment lines count)
    bad = path.read_text().replace("Direct,20261001,desktop,United Kingdom,300", "Direct,20261001,desktop,United Kingdom,x")
    with pytest.raises(ImportRefused) as info:
        import_preset(source_engine, write(tmp_path, bad, "bad.csv"), "ga4-traffic", tz=PARIS)
    assert list(bad_lines(info.value)) == [13]


def test_presets_are_listed_and_an_unknown_one_is_refused(source_engine, tmp_path):
    assert set(PRESETS) == {"shopify-orders", "woocommerce-orders", "ga4-traffic", "online-retail"}
    with pytest.raises(ImportRefused, match="unknown format 'magento'"):
        import_preset(source_engine, tmp_path / "x.csv", "magento", tz=PARIS)
    with pytest.raises(ImportRefused, match="not a WooCommerce orders export"):
        import_preset(source_engine, DATA / "ga4_traffic_export.csv", "woocommerce-orders", tz=PARIS)


# -- a source database made by an earlier version ----------------------------------------------------


def old_schema() -> MetaData:
    """The canonical tables as the first versions created them."""
    md = MetaData()

    def money(name):
        return Column(name, Numeric(14, 2, asdecimal=False), nullable=False)

    Table("orders", md, Column("order_id", String(64), primary_key=True),
          Column("customer_id", String(64), nullable=False), Column("placed_at", DateTime(), nullable=False),
          Column("status", String(16), nullable=False, server_default="placed"), money("subtotal"),
          money("discount"), money("shipping"), money("tax"), Column("currency", String(3), nullable=False),
          Column("channel", String(64), nullable=False, server_default="unknown"),
          Column("device", String(32), nullable=False, server_default="unknown"),
          Column("country", String(2), nullable=False, server_default="ZZ"),
          Index("ix_orders_placed_at", "placed_at", "status", "subtotal"), Index("ix_orders_customer", "customer_id", "placed_at"))
    Table("returns", md, Column("return_id", String(64), primary_key=True),
          Column("order_id", String(64), nullable=False), Column("returned_at", DateTime(), nullable=False),
          money("amount"), Column("items", Integer, nullable=False, server_default="1"))
    Table("customers", md, Column("customer_id", String(64), primary_key=True),
          Column("first_order_at", DateTime()), Column("acquisition_channel", String(64), nullable=False),
          Column("country", String(2), nullable=False))
    return md


def test_an_old_source_database_is_upgraded_once_and_then_imports_guests(database_url, tmp_path):
    engine = make_engine(database_url)
    try:
        old = old_schema()
        old.create_all(engine)
        with engine.begin() as conn:
            conn.execute(old.tables["orders"].insert(), [
                {"order_id": "A1", "customer_id": "c1", "placed_at": datetime(2026, 10, 1), "subtotal": 50,
                 "discount": 0, "shipping": 0, "tax": 0, "currency": "EUR", "channel": "email", "country": "FR"}])
            conn.execute(old.tables["returns"].insert(), [
                {"return_id": "R1", "order_id": "A1", "returned_at": datetime(2026, 10, 3), "amount": 20},
                {"return_id": "R2", "order_id": "gone", "returned_at": datetime(2026, 10, 4), "amount": 5}])
        changes = upgrade_source(engine)
        said = " | ".join(changes)
        assert "created tables: email_campaigns, marketing_spend, traffic" in said or "created tables" in said
        assert "returns: added columns channel, device, country, customer_id" in said
        assert "orders: customer_id may be empty" in said
        insp = inspect(engine)
        assert {c["name"]: c["nullable"] for c in insp.get_columns("orders")}["customer_id"] is True
        assert set(schema.index_columns(engine, "orders")) >= {"ix_orders_placed_at", "ix_orders_customer"}
        if engine.dialect.name == "postgresql":
            assert "widened" in said
            lengths = {c["name"]: getattr(c["type"], "length", None) for c in insp.get_columns("customers")}
            assert lengths["country"] == schema.COUNTRY_LEN
        assert rows(engine, "orders", "order_id", "customer_id", "subtotal", "country") == [("A1", "c1", 50.0, "FR")]
        assert rows(engine, "returns", "return_id", "channel", "device", "country", "customer_id") == [
            ("R1", "email", "unknown", "FR", "c1"),
            ("R2", "unknown", "unknown", "ZZ", None),
        ]
        assert upgrade_source(engine) == []  # nothing left to do
        guest = "order_id,customer_id,placed_at,subtotal,currency,country\nA2,,2026-10-02,5,EUR,European Community\n"
        import_csv(engine, write(tmp_path, guest), "orders", tz=PARIS)
        assert rows(engine, "orders", "order_id", "customer_id", "country") == [
            ("A1", "c1", "FR"), ("A2", None, "European Community")]
    finally:
        engine.dispose()


def test_a_users_own_orders_table_is_left_alone(database_url):
    engine = make_engine(database_url)
    try:
        md = MetaData()
        Table("orders", md, Column("order_id", String(64), primary_key=True),
              Column("customer_id", String(64), nullable=False), Column("their_own", String(10)))
        md.create_all(engine)
        changes = upgrade_source(engine)
        assert not any("orders" in c for c in changes)
        cols = {c["name"]: c["nullable"] for c in inspect(engine).get_columns("orders")}
        assert cols == {"order_id": False, "customer_id": False, "their_own": True}
    finally:
        engine.dispose()


def test_what_the_caller_records_commits_with_the_files_rows_or_not_at_all(source_engine, tmp_path):
    # kpi.data.batch records a file's hash in the file's own transaction: a record that fails takes the
    # file's rows with it, and a file loaded is never left unrecorded
    text = "order_id,customer_id,placed_at,subtotal,currency\nA1,c1,2026-10-01 10:00,20.00,EUR\n"

    def fails(conn, result):
        assert result.rows_read == 1
        raise RuntimeError("the record could not be written")

    with pytest.raises(RuntimeError):
        import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS, on_commit=fails)
    assert rows(source_engine, "orders", "order_id") == []
    seen = []
    import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS,
               on_commit=lambda conn, result: seen.append(conn.execute(select(schema.orders.c.order_id)).all()))
    assert [[tuple(r) for r in s] for s in seen] == [[("A1",)]]  # the hook sees the file's rows, uncommitted


def test_returns_loaded_before_their_orders_take_the_orders_dimensions_when_they_come(source_engine, tmp_path):
    # a refunds export loaded first: its returns know no channel or country yet; the orders file that follows
    # gives them their orders' (a return whose cell was empty takes its order's too)
    returns = ("return_id,order_id,returned_at,amount,country\nr30,3001,2026-10-05 10:00,9.00,\n"
               "r31,3002,2026-10-06 10:00,4.00,DE\n")
    result = import_csv(source_engine, write(tmp_path, returns, "returns.csv"), "returns", tz=PARIS)
    assert any("not in the data" in str(n) for n in result.notes)
    orders = ("order_id,customer_id,placed_at,subtotal,currency,channel,country\n"
              "3001,c1,2026-10-01 10:00,30.00,EUR,email,FR\n3002,c2,2026-10-02 10:00,20.00,EUR,web,IT\n")
    import_csv(source_engine, write(tmp_path, orders, "orders.csv"), "orders", tz=PARIS)
    assert rows(source_engine, "returns", "return_id", "channel", "country", "customer_id") == [
        ("r30", "email", "FR", "c1"),
        ("r31", "unknown", "DE", None),  # its own country kept: not an orphan to adopt
    ]
    returns2 = "return_id,order_id,returned_at,amount,country\nr32,3002,2026-10-07 10:00,1.00,\n"
    import_csv(source_engine, write(tmp_path, returns2, "returns2.csv"), "returns", tz=PARIS)
    assert rows(source_engine, "returns", "return_id", "channel", "country")[-1] == ("r32", "web", "IT")
