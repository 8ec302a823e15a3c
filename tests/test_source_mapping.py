"""A shop's own tables, where they already are (issue 13): ``config/source.yaml`` maps the canonical tables and
columns to the shop's own (other table and column names, a schema, local-time timestamps, its own status
values) and every KPI answers through the mapping exactly as it does from the same data in canonical tables.

The data is a random shop (seeded), written twice into one database: in the canonical tables, and in
the shop's own tables (named otherwise, timestamps in New York local time, statuses "paid"/"shipped" and
"void"/"fraud"). Real databases: SQLite, PostgreSQL when KPIBOT_TEST_POSTGRES_URL is set (the shop's tables
in a schema of their own, the mapping schema-qualified), DuckDB when it is installed (`pip install
kpibot[duckdb]`). Nothing of the database layer is mocked.
"""

from __future__ import annotations

import random
import shutil
import uuid
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)

from kpi.data import schema
from kpi.db import make_engine
from kpi.db_writing import writing
from kpi.errors import KpiError
from kpi.metrics.availability import check_source
from kpi.metrics.engine import KpiRequest
from kpi.metrics.mapping import MappedCatalog, MappingError
from kpi.metrics.mapping_file import load_mapping
from kpi.metrics.periods import parse_period
from kpi.services import Services, is_mapped, mapped_tables
from kpi.settings import Settings

from .conftest import POSTGRES_URL, _pg_url

CONFIG = Path(__file__).resolve().parent.parent / "config"
NY = ZoneInfo("America/New_York")
TODAY = datetime.now(UTC).date()
NOW = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=16)
# the last day of last month, 23:30 in New York: 04:30 (or 03:30) UTC the next day, in this month
LAST_MONTH_END = TODAY.replace(day=1) - timedelta(days=1)
LATE_ORDER = datetime.combine(LAST_MONTH_END, datetime.min.time()) + timedelta(hours=23, minutes=30)

try:
    import duckdb_engine  # noqa: F401
    HAS_DUCKDB = True
except ImportError:
    HAS_DUCKDB = False

BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else []) + (["duckdb"] if HAS_DUCKDB else [])
PLACED = ("paid", "shipped")
CANCELLED = ("void", "fraud")


