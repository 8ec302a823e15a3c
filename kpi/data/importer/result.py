"""What an import says it did: counts per table, the columns it left aside and its notes (``ImportResult``),
in the command line's and Slack's words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from kpi.data.messages import Text, told
from kpi.i18n import N_, tr, trn

# one table's counts, in the CLI's and ImportResult.summary()'s words
COUNTS = N_("{table}: {inserted} inserted, {updated} updated, {unchanged} unchanged")


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


# what a caller writes in a file's own transaction, once its rows are written (kpi.data.batch: its hash)
OnCommit = Callable[[Connection, ImportResult], None]


def zero_counts() -> dict[str, int]:
    return {"inserted": 0, "updated": 0, "unchanged": 0}


def add_counts(counts: dict[str, dict[str, int]], table: str, more: dict[str, int]) -> None:
    total = counts.setdefault(table, zero_counts())
    for k, v in more.items():
        total[k] += v


def result_of(table: str, path: str, n_rows: int, file_notes: list, per_table: dict, main: str,
            ignored: list[str]) -> ImportResult:
    c = per_table[main]
    notes = list(file_notes)
    if n_rows == 0:
        notes.append(Text(N_("the file has no data lines")))
    return ImportResult(
        table=table,
        rows_read=n_rows,
        inserted=c["inserted"],
        updated=c["updated"],
        unchanged=c["unchanged"],
        per_table=per_table,
        path=path,
        ignored_columns=ignored,
        notes=notes,
    )
