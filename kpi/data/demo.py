"""A synthetic online shop: ``kpibot demo-data`` fills the six canonical source tables (DESIGN.md section 3).

The data is made to look like a real shop to someone who reads its KPIs, and to be consistent between
tables, so that every KPI of section 4 computed from it is plausible:

* **Demand** per local day = trend (+15 % a year) x weekly pattern (Saturday dip, Sunday evening
  recovery) x yearly pattern (January and summer dips, Black Friday / Cyber Monday spikes, a December
  gift peak that collapses at Christmas) x daily noise. Three quarters of it moves sessions, one
  quarter moves conversion (people convert better in peak season).
* **Traffic** per day x channel x device x country: sessions (Poisson around the demand), visitors
  (< sessions), carts (so that cart abandonment is about 70 %, more on mobile). Email sessions follow
  the email campaigns' clicks.
* **Orders** are drawn *from* the sessions of each traffic cell (binomial with the cell's conversion:
  about 2.5 % overall, higher for email and direct, lower for social and mobile), so conversion by
  channel, device or country computed from the tables is meaningful. Times follow a daily curve in the
  shop's time zone and are stored as naive UTC. About 2 % are cancelled. Subtotals are lognormal
  (medians by channel and device, means around $60-90), with discounts, shipping and tax by country.
* **Customers** come from a pool per country: an order is from a returning customer with a probability
  that grows over the first months (to about 40 % of orders; high for email and direct, low for paid
  and social). ``customers.first_order_at`` is exactly the customer's first non-cancelled order and
  ``acquisition_channel`` its channel.
* **Returns**: about 6 % of non-cancelled orders, 3-30 days later, never after the last day.
* **Marketing spend** per day for the paid channels (cost per session x seasonal auction pressure)
  and a small email platform cost, so that CAC is about $20-60 and CLV:CAC above 1.
* **Email campaigns**: about two a week (more before Christmas), to a list that grows with the shop.

Everything is drawn with ``numpy.random.Generator(PCG64)`` streams derived from ``seed``: the same seed,
size and ``today`` give identical rows on every backend. Orders are generated vectorised, in chunks of
days (memory stays flat: a 10-million-order load peaks at a few hundred MB), and written through the
raw DBAPI connection in one transaction: ``executemany`` on SQLite, ``COPY`` on PostgreSQL, SQLAlchemy
``executemany`` on any other dialect.

One module: the tables are drawn in one fixed order from streams of one seed, over one calendar of
demand (orders from the traffic cells, customers from the orders, returns and spend from both); that
order is what makes the same seed give the same shop everywhere, and it reads best in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Index, Table, inspect, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, DropIndex

from kpi.db_writing import writing
from kpi.errors import KpiError
from kpi.i18n import babel_locale, format_decimal, tr

from .schema import (
    create_source_tables,
    customers,
    email_campaigns,
    index_columns,
    marketing_spend,
    orders,
    returns,
    traffic,
)

__all__ = ["DemoSummary", "generate_demo_data", "source_is_empty"]

DEMO_TABLES: tuple[Table, ...] = (orders, returns, customers, traffic, marketing_spend, email_campaigns)

# --- the shop's dimensions -------------------------------------------------------------------------
CHANNELS = ("organic_search", "paid_search", "social", "email", "direct", "referral")
_CH_SHARE = np.array([0.31, 0.20, 0.17, 0.025, 0.21, 0.085])  # sessions (email: outside campaigns)
_CH_CONV = np.array([1.00, 1.25, 0.55, 2.40, 1.35, 1.00])  # conversion multiplier
_CH_BASKET = np.array([62.0, 65.0, 50.0, 70.0, 74.0, 60.0])  # median subtotal ($)
_CH_RETURNING = np.array([0.90, 0.60, 0.55, 2.40, 1.50, 0.90])  # share of orders by known customers
_CH_RETURNS = np.array([1.00, 1.00, 1.40, 0.80, 0.90, 1.00])  # product return multiplier
_CH_CPC = np.array([0.0, 1.60, 0.90, 0.0, 0.0, 0.0])  # cost per session ($); email costs per send
_EMAIL = CHANNELS.index("email")

DEVICES = ("desktop", "mobile", "tablet")
_DEV_SHARE_WEEKDAY = np.array([0.37, 0.53, 0.10])
_DEV_SHARE_WEEKEND = np.array([0.29, 0.62, 0.09])
_DEV_CONV = np.array([1.45, 0.70, 1.05])
_DEV_BASKET = np.array([1.10, 0.93, 1.00])
_DEV_ABANDON = np.array([1.9, 3.4, 2.5])  # abandoned carts per order: 66 %, 77 %, 71 % abandonment
_DEV_REPEAT_VISIT = np.array([0.26, 0.20, 0.22])  # share of sessions by a visitor seen that day

COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU")
_CO_SHARE = np.array([0.46, 0.16, 0.11, 0.09, 0.10, 0.08])
_CO_CONV = np.array([1.05, 1.00, 0.95, 0.88, 0.98, 0.92])
_CO_TAX = np.array([0.07, 0.20, 0.19, 0.20, 0.13, 0.10])
_CO_SHIPPING = np.array([599, 499, 599, 599, 899, 999])  # cents
_CO_FREE_SHIPPING = np.array([5000, 6000, 6000, 6000, 7500, 9000])  # cents, from this subtotal up
_CO_RETURNS = np.array([0.90, 1.10, 1.60, 1.20, 1.00, 1.00])

_NCH, _NDEV, _NCO = len(CHANNELS), len(DEVICES), len(COUNTRIES)
_NCELL = _NCH * _NDEV * _NCO
_CELL = np.arange(_NCELL)
_CELL_CH = _CELL // (_NDEV * _NCO)
_CELL_DEV = (_CELL // _NCO) % _NDEV
_CELL_CO = _CELL % _NCO

# share of a day's orders by local hour: quiet nights, a lunch plateau, an evening peak
_HOURS = np.array([2.0, 1.2, 0.8, 0.6, 0.5, 0.6, 1.0, 1.8, 2.8, 3.6, 4.2, 4.6,
                   5.0, 5.0, 4.7, 4.5, 4.5, 4.8, 5.3, 6.0, 6.6, 6.4, 5.2, 3.5])
_HOURS = _HOURS / _HOURS.sum()
# Monday .. Sunday
_WEEKLY = np.array([1.06, 1.03, 1.01, 0.99, 0.94, 0.86, 1.04])
# mid-month seasonal level, January .. December (events are added on top)
_MONTHLY = np.array([0.86, 0.88, 0.95, 0.97, 1.00, 0.95, 0.87, 0.86, 0.97, 1.02, 1.06, 1.08])
# campaign probability by weekday (about two a week)
_CAMPAIGN_P = np.array([0.05, 0.90, 0.05, 0.80, 0.10, 0.12, 0.05])

_CONVERSION = 0.025  # overall session -> order
_RETURN_RATE = 0.065  # of non-cancelled orders (a few fall after the last day and are not recorded)
_CANCEL_RATE = 0.02
_GROWTH = 1.15  # a year

_CHUNK_ORDERS = 250_000  # orders generated at once
_BATCH_ROWS = 50_000  # rows converted to Python objects and written at once


@dataclass(frozen=True)
class DemoSummary:
    days: int
    first_day: date
    last_day: date
    orders: int
    customers: int
    returns: int
    traffic_rows: int
    spend_rows: int
    campaigns: int
    seconds: float

    def describe(self, lang: str | None = "en") -> str:
        n = self.numbers(lang)
        return tr(lang, "{orders} orders, {customers} customers, {returns} returns, {traffic_rows} traffic rows, "
                  "{spend_rows} spend rows and {campaigns} email campaigns for {days} days ({first_day} to "
                  "{last_day}) in {seconds} s", **n, days=self.days, first_day=self.first_day, last_day=self.last_day)

    def numbers(self, lang: str | None = "en") -> dict[str, str]:
        """The counts grouped as ``lang`` writes them (English: 12,345), and the seconds to a tenth."""
        locale = babel_locale(lang)
        counts = {k: format_decimal(getattr(self, k), locale=locale)
                  for k in ("orders", "customers", "returns", "traffic_rows", "spend_rows", "campaigns")}
        return counts | {"seconds": format_decimal(Decimal(f"{self.seconds:.1f}"), format="0.0", locale=locale)}


def source_is_empty(engine: Engine) -> bool:
    """True when the source holds no orders and no traffic rows (missing tables count as empty)."""
    insp = inspect(engine)
    present = set(insp.get_table_names()) | set(insp.get_view_names())
    with engine.connect() as conn:
        for table in (orders, traffic):
            if table.name in present and conn.execute(_any_row(table)).first() is not None:
                return False
    return True


def generate_demo_data(
    engine: Engine,
    *,
    days: int = 730,
    orders_per_day: int = 300,
    seed: int = 42,
    today: date,
    tz: ZoneInfo,
    currency: str = "USD",
    replace: bool = False,
) -> DemoSummary:
    """Fill the canonical source tables with ``days`` days of a synthetic shop ending yesterday.

    ``today`` is the shop's local date (the caller's clock: this never reads one); the data covers the
    ``days`` local days before it. ``orders_per_day`` is the average over the period (the last months
    run above it, the first below). The same seed, sizes and ``today`` give the same rows (for a given
    numpy version: numpy may change a distribution's stream between versions). Refuses a source that already holds shop data unless ``replace``, which deletes every row of the six
    canonical tables first, in the same transaction as the load. Creates missing tables.
    """
    started = time.perf_counter()
    if isinstance(today, datetime):
        today = today.date()
    if not isinstance(days, int) or days < 1:
        raise KpiError("--days must be a whole number of days, at least 1 (got {value}).", value=repr(days))
    if not isinstance(orders_per_day, int) or orders_per_day < 1:
        raise KpiError("--orders-per-day must be a whole number, at least 1 (got {value}).", value=repr(orders_per_day))
    if not isinstance(seed, int) or seed < 0:
        raise KpiError("--seed must be a non-negative whole number (got {value}).", value=repr(seed))
    currency = (currency or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise KpiError("the currency must be a three-letter ISO code such as USD (got {value}).", value=repr(currency))

    first_day = today - timedelta(days=days)
    plan = _Plan(first_day, days, orders_per_day, seed, tz)
    create_source_tables(engine)
    with writing(engine) as writer:  # DuckDB: a private copy, published whole at the end (kpi.db_writing)
        indexes = _bulk_indexes(writer)

        with _sink_for(writer) as sink:
            busy = [t.name for t in DEMO_TABLES if sink.has_rows(t)]
            if busy and not replace:
                raise KpiError(
                    "the source database already holds shop data (rows in {tables}); demo data is only generated "
                    "into an empty source. Use --replace to delete every row of the six canonical tables and "
                    "generate anew.", tables=", ".join(busy)
                )
            if busy:
                sink.clear(DEMO_TABLES)
            sink.drop_indexes(indexes)
            sink.write(traffic, [plan.traffic_columns()])
            sink.write(marketing_spend, [plan.spend_columns()])
            sink.write(email_campaigns, [plan.campaign_columns()])
            n_orders, n_returns = 0, 0
            for chunk in plan.order_chunks(currency):
                sink.write(orders, [chunk.orders])
                sink.write(returns, [chunk.returns])
                n_orders += chunk.n_orders
                n_returns += chunk.n_returns
            sink.write(customers, plan.customer_parts())
            sink.create_indexes(indexes)
            sink.commit()
        sink.analyze(DEMO_TABLES)

    return DemoSummary(
        days=days,
        first_day=first_day,
        last_day=today - timedelta(days=1),
        orders=n_orders,
        customers=plan.n_customers,
        returns=n_returns,
        traffic_rows=plan.n_traffic_rows,
        spend_rows=plan.n_spend_rows,
        campaigns=plan.n_campaigns,
        seconds=round(time.perf_counter() - started, 3),
    )


# --- the model -------------------------------------------------------------------------------------
# Columns handed to a sink: name -> (kind, array). Kinds: "str" (object array), "int" (int64),
# "money" (int64 cents), "ts" (int64 UTC epoch seconds, -1 = NULL), "day" (int64 days since 1970-01-01).
Columns = dict[str, tuple[str, np.ndarray]]


@dataclass
class _OrderChunk:
    orders: Columns
    returns: Columns
    n_orders: int
    n_returns: int


def _local_to_utc(local_seconds: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Naive local wall-clock times (epoch seconds) in ``tz`` -> UTC epoch seconds. Nonexistent times
    (spring forward) move forward, ambiguous ones (fall back) take the second occurrence."""
    idx = pd.DatetimeIndex(local_seconds.astype("datetime64[s]"))
    utc = idx.tz_localize(tz, ambiguous=np.zeros(len(idx), dtype=bool), nonexistent="shift_forward")
    return utc.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def _thanksgiving(year: int) -> date:
    nov1 = date(year, 11, 1)
    return nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)