@pytest.fixture(params=BACKENDS)
def shop_db(request, tmp_path):
    """(database URL, the schema of the shop's own tables or None): a fresh database of the backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}", None
        return
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
        with writing(make_engine(url)) as engine, engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA own"))
        yield url, "own"
        return
    name = f"t_{uuid.uuid4().hex[:12]}"
    own = f"s_{uuid.uuid4().hex[:12]}"
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
        conn.execute(text(f'CREATE SCHEMA "{own}"'))
    sep = "&" if "?" in _pg_url() else "?"
    yield f"{_pg_url()}{sep}options={quote(f'-csearch_path={name}')}", own
    from kpi.db import dispose_cached_engines

    dispose_cached_engines()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        conn.execute(text(f'DROP SCHEMA "{own}" CASCADE'))
    admin.dispose()


def _local(utc: datetime | None) -> datetime | None:
    return None if utc is None else utc.replace(tzinfo=UTC).astimezone(NY).replace(tzinfo=None)


def _ambiguous(utc: datetime | None) -> bool:
    """A UTC time whose New York local time happens twice (the hour the clocks go back): a shop storing naive
    local times cannot tell which; such rows are left out of both copies."""
    if utc is None:
        return False
    local = _local(utc)
    return local.replace(tzinfo=NY, fold=0) != local.replace(tzinfo=NY, fold=1)


# the columns of its own a return may have in the canonical schema (its order's dimensions)
RETURN_EXTRAS = [c for c in ("channel", "device", "country", "customer_id") if c in schema.returns.c]


def _own_tables(schema_name: str | None) -> dict[str, Table]:
    meta = MetaData(schema=schema_name)
    money = Numeric(14, 2, asdecimal=False)
    return {
        "orders": Table("sales_orders", meta, Column("id", String(64), primary_key=True),
                        Column("buyer_id", String(64)), Column("created_at", DateTime()), Column("state", String(16)),
                        Column("net_total", money), Column("disc", money), Column("ship", money),
                        Column("vat", money), Column("cur", String(3)), Column("utm_source", String(64)),
                        Column("dev", String(32)), Column("ship_country", String(64))),
        "returns": Table("refunds", meta, Column("id", String(64), primary_key=True), Column("order_ref", String(64)),
                         Column("refunded_on", DateTime()), Column("refund_total", money), Column("qty", Integer),
                         *[Column(f"r_{c}", String(64)) for c in RETURN_EXTRAS]),
        "customers": Table("buyers", meta, Column("id", String(64), primary_key=True),
                           Column("first_purchase_at", DateTime()), Column("first_source", String(64)),
                           Column("land", String(64))),
        "traffic": Table("ga_daily", meta, Column("date", Date()), Column("source", String(64)),
                         Column("device_category", String(32)), Column("country", String(64)),
                         Column("sessions", Integer), Column("users", Integer), Column("add_to_carts", Integer)),
        "marketing_spend": Table("ad_costs", meta, Column("date", Date()), Column("network", String(64)),
                                 Column("cost", money)),
        "email_campaigns": Table("newsletters", meta, Column("id", String(64), primary_key=True),
                                 Column("sent", DateTime()), Column("delivered", Integer), Column("opens", Integer),
                                 Column("clicks", Integer)),
    }


MAPPING = """\
timezone: America/New_York
tables:
  orders:
    table: {prefix}sales_orders
    columns: {{order_id: id, customer_id: buyer_id, placed_at: created_at, subtotal: net_total, discount: disc,
               shipping: ship, tax: vat, currency: cur, channel: utm_source, device: dev, country: ship_country}}
    status: {{column: state, cancelled: [void, fraud], placed: [paid, shipped]}}
  returns: {{table: {prefix}refunds, columns: {{return_id: id, order_id: order_ref, returned_at: refunded_on,
                                               amount: refund_total, items: qty{return_extras}}}}}
  customers:
    table: {prefix}buyers
    columns: {{customer_id: id, first_order_at: first_purchase_at, acquisition_channel: first_source, country: land}}
  traffic:
    table: {prefix}ga_daily
    columns: {{day: date, channel: source, device: device_category, country: country, sessions: sessions,
               visitors: users, carts: add_to_carts}}
  marketing_spend: {{table: {prefix}ad_costs, columns: {{day: date, channel: network, amount: cost}}}}
  email_campaigns:
    table: {prefix}newsletters
    columns: {{campaign_id: id, sent_at: sent, delivered: delivered, unique_opens: opens, clicks: clicks}}
