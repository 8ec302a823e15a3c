"""Reading a CSV file into text columns, knowing the file line of every record.

A big file is read in chunks of CHUNK_ROWS records (``CsvSource.chunks``), each pass a new read of the
file: memory stays flat in the file's size. The checks of the encoding read the file block by block.

The file is decoded here (UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252 — never a
silent latin-1 garble), its delimiter sniffed from the header, and it is tokenised with the ``csv``
module, which gives what pandas' reader hides: the number of fields of each record (a truncated line
has fewer) and the file line where each record starts (quoted values may span lines). The columns then
go to pandas for the vectorised conversion.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kpi.data.messages import Text, refusal
from kpi.errors import BadRow
from kpi.i18n import N_, trn

from .values import Problems

CHUNK_ROWS = 100_000  # records per chunk of a file read in chunks
_BLOCK = 1 << 20  # bytes per read when the encoding is checked
_DELIMITERS = [",", ";", "\t", "|"]
_UNQUOTED = {  # a line with more fields than the header, per delimiter
    ",": N_("has {n} fields but the header has {width}: a value with an unquoted comma?"),
    ";": N_("has {n} fields but the header has {width}: a value with an unquoted semicolon?"),
    "\t": N_("has {n} fields but the header has {width}: a value with an unquoted tab?"),
    "|": N_("has {n} fields but the header has {width}: a value with an unquoted pipe?"),
}
_SEPARATED = {
    ";": N_("columns separated by semicolons"),
    "\t": N_("columns separated by tabs"),
    "|": N_("columns separated by pipes"),
}


@dataclass
class RawFile:
    path: str
    header: list[str]  # column names as written (stripped)
    columns: list[pd.Series]  # one ``str`` Series per header column, values stripped
    lines: np.ndarray  # the file line where each record starts (the header is line 1)
    encoding: str
    delimiter: str
    notes: list[str | Text] = field(default_factory=list)
    last: bool = True  # no chunk of the file follows this one

    @property
    def n_rows(self) -> int:
        return len(self.lines)

    def chunks(self, problems: Problems, size: int | None = None) -> Iterator[RawFile]:
        """A file read whole is its one chunk (its reading problems were recorded when it was read)."""
        yield self

    def take(self, mask: np.ndarray) -> RawFile:
        """The rows marked in ``mask``."""
        return RawFile(self.path, self.header, [c[mask].reset_index(drop=True) for c in self.columns],
                       self.lines[mask], self.encoding, self.delimiter, [], self.last)


def concat_raw(parts: list[RawFile]) -> RawFile:
    """The rows of ``parts`` (chunks of one file) as one chunk, in file order."""
    first, lines = parts[0], np.concatenate([p.lines for p in parts])
    order = np.argsort(lines, kind="stable")
    columns = [pd.concat([p.columns[i] for p in parts], ignore_index=True).iloc[order].reset_index(drop=True)
               for i in range(len(first.header))]
    return RawFile(first.path, first.header, columns, lines[order], first.encoding, first.delimiter, [],
                   parts[-1].last)


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number of fields as the header."""
    sample = text[:65536]
    first = sample.split("\n", 1)[0]
    candidates = [d for d in _DELIMITERS if d in first]
    if not candidates:
        return ","
    if len(candidates) == 1:
        return candidates[0]
    lines = sample.splitlines()[:50]
    best, best_score = candidates[0], (-1, -1)
    for d in candidates:
        try:
            rows = list(csv.reader(lines, delimiter=d))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        same = sum(1 for r in rows[1:] if len(r) == width)
        score = (same, width)
        if score > best_score:
            best, best_score = d, score
    return best


def skip_comments(text: str) -> tuple[str, int]:
    """A report export (Google Analytics 4) starts with lines of ``#`` comments before its header, and may
    hold further tables, each after an empty line and its own comments: the text of the first table, and
    the number of lines skipped before it (so that line numbers stay the file's)."""
    if not text.startswith("#"):
        return text, 0
    lines = text.splitlines(keepends=True)
    skipped = 0
    while skipped < len(lines) and (lines[skipped].startswith("#") or not lines[skipped].strip()):
        skipped += 1
    body = lines[skipped:]
    for i in range(1, len(body)):
        if body[i].startswith("#") and not body[i - 1].strip():
            body = body[:i]
            break
    return "".join(body), skipped


