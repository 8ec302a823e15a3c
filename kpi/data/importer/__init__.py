"""Importing the shop's data from CSV files into the canonical tables (DESIGN.md section 3).

    import_csv(engine, path, "orders", tz=ZoneInfo("Europe/Paris"), column_map={"Order Number": "order_id"})
    import_csv(engine, path, "orders", tz=..., column_map={"Qty": "quantity"}, lines=True)   # line items
    import_preset(engine, path, "online-retail", tz=ZoneInfo("Europe/London"))               # PRESETS

A file loads whole or not at all: a file with any bad line is refused with every bad line named (file
line numbers, the header being line 1) — ``ImportRefused`` — and its writes all happen in one
transaction, rolled back then. A big file is read in chunks (reading.CHUNK_ROWS records) after a first
pass that counts what only the whole file settles (tables.FileSurvey: decimal separator, day/month
order, currency, line-item orders whose lines are apart); keys are checked across chunks
(tables.KeyIndex), an order's lines stay in one chunk (lines.order_chunks), customers are upkept once
at the end. Rows are upserted on their natural key: a file imported again changes nothing (``unchanged``).

The rules, as a user meets them:

- Encoding: UTF-8 with or without byte-order mark, UTF-16 with one; a file that is not UTF-8 is read as
  Windows-1252 (what Excel writes in Western Europe; a superset of Latin-1's printable characters) and
  the result says so; a file that is neither is refused, never read garbled.
- Delimiter: comma, semicolon, tab or pipe, sniffed from the header and the first lines. Lines: a line
  with fewer fields than the header (truncated) or more (an unquoted delimiter) is refused; empty lines skipped.
- Columns: matched to fields case-insensitively, surrounding spaces ignored, and spaces, '-' and '_'
  alike ("Order ID" is order_id). ``column_map`` ({"Order Number": "order_id"}, the CLI's ``--map``)
  names the others. A required column missing refuses the file; extra columns are ignored and listed
  in ``ImportResult.ignored_columns``. An absent optional column takes the schema default (channel
  and device "unknown", country "ZZ", discount/shipping/tax 0, status placed, items 1, carts and
  clicks 0) for new rows, and leaves existing rows' values alone.
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
  voided, failed mean cancelled; refund / credit note mean a credit note); channel and device are
  lower-cased; country is an ISO 3166 alpha-2 code, read from codes (alpha-2, alpha-3) and names in
  English, French and German and the common forms outside ISO's list ("UK", "EIRE", "USA", "RSA",
  "Holland"...), empty or "unspecified" → ZZ; a value that is none of these is kept as written and
  reported in the notes, never refused. Ids at most 64 characters, ``15240.0`` (a spreadsheet's float)
  read as ``15240``; the natural key appears once in a file (a duplicate is refused with both line
  numbers). An empty customer_id is a guest order: customer_id NULL, no customers row, counted in the
  notes.
- Credit notes and line items (kpi.data.importer.lines): an orders row with a negative subtotal (or
  quantity), a credit-note id ("C536379", beside plain invoice numbers) or a refund / credit-note status
  or type is loaded as a return; ``lines=True`` reads a file of product lines and sums them into orders.
- Returns keep their own channel, device, country and customer: the file's, else their order's (looked
  up in the database); a return whose order is not in the data is kept and reported.
- Currency: one per file. Without a currency column, the shop currency (``currency``) is the currency,
  or the stored orders' when it was only a default — and orders need one or the other. A file's
  currency column wins over a default shop currency (``currency_explicit=False``) and becomes the
  shop's; a file whose currency differs from an explicit shop currency, or from the orders already in
  the database, is refused. A currency column in a returns or spend file is checked that way, not
  stored.
- Orders keep ``customers`` up to date: a new customer gets a row (channel and country of their first order);
  ``first_order_at`` only moves earlier (to the earliest order of the file that is not cancelled).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from kpi.data import schema
from kpi.data.messages import Text, joined, refusal
from kpi.data.source_schema import upgrade_source
from kpi.db_writing import writing as private_writer
from kpi.errors import BadRow, ImportRefused
from kpi.i18n import N_

from . import notes as notes_
from . import presets
from . import reading as reading_
from .columns import match_columns
from .lines import ONCE_FIELDS, has_line_amounts, order_chunks, split_orders
from .reading import CsvSource, RawFile, read_file
from .result import COUNTS, ImportResult, OnCommit, add_counts, result_of, zero_counts
from .returns import adopt_returns, fill_return_dimensions, has_orphan_returns
from .shopify import prepare_shopify
from .specs import LINE, SPECS, Prepared
from .tables import FileSurvey, prepare
from .values import Problems
from .writing import (
    check_database_currency,
    customer_summary,
    maintain_customers,
    sqlite_cache,
    upsert,
    write_customers,
)

__all__ = ["COUNTS", "PRESETS", "TABLE_ALIASES", "ImportResult", "OnCommit", "import_csv", "import_preset", "import_shopify_orders",
           "stored_currency"]

stored_currency = schema.stored_currency

# --format NAME: the exports shops have, read as they are (kpi.data.importer.presets)
PRESETS: dict[str, str] = {
    "shopify-orders": N_("Shopify admin orders export (Orders → Export → CSV): orders, customers, refunds"),
    "woocommerce-orders": N_("WooCommerce Customer / Order / Coupon Export, one row per item: orders, refunds"),
    "online-retail": N_("UCI Online Retail (I and II) line items: orders, credit notes as returns, guests"),
    "ga4-traffic": N_("Google Analytics 4 report or exploration CSV: traffic by day, channel, device, country"),
}

TABLE_ALIASES = {"orders": "orders", "returns": "returns", "traffic": "traffic", "spend": "marketing_spend",
                 "campaigns": "email_campaigns", "customers": "customers"}


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
    lines: bool = False,
    currency_explicit: bool = False,
    on_commit: OnCommit | None = None,
) -> ImportResult:
    """Load the CSV file ``path`` into ``table`` (an alias of TABLE_ALIASES or a canonical name).
    ``currency`` is the shop currency: the file's currency column wins over it unless ``currency_explicit``
    (the user gave it, or the team's shop has one). ``lines``: an orders file with one row per product
    line (kpi.data.importer.lines). ``on_commit(conn, result)`` writes what the caller keeps of the file in
    the file's own transaction (the batch import's record of files loaded). Raises ImportRefused, with every
    bad line, and loads nothing."""
    spath = str(path)
    try:
        name = resolve_table(table)
    except ImportRefused as exc:
        raise refusal(path=spath, reason=exc.reason) from None
    if lines and name != "orders":
        raise refusal(path=spath, reason=Text(N_("only an orders file can have one row per product line")))
    problems = Problems()
    source = CsvSource(path)
    return load_raw(engine, source, name, problems=problems, tz=tz, column_map=column_map, currency=currency,
                    lines=lines, currency_explicit=currency_explicit, on_commit=on_commit)


def load_raw(
    engine: Engine,
    raw: RawFile | CsvSource,
    name: str,
    *,
    problems: Problems,
    tz: ZoneInfo | str,
    column_map: dict[str, str] | None = None,
    currency: str | None = None,
    lines: bool = False,
    currency_explicit: bool = False,
    more_returns: Callable[[pd.DataFrame, Problems], pd.DataFrame] | None = None,
    on_commit: OnCommit | None = None,
) -> ImportResult:
    """import_csv from a file (CsvSource, read in chunks) or a file already read (the presets rename or
    derive its columns first). ``more_returns(orders, problems)``: returns a preset derives from the typed
    orders (refunds)."""
    spath, tz = raw.path, _zone(tz)
    spec = SPECS[name]
    general: list[Text] = []
    match_spec = spec
    if lines:
        match_spec = replace(spec, fields=tuple(replace(f, required=False) if f.name == "subtotal" else f
                                                for f in spec.fields))
    assign, ignored = match_columns(spath, raw.header, match_spec, column_map)
    if name == "orders":
        line_amounts = has_line_amounts(set(assign))
        if lines and not line_amounts and "subtotal" not in assign:
            found = ", ".join(repr(h) for h in raw.header if h)
            raise refusal(path=spath, bad_rows=[BadRow(1, Text(
                N_("a line-item file needs line_total, or quantity and unit_price, or the order's subtotal "
                   "(the file has: {found}; --map FILE_COLUMN=FIELD names a column differently)"), found=found))],
                reason=Text(N_("the header does not fit {table}"), table=name))
        # the fields a line-item file's amounts come from; in an orders file, the subtotal is the amount
        unused = (["subtotal"] if lines and line_amounts else []) + ([] if lines else ["unit_price", "line_total"])
        for field_name in unused:
            if field_name in assign:
                ignored.append(raw.header[assign.pop(field_name)])
    shop = currency
    if not currency_explicit:
        shop = schema.stored_currency(engine) or currency  # a default gives way to the data's
    order_lines = lines and name == "orders"
    size = reading_.CHUNK_ROWS

    # first pass: what the whole file settles (its reading problems are recorded here, once)
    survey = FileSurvey(spath, spec, shop, lines=order_lines)
    n_rows = n_chunks = 0
    for chunk in raw.chunks(problems, size):
        survey.add({f: chunk.columns[i] for f, i in assign.items()}, chunk.lines)
        n_rows += chunk.n_rows
        n_chunks += 1
    facts = survey.facts(general, currency_explicit)
    if n_chunks == 1:
        facts.scattered = facts.scattered[:0]  # one chunk holds every order's lines

    # second pass: each chunk prepared with them, and written in the file's one transaction until a line is bad
    chunks = raw.chunks(Problems(), size)
    if order_lines and "order_id" in assign:
        chunks = order_chunks(chunks, assign["order_id"], facts.scattered)
    notes: list[str | Text] = []
    unknown: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    customers: pd.DataFrame | None = None  # customer_summary of the chunks written
    guests = n_returns = unmatched = 0
    returned = 0.0
    orphans: bool | None = None  # returns stored before their orders, to be given their orders' dimensions
    file_currency = shop
    blocked: ImportRefused | None = None  # the database refuses the file's currency
    with ExitStack() as stack:
        conn: Connection | None = None

        def connect() -> Connection:
            writer = stack.enter_context(private_writer(engine))  # DuckDB: a private copy, published at the end
            upgrade_source(writer)
            c = stack.enter_context(writer.begin())
            stack.enter_context(sqlite_cache(c))
            check_database_currency(c, spath, file_currency, currency if currency_explicit else None)
            return c

        for chunk in chunks:
            columns = {f: chunk.columns[i] for f, i in assign.items()}
            prepared = prepare(
                spath, spec, columns, chunk.lines, tz=tz, currency=shop, problems=problems, general=general,
                check_keys=not order_lines, currency_explicit=currency_explicit, facts=facts,
            )
            file_currency = prepared.currency
            for value, k in prepared.unknown_countries.items():
                unknown[value] = unknown.get(value, 0) + k
            frame, returns = prepared.frame, None
            if name == "orders":
                raw_text = {f: columns[f] for f in ONCE_FIELDS if f in columns}
                frame, returns = split_orders(prepared, raw_text, lines=lines, problems=problems,
                                              numbered=facts.numbered_ids)
                if more_returns is not None:
                    extra = more_returns(frame, problems)
                    if len(extra):
                        returns = pd.concat([returns, extra], ignore_index=True) if len(returns) else extra
            if problems or general or blocked is not None:
                continue  # the file is refused: the other chunks are only checked
            if conn is None:
                try:
                    conn = connect()
                except ImportRefused as exc:
                    blocked = exc  # said when no line is bad (bad lines are told first)
                    continue
            updates = [f for f in prepared.present if f not in spec.key]
            if order_lines and "subtotal" not in updates:
                updates.append("subtotal")
            if name == "returns":
                filled, n_unmatched = fill_return_dimensions(conn, frame, prepared.present)
                updates += filled
                unmatched += n_unmatched
            add_counts(counts, name, upsert(conn, spec.table, spec.key, frame.drop(columns=[LINE]), spec.stored, updates))
            if name == "orders":
                if orphans is None:
                    orphans = has_orphan_returns(conn)
                if orphans:  # returns loaded before their orders get the orders' channel, country, customer
                    adopt_returns(conn, frame["order_id"].tolist())
                customers = customer_summary(frame, customers)
                guests += int(frame["customer_id"].isna().sum())
                if len(returns):
                    rspec = SPECS["returns"]
                    add_counts(counts, "returns", upsert(conn, rspec.table, rspec.key, returns.drop(columns=[LINE]),
                                                   rspec.stored, [f for f in rspec.stored if f not in rspec.key]))
                    n_returns += len(returns)
                    returned += float(returns["amount"].sum())
        _refuse_if(spath, problems, general)
        if blocked is not None:
            raise blocked
        if conn is None:
            conn = connect()
        notes.extend(notes_.countries(unknown))
        if unmatched:
            notes.append(notes_.unmatched(unmatched))
        per_table = {name: counts.get(name, zero_counts())}
        if name == "orders":
            per_table["customers"] = write_customers(conn, customers) if customers is not None else zero_counts()
            if "returns" in counts:
                per_table["returns"] = counts["returns"]
                notes.append(notes_.returns(n_returns, returned))
            if guests:
                notes.append(notes_.guests(guests))
        result = result_of(name, spath, n_rows, raw.notes, per_table, name, ignored)
        result.notes.extend(notes)
        if on_commit is not None:
            on_commit(conn, result)
    return result


def import_shopify_orders(
    engine: Engine, path: str | Path, *, tz: ZoneInfo, currency: str | None = None,
    currency_explicit: bool = False, on_commit: OnCommit | None = None,
) -> ImportResult:
    """Load a Shopify admin orders export into orders, customers and returns (see kpi.data.importer.shopify
    for the mapping). Raises ImportRefused, with every bad line, and loads nothing."""
    spath, tz = str(path), _zone(tz)
    problems, general, notes = Problems(), [], []
    raw = read_file(path, problems)
    shop = currency if currency_explicit else (schema.stored_currency(engine) or currency)
    prepared, returns, ignored = prepare_shopify(raw, tz=tz, currency=shop, problems=problems, general=general,
                                                 notes=notes, currency_explicit=currency_explicit)
    _refuse_if(spath, problems, general)
    notes.extend(notes_.countries(prepared.unknown_countries))
    with private_writer(engine) as writer:  # DuckDB: a private copy, published at the end
        upgrade_source(writer)
        with writer.begin() as conn, sqlite_cache(conn):
            check_database_currency(conn, spath, prepared.currency, currency if currency_explicit else None)
            per_table = {"orders": _upsert_prepared(conn, "orders", prepared)}
            per_table["customers"] = maintain_customers(conn, prepared.frame)
            spec = SPECS["returns"]
            per_table["returns"] = upsert(conn, spec.table, spec.key, returns, spec.stored,
                                          [f for f in spec.stored if f not in spec.key])
            guests = int(prepared.frame["customer_id"].isna().sum())
            if guests:
                notes.append(notes_.guests(guests))
            result = result_of("orders, customers, returns", raw.path, raw.n_rows, raw.notes, per_table, "orders", ignored)
            result.notes.extend(notes)
            if on_commit is not None:
                on_commit(conn, result)
    return result


def import_preset(
    engine: Engine,
    path: str | Path,
    fmt: str,
    *,
    tz: ZoneInfo,
    currency: str | None = None,
    currency_explicit: bool = False,
    on_commit: OnCommit | None = None,
) -> ImportResult:
    """Load an export in one of the PRESETS formats. Raises ImportRefused, with every bad line, and loads
    nothing."""
    spath = str(path)
    key = fmt.strip().lower()
    if key not in PRESETS:
        raise refusal(path=spath, reason=Text(N_("unknown format {name}; use one of {formats}"), name=repr(fmt),
                                              formats=", ".join(PRESETS)))
    if key == "shopify-orders":
        return import_shopify_orders(engine, path, tz=tz, currency=currency, currency_explicit=currency_explicit,
                                     on_commit=on_commit)
    problems = Problems()
    raw = read_file(path, problems)
    if key == "online-retail":
        if not currency_explicit:
            currency = "GBP"  # the data sets are a UK retailer's, in pounds sterling
        return load_raw(engine, raw, "orders", problems=problems, tz=tz, column_map=presets.online_retail_map(raw),
                        currency=currency, lines=True, currency_explicit=currency_explicit, on_commit=on_commit)
    if key == "woocommerce-orders":
        canonical, refunds, lines = presets.woocommerce(raw)
        result = load_raw(engine, canonical, "orders", problems=problems, tz=tz, currency=currency, lines=lines,
                          currency_explicit=currency_explicit, more_returns=refunds, on_commit=on_commit)
        result.ignored_columns = []
        return result
    mapping, keep = presets.ga4_map(raw)
    return load_raw(engine, presets.keep_rows(raw, keep), "traffic", problems=problems, tz=tz, column_map=mapping,
                    currency=currency, currency_explicit=currency_explicit, on_commit=on_commit)


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _upsert_prepared(conn: Connection, name: str, prepared: Prepared):
    spec = SPECS[name]
    updates = [f for f in prepared.present if f not in spec.key]
    return upsert(conn, spec.table, spec.key, prepared.frame.drop(columns=[LINE]), spec.stored, updates)


def _refuse_if(path: str, problems: Problems, general: list[Text]) -> None:
    if problems or general:
        raise refusal(path=path, bad_rows=problems.bad_rows(), reason=joined(general))
