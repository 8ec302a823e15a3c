"""The importer as a user meets it: files that load (with counts), files that are refused (with the
right line numbers, and the database exactly as before), re-imports that change nothing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kpi.data import schema
from kpi.data.importer import TABLE_ALIASES, ImportResult, import_csv, import_shopify_orders
from kpi.data.importer import writing as importer_writing
from kpi.errors import ImportRefused

PARIS = ZoneInfo("Europe/Paris")
DATA = Path(__file__).parent / "data"

ORDERS = """\
order_id,customer_id,placed_at,status,subtotal,discount,shipping,tax,currency,channel,device,country
A1,c1,2026-10-01T10:00:00Z,placed,100.00,10.00,4.90,20.98,EUR,web,desktop,FR
A2,c2,2026-10-01 12:30:00+02:00,paid,50.50,0,0,10.10,EUR,email,mobile,DE
A3,c1,2026-10-02,placed,20.00,0,4.90,4.98,EUR,web,mobile,FR
A4,c3,2026-10-03 09:00:00,cancelled,75.00,0,0,15.00,EUR,social,mobile,BE
"""


def write(tmp_path: Path, text: str, name: str = "file.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every source table, in key order: 'the database exactly as before'."""
    out = {}
    with engine.connect() as conn:
        for name, table in schema.SOURCE_TABLES.items():
            out[name] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def rows(engine, table, *cols, where=None):
    t = schema.SOURCE_TABLES[table]
    stmt = select(*(t.c[c] for c in cols)) if cols else select(t)
    stmt = stmt.order_by(*t.primary_key.columns)
    if where is not None:
        stmt = stmt.where(where(t))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def refused(engine, path, table="orders", **kw) -> ImportRefused:
    """Import ``path``, expecting a refusal that leaves the database as it was."""
    before = snapshot(engine)
    kw.setdefault("tz", PARIS)
    with pytest.raises(ImportRefused) as info:
        import_csv(engine, path, table, **kw)
    assert snapshot(engine) == before
    return info.value


def bad_lines(err: ImportRefused) -> dict[int, str]:
    return {b.line: b.reason for b in err.bad_rows}


@pytest.fixture
def loaded(source_engine, tmp_path):
    """A database holding the four orders of ORDERS."""
    import_csv(source_engine, write(tmp_path, ORDERS, "first.csv"), "orders", tz=PARIS)
    return source_engine


# -- files that load ---------------------------------------------------------------------------------


def test_a_good_orders_file_loads_with_counts(source_engine, tmp_path):
    result = import_csv(source_engine, write(tmp_path, ORDERS), "orders", tz=PARIS)
    assert isinstance(result, ImportResult)
    assert (result.table, result.rows_read, result.inserted, result.updated, result.unchanged) == (
        "orders",
        4,
        4,
        0,
        0,
    )
    assert result.per_table == {
        "orders": {"inserted": 4, "updated": 0, "unchanged": 0},
        "customers": {"inserted": 3, "updated": 0, "unchanged": 0},
    }
    assert result.ignored_columns == []
    got = rows(
        source_engine,
        "orders",
        "order_id",
        "placed_at",
        "status",
        "subtotal",
        "discount",
        "currency",
        "channel",
    )
    assert got == [
        ("A1", datetime(2026, 10, 1, 10, 0), "placed", 100.0, 10.0, "EUR", "web"),
        ("A2", datetime(2026, 10, 1, 10, 30), "placed", 50.5, 0.0, "EUR", "email"),  # +02:00 → UTC
        ("A3", datetime(2026, 10, 1, 22, 0), "placed", 20.0, 0.0, "EUR", "web"),  # a day in Paris → UTC
        ("A4", datetime(2026, 10, 3, 7, 0), "cancelled", 75.0, 0.0, "EUR", "social"),  # naive = Paris time
    ]
    # customers: first order not cancelled, channel and country of the first order
    assert rows(source_engine, "customers") == [
        ("c1", datetime(2026, 10, 1, 10, 0), "web", "FR"),
        ("c2", datetime(2026, 10, 1, 10, 30), "email", "DE"),
        ("c3", None, "social", "BE"),
    ]
    assert "4 inserted" in result.summary()


def test_importing_the_same_file_again_changes_nothing(loaded, tmp_path):
    before = snapshot(loaded)
    result = import_csv(loaded, write(tmp_path, ORDERS), "orders", tz=PARIS)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 4)
    assert result.per_table["customers"] == {"inserted": 0, "updated": 0, "unchanged": 3}
    assert snapshot(loaded) == before


