"""The KPIs finance agrees with, against independent pandas computations written here.

Two data sets, on SQLite and on PostgreSQL (when KPIBOT_TEST_POSTGRES_URL is set):

- a constructed shop (seeded, 18 months): guest orders (no customer), zero-value orders, cancelled orders,
  refunds paid in a later month than their order, paid channels (with marketing spend), a channel whose spend
  rows are all 0 and organic ones;
- the CDNOW purchase log (real, tests/test_cdnow.py loads it through the importer): 12-month CLV of its
  three monthly cohorts, repeat customer rate, AOV without its zero-value purchases.

Every expected number is computed from the raw rows with pandas, not from the catalog.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Column, MetaData, Numeric, String, Table, insert

from kpi.data import schema
from kpi.data.importer import import_csv
from kpi.errors import CatalogError
from kpi.metrics.catalog import load_catalog, normalise, parse_catalog
from kpi.metrics.definitions import define, definition_lines
from kpi.metrics.engine import KpiEngine, KpiRequest, Value, change_between
from kpi.metrics.formatting import result_lines, result_notes
from kpi.metrics.periods import parse_period
from kpi.metrics.sql import MixedCurrencies

from .test_cdnow import cdnow, cdnow_raw  # noqa: F401 - the CDNOW fixtures

CONFIG = Path(__file__).resolve().parent.parent / "config"
UTC_TZ = ZoneInfo("UTC")
NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
CHANNELS = ["paid_search", "email", "organic_search", "direct", "social"]
MONTHS = [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 7)]


# -- the constructed shop -------------------------------------------------------------------------------
def _shop() -> dict[str, pd.DataFrame]:
    rnd = random.Random(13)
    start = datetime(2025, 1, 1)
    span = (datetime(2026, 7, 14, 18) - start).total_seconds()
    rows = []
    times = sorted(start + timedelta(seconds=int(rnd.random() * span)) for _ in range(900))
    for i, placed in enumerate(times):
        guest = rnd.random() < 0.15
        # a pool of customers that grows with time (new ones keep coming), a few loyal ones ordering often
        customer = None if guest else f"c{rnd.randint(1, 8) if rnd.random() < 0.2 else rnd.randint(1, 20 + i // 2)}"
        zero = rnd.random() < 0.07
        rows.append(dict(order_id=f"o{i}", customer_id=customer, placed_at=placed,
                         status="cancelled" if rnd.random() < 0.05 else "placed",
                         subtotal=0.0 if zero else round(rnd.uniform(5, 300), 2), discount=0, shipping=0, tax=0,
                         currency="EUR", channel=rnd.choice(CHANNELS), device=rnd.choice(["mobile", "desktop"]),
                         country=rnd.choice(["FR", "DE", "GB"])))
    orders = pd.DataFrame(rows)
    kept = orders[orders.status != "cancelled"]
    firsts = kept.dropna(subset=["customer_id"]).sort_values("placed_at").groupby("customer_id").first()
    customers = pd.DataFrame({"customer_id": firsts.index, "first_order_at": firsts["placed_at"].values,
                              "acquisition_channel": firsts["channel"].values, "country": firsts["country"].values})
    returns = []
    for _, o in kept[kept.subtotal > 0].sample(frac=0.12, random_state=5).iterrows():
        when = o.placed_at + timedelta(days=rnd.randint(10, 60), hours=rnd.randint(0, 23))
        if when < datetime(2026, 7, 14):
            returns.append(dict(return_id=f"r{o.order_id}", order_id=o.order_id, returned_at=when,
                                amount=round(o.subtotal * rnd.uniform(0.2, 1.0), 2), items=1,
                                # a return carries its order's dimensions, as the importer writes it
                                channel=o.channel, device=o.device, country=o.country,
                                customer_id=o.customer_id))
    spend = []
    day = date(2025, 1, 1)
    while day < date(2026, 7, 14):
        spend.append(dict(day=day, channel="paid_search", amount=round(rnd.uniform(20, 80), 2)))
        if day.day % 3 == 0:
            spend.append(dict(day=day, channel="email", amount=round(rnd.uniform(5, 15), 2)))
        if day.day == 1:
            spend.append(dict(day=day, channel="social", amount=0.0))  # listed, never paid: not a paid channel
        day += timedelta(days=1)
    return {"orders": orders, "customers": customers, "returns": pd.DataFrame(returns), "spend": pd.DataFrame(spend)}


SHOP = _shop()


def _load(engine, shop: dict[str, pd.DataFrame]) -> None:
    with engine.begin() as conn:
        for table, frame in [(schema.orders, shop["orders"]), (schema.customers, shop["customers"]),
                             (schema.returns, shop["returns"]), (schema.marketing_spend, shop["spend"])]:
            records = [{k: (None if pd.isna(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v))
                        for k, v in r.items()} for r in frame.to_dict("records")]
            conn.execute(insert(table), records)


@pytest.fixture
def shop(source_engine):
    _load(source_engine, SHOP)
    return KpiEngine(load_catalog(CONFIG), source_engine, tz=UTC_TZ, clock=lambda: NOW)


def _ask(engine, metric: str, month: str, **kw):
    period = parse_period(month, now=NOW, tz=UTC_TZ)
    return engine.ask(KpiRequest(metric=metric, period=period, compare=kw.pop("compare", None),
                                 series=kw.pop("series", False), **kw))


def _bounds(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month, "%Y-%m")
    return start, (start + pd.DateOffset(months=1)).to_pydatetime()


def _in(frame: pd.DataFrame, col: str, month: str) -> pd.DataFrame:
    lo, hi = _bounds(month)
    return frame[(frame[col] >= lo) & (frame[col] < hi)]


def expected_shop(month: str) -> dict[str, float | None]:
    """Every finance KPI of a month of the constructed shop, from its raw rows."""
    o, c, r, s = SHOP["orders"], SHOP["customers"], SHOP["returns"], SHOP["spend"]
    kept = o[o.status != "cancelled"]
    now = _in(kept, "placed_at", month)
    lo, hi = _bounds(month)
    revenue = now.subtotal.sum()
    refunds = _in(r, "returned_at", month).amount.sum()
    spend = s[(s.day >= lo.date()) & (s.day < hi.date())].amount.sum()
    paid = set(s[s.amount > 0].channel)
    cohort = _in(c, "first_order_at", month)
    buyers = set(now.customer_id.dropna())
    upto = kept[(kept.placed_at < hi)].dropna(subset=["customer_id"]).groupby("customer_id").size()
    repeat = {cust for cust in buyers if upto.get(cust, 0) > 1}
    returning = {cust for cust in buyers if c.set_index("customer_id").first_order_at[cust] < lo}
    # 12-month CLV: each cohort customer's orders before their first order + 12 months
    joined = kept.merge(cohort[["customer_id", "first_order_at"]], on="customer_id")
    window = joined[joined.placed_at < joined.first_order_at + pd.DateOffset(months=12)]
    clv_12m = window.subtotal.sum() / window.customer_id.nunique() if len(window) else None
    valued = (now.subtotal > 0).sum()
    return {
        "revenue": revenue, "refunds": refunds, "net_revenue": revenue - refunds,
        "refund_rate": refunds / revenue if revenue else None,
        "aov": revenue / valued if valued else None, "aov_all_orders": revenue / len(now) if len(now) else None,
        "zero_value_orders": int((now.subtotal == 0).sum()), "guest_orders": int(now.customer_id.isna().sum()),
        "cac": spend / len(cohort) if len(cohort) else None,
        "paid_cac": spend / cohort.acquisition_channel.isin(paid).sum() if cohort.acquisition_channel.isin(paid).sum() else None,
        "repeat_customer_rate": len(repeat) / len(buyers) if buyers else None,
        "returning_customer_rate": len(returning) / len(buyers) if buyers else None,
        "ordering_customers": len(buyers), "new_customers": len(cohort), "clv_12m": clv_12m,
        "marketing_spend": spend,
    }


FINANCE = ["revenue", "refunds", "net_revenue", "refund_rate", "aov", "aov_all_orders", "cac", "paid_cac",
           "repeat_customer_rate", "returning_customer_rate", "ordering_customers", "new_customers",
           "marketing_spend"]


def _close(got: float | None, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return abs(got - want) <= 1e-6 * max(1.0, abs(want))


def test_every_finance_kpi_matches_pandas(shop):
    for month in ["2025-03", "2025-11", "2026-02", "2026-06"]:
        want = expected_shop(month)
        for key in FINANCE:
            got = _ask(shop, key, month).current.value
            assert _close(got, want[key]), (key, month, got, want[key])


def test_monthly_series_of_the_finance_kpis(shop):
    """A year by month: every point is its month's value (the grouped repeat-customer subquery once per month,
    the 12-month CLV with its horizon, the notes' measures in the same statements)."""
    year = parse_period("2025", now=NOW, tz=UTC_TZ)
    for key in ["repeat_customer_rate", "net_revenue", "aov", "paid_cac", "refund_rate"]:
        result = shop.ask(KpiRequest(metric=key, period=year, compare=None, granularity="month"))
        assert len(result.series) == 12
        for point, month in zip(result.series, MONTHS[:12], strict=True):
            assert _close(point.value.value, expected_shop(month)[key]), (key, month)


