"""``kpibot``: the command line (DESIGN.md section 10). Scripts, cron jobs and tests rely on it.

Every error is one clear line on stderr and a non-zero exit code (2: the input or the data, 1: the
system); never a traceback (``KPIBOT_LOG_LEVEL=DEBUG`` logs one with the error's reference).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.exc import SQLAlchemyError

from kpi.cli_import import cmd_import
from kpi.errors import KpiError, new_ref
from kpi.i18n import LANGUAGES, lang_of, tr
from kpi.services import Services

log = logging.getLogger("kpibot")


# -- the shared context: settings, catalog, engines (the same object the Slack app and the worker use) -----
Context = Services


# -- commands ------------------------------------------------------------------------------------------
def cmd_db_upgrade(ctx: Context, args) -> int:
    from kpi.data.messages import told
    from kpi.data.schema import create_source_tables
    from kpi.data.source_schema import upgrade_source
    from kpi.db import open_to_others
    from kpi.services import is_mapped
    from kpi.state.tables import upgrade

    lang = args.lang
    upgrade(ctx.settings.database_url)
    print(tr(lang, "state database up to date ({url})", url=_safe_url(ctx.settings.database_url)))
    if exposed := open_to_others(ctx.settings.database_url):  # made by an earlier version, or opened on purpose
        print(tr(lang, "warning: others may read the state database, which holds OAuth tokens: chmod 600 {files}",
                 files=" ".join(exposed)), file=sys.stderr)
    if not args.no_source:
        # the deployment's shop, then each shop of config/teams.yaml (one line each; a shop's source once)
        shops = [ctx] if getattr(args, "team", None) else [ctx, *{ctx.for_team(t).settings.source_url: ctx.for_team(t)
                                                                  for t in ctx.shops()}.values()]
        done = set()
        for shop in shops:
            if shop.settings.source_url in done:
                continue
            done.add(shop.settings.source_url)
            url = _safe_url(shop.settings.source_url)
            if is_mapped(shop):  # the shop's own tables, read through its mapping: never written to
                print(tr(lang, "source database ({url}): the shop's own tables, read through its mapping; "
                               "nothing to create", url=url))
                continue
            created = create_source_tables(shop.source())
            if created:
                print(tr(lang, "source database ({url}): {tables}", url=url, tables=", ".join(created)))
            else:
                print(tr(lang, "source database ({url}): nothing to create", url=url))
            for change in upgrade_source(shop.source(), indexes=True):  # a source made by an earlier version
                print("  " + told(change, lang))
    return 0


def cmd_metrics(ctx: Context, args) -> int:
    cat = ctx.catalog()
    if args.define is not None:
        from kpi.metrics.definitions import define, definition_lines

        metrics = list(cat.metrics.values()) if args.define == "*" else [cat.metric(args.define)]
        definitions = [define(cat, m, args.lang) for m in metrics]
        if args.json:
            print(json.dumps([_jsonable(d) for d in definitions], indent=2, ensure_ascii=False))
        else:
            print("\n\n".join("\n".join(definition_lines(d)) for d in definitions))
        return 0
    if args.json:
        out = [{"key": m.key, "label": m.label, "aliases": m.aliases, "type": m.type, "format": m.format,
                "higher_is_better": m.higher_is_better, "dimensions": cat.dimensions_of(m)} for m in cat.metrics.values()]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    lang = args.lang
    width = max(len(m.name(lang)) for m in cat.metrics.values())
    better = {True: tr(lang, "↑ better"), False: tr(lang, "↓ better"), None: tr(lang, "↕ neutral")}
    better_width = max(map(len, better.values()))
    for m in cat.metrics.values():
        aliases = ", ".join(dict.fromkeys(a for al in m.aliases.values() for a in al))
        by = tr(lang, "by: {dimensions}", dimensions=", ".join(cat.dimensions_of(m)) or "-")
        print(f"{m.name(lang):<{width}}  {m.format:<8} {better[m.higher_is_better]:<{better_width}}  {by:<26} ({aliases})")
    return 0


def cmd_ask(ctx: Context, args) -> int:
    from kpi.metrics.formatting import result_lines
    from kpi.metrics.reader import read_question
    from kpi.metrics.reading import answer_reading

    text = " ".join(args.text)
    engine = ctx.kpi_engine()
    reading = read_question(text, engine.catalog, now=engine.now(), tz=ctx.settings.tz, values=ctx.dimension_values())
    results = answer_reading(engine, reading)
    read_as = reading.describe(engine.catalog, args.lang)
    if args.json:
        out = {**_jsonable(results[0]), "reading": {**reading.as_dict(), "text": read_as}}
        if len(results) > 1:
            out["also"] = [_jsonable(r) for r in results[1:]]
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for i, result in enumerate(results):
            if i:
                print()
            print("\n".join(result_lines(result, currency=ctx.settings.currency, lang=args.lang)))
        print("  " + tr(args.lang, "read as: {reading}", reading=read_as))
    return 0


def cmd_demo_data(ctx: Context, args) -> int:
    from kpi.data.demo import generate_demo_data
    from kpi.data.schema import create_source_tables

    create_source_tables(ctx.source())
    today = datetime.now(UTC).astimezone(ctx.settings.tz).date()
    summary = generate_demo_data(ctx.source(), days=args.days, orders_per_day=args.orders_per_day, seed=args.seed,
                                 today=today, tz=ctx.settings.tz, currency=ctx.settings.currency, replace=args.replace)
    print(tr(args.lang, "demo shop data from {first_day} to {last_day} in {url}: {orders} orders, {customers} customers, "
             "{returns} returns, {traffic_rows} traffic rows, {spend_rows} spend rows, {campaigns} campaigns ({seconds} s)",
             first_day=summary.first_day, last_day=summary.last_day, url=_safe_url(ctx.settings.source_url),
             **summary.numbers(args.lang)))
    return 0


def cmd_source_check(ctx: Context, args) -> int:
    """Which KPIs the shop's data can give: exit 0 when every one is, 2 otherwise."""
    from kpi.errors import missing_text
    from kpi.metrics.availability import check_source

    lang = args.lang
    report = check_source(ctx.catalog(), ctx.source(), lang=lang)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return 0 if report.available and report.mapping_ok else 2
    ok = sum(k.available for k in report.kpis)
    print(tr(lang, "KPIs available: {ok} of {n}", ok=ok, n=len(report.kpis)))
    for k in report.kpis:
        if k.available:
            print(f"  ✓ {k.name}")
            continue
        why = []
        if k.missing:
            why.append(tr(lang, "missing {missing}", missing=missing_text(k.missing, lang)))
        why += [tr(lang, "{column} holds values that are not numbers (rows: {rows})", column=c, rows=n)
                for c, n in k.not_numbers.items() if n]
        print(f"  ✗ {k.name}: {'; '.join(why)}")
    if report.not_numbers:
        print(tr(lang, "Values that are not numbers, per numeric column:"))
        for column, n in report.not_numbers.items():
            print(f"  {column}: {n}")
    if report.missing:
        print(tr(lang, "Missing from the shop's data: {missing}", missing=missing_text(report.missing, lang)))
    for line in report.lines(lang):  # the source mapping (config/source.yaml) and the orders' statuses
        print(line)
    return 0 if report.available and report.mapping_ok else 2


