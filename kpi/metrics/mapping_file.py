"""``config/source.yaml`` read and validated (kpi.metrics.mapping applies it): every problem of the file at
once, each with its line, as the catalog's; identifiers checked before they can reach SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from kpi.data.schema import SOURCE_TABLES

from .catalog import _LineLoader
from .mapping import _COLUMN, STATUSES, TABLE_KEYS, TIME_COLUMNS, MappingError, SourceMapping, TableMapping
from .model import _IDENT


def load_mapping(path: str | Path) -> SourceMapping | None:
    """``config/source.yaml`` (or the file given); None when it is absent or maps nothing (comments only)."""
    path = Path(path)
    if path.is_dir():
        path = path / "source.yaml"
    if not path.exists():
        return None
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise MappingError([f"{path.name}: not valid YAML: {str(exc).splitlines()[0]}"]) from None
    return parse_mapping(raw, path.name)


def parse_mapping(raw: Any, path: str = "source.yaml") -> SourceMapping | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MappingError([f"{path}: needs a mapping with 'tables' (and optionally 'timezone')"])
    problems: list[str] = []

    def at(section: Any, key: Any) -> str:
        line = getattr(section, "lines", {}).get(key)
        return f"{path}:{line}" if line else path

    for key in raw:
        if key not in ("timezone", "tables"):
            problems.append(f"{at(raw, key)}: unknown setting '{key}' (known: timezone, tables)")
    zone = raw.get("timezone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{at(raw, 'timezone')}: timezone '{zone}' is not a time zone (an IANA name such as "
                            "America/New_York)")
    tables = raw.get("tables")
    if tables is None and not problems:
        return None if zone is None else SourceMapping({}, str(zone), path)
    if not isinstance(tables, dict):
        raise MappingError(problems + [f"{at(raw, 'tables')}: tables must map canonical tables "
                                       f"({', '.join(SOURCE_TABLES)}) to the shop's own"])
    out: dict[str, TableMapping] = {}
    for name, spec in tables.items():
        tm = _parse_table(str(name), spec, lambda k, s=tables, n=name: at(s.get(n), k) if isinstance(s.get(n), dict)
                          else at(s, n), at(tables, name), problems)
        if tm is not None:
            out[tm.canonical] = tm
    if problems:
        raise MappingError(problems)
    return SourceMapping(out, None if zone is None else str(zone), path)


def _parse_table(name: str, spec: Any, at, where: str, problems: list[str]) -> TableMapping | None:
    canonical = SOURCE_TABLES.get(name)
    if canonical is None:
        problems.append(f"{where}: '{name}' is not a canonical table (known: {', '.join(SOURCE_TABLES)})")
        return None
    if not isinstance(spec, dict):
        problems.append(f"{where}: {name} needs {{table: <the shop's table>, columns: {{canonical: shop's}}}}")
        return None
    start = len(problems)
    for key in spec:
        if key not in TABLE_KEYS:
            problems.append(f"{at(key)}: {name}: unknown setting '{key}' (known: {', '.join(TABLE_KEYS)})")
    table = spec.get("table")
    if not isinstance(table, str) or not _IDENT.match(table):
        problems.append(f"{at('table')}: {name}.table: '{table}' is not a table name (name or schema.name)")
        table = None
    columns: dict[str, str] = {}
    raw_cols = spec.get("columns") or {}
    if not isinstance(raw_cols, dict):
        problems.append(f"{at('columns')}: {name}.columns must map canonical columns to the shop's")
        raw_cols = {}
    for c, real in raw_cols.items():
        if c not in canonical.c:
            problems.append(f"{at('columns')}: {name}.columns: no canonical column '{c}' "
                            f"(it has: {', '.join(canonical.c.keys())})")
        elif not isinstance(real, str) or not _COLUMN.match(real):
            problems.append(f"{at('columns')}: {name}.columns.{c}: '{real}' is not a column name")
        else:
            columns[str(c)] = real
    statuses: dict[str, tuple[str, ...]] = {}
    status = spec.get("status")
    if status is not None:
        if "status" not in canonical.c:
            problems.append(f"{at('status')}: {name} has no status (only orders has)")
        elif not isinstance(status, dict) or not isinstance(status.get("column"), str) \
                or not _COLUMN.match(status["column"]):
            problems.append(f"{at('status')}: {name}.status needs {{column: <the shop's column>, cancelled: [values]}}")
        else:
            if "status" in columns and columns["status"] != status["column"]:
                problems.append(f"{at('status')}: {name}.status.column differs from columns.status")
            columns["status"] = status["column"]
            seen: dict[str, str] = {}
            for key, vals in status.items():
                if key == "column":
                    continue
                if key not in STATUSES:
                    problems.append(f"{at('status')}: {name}.status: '{key}' is not a canonical status "
                                    f"(known: {', '.join(STATUSES)})")
                    continue
                vals = [vals] if isinstance(vals, str | int) else vals
                if not isinstance(vals, list) or not vals or not all(isinstance(v, str | int) for v in vals):
                    problems.append(f"{at('status')}: {name}.status.{key} must be a list of the shop's values")
                    continue
                for v in map(str, vals):
                    if seen.get(v, key) != key:
                        problems.append(f"{at('status')}: {name}.status: '{v}' is both {seen[v]} and {key}")
                    seen[v] = key
                statuses[key] = tuple(dict.fromkeys(map(str, vals)))
    by_real: dict[str, str] = {}
    for c, real in columns.items():
        if real.lower() in by_real:
            problems.append(f"{at('columns')}: {name}: '{real}' is mapped twice ({by_real[real.lower()]} and {c})")
        by_real.setdefault(real.lower(), c)
    time_col = TIME_COLUMNS.get(name)
    if time_col and time_col not in columns:
        problems.append(f"{at('columns')}: {name}.columns must name the table's time column '{time_col}'")
    if len(problems) > start or table is None:
        return None
    schema, _, bare = table.rpartition(".")
    return TableMapping(name, bare, schema or None, columns, statuses)


__all__ = ["load_mapping", "parse_mapping"]