def test_the_shop_exercises_what_the_kpis_are_about():
    """The data has what each KPI leaves out or adds: else the comparisons above would prove nothing."""
    month = expected_shop("2026-02")
    assert month["zero_value_orders"] > 0 and month["guest_orders"] > 0
    assert month["refunds"] > 0 and month["paid_cac"] != month["cac"]
    assert month["repeat_customer_rate"] != month["returning_customer_rate"]
    r = SHOP["returns"].merge(SHOP["orders"][["order_id", "placed_at"]], on="order_id")
    assert (r.returned_at.dt.to_period("M") != r.placed_at.dt.to_period("M")).sum() > 10  # refunds a month later


def test_twelve_month_clv_of_mature_cohorts_and_the_history_the_young_ones_need(shop):
    for month in ["2025-01", "2025-04", "2025-06"]:
        result = _ask(shop, "clv_12m", month)
        assert _close(result.current.value, expected_shop(month)["clv_12m"]), month
        assert result.needs_data_until is None
    young = _ask(shop, "clv_12m", "2025-09")
    assert young.current.value is None
    assert young.needs_data_until == datetime(2026, 10, 1, tzinfo=UTC_TZ)
    text = "\n".join(result_lines(young, currency="EUR"))
    assert "no data" in text and "2026-10-01" in text and "12 months" in text
    from bot.render.answer import kpi_answer

    blocks = str(kpi_answer(young, lang="fr", currency="EUR").blocks)
    assert "1 oct. 2026" in blocks  # the date the data must reach, in the reader's locale
    # a series: mature months have values, the young ones none
    year = shop.ask(KpiRequest(metric="clv_12m", period=parse_period("2025", now=NOW, tz=UTC_TZ), compare=None,
                               granularity="month"))
    values = [p.value.value for p in year.series]
    assert all(v is not None for v in values[:6]) and all(v is None for v in values[7:])
    assert _close(values[3], expected_shop("2025-04")["clv_12m"])