def test_a_changed_row_is_updated_and_a_new_one_inserted(loaded, tmp_path):
    changed = ORDERS.replace(
        "A2,c2,2026-10-01 12:30:00+02:00,paid,50.50", "A2,c2,2026-10-01 12:30:00+02:00,paid,55.50"
    )
    changed += "A5,c4,2026-10-04T08:00:00Z,placed,10.00,0,0,2.00,EUR,web,mobile,FR\n"
    result = import_csv(loaded, write(tmp_path, changed), "orders", tz=PARIS)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 3)
    assert rows(loaded, "orders", "order_id", "subtotal", where=lambda t: t.c.order_id == "A2") == [
        ("A2", 55.5)
    ]


def test_a_file_without_optional_columns_leaves_their_values_alone(loaded, tmp_path):
    path = write(tmp_path, "order_id,customer_id,placed_at,subtotal\nA1,c1,2026-10-01T10:00:00Z,100.00\n")
    result = import_csv(loaded, path, "orders", tz=PARIS, currency="EUR")
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)
    assert rows(loaded, "orders", "channel", "discount", where=lambda t: t.c.order_id == "A1") == [
        ("web", 10.0)
    ]


def test_defaults_for_absent_optional_columns(source_engine, tmp_path):
    path = write(tmp_path, "order_id,customer_id,placed_at,subtotal\nB1,c9,2026-10-01T10:00:00Z,12\n")
    import_csv(source_engine, path, "orders", tz=PARIS, currency="usd")
    assert rows(source_engine, "orders") == [
        (
            "B1",
            "c9",
            datetime(2026, 10, 1, 10),
            "placed",
            12.0,
            0.0,
            0.0,
            0.0,
            "USD",
            "unknown",
            "unknown",
            "ZZ",
        )
    ]


def test_extra_columns_are_ignored_and_reported(source_engine, tmp_path):
    text = ORDERS.replace("country\n", "country,note,Gift Wrap\n", 1)
    text = "\n".join(line + (",hello,yes" if i else "") for i, line in enumerate(text.splitlines())) + "\n"
    result = import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS)
    assert result.inserted == 4
    assert result.ignored_columns == ["note", "Gift Wrap"]


def test_column_names_are_matched_loosely_and_map_names_the_others(source_engine, tmp_path):
    text = (
        " Order Number ;Client;Date;Order Total; CURRENCY ;Channel\n"
        "1001;k1;01/10/2026;1.234,50;eur;Web\n"
        "1002;k2;13/10/2026;12,00;EUR;email\n"
    )
    result = import_csv(
        source_engine,
        write(tmp_path, text),
        "orders",
        tz=ZoneInfo("UTC"),
        column_map={
            "Order Number": "order_id",
            "client": "customer_id",
            "Date": "placed_at",
            "Order Total": "subtotal",
        },
    )
    assert result.inserted == 2
    assert rows(
        source_engine, "orders", "order_id", "customer_id", "placed_at", "subtotal", "currency", "channel"
    ) == [
        ("1001", "k1", datetime(2026, 10, 1), 1234.5, "EUR", "web"),  # day first: 13/10/2026 settles it
        ("1002", "k2", datetime(2026, 10, 13), 12.0, "EUR", "email"),
    ]
    assert any("semicolon" in n for n in result.notes)


def test_a_map_to_an_unknown_field_or_column_is_refused(source_engine, tmp_path):
    path = write(tmp_path, ORDERS)
    err = refused(source_engine, path, column_map={"Order Number": "order_id"})
    assert "no column 'Order Number'" in bad_lines(err)[1]
    err = refused(source_engine, path, column_map={"channel": "source"})
    assert "has no field 'source'" in bad_lines(err)[1]


def test_two_columns_meaning_the_same_field_are_refused_unless_mapped(source_engine, tmp_path):
    path = write(
        tmp_path, "order_id,Order ID,customer_id,placed_at,subtotal,currency\nx1,1001,c1,2026-10-01,5,EUR\n"
    )
    err = refused(source_engine, path)
    assert len(err.bad_rows) == 1 and "'order_id' and 'Order ID' both mean order_id" in err.bad_rows[0].reason
    assert "missing" not in str(err)
    result = import_csv(source_engine, path, "orders", tz=PARIS, column_map={"Order ID": "order_id"})
    assert result.ignored_columns == ["order_id"]
    assert rows(source_engine, "orders", "order_id") == [("1001",)]


def test_a_file_with_a_bom_loads(source_engine, tmp_path):
    result = import_csv(source_engine, write(tmp_path, "\ufeff" + ORDERS), "orders", tz=PARIS)
    assert result.inserted == 4


