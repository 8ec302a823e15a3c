"""Reliability of the importer against the files people really send: each file either loads entirely
(every row counted) or is refused with every bad line named and the database exactly as before.

Goes beyond tests/test_importer.py: files cut mid-line and mid-quoted-field, UTF-16 without a
byte-order mark, binary files, an empty and a header-only file, a bad last line of 200,000, a file of
a million orders (SQLite only), and conflicting re-imports. Runs on SQLite and PostgreSQL.

With KPIBOT_RELIABILITY_REPORT_DIR set, ``<dir>/files.json`` gets every case and its outcome.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kpi.data import schema
from kpi.data.importer import import_csv
from kpi.errors import ImportRefused

PARIS = ZoneInfo("Europe/Paris")
HEADER = "order_id,customer_id,placed_at,status,subtotal,discount,shipping,tax,currency,channel,device,country\n"


def row(i: int, *, placed: str = "2026-10-01T10:00:00Z", subtotal: str = "10.00", currency: str = "EUR",
        customer: str | None = None) -> str:
    return (f"A{i},{customer or f'c{i % 97}'},{placed},placed,{subtotal},0,0,2.00,{currency},web,mobile,FR\n")


GOOD = HEADER + "".join(row(i) for i in range(1, 4))

# -- the report ----------------------------------------------------------------------------------------

CASES: list[dict] = []
MILLION: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    out = os.environ.get("KPIBOT_RELIABILITY_REPORT_DIR")
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    loaded = [c for c in CASES if c["outcome"] == "loaded"]
    refused = [c for c in CASES if c["outcome"] == "refused"]
    report = {
        "files": len(CASES),
        "loaded": len(loaded),
        "refused": len(refused),
        "db_unchanged_after_refusal": all(c.get("db_unchanged", False) for c in refused),
        "million_rows_seconds": MILLION.get("seconds"),
        "cases": CASES,
    }
    (Path(out) / "files.json").write_text(json.dumps(report, indent=2, default=str))


def _backend(engine) -> str:
    return engine.dialect.name


# -- helpers -------------------------------------------------------------------------------------------


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every source table, in key order."""
    out = {}
    with engine.connect() as conn:
        for name, table in schema.SOURCE_TABLES.items():
            out[name] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def count(engine, table="orders") -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.SOURCE_TABLES[table])).scalar()


