"""The inbox: a folder the worker watches (``KPIBOT_INBOX``), whose new files it imports (``kpi.data.batch``).

What a file holds is said by where it is or what it is called:

    <inbox>/orders/2026-11-28.csv           a folder named after a table (orders, returns, traffic, spend,
    <inbox>/online-retail/day-1.csv         campaigns, customers; order-lines: orders as line items) or
    <inbox>/orders_2026-11-28.csv           a preset (shopify-orders, ...); else the start of its name

A file still being written is not read: it is taken once its size and modification time are the same as
at the previous poll, or once it is older than ``settle`` (a file already there when the worker starts).
A file is claimed by moving it to ``<inbox>/.importing/`` (one rename: of several workers, one wins),
then imported whole or not at all, and moved to ``<inbox>/loaded/`` or ``<inbox>/refused/`` (beside it,
``<name>.reasons.txt`` says why); a file whose content was loaded before goes to ``loaded/`` too. A claim
older than ``stale`` (its worker died) goes back to where it came from. The caller logs each outcome
(``import_runs``) and reports refusals.

May import: ``kpi.errors``, ``kpi.i18n``, ``kpi.data``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from kpi.data import importer
from kpi.data.batch import EXTENSIONS, Outcome, What, ensure_table, file_sha256, import_file, preset_names
from kpi.data.messages import Text, refusal
from kpi.i18n import N_

log = logging.getLogger("kpibot.inbox")

LOADED, REFUSED, CLAIMED = "loaded", "refused", ".importing"
SETTLE = timedelta(seconds=60)
STALE = timedelta(hours=1)
SEPARATORS = "_-. "

UNKNOWN_KIND = N_("the inbox cannot tell what this file holds: put it in a folder named after what it holds "
                  "({kinds}), or start its name with it (orders_2026-11-28.csv)")
MAPPED = N_("the shop's own tables hold {tables} (config/source.yaml): load this data there; the inbox writes the "
            "bot's canonical tables only")
UNREADABLE = N_("cannot read the file: {error}")


def kinds() -> dict[str, What]:
    """Folder names and file name prefixes, and what they say a file holds."""
    out = {name: What(table=name) for name in importer.TABLE_ALIASES}
    out.update({table: What(table=alias) for alias, table in importer.TABLE_ALIASES.items() if table not in out})
    out["order-lines"] = What(table="orders", lines=True)
    out.update({name: What(format=name) for name in preset_names()})
    return out


def what_of(relative: Path, known: dict[str, What]) -> What | None:
    """What the file at ``relative`` (to the inbox) holds: its folder's name, else the longest kind its name
    starts with (followed by '_', '-', '.', a space, or nothing); None when neither says."""
    if len(relative.parts) > 1 and (what := known.get(relative.parts[0].lower())) is not None:
        return what
    stem = relative.stem.lower()
    for name in sorted(known, key=len, reverse=True):
        if stem == name or (stem.startswith(name) and stem[len(name)] in SEPARATORS):
            return known[name]
    return None


class Inbox:
    def __init__(self, root: str | Path, *, clock: Callable[[], datetime] | None = None,
                 settle: timedelta = SETTLE, stale: timedelta = STALE, lang: str = "en"):
        self.root = Path(root)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.settle, self.stale, self.lang = settle, stale, lang
        self._seen: dict[Path, tuple[int, int]] = {}  # file -> (size, mtime in ns) at the previous poll

    # -- which files ------------------------------------------------------------------------------------
    def waiting(self) -> list[Path]:
        """The files waiting in the inbox (relative paths): at its top and in its subfolders (one level),
        with a .csv, .tsv or .txt extension, not hidden; loaded/, refused/ and claims left alone."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if entry.name.startswith((".", "~")) or entry.name in (LOADED, REFUSED):
                continue
            children = sorted(entry.iterdir()) if entry.is_dir() else [entry]
            for f in children:
                if f.is_file() and f.suffix.lower() in EXTENSIONS and not f.name.startswith((".", "~")):
                    found.append(f.relative_to(self.root))
        return sorted(found, key=lambda p: p.as_posix())

    def ready(self) -> list[Path]:
        """The waiting files that are complete: unchanged since the previous poll, or older than ``settle``."""
        now = self.clock().timestamp()
        seen, ready = {}, []
        for rel in self.waiting():
            try:
                st = (self.root / rel).stat()
            except FileNotFoundError:  # taken by another worker meanwhile
                continue
            mark = (st.st_size, st.st_mtime_ns)
            seen[rel] = mark
            if self._seen.get(rel) == mark or now - st.st_mtime >= self.settle.total_seconds():
                ready.append(rel)
            else:
                log.debug("inbox: %s is still being written (or was just written): next poll", rel)
        self._seen = {rel: mark for rel, mark in seen.items() if rel not in ready}
        return ready

    # -- one poll ---------------------------------------------------------------------------------------
    def poll(self, engine: Engine, *, tz: ZoneInfo, currency: str | None = None, currency_explicit: bool = False,
             on_file: Callable[[Outcome], None] | None = None, mapped: frozenset[str] = frozenset()) -> list[Outcome]:
        """Import the files that are ready, each whole or not at all; ``on_file(outcome)`` after each one is
        moved. An error that is not the file's (the database is down) leaves the file where it was, for the
        next poll, and is raised. ``mapped``: the canonical tables the shop's source mapping reads from its own
        tables; a file for them is refused (the bot never writes to the shop's own tables)."""
        self._release_stale()
        ready = self.ready()
        if not ready:
            return []
        from kpi.data.schema import create_source_tables

        if not mapped:  # a mapped shop's database gets no table it does not need (the importer makes its own)
            create_source_tables(engine)
        ensure_table(engine)
        known = kinds()
        outcomes = []
        for rel in ready:
            claimed = self._claim(rel)
            if claimed is None:
                continue
            try:
                outcome = self._import(engine, claimed, rel, what_of(rel, known), known, tz=tz, currency=currency,
                                       currency_explicit=currency_explicit, mapped=mapped)
            except BaseException:
                self._move(claimed, self.root / rel)  # not the file's fault: it is tried again
                raise
            self._file(outcome, claimed, rel)
            outcomes.append(outcome)
            if on_file is not None:
                on_file(outcome)
        return outcomes

    def _import(self, engine: Engine, claimed: Path, rel: Path, what: What | None, known: dict[str, What], *,
                tz: ZoneInfo, currency: str | None, currency_explicit: bool, mapped: frozenset[str]) -> Outcome:
        name = rel.as_posix()
        now = self.clock().astimezone(UTC).replace(tzinfo=None)
        refused_tables = sorted(set(what.tables) & mapped) if what is not None else []
        try:
            if what is not None and not refused_tables:
                return import_file(engine, claimed, what, tz=tz, currency=currency,
                                   currency_explicit=currency_explicit, name=name, clock=self.clock)
            reason = (Text(MAPPED, tables=", ".join(refused_tables)) if refused_tables
                      else Text(UNKNOWN_KIND, kinds=", ".join(f"{k}/" for k in sorted(known))))
            sha = file_sha256(claimed)
        except OSError as exc:  # the file cannot be read (its permissions): the file's fault, said like a refusal
            if exc.filename is None or Path(exc.filename) != claimed:
                raise
            reason, sha = Text(UNREADABLE, error=exc.strerror or str(exc)), "-" * 64
        return Outcome(path=claimed, name=name, sha256=sha, what=what or What(table="unknown"),
                       status="refused", started_at=now, finished_at=now, refused=refusal(path=name, reason=reason))

    def _file(self, outcome: Outcome, claimed: Path, rel: Path) -> None:
        """Move the file to loaded/ or refused/ (with its reasons); log what happened."""
        if outcome.status == "refused":
            dest = self._move(claimed, self.root / REFUSED / rel)
            text = outcome.refused.localized(self.lang) if outcome.refused is not None else ""
            dest.with_name(dest.name + ".reasons.txt").write_text(text + "\n", encoding="utf-8")
            log.warning("inbox: %s refused, moved to %s: %s", rel, dest.relative_to(self.root),
                        outcome.refused.localized("en") if outcome.refused is not None else "")
            return
        dest = self._move(claimed, self.root / LOADED / rel)
        if outcome.status == "skipped":
            log.info("inbox: %s already loaded on %s UTC: moved to %s", rel, outcome.loaded_before,
                     dest.relative_to(self.root))
        else:
            r = outcome.result
            log.info("inbox: %s loaded into %s: %d rows, %d inserted, %d updated, %d unchanged", rel, r.table,
                     r.rows_read, r.inserted, r.updated, r.unchanged)

    # -- claims -----------------------------------------------------------------------------------------
    def _claim(self, rel: Path) -> Path | None:
        """Move the file into .importing/ (atomic: one worker wins); its time there starts now."""
        dest = self.root / CLAIMED / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            return None  # a file of that name is being imported: this one waits for the next poll
        try:
            os.rename(self.root / rel, dest)
        except FileNotFoundError:
            return None
        stamp = self.clock().timestamp()
        os.utime(dest, (stamp, stamp))
        return dest

    def _release_stale(self) -> None:
        claims = self.root / CLAIMED
        if not claims.is_dir():
            return
        now = self.clock().timestamp()
        for f in claims.rglob("*"):
            if f.is_file() and now - f.stat().st_mtime >= self.stale.total_seconds():
                rel = f.relative_to(claims)
                log.warning("inbox: %s was claimed %s ago by a worker that did not finish: back in the inbox", rel,
                            timedelta(seconds=round(now - f.stat().st_mtime)))
                self._move(f, self.root / rel)

    @staticmethod
    def _move(src: Path, dest: Path) -> Path:
        """``src`` to ``dest``, or to ``name-2.csv``, ``name-3.csv``... when a file has that name already."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        target, n = dest, 1
        while target.exists():
            n += 1
            target = dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
        os.replace(src, target)
        return target


__all__ = ["CLAIMED", "LOADED", "REFUSED", "Inbox", "kinds", "what_of"]