def _scan_bytes(path: str, encoding: str) -> tuple[UnicodeDecodeError | None, int, int | None, bool]:
    """Decode the file block by block: the first decoding error (None if it decodes) and the line where
    it is, the line of the first NUL character, and whether the file has a byte that is not a space."""
    decoder = codecs.getincrementaldecoder(encoding)()
    newlines, text_newlines, nul, nonblank = 0, 0, None, False
    with open(path, "rb") as f:
        while True:
            block = f.read(_BLOCK)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                data = exc.object if isinstance(exc.object, bytes) else block
                return exc, newlines + data.count(b"\n", 0, exc.start) + 1, nul, True
            nonblank = nonblank or bool(block.strip())
            if nul is None and "\x00" in text:
                nul = text_newlines + text.count("\n", 0, text.index("\x00")) + 1
            newlines += block.count(b"\n")
            text_newlines += text.count("\n")
            if not block:
                return None, 0, nul, nonblank


def check_encoding(path: str) -> tuple[str, list[Text]]:
    """The encoding of the file (``decode``'s rules, read block by block) and notes for the user."""
    notes: list[Text] = []
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    exc, line, nul, nonblank = _scan_bytes(path, encoding)
    if not nonblank:
        raise refusal(path=path, reason=Text(N_("the file is empty")))
    if exc is not None:
        if encoding == "utf-16":
            raise refusal(path=path, reason=Text(N_("the file starts like UTF-16 but is not valid UTF-16")))
        if encoding == "utf-8-sig":
            raise refusal(
                path=path,
                bad_rows=[BadRow(line, Text(N_("byte {byte} is not valid UTF-8"), byte=f"0x{exc.object[exc.start]:02x}"))],
                reason=Text(N_("the file says it is UTF-8 (it starts with a byte-order mark) but is not")),
            )
        exc2, line2, nul, _ = _scan_bytes(path, "cp1252")
        if exc2 is not None:
            raise refusal(
                path=path,
                bad_rows=[BadRow(line2, Text(N_("byte {byte}"), byte=f"0x{exc2.object[exc2.start]:02x}"))],
                reason=Text(N_("the file is neither UTF-8 nor Windows-1252 text: save it as CSV UTF-8")),
            )
        encoding = "cp1252"
        notes.append(Text(N_("the file is not UTF-8 (line {line}); it was read as Windows-1252 (Western European)"),
                          line=line))
    if nul is not None:
        raise refusal(
            path=path,
            bad_rows=[BadRow(nul, Text(N_("NUL character")))],
            reason=Text(N_("the file contains NUL characters (a binary file, or UTF-16 without a byte-order mark?)")),
        )
    return encoding, notes