def test_to_date_clv_leaves_guest_revenue_out(shop):
    """The old CLV (to date) divides customers' revenue by customers: a guest's order is neither."""
    o, c = SHOP["orders"], SHOP["customers"]
    hi = datetime(2026, 3, 1)
    kept = o[(o.status != "cancelled") & (o.placed_at < hi)].dropna(subset=["customer_id"])
    want = kept.subtotal.sum() / (c.first_order_at < hi).sum()
    assert _close(_ask(shop, "clv", "2026-02").current.value, want)


def test_notes_say_what_was_left_out(shop):
    want = expected_shop("2026-02")
    aov = _ask(shop, "aov", "2026-02")
    assert [(n.measure, v) for n, v in aov.notes] == [("zero_value_orders", want["zero_value_orders"])]
    lines = "\n".join(result_lines(aov, currency="EUR"))
    assert f"{want['zero_value_orders']} zero-value orders (subtotal 0) are left out of the average." in lines
    assert result_notes(aov, "fr") == [f"{want['zero_value_orders']} commandes à valeur nulle (sous-total 0) "
                                       "sont exclues de la moyenne."]
    for key in ["returning_customer_rate", "repeat_customer_rate", "new_customers", "ordering_customers", "clv_12m"]:
        result = _ask(shop, key, "2026-02")
        assert [v for _, v in result.notes] == [want["guest_orders"]], key
        assert f"{want['guest_orders']} guest orders (no customer account) are not counted." in result_notes(result, "en")
    o = SHOP["orders"]
    guests = int(((o.status != "cancelled") & o.customer_id.isna() & (o.placed_at < datetime(2026, 3, 1))).sum())
    clv = _ask(shop, "clv", "2026-02")
    assert result_notes(clv, "en") == [f"{guests} guest orders up to the period's end (no customer account) are not counted."]
    assert _ask(shop, "revenue", "2026-02").notes == ()  # revenue counts guests and zero-value orders
    assert _ask(shop, "aov_all_orders", "2026-02").notes == ()


