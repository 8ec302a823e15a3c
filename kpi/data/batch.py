"""Many files in one run, each loaded once: ``kpibot import PATH [PATH ...]`` and the worker's inbox
(``kpi.data.inbox``).

    files = list_files([Path("exports/")])                       # a folder's .csv/.tsv/.txt files, by name
    batch = run_batch(engine, files, What(table="orders"), tz=tz, on_file=print_it)

- Each file is imported by the importer (``kpi.data.importer``), whole or not at all, in its own
  transaction; a refused file (``ImportRefused``) is an outcome, not the end of the run: the next files load.
- A file is known by its content (SHA-256): ``kpibot_imported_files``, a table of the source database
  created on first use, holds the hash of every file loaded (name, format, when, rows). A file whose hash
  is there is skipped, whatever its name, unless ``force``. The hash is written in the file's own
  transaction (the importer's ``on_commit``): the file's rows and its record commit together or not at all.
- The bot's import log (``import_runs``, state database) is written by the caller with ``Outcome.run_row``:
  this layer does not read or write the bot's own state.

May import: ``kpi.errors``, ``kpi.i18n``, ``kpi.data``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from babel import numbers
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from kpi.data import importer
from kpi.data.messages import told
from kpi.db_writing import writing
from kpi.errors import ImportRefused, KpiError
from kpi.i18n import babel_locale, tr, trn

EXTENSIONS = (".csv", ".tsv", ".txt")

batch_metadata = MetaData()

# one row per file loaded into this source: a file with the same content is not loaded twice
imported_files = Table(
    "kpibot_imported_files",
    batch_metadata,
    Column("sha256", String(64), primary_key=True),
    Column("file_name", String(512), nullable=False),
    Column("format", String(32), nullable=False),
    Column("loaded_at", DateTime(), nullable=False),  # UTC
    Column("rows", Integer, nullable=False),
)


@dataclass(frozen=True)
class What:
    """What a file holds: a table (an alias of ``importer.TABLE_ALIASES``) or a preset format
    (``importer.PRESETS``); ``lines``: an orders file of line items, aggregated into orders."""

    table: str | None = None
    format: str | None = None
    lines: bool = False
    column_map: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        """As import_runs and kpibot_imported_files name it: "orders", "orders-lines", "shopify-orders"."""
        return self.format or (f"{self.table}-lines" if self.lines else str(self.table))

    @property
    def tables(self) -> tuple[str, ...]:
        """The canonical tables a file of this kind writes (orders keep customers, credit notes are returns)."""
        if self.format:
            return ("traffic",) if self.format == "ga4-traffic" else ("orders", "customers", "returns")
        name = importer.TABLE_ALIASES.get(str(self.table), str(self.table))
        return (name, "customers", "returns") if name == "orders" else (name,)


@dataclass
class Outcome:
    """One file of a run: ``loaded``, ``skipped`` (its content was loaded before) or ``refused``."""

    path: Path
    name: str  # as shown and logged (the path given, or the inbox's relative name)
    sha256: str
    what: What
    status: str
    started_at: datetime
    finished_at: datetime
    result: object = None  # importer.ImportResult when loaded
    refused: ImportRefused | None = None
    loaded_before: datetime | None = None  # when skipped: when it was loaded
    rows_before: int = 0

    @property
    def rows(self) -> int:
        return self.result.rows_read if self.result is not None else 0

    def run_row(self, source_key: str) -> dict:
        """Its row of the state database's ``import_runs``."""
        row = {"started_at": self.started_at, "finished_at": self.finished_at, "file_name": self.name[-512:],
               "file_sha256": self.sha256, "format": self.what.label[:32], "status": self.status,
               "source_key": source_key}
        if self.result is not None:
            r = self.result
            row.update(rows_read=r.rows_read, inserted=r.inserted, updated=r.updated, unchanged=r.unchanged)
        if self.refused is not None:
            row["message"] = self.refused.localized("en")[:4000]
        elif self.status == "skipped":
            row["message"] = f"already loaded on {self.loaded_before:%Y-%m-%d %H:%M} UTC"
        return row


@dataclass
class BatchSummary:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.outcomes)

    def line(self, lang: str | None) -> str:
        n = len(self.outcomes)
        return trn(lang, "{n} file: {loaded} loaded, {skipped} skipped (already loaded), {refused} refused; "
                   "{rows} rows read", "{n} files: {loaded} loaded, {skipped} skipped (already loaded), "
                   "{refused} refused; {rows} rows read", n, loaded=self.count("loaded"),
                   skipped=self.count("skipped"), refused=self.count("refused"), rows=_number(self.rows, lang))