class CsvSource:
    """A CSV file checked (encoding, delimiter, header) and read again for each pass, in chunks of records:
    ``chunks(problems)`` gives RawFile chunks with the file's line numbers. A report export that starts with
    ``#`` comments (skip_comments) is small and kept in memory."""

    def __init__(self, path: str | Path) -> None:
        spath = self.path = str(path)
        try:
            if not Path(path).is_file():
                Path(path).read_bytes()  # the error the reader gets (no such file, a folder...)
            encoding, self._notes = check_encoding(spath)
        except FileNotFoundError:
            raise refusal(path=spath, reason=Text(N_("no such file"))) from None
        except OSError as exc:
            raise refusal(path=spath, reason=Text(N_("cannot read the file: {error}"),
                                                  error=exc.strerror or exc)) from None
        self.encoding = encoding
        self._text: str | None = None
        self.skipped = 0
        with self._open() as stream:
            sample = stream.read(65536)
            if sample.startswith("#") or not sample.strip():
                self._text, self.skipped = skip_comments(sample + stream.read())
                if not self._text.strip():
                    raise refusal(path=spath, reason=Text(N_("the file has only comment lines, no header")))
                sample = self._text[:65536]
        self.delimiter = sniff_delimiter(sample)
        self.blank = 0
        with self._open() as stream:
            reader = csv.reader(stream, delimiter=self.delimiter, strict=True)
            try:
                first = next(reader)
            except csv.Error as exc:
                raise refusal(path=spath, bad_rows=[BadRow(1, Text(N_("cannot be read as CSV: {error}"), error=exc))],
                              reason=Text(N_("the file is not valid CSV"))) from None
        self.header = [h.strip() for h in first]
        if not any(self.header):
            raise refusal(
                path=spath,
                bad_rows=[BadRow(1, Text(N_("empty")))],
                reason=Text(N_("the first line should hold the column names")),
            )

    def _open(self):
        if self._text is not None:
            return io.StringIO(self._text, newline="")
        return open(self.path, encoding=self.encoding, newline="")  # noqa: SIM115 (closed by the caller)

    @property
    def notes(self) -> list[str | Text]:
        """The notes of the file, once a pass has read it all (empty lines counted)."""
        notes = list(self._notes)
        if self.blank:
            notes.append(Text(lambda lang, n=self.blank: trn(lang, "{n} empty line skipped", "{n} empty lines skipped",
                                                             n)))
        if self.delimiter != ",":
            notes.append(Text(_SEPARATED[self.delimiter]))
        return notes

    def chunks(self, problems: Problems, size: int | None = None) -> Iterator[RawFile]:
        """The data records, ``size`` at a time (None: all at once), the last chunk marked ``last``; lines
        with the wrong number of fields go to ``problems`` (and are left out) so that the others are still
        checked. At least one chunk, empty for a file with only a header."""
        self.blank = 0
        with self._open() as stream:
            reader = csv.reader(stream, delimiter=self.delimiter, strict=True)
            next(reader)
            previous = reader.line_num
            done = False
            while not done:
                records: list[list[str]] = []
                starts: list[int] = []
                gc_was_enabled = gc.isenabled()
                gc.disable()  # a million small lists: the cyclic collector only slows their creation down
                try:
                    try:
                        for rec in reader:
                            records.append(rec)
                            starts.append(previous + 1)
                            previous = reader.line_num
                            if size is not None and len(records) >= size:
                                break
                        else:
                            done = True
                    except csv.Error as exc:
                        # keep every record that parses (so that their own problems are named too), and name the
                        # line where the broken one starts (an unclosed quote opens there)
                        problems.add(previous + 1, Text(N_("not valid CSV from this line on ({error}): a quoted value "
                                                           "that never closes?"), error=exc))
                        done = True
                    lines = np.asarray(starts, dtype=np.int64) + self.skipped
                    del starts
                    chunk = self._chunk(records, lines, problems)
                    del records
                finally:
                    if gc_was_enabled:
                        gc.enable()
                chunk.last = done
                yield chunk

    def _chunk(self, body: list[list[str]], lines: np.ndarray, problems: Problems) -> RawFile:
        header, delimiter = self.header, self.delimiter
        width = len(header)
        lengths = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
        ragged = np.flatnonzero(lengths != width)
        keep = np.ones(len(body), dtype=bool)
        blank = 0
        for i in ragged:
            rec = body[i]
            keep[i] = False
            if not "".join(rec).strip():
                blank += 1
                continue
            if len(rec) < width:
                fields = len(rec)
                problems.add(lines[i], Text(lambda lang, n=fields: trn(
                    lang, "has {n} field but the header has {width}: a truncated or incomplete line",
                    "has {n} fields but the header has {width}: a truncated or incomplete line", n, width=width)))
            else:
                problems.add(lines[i], Text(_UNQUOTED[delimiter], n=len(rec), width=width))
        if ragged.size:
            body = [r for r, k in zip(body, keep, strict=True) if k]
            lines = lines[keep]
        columns_raw = list(zip(*body, strict=True)) if body else [() for _ in header]
        del body
        columns = [pd.Series(list(map(str.strip, c)), dtype="str") for c in columns_raw]
        del columns_raw
        if columns and len(lines):
            empty = np.logical_and.reduce([(c == "").to_numpy(dtype=bool) for c in columns])
            if empty.any():  # spreadsheet exports end with lines of empty cells
                blank += int(empty.sum())
                columns = [c[~empty].reset_index(drop=True) for c in columns]
                lines = lines[~empty]
        self.blank += blank
        return RawFile(self.path, header, columns, lines, self.encoding, self.delimiter)


def read_file(path: str | Path, problems: Problems) -> RawFile:
    """Decode and tokenise ``path`` whole; lines with the wrong number of fields are recorded in
    ``problems`` (and left out of the columns) so that the other lines can still be checked."""
    source = CsvSource(path)
    raw = next(source.chunks(problems))
    raw.notes = source.notes
    return raw