def test_notes_reach_slack_and_the_digest(shop):
    from bot.render.answer import kpi_answer
    from bot.render.digest import mover_plain

    aov = _ask(shop, "aov", "2026-02", compare="previous")
    n = expected_shop("2026-02")["zero_value_orders"]
    message = kpi_answer(aov, lang="de", currency="EUR")
    assert f"{n} Bestellungen ohne Wert" in str(message.blocks)
    assert f"{n} zero-value orders" in mover_plain(aov, "en", "EUR")


def test_guests_are_left_out_of_customer_counts(shop):
    """COUNT(DISTINCT customer_id) and the join to customers leave NULL customers out: checked here."""
    o = SHOP["orders"]
    feb = _in(o[o.status != "cancelled"], "placed_at", "2026-02")
    assert feb.customer_id.isna().any()
    assert _ask(shop, "ordering_customers", "2026-02").current.value == feb.customer_id.nunique()
    assert _ask(shop, "orders", "2026-02").current.value == len(feb)  # guests are orders all the same
    assert _close(_ask(shop, "revenue", "2026-02").current.value, feb.subtotal.sum())


def test_breakdowns_and_filters_of_the_new_kpis(shop):
    want = expected_shop("2026-02")
    by = _ask(shop, "repeat_customer_rate", "2026-02", breakdown="channel")
    assert by.breakdown and all(r.value.value is None or 0 <= r.value.value <= 1 for r in by.breakdown)
    o = SHOP["orders"]
    kept = o[o.status != "cancelled"]
    email = kept[kept.channel == "email"]
    hi = _bounds("2026-02")[1]
    buyers = set(_in(email, "placed_at", "2026-02").customer_id.dropna())
    counts = email[email.placed_at < hi].dropna(subset=["customer_id"]).groupby("customer_id").size()
    rate = sum(counts.get(c, 0) > 1 for c in buyers) / len(buyers)
    got = _ask(shop, "repeat_customer_rate", "2026-02", filters=(("channel", ("email",)),)).current.value
    assert _close(got, rate)
    row = {r.key: r for r in by.breakdown}["email"]
    assert _close(row.value.value, rate)
    paid = _ask(shop, "paid_cac", "2026-02", breakdown="channel")
    rows = {r.key: r for r in paid.breakdown}
    assert "organic_search" not in rows  # no spend, and its customers are not paid ones
    assert rows["social"].value.denominator == 0 and rows["social"].value.value is None  # spend rows of 0: not paid
    assert _close(paid.current.value, want["paid_cac"])


def test_neutral_direction_is_never_coloured(shop):
    from bot.render.answer import colour, kpi_answer

    catalog = shop.catalog
    spend = catalog.metric("marketing spend")
    assert spend.higher_is_better is None
    change = change_between(spend, Value(200.0), Value(100.0), moves=[1.0, -1.0, 2.0, -2.0])
    assert change.absolute == 100.0 and change.good is None
    result = _ask(shop, "marketing_spend", "2026-02", compare="previous")
    assert result.change is not None and result.change.good is None
    assert colour(result.change) == ":white_circle:"
    assert " good" not in "\n".join(result_lines(result)) and " bad" not in "\n".join(result_lines(result))
    assert ":red_circle:" not in str(kpi_answer(result).blocks)
    assert any("Neither direction is better" in line for line in definition_lines(define(catalog, spend)))