def test_a_windows_1252_file_loads_with_a_note(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens,clicks\n"
        "Rentrée 2026,2026-09-01 08:00,1000,420,37\n"
        "Soldes d’été,2026-07-01 08:00,900,300,20\n"
    )
    result = import_csv(source_engine, write(tmp_path, text, encoding="cp1252"), "campaigns", tz=PARIS)
    assert result.inserted == 2
    assert any("Windows-1252" in n for n in result.notes)
    assert rows(source_engine, "email_campaigns", "campaign_id") == [("Rentrée 2026",), ("Soldes d’été",)]


def test_a_utf16_tab_separated_file_loads(source_engine, tmp_path):
    """What Excel saves as "Unicode text"."""
    text = "\ufeff" + ORDERS.replace(",", "\t")
    result = import_csv(source_engine, write(tmp_path, text, encoding="utf-16-le"), "orders", tz=PARIS)
    assert result.inserted == 4
    assert any("tab" in n for n in result.notes)


def test_a_file_in_no_known_encoding_is_refused(source_engine, tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"order_id,customer_id\nA1,\x81\x8d\n")
    err = refused(source_engine, path)
    assert "neither UTF-8 nor Windows-1252" in str(err)
    assert err.bad_rows[0].line == 2


def test_empty_lines_are_skipped(source_engine, tmp_path):
    text = ORDERS.replace("\nA3", "\n\nA3") + ",,,,,,,,,,,\n\n"
    result = import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS)
    assert result.rows_read == 4 and result.inserted == 4


def test_timestamps_in_several_formats(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens\n"
        "iso-z,2026-10-01T06:00:00Z,10,1\n"
        "iso-offset,2026-10-01T08:00:00+02:00,10,1\n"
        "shopify,2026-10-01 08:00:00 +0200,10,1\n"
        "naive,2026-10-01 08:00:00,10,1\n"
        "fraction,2026-10-01T08:00:00.250,10,1\n"
        "date-only,2026-10-01,10,1\n"
        "compact,20261001,10,1\n"
        "slashes-ymd,2026/10/01 08:00,10,1\n"
        "us-ampm,10/1/2026 8:00 AM,10,1\n"
        "us-settles,10/13/2026 14:30,10,1\n"
        "winter-naive,2026-12-01 08:00,10,1\n"
        "utc-suffix,2026-10-01 06:00:00 UTC,10,1\n"
    )
    import_csv(source_engine, write(tmp_path, text), "campaigns", tz=PARIS)
    got = dict(rows(source_engine, "email_campaigns", "campaign_id", "sent_at"))
    six = datetime(2026, 10, 1, 6, 0)
    assert got == {
        "iso-z": six,
        "iso-offset": six,
        "shopify": six,
        "naive": six,  # Paris summer time is UTC+2
        "fraction": datetime(2026, 10, 1, 6, 0, 0, 250000),
        "date-only": datetime(2026, 9, 30, 22, 0),  # midnight in Paris
        "compact": datetime(2026, 9, 30, 22, 0),
        "slashes-ymd": six,
        "us-ampm": six,  # month first: line 11 has a 13th "month day"
        "us-settles": datetime(2026, 10, 13, 12, 30),
        "winter-naive": datetime(2026, 12, 1, 7, 0),  # UTC+1 in winter
        "utc-suffix": six,
    }


def test_local_times_around_clock_changes(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens\n"
        "skipped,2026-03-29 02:30,1,1\n"  # clocks jump from 02:00 to 03:00: moved forward
        "twice,2026-10-25 02:30,1,1\n"  # 02:30 happens twice: the first time (summer time)
        "after,2026-10-25 03:30,1,1\n"
    )
    import_csv(source_engine, write(tmp_path, text), "campaigns", tz="Europe/Paris")
    assert dict(rows(source_engine, "email_campaigns", "campaign_id", "sent_at")) == {
        "skipped": datetime(2026, 3, 29, 1, 0),
        "twice": datetime(2026, 10, 25, 0, 30),
        "after": datetime(2026, 10, 25, 2, 30),
    }


def test_day_month_order_that_nothing_settles_is_refused(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens\n"
        "a,01/10/2026,10,1\n"
        "b,2026-10-02,10,1\n"
        "c,03/04/2026 10:00,10,1\n"
        "d,05/05/2026,10,1\n"
    )
    err = refused(source_engine, write(tmp_path, text), "campaigns")
    lines = bad_lines(err)
    assert sorted(lines) == [2, 4]  # 05/05 reads the same both ways
    assert "ambiguous" in lines[2] and "YYYY-MM-DD" in lines[2]


