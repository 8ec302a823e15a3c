"""A big file is read in chunks (kpi.data.importer.reading.CHUNK_ROWS records each) and loads exactly as
it would whole: the chunk size is set small here, and every file is loaded both ways and compared —
the rows stored, the counts and notes, or the refusal with its bad lines."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete

from kpi.data import schema
from kpi.data.importer import import_csv
from kpi.data.importer import reading as importer_reading
from kpi.data.messages import told
from kpi.errors import ImportRefused

from .test_importer import snapshot, write

PARIS = ZoneInfo("Europe/Paris")
HEADER = "order_id,customer_id,placed_at,status,subtotal,currency,channel,device,country\n"


def clear(engine) -> None:
    with engine.begin() as conn:
        for table in schema.SOURCE_TABLES.values():
            conn.execute(delete(table))


def outcome(engine, path, table, **kw):
    """What loading ``path`` does to an empty database: (summary, rows) or the refusal."""
    clear(engine)
    kw.setdefault("tz", PARIS)
    try:
        result = import_csv(engine, path, table, **kw)
    except ImportRefused as exc:
        assert snapshot(engine) == {name: [] for name in schema.SOURCE_TABLES}
        return ("refused", told(exc.reason, "en"), [(b.line, told(b.reason, "en")) for b in exc.bad_rows])
    return ("loaded", result.summary("en"), snapshot(engine))


def both_ways(engine, monkeypatch, path, table="orders", sizes=(1, 2, 3), **kw):
    """The outcome whole, and the same for each chunk size."""
    monkeypatch.setattr(importer_reading, "CHUNK_ROWS", 1_000_000)
    whole = outcome(engine, path, table, **kw)
    for size in sizes:
        monkeypatch.setattr(importer_reading, "CHUNK_ROWS", size)
        assert outcome(engine, path, table, **kw) == whole, f"chunks of {size}"
    return whole


def orders(n: int, first: int = 1, amount: str = "10.00") -> str:
    return "".join(f"A{i},c{i % 3},2026-10-{1 + i % 28:02d} 10:00,placed,{amount},EUR,web,mobile,FR\n"
                   for i in range(first, first + n))


# -- the cases the brief names -----------------------------------------------------------------------


def test_a_bad_line_in_the_last_chunk_refuses_the_file_and_writes_nothing(source_engine, tmp_path, monkeypatch):
    text = HEADER + orders(9) + "A99,c1,2026-10-01,placed,ten,EUR,web,mobile,FR\n"
    monkeypatch.setattr(importer_reading, "CHUNK_ROWS", 3)
    with pytest.raises(ImportRefused) as info:
        import_csv(source_engine, write(tmp_path, text), "orders", tz=PARIS)
    assert [b.line for b in info.value.bad_rows] == [11]
    assert "subtotal 'ten' is not a number" in told(info.value.bad_rows[0].reason, "en")
    assert snapshot(source_engine) == {name: [] for name in schema.SOURCE_TABLES}


def test_a_duplicate_key_across_chunks_names_both_lines(source_engine, tmp_path, monkeypatch):
    text = HEADER + orders(6) + orders(1, first=2)  # A2 on line 3 and again on line 8
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text))
    assert whole[0] == "refused"
    assert whole[2] == [(8, "duplicate order_id 'A2': already on line 3")]


def test_a_duplicate_traffic_key_across_chunks(source_engine, tmp_path, monkeypatch):
    text = ("day,channel,device,country,sessions,visitors\n2026-10-01,web,mobile,FR,10,5\n"
            "2026-10-02,web,mobile,FR,10,5\n2026-10-03,web,mobile,FR,10,5\n2026-10-01,web,mobile,France,3,2\n")
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text), "traffic")
    assert whole[0] == "refused" and [line for line, _ in whole[2]] == [5]


LINES_HEADER = "order_id,customer_id,placed_at,quantity,unit_price,currency,channel,country\n"


def test_an_orders_lines_across_a_chunk_boundary_are_summed_into_one_order(source_engine, tmp_path, monkeypatch):
    text = LINES_HEADER + "".join(
        f"{o},c{o % 4},2026-10-0{1 + o % 5} 10:00,{q},2.50,EUR,web,FR\n"
        for o, q in [(1, 1), (1, 2), (2, 1), (2, 1), (2, 1), (2, 2), (3, 1), (4, 3), (4, 1)]
    )
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text), lines=True, sizes=(1, 2, 3, 4))
    assert whole[0] == "loaded"
    stored = {r[0]: r[4] for r in whole[2]["orders"]}
    assert stored == {"1": 7.5, "2": 12.5, "3": 2.5, "4": 10.0}


def test_an_orders_lines_apart_in_the_file_are_summed_too(source_engine, tmp_path, monkeypatch):
    text = LINES_HEADER + "".join(
        f"{o},c{o},2026-10-0{o} 10:00,{q},1.00,EUR,web,FR\n"
        for o, q in [(1, 1), (2, 2), (3, 1), (1, 4), (4, 1), (2, 1), (5, 1), (1, -1)]
    )
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text), lines=True, sizes=(1, 2, 3))
    assert whole[0] == "loaded"
    assert {r[0]: r[4] for r in whole[2]["orders"]} == {"1": 5.0, "2": 3.0, "3": 1.0, "4": 1.0, "5": 1.0}
    assert [r[0] for r in whole[2]["returns"]] == ["1:return:1"]


def test_lines_that_disagree_across_chunks_are_refused_naming_the_orders_first_line(source_engine, tmp_path,
                                                                                    monkeypatch):
    text = LINES_HEADER + ("1,c1,2026-10-01 10:00,1,1.00,EUR,web,FR\n2,c2,2026-10-02 10:00,1,1.00,EUR,web,FR\n"
                           "2,c2,2026-10-02 10:00,1,1.00,EUR,web,FR\n1,c9,2026-10-01 10:00,1,1.00,EUR,web,FR\n")
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text), lines=True)
    assert whole[0] == "refused" and [line for line, _ in whole[2]] == [5]
    assert "differs from line 2" in whole[2][0][1]


def test_a_decimal_comma_file_whose_first_chunk_holds_only_integers(source_engine, tmp_path, monkeypatch):
    text = "order_id;customer_id;placed_at;subtotal;currency\n" + "".join(
        f"A{i};c{i};2026-10-01;{v};EUR\n" for i, v in enumerate(["12", "7", "1.234", "3", "12,50", "8,25"]))
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text))
    assert whole[0] == "loaded"
    assert [r[4] for r in whole[2]["orders"]] == [12.0, 7.0, 1234.0, 3.0, 12.5, 8.25]


def test_a_day_first_file_settled_by_its_last_chunk(source_engine, tmp_path, monkeypatch):
    text = HEADER + "".join(f"A{i},c1,{d} 10:00,placed,1.00,EUR,web,mobile,FR\n"
                            for i, d in enumerate(["01/02/2026", "03/04/2026", "05/06/2026", "25/12/2026"]))
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text))
    assert whole[0] == "loaded"


# -- the other file-wide rules, chunked and whole alike ---------------------------------------------------


@pytest.mark.parametrize("text", [
    # both decimal conventions: the less frequent refused, naming a line of the other
    "order_id,customer_id,placed_at,subtotal,currency\nA1,c1,2026-10-01,\"1,50\",EUR\nA2,c1,2026-10-01,2.50,EUR\n"
    "A3,c1,2026-10-01,3.50,EUR\nA4,c1,2026-10-01,\"4,50\",EUR\nA5,c1,2026-10-01,\"5,50\",EUR\n"
    "A6,c1,2026-10-01,6.50,EUR\nA7,c1,2026-10-01,7.5,EUR\n",
    # day first and month first: the less frequent refused
    HEADER + "A1,c1,13/01/2026,placed,1,EUR,web,mobile,FR\nA2,c1,01/13/2026,placed,1,EUR,web,mobile,FR\n"
    "A3,c1,14/01/2026,placed,1,EUR,web,mobile,FR\nA4,c1,02/03/2026,placed,1,EUR,web,mobile,FR\n",
    # ambiguous dates, nothing settles
    HEADER + "A1,c1,01/02/2026,placed,1,EUR,web,mobile,FR\nA2,c1,03/03/2026,placed,1,EUR,web,mobile,FR\n"
    "A3,c1,04/05/2026,placed,1,EUR,web,mobile,FR\n",
    # two currencies: the less frequent refused, naming the first line of the other
    HEADER + "A1,c1,2026-10-01,placed,1,USD,web,mobile,FR\nA2,c1,2026-10-01,placed,1,EUR,web,mobile,FR\n"
    "A3,c1,2026-10-01,placed,1,EUR,web,mobile,FR\nA4,c1,2026-10-01,placed,1,USD,web,mobile,FR\n"
    "A5,c1,2026-10-01,placed,1,EUR,web,mobile,FR\n",
    # guests, credit notes, unknown countries, empty and ragged lines, a quoted line break
    HEADER + "A1,,2026-10-01,placed,10,EUR,web,mobile,Atlantis\n\nA2,c1,2026-10-02,placed,-4,EUR,web,mobile,FR\n"
    "A3,c2,2026-10-03,refund,5,EUR,web,mobile,Atlantis\n,,,,,,,,\nA4,,2026-10-04,placed,1,EUR,\"w\neb\",mobile,Mu\n"
    "A5,c1,2026-10-05,cancelled,2,EUR,web,mobile,FR\n",
    HEADER + "A1,c1,2026-10-01,placed,10,EUR,web,mobile,FR\nA2,c1,2026-10-02,placed\nA3,c1,2026-10-03,placed,1,EUR,"
    "web,mobile,FR,extra\nA4,c1,2026-10-04,placed,1,EUR,web,mobile,FR\n",
    # the customer's first order is in a later chunk
    HEADER + "A1,c1,2026-10-05,placed,1,EUR,email,mobile,DE\nA2,c2,2026-10-02,cancelled,1,EUR,web,mobile,FR\n"
    "A3,c1,2026-10-01,placed,1,EUR,social,mobile,FR\nA4,c2,2026-10-01,cancelled,1,EUR,email,mobile,DE\n"
    "A5,c1,2026-09-01,cancelled,1,EUR,ads,mobile,BE\n",
])
def test_a_file_loads_in_chunks_as_it_loads_whole(source_engine, tmp_path, monkeypatch, text):
    both_ways(source_engine, monkeypatch, write(tmp_path, text), currency="EUR")


def test_credit_notes_in_a_line_item_file_with_plain_number_ids_late(source_engine, tmp_path, monkeypatch):
    # "C536379" is a credit note only because the file has plain-number invoices: in a later chunk here
    text = LINES_HEADER + ("C1,c1,2026-10-01 10:00,-1,2.00,EUR,web,FR\nC1,c1,2026-10-01 10:00,-2,2.00,EUR,web,FR\n"
                           "C2,c2,2026-10-02 10:00,1,2.00,EUR,web,FR\n536380,c1,2026-10-03 10:00,1,3.00,EUR,web,FR\n")
    whole = both_ways(source_engine, monkeypatch, write(tmp_path, text), lines=True)
    assert whole[0] == "loaded" and [r[0] for r in whole[2]["returns"]] == ["C1", "C2"]


def test_a_returns_file_in_chunks_takes_its_orders_dimensions(source_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(importer_reading, "CHUNK_ROWS", 2)
    import_csv(source_engine, write(tmp_path, HEADER + orders(5), "o.csv"), "orders", tz=PARIS)
    text = "return_id,order_id,returned_at,amount\n" + "".join(f"R{i},A{i},2026-10-20,1.00\n" for i in range(1, 7))
    result = import_csv(source_engine, write(tmp_path, text, "r.csv"), "returns", tz=PARIS)
    assert result.inserted == 6
    assert "1 return refers to an order not in the data" in result.summary("en")