def test_neutral_direction_in_goals(shop):
    """A spend goal takes no "wrong way" either way; with no target direction known it is a budget (a ceiling)."""
    from kpi.goals import GoalSpec
    from kpi.goals.measure import _direction
    from kpi.goals.smart import smart_check

    spend = shop.catalog.metric("marketing spend")
    for target in (0.2, -0.2):
        spec = GoalSpec("marketing_spend", "relative_pct", target, date(2026, 7, 1), date(2026, 9, 30))
        check = smart_check(shop, spec, today=date(2026, 7, 15), currency="EUR")
        assert not any("wrong way" in w for w in check.warnings), (target, check.warnings)
    revenue = GoalSpec("revenue", "relative_pct", -0.2, date(2026, 7, 1), date(2026, 9, 30))
    assert any("wrong way" in w for w in smart_check(shop, revenue, today=date(2026, 7, 15)).warnings)
    assert _direction(spend) is False and _direction(shop.catalog.metric("revenue")) is True


# -- aliases in three languages ---------------------------------------------------------------------
@pytest.mark.parametrize("words, key", [
    ("net sales", "net_revenue"), ("net revenue", "net_revenue"), ("umsatz netto", "net_revenue"),
    ("nettoumsatz", "net_revenue"), ("chiffre d'affaires net", "net_revenue"), ("CA net", "net_revenue"),
    ("revenue", "revenue"), ("sales", "revenue"), ("umsatz", "revenue"), ("chiffre d'affaires", "revenue"),
    ("refund rate", "refund_rate"), ("taux de remboursement", "refund_rate"), ("Erstattungsquote", "refund_rate"),
    ("return rate", "return_rate"), ("taux de retour", "return_rate"), ("Retourenquote", "return_rate"),
    ("paid cac", "paid_cac"), ("cac payant", "paid_cac"), ("cac", "cac"), ("blended cac", "cac"),
    ("repeat rate", "repeat_customer_rate"), ("repeat customer rate", "repeat_customer_rate"),
    ("taux de réachat", "repeat_customer_rate"), ("Wiederkaufrate", "repeat_customer_rate"),
    ("returning customer rate", "returning_customer_rate"), ("Wiederkäuferrate", "returning_customer_rate"),
    ("clv", "clv"), ("ltv", "clv"), ("lifetime value", "clv"), ("valeur vie client", "clv"), ("kundenwert", "clv"),
    ("12-month clv", "clv_12m"), ("cohort ltv", "clv_12m"), ("clv 12 mois", "clv_12m"), ("kundenwert nach 12 monaten", "clv_12m"), ("aov", "aov"), ("aov all orders", "aov_all_orders"),
    ("aov including zero-value orders", "aov_all_orders"), ("panier moyen toutes commandes", "aov_all_orders"),
])
def test_aliases_lead_where_the_words_usually_mean(words, key):
    catalog = load_catalog(CONFIG)
    assert catalog.aliases[normalise(words)] == key


def test_questions_read_to_the_finance_kpis():
    from kpi.metrics.query import parse_query

    catalog = load_catalog(CONFIG)
    for question, key in [("net sales last month", "net_revenue"), ("refund rate by channel", "refund_rate"),
                          ("Erstattungsquote letzten Monat", "refund_rate"), ("ca net le mois dernier", "net_revenue"),
                          ("repeat rate last quarter", "repeat_customer_rate"), ("paid cac last month", "paid_cac")]:
        assert parse_query(question, catalog, now=NOW, tz=UTC_TZ).request.metric == key, question


# -- definitions ---------------------------------------------------------------------------------------
def test_definitions_state_the_formulas():
    catalog = load_catalog(CONFIG)
    for key in ["net_revenue", "refund_rate", "paid_cac", "repeat_customer_rate", "clv_12m", "aov"]:
        d = define(catalog, catalog.metrics[key])
        assert d.description, key
    text = "\n".join(definition_lines(define(catalog, catalog.metrics["repeat_customer_rate"])))
    assert "COUNT(*) > 1" in text and "Shopify" in text
    text = "\n".join(definition_lines(define(catalog, catalog.metrics["paid_cac"])))
    assert "marketing_spend.channel" in text
    text = "\n".join(definition_lines(define(catalog, catalog.metrics["clv_12m"])))
    assert "12 months" in text


def test_slack_define_shows_the_definition_in_words():
    from bot.render.guide import definition_message

    catalog = load_catalog(CONFIG)
    message = definition_message(define(catalog, catalog.metrics["refund_rate"]))
    text = str(message.blocks)
    assert "Refund rate = refunded ÷ revenue" in text and "Refund rate by value" in text