def test_a_file_mixing_day_first_and_month_first_dates_is_refused(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens\n"
        "a,13/10/2026,10,1\n"
        "b,25/10/2026,10,1\n"
        "c,10/14/2026,10,1\n"
        "d,01/10/2026,10,1\n"
    )
    err = refused(source_engine, write(tmp_path, text), "campaigns")
    lines = bad_lines(err)
    assert list(lines) == [4]
    assert "month/day" in lines[4] and "line 2" in lines[4]


def test_bad_timestamps_are_named(source_engine, tmp_path):
    text = (
        ORDERS
        + "A5,c1,2026-02-30,placed,1,0,0,0,EUR,web,mobile,FR\nA6,c1,yesterday,placed,1,0,0,0,EUR,web,mobile,FR\n"
    )
    err = refused(source_engine, write(tmp_path, text))
    lines = bad_lines(err)
    assert sorted(lines) == [6, 7]
    assert "'2026-02-30'" in lines[6] and "'yesterday'" in lines[7]


def test_numbers_with_a_decimal_comma_and_grouping(source_engine, tmp_path):
    text = "day;channel;amount\n2026-10-01;Google Ads;1 234,50\n2026-10-02;Google Ads;99,9\n2026-10-03;meta;1.000\n"
    result = import_csv(source_engine, write(tmp_path, text), "spend", tz=PARIS)
    assert result.inserted == 3
    assert rows(source_engine, "marketing_spend") == [
        (date(2026, 10, 1), "google ads", 1234.5),
        (date(2026, 10, 2), "google ads", 99.9),
        (date(2026, 10, 3), "meta", 1000.0),
    ]


def test_ambiguous_and_garbage_numbers_are_refused(source_engine, tmp_path):
    text = (
        "day,channel,amount\n"
        '2026-10-01,a,"1,234"\n'  # 1234 or 1.234? nothing in the file says
        "2026-10-02,b,12\n"
        "2026-10-03,c,$12\n"
        "2026-10-04,d,1e3\n"
        "2026-10-05,e,\n"
        "2026-10-06,f,abc\n"
    )
    err = refused(source_engine, write(tmp_path, text), "spend")
    lines = bad_lines(err)
    assert sorted(lines) == [2, 4, 5, 6, 7]
    assert "ambiguous" in lines[2]
    assert "is not a number" in lines[4] and "is empty" in lines[6]


def test_a_file_mixing_decimal_conventions_is_refused(source_engine, tmp_path):
    text = 'day,channel,amount\n2026-10-01,a,12.50\n2026-10-02,b,"12,50"\n2026-10-03,c,3.10\n'
    err = refused(source_engine, write(tmp_path, text), "spend")
    assert list(bad_lines(err)) == [3]
    assert "decimal comma" in bad_lines(err)[3]


# -- files that are refused --------------------------------------------------------------------------


def test_a_truncated_last_line_is_refused(loaded, tmp_path):
    text = ORDERS.replace("A1,", "Z1,").replace("A2,", "Z2,").replace("A3,", "Z3,").replace("A4,", "Z4,")
    text += "Z5,c7,2026-10-0"  # the file was cut while being written
    err = refused(loaded, write(tmp_path, text))
    assert list(bad_lines(err)) == [6]
    assert "truncated" in bad_lines(err)[6]
    assert "nothing was loaded" in str(err)


def test_a_line_with_too_many_fields_is_refused(source_engine, tmp_path):
    text = ORDERS.replace("A3,c1,2026-10-02,placed,20.00", "A3,c1,2026-10-02,placed,20,00")
    err = refused(source_engine, write(tmp_path, text))
    assert list(bad_lines(err)) == [4]
    assert "unquoted comma" in bad_lines(err)[4]


def test_missing_columns_are_named(loaded, tmp_path):
    text = "order_id,placed_at,currency\nA9,2026-10-01,EUR\n"
    err = refused(loaded, write(tmp_path, text))
    assert "customer_id, subtotal" in str(err)
    assert err.bad_rows[0].line == 1


def test_orders_need_a_currency_column_or_the_shop_currency(source_engine, tmp_path):
    path = write(tmp_path, "order_id,customer_id,placed_at,subtotal\nA1,c1,2026-10-01,1\n")
    err = refused(source_engine, path)
    assert "no currency column" in str(err)
    assert import_csv(source_engine, path, "orders", tz=PARIS, currency="EUR").inserted == 1


def test_duplicated_keys_are_refused_with_both_lines(loaded, tmp_path):
    text = (
        ORDERS
        + "A2,c2,2026-10-05,placed,1,0,0,0,EUR,web,mobile,FR\nA1,c1,2026-10-05,placed,1,0,0,0,EUR,web,mobile,FR\n"
    )
    err = refused(loaded, write(tmp_path, text))
    lines = bad_lines(err)
    assert sorted(lines) == [6, 7]
    assert "'A2'" in lines[6] and "line 3" in lines[6]
    assert "'A1'" in lines[7] and "line 2" in lines[7]