def put(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def loads(engine, path: Path, case: str, *, rows: int, table: str = "orders", **kw):
    """``path`` loads entirely: ``rows`` data lines read, every one inserted or updated or unchanged."""
    kw.setdefault("tz", PARIS)
    result = import_csv(engine, path, table, **kw)
    assert result.rows_read == rows
    assert result.inserted + result.updated + result.unchanged == rows
    CASES.append({"case": case, "backend": _backend(engine), "outcome": "loaded", "rows": rows,
                  "inserted": result.inserted, "updated": result.updated, "notes": result.notes})
    return result


def refused(engine, path: Path, case: str, *, lines: set[int] | None, table: str = "orders",
            reason: str = "", **kw) -> ImportRefused:
    """``path`` is refused with exactly the bad ``lines`` named (None: no line, a file-level reason), and
    every source table exactly as before."""
    kw.setdefault("tz", PARIS)
    before = snapshot(engine)
    with pytest.raises(ImportRefused) as info:
        import_csv(engine, path, table, **kw)
    err = info.value
    unchanged = snapshot(engine) == before
    CASES.append({"case": case, "backend": _backend(engine), "outcome": "refused", "db_unchanged": unchanged,
                  "bad_lines": sorted({b.line for b in err.bad_rows})[:20], "reason": err.reason})
    assert unchanged
    if lines is None:
        assert err.bad_rows == [] and err.reason
    else:
        assert {b.line for b in err.bad_rows} == lines, str(err)
    assert reason in str(err)
    assert "Traceback" not in str(err)
    return err


@pytest.fixture
def shop(source_engine, tmp_path):
    """A database that already holds three orders: a refusal must leave them exactly as they are."""
    import_csv(source_engine, put(tmp_path, "first.csv", GOOD), "orders", tz=PARIS)
    return source_engine


# -- truncated files -----------------------------------------------------------------------------------


def test_a_file_cut_mid_line_names_the_cut_line(shop, tmp_path):
    data = HEADER + row(10) + row(11) + row(12)[:17]  # "A12,c12,2026-10-0"
    refused(shop, put(tmp_path, "cut.csv", data), "cut mid-line", lines={4}, reason="truncated")


def test_a_crlf_file_cut_mid_line_names_the_cut_line(shop, tmp_path):
    data = (HEADER + row(10) + row(11)).replace("\n", "\r\n")[:-9]
    refused(shop, put(tmp_path, "cut-crlf.csv", data), "cut mid-line (CRLF)", lines={3}, reason="truncated")


def test_a_file_cut_inside_a_quoted_value_on_its_last_line_is_refused(shop, tmp_path):
    data = HEADER + row(10) + 'A11,"c1'
    refused(shop, put(tmp_path, "cut-quote.csv", data), "cut mid-quoted-field", lines={3}, reason="not valid CSV")


def test_an_unterminated_quote_is_named_at_the_line_where_it_opens(shop, tmp_path):
    data = HEADER + row(10) + 'A11,"c1,2026-10-01,placed,1,0,0,0,EUR,web,mobile,FR\n' + row(12) + row(13)
    refused(shop, put(tmp_path, "open-quote.csv", data), "unterminated quote mid-file", lines={3})


def test_every_bad_line_is_named_when_the_file_also_ends_inside_a_quote(shop, tmp_path):
    data = HEADER + row(10) + "A11,c11,2026\n" + row(12) + 'A13,"c1'
    refused(shop, put(tmp_path, "two-bad.csv", data), "truncated line + cut quote", lines={3, 5})


# -- encodings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_refused_not_read_garbled(shop, tmp_path, codec):
    data = (HEADER + row(10)).encode(codec)
    err = refused(shop, put(tmp_path, f"{codec}.csv", data), f"{codec} without BOM", lines={1},
                  reason="UTF-16 without a byte-order mark")
    assert err.bad_rows[0].reason == "NUL character"


def test_latin1_with_accents_loads_with_the_accents_and_a_note(source_engine, tmp_path):
    data = (HEADER + row(1, customer="clément") + row(2, customer="zoë")).encode("latin-1")
    result = loads(source_engine, put(tmp_path, "latin1.csv", data), "latin-1 with accents", rows=2)
    assert any("Windows-1252" in n for n in result.notes)
    with source_engine.connect() as conn:
        got = sorted(conn.execute(select(schema.orders.c.customer_id)).scalars())
    assert got == ["clément", "zoë"]


def test_utf8_bom_with_semicolons_and_crlf_loads(source_engine, tmp_path):
    text = (HEADER + row(1) + row(2)).replace(",", ";").replace("\n", "\r\n")
    path = put(tmp_path, "bom.csv", b"\xef\xbb\xbf" + text.encode())
    result = loads(source_engine, path, "UTF-8 BOM, semicolons, CRLF", rows=2)
    assert result.ignored_columns == []  # the BOM is not glued to the first column name
    assert count(source_engine) == 2


def test_utf16_with_a_bom_and_accents_loads(source_engine, tmp_path):
    data = (HEADER + row(1, customer="amélie")).encode("utf-16")
    loads(source_engine, put(tmp_path, "utf16.csv", data), "UTF-16 with BOM", rows=1)
    with source_engine.connect() as conn:
        assert conn.execute(select(schema.orders.c.customer_id)).scalar() == "amélie"


def test_a_bom_then_invalid_utf8_is_refused_with_the_line(shop, tmp_path):
    data = b"\xef\xbb\xbf" + (HEADER + row(10)).encode() + row(11).encode().replace(b"c11", b"c\xe911")
    refused(shop, put(tmp_path, "bom-bad.csv", data), "BOM then latin-1 byte", lines={3}, reason="UTF-8")


# -- columns -------------------------------------------------------------------------------------------


def test_missing_required_columns_are_refused(shop, tmp_path):
    header = HEADER.replace("subtotal,", "").replace("customer_id,", "")
    body = "".join(",".join(p for j, p in enumerate(row(i).split(",")) if j not in (1, 4)) for i in range(10, 13))
    err = refused(shop, put(tmp_path, "missing.csv", header + body), "missing columns", lines={1})
    assert "subtotal" in str(err) and "customer_id" in str(err)


def test_extra_columns_are_ignored_and_the_rows_load(source_engine, tmp_path):
    header = HEADER.rstrip("\n") + ",note,Gift Wrap\n"
    body = "".join(row(i).rstrip("\n") + ',"hello, world",yes\n' for i in range(1, 4))
    result = loads(source_engine, put(tmp_path, "extra.csv", header + body), "extra columns", rows=3)
    assert result.ignored_columns == ["note", "Gift Wrap"]


def test_lines_with_one_field_too_many_are_all_named(shop, tmp_path):
    body = row(10) + row(11).replace("web", "web,extra") + row(12) + row(13).replace("FR", "FR,")
    refused(shop, put(tmp_path, "wide.csv", HEADER + body), "unquoted delimiter", lines={3, 5})


# -- keys ----------------------------------------------------------------------------------------------


def test_a_key_three_times_in_one_file_names_every_line(shop, tmp_path):
    body = row(10) + row(11) + row(10, subtotal="11.00") + row(12) + row(10, subtotal="12.00")
    err = refused(shop, put(tmp_path, "dups.csv", HEADER + body), "key three times", lines={4, 6})
    assert str(err).count("already on line 2") == 2  # the first occurrence is named in each


def test_a_second_import_with_conflicting_values_updates_and_counts_them(source_engine, tmp_path):
    loads(source_engine, put(tmp_path, "one.csv", HEADER + row(1) + row(2) + row(3)), "first import", rows=3)
    second = HEADER + row(1, subtotal="99.90") + row(2) + row(3, placed="2026-10-02T08:00:00Z") + row(4)
    result = loads(source_engine, put(tmp_path, "two.csv", second), "conflicting re-import", rows=4)
    assert (result.inserted, result.updated, result.unchanged) == (1, 2, 1)
    with source_engine.connect() as conn:
        got = dict(conn.execute(select(schema.orders.c.order_id, schema.orders.c.subtotal)).all())
        placed = conn.execute(select(schema.orders.c.placed_at).where(schema.orders.c.order_id == "A3")).scalar()
    assert got == {"A1": 99.9, "A2": 10.0, "A3": 10.0, "A4": 10.0}
    assert placed == datetime(2026, 10, 2, 8, 0)


# -- values --------------------------------------------------------------------------------------------


def test_negative_amounts_are_named_on_every_line(shop, tmp_path):
    body = (row(10, subtotal="-1.00") + row(11) + row(12).replace(",0,0,2.00,", ",-5,0,2.00,")
            + row(13).replace(",0,0,2.00,", ",0,0,-0.01,") + row(14))
    # a negative subtotal (line 2) is a credit note, read as a return; a negative discount or tax is an error
    err = refused(shop, put(tmp_path, "neg.csv", HEADER + body), "negative amounts", lines={4, 5})
    assert "negative" in str(err)


def test_dates_in_several_unambiguous_formats_load(source_engine, tmp_path):
    formats = ["2026-10-01T10:00:00Z", "2026-10-01 12:00:00+02:00", "2026-10-01 12:00:00 +0200", "2026-10-01",
               "20261001", "2026/10/01 12:00", "13/10/2026", "01/10/2026 14:30", "01.10.2026"]
    body = "".join(row(i, placed=p) for i, p in enumerate(formats, start=1))
    loads(source_engine, put(tmp_path, "dates.csv", HEADER + body), "dates in several formats", rows=len(formats))
    with source_engine.connect() as conn:
        got = dict(conn.execute(select(schema.orders.c.order_id, schema.orders.c.placed_at)).all())
    assert got["A1"] == got["A2"] == got["A3"] == got["A6"] == datetime(2026, 10, 1, 10, 0)  # offsets → UTC
    assert got["A4"] == got["A5"] == got["A9"] == datetime(2026, 9, 30, 22, 0)  # a Paris day → UTC
    assert got["A7"] == datetime(2026, 10, 12, 22, 0)  # 13/10: day-first, settles 01/10 as 1 October
    assert got["A8"] == datetime(2026, 10, 1, 12, 30)


def test_an_ambiguous_mix_of_day_first_and_month_first_is_refused(shop, tmp_path):
    body = (row(10, placed="25/10/2026") + row(11, placed="26/10/2026") + row(12, placed="10/27/2026")
            + row(13, placed="05/06/2026") + row(14, placed="2026-10-01"))
    err = refused(shop, put(tmp_path, "mix.csv", HEADER + body), "ambiguous date mix", lines={4})
    assert "one date format" in str(err)


def test_only_ambiguous_nn_nn_dates_are_all_refused(shop, tmp_path):
    body = row(10, placed="01/02/2026") + row(11, placed="03/03/2026") + row(12, placed="04/05/2026")
    refused(shop, put(tmp_path, "ambig.csv", HEADER + body), "ambiguous dates only", lines={2, 4})


def test_mixed_currencies_are_refused_and_so_is_a_new_one(shop, tmp_path):
    body = row(10) + row(11, currency="USD") + row(12) + row(13, currency="GBP") + row(14)
    refused(shop, put(tmp_path, "mixed.csv", HEADER + body), "mixed currencies", lines={3, 5})
    usd = HEADER + row(20, currency="USD") + row(21, currency="USD")
    refused(shop, put(tmp_path, "usd.csv", usd), "currency other than the database's", lines=None,
            reason="EUR")


# -- not really CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n"], ids=["empty", "blank"])
def test_an_empty_file_is_refused(shop, tmp_path, content):
    refused(shop, put(tmp_path, "empty.csv", content), f"empty file ({len(content)} bytes)", lines=None,
            reason="empty")


def test_a_header_only_file_loads_nothing_and_says_so(shop, tmp_path):
    before = snapshot(shop)
    result = loads(shop, put(tmp_path, "header.csv", HEADER), "header only", rows=0)
    assert result.inserted == 0 and "the file has no data lines" in result.notes
    assert snapshot(shop) == before


def _first_bad_line(data: bytes) -> set[int]:
    """The line a binary file is refused at: its first byte that is not Windows-1252, else its first NUL."""
    for i, b in enumerate(data):
        if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D):
            return {data.count(b"\n", 0, i) + 1}
    return {data.count(b"\n", 0, data.index(b"\x00")) + 1}