"""



def _mapping(prefix: str) -> str:
    return MAPPING.format(prefix=prefix, return_extras="".join(f", {c}: r_{c}" for c in RETURN_EXTRAS))


# canonical column -> the shop's, per table (as MAPPING says)
COLUMNS = {
    "orders": {"order_id": "id", "customer_id": "buyer_id", "placed_at": "created_at", "status": "state",
               "subtotal": "net_total", "discount": "disc", "shipping": "ship", "tax": "vat", "currency": "cur",
               "channel": "utm_source", "device": "dev", "country": "ship_country"},
    "returns": {"return_id": "id", "order_id": "order_ref", "returned_at": "refunded_on", "amount": "refund_total",
                "items": "qty", **{c: f"r_{c}" for c in RETURN_EXTRAS}},
    "customers": {"customer_id": "id", "first_order_at": "first_purchase_at", "acquisition_channel": "first_source",
                  "country": "land"},
    "traffic": {"day": "date", "channel": "source", "device": "device_category", "country": "country",
                "sessions": "sessions", "visitors": "users", "carts": "add_to_carts"},
    "marketing_spend": {"day": "date", "channel": "network", "amount": "cost"},
    "email_campaigns": {"campaign_id": "id", "sent_at": "sent", "delivered": "delivered", "unique_opens": "opens",
                        "clicks": "clicks"},
}
TIMES = {"orders": "placed_at", "returns": "returned_at", "customers": "first_order_at", "email_campaigns": "sent_at"}


CHANNELS, DEVICES, COUNTRIES = ("email", "paid_search", "organic", "social"), ("mobile", "desktop"), ("US", "CA", "GB")


def _shop_rows(days: int = 75, per_day: int = 25, seed: int = 7) -> dict[str, list[dict]]:
    """A shop's canonical rows over the ``days`` days before today (UTC timestamps), with an order at 23:30 New
    York time on the last day of last month."""
    rnd = random.Random(seed)
    first = datetime.combine(TODAY - timedelta(days=days), datetime.min.time())
    orders, returns, firsts = [], [], {}
    for n in range(days * per_day):
        at = first + timedelta(seconds=rnd.randrange(days * 86400))
        cid = f"c{rnd.randrange(days * per_day // 3)}"
        orders.append({"order_id": f"o{n}", "customer_id": cid, "placed_at": at,
                       "status": "cancelled" if rnd.random() < 0.1 else "placed",
                       "subtotal": round(rnd.uniform(5, 400), 2), "discount": round(rnd.uniform(0, 5), 2),
                       "shipping": 4.95, "tax": round(rnd.uniform(0, 30), 2), "currency": "USD",
                       "channel": rnd.choice(CHANNELS), "device": rnd.choice(DEVICES), "country": rnd.choice(COUNTRIES)})
    late = LATE_ORDER.replace(tzinfo=NY).astimezone(UTC).replace(tzinfo=None)
    orders.append({**orders[0], "order_id": "late-1", "customer_id": "c-late", "placed_at": late, "status": "placed",
                   "subtotal": 1234.56, "channel": "email"})
    for o in orders:
        firsts[o["customer_id"]] = min(firsts.get(o["customer_id"], o["placed_at"]), o["placed_at"])
        if o["status"] == "placed" and rnd.random() < 0.08:
            row = {"return_id": f"r{o['order_id']}", "order_id": o["order_id"], "amount": round(o["subtotal"] / 2, 2),
                   "returned_at": o["placed_at"] + timedelta(days=rnd.randrange(1, 9), hours=rnd.randrange(24)),
                   "items": rnd.randrange(1, 3)}
            if row["returned_at"] < NOW.replace(tzinfo=None):
                row.update({c: o[c] for c in ("channel", "device", "country", "customer_id") if c in schema.returns.c})
                returns.append(row)
    customers = [{"customer_id": c, "first_order_at": at, "acquisition_channel": rnd.choice(CHANNELS),
                  "country": rnd.choice(COUNTRIES)} for c, at in sorted(firsts.items())]
    traffic, spend, campaigns = [], [], []
    for d in range(days):
        day = TODAY - timedelta(days=days - d)
        for ch in CHANNELS:
            if ch != "organic":
                spend.append({"day": day, "channel": ch, "amount": round(rnd.uniform(20, 300), 2)})
            for dev in DEVICES:
                for country in COUNTRIES:
                    sessions = rnd.randrange(20, 200)
                    traffic.append({"day": day, "channel": ch, "device": dev, "country": country, "sessions": sessions,
                                    "visitors": sessions - rnd.randrange(0, 15), "carts": rnd.randrange(3, 20)})
        if d % 3 == 0:
            delivered = rnd.randrange(1000, 5000)
            campaigns.append({"campaign_id": f"e{d}", "sent_at": datetime.combine(day, datetime.min.time())
                              + timedelta(hours=rnd.randrange(24)), "delivered": delivered,
                              "unique_opens": delivered // rnd.randrange(3, 6), "clicks": rnd.randrange(10, 200)})
    return {"orders": orders, "returns": returns, "customers": customers, "traffic": traffic,
            "marketing_spend": spend, "email_campaigns": campaigns}


def _fill(url: str, own_schema: str | None) -> None:
    """The shop in the canonical tables (rows at an ambiguous local time left out), and the same rows in the
    shop's own tables."""
    reader = make_engine(url)
    with writing(reader) as engine:  # DuckDB: the rows written on a private copy, published at the end
        schema.create_source_tables(engine)
        own = _own_tables(own_schema)
        next(iter(own.values())).metadata.create_all(engine)
        with engine.begin() as conn:
            for name, rows in _shop_rows().items():
                conn.execute(insert(schema.SOURCE_TABLES[name]), rows)
            for name, table in schema.SOURCE_TABLES.items():
                rows = [dict(r._mapping) for r in conn.execute(select(table))]
                time_col = TIMES.get(name)
                if time_col:
                    bad = [r for r in rows if _ambiguous(r[time_col])]
                    if bad:
                        key = table.primary_key.columns.values()[0]
                        conn.execute(delete(table).where(key.in_([r[key.name] for r in bad])))
                        rows = [r for r in rows if not _ambiguous(r[time_col])]
                out = []
                for i, r in enumerate(rows):
                    row = {COLUMNS[name][c]: v for c, v in r.items() if c in COLUMNS[name]}
                    if time_col:
                        row[COLUMNS[name][time_col]] = _local(r[time_col])
                    if name == "orders":
                        row["state"] = (CANCELLED if r["status"] == "cancelled" else PLACED)[i % 2]
                    out.append(row)
                if out:
                    conn.execute(insert(own[name]), out)
    reader.dispose()