class _Plan:
    """Day-level model (calendar, traffic, spend, campaigns) drawn up front; orders drawn in chunks."""

    def __init__(self, first_day: date, days: int, orders_per_day: int, seed: int, tz: ZoneInfo):
        self.tz = tz
        self.days = days
        self.opd = orders_per_day
        streams = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(5)]
        self._rng_day, self._rng_mail, self._rng_traffic, self._rng_orders, self._rng_spend = streams

        self.day0 = (first_day - date(1970, 1, 1)).days
        self.day_numbers = self.day0 + np.arange(days, dtype=np.int64)
        d64 = self.day_numbers.astype("datetime64[D]")
        self.weekday = (self.day_numbers + 3) % 7  # 1970-01-01 was a Thursday
        self.month = d64.astype("datetime64[M]").astype(np.int64) % 12 + 1
        self.mday = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
        doy = (d64 - d64.astype("datetime64[Y]")).astype(np.int64)
        years = d64.astype("datetime64[Y]").astype(np.int64) + 1970
        self.t_years = np.arange(days) / 365.25
        self.end_utc = int(_local_to_utc(np.array([(self.day0 + days) * 86400], dtype=np.int64), tz)[0])

        # demand: trend x weekly x yearly x events (mean 1 over the period), and noise
        yearly = np.interp(doy, 15.2 + 30.44 * np.arange(12), _MONTHLY, period=365.25)
        event = np.ones(days)
        promo = np.zeros(days, dtype=bool)  # deep-discount days
        gifts = (self.month == 12) & (self.mday <= 20)
        event[gifts] *= 1.15
        for mday, factor in ((24, 0.75), (25, 0.55), (26, 1.10), (31, 0.85)):
            event[(self.month == 12) & (self.mday == mday)] *= factor
        event[(self.month == 1) & (self.mday == 1)] *= 0.70
        for year in range(int(years.min()), int(years.max()) + 1):
            tg = (_thanksgiving(year) - first_day).days
            for offset, factor in ((-7, 1.1), (-6, 1.12), (-5, 1.15), (-4, 1.15), (-3, 1.18), (-2, 1.2),
                                   (-1, 1.22), (0, 1.25), (1, 2.6), (2, 1.8), (3, 1.6), (4, 2.2), (5, 1.3)):
                if 0 <= tg + offset < days:
                    event[tg + offset] *= factor
                    promo[tg + offset] = offset >= 1
        demand = _GROWTH ** self.t_years * _WEEKLY[self.weekday] * yearly * event
        self.demand = demand / demand.mean()
        self.promo = promo
        self.gifts = gifts
        rng = self._rng_day
        session_noise = rng.lognormal(0.0, 0.05, days)
        conversion_noise = rng.lognormal(0.0, 0.04, days)

        self._plan_campaigns()
        self._plan_traffic(session_noise, conversion_noise)
        self._plan_spend()

        # customers: a pool per country (capacity: every order of the country could be a new customer)
        orders_by_country = np.bincount(np.tile(_CELL_CO, days), weights=self.cell_orders.ravel(), minlength=_NCO)
        self._pools = [np.empty(int(n), dtype=np.int64) for n in orders_by_country]
        self._pool_len = np.zeros(_NCO, dtype=np.int64)
        total = int(self.cell_orders.sum())
        self._cust_first = np.full(total, -1, dtype=np.int64)
        self._cust_channel = np.zeros(total, dtype=np.int8)
        self._cust_country = np.zeros(total, dtype=np.int8)
        self.n_customers = 0
        self._next_order = 0
        self._next_return = 0
        # returning-customer propensity by channel, normalised over the expected order mix
        mix = _CH_SHARE * _CH_CONV
        mix[_EMAIL] = 0.06 * _CH_CONV[_EMAIL]
        self._ch_returning = _CH_RETURNING / (np.sum(mix * _CH_RETURNING) / mix.sum())
        rmix = mix[:, None] * _CO_SHARE[None, :]
        self._return_p = (_RETURN_RATE / np.sum(rmix * np.outer(_CH_RETURNS, _CO_RETURNS)) * rmix.sum()
                          * np.outer(_CH_RETURNS, _CO_RETURNS))

    # -- day level --
    def _plan_campaigns(self) -> None:
        rng = self._rng_mail
        days = self.days
        p = _CAMPAIGN_P[self.weekday].copy()
        p[((self.month == 11) & (self.mday >= 15)) | self.gifts] += 0.25
        sent = rng.random(days) < p
        sent |= self.promo & np.isin(self.weekday, (4, 0))  # Black Friday and Cyber Monday
        send_day = np.flatnonzero(sent)
        n = send_day.size
        send_second = rng.integers(8 * 3600, 11 * 3600, n)
        expected_orders = self.opd * self.demand
        before = np.concatenate([[0.0], np.cumsum(expected_orders)[:-1]])
        subscribers = 30.0 * self.opd + 0.3 * before[send_day]
        delivered = np.round(subscribers * rng.uniform(0.975, 0.995, n)).astype(np.int64)
        opens = rng.binomial(delivered, rng.uniform(0.20, 0.34, n))
        clicks = rng.binomial(opens, rng.uniform(0.06, 0.14, n))
        local = (self.day_numbers[send_day] * 86400 + send_second).astype(np.int64)
        self.campaign_day = send_day
        self.campaign_sent = _local_to_utc(local, self.tz)
        self.campaign_delivered = delivered
        self.campaign_opens = opens
        self.campaign_clicks = clicks
        self.n_campaigns = n
        # a click is a session, a little browsing adds some: 70 % the same day, 30 % the next
        extra = np.zeros(days + 1)
        np.add.at(extra, send_day, 0.80 * clicks)
        np.add.at(extra, send_day + 1, 0.35 * clicks)
        self.email_extra_sessions = extra[:days]

    def _plan_traffic(self, session_noise: np.ndarray, conversion_noise: np.ndarray) -> None:
        rng = self._rng_traffic
        days = self.days
        weekend = self.weekday >= 5
        ch_share = np.tile(_CH_SHARE, (days, 1))
        ch_share[weekend, CHANNELS.index("social")] *= 1.25
        q4 = (self.month == 12) & (self.mday <= 20) | (self.month == 11) | ((self.month == 10) & (self.mday >= 15))
        ch_share[q4, CHANNELS.index("paid_search")] *= 1.2
        ch_share[q4, CHANNELS.index("social")] *= 1.2
        ch_share /= ch_share.sum(axis=1, keepdims=True)
        dev_share = np.where(weekend[:, None], _DEV_SHARE_WEEKEND, _DEV_SHARE_WEEKDAY)
        dev_share = dev_share * np.column_stack([np.ones(days), 1 + 0.05 * self.t_years, np.ones(days)])
        dev_share /= dev_share.sum(axis=1, keepdims=True)
        cell_share = ch_share[:, _CELL_CH] * dev_share[:, _CELL_DEV] * _CO_SHARE[_CELL_CO]
        email_cell = np.where(_CELL_CH == _EMAIL, dev_share[:, _CELL_DEV] * _CO_SHARE[_CELL_CO], 0.0)

        cell_conv = _CH_CONV[_CELL_CH] * _DEV_CONV[_CELL_DEV] * _CO_CONV[_CELL_CO]
        mean_conv = np.sum(_CH_SHARE[_CELL_CH] * _DEV_SHARE_WEEKDAY[_CELL_DEV] * _CO_SHARE[_CELL_CO] * cell_conv)
        conv = (_CONVERSION / mean_conv) * cell_conv[None, :] * (self.demand ** 0.25 * conversion_noise)[:, None]
        conv = np.minimum(conv, 0.5)

        # scale each day to its share of the orders; a campaign lifts its day by half its email orders
        base = cell_share * (self.demand ** 0.75 * session_noise)[:, None]
        email = email_cell * self.email_extra_sessions[:, None]
        email_orders = np.sum(email * conv, axis=1)
        target = self.demand * session_noise * conversion_noise
        weight = np.maximum(target - 0.5 * email_orders / self.opd, 0.5 * target)
        base_orders = weight * max(self.opd * days - email_orders.sum(), 0.5 * self.opd * days) / weight.sum()
        scale = base_orders / np.sum(base * conv, axis=1)
        expected = (base * scale[:, None] + email) * rng.lognormal(0.0, 0.08, base.shape)
        sessions = rng.poisson(expected)
        cell_orders = rng.binomial(sessions, conv)
        repeat = rng.binomial(sessions, _DEV_REPEAT_VISIT[_CELL_DEV][None, :])
        visitors = np.maximum(sessions - repeat, np.maximum(cell_orders, 1))
        abandon_p = np.minimum(conv * _DEV_ABANDON[_CELL_DEV][None, :] / (1 - conv), 0.9)
        carts = cell_orders + rng.binomial(sessions - cell_orders, abandon_p)
        self.sessions = sessions
        self.cell_orders = cell_orders
        self.visitors = np.minimum(visitors, sessions)
        self.carts = carts
        self.n_traffic_rows = int(np.count_nonzero(sessions))

    def _plan_spend(self) -> None:
        rng = self._rng_spend
        days = self.days
        sessions_by_channel = self.sessions.reshape(days, _NCH, _NDEV * _NCO).sum(axis=2)
        pressure = np.ones(days)
        pressure[self.month == 10] = 1.05
        pressure[self.month == 11] = 1.25
        pressure[self.month == 12] = 1.20
        pressure[self.promo] = 1.5
        paid = np.flatnonzero(_CH_CPC > 0)
        cents = np.round(sessions_by_channel[:, paid] * _CH_CPC[paid] * pressure[:, None]
                         * rng.lognormal(0.0, 0.06, (days, paid.size)) * 100).astype(np.int64)
        email = np.full(days, round(8.0 * self.opd))  # the email platform, a day
        np.add.at(email, self.campaign_day, np.round(self.campaign_delivered * 0.08).astype(np.int64))
        self._spend_channels = np.concatenate([paid, [_EMAIL]])
        self._spend_cents = np.column_stack([cents, email])
        self.n_spend_rows = int(self._spend_cents.size)

    def traffic_columns(self) -> Columns:
        day_idx, cell = np.nonzero(self.sessions)
        return {
            "day": ("day", self.day_numbers[day_idx]),
            "channel": ("str", _labels(CHANNELS, _CELL_CH[cell])),
            "device": ("str", _labels(DEVICES, _CELL_DEV[cell])),
            "country": ("str", _labels(COUNTRIES, _CELL_CO[cell])),
            "sessions": ("int", self.sessions[day_idx, cell]),
            "visitors": ("int", self.visitors[day_idx, cell]),
            "carts": ("int", self.carts[day_idx, cell]),
        }

    def spend_columns(self) -> Columns:
        n_ch = self._spend_channels.size
        return {
            "day": ("day", np.repeat(self.day_numbers, n_ch)),
            "channel": ("str", _labels(CHANNELS, np.tile(self._spend_channels, self.days))),
            "amount": ("money", self._spend_cents.ravel()),
        }

    def campaign_columns(self) -> Columns:
        return {
            "campaign_id": ("str", _ids("CMP", np.arange(1, self.n_campaigns + 1), 5)),
            "sent_at": ("ts", self.campaign_sent),
            "delivered": ("int", self.campaign_delivered),
            "unique_opens": ("int", self.campaign_opens),
            "clicks": ("int", self.campaign_clicks),
        }

    # -- orders, returns, customers --
    def order_chunks(self, currency: str):
        per_day = self.cell_orders.sum(axis=1)
        start, acc = 0, 0
        for d in range(self.days):
            acc += int(per_day[d])
            if acc >= _CHUNK_ORDERS or d == self.days - 1:
                yield self._order_chunk(start, d + 1, currency)
                start, acc = d + 1, 0

    def _order_chunk(self, d0: int, d1: int, currency: str) -> _OrderChunk:
        rng = self._rng_orders
        counts = self.cell_orders[d0:d1].ravel()
        cell = np.repeat(np.arange(counts.size), counts)
        day = d0 + cell // _NCELL
        cell %= _NCELL
        n = cell.size
        local = self.day_numbers[day] * 86400 + rng.choice(24, size=n, p=_HOURS) * 3600 + rng.integers(0, 3600, n)
        placed = _local_to_utc(local, self.tz)
        order = np.argsort(placed, kind="stable")
        placed, day, cell = placed[order], day[order], cell[order]
        ch, dev, co = _CELL_CH[cell], _CELL_DEV[cell], _CELL_CO[cell]

        cancelled = rng.random(n) < _CANCEL_RATE
        returning_p = np.minimum((0.08 + 0.28 * (1 - np.exp(-day / 120.0))) * self._ch_returning[ch], 0.92)
        is_new = rng.random(n) >= returning_p
        u = rng.random(n)
        recency = np.where(rng.random(n) < 0.5, u ** 0.35, u)  # half the repeat buyers bought recently
        cust = self._assign_customers(is_new, ch, co, recency)

        # customers' first non-cancelled order (chunks come in time order, so the first one seen wins)
        ok = ~cancelled
        uniq, first = np.unique(cust[ok], return_index=True)
        fresh = self._cust_first[uniq] < 0
        self._cust_first[uniq[fresh]] = placed[ok][first[fresh]]
        self._cust_channel[uniq[fresh]] = ch[ok][first[fresh]]

        # money, in cents
        median = _CH_BASKET[ch] * _DEV_BASKET[dev] * np.where(self.gifts[day], 1.08, 1.0) * np.where(self.promo[day], 0.95, 1.0)
        subtotal = np.clip(np.round(median * rng.lognormal(0.0, 0.5, n) * 100), 500, 150_000).astype(np.int64)
        discount_p = np.where(self.promo[day], 0.65, np.where(ch == _EMAIL, 0.45, 0.20))
        rate = rng.choice(np.array([0.10, 0.15, 0.20, 0.25]), size=n) + np.where(self.promo[day], 0.05, 0.0)
        discount = np.where(rng.random(n) < discount_p, np.round(subtotal * rate / (1 - rate)), 0).astype(np.int64)
        shipping = np.where(subtotal >= _CO_FREE_SHIPPING[co], 0, _CO_SHIPPING[co]).astype(np.int64)
        tax = np.round((subtotal + shipping) * _CO_TAX[co]).astype(np.int64)

        order_seq = self._next_order + np.arange(n)
        self._next_order += n
        order_cols: Columns = {
            "order_id": ("str", _ids("O", order_seq + 1, 9)),
            "customer_id": ("str", _ids("C", cust + 1, 8)),
            "placed_at": ("ts", placed),
            "status": ("str", _labels(("placed", "cancelled"), cancelled.astype(np.int64))),
            "subtotal": ("money", subtotal),
            "discount": ("money", discount),
            "shipping": ("money", shipping),
            "tax": ("money", tax),
            "currency": ("str", np.full(n, currency, dtype=object)),
            "channel": ("str", _labels(CHANNELS, ch)),
            "device": ("str", _labels(DEVICES, dev)),
            "country": ("str", _labels(COUNTRIES, co)),
        }

        # returns: 3 to 30 days later (mostly in the first two weeks), not after the last day
        chosen = np.flatnonzero(ok & (rng.random(n) < self._return_p[ch, co]))
        k = chosen.size
        delay = 3 * 86400 + (rng.beta(1.6, 3.0, k) * 27 * 86400).astype(np.int64)
        partial = rng.random(k) >= 0.6
        share = rng.uniform(0.2, 0.9, k)
        items = 1 + rng.poisson(0.35, k)
        returned_at = placed[chosen] + delay
        keep = returned_at < self.end_utc
        chosen, returned_at, partial, share, items = chosen[keep], returned_at[keep], partial[keep], share[keep], items[keep]
        amount = np.where(partial, np.maximum(np.round(subtotal[chosen] * share), 1), subtotal[chosen]).astype(np.int64)
        m = chosen.size
        return_cols: Columns = {
            "return_id": ("str", _ids("R", self._next_return + 1 + np.arange(m), 8)),
            "order_id": ("str", order_cols["order_id"][1][chosen]),
            "returned_at": ("ts", returned_at),
            "amount": ("money", amount),
            "items": ("int", items.astype(np.int64)),
            # the return's own dimensions: its order's
            **{d: ("str", order_cols[d][1][chosen]) for d in ("channel", "device", "country", "customer_id")},
        }
        self._next_return += m
        return _OrderChunk(order_cols, return_cols, n, m)

    def _assign_customers(self, is_new: np.ndarray, ch: np.ndarray, co: np.ndarray, recency: np.ndarray) -> np.ndarray:
        """Customer numbers for time-sorted orders: a new customer gets the next number; a returning
        order picks a customer of its country who existed before it (skewed to recent customers)."""
        positions = [np.flatnonzero(co == c) for c in range(_NCO)]
        for c, pos in enumerate(positions):
            if self._pool_len[c] == 0 and pos.size:
                is_new[pos[0]] = True  # the country's very first order cannot be a repeat
        new_pos = np.flatnonzero(is_new)
        cust = np.full(is_new.size, -1, dtype=np.int64)
        cust[new_pos] = self.n_customers + np.arange(new_pos.size)
        self._cust_country[cust[new_pos]] = co[new_pos]
        self._cust_channel[cust[new_pos]] = ch[new_pos]
        self.n_customers += new_pos.size
        for c, pos in enumerate(positions):
            if not pos.size:
                continue
            new_here = is_new[pos]
            start = int(self._pool_len[c])
            created = cust[pos[new_here]]
            pool = self._pools[c]
            pool[start:start + created.size] = created
            available = start + np.cumsum(new_here) - new_here  # customers of the country before the order
            rep = ~new_here
            pick = np.minimum((available[rep] * recency[pos[rep]]).astype(np.int64), available[rep] - 1)
            cust[pos[rep]] = pool[pick]
            self._pool_len[c] = start + created.size
        return cust

    def customer_parts(self) -> Iterator[Columns]:
        for lo in range(0, self.n_customers, _CHUNK_ORDERS):
            hi = min(lo + _CHUNK_ORDERS, self.n_customers)
            yield {
                "customer_id": ("str", _ids("C", np.arange(lo + 1, hi + 1), 8)),
                "first_order_at": ("ts", self._cust_first[lo:hi]),
                "acquisition_channel": ("str", _labels(CHANNELS, self._cust_channel[lo:hi])),
                "country": ("str", _labels(COUNTRIES, self._cust_country[lo:hi])),
            }


