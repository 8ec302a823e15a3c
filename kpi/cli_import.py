"""``kpibot import PATH [PATH ...]``: files and folders into the shop's data (README, "Importing CSV files");
kpi.cli parses the command line and calls ``cmd_import``."""

from __future__ import annotations

import sys

from sqlalchemy.exc import SQLAlchemyError

from kpi.errors import KpiError
from kpi.i18n import tr
from kpi.services import Services as Context


def cmd_import(ctx: Context, args) -> int:
    """Files and folders, each file whole or not at all in its own transaction; a file whose content was loaded
    before is skipped (``--force`` loads it again). Exit 0, or 2 when a file was refused (the others load)."""
    from kpi.data import batch
    from kpi.services import mapped_tables

    lang = args.lang
    what = _what_of(args)
    mapped = mapped_tables(ctx)
    if mapped & set(what.tables):
        raise KpiError("{tables}: the shop's own tables are read through its source mapping (config/source.yaml); "
                       "load the data there: kpibot import writes the bot's canonical tables only",
                       tables=", ".join(sorted(mapped & set(what.tables))))
    files = batch.list_files(args.paths, recursive=args.recursive)
    explicit = args.currency is not None  # --currency, or the operator's (KPIBOT_CURRENCY, config/teams.yaml)
    key = batch.source_key(ctx.settings.source_url)
    progress = batch.Progress(sys.stderr, sys.stdout, len(files), lang=lang).start() if sys.stderr.isatty() else None
    say = progress.print if progress is not None else print

    unlogged = []  # the note that the import log is missing, once per run

    def told(outcome: batch.Outcome) -> None:
        if not unlogged and not _record_import(ctx, outcome.run_row(key), lang):
            unlogged.append(outcome)
        if outcome.refused is not None:
            if progress is not None:
                progress.close()
            print(f"kpibot: {outcome.refused.localized(lang)}", file=sys.stderr, flush=True)
        for line in batch.outcome_lines(outcome, lang):
            say(line)
        if progress is not None:
            progress.advance(outcome.rows)

    try:
        summary = batch.run_batch(ctx.source(), files, what, tz=ctx.settings.tz, currency=args.currency,
                                  currency_explicit=explicit, force=args.force, on_file=told)
    finally:
        if progress is not None:
            progress.close()
    if len(files) != 1:
        print(summary.line(lang))
    return 2 if summary.count("refused") else 0


def _what_of(args):
    from kpi.data.batch import What, preset_names

    column_map = []
    for item in args.map or []:
        if "=" not in item:
            raise KpiError("--map {item}: write it as 'column in the file=field', e.g. --map \"Order Number=order_id\"",
                           item=repr(item))
        col, fld = item.rsplit("=", 1)
        column_map.append((col.strip(), fld.strip()))
    if args.format:
        if args.table or args.lines or column_map:
            raise KpiError("--format reads a known export as it is: leave out --table, --lines and --map")
        if args.format not in preset_names():
            raise KpiError("unknown format {format}; use one of {formats}", format=repr(args.format),
                           formats=", ".join(preset_names()))
        return What(format=args.format)
    if not args.table:
        raise KpiError("say what the files hold: --table orders|returns|traffic|spend|campaigns|customers, or "
                       "--format {formats}", formats="|".join(preset_names()))
    if args.lines and args.table != "orders":
        raise KpiError("--lines is for orders files of one line per product: use it with --table orders")
    return What(table=args.table, lines=args.lines, column_map=tuple(column_map))


def _record_import(ctx: Context, row: dict, lang: str) -> bool:
    """The import log lives in the state database; a state database not upgraded yet only warns."""
    from kpi.state.tables import log_import

    try:
        log_import(ctx.state(), row)
        return True
    except SQLAlchemyError:
        print(tr(lang, "note: the import was not logged (run `kpibot db upgrade` to create the state tables)"),
              file=sys.stderr)
        return False