def _config(tmp_path: Path, own_schema: str | None, text_: str | None = None) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / "teams.yaml").write_text("")
    prefix = f"{own_schema}." if own_schema else ""
    (config / "source.yaml").write_text(text_ if text_ is not None else _mapping(prefix))
    return config


def _services(url: str, config: Path, state: str) -> Services:
    return Services(Settings(database_url=state, source_url=url, timezone="America/New_York", config_dir=config),
                    clock=lambda: NOW)


@pytest.fixture
def shop(shop_db, tmp_path):
    url, own_schema = shop_db
    _fill(url, own_schema)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    mapped = _services(url, _config(tmp_path, own_schema), state)
    canonical = _services(url, CONFIG, state)
    return mapped, canonical, url, own_schema


def _answer(engine, key: str, period: str, **kw):
    try:
        return engine.ask(KpiRequest(key, parse_period(period, now=NOW, tz=NY), **kw))
    except KpiError as exc:
        return type(exc).__name__


def _values(result) -> list:
    if isinstance(result, str):
        return [result]
    out = [result.current.value, result.comparison.value if result.comparison else None]
    out += [p.value.value for p in result.series]
    out += [(row.key, row.value.value) for row in result.breakdown]
    return out


def _diff(a: list, b: list) -> list:
    return [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=False)) if not _same([x], [y])] + [len(a), len(b)]


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple):
            if x[0] != y[0] or not _same([x[1]], [y[1]]):
                return False
        elif isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-9 * max(1.0, abs(x)):  # the same to the cent and far below (sums in another order)
                return False
        elif x != y:
            return False
    return True


def test_every_kpi_answers_through_the_mapping_as_from_canonical_tables(shop):
    mapped, canonical, _, _ = shop
    assert isinstance(mapped.catalog(), MappedCatalog) and not isinstance(canonical.catalog(), MappedCatalog)
    assert is_mapped(mapped) and not is_mapped(canonical)
    assert mapped_tables(mapped) == set(schema.SOURCE_TABLES)
    a, b = mapped.kpi_engine(), canonical.kpi_engine()
    assert a.unavailable() == {} and b.unavailable() == {}
    compared = 0
    for key, metric in canonical.catalog().metrics.items():
        for period in ("last month", "last 7 days", "this month", "last 30 days", "yesterday"):
            x, y = _answer(a, key, period), _answer(b, key, period)
            assert _same(_values(x), _values(y)), (key, period, _diff(_values(x), _values(y)))
            compared += 1
        dims = canonical.catalog().dimensions_of(metric)
        for dim in dims:
            x, y = _answer(a, key, "last month", breakdown=dim), _answer(b, key, "last month", breakdown=dim)
            assert _same(_values(x), _values(y)), (key, dim, _values(x), _values(y))
        if "channel" in dims:
            x = _answer(a, key, "last month", filters=(("channel", ("email",)),))
            y = _answer(b, key, "last month", filters=(("channel", ("email",)),))
            assert _same(_values(x), _values(y)), (key, "channel=email")
    assert compared >= 5 * len(canonical.catalog().metrics)
    revenue = _answer(a, "revenue", "last month")
    assert revenue.current.value > 0 and revenue.comparison.value > 0


