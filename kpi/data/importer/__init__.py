"""Importing the shop's data from CSV files into the canonical tables (DESIGN.md section 3).

    import_csv(engine, path, "orders", tz=ZoneInfo("Europe/Paris"), column_map={"Order Number": "order_id"})
    import_shopify_orders(engine, path, tz=ZoneInfo("Europe/Paris"))

A file loads whole or not at all: every line is checked first, and a file with any bad line is refused
with every bad line named (file line numbers, the header being line 1) — ``ImportRefused``. The writes
then happen in one transaction, so a failure half-way leaves the database exactly as it was. Rows are
upserted on their natural key (orders.order_id, returns.return_id, customers.customer_id, traffic (day,
channel, device, country), marketing_spend (day, channel), email_campaigns.campaign_id): importing a
file again changes nothing and says so (``unchanged``).

The rules, as a user meets them:

- Encoding: UTF-8 with or without byte-order mark, UTF-16 with one; a file that is not UTF-8 is read as
  Windows-1252 (what Excel writes in Western Europe; a superset of Latin-1's printable characters) and
  the result says so; a file that is neither is refused, never read garbled.
- Delimiter: comma, semicolon, tab or pipe, sniffed from the header and the first lines.
- Columns: matched to fields case-insensitively, surrounding spaces ignored, and spaces, '-' and '_'
  alike ("Order ID" is order_id). ``column_map`` ({"Order Number": "order_id"}, the CLI's ``--map``)
  names the others. A required column missing refuses the file; extra columns are ignored and listed
  in ``ImportResult.ignored_columns``. An absent optional column takes the schema default (channel
  and device "unknown", country "ZZ", discount/shipping/tax 0, status placed, items 1, carts and
  clicks 0) for new rows, and leaves existing rows' values alone.
- Lines: a line with fewer fields than the header (a truncated line) or more (an unquoted delimiter) is
  refused; empty lines are skipped.
- Timestamps: ISO 8601 with or without an offset ("2026-10-01T12:34:56Z", "2026-10-01 12:34:56+02:00",
  "2026-10-01 12:34:56 +0200" as Shopify writes, "2026-10-01", "20261001"), "2026/10/01 12:34", and
  dd/mm/yyyy or mm/dd/yyyy with an optional time ("01/10/2026 14:30", "10/1/2026 2:30 PM"). The
  day/month order of nn/nn/yyyy dates is settled by the file as a whole: a date with a first number
  above 12 makes the file day-first, one with a second number above 12 month-first; when no date
  settles it, every date whose two numbers differ is refused as ambiguous (write YYYY-MM-DD), and a
  file with both kinds has the less frequent kind refused. dd.mm.yyyy is always day-first. A
  timestamp with an offset is converted to UTC; a naive timestamp or a plain date is a time in the
  shop's time zone ``tz`` (a time that happens twice when clocks go back is taken at its first
  occurrence, a time skipped when clocks go forward is moved forward) and converted to UTC. Timestamps
  are stored as naive UTC. ``traffic.day`` and ``marketing_spend.day`` are days as written.
- Numbers: "1234.5", "-3", and grouped "1,234.50" / "1 234,50"; the decimal separator is the file's,
  settled by the values that read only one way ("12.50" → point, "12,50" → comma): a value that would
  read differently in the two conventions ("1,234") is refused as ambiguous when nothing settles it,
  and a file using both conventions has the less frequent one refused. Currency symbols, exponents and
  other text are refused. Money is rounded to cents. Amounts (subtotal, discount, shipping, tax,
  return amount, spend) and counts are never negative; counts are whole numbers; unique_opens ≤
  delivered.
- Values: status placed or cancelled (paid, fulfilled, pending, refunded, ... mean placed; canceled,
  voided mean cancelled); channel and device are lower-cased; country is an ISO 3166 alpha-2 code
  (English names and "UK" are translated); ids at most 64 characters; the natural key appears once in
  a file (a duplicate is refused with both line numbers).
- Currency: one per file. Without a currency column, the shop currency (``currency``) is the
  currency — and orders need one or the other. A file whose currency differs from the shop currency or
  from the orders already in the database is refused. A currency column in a returns or spend file is
  checked that way, not stored.
- Orders keep ``customers`` up to date: a customer seen for the first time gets a row (acquisition
  channel and country of their first order); ``first_order_at`` becomes the earliest of the stored
  value and the customer's earliest order in the file that is not cancelled (it never moves later:
  an order corrected to a later date or cancelled afterwards leaves it as it was).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from kpi.data import schema
from kpi.data.messages import Text, joined, refusal, told
from kpi.errors import ImportRefused
from kpi.i18n import N_, tr, trn

from .reading import RawFile, read_file
from .shopify import prepare_shopify
from .tables import LINE, SPECS, Prepared, match_columns, prepare
from .values import Problems
from .writing import maintain_customers, upsert

__all__ = ["TABLE_ALIASES", "ImportResult", "import_csv", "import_shopify_orders"]

# one table's counts, in the CLI's and ImportResult.summary()'s words
COUNTS = N_("{table}: {inserted} inserted, {updated} updated, {unchanged} unchanged")

TABLE_ALIASES = {
    "orders": "orders",
    "returns": "returns",
    "traffic": "traffic",
    "spend": "marketing_spend",
    "campaigns": "email_campaigns",
    "customers": "customers",
}


@dataclass
class ImportResult:
    table: str  # the canonical table(s) imported, e.g. "orders"; "orders, customers, returns" for Shopify
    rows_read: int  # data lines read (empty lines not counted)
    inserted: int  # of the main table (orders for a Shopify export); per_table has every table touched
    updated: int
    unchanged: int
    per_table: dict[str, dict[str, int]]  # table -> {"inserted": .., "updated": .., "unchanged": ..}
    path: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str | Text] = field(default_factory=list)

    def summary(self, lang: str | None = "en") -> str:
        """One line per table, then the notes: for the CLI and Slack, in ``lang``."""
        out = [trn(lang, "{path}: {n} line read", "{path}: {n} lines read", self.rows_read, path=self.path)]
        for name, c in self.per_table.items():
            out.append("  " + tr(lang, COUNTS, table=name, **c))
        if self.ignored_columns:
            shown = ", ".join(self.ignored_columns[:8])
            more = len(self.ignored_columns) - 8
            if more > 0:
                out.append("  " + tr(lang, "ignored columns: {columns} and {n} more", columns=shown, n=more))
            else:
                out.append("  " + tr(lang, "ignored columns: {columns}", columns=shown))
        out.extend("  " + tr(lang, "note: {note}", note=told(n, lang)) for n in self.notes)
        return "\n".join(out)


def resolve_table(name: str) -> str:
    key = name.strip().lower()
    if key in TABLE_ALIASES:
        return TABLE_ALIASES[key]
    if key in TABLE_ALIASES.values():
        return key
    raise refusal(path="", reason=Text(N_("unknown table {name}; use one of {tables}"), name=repr(name),
                                             tables=", ".join(TABLE_ALIASES)))


def import_csv(
    engine: Engine,
    path: str | Path,
    table: str,
    *,
    tz: ZoneInfo,
    column_map: dict[str, str] | None = None,
    currency: str | None = None,
) -> ImportResult:
    """Load the CSV file ``path`` into ``table`` (an alias of TABLE_ALIASES or a canonical name).
    ``currency`` is the shop currency. Raises ImportRefused, with every bad line, and loads nothing."""
    spath, tz = str(path), _zone(tz)
    try:
        name = resolve_table(table)
    except ImportRefused as exc:
        raise refusal(path=spath, reason=exc.reason) from None
    spec = SPECS[name]
    problems, general = Problems(), []
    raw = read_file(path, problems)
    assign, ignored = match_columns(spath, raw.header, spec, column_map)
    columns = {f: raw.columns[i] for f, i in assign.items()}
    prepared = prepare(
        spath, spec, columns, raw.lines, tz=tz, currency=currency, problems=problems, general=general
    )
    _refuse_if(spath, problems, general)
    schema.create_source_tables(engine)
    with engine.begin() as conn, _sqlite_cache(conn):
        _check_database_currency(conn, spath, prepared.currency, currency)
        per_table = {name: _upsert_prepared(conn, spec.name, prepared)}
        if name == "orders":
            per_table["customers"] = maintain_customers(conn, prepared.frame)
    return _result(name, raw, per_table, name, ignored)


def import_shopify_orders(
    engine: Engine, path: str | Path, *, tz: ZoneInfo, currency: str | None = None
) -> ImportResult:
    """Load a Shopify admin orders export into orders, customers and returns (see kpi.data.importer.shopify
    for the mapping). Raises ImportRefused, with every bad line, and loads nothing."""
    spath, tz = str(path), _zone(tz)
    problems, general, notes = Problems(), [], []
    raw = read_file(path, problems)
    prepared, returns, ignored = prepare_shopify(
        raw, tz=tz, currency=currency, problems=problems, general=general, notes=notes
    )
    _refuse_if(spath, problems, general)
    schema.create_source_tables(engine)
    with engine.begin() as conn, _sqlite_cache(conn):
        _check_database_currency(conn, spath, prepared.currency, currency)
        per_table = {"orders": _upsert_prepared(conn, "orders", prepared)}
        per_table["customers"] = maintain_customers(conn, prepared.frame)
        spec = SPECS["returns"]
        per_table["returns"] = upsert(
            conn, spec.table, spec.key, returns, spec.stored, [f for f in spec.stored if f not in spec.key]
        )
    result = _result("orders, customers, returns", raw, per_table, "orders", ignored)
    result.notes.extend(notes)
    return result


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


@contextmanager
def _sqlite_cache(conn: Connection, kib: int = 256 * 1024):
    """A larger page cache while a big file is written (SQLite's default 2 MB makes index updates
    of a million rows go to disk), back to what it was afterwards."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def _upsert_prepared(conn: Connection, name: str, prepared: Prepared):
    spec = SPECS[name]
    updates = [f for f in prepared.present if f not in spec.key]
    return upsert(conn, spec.table, spec.key, prepared.frame.drop(columns=[LINE]), spec.stored, updates)


