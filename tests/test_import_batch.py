"""Whole folders, incrementally (issue 13): ``kpibot import PATH [PATH ...]`` (folders, several files, one
transaction per file, files already loaded skipped by content, ``--force``, a refused file among good ones),
the worker's inbox (``KPIBOT_INBOX``: what a file holds, files still being written, loaded/ and refused/,
the import log), and the App Home's refused imports, for admins only. SQLite and PostgreSQL; time injected
(the inbox's clock, and the files' modification times set from it)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kpi.cli import main
from kpi.data import schema
from kpi.data.batch import Progress, imported_files, list_files, source_key
from kpi.data.inbox import Inbox, what_of
from kpi.db import make_engine
from kpi.errors import KpiError
from kpi.state.tables import import_runs

from .test_cli import env  # noqa: F401 - fixture

HEADER = "order_id,customer_id,placed_at,subtotal,currency,channel\n"
PARIS = ZoneInfo("Europe/Paris")


def day_file(folder: Path, day: int, n: int = 3, *, name: str | None = None, channel: str = "email") -> Path:
    path = folder / (name or f"orders_2026-11-{day:02d}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"D{day}-{i},c{i},2026-11-{day:02d} 10:{i:02d},{10 + i}.50,EUR,{channel}\n"
                                     for i in range(n)), encoding="utf-8")
    return path


def bad_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "B1,c1,2026-11-20 10:00,12.50,EUR,email\nB2,c2,2026-11-20 11:00,x,EUR,email\n"
                    "B3,c3,2026-11-20 12:00,,EUR,email\n", encoding="utf-8")
    return path


def rows(url: str, query):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(query).all()
    finally:
        engine.dispose()


def order_ids(url: str) -> set[str]:
    return {r[0] for r in rows(url, select(schema.orders.c.order_id))}


def runs(url: str) -> list[tuple]:
    return [tuple(r) for r in rows(url, select(import_runs.c.file_name, import_runs.c.status, import_runs.c.rows_read,
                                              import_runs.c.source_key).order_by(import_runs.c.id))]


# -- the command line ------------------------------------------------------------------------------------
def test_a_folder_and_files_load_in_name_order_each_once(env, tmp_path, capsys):  # noqa: F811
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    daily = tmp_path / "daily"
    for day in (3, 1, 2):
        day_file(daily, day)
    (daily / "README.md").write_text("not data")
    (daily / ".~lock.orders.csv").write_text("an editor's lock file")
    day_file(daily / "sub", 4)  # not read without --recursive
    extra = day_file(tmp_path, 5, name="late.tsv.csv")
    assert main(["import", str(daily), str(extra), "--table", "orders"]) == 0
    out = capsys.readouterr().out.splitlines()
    loaded = [line.split(":")[0] for line in out if "rows read into orders" in line]
    assert [Path(p).name for p in loaded] == ["orders_2026-11-01.csv", "orders_2026-11-02.csv",
                                              "orders_2026-11-03.csv", "late.tsv.csv"]
    assert out[-1] == "4 files: 4 loaded, 0 skipped (already loaded), 0 refused; 12 rows read"
    assert len(order_ids(env)) == 12
    key = source_key(env)
    assert [(Path(f).name, s, n, k) for f, s, n, k in runs(env)][:1] == [("orders_2026-11-01.csv", "loaded", 3, key)]
    assert len(rows(env, select(imported_files))) == 4
    # --recursive takes the subfolder too; the four files already loaded are skipped by their content
    assert main(["import", str(daily), "--table", "orders", "--recursive"]) == 0
    out = capsys.readouterr().out
    assert out.count("already loaded on") == 3 and "sub/orders_2026-11-04.csv" in out.replace(os.sep, "/")
    assert len(order_ids(env)) == 15


def test_a_file_loaded_before_is_skipped_by_content_and_force_loads_it_again(env, tmp_path, capsys):  # noqa: F811
    assert main(["db", "upgrade"]) == 0
    first = day_file(tmp_path, 1)
    assert main(["import", str(first), "--table", "orders"]) == 0
    copy = tmp_path / "renamed-copy.csv"
    copy.write_bytes(first.read_bytes())
    capsys.readouterr()
    assert main(["import", str(copy), "--table", "orders"]) == 0
    out = capsys.readouterr().out
    assert "renamed-copy.csv: already loaded on " in out and "(3 rows); skipped (--force loads it again)" in out
    assert main(["import", str(copy), "--table", "orders", "--force"]) == 0
    assert "3 rows read into orders: 0 inserted, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert [s for _, s, _, _ in runs(env)] == ["loaded", "skipped", "loaded"]
    [recorded] = rows(env, select(imported_files))
    assert recorded.file_name.endswith("renamed-copy.csv") and recorded.rows == 3 and recorded.format == "orders"


def test_a_refused_file_among_good_ones_writes_nothing_the_others_load_exit_2(env, tmp_path, capsys):  # noqa: F811
    assert main(["db", "upgrade"]) == 0
    folder = tmp_path / "in"
    day_file(folder, 1)
    bad = bad_file(folder, "orders_2026-11-02.csv")
    day_file(folder, 3)
    capsys.readouterr()
    assert main(["import", str(folder), "--table", "orders"]) == 2
    captured = capsys.readouterr()
    assert "orders_2026-11-02.csv: import refused" in captured.err
    assert "line 3:" in captured.err and "line 4:" in captured.err and "Traceback" not in captured.err
    assert captured.out.splitlines()[-1] == "3 files: 2 loaded, 0 skipped (already loaded), 1 refused; 6 rows read"
    ids = order_ids(env)
    assert len(ids) == 6 and not {"B1", "B2", "B3"} & ids  # B1 is a good line: nothing of the file is written
    assert [s for _, s, _, _ in runs(env)] == ["loaded", "refused", "loaded"]
    assert {r.file_name[-21:] for r in rows(env, select(imported_files))} == {"orders_2026-11-01.csv",
                                                                             "orders_2026-11-03.csv"}
    # fixed, the file loads; the two others are skipped
    day_file(folder, 2, name=bad.name)
    assert main(["import", str(folder), "--table", "orders"]) == 0
    assert "3 files: 1 loaded, 2 skipped (already loaded), 0 refused; 3 rows read" in capsys.readouterr().out


def lines_file(folder: Path, day: int, orders: int = 2, currency: str = "EUR") -> Path:
    """Line items: two lines per order, the order's fields repeated."""
    path = folder / f"lines_2026-11-{day:02d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"L{day}-{o},c{o},2026-11-{day:02d} 09:00,{currency},SKU{k},{k + 1},2.50\n"
                   for o in range(orders) for k in range(2))
    path.write_text("order_id,customer_id,placed_at,currency,sku,quantity,unit_price\n" + body, encoding="utf-8")
    return path