def test_net_revenue_by_channel_follows_each_refund_to_its_order(shop):
    o, r = SHOP["orders"], SHOP["returns"]
    kept = _in(o[o.status != "cancelled"], "placed_at", "2026-03")
    refunds = _in(r.drop(columns=["channel"]), "returned_at", "2026-03").merge(o[["order_id", "channel"]],
                                                                                on="order_id")
    want = kept.groupby("channel").subtotal.sum().sub(refunds.groupby("channel").amount.sum(), fill_value=0)
    result = _ask(shop, "net_revenue", "2026-03", breakdown="channel")
    got = {row.key: row.value.value for row in result.breakdown}
    assert set(got) == set(want.index)
    assert all(_close(got[k], want[k]) for k in want.index), (got, want.to_dict())
    assert _close(result.current.value, expected_shop("2026-03")["net_revenue"])


def test_catalog_refuses_a_bad_direction_or_horizon():
    raw = {"measures": {"o": {"table": "orders", "time": "placed_at", "agg": "count",
                              "horizon": {"column": "placed_at", "years": 1}}},
           "metrics": {"x": {"type": "simple", "measure": "o", "label": {"en": "X"}, "format": "count",
                             "higher_is_better": "up"}}}
    with pytest.raises(CatalogError) as err:
        parse_catalog(raw)
    assert "higher_is_better" in str(err.value) and "horizon" in str(err.value)


# -- currencies -------------------------------------------------------------------------------------------
def test_mixed_currencies_are_refused_unless_there_are_rates(source_engine):
    shop = {k: v.copy() for k, v in SHOP.items()}
    feb = _in(shop["orders"], "placed_at", "2026-02").index
    shop["orders"].loc[feb[:5], "currency"] = "GBP"
    shop["orders"].loc[feb[5:8], "currency"] = "USD"
    _load(source_engine, shop)
    engine = KpiEngine(load_catalog(CONFIG), source_engine, tz=UTC_TZ, clock=lambda: NOW)
    with pytest.raises(MixedCurrencies) as err:
        _ask(engine, "revenue", "2026-02")
    assert err.value.currencies == ("EUR", "GBP", "USD") and "EUR, GBP, USD" in str(err.value)
    assert _ask(engine, "orders", "2026-02").current.value  # a count is not money: answered
    assert _ask(engine, "revenue", "2026-01").current.value  # one currency that month: answered
    rates = Table("currency_rates", MetaData(), Column("currency", String(3), primary_key=True),
                  Column("rate", Numeric(12, 6, asdecimal=False)))
    rates.create(source_engine)
    with source_engine.begin() as conn:
        conn.execute(insert(rates), [{"currency": "EUR", "rate": 1.0}, {"currency": "GBP", "rate": 1.2}])
    engine = KpiEngine(load_catalog(CONFIG), source_engine, tz=UTC_TZ, clock=lambda: NOW)
    with pytest.raises(MixedCurrencies) as err:
        _ask(engine, "revenue", "2026-02")
    assert err.value.missing == ("USD",)
    with source_engine.begin() as conn:
        conn.execute(insert(rates), [{"currency": "USD", "rate": 0.9}])
    engine = KpiEngine(load_catalog(CONFIG), source_engine, tz=UTC_TZ, clock=lambda: NOW)
    o = _in(shop["orders"][shop["orders"].status != "cancelled"], "placed_at", "2026-02")
    want = (o.subtotal * o.currency.map({"EUR": 1.0, "GBP": 1.2, "USD": 0.9})).sum()
    assert _close(_ask(engine, "revenue", "2026-02").current.value, want)


def test_a_period_whose_days_or_comparison_are_each_in_one_currency_is_refused_too(source_engine):
    # each day of February in one currency, but the month in two: the daily series adds the days up, and a
    # total of euros and pounds is no amount at all; so is a comparison of a pound month with a euro month
    shop = {k: v.copy() for k, v in SHOP.items()}
    feb = _in(shop["orders"], "placed_at", "2026-02")
    shop["orders"].loc[feb[feb.placed_at >= datetime(2026, 2, 15)].index, "currency"] = "GBP"
    mar = _in(shop["orders"], "placed_at", "2026-03").index
    shop["orders"].loc[mar, "currency"] = "GBP"
    _load(source_engine, shop)
    engine = KpiEngine(load_catalog(CONFIG), source_engine, tz=UTC_TZ, clock=lambda: NOW)
    with pytest.raises(MixedCurrencies) as err:
        _ask(engine, "revenue", "2026-02", series=True)
    assert err.value.currencies == ("EUR", "GBP")
    with pytest.raises(MixedCurrencies):
        _ask(engine, "aov", "2026-03", compare="previous")
    assert _ask(engine, "revenue", "2026-03").current.value  # a pound month alone is one currency


