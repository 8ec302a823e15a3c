"""Reading a CSV file into text columns, knowing the file line of every record.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kpi.data.messages import Text, refusal
from kpi.errors import BadRow
from kpi.i18n import N_, trn

from .values import Problems

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

    @property
    def n_rows(self) -> int:
        return len(self.lines)


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(path: str, data: bytes) -> tuple[str, str, list[Text]]:
    """The text of the file, the encoding used, and notes for the user."""
    notes: list[Text] = []
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8-sig", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16", notes
        except UnicodeDecodeError:
            raise refusal(
                path=path, reason=Text(N_("the file starts like UTF-16 but is not valid UTF-16"))
            ) from None
    else:
        encoding, body = "utf-8", data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of_offset(body, exc.start)
        if encoding == "utf-8-sig":
            raise refusal(
                path=path,
                bad_rows=[BadRow(line, Text(N_("byte {byte} is not valid UTF-8"), byte=f"0x{body[exc.start]:02x}"))],
                reason=Text(N_("the file says it is UTF-8 (it starts with a byte-order mark) but is not")),
            ) from None
        try:
            text = body.decode("cp1252")
        except UnicodeDecodeError as exc2:
            raise refusal(
                path=path,
                bad_rows=[BadRow(_line_of_offset(body, exc2.start),
                                 Text(N_("byte {byte}"), byte=f"0x{body[exc2.start]:02x}"))],
                reason=Text(N_("the file is neither UTF-8 nor Windows-1252 text: save it as CSV UTF-8")),
            ) from None
        encoding = "cp1252"
        notes.append(Text(N_("the file is not UTF-8 (line {line}); it was read as Windows-1252 (Western European)"),
                          line=line))
    if "\x00" in text:
        raise refusal(
            path=path,
            bad_rows=[BadRow(text.count("\n", 0, text.index("\x00")) + 1, Text(N_("NUL character")))],
            reason=Text(N_("the file contains NUL characters (a binary file, or UTF-16 without a byte-order mark?)")),
        )
    return text, encoding, notes


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


def read_file(path: str | Path, problems: Problems) -> RawFile:
    """Decode and tokenise ``path``; lines with the wrong number of fields are recorded in ``problems``
    (and left out of the columns) so that the other lines can still be checked."""
    spath = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise refusal(path=spath, reason=Text(N_("no such file"))) from None
    except OSError as exc:
        raise refusal(path=spath, reason=Text(N_("cannot read the file: {error}"), error=exc.strerror or exc)) from None
    if not data.strip():
        raise refusal(path=spath, reason=Text(N_("the file is empty")))
    text, encoding, notes = decode(spath, data)
    text, skipped = skip_comments(text)
    if not text.strip():
        raise refusal(path=spath, reason=Text(N_("the file has only comment lines, no header")))
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million small lists: the cyclic collector only slows their creation down
    try:
        starts = None
        try:
            records = list(reader)
        except csv.Error:
            # read again record by record: keep every record that parses (so that their own problems are
            # named too), and name the line where the broken one starts (an unclosed quote opens there)
            records, starts_list, previous = [], [], 0
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
            try:
                for rec in reader:
                    records.append(rec)
                    starts_list.append(previous + 1)
                    previous = reader.line_num
            except csv.Error as exc:
                if not records:
                    raise refusal(path=spath,
                                        bad_rows=[BadRow(previous + 1, Text(N_("cannot be read as CSV: {error}"),
                                                                            error=exc))],
                                        reason=Text(N_("the file is not valid CSV"))) from None
                problems.add(previous + 1, Text(N_("not valid CSV from this line on ({error}): a quoted value "
                                                   "that never closes?"), error=exc))
            starts = np.asarray(starts_list, dtype=np.int64)
        physical = text.count("\n") + (0 if text.endswith("\n") else 1)
        if starts is not None:
            pass
        elif len(records) == physical:
            starts = np.arange(1, len(records) + 1, dtype=np.int64)
        else:  # quoted values span lines: ask the reader where each record starts
            starts_list = []
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
            previous = 0
            for _ in reader:
                starts_list.append(previous + 1)
                previous = reader.line_num
            starts = np.asarray(starts_list, dtype=np.int64)
        if skipped:
            starts = starts + skipped
        header = [h.strip() for h in records[0]]
        if not any(header):
            raise refusal(
                path=spath,
                bad_rows=[BadRow(1, Text(N_("empty")))],
                reason=Text(N_("the first line should hold the column names")),
            )
        width = len(header)
        body = records[1:]
        lines = starts[1:]
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
        columns = [pd.Series(list(map(str.strip, c)), dtype="str") for c in columns_raw]
        del columns_raw, body, records
    finally:
        if gc_was_enabled:
            gc.enable()
    if columns and len(lines):
        empty = np.logical_and.reduce([(c == "").to_numpy(dtype=bool) for c in columns])
        if empty.any():  # spreadsheet exports end with lines of empty cells
            blank += int(empty.sum())
            columns = [c[~empty].reset_index(drop=True) for c in columns]
            lines = lines[~empty]
    if blank:
        notes.append(Text(lambda lang, n=blank: trn(lang, "{n} empty line skipped", "{n} empty lines skipped", n)))
    if delimiter != ",":
        notes.append(Text(_SEPARATED[delimiter]))
    return RawFile(spath, header, columns, lines, encoding, delimiter, notes)