# -- the files of a run -----------------------------------------------------------------------------------
def list_files(paths: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """Each path a file (taken whatever its extension), or a folder: its .csv, .tsv and .txt files sorted by
    name (hidden ones left out; with ``recursive``, those of its subfolders too). A path that does not exist
    is an error before anything is read; a file named twice is taken once."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            out.extend(sorted((f for f in found if _importable(f, p)), key=lambda f: f.relative_to(p).as_posix()))
        else:
            raise KpiError("{path}: no such file or folder", path=str(p))
    seen, unique = set(), []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _importable(f: Path, root: Path) -> bool:
    parts = f.relative_to(root).parts
    return f.is_file() and f.suffix.lower() in EXTENSIONS and not any(x.startswith((".", "~")) for x in parts)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_key(url: str) -> str:
    """A short fingerprint of a source database (its URL without password; a SQLite file by its absolute
    path): which shop an import went to, kept in import_runs without keeping the URL."""
    try:
        u = make_url(url)
        if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
            u = u.set(database=str(Path(u.database).resolve()))
        text = u.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is still a key
        text = url
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- the table of files loaded ---------------------------------------------------------------------------
def ensure_table(engine: Engine) -> None:
    """Create ``kpibot_imported_files`` when missing; another process creating it at the same moment is fine."""
    if inspect(engine).has_table(imported_files.name):
        return
    try:
        with writing(engine) as writer:  # DuckDB: a private copy, published at the end (kpi.db_writing)
            imported_files.create(writer, checkfirst=True)
    except DBAPIError:
        if not inspect(engine).has_table(imported_files.name):
            raise


def loaded_before(engine: Engine, sha256: str):
    with engine.connect() as conn:
        return conn.execute(select(imported_files).where(imported_files.c.sha256 == sha256)).first()


ONE_WRITER = {"duckdb", "chdb", "clickhousedb", "clickhouse"}


def remember(conn: Connection, sha256: str, name: str, what: What, loaded_at: datetime, rows: int) -> None:
    """Record a file loaded, on the connection of the file's own transaction."""
    values = {"file_name": name[-512:], "format": what.label[:32], "loaded_at": loaded_at, "rows": rows}
    change = update(imported_files).where(imported_files.c.sha256 == sha256).values(**values)
    if conn.dialect.name in ONE_WRITER:  # no savepoint there, and no race: one writer at a time (kpi.db_writing)
        known = conn.execute(select(imported_files.c.sha256).where(imported_files.c.sha256 == sha256)).first()
        conn.execute(change if known else imported_files.insert().values(sha256=sha256, **values))
        return
    if conn.execute(change).rowcount:
        return
    try:
        with conn.begin_nested():  # a savepoint: the same content recorded by another process meanwhile
            conn.execute(imported_files.insert().values(sha256=sha256, **values))
    except IntegrityError:
        conn.execute(change)


# -- the importer, called one way ---------------------------------------------------------------------------
def run_importer(engine: Engine, path: Path, what: What, *, tz: ZoneInfo, currency: str | None,
                 currency_explicit: bool = False, on_commit=None):
    """``importer.import_preset`` for a format, ``importer.import_csv`` for a table (``lines=True`` for line
    items); ``currency_explicit``: the currency was given by the user (``--currency``), not a default.
    Options left at their defaults are not passed."""
    explicit = {"currency_explicit": True} if currency_explicit else {}
    if on_commit is not None:
        explicit["on_commit"] = on_commit
    if what.format:
        return importer.import_preset(engine, path, what.format, tz=tz, currency=currency, **explicit)
    lines = {"lines": True} if what.lines else {}
    return importer.import_csv(engine, path, what.table, tz=tz, column_map=dict(what.column_map) or None,
                               currency=currency, **lines, **explicit)


def preset_names() -> list[str]:
    return sorted(importer.PRESETS)


def import_file(engine: Engine, path: Path, what: What, *, tz: ZoneInfo, currency: str | None = None,
                currency_explicit: bool = False, force: bool = False, name: str | None = None,
                clock: Callable[[], datetime] | None = None) -> Outcome:
    """One file: skipped when its content was loaded before (unless ``force``), else imported and its hash
    recorded. A refusal is returned (nothing of the file written); any other error is raised."""
    now = _naive(clock)
    started = now()
    sha = file_sha256(path)
    shown = name or str(path)
    base = {"path": path, "name": shown, "sha256": sha, "what": what, "started_at": started}
    if not force and (before := loaded_before(engine, sha)) is not None:
        return Outcome(**base, status="skipped", finished_at=now(), loaded_before=before.loaded_at,
                       rows_before=before.rows)
    def record(conn: Connection, result) -> None:
        remember(conn, sha, shown, what, now(), result.rows_read)

    try:
        result = run_importer(engine, path, what, tz=tz, currency=currency, currency_explicit=currency_explicit,
                              on_commit=record)
    except ImportRefused as exc:
        exc.path = shown
        return Outcome(**base, status="refused", finished_at=now(), refused=exc)
    result.path = shown
    return Outcome(**base, status="loaded", finished_at=now(), result=result)


def run_batch(engine: Engine, files: list[Path], what: What, *, tz: ZoneInfo, currency: str | None = None,
              currency_explicit: bool = False, force: bool = False,
              on_file: Callable[[Outcome], None] | None = None,
              clock: Callable[[], datetime] | None = None) -> BatchSummary:
    """Every file of ``files`` in order, each in its own transaction; ``on_file(outcome)`` after each."""
    from kpi.data.schema import create_source_tables

    create_source_tables(engine)
    ensure_table(engine)
    summary = BatchSummary()
    for path in files:
        outcome = import_file(engine, path, what, tz=tz, currency=currency, currency_explicit=currency_explicit,
                              force=force, clock=clock)
        summary.outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome)
    return summary