def test_a_png_file_is_refused(shop, tmp_path):
    import zlib

    pixels = zlib.compress(bytes(range(256)) * 64)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + pixels
    refused(shop, put(tmp_path, "chart.csv", png), "PNG bytes", lines=_first_bad_line(png))


def test_a_gzip_file_is_refused(shop, tmp_path):
    import gzip

    data = gzip.compress(GOOD.encode())
    refused(shop, put(tmp_path, "orders.csv.gz", data), "gzip bytes", lines=_first_bad_line(data))


# -- big files -----------------------------------------------------------------------------------------


def _write_orders(path: Path, n: int, *, last: str | None = None) -> None:
    """``n`` valid orders, fast (plain joined writes); ``last`` replaces the final line."""
    chunk = 100_000
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for start in range(1, n + 1, chunk):
            stop = min(n + 1, start + chunk)
            f.write("".join(
                f"O{i},c{i % 50_000},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,"
                f"placed,{i % 500}.{i % 100:02d},0,{i % 7},{i % 13}.50,EUR,web,mobile,FR\n"
                for i in range(start, stop) if not (last is not None and i == n)
            ))
        if last is not None:
            f.write(last)


def test_a_bad_very_last_line_of_200k_is_named_and_nothing_loads(shop, tmp_path):
    path = tmp_path / "200k.csv"
    n = 200_000
    _write_orders(path, n, last=row(n, subtotal="12,5O"))  # an 'O' for a zero, on line n + 1
    err = refused(shop, path, "bad last line of 200k", lines={n + 1})
    assert f"line {n + 1}:" in str(err)
    assert count(shop) == 3


def test_a_million_orders_load_entirely(source_engine, tmp_path):
    # SQLite only: on PostgreSQL the same file takes far longer to write over the wire, and the chunked
    # PostgreSQL writer is covered by the 200k case and tests/test_importer.py; this keeps the suite fast.
    if source_engine.dialect.name != "sqlite":
        pytest.skip("the million-row file runs on SQLite only, to keep the suite fast")
    path = tmp_path / "1m.csv"
    n = 1_000_000
    _write_orders(path, n)
    started = time.perf_counter()
    result = loads(source_engine, path, "1M orders", rows=n)
    MILLION["seconds"] = round(time.perf_counter() - started, 2)
    assert result.inserted == n
    assert count(source_engine) == n
    assert count(source_engine, "customers") == 50_000