def test_duplicated_composite_keys_are_refused(source_engine, tmp_path):
    text = (
        "day,channel,device,country,sessions,visitors\n"
        "2026-10-01,web,mobile,FR,100,80\n"
        "2026-10-01,Web,mobile,fr,5,5\n"  # the same key once normalised
        "2026-10-01,web,desktop,FR,10,9\n"
    )
    err = refused(source_engine, write(tmp_path, text), "traffic")
    assert list(bad_lines(err)) == [3]
    assert "already on line 2" in bad_lines(err)[3]


def test_negative_amounts_and_counts_are_refused(source_engine, tmp_path):
    orders = (
        ORDERS
        + "A5,c1,2026-10-05,placed,-5.00,0,0,-1,EUR,web,mobile,FR\nA6,c1,2026-10-05,placed,5,-2,0,0,EUR,web,mobile,FR\n"
    )
    lines = bad_lines(refused(source_engine, write(tmp_path, orders)))
    assert sorted(lines) == [6, 7]
    # a negative subtotal is a credit note (loaded as a return); a negative tax is still refused
    assert "subtotal" not in lines[6] and "tax '-1' is negative" in lines[6]
    assert "discount '-2' is negative" in lines[7]
    returns = "return_id,order_id,returned_at,amount,items\nR1,A1,2026-10-05,-3,1\nR2,A1,2026-10-05,3,-1\nR3,A1,2026-10-05,3,1.5\n"
    lines = bad_lines(refused(source_engine, write(tmp_path, returns, "r.csv"), "returns"))
    assert sorted(lines) == [2, 3, 4]
    assert "whole number" in lines[4]
    traffic = "day,sessions,visitors,carts\n2026-10-01,10,-1,0\n"
    assert list(bad_lines(refused(source_engine, write(tmp_path, traffic, "t.csv"), "traffic"))) == [2]


def test_mixed_currencies_are_refused(source_engine, tmp_path):
    text = ORDERS.replace(
        "A3,c1,2026-10-02,placed,20.00,0,4.90,4.98,EUR", "A3,c1,2026-10-02,placed,20.00,0,4.90,4.98,USD"
    )
    err = refused(source_engine, write(tmp_path, text))
    lines = bad_lines(err)
    assert list(lines) == [4]
    assert "USD differs from EUR (line 2" in lines[4]


def test_a_currency_other_than_the_databases_is_refused(loaded, tmp_path):
    usd = ORDERS.replace("EUR", "USD").replace("A", "U")
    err = refused(loaded, write(tmp_path, usd))
    assert "in USD but the orders in the database are in EUR" in str(err)
    # the shop currency is checked as well, for files with and without a currency column
    err = refused(loaded, write(tmp_path, ORDERS.replace("A", "V"), "v.csv"), currency="USD", currency_explicit=True)
    assert "shop currency is USD" in str(err)
    # a default shop currency (not given by the user) gives way to the file's and the database's
    assert import_csv(loaded, write(tmp_path, ORDERS.replace("A", "W"), "w.csv"), "orders", tz=PARIS,
                      currency="USD").inserted == 4
    spend = "day,channel,amount,currency\n2026-10-01,web,10,GBP\n"
    assert "in GBP" in str(refused(loaded, write(tmp_path, spend, "s.csv"), "spend"))


def test_unique_opens_above_delivered_is_refused(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens,clicks\nc1,2026-10-01,100,40,3\nc2,2026-10-02,100,140,3\n"
    )
    err = refused(source_engine, write(tmp_path, text), "campaigns")
    assert list(bad_lines(err)) == [3]
    assert "unique_opens 140 is greater than delivered 100" in bad_lines(err)[3]


def test_bad_values_are_all_named_at_once(source_engine, tmp_path):
    text = (
        "order_id,customer_id,placed_at,status,subtotal,currency,country\n"
        "A1,c1,2026-10-01,shipped,10,EUR,FR\n"
        ",c1,2026-10-01,placed,10,EUR,FR\n"
        "A3,c1,2026-10-01,lost,10,EUR,FR\n"
        "A4,c1,2026-10-01,placed,10,EUR,Atlantis\n"
        "A5,c1,2026-10-01,placed,10,EURO,FR\n"
        f"{'A' * 70},c1,2026-10-01,placed,10,EUR,FR\n"
    )
    lines = bad_lines(refused(source_engine, write(tmp_path, text)))
    assert sorted(lines) == [3, 4, 6, 7]  # an unknown country is kept as written, not refused
    assert "order_id is empty" in lines[3]
    assert "'lost' is not a status" in lines[4]
    assert "'EURO' is not a currency" in lines[6]
    assert "longer than 64" in lines[7]