def _labels(names: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    return np.array(names, dtype=object)[codes]


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded identifiers (``O000000001``), vectorised; sortable in creation order."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.empty(0, dtype=object)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


# --- writing ----------------------------------------------------------------------------------------
def _any_row(table: Table):
    return select(literal(1)).select_from(table).limit(1)


def _python_lists(columns: Columns, names: list[str], lo: int, hi: int, text_times: bool) -> list[list]:
    """Columns [lo, hi) as Python lists, in ``names`` order. With ``text_times`` timestamps and days are
    strings in SQLAlchemy's SQLite storage format (which PostgreSQL's COPY also reads)."""
    out = []
    for name in names:
        kind, arr = columns[name]
        part = arr[lo:hi]
        if kind == "money":
            out.append((part / 100).tolist())
        elif kind in ("int", "str"):
            out.append(part.tolist())
        elif kind == "day":
            d64 = part.astype("datetime64[D]")
            out.append(np.datetime_as_string(d64).tolist() if text_times else d64.tolist())
        elif kind == "ts":
            null = part < 0
            t64 = np.where(null, 0, part).astype("datetime64[s]")
            if text_times:
                text = np.datetime_as_string(t64, unit="us")
                text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")  # 'T' -> ' '
                values = text.tolist()
            else:
                values = t64.astype("datetime64[us]").tolist()
            for i in np.flatnonzero(null).tolist():
                values[i] = None
            out.append(values)
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
    return out


class _Sink:
    """One transaction on the source: check, clear, bulk-write, commit (rollback on error)."""

    text_times = False

    def __init__(self, engine: Engine):
        self.engine = engine

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self.rollback()
        finally:
            self.close()

    def write(self, table: Table, parts: Iterable[Columns]) -> None:
        """Write every row of ``parts`` (column sets) into ``table``, converted in batches."""
        names = [c.name for c in table.columns]

        def batches() -> Iterator[list[list]]:
            for columns in parts:
                if set(names) != set(columns):  # pragma: no cover - programming error
                    raise ValueError(f"{table.name}: columns {sorted(set(names) ^ set(columns))} do not match")
                total = len(next(iter(columns.values()))[1])
                for lo in range(0, total, _BATCH_ROWS):
                    yield _python_lists(columns, names, lo, min(lo + _BATCH_ROWS, total), self.text_times)

        self._insert(table, names, batches())

    def drop_indexes(self, indexes: list[Index]) -> None:
        """Drop secondary indexes for the load (inside its transaction); ``create_indexes`` rebuilds
        them, sorted in one pass, which beats maintaining them row by row."""
        for index in indexes:
            self._ddl(DropIndex(index))

    def create_indexes(self, indexes: list[Index]) -> None:
        for index in indexes:
            self._ddl(CreateIndex(index))

    def analyze(self, tables) -> None:
        """Refresh the planner's statistics after a bulk load (best effort)."""

    # implemented per backend
    def has_rows(self, table: Table) -> bool: ...  # pragma: no cover
    def clear(self, tables) -> None: ...  # pragma: no cover
    def _ddl(self, statement) -> None: ...  # pragma: no cover
    def _insert(self, table: Table, names: list[str], batches: Iterator[list[list]]) -> None: ...  # pragma: no cover
    def commit(self) -> None: ...  # pragma: no cover
    def rollback(self) -> None: ...  # pragma: no cover
    def close(self) -> None: ...  # pragma: no cover


class _SqlAlchemySink(_Sink):
    """Any dialect: SQLAlchemy executemany in one transaction."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.conn = engine.connect()
        self.tx = self.conn.begin()

    def has_rows(self, table):
        return self.conn.execute(_any_row(table)).first() is not None

    def clear(self, tables):
        for table in tables:
            self.conn.execute(table.delete())

    def _ddl(self, statement):
        self.conn.execute(statement)

    def _insert(self, table, names, batches):
        for cols in batches:
            self.conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)])

    def commit(self):
        self.tx.commit()

    def rollback(self):
        if self.tx.is_active:
            self.tx.rollback()

    def close(self):
        self.conn.close()


class _SqliteSink(_Sink):
    """pysqlite: executemany on the raw connection in one ``BEGIN IMMEDIATE`` transaction. For the load
    only (restored afterwards): ``synchronous=OFF``, a large page cache, sorter threads for the index
    rebuilds, and -- when no other connection has the file open -- a rollback journal instead of WAL,
    so that the new pages are written once rather than to the WAL and again at the checkpoint."""

    text_times = True
    _LOAD_PRAGMAS = {"synchronous": "OFF", "cache_size": "-131072", "threads": "2"}  # cache: 128 MiB

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.raw = engine.raw_connection()
        self.con = self.raw.driver_connection
        self.dialect = engine.dialect
        self._isolation = self.con.isolation_level
        self.con.isolation_level = None  # we issue BEGIN / COMMIT ourselves
        self._saved = {name: self._pragma(name) for name in self._LOAD_PRAGMAS}
        for name, value in self._LOAD_PRAGMAS.items():
            self.con.execute(f"PRAGMA {name}={value}")
        self._wal = str(self._pragma("journal_mode")).lower() == "wal"
        if self._wal:
            self._journal("DELETE")
        self.con.execute("BEGIN IMMEDIATE")
        self._open = True

    def _pragma(self, name: str):
        return self.con.execute(f"PRAGMA {name}").fetchone()[0]

    def _journal(self, mode: str) -> None:
        """Switch the journal mode if nobody else holds the file; otherwise leave it (no waiting)."""
        import sqlite3

        timeout = self._pragma("busy_timeout")
        self.con.execute("PRAGMA busy_timeout=0")
        try:
            self.con.execute(f"PRAGMA journal_mode={mode}").fetchall()
        except sqlite3.OperationalError:
            pass
        finally:
            self.con.execute(f"PRAGMA busy_timeout={int(timeout)}")

    def _sql(self, statement) -> str:
        return str(statement.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))

    def has_rows(self, table):
        return self.con.execute(self._sql(_any_row(table))).fetchone() is not None

    def clear(self, tables):
        for table in tables:
            self.con.execute(self._sql(table.delete()))

    def _ddl(self, statement):
        self.con.execute(self._sql(statement))

    def _insert(self, table, names, batches):
        compiled = table.insert().compile(dialect=self.dialect)
        if list(compiled.positiontup) != names:  # pragma: no cover - a schema this code does not know
            raise KpiError("unexpected columns in the source table {table}", table=table.name)
        self.con.executemany(str(compiled), chain.from_iterable(zip(*cols, strict=True) for cols in batches))

    def commit(self):
        self.con.execute("COMMIT")
        self._open = False

    def rollback(self):
        if self._open:
            self.con.execute("ROLLBACK")
            self._open = False

    def close(self):
        try:
            if self._wal:
                self._journal("WAL")  # (make_engine also sets WAL on every new connection)
            for name, value in self._saved.items():
                self.con.execute(f"PRAGMA {name}={int(value)}")
        finally:
            self.con.isolation_level = self._isolation
            self.raw.close()

    def analyze(self, tables):
        with self.engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            dbapi.execute("PRAGMA analysis_limit=1000")
            for table in tables:
                dbapi.execute(f'ANALYZE "{table.name}"')
            dbapi.execute("PRAGMA analysis_limit=0")
            if str(dbapi.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.commit()


class _PostgresSink(_Sink):
    """psycopg 3: ``COPY ... FROM STDIN`` on the raw connection, one transaction; ``TRUNCATE`` to clear."""

    text_times = True

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.raw = engine.raw_connection()
        self.con = self.raw.driver_connection
        self.cur = self.con.cursor()
        self.cur.execute("SET LOCAL maintenance_work_mem = '256MB'")  # index rebuilds, this transaction only

    def _name(self, table: Table):
        from psycopg import sql

        return sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)

    def has_rows(self, table):
        from psycopg import sql

        self.cur.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(self._name(table)))
        return self.cur.fetchone() is not None

    def clear(self, tables):
        from psycopg import sql

        self.cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(self._name(t) for t in tables)))

    def _ddl(self, statement):
        self.cur.execute(str(statement.compile(dialect=self.engine.dialect)))

    def _insert(self, table, names, batches):
        from psycopg import sql

        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            self._name(table), sql.SQL(", ").join(sql.Identifier(n) for n in names)
        )
        with self.cur.copy(stmt) as copy:
            for cols in batches:
                for row in zip(*cols, strict=True):
                    copy.write_row(row)

    def commit(self):
        self.con.commit()

    def rollback(self):
        self.con.rollback()

    def close(self):
        self.cur.close()
        self.raw.close()

    def analyze(self, tables):
        from psycopg import sql

        with self.engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            with dbapi.cursor() as cur:
                cur.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(self._name(t) for t in tables)))
            conn.commit()


def _bulk_indexes(engine: Engine) -> list[Index]:
    """The canonical secondary indexes present in the source (by name), to rebuild after the load.
    Fast paths only: the generic path keeps its indexes."""
    if engine.dialect.name not in ("sqlite", "postgresql"):
        return []
    found = []
    for table in DEMO_TABLES:
        present = set(index_columns(engine, table.name))
        found += [ix for ix in sorted(table.indexes, key=lambda ix: ix.name) if ix.name in present]
    return found


def _sqlite_formats_match(engine: Engine) -> bool:
    """The fast SQLite path writes timestamps and days as text; check that it is SQLAlchemy's format."""
    dialect = engine.dialect
    ts = orders.c.placed_at.type.dialect_impl(dialect).bind_processor(dialect)
    day = traffic.c.day.type.dialect_impl(dialect).bind_processor(dialect)
    return (
        ts is not None and day is not None
        and ts(datetime(2001, 2, 3, 4, 5, 6)) == "2001-02-03 04:05:06.000000"
        and day(date(2001, 2, 3)) == "2001-02-03"
    )


def _sink_for(engine: Engine) -> _Sink:
    dialect = engine.dialect
    if dialect.name == "sqlite" and dialect.driver == "pysqlite" and _sqlite_formats_match(engine):
        return _SqliteSink(engine)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _PostgresSink(engine)
    return _SqlAlchemySink(engine)