def test_a_folder_of_line_item_files_loads_as_orders(env, tmp_path, capsys):  # noqa: F811
    assert main(["db", "upgrade"]) == 0
    for day in (1, 2):
        lines_file(tmp_path / "lines", day)
    assert main(["import", str(tmp_path / "lines"), "--table", "orders", "--lines"]) == 0
    assert "2 files: 2 loaded" in capsys.readouterr().out
    subtotals = {r.order_id: r.subtotal for r in rows(env, select(schema.orders.c.order_id, schema.orders.c.subtotal))}
    assert subtotals == {f"L{d}-{o}": pytest.approx(1 * 2.5 + 2 * 2.5) for d in (1, 2) for o in range(2)}
    assert {f for _, f in rows(env, select(imported_files.c.sha256, imported_files.c.format))} == {"orders-lines"}


def test_what_the_command_line_refuses_before_reading_anything(env, tmp_path, capsys):  # noqa: F811
    assert main(["db", "upgrade"]) == 0
    good = day_file(tmp_path, 1)
    capsys.readouterr()
    assert main(["import", str(good), str(tmp_path / "missing")]) == 2  # no --table: said before anything
    assert main(["import", str(good), str(tmp_path / "missing"), "--table", "orders"]) == 2
    err = capsys.readouterr().err
    assert "say what the files hold" in err and "missing: no such file or folder" in err
    assert main(["import", str(good), "--table", "returns", "--lines"]) == 2
    assert "--lines" in capsys.readouterr().err
    assert order_ids(env) == set() and runs(env) == []
    assert main(["import", str(tmp_path / "empty-folder-that-exists"), "--table", "orders"]) == 2
    (tmp_path / "nothing").mkdir()
    assert main(["import", str(tmp_path / "nothing"), "--table", "orders"]) == 0
    assert "0 files: 0 loaded" in capsys.readouterr().out