def test_line_numbers_count_values_spanning_lines(source_engine, tmp_path):
    text = (
        "campaign_id,sent_at,delivered,unique_opens\n"
        '"Autumn\nsale",2026-10-01,100,10\n'
        "c2,2026-10-02,100,10\n"
        "c3,2026-10-03,100,200\n"
    )
    err = refused(source_engine, write(tmp_path, text), "campaigns")
    assert list(bad_lines(err)) == [5]


def test_an_unknown_table_or_a_missing_file_is_refused(source_engine, tmp_path):
    with pytest.raises(ImportRefused, match="unknown table 'products'"):
        import_csv(source_engine, write(tmp_path, ORDERS), "products", tz=PARIS)
    with pytest.raises(ImportRefused, match="no such file"):
        import_csv(source_engine, tmp_path / "nope.csv", "orders", tz=PARIS)
    with pytest.raises(ImportRefused, match="empty"):
        import_csv(source_engine, write(tmp_path, "", "empty.csv"), "orders", tz=PARIS)


# -- the other tables --------------------------------------------------------------------------------


def test_every_table_alias_loads_and_reloads(source_engine, tmp_path):
    files = {
        "returns": "return_id,order_id,returned_at,amount,items\nR1,A1,2026-10-05T10:00:00Z,20.00,1\nR2,A3,2026-10-06,5,\n",
        "traffic": "day,channel,device,country,sessions,visitors,carts\n2026-10-01,web,mobile,FR,100,80,12\n"
        "2026-10-01,web,desktop,FR,50,45,7\n2026-10-02,email,,,30,30,\n",
        "spend": "day,channel,amount\n2026-10-01,google,120.50\n2026-10-01,meta,80\n",
        "campaigns": "campaign_id,sent_at,delivered,unique_opens,clicks\nnl-41,2026-10-01 08:00,1000,400,31\n",
        "customers": "customer_id,first_order_at,acquisition_channel,country\nc1,2026-09-01,Referral,FR\nc2,,,\n",
    }
    assert set(files) | {"orders"} == set(TABLE_ALIASES)
    for alias, text in files.items():
        path = write(tmp_path, text, f"{alias}.csv")
        first = import_csv(source_engine, path, alias, tz=PARIS, currency="EUR")
        assert first.table == TABLE_ALIASES[alias]
        assert first.inserted == first.rows_read > 0
        again = import_csv(source_engine, path, alias, tz=PARIS, currency="EUR")
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, first.rows_read)
    assert rows(source_engine, "traffic") == [
        (date(2026, 10, 1), "web", "desktop", "FR", 50, 45, 7),
        (date(2026, 10, 1), "web", "mobile", "FR", 100, 80, 12),
        (date(2026, 10, 2), "email", "unknown", "ZZ", 30, 30, 0),
    ]
    assert rows(source_engine, "returns", "return_id", "returned_at", "items") == [
        ("R1", datetime(2026, 10, 5, 10), 1),
        ("R2", datetime(2026, 10, 5, 22), 1),
    ]
    assert rows(source_engine, "customers") == [
        ("c1", datetime(2026, 8, 31, 22), "referral", "FR"),
        ("c2", None, "unknown", "ZZ"),
    ]
    changed = "day,channel,device,country,sessions,visitors,carts\n2026-10-01,web,mobile,FR,101,80,12\n"
    result = import_csv(source_engine, write(tmp_path, changed, "t2.csv"), "traffic", tz=PARIS)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)


def test_a_traffic_day_must_be_a_day(source_engine, tmp_path):
    text = "day,sessions,visitors\n2026-10-01 00:00:00,1,1\n2026-10-02 13:00,1,1\n"
    assert list(bad_lines(refused(source_engine, write(tmp_path, text), "traffic"))) == [3]


def test_orders_keep_customers_first_order_at(source_engine, tmp_path):
    customers = "customer_id,first_order_at,acquisition_channel,country\nold,2026-01-01T00:00:00Z,referral,FR\nlate,2026-12-01T00:00:00Z,referral,FR\n"
    import_csv(source_engine, write(tmp_path, customers, "c.csv"), "customers", tz=PARIS)
    orders = (
        "order_id,customer_id,placed_at,status,subtotal,channel,country\n"
        "O1,old,2026-10-01T00:00:00Z,placed,10,web,DE\n"
        "O2,late,2026-10-02T00:00:00Z,placed,10,web,DE\n"
        "O3,late,2026-09-01T00:00:00Z,cancelled,10,web,DE\n"
        "O4,new,2026-10-03T00:00:00Z,cancelled,10,social,DE\n"
        "O5,new,2026-10-04T00:00:00Z,placed,10,email,BE\n"
    )
    result = import_csv(source_engine, write(tmp_path, orders), "orders", tz=PARIS, currency="EUR")
    assert result.per_table["customers"] == {"inserted": 1, "updated": 1, "unchanged": 1}
    assert rows(source_engine, "customers") == [
        ("late", datetime(2026, 10, 2), "referral", "FR"),  # an earlier order, not cancelled; channel kept
        ("new", datetime(2026, 10, 4), "email", "BE"),  # the first order not cancelled gives the channel
        ("old", datetime(2026, 1, 1), "referral", "FR"),  # already earlier
    ]