def test_amounts_in_another_currency_than_the_answers_are_refused_not_mislabelled(shop):
    # the shop's answers are written in its currency (the newest orders'); a period whose orders are all in
    # another would be shown with the wrong symbol: refused, saying which
    shop.sql.shown_currency = lambda: "USD"
    with pytest.raises(MixedCurrencies) as err:
        _ask(shop, "revenue", "2026-02")
    assert "EUR" in str(err.value) and "USD" in str(err.value)
    shop.sql.shown_currency = lambda: "EUR"
    assert _ask(shop, "revenue", "2026-02").current.value


# -- CDNOW --------------------------------------------------------------------------------------------------
@pytest.fixture
def cdnow_engine(cdnow, source_engine, tmp_path):  # noqa: F811 - the fixture of tests/test_cdnow.py
    canonical = pd.DataFrame({
        "order_id": (cdnow.index + 1).astype(str), "customer_id": cdnow["customer_id"],
        "placed_at": cdnow["date"].str[:4] + "-" + cdnow["date"].str[4:6] + "-" + cdnow["date"].str[6:],
        "subtotal": cdnow["dollar_value"].map("{:.2f}".format), "currency": "USD"})
    path = tmp_path / "cdnow_orders.csv"
    canonical.to_csv(path, index=False)
    import_csv(source_engine, path, "orders", tz=UTC_TZ)
    now = datetime(1998, 7, 15, tzinfo=UTC_TZ)
    return KpiEngine(load_catalog(CONFIG), source_engine, tz=UTC_TZ, clock=lambda: now), now


def test_cdnow_finance_kpis_match_pandas(cdnow, cdnow_engine):  # noqa: F811
    engine, now = cdnow_engine
    df = cdnow.assign(day=pd.to_datetime(cdnow["date"], format="%Y%m%d"))
    first = df.groupby("customer_id")["day"].min().rename("first")
    df = df.join(first, on="customer_id")
    for month in ["1997-01", "1997-02", "1997-03"]:
        cohort = df[df["first"].dt.strftime("%Y-%m") == month]
        window = cohort[cohort["day"] < cohort["first"] + pd.DateOffset(months=12)]
        want = window["dollar_value"].sum() / cohort["customer_id"].nunique()
        got = engine.ask(KpiRequest("clv_12m", parse_period(month, now=now, tz=UTC_TZ), compare=None, series=False))
        assert abs(got.current.value - want) < 0.01, month
    young = engine.ask(KpiRequest("clv_12m", parse_period("1997-08", now=now, tz=UTC_TZ), compare=None, series=False))
    assert young.current.value is None and young.needs_data_until is not None
    for month in ["1997-03", "1997-10", "1998-05"]:
        lo, hi = _bounds(month)
        inside = df[(df["day"] >= lo) & (df["day"] < hi)]
        upto = df[df["day"] < hi].groupby("customer_id").size()
        buyers = inside["customer_id"].unique()
        want = sum(upto[c] > 1 for c in buyers) / len(buyers)
        got = engine.ask(KpiRequest("repeat_customer_rate", parse_period(month, now=now, tz=UTC_TZ), compare=None,
                                    series=False))
        assert abs(got.current.value - want) < 1e-9, month
        valued = inside[inside["dollar_value"] > 0]
        aov = engine.ask(KpiRequest("aov", parse_period(month, now=now, tz=UTC_TZ), compare=None, series=False))
        assert abs(aov.current.value - inside["dollar_value"].sum() / len(valued)) < 0.01, month
        zero = int((inside["dollar_value"] == 0).sum())
        assert [v for _, v in aov.notes] == ([zero] if zero else []), month
    assert (df["dollar_value"] == 0).sum() > 0  # CDNOW has zero-value purchases: the note is exercised
