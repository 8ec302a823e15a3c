"""Every KPI of a real-shaped line-item export, as a user loads and asks it, against pandas (issue 13).

The UCI Online Retail-format file of tests/test_import_real.py (guests, credit notes ``C…``, ids written
``17850.0``, EIRE / European Community / Unspecified / Channel Islands) is loaded with
``kpibot import FILE --format online-retail``, then a second small file of the same format: zero-value
invoices (a sample, a stock adjustment of a guest, a new customer's free replacement) and a few later
invoices of December 2010's customers, around the end of their 12 months, so that the 12-month CLV of that
cohort has the history it needs. The shop is in London; KPIBOT_CURRENCY is unset (the data says GBP).

Every expected value is computed here with pandas from the two files' text: lines summed into invoices,
credit notes and negative lines into refunds, guests out of the customer KPIs, zero-value orders out of AOV,
as README "KPI definitions" says. Runs on SQLite, and on PostgreSQL with KPIBOT_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from contextlib import redirect_stdout
from datetime import UTC, datetime
from urllib.parse import quote

import pandas as pd
import pytest
from sqlalchemy import text

from kpi.cli import main
from kpi.db import dispose_cached_engines, make_engine
from kpi.metrics.engine import KpiRequest
from kpi.metrics.formatting import format_value, result_notes
from kpi.metrics.periods import parse_period
from kpi.services import Services

from .conftest import BACKENDS, _pg_url
from .test_import_real import COUNTRIES, LONDON, online_retail

MAIN = online_retail()
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _lines(text: str) -> pd.DataFrame:
    """The file's lines: amount, customer (``17850.0`` is ``17850``), country as stored, time in UTC."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    df["amount"] = df["Quantity"].astype(float) * df["UnitPrice"].astype(float)
    df["customer"] = df["CustomerID"].str.replace(r"\.0+$", "", regex=True)
    df["country"] = df["Country"].map(COUNTRIES)
    local = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M")
    df["at"] = local.dt.tz_localize(LONDON).dt.tz_convert("UTC").dt.tz_localize(None)
    return df


def _invoices(df: pd.DataFrame) -> pd.DataFrame:
    sales = df[~df["InvoiceNo"].str.startswith("C") & (df["amount"] >= 0)]
    orders = sales.groupby("InvoiceNo").agg(subtotal=("amount", "sum"), customer=("customer", "first"),
                                            country=("country", "first"), at=("at", "first"))
    orders["subtotal"] = orders["subtotal"].round(2)
    return orders


def _when(at: pd.Timestamp) -> str:
    local = at.tz_localize("UTC").tz_convert(LONDON)
    return f"{local.month}/{local.day}/{local.year} {local.hour}:{local.minute:02d}"


def extra_file(main_text: str) -> str:
    """Zero-value invoices in January and February 2011, and December 2010 customers' later invoices."""
    orders = _invoices(_lines(main_text))
    known = orders[orders["customer"] != ""]
    firsts = known.groupby("customer")["at"].min().sort_values()
    december = firsts[(firsts >= "2010-12-01") & (firsts < "2011-01-01")]
    assert len(december) > 20
    early, late, jan = december.index[0], december.index[-1], firsts[firsts >= "2011-01-01"].index[0]
    twelve = pd.DateOffset(months=12)
    rows = [
        f"581001,SAMPLE,\"SAMPLE, free\",2,1/12/2011 10:15,0,{jan}.0,United Kingdom",  # a sample to a customer
        "581002,ADJUST,stock adjustment,5,1/20/2011 9:00,0.00,,Unspecified",  # a guest's zero-value order
        "581003,POST,replacement,1,2/3/2011 11:30,0,99001,France",  # a new customer's free first order
        "581004,22423,REGENCY CAKESTAND,3,2/21/2011 16:05,12.75,99001.0,France",  # ... who orders again
        # inside the 12 months after the first order of December's last customer, then outside for the first
        f"581005,22423,REGENCY CAKESTAND,2,{_when(december[late] + twelve - pd.Timedelta(days=3))},12.75,{late},EIRE",
        f"581006,22423,REGENCY CAKESTAND,4,{_when(december[early] + twelve + pd.Timedelta(days=3))},12.75,{early},EIRE",
        "581007,85123A,WHITE HANGING HEART,6,1/16/2012 12:00,2.95,99001,France",  # the data reaches 2012
    ]
    return HEADER + "\n".join(rows) + "\n"