def test_a_late_local_order_belongs_to_its_local_month(shop):
    """An order at 23:30 New York time on the last day of last month (04:30 UTC the day after, in this month)
    counts in last month, through the mapping as in the canonical tables."""
    mapped, canonical, url, own_schema = shop
    engine = make_engine(url)
    own = _own_tables(own_schema)["orders"]
    start = datetime.combine(LAST_MONTH_END.replace(day=1), datetime.min.time())
    end = datetime.combine(LAST_MONTH_END + timedelta(days=1), datetime.min.time())
    with engine.connect() as conn:
        expected = conn.execute(select(own.c.net_total).where(own.c.state.in_(PLACED), own.c.created_at >= start,
                                                              own.c.created_at < end)).scalars().all()
    engine.dispose()
    assert monthrange(LAST_MONTH_END.year, LAST_MONTH_END.month)[1] == LAST_MONTH_END.day
    got = _answer(mapped.kpi_engine(), "revenue", "last month")
    assert got.current.value == pytest.approx(sum(float(v) for v in expected), abs=0.005)
    assert got.current.value == pytest.approx(_answer(canonical.kpi_engine(), "revenue", "last month").current.value,
                                              abs=0.005)
    without = _answer(mapped.kpi_engine(), "revenue", "last month", filters=(("channel", ("email",)),))
    assert without.current.value >= 1234.56


