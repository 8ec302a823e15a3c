"""DuckDB's one-writer rule with the bot's processes (kpi.db_writing): a process answering questions is never
blocked by an import in another process, and never sees half of a file; a refused file leaves the database
as it was; two imports at once both land. Real processes, a real DuckDB file, nothing mocked."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kpi.data import importer
from kpi.db import make_engine
from kpi.errors import ImportRefused

from .test_backends import _load, _write_csvs

pytest.importorskip("duckdb_engine") if os.environ.get("CI") != "true" else None
ROOT = Path(__file__).resolve().parent.parent

READER = textwrap.dedent("""
    import sys, os, time
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo
    from pathlib import Path
    from kpi.metrics.engine import KpiRequest
    from kpi.metrics.periods import parse_period
    from kpi.services import Services
    from kpi.settings import Settings
    url, state, done = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    services = Services(Settings(database_url=state, source_url=url, config_dir=Path("config")))
    kpis = services.kpi_engine()
    period = parse_period("2020-01-01..2030-12-31", now=datetime.now(UTC), tz=ZoneInfo("UTC"))
    def orders():
        return kpis.ask(KpiRequest("orders", period, compare=None, series=False)).current.value
    print("ready", orders(), flush=True)
    for _ in range(100000):  # until the import is over, then once more
        over = done.exists()
        print("answer", orders(), flush=True)
        if over:
            break
        time.sleep(0.01)  # a web process's pace: the importer gets the CPU too
""")


def _more_orders(path: Path, n: int, prefix: str) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "customer_id", "placed_at", "subtotal", "currency", "channel"])
        for i in range(n):
            w.writerow([f"{prefix}{i}", f"x{i % 50}", f"2025-03-{1 + i % 28:02d} 10:{i % 60:02d}:00", "10.00", "USD",
                        "email"])
    return path


def _orders(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()
    finally:
        engine.dispose()


def _import(url: str, path: Path) -> subprocess.Popen:
    code = ("import sys; from zoneinfo import ZoneInfo; from kpi.data import importer; from kpi.db import make_engine;"
            "importer.import_csv(make_engine(sys.argv[1]), sys.argv[2], 'orders', tz=ZoneInfo('UTC'), currency='USD')")
    return subprocess.Popen([sys.executable, "-c", code, url, str(path)], cwd=ROOT)


@pytest.fixture
def shop(tmp_path):
    url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    _load(url, {"orders": _write_csvs(tmp_path / "csv")["orders"]})
    return url, tmp_path


def test_a_process_answers_while_another_imports_and_sees_the_whole_file_after(shop):
    url, tmp = shop
    big = _more_orders(tmp / "more.csv", 5000, "m")
    done = tmp / "import-done"
    reader = subprocess.Popen([sys.executable, "-c", READER, url, f"sqlite:///{tmp / 'state.db'}", str(done)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    ready, first = reader.stdout.readline().split()
    before = int(float(first))  # the orders KPI (cancelled ones left out)
    assert ready == "ready" and before > 0
    writer = _import(url, big)
    assert writer.wait(timeout=300) == 0  # the reader's connections never blocked it
    done.touch()
    out, _ = reader.communicate(timeout=300)
    assert reader.returncode == 0  # and the import never blocked the reader (an error would end it non-zero)
    answers = [int(float(line.split()[1])) for line in out.splitlines()]
    assert set(answers) <= {before, before + 5000}  # the old file or the new one, never a part of it
    assert answers[-1] == before + 5000  # asked after the import: the new data
    assert not list(tmp.glob("shop.duckdb.writing-*"))  # no private copy left behind


def test_a_refused_file_leaves_the_database_as_it_was(shop):
    url, tmp = shop
    path = tmp / "shop.duckdb"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    bad = _more_orders(tmp / "bad.csv", 3000, "b")
    bad.write_text(bad.read_text() + "b-last,x1,not a date,10.00,USD,email\n")
    with pytest.raises(ImportRefused):
        importer.import_csv(make_engine(url), bad, "orders", tz=ZoneInfo("UTC"),
                            currency="USD")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not list(tmp.glob("shop.duckdb.writing-*"))


def test_two_imports_at_once_both_land(shop):
    url, tmp = shop
    before = _orders(url)
    first, second = _import(url, _more_orders(tmp / "a.csv", 2000, "a")), _import(url, _more_orders(tmp / "b.csv", 2000, "b"))
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    assert _orders(url) == before + 4000


def test_a_forked_process_reads_and_imports_and_its_parent_sees_the_new_file(shop):
    """gunicorn's preloading master (and the chart helper) fork after the process has answered: no DuckDB
    instance crosses the fork, the child answers and imports, and the parent reads the file the child wrote."""
    url, tmp = shop
    engine = make_engine(url)
    before = _orders_of(engine)
    told = tmp / "child.txt"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            first = _orders_of(engine)
            importer.import_csv(engine, _more_orders(tmp / "c.csv", 300, "c"), "orders", tz=ZoneInfo("UTC"),
                                currency="USD")
            told.write_text(f"{first} {_orders_of(engine)}")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert told.read_text().split() == [str(before), str(before + 300)]
    assert _orders_of(engine) == before + 300
    engine.dispose()


def _orders_of(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()


def test_a_question_after_an_import_reads_the_new_file_even_while_another_question_held_the_old_one(shop):
    # DuckDB hands a new connection the instance still open for the path: a web process answering in several
    # threads, one of them mid-question while an import replaced the file, kept reading the old file until the
    # next import. Now the next question waits for the running one, then opens the new file.
    import threading

    url, tmp = shop
    engine = make_engine(url)
    before = _orders_of(engine)
    holding, release = threading.Event(), threading.Event()

    def running_question():
        with engine.connect() as conn:  # a question on the old file, still running during the import
            conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()
            holding.set()
            release.wait(60)

    other = threading.Thread(target=running_question)
    other.start()
    assert holding.wait(60)
    importer.import_csv(make_engine(url), _more_orders(tmp / "n.csv", 200, "n"), "orders", tz=ZoneInfo("UTC"),
                        currency="USD")
    found = []
    asker = threading.Thread(target=lambda: found.append(_orders_of(engine)))  # the next question, another thread
    asker.start()
    threading.Timer(1.0, release.set).start()  # the running question ends a moment later (the answer does not
    other.join(60)                              # depend on when: the next question waits for it either way)
    asker.join(60)
    assert found == [before + 200]
    assert _orders_of(engine) == before + 200  # and every question after it
    engine.dispose()