def test_on_a_terminal_one_progress_line_on_stderr_and_the_plain_lines_on_stdout(env, tmp_path, monkeypatch,  # noqa: F811
                                                                                  capsys):
    assert main(["db", "upgrade"]) == 0
    for day in (1, 2, 3):
        day_file(tmp_path / "in", day)
    capsys.readouterr()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["import", str(tmp_path / "in"), "--table", "orders"]) == 0
    out, drawn = capsys.readouterr().out, terminal.getvalue()
    assert "\r" not in out and out.count("rows read into orders") == 3
    assert "0/3 files" in drawn and "3/3 files, 9 rows" in drawn and drawn.endswith("\r\033[K")


def test_a_folder_in_a_preset_format_and_what_format_refuses(env, tmp_path, capsys):  # noqa: F811
    assert main(["db", "upgrade"]) == 0
    folder = tmp_path / "retail"
    folder.mkdir()
    for day in (1, 2):
        (folder / f"{day}.csv").write_text(
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            f"5363{day}0,85123A,LANTERN,6,2026-11-0{day} 08:26,2.55,17850.0,United Kingdom\n"
            f"5363{day}0,71053,METAL LANTERN,2,2026-11-0{day} 08:26,3.00,17850.0,United Kingdom\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["import", str(folder), "--format", "online-retail"]) == 0
    assert "2 files: 2 loaded" in capsys.readouterr().out and order_ids(env) == {"536310", "536320"}
    assert {f for _, f in rows(env, select(imported_files.c.sha256, imported_files.c.format))} == {"online-retail"}
    assert main(["import", str(folder), "--format", "tiktok-orders"]) == 2
    assert "unknown format 'tiktok-orders'; use one of" in capsys.readouterr().err
    assert main(["import", str(folder), "--format", "online-retail", "--table", "orders"]) == 2
    assert "leave out --table" in capsys.readouterr().err


def test_progress_line_counts_files_rows_and_rate():
    ticks = iter([0.0, 2.0, 4.0, 4.0])
    err, out = io.StringIO(), io.StringIO()
    bar = Progress(err, out, 3, lang="en", clock=lambda: next(ticks))
    bar.advance(1000)
    bar.print("b.csv: loaded")
    bar.advance(3000)
    bar.close()
    assert out.getvalue() == "b.csv: loaded\n"
    drawn = err.getvalue().split("\r")
    assert "1/3 files, 1,000 rows, 500 rows/s" in drawn[1]
    assert "2/3 files, 4,000 rows, 1,000 rows/s" in err.getvalue()
    assert err.getvalue().endswith("\r\033[K")  # the terminal's line is left clean


def test_list_files_sorts_by_name_and_takes_a_file_named_twice_once(tmp_path):
    for name in ("b.CSV", "a.tsv", "c.txt", "d.json", ".hidden.csv"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in list_files([tmp_path, tmp_path / "a.tsv"])] == ["a.tsv", "b.CSV", "c.txt"]
    with pytest.raises(KpiError):
        list_files([tmp_path / "nope.csv"])


# -- the inbox -----------------------------------------------------------------------------------------
class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def written_at(path: Path, when: datetime) -> Path:
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def inbox(database_url, tmp_path):
    from kpi.state.tables import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    clock = Clock(datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
    box = Inbox(tmp_path / "inbox", clock=clock)
    box.root.mkdir()
    yield box, clock, engine, database_url
    engine.dispose()


def poll(box: Inbox, engine, url: str, currency: str | None = "EUR"):
    from kpi.state.tables import log_import

    state = make_engine(url)
    try:
        return box.poll(engine, tz=PARIS, currency=currency,
                        on_file=lambda o: log_import(state, o.run_row(source_key(url))))
    finally:
        state.dispose()


def test_what_a_file_holds_is_its_folder_or_the_start_of_its_name():
    known = {"orders": "O", "returns": "R", "order-lines": "L", "shopify-orders": "S", "spend": "P"}
    assert what_of(Path("orders/anything.csv"), known) == "O"
    assert what_of(Path("Returns/2026-11-28.csv"), known) == "R"
    assert what_of(Path("orders_2026-11-28.csv"), known) == "O"
    assert what_of(Path("orders.csv"), known) == "O"
    assert what_of(Path("shopify-orders_export.csv"), known) == "S"
    assert what_of(Path("order-lines-2026-11-28.csv"), known) == "L"
    assert what_of(Path("ordersheet.csv"), known) is None
    assert what_of(Path("misc/export.csv"), known) is None


def test_the_inbox_imports_what_arrives_and_files_it_away(inbox):
    box, clock, engine, url = inbox
    old = clock.now - timedelta(minutes=5)
    written_at(day_file(box.root / "orders", 1, name="2026-11-01.csv"), old)
    written_at(day_file(box.root, 2), old)  # orders_2026-11-02.csv
    written_at(day_file(box.root / "orders", 3, name="2026-11-03.csv", channel="tiktok"), old)
    (box.root / "orders" / "notes.md").write_text("ignored: not a data file")
    outcomes = poll(box, engine, url)
    assert [(o.name, o.status) for o in outcomes] == [("orders/2026-11-01.csv", "loaded"),
                                                      ("orders/2026-11-03.csv", "loaded"),
                                                      ("orders_2026-11-02.csv", "loaded")]
    assert len(order_ids(url)) == 9
    assert sorted(p.relative_to(box.root).as_posix() for p in (box.root / "loaded").rglob("*.csv")) == [
        "loaded/orders/2026-11-01.csv", "loaded/orders/2026-11-03.csv", "loaded/orders_2026-11-02.csv"]
    assert (box.root / "orders" / "notes.md").exists() and not (box.root / "orders_2026-11-02.csv").exists()
    assert [(f, s) for f, s, _, _ in runs(url)] == [(o.name, "loaded") for o in outcomes]
    assert poll(box, engine, url) == []  # nothing new
    # the same content again, under another name: skipped, filed with the loaded ones
    again = written_at(day_file(box.root / "orders", 1, name="2026-11-01.csv"), clock.now - timedelta(minutes=5))
    [skipped] = poll(box, engine, url)
    assert skipped.status == "skipped" and not again.exists()
    assert (box.root / "loaded" / "orders" / "2026-11-01-2.csv").exists()


def test_the_inbox_reads_line_items_and_presets_by_their_folder(inbox):
    box, clock, engine, url = inbox
    old = clock.now - timedelta(minutes=5)
    written_at(lines_file(box.root / "order-lines", 1, currency="GBP"), old)  # UCI's exports are in pounds
    retail = box.root / "online-retail" / "2026-11-02.csv"
    retail.parent.mkdir()
    retail.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
                      "536365,85123A,LANTERN,6,2026-11-02 08:26,2.55,17850.0,United Kingdom\n"
                      "536365,71053,METAL LANTERN,6,2026-11-02 08:26,3.39,17850.0,United Kingdom\n", encoding="utf-8")
    written_at(retail, old)
    outcomes = poll(box, engine, url, currency=None)
    assert [(o.name, o.what.label, o.status) for o in outcomes] == [
        ("online-retail/2026-11-02.csv", "online-retail", "loaded"),
        ("order-lines/lines_2026-11-01.csv", "orders-lines", "loaded")]
    assert {"L1-0", "L1-1", "536365"} <= order_ids(url)


def test_a_file_still_being_written_is_not_read(inbox):
    box, clock, engine, url = inbox
    path = written_at(day_file(box.root / "orders", 1, n=2, name="today.csv"), clock.now)
    assert poll(box, engine, url) == []  # just written: seen, not read
    with path.open("a", encoding="utf-8") as f:  # the writer goes on
        f.write("D1-9,c9,2026-11-01 11:00,5.00,EUR,email\n")
    clock.tick(30)
    written_at(path, clock.now)
    assert poll(box, engine, url) == []  # it changed since the last poll
    clock.tick(30)
    [done] = poll(box, engine, url)  # unchanged across two polls: complete
    assert done.status == "loaded" and done.rows == 3 and len(order_ids(url)) == 3
    # a file the worker has not seen before, but older than the settling time, is read at once
    written_at(day_file(box.root / "orders", 2, name="yesterday.csv"), clock.now - timedelta(seconds=61))
    [older] = poll(box, engine, url)
    assert older.name == "orders/yesterday.csv" and older.status == "loaded"


def test_a_refused_file_is_moved_with_its_reasons_and_nothing_of_it_is_written(inbox, caplog):
    box, clock, engine, url = inbox
    old = clock.now - timedelta(minutes=5)
    written_at(bad_file(box.root / "orders", "2026-11-02.csv"), old)
    written_at(day_file(box.root / "orders", 3, name="2026-11-03.csv"), old)
    written_at(day_file(box.root, 4, name="export.csv"), old)  # says nothing of what it holds
    with caplog.at_level("WARNING", logger="kpibot"):
        outcomes = poll(box, engine, url)
    assert [(o.name, o.status) for o in outcomes] == [("export.csv", "refused"), ("orders/2026-11-02.csv", "refused"),
                                                      ("orders/2026-11-03.csv", "loaded")]
    assert order_ids(url) == {"D3-0", "D3-1", "D3-2"}
    refused = box.root / "refused"
    reasons = (refused / "orders" / "2026-11-02.csv.reasons.txt").read_text(encoding="utf-8")
    assert (refused / "orders" / "2026-11-02.csv").exists()
    assert reasons.startswith("orders/2026-11-02.csv: import refused") and "line 3:" in reasons and "line 4:" in reasons
    assert "cannot tell what this file holds" in (refused / "export.csv.reasons.txt").read_text(encoding="utf-8")
    assert "orders/2026-11-02.csv refused" in caplog.text and "line 3:" in caplog.text
    logged = runs(url)
    assert [(f, s) for f, s, _, _ in logged] == [(o.name, o.status) for o in outcomes]
    assert {k for _, _, _, k in logged} == {source_key(url)}


def test_files_for_a_shops_own_mapped_tables_are_refused_and_the_others_load(inbox):
    """A shop whose orders are its own tables (config/source.yaml): an orders file in the inbox is refused,
    never written beside them; traffic, which the mapping leaves to the bot, loads."""
    from kpi.state.tables import log_import

    box, clock, engine, url = inbox
    old = clock.now - timedelta(minutes=5)
    written_at(day_file(box.root / "orders", 6, name="2026-11-06.csv"), old)
    traffic = box.root / "traffic" / "2026-11-06.csv"
    traffic.parent.mkdir(parents=True)
    traffic.write_text("day,sessions,visitors\n2026-11-06,120,100\n", encoding="utf-8")
    written_at(traffic, old)
    state = make_engine(url)
    try:
        outcomes = box.poll(engine, tz=PARIS, currency="EUR", mapped=frozenset({"orders", "customers", "returns"}),
                            on_file=lambda o: log_import(state, o.run_row(source_key(url))))
    finally:
        state.dispose()
    assert {o.name: o.status for o in outcomes} == {"orders/2026-11-06.csv": "refused",
                                                     "traffic/2026-11-06.csv": "loaded"}
    reasons = (box.root / "refused" / "orders" / "2026-11-06.csv.reasons.txt").read_text(encoding="utf-8")
    assert "the shop's own tables hold customers, orders, returns" in reasons
    assert order_ids(url) == set() and [tuple(r) for r in rows(url, select(schema.traffic.c.sessions))] == [(120,)]
    assert [s for _, s, _, _ in runs(url)] == ["refused", "loaded"]


def test_a_claim_left_by_a_dead_worker_goes_back_to_the_inbox(inbox):
    box, clock, engine, url = inbox
    claimed = box.root / ".importing" / "orders" / "2026-11-05.csv"
    written_at(day_file(claimed.parent, 5, name=claimed.name), clock.now - timedelta(minutes=10))
    assert poll(box, engine, url) == [] and claimed.exists()  # another worker may still be importing it
    clock.tick(3600)
    [outcome] = poll(box, engine, url)
    assert outcome.name == "orders/2026-11-05.csv" and outcome.status == "loaded" and not claimed.exists()


# -- the worker and the App Home -------------------------------------------------------------------------
def test_the_worker_polls_the_inbox_every_interval(tmp_path, monkeypatch):
    from bot.worker import inbox_settings, interval_jobs

    assert inbox_settings({}) is None
    assert inbox_settings({"KPIBOT_INBOX": str(tmp_path)}) == (tmp_path, 60)
    assert inbox_settings({"KPIBOT_INBOX": str(tmp_path), "KPIBOT_INBOX_INTERVAL": "15"}) == (tmp_path, 15)
    for bad in ({"KPIBOT_INBOX": str(tmp_path), "KPIBOT_INBOX_INTERVAL": "soon"},
                {"KPIBOT_INBOX": str(tmp_path / "missing")}):
        with pytest.raises(KpiError):
            inbox_settings(bad)
    assert ("bot.worker:inbox_tick", "kpibot-inbox", {"seconds": 15}) in interval_jobs(15)
    assert "kpibot-inbox" not in [job_id for _, job_id, _ in interval_jobs(None)]


def test_a_worker_started_with_an_inbox_has_its_job(database_url, tmp_path, monkeypatch):
    from bot import worker
    from bot.config import SlackSettings
    from bot.standin import SlackStandIn
    from kpi.services import Services
    from kpi.settings import Settings
    from kpi.state.tables import upgrade

    from .test_slack_app import CONFIG

    upgrade(database_url)
    standin = SlackStandIn().start()
    services = Services(Settings(database_url=database_url, source_url=database_url, timezone="Europe/Paris",
                                 config_dir=CONFIG, currency="EUR"))
    slack = SlackSettings(signing_secret="s" * 32, bot_token=standin.bot_token, api_url=standin.base_url)
    monkeypatch.setenv("KPIBOT_INBOX", str(tmp_path))
    monkeypatch.setenv("KPIBOT_INBOX_INTERVAL", "15")
    monkeypatch.setitem(worker._runtime, "inbox", None)  # noqa: SLF001 - restored after the test
    start = worker.BackgroundScheduler.start
    monkeypatch.setattr(worker.BackgroundScheduler, "start", lambda self: start(self, paused=True))  # no job runs
    scheduler = worker.start_scheduler(services, slack)
    try:
        job = scheduler.get_job("kpibot-inbox")
        assert job.trigger.interval == timedelta(seconds=15) and worker._runtime["inbox"].root == tmp_path  # noqa: SLF001
    finally:
        worker.stop_scheduler(scheduler)
    monkeypatch.delenv("KPIBOT_INBOX")
    scheduler = worker.start_scheduler(services, slack)  # the inbox unset since: its job, if run, does nothing
    try:
        assert scheduler.get_job("kpibot-tick") is not None and "inbox" not in worker._runtime  # noqa: SLF001
        worker.inbox_tick()
    finally:
        worker.stop_scheduler(scheduler)
        standin.stop()



def test_an_inbox_import_is_logged_and_refreshes_the_values_questions_read(inbox):
    from bot.worker import run_inbox
    from kpi.services import Services
    from kpi.settings import Settings

    from .test_slack_app import CONFIG

    box, clock, engine, url = inbox
    written_at(day_file(box.root / "orders", 1, name="a.csv"), clock.now - timedelta(minutes=5))
    services = Services(Settings(database_url=url, source_url=url, timezone="Europe/Paris", config_dir=CONFIG,
                                 currency="EUR"))
    run_inbox(box, services)
    assert "email" in services.dimension_values().values("channel")
    written_at(day_file(box.root / "orders", 2, name="b.csv", channel="tiktok"), clock.now - timedelta(minutes=5))
    [outcome] = run_inbox(box, services)
    assert outcome.status == "loaded" and runs(url)[-1][1:] == ("loaded", 3, source_key(url))
    services.dimension_values()._version_checked = None  # noqa: SLF001 - its next look at the import log is now
    assert "tiktok" in services.dimension_values().values("channel")


def test_the_app_home_shows_refused_imports_to_admins_only(inbox):
    from bot.home import build_home
    from kpi.services import Services
    from kpi.settings import Settings
    from kpi.state.tables import log_import

    from .test_slack_app import CONFIG, _fill

    box, clock, engine, url = inbox
    _fill(url)
    written_at(bad_file(box.root / "orders", "2026-11-02.csv"), clock.now - timedelta(minutes=5))
    poll(box, engine, url)
    state = make_engine(url)
    log_import(state, {"started_at": datetime(2026, 11, 29, 8), "file_name": "other-shop.csv", "file_sha256": "0" * 64,
                       "format": "orders", "status": "refused", "message": "other-shop.csv: import refused",
                       "source_key": source_key("sqlite:///another-shop.db")})
    log_import(state, {"started_at": datetime(2026, 11, 29, 7), "file_name": "/srv/exports/cli.csv", "file_sha256": "1" * 64,
                       "format": "orders", "status": "refused", "message": "/srv/exports/cli.csv: import refused: "
                       "the file is empty (nothing was loaded)", "source_key": source_key(url)})
    state.dispose()
    services = Services(Settings(database_url=url, source_url=url, timezone="Europe/Paris", config_dir=CONFIG,
                                 currency="EUR"), clock=clock)

    def texts(view: dict) -> str:
        return "\n".join(str(b) for b in view["blocks"])

    admin = texts(build_home(services, "en", "T0STANDIN", admin=True))
    assert "Imports: files refused" in admin and "orders/2026-11-02.csv" in admin
    assert "line 3:" in admin and "nothing was loaded" in admin
    assert "other-shop.csv" not in admin  # another shop's imports are not this team's
    assert "*cli.csv*" in admin and "the file is empty" in admin and "/srv/exports" not in admin  # no path
    member = texts(build_home(services, "en", "T0STANDIN"))
    assert "Imports" not in member and "2026-11-02" not in member
    clock.tick(8 * 24 * 3600)  # a week later: no longer shown
    assert "Imports: files refused" not in texts(build_home(services, "en", "T0STANDIN", admin=True))


def test_a_workspace_admin_opening_the_home_tab_sees_the_refused_imports_and_a_member_does_not(database_url):
    """Through Slack: app_home_opened, the app asks users.info who is an admin, and publishes the Home. The
    refused file (logged for this shop) is in Alice's (a workspace admin) and not in Bruno's."""
    import json as json_

    from bot.sandbox import app_home_opened
    from kpi.state.tables import log_import

    from .test_slack_app import Rig

    rig = Rig(database_url)
    try:
        log_import(rig.services.state(), {
            "started_at": datetime(2026, 11, 29, 7), "file_name": "orders_2026-11-28.csv", "file_sha256": "2" * 64,
            "format": "orders", "status": "refused", "source_key": source_key(database_url),
            "message": "orders_2026-11-28.csv: import refused: line 3: subtotal 'x' is not a number (nothing was loaded)"})
        for user in ("U0ALICE", "U0BRUNO"):
            assert rig.side.post(app_home_opened(user), "application/json").status == 200
            rig.standin.wait_for(lambda u=user: (rig.standin.team_id, u) in rig.standin.home_views, timeout=60)
        alice = json_.dumps(rig.standin.home_views[(rig.standin.team_id, "U0ALICE")], ensure_ascii=False)
        bruno = json_.dumps(rig.standin.home_views[(rig.standin.team_id, "U0BRUNO")], ensure_ascii=False)
        assert "orders_2026-11-28.csv" in alice and "is not a number" in alice
        assert "orders_2026-11-28.csv" not in bruno
    finally:
        rig.close()