def test_kpibot_ask_and_values_read_the_shop_tables(shop, monkeypatch, tmp_path, capsys):
    mapped, canonical, url, own_schema = shop
    from kpi.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("KPI_SOURCE_URL", url)
    monkeypatch.setenv("KPIBOT_TIMEZONE", "America/New_York")
    monkeypatch.delenv("KPIBOT_CURRENCY", raising=False)
    assert main(["db", "upgrade", "--no-source"]) == 0
    capsys.readouterr()
    outs = []
    for config in (mapped.settings.config_dir, CONFIG):
        monkeypatch.setenv("KPIBOT_CONFIG", str(config))
        assert main(["ask", "revenue last month by channel in the US"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and "$" in outs[0]
    assert mapped.dimension_values().values("channel") == canonical.dimension_values().values("channel")


def test_source_check_lists_a_missing_column_and_an_unmapped_status(shop, tmp_path):
    mapped, _, url, own_schema = shop
    prefix = f"{own_schema}." if own_schema else ""
    text_ = _mapping(prefix).replace("carts: add_to_carts", "carts: cart_adds").replace(
        "device: dev, ", "")
    config = tmp_path / "other"
    shutil.copytree(mapped.settings.config_dir, config)
    (config / "source.yaml").write_text(text_)
    own = _own_tables(own_schema)["orders"]
    engine = make_engine(url)
    with writing(engine) as writer, writer.begin() as conn:
        first = conn.execute(select(own.c.id).order_by(own.c.id).limit(3)).scalars().all()
        conn.execute(update(own).where(own.c.id.in_(first[:2])).values(state="pending_review"))
        conn.execute(update(own).where(own.c.id == first[2]).values(state="on_hold"))
    services = _services(url, config, f"sqlite:///{tmp_path / 'state.db'}")
    report = check_source(services.catalog(), engine)
    engine.dispose()
    lines = "\n".join(report.lines("en"))
    assert not report.mapping_ok
    assert "column ga_daily.cart_adds (mapped as traffic.carts) is not in table" in lines
    assert "pending_review (2)" in lines and "on_hold (1)" in lines and "counted as placed" in lines
    assert "orders.device" in lines  # not mapped: no breakdown by device
    assert lines.splitlines()[0] == "Source mapping (source.yaml):"
    assert "traffic.carts" in report.missing
    unavailable = {k.key for k in report.kpis if not k.available}
    assert unavailable == {"cart_abandonment_rate"}
    assert report.as_dict()["mapping"]
    # the engine agrees: cart abandonment only is unavailable; revenue answers, by channel but not by device
    kpis = services.kpi_engine()
    assert set(kpis.unavailable()) == {"cart_abandonment_rate"}
    assert _answer(kpis, "revenue", "last month").current.value > 0
    assert "device" not in services.catalog().dimensions_of(services.catalog().metric("revenue"))
    assert _answer(kpis, "revenue", "last month", breakdown="device") == "UnknownDimension"


def test_orders_with_no_status_count_and_a_mapping_without_placed_values_flags_no_status(shop, tmp_path):
    """An order of the shop's own table whose status is empty is not cancelled: it counts (SQL's NOT IN would
    leave it out). Without a ``placed`` list, whatever is not cancelled is an order: no status is flagged."""
    mapped, _, url, own_schema = shop
    prefix = f"{own_schema}." if own_schema else ""
    text_ = _mapping(prefix).replace(", placed: [paid, shipped]", "")
    config = tmp_path / "other"
    shutil.copytree(mapped.settings.config_dir, config)
    (config / "source.yaml").write_text(text_)
    services = _services(url, config, f"sqlite:///{tmp_path / 'state.db'}")
    before = _answer(services.kpi_engine(), "orders", "last month", compare=None).current.value
    engine = make_engine(url)
    own = _own_tables(own_schema)["orders"]
    tenth = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=10)  # inside last month (New York time)
    last_month = (datetime.combine(tenth, datetime.min.time()), datetime.combine(tenth + timedelta(days=10),
                                                                                  datetime.min.time()))
    with writing(engine) as writer, writer.begin() as conn:
        ids = conn.execute(select(own.c.id).where(own.c.created_at.between(*last_month), own.c.state == "paid")
                           .order_by(own.c.id).limit(2)).scalars().all()
        conn.execute(update(own).where(own.c.id.in_(ids)).values(state=None))
    report = check_source(services.catalog(), engine)
    engine.dispose()
    lines = "\n".join(report.lines("en"))
    assert len(ids) == 2 and "2 orders have no status" in lines and "counted as placed" not in lines
    assert report.mapping_ok  # nothing wrong with the statuses: paid and shipped are orders
    fresh = _services(url, config, f"sqlite:///{tmp_path / 'state2.db'}")
    assert _answer(fresh.kpi_engine(), "orders", "last month", compare=None).current.value == before


def test_a_dimension_the_shop_lacks_is_not_read_from_a_joined_table_that_lacks_it_too(shop, tmp_path):
    """Orders mapped without device: the returning customer rate (orders joined to customers) stays available,
    only its breakdown by device goes; a returns table without its own country reads its order's."""
    mapped, _, url, own_schema = shop
    prefix = f"{own_schema}." if own_schema else ""
    text_ = _mapping(prefix).replace("device: dev, ", "")
    config = tmp_path / "nodevice"
    shutil.copytree(mapped.settings.config_dir, config)
    (config / "source.yaml").write_text(text_)
    services = _services(url, config, f"sqlite:///{tmp_path / 'state.db'}")
    kpis = services.kpi_engine()
    assert "returning_customer_rate" not in kpis.unavailable()
    assert _answer(kpis, "returning_customer_rate", "last month").current.value is not None
    assert "device" not in services.catalog().dimensions_of(services.catalog().metric("returning_customer_rate"))


def test_wrong_types_and_a_missing_table_are_said(shop, tmp_path):
    mapped, _, url, own_schema = shop
    prefix = f"{own_schema}." if own_schema else ""
    text_ = (_mapping(prefix).replace("subtotal: net_total", "subtotal: utm_source")
             .replace("channel: utm_source", "channel: net_total").replace("ad_costs", "no_such_table"))
    config = tmp_path / "other"
    shutil.copytree(mapped.settings.config_dir, config)
    (config / "source.yaml").write_text(text_)
    services = _services(url, config, f"sqlite:///{tmp_path / 'state.db'}")
    engine = make_engine(url)
    report = check_source(services.catalog(), engine)
    engine.dispose()
    lines = "\n".join(report.lines("en"))
    assert "(mapped as orders.subtotal) is VARCHAR" in lines and "not a number" in lines
    assert "no_such_table (mapped as marketing_spend) is not in the source database" in lines
    assert "marketing_spend" in report.missing


def test_a_canonical_source_is_checked_for_unknown_statuses(source_engine):
    with source_engine.begin() as conn:
        conn.execute(insert(schema.orders), [
            {"order_id": f"o{i}", "customer_id": "c", "placed_at": datetime(2026, 11, 1, 12), "status": s,
             "subtotal": 10, "discount": 0, "shipping": 0, "tax": 0, "currency": "USD"}
            for i, s in enumerate(["placed", "cancelled", "refunded", "refunded"])])
    from kpi.metrics.catalog import load_catalog

    report = check_source(load_catalog(CONFIG), source_engine)
    assert report.mapping_file is None
    assert any("refunded (2)" in line for line in report.lines("en"))


def test_the_mapping_file_is_validated_with_every_problem_and_its_line(tmp_path):
    path = tmp_path / "source.yaml"
    path.write_text("# only comments: maps nothing\n")
    assert load_mapping(path) is None
    assert load_mapping(CONFIG) is None  # the example shipped is all comments
    path.write_text("timezone: Mars/Olympus\ntables:\n  orders:\n    table: 'x; drop table orders'\n"
                    "    columns: {placed_at: created_at, subtotal: 'net total', nope: x}\n"
                    "    status: {column: state, cancelled: [void], paid: [paid]}\n"
                    "  traffic: {table: ga, columns: {sessions: s}}\n  invoices: {table: inv}\n  colour: blue\n")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    problems = err.value.problems
    assert any(p.startswith("source.yaml:1: timezone 'Mars/Olympus'") for p in problems)
    assert any(p.startswith("source.yaml:4: orders.table") for p in problems)
    assert any(p.startswith("source.yaml:5:") and "'net total' is not a column name" in p for p in problems)
    assert any(p.startswith("source.yaml:5:") and "no canonical column 'nope'" in p for p in problems)
    assert any(p.startswith("source.yaml:6:") and "'paid' is not a canonical status" in p for p in problems)
    assert any(p.startswith("source.yaml:7:") and "traffic.columns must name the table's time column 'day'" in p
               for p in problems)
    assert any(p.startswith("source.yaml:8:") and "'invoices' is not a canonical table" in p for p in problems)
    assert len(problems) == 8


def test_a_team_reads_its_own_tables_through_its_mapping(shop, tmp_path):
    mapped, _, url, own_schema = shop
    config = mapped.settings.config_dir
    (config / "lumiere.yaml").write_text((config / "source.yaml").read_text())
    (config / "source.yaml").write_text("# nothing mapped for the deployment's shop\n")
    (config / "teams.yaml").write_text(f"teams:\n  T0LUMIERE:\n    source: {url}\n    mapping: lumiere.yaml\n"
                                       f"  T0CANON:\n    source: {url}\n")
    services = _services(url, config, f"sqlite:///{tmp_path / 'state.db'}")
    assert not is_mapped(services)
    team = services.for_team("T0LUMIERE")
    assert is_mapped(team) and not is_mapped(services.for_team("T0CANON"))
    assert team.catalog().metrics is services.catalog().metrics
    assert _answer(team.kpi_engine(), "orders", "last month").current.value == \
        _answer(services.for_team("T0CANON").kpi_engine(), "orders", "last month").current.value
    (config / "teams.yaml").write_text(f"teams:\n  T0LUMIERE:\n    source: {url}\n    mapping: missing.yaml\n")
    with pytest.raises(KpiError, match="no file missing.yaml"):
        _services(url, config, f"sqlite:///{tmp_path / 'state.db'}").shops()


def test_day_columns_stay_days(shop):
    """traffic.day is a date in the shop's time zone: the mapping's timezone does not move it."""
    mapped, canonical, _, _ = shop
    d = date(LAST_MONTH_END.year, LAST_MONTH_END.month, 1)
    period = f"{d.isoformat()}..{LAST_MONTH_END.isoformat()}"
    assert _answer(mapped.kpi_engine(), "sessions", period).current.value == \
        _answer(canonical.kpi_engine(), "sessions", period).current.value


def test_a_mapping_whose_tables_are_all_elsewhere_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    make_engine(url).dispose()
    config = _config(tmp_path, None, "tables:\n  orders: {table: nowhere, columns: {placed_at: t}}\n")
    services = _services(url, config, f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(KpiError, match="none of the tables the source mapping names") as err:
        services.kpi_engine()
    assert "kpibot demo-data" not in str(err.value)
    assert services.settings.currency == "USD"  # no orders to read it from: the default, without an error