# -- all or nothing ----------------------------------------------------------------------------------


def test_a_failure_while_writing_rolls_everything_back(loaded, tmp_path, monkeypatch):
    before = snapshot(loaded)

    def broken(conn, customers):
        raise RuntimeError("disk full")

    monkeypatch.setattr("kpi.data.importer.write_customers", broken)
    changed = ORDERS.replace("100.00", "101.00") + "A9,c9,2026-10-09,placed,9,0,0,0,EUR,web,mobile,FR\n"
    with pytest.raises(RuntimeError, match="disk full"):
        import_csv(loaded, write(tmp_path, changed), "orders", tz=PARIS)
    assert snapshot(loaded) == before


def test_other_dialects_update_by_key_and_insert(loaded, tmp_path, monkeypatch):
    monkeypatch.setattr(importer_writing, "NATIVE_UPSERT", {})
    changed = ORDERS.replace("100.00", "101.00") + "A9,c9,2026-10-09,placed,9,0,0,0,EUR,web,mobile,FR\n"
    result = import_csv(loaded, write(tmp_path, changed), "orders", tz=PARIS)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 3)
    assert result.per_table["customers"] == {"inserted": 1, "updated": 0, "unchanged": 3}
    assert rows(loaded, "orders", "order_id", "subtotal", where=lambda t: t.c.order_id.in_(["A1", "A9"])) == [
        ("A1", 101.0),
        ("A9", 9.0),
    ]