EXTRA = extra_file(MAIN)


# -- the expected values, from the files' text -----------------------------------------------------------
def _data() -> dict[str, pd.DataFrame]:
    df = pd.concat([_lines(MAIN), _lines(EXTRA)], ignore_index=True)
    orders = _invoices(df)
    credit = df["InvoiceNo"].str.startswith("C")
    notes = df[credit].groupby("InvoiceNo").agg(amount=("amount", "sum"), country=("country", "first"),
                                                at=("at", "first"))
    negative = df[~credit & (df["amount"] < 0)][["amount", "country", "at"]]  # a return each
    returns = pd.concat([notes, negative], ignore_index=True)
    returns["amount"] = returns["amount"].abs().round(2)
    customers = orders[orders["customer"] != ""].groupby("customer")["at"].min().rename("first")
    return {"orders": orders, "returns": returns, "customers": customers}


DATA = _data()


def _bounds(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A period's [start, end) in the shop's time zone, as naive UTC (as the data is stored)."""
    p = parse_period(text, now=datetime(2026, 11, 29, tzinfo=UTC), tz=LONDON)
    return (pd.Timestamp(p.start).tz_convert("UTC").tz_localize(None),
            pd.Timestamp(p.end).tz_convert("UTC").tz_localize(None))


def expected(period: str) -> dict[str, float | int | None]:
    o, r, c = DATA["orders"], DATA["returns"], DATA["customers"]
    lo, hi = _bounds(period)
    now = o[(o["at"] >= lo) & (o["at"] < hi)]
    refunds = r[(r["at"] >= lo) & (r["at"] < hi)]
    revenue, refunded = now["subtotal"].sum(), refunds["amount"].sum()
    valued = int((now["subtotal"] > 0).sum())
    buyers = set(now.loc[now["customer"] != "", "customer"])
    upto = o[(o["at"] < hi) & (o["customer"] != "")]
    counts = upto.groupby("customer").size()
    cohort = c[(c >= lo) & (c < hi)]
    mine = o[o["customer"].isin(cohort.index)].join(cohort, on="customer")
    window = mine[mine["at"] < mine["first"] + pd.DateOffset(months=12)]

    def ratio(a, b):
        return a / b if b else None

    return {
        "revenue": revenue, "orders": len(now), "aov": ratio(revenue, valued),
        "aov_all_orders": ratio(revenue, len(now)), "refunds": refunded, "net_revenue": revenue - refunded,
        "refund_rate": ratio(refunded, revenue), "return_rate": ratio(len(refunds), len(now)),
        "new_customers": len(cohort), "ordering_customers": len(buyers),
        "returning_customer_rate": ratio(sum(c[b] < lo for b in buyers), len(buyers)),
        "repeat_customer_rate": ratio(sum(counts[b] > 1 for b in buyers), len(buyers)),
        "clv": ratio(upto["subtotal"].sum(), int((c < hi).sum())),
        "clv_12m": ratio(window["subtotal"].sum(), len(cohort)),
        # what the answers say they left out
        "zero_value_orders": int((now["subtotal"] == 0).sum()), "guest_orders": int((now["customer"] == "").sum()),
        "guest_orders_to_date": int(((o["at"] < hi) & (o["customer"] == "")).sum()),
    }


MONEY = {"revenue", "aov", "aov_all_orders", "refunds", "net_revenue", "clv", "clv_12m"}
COUNTS = {"orders", "new_customers", "ordering_customers"}
RATES = {"refund_rate", "return_rate", "returning_customer_rate", "repeat_customer_rate"}
KPIS = sorted(MONEY | COUNTS | RATES)
# the period asked, and the previous one its answer compares it with
PERIODS = [("January 2011", "December 2010"), ("Q1 2011", "Q4 2010")]
GUEST_NOTE = {"new_customers", "ordering_customers", "returning_customer_rate", "repeat_customer_rate", "clv_12m"}
# traffic, marketing spend and e-mail campaigns: an orders export has none
NO_DATA = ["conversion_rate", "sessions", "visitors", "cart_abandonment_rate", "cac", "paid_cac", "clv_cac_ratio",
           "email_open_rate", "marketing_spend"]


def _same(key: str, got: float | None, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if key in MONEY:
        return abs(got - want) < 0.005  # to the cent
    if key in COUNTS:
        return got == want
    return abs(got - want) <= 1e-9 * abs(want) or abs(got - want) < 1e-12


# -- the shop, loaded as a user does ---------------------------------------------------------------------
@pytest.fixture(scope="module", params=BACKENDS)
def shop(request, tmp_path_factory):
    """The two files imported once per backend (the tests only read): (Services, what the imports printed)."""
    folder = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'kpibot-test.db'}"
        else:  # a schema of its own, as tests/conftest.py's database_url
            schema = f"t_{uuid.uuid4().hex[:12]}"
            admin = make_engine(_pg_url())
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{_pg_url()}{'&' if '?' in _pg_url() else '?'}options={quote(f'-csearch_path={schema}')}"
        mp.chdir(folder)
        mp.setenv("DATABASE_URL", url)
        for name in ("KPI_SOURCE_URL", "KPIBOT_CONFIG", "KPIBOT_CURRENCY", "KPIBOT_LOCALE"):
            mp.delenv(name, raising=False)
        mp.setenv("KPIBOT_TIMEZONE", "Europe/London")
        (folder / "online_retail.csv").write_text(MAIN)
        (folder / "online_retail_extra.csv").write_text(EXTRA)
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["db", "upgrade"]) == 0
            assert main(["import", "online_retail.csv", "--format", "online-retail"]) == 0
            assert main(["import", "online_retail_extra.csv", "--format", "online-retail"]) == 0
        yield Services(), out.getvalue()
        dispose_cached_engines()
        if request.param != "sqlite":
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _ask(services: Services, metric: str, period: str, **kw):
    engine = services.kpi_engine()
    return engine.ask(KpiRequest(metric=metric, period=parse_period(period, now=engine.now(), tz=LONDON),
                                 series=False, **kw))


def _cli(capsys, *words: str) -> str:
    assert main(["ask", *words]) == 0
    return capsys.readouterr().out


def test_the_data_has_what_the_kpis_are_about():
    """Else the comparisons below would prove nothing."""
    for now, before in PERIODS:
        for period in (now, before):
            want = expected(period)
            assert want["guest_orders"] > 0 and want["refunds"] > 0 and want["new_customers"] > 0, period
    jan, q1 = expected("January 2011"), expected("Q1 2011")
    assert jan["zero_value_orders"] == 2 and q1["zero_value_orders"] == 3
    assert jan["repeat_customer_rate"] != jan["returning_customer_rate"]
    assert q1["repeat_customer_rate"] != q1["returning_customer_rate"]
    assert jan["aov"] != jan["aov_all_orders"] and jan["net_revenue"] != jan["revenue"]
    dec = expected("December 2010")
    assert dec["clv_12m"] is not None and dec["clv_12m"] != dec["clv"]  # the horizon cuts the late invoice out
    r = DATA["returns"]
    assert set(r["country"]) >= {"European Community", "ZZ", "IE"}


def test_the_import_says_what_it_made_of_the_files(shop):
    _, out = shop
    o = DATA["orders"]
    main_orders = _invoices(_lines(MAIN))
    assert f"{len(main_orders)} inserted" in out
    assert f"{int((main_orders['customer'] == '').sum())} guest orders" in out
    assert f"{int((o['customer'] == '').sum()) - int((main_orders['customer'] == '').sum())} guest order" in out
    assert "'European Community'" in out and "'Channel Islands'" in out


@pytest.mark.parametrize("now, before", PERIODS)
def test_every_kpi_of_the_export_matches_pandas(shop, now, before):
    services, _ = shop
    want, want_before = expected(now), expected(before)
    wrong = []
    for key in KPIS:
        result = _ask(services, key, now, compare="previous")
        assert result.comparison_period is not None and result.comparison_period.label == before
        got, got_before = result.current.value, result.comparison.value if result.comparison else None
        if key == "clv_12m":  # the cohorts of 2011 have not had their 12 months: no value, and the date it needs
            assert got is None and result.needs_data_until is not None
            end = pd.Timestamp(result.period.end)  # in the shop's time zone
            assert result.needs_data_until.date() == (end + pd.DateOffset(months=12)).date()
            assert any("needs the data to reach" in n for n in result_notes(result))
            got = want[key] = None
        if not _same(key, got, want[key]):
            wrong.append((key, now, got, want[key]))
        if not _same(key, got_before, want_before[key]):
            wrong.append((key, before, got_before, want_before[key]))
    assert wrong == []


@pytest.mark.parametrize("period", ["December 2010", "Q4 2010"])
def test_twelve_month_clv_of_the_cohort_whose_history_allows_it(shop, period):
    services, _ = shop
    result = _ask(services, "clv_12m", period, compare=None)
    assert result.needs_data_until is None
    assert _same("clv_12m", result.current.value, expected(period)["clv_12m"]), (result.current, expected(period))
    assert [v for _, v in result.notes] == [expected(period)["guest_orders"]]


@pytest.mark.parametrize("period", ["January 2011", "Q1 2011"])
def test_the_notes_say_what_was_left_out(shop, period):
    services, _ = shop
    want = expected(period)
    aov = _ask(services, "aov", period, compare=None)
    assert result_notes(aov) == [f"{want['zero_value_orders']} zero-value orders (subtotal 0) are left out of the average."]
    assert aov.current.sample == want["orders"] - want["zero_value_orders"]
    for key in sorted(GUEST_NOTE - {"clv_12m"}):
        result = _ask(services, key, period, compare=None)
        assert result_notes(result) == [f"{want['guest_orders']} guest orders (no customer account) are not counted."], key
    clv = _ask(services, "clv", period, compare=None)
    assert result_notes(clv) == [
        f"{want['guest_orders_to_date']} guest orders up to the period's end (no customer account) are not counted."]
    for key in ["revenue", "orders", "aov_all_orders", "refunds", "net_revenue", "refund_rate", "return_rate"]:
        assert _ask(services, key, period, compare=None).notes == (), key  # guests and zero-value orders count


def test_what_the_user_reads_is_in_the_datas_currency(shop, capsys):
    services, _ = shop
    assert services.settings.currency == "GBP"
    jan, dec = expected("January 2011"), expected("December 2010")
    out = _cli(capsys, "revenue", "january", "2011", "vs", "previous")
    assert out.splitlines()[0] == f"Revenue, January 2011: {format_value(jan['revenue'], 'currency', currency='GBP')}"
    assert out.splitlines()[0].startswith("Revenue, January 2011: £") and "$" not in out and "€" not in out
    assert f"(December 2010: £{dec['revenue']:,.2f})" in out
    out = _cli(capsys, "aov", "january", "2011")
    assert out.splitlines()[0] == f"Average order value, January 2011: £{jan['aov']:,.2f}"
    assert f"  {jan['zero_value_orders']} zero-value orders (subtotal 0) are left out of the average." in out
    out = _cli(capsys, "net", "sales", "Q1", "2011")
    assert out.splitlines()[0] == f"Net revenue, Q1 2011: £{expected('Q1 2011')['net_revenue']:,.2f}"
    out = _cli(capsys, "repeat", "rate", "january", "2011")
    assert f"  {jan['guest_orders']} guest orders (no customer account) are not counted." in out
    data = json.loads(_cli(capsys, "refund", "rate", "january", "2011", "--json"))
    assert data["metric"]["key"] == "refund_rate"  # by value
    assert abs(data["current"]["value"] - jan["refund_rate"]) <= 1e-9 * jan["refund_rate"]


@pytest.mark.parametrize("period", ["January 2011", "Q1 2011"])
def test_return_rate_by_country_counts_each_credit_note_in_its_own_country(shop, capsys, period):
    services, _ = shop
    o, r = DATA["orders"], DATA["returns"]
    lo, hi = _bounds(period)
    orders = o[(o["at"] >= lo) & (o["at"] < hi)].groupby("country").size()
    returns = r[(r["at"] >= lo) & (r["at"] < hi)].groupby("country").size()
    assert len(set(orders.index) | set(returns.index)) > 10  # more countries than the default top 10
    want = {k: (returns.get(k, 0) / orders[k] if orders.get(k, 0) else None)
            for k in set(orders.index) | set(returns.index)}
    result = _ask(services, "return_rate", period, compare=None, breakdown="country", top=20)
    got = {row.key: row.value.value for row in result.breakdown}
    assert not any(row.is_other for row in result.breakdown)
    assert set(got) == set(want)
    assert {"ZZ", "European Community", "Channel Islands", "IE", "GB"} <= set(got)  # kept as their own values
    for k in want:
        assert _same("return_rate", got[k], want[k]), (k, got[k], want[k])
    assert sum(returns) == len(r[(r["at"] >= lo) & (r["at"] < hi)])  # every return in a country: none lost
    out = _cli(capsys, "return", "rate", *period.lower().split(), "by", "country", "top", "20")
    shown = dict(re.split(r"\s{2,}", line.strip())[:2] for line in out.splitlines() if line.startswith("    "))
    assert {k: shown.get(k) for k in want} == {k: format_value(v, "percent") for k, v in want.items()}
    assert all(shown[k] == "no data" for k in set(shown) - set(want))  # a country of the previous period only


# an empty traffic or marketing_spend table (`kpibot import` creates them, empty) is summed as 0: "Sessions,
# January 2011: 0", "Marketing spend, January 2011: £0.00", and a blended CAC of £0.00 from 34 new customers
SUMS_OVER_NO_ROWS = ["sessions", "visitors", "cac", "marketing_spend"]


def _no_data(services: Services, capsys, key: str) -> tuple[float | None, str, str]:
    """The value asked of the engine, the CLI answer's headline value, and the CLI answer."""
    result = _ask(services, key, "January 2011", compare=None)
    assert result.as_of is None, key  # the tables it reads hold no row
    out = _cli(capsys, *services.kpi_engine().catalog.metrics[key].aliases["en"][0].split(), "january", "2011")
    return result.current.value, out.splitlines()[0].rsplit(": ", 1)[1], out


def test_kpis_an_orders_export_cannot_give_say_the_data_is_not_there(shop, capsys):
    services, _ = shop
    for key in NO_DATA:
        value, headline, out = _no_data(services, capsys, key)
        assert "no data in the source yet" in out, key
        assert (value, headline) == (None, "no data"), key


@pytest.mark.parametrize("key", SUMS_OVER_NO_ROWS)
def test_kpis_an_orders_export_cannot_give_are_not_reported_as_zero(shop, capsys, key):
    value, headline, _ = _no_data(shop[0], capsys, key)
    assert (value, headline) == (None, "no data")