def _naive(clock: Callable[[], datetime] | None) -> Callable[[], datetime]:
    """Naive UTC times, as the databases store them."""
    source = clock or (lambda: datetime.now(UTC))
    return lambda: source().astimezone(UTC).replace(tzinfo=None)


# -- what a run tells ------------------------------------------------------------------------------------
def outcome_lines(o: Outcome, lang: str | None) -> list[str]:
    """What the command line prints for a loaded or skipped file (a refusal is told by ``ImportRefused``)."""
    if o.status == "skipped":
        when = o.loaded_before.strftime("%Y-%m-%d %H:%M UTC")
        return [trn(lang, "{path}: already loaded on {date} ({rows} row); skipped (--force loads it again)",
                    "{path}: already loaded on {date} ({rows} rows); skipped (--force loads it again)",
                    o.rows_before, path=o.name, date=when,
                    rows=_number(o.rows_before, lang))]
    if o.status != "loaded":
        return []
    r = o.result
    # TRANSLATORS: the English has one form whatever the number of rows
    out = [trn(lang, "{path}: {n} rows read into {table}: {inserted} inserted, {updated} updated, {unchanged} unchanged",
               "{path}: {n} rows read into {table}: {inserted} inserted, {updated} updated, {unchanged} unchanged",
               r.rows_read, path=o.name, table=r.table, inserted=r.inserted, updated=r.updated, unchanged=r.unchanged)]
    out += ["  " + tr(lang, importer.COUNTS, table=t, **c) for t, c in r.per_table.items() if t != r.table]
    if r.ignored_columns:
        out.append("  " + tr(lang, "columns ignored: {columns}", columns=", ".join(r.ignored_columns)))
    out += ["  " + tr(lang, "note: {note}", note=told(n, lang)) for n in r.notes]
    return out


def _number(n: float, lang: str | None) -> str:
    return numbers.format_decimal(n, locale=babel_locale(lang))


class Progress:
    """One line on a terminal, redrawn after each file: a bar, files done of the total, rows, rows per second.
    ``print(line)`` writes a file's own lines above it (on ``out``)."""

    WIDTH = 24

    def __init__(self, stream: TextIO, out: TextIO, total: int, *, lang: str | None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream, self.out, self.total, self.lang, self.clock = stream, out, total, lang, clock
        self.done = self.rows = 0
        self.started = clock()
        self.shown = False

    def start(self) -> Progress:
        self._draw()
        return self

    def print(self, text: str) -> None:
        self._clear()
        print(text, file=self.out, flush=True)
        self._draw()

    def advance(self, rows: int) -> None:
        self.done += 1
        self.rows += rows
        self._clear()
        self._draw()

    def close(self) -> None:
        self._clear()

    def text(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "█" * filled + "·" * (self.WIDTH - filled)
        return f"[{bar}] " + tr(self.lang, "{done}/{total} files, {rows} rows, {rate} rows/s", done=self.done,
                                 total=self.total, rows=_number(self.rows, self.lang),
                                 rate=_number(round(self.rows / elapsed), self.lang))

    def _draw(self) -> None:
        self.stream.write("\r" + self.text())
        self.stream.flush()
        self.shown = True

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


__all__ = ["EXTENSIONS", "BatchSummary", "Outcome", "Progress", "What", "ensure_table", "file_sha256",
           "import_file", "imported_files", "list_files", "outcome_lines", "preset_names", "run_batch",
           "run_importer", "source_key"]