def _refuse_if(path: str, problems: Problems, general: list[Text]) -> None:
    if problems or general:
        raise refusal(path=path, bad_rows=problems.bad_rows(), reason=joined(general))


def _check_database_currency(
    conn: Connection, path: str, file_currency: str | None, shop: str | None
) -> None:
    """The amounts of a shop are in one currency: the one of the orders already stored."""
    stored = conn.execute(select(schema.orders.c.currency).limit(1)).scalar()
    if stored is None:
        return
    for what, cur in (
        (N_("the file's amounts are in {currency} but the orders in the database are in {stored}"), file_currency),
        (N_("the shop currency is in {currency} but the orders in the database are in {stored}"), shop),
    ):
        if cur and cur.upper() != stored:
            raise refusal(path=path, reason=Text(what, currency=cur.upper(), stored=stored))


def _result(table: str, raw: RawFile, per_table: dict, main: str, ignored: list[str]) -> ImportResult:
    c = per_table[main]
    if raw.n_rows == 0:
        raw.notes.append(Text(N_("the file has no data lines")))
    return ImportResult(
        table=table,
        rows_read=raw.n_rows,
        inserted=c["inserted"],
        updated=c["updated"],
        unchanged=c["unchanged"],
        per_table=per_table,
        path=raw.path,
        ignored_columns=ignored,
        notes=list(raw.notes),
    )