# -- plumbing ------------------------------------------------------------------------------------------
def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as nothing rather than leak a secret
        return "<database>"


def _jsonable(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if hasattr(obj, "partial") and hasattr(obj, "describe"):
            out.update(partial=obj.partial, days=obj.days, total_days=obj.total_days, description=obj.describe())
        return out
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def build_parser(extend: Callable | None = None) -> argparse.ArgumentParser:
    """The parser; ``extend(subparsers)`` adds commands of other layers (the Slack app's serve, socket, demo)."""
    p = argparse.ArgumentParser(prog="kpibot", description="KPI Bot: e-commerce KPIs in Slack, and on the command line.")
    p.add_argument("--lang", default=None, choices=list(LANGUAGES),
                   help="the language of messages and answers (default KPIBOT_LOCALE, else en)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="migrate the state database and create the missing shop tables in the source")
    up.add_argument("--no-source", action="store_true", help="leave the source databases alone")
    _team_option(up, "only that team's shop (config/teams.yaml); default: every shop")
    up.set_defaults(func=cmd_db_upgrade)
    sub.db_upgrade = up  # other layers chain their own tables to it

    m = sub.add_parser("metrics", help="list the KPI catalog")
    m.add_argument("--json", action="store_true")
    m.add_argument("--define", nargs="?", const="*", default=None, metavar="KPI",
                   help="each KPI's definition (formula, tables, conditions), or one KPI's")
    m.set_defaults(func=cmd_metrics)

    a = sub.add_parser("ask", help='answer a question, e.g. kpibot ask "aov by channel this month"')
    a.add_argument("text", nargs="+", help="KPI [period] [vs previous|vs last year] [by dimension] [dim=value] [top N]")
    a.add_argument("--json", action="store_true", help="machine-readable answer")
    _team_option(a, "ask that team's shop (config/teams.yaml); default: the deployment's shop (KPI_SOURCE_URL)")
    a.set_defaults(func=cmd_ask)

    i = sub.add_parser("import", help="load CSV files into the shop data: each file whole or not at all, files "
                                      "already loaded skipped (exit 2 when a file was refused)")
    i.add_argument("paths", nargs="+", metavar="PATH", help="a file, or a folder (its .csv, .tsv and .txt files)")
    i.add_argument("--table", choices=["orders", "returns", "traffic", "spend", "campaigns", "customers"])
    i.add_argument("--format", metavar="FORMAT", help="a known export format instead of --table: shopify-orders, "
                                                     "woocommerce-orders, ga4-traffic, online-retail")
    i.add_argument("--lines", action="store_true", help="orders files of one line per product (quantity and "
                                                        "unit_price, or line_total): aggregated into orders")
    i.add_argument("--map", action="append", metavar="COLUMN=FIELD", help="file column to canonical field; repeatable")
    i.add_argument("--currency", help="currency of the amounts when the file has no currency column "
                                      "(default: the shop's, KPIBOT_CURRENCY or config/teams.yaml)")
    i.add_argument("--recursive", action="store_true", help="a folder's subfolders too")
    i.add_argument("--force", action="store_true", help="load files whose content was loaded before")
    _team_option(i, "load into that team's shop (config/teams.yaml); default: the deployment's shop (KPI_SOURCE_URL)")
    i.set_defaults(func=cmd_import)

    d = sub.add_parser("demo-data", help="fill the source with a realistic synthetic shop")
    d.add_argument("--days", type=_positive, default=730)
    d.add_argument("--orders-per-day", type=_positive, default=300)
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--replace", action="store_true", help="delete the existing shop data first")
    _team_option(d, "fill that team's shop (config/teams.yaml); default: the deployment's shop (KPI_SOURCE_URL)")
    d.set_defaults(func=cmd_demo_data)

    src = sub.add_parser("source", help="the shop's data (the source)")
    srcsub = src.add_subparsers(dest="source_command", required=True, metavar="ACTION")
    chk = srcsub.add_parser("check", help="which KPIs the source can give: missing tables and columns, values that "
                                          "are not numbers (exit 0: all, 2: not all)")
    chk.add_argument("--json", action="store_true", help="machine-readable report")
    _team_option(chk, "check that team's shop (config/teams.yaml); default: the deployment's shop (KPI_SOURCE_URL)")
    chk.set_defaults(func=cmd_source_check)
    if extend is not None:
        extend(sub)
    _lang_after_commands(p)
    return p


def _lang_after_commands(parser: argparse.ArgumentParser) -> None:
    """``--lang`` after any command too (``kpibot ask ... --lang fr``). Not given there, it leaves the
    global one alone (SUPPRESS: argparse would otherwise overwrite it with the command's default)."""
    for action in parser._actions:  # noqa: SLF001 - argparse lists its subcommands nowhere else
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in action.choices.values():
                if not any("--lang" in a.option_strings for a in child._actions):  # noqa: SLF001
                    child.add_argument("--lang", default=argparse.SUPPRESS, choices=list(LANGUAGES),
                                       help="as the global --lang")
                _lang_after_commands(child)


def _team_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--team", metavar="T...", help=help_text)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def main(argv: list[str] | None = None, extend: Callable | None = None) -> int:
    logging.basicConfig(level=os.environ.get("KPIBOT_LOG_LEVEL", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser(extend).parse_args(argv)
    lang = lang_of(args.lang)  # until the settings are read
    try:
        ctx = Context()
        args.lang = lang = args.lang or lang_of(ctx.settings.locale)
        if getattr(args, "team", None):  # the shop that team reads (config/teams.yaml), else the deployment's
            ctx = ctx.for_team(args.team)
        if getattr(args, "currency", "x") is None:  # a shop currency set explicitly; never the USD default
            args.currency = ctx.stated_currency()
        return args.func(ctx, args)
    except KpiError as exc:  # the user's input or data: one line saying what to do
        print(f"kpibot: {exc.localized(lang)}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        ref = new_ref()
        log.debug("database error [%s]", ref, exc_info=True)
        detail = str(getattr(exc, "orig", None) or exc).lower()
        if "no such table" in detail or "does not exist" in detail and "relation" in detail:
            print("kpibot: " + tr(lang, "a table is missing: run `kpibot db upgrade` (the release step) first [ref {ref}]",
                                  ref=ref), file=sys.stderr)
            return 1
        error = type(exc.orig if hasattr(exc, "orig") and exc.orig else exc).__name__
        print("kpibot: " + tr(lang, "the database could not answer ({error}); check DATABASE_URL / KPI_SOURCE_URL "
                              "[ref {ref}]", error=error, ref=ref), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - the last line of defence: one line, the details in the log
        ref = new_ref()
        log.debug("unexpected error [%s]", ref, exc_info=True)
        print("kpibot: " + tr(lang, "unexpected error [ref {ref}]; run again with KPIBOT_LOG_LEVEL=DEBUG for details",
                              ref=ref), file=sys.stderr)
        return 1



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