def test_large_files_are_written_and_compared_in_chunks(source_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(importer_writing, "KEY_CHUNK", 7)
    monkeypatch.setattr(importer_writing, "WRITE_CHUNK", 5)
    lines = ["order_id,customer_id,placed_at,subtotal,currency"]
    lines += [f"N{i},c{i % 9},2026-10-{1 + i % 28:02d}T10:00:00Z,{i}.25,EUR" for i in range(60)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert import_csv(source_engine, path, "orders", tz=PARIS).inserted == 60
    lines[10] = lines[10].replace(".25,", ".75,")
    result = import_csv(source_engine, write(tmp_path, "\n".join(lines) + "\n"), "orders", tz=PARIS)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 59)
    assert result.per_table["customers"] == {"inserted": 0, "updated": 0, "unchanged": 9}


# -- Shopify -----------------------------------------------------------------------------------------


def test_the_shopify_export_loads_orders_customers_and_returns(source_engine):
    path = DATA / "shopify_orders_export.csv"
    result = import_shopify_orders(source_engine, path, tz=PARIS, currency="EUR")
    assert result.table == "orders, customers, returns"
    assert result.rows_read == 7  # line items
    assert result.per_table == {
        "orders": {"inserted": 5, "updated": 0, "unchanged": 0},
        "customers": {"inserted": 3, "updated": 0, "unchanged": 0},  # #1005 is a guest
        "returns": {"inserted": 2, "updated": 0, "unchanged": 0},
    }
    assert any("1 guest order" in n for n in result.notes)
    orders = rows(
        source_engine, "orders", "order_id", "placed_at", "status", "subtotal", "discount", "shipping", "tax",
        "currency", "channel", "device", "country",
    )  # fmt: skip
    assert orders == [
        (
            "#1001",
            datetime(2026, 10, 1, 10, 34, 56),
            "placed",
            54.0,
            4.0,
            4.9,
            11.78,
            "EUR",
            "web",
            "unknown",
            "FR",
        ),
        ("#1002", datetime(2026, 10, 2, 7, 15), "placed", 35.0, 0.0, 0.0, 7.0, "EUR", "web", "unknown", "DE"),
        (
            "#1003",
            datetime(2026, 10, 5, 16, 2, 11),
            "placed",
            34.0,
            0.0,
            0.0,
            6.8,
            "EUR",
            "pos",
            "unknown",
            "FR",
        ),
        (
            "#1004",
            datetime(2026, 10, 6, 7, 40),
            "cancelled",
            120.0,
            0.0,
            0.0,
            24.0,
            "EUR",
            "web",
            "unknown",
            "BE",
        ),
        ("#1005", datetime(2026, 10, 7, 9, 0), "placed", 12.5, 0.0, 0.0, 2.5, "EUR", "pos", "unknown", "ZZ"),
    ]
    revenue = sum(o[3] for o in orders if o[2] == "placed")
    assert revenue == pytest.approx(135.5)
    # customers: e-mails are hashed (case-insensitively), never stored
    cust = {r[0]: r for r in rows(source_engine, "orders", "order_id", "customer_id")}
    assert cust["#1001"][1] == cust["#1003"][1] != cust["#1002"][1]
    assert len(cust["#1001"][1]) == 16 and "@" not in cust["#1001"][1]
    assert cust["#1005"][1] is None  # a guest order: no customer
    customers = {r[0]: r[1:] for r in rows(source_engine, "customers")}
    assert customers[cust["#1001"][1]] == (datetime(2026, 10, 1, 10, 34, 56), "web", "FR")
    assert customers[cust["#1004"][1]] == (None, "web", "BE")  # only a cancelled order
    assert all("@" not in str(v) for row in snapshot(source_engine).values() for r in row for v in r)
    # refunds: #1002 fully (its 2 items), #1003 partly (1 item); returned when ordered (no refund date)
    assert rows(source_engine, "returns", "return_id", "order_id", "returned_at", "amount", "items", "country") == [
        ("#1002:refund", "#1002", datetime(2026, 10, 2, 7, 15), 42.0, 2, "DE"),
        ("#1003:refund", "#1003", datetime(2026, 10, 5, 16, 2, 11), 5.0, 1, "FR"),
    ]
    assert "Lineitem name" in result.ignored_columns
    again = import_shopify_orders(source_engine, path, tz=PARIS, currency="EUR")
    assert {t: c["unchanged"] for t, c in again.per_table.items()} == {
        "orders": 5,
        "customers": 3,
        "returns": 2,
    }
    assert again.inserted == again.updated == 0


SHOPIFY_HEADER = "Name,Email,Financial Status,Currency,Subtotal,Shipping,Taxes,Total,Created at,Lineitem quantity,Refunded Amount,Cancelled at,Source,Shipping Country\n"


def test_shopify_prices_including_tax_are_taken_net(source_engine, tmp_path):
    text = SHOPIFY_HEADER + (
        "#2001,a@example.com,paid,EUR,120.00,5.00,20.83,125.00,2026-10-01 10:00:00 +0200,1,0.00,,web,FR\n"
        "#2002,b@example.com,paid,EUR,100.00,0.00,20.00,120.00,2026-10-01 11:00:00 +0200,1,0.00,,web,FR\n"
    )
    result = import_shopify_orders(source_engine, write(tmp_path, text), tz=PARIS, currency="EUR")
    assert rows(source_engine, "orders", "order_id", "subtotal") == [("#2001", 99.17), ("#2002", 100.0)]
    assert any("including tax" in n for n in result.notes)


def test_a_bad_shopify_export_is_refused_with_its_lines(source_engine, tmp_path):
    text = SHOPIFY_HEADER + (
        "#3001,a@example.com,paid,EUR,10.00,0,0,10.00,2026-10-01 10:00:00 +0200,1,0.00,,web,FR\n"
        "#3001,,,,,,,,,2,,,,\n"  # a second line item: fine
        "#3002,b@example.com,paid,USD,10.00,0,0,10.00,2026-10-01 10:00:00 +0200,1,0.00,,web,FR\n"
        "#3003,c@example.com,paid,EUR,-1.00,0,0,-1.00,someday,x,0.00,,web,FR\n"
        "#3001,a@example.com,paid,EUR,10.00,0,0,10.00,2026-10-01 10:00:00 +0200,1,0.00,,web,FR\n"
    )
    before = snapshot(source_engine)
    with pytest.raises(ImportRefused) as info:
        import_shopify_orders(source_engine, write(tmp_path, text), tz=PARIS, currency="EUR")
    assert snapshot(source_engine) == before
    lines = bad_lines(info.value)
    assert sorted(lines) == [4, 5, 6]
    assert "USD differs from EUR" in lines[4]
    assert "negative" in lines[5] and "'someday'" in lines[5] and "Lineitem quantity 'x'" in lines[5]
    assert "in the file twice: already on line 2" in lines[6]


def test_a_file_that_is_not_a_shopify_export_is_refused(source_engine, tmp_path):
    with pytest.raises(ImportRefused, match="not a Shopify orders export"):
        import_shopify_orders(source_engine, write(tmp_path, ORDERS), tz=PARIS, currency="EUR")
