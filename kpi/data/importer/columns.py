"""Which column of a file holds which field: names compared loosely (kpi.data.importer.tables.norm), the
other names real exports give a field, and ``--map FILE_COLUMN=FIELD`` for the rest."""

from __future__ import annotations

from kpi.data.messages import Text, joined, refusal
from kpi.errors import BadRow
from kpi.i18n import N_, tr, trn

from .specs import TableSpec, norm

# other names real exports give a field (compared like column names): used when no column has the
# field's own name. Google Analytics 4's report columns, line-item exports' product columns.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "traffic": {
        "day": ("date",),
        "channel": ("session_default_channel_group", "session_primary_channel_group", "default_channel_group",
                    "first_user_default_channel_group", "session_source_/_medium", "channel_group"),
        "device": ("device_category",),
        "visitors": ("total_users", "users", "active_users"),
        "carts": ("add_to_carts", "add-to-carts", "adds_to_cart"),
    },
    "orders": {
        "quantity": ("qty",),
        "unit_price": ("price",),
        "line_total": ("line_amount", "item_total"),
    },
}


def match_columns(
    path: str, header: list[str], spec: TableSpec, column_map: dict[str, str] | None
) -> tuple[dict[str, int], list[str]]:
    """Which file column holds each field (by index), and the columns left unused."""
    fields = {f.name for f in spec.fields}
    problems: list[Text] = []
    assign: dict[str, int] = {}
    normed = [norm(h) for h in header]
    for file_col, target in (column_map or {}).items():
        target_n = norm(target)
        if target_n not in fields:
            problems.append(Text(N_("--map {column}={field}: {table} has no field {name} (fields: {fields})"),
                                 column=file_col, field=target, table=spec.name, name=repr(target),
                                 fields=", ".join(sorted(fields))))
            continue
        hits = [i for i, h in enumerate(header) if h.casefold() == file_col.strip().casefold()]
        hits = hits or [i for i, h in enumerate(normed) if h == norm(file_col)]
        if not hits:
            problems.append(Text(N_("--map {column}={field}: the file has no column {name}"), column=file_col,
                                 field=target, name=repr(file_col)))
        elif len(hits) > 1:
            problems.append(Text(N_("--map {column}={field}: the file has {n} columns named {name}"), column=file_col,
                                 field=target, n=len(hits), name=repr(file_col)))
        elif target_n in assign:
            problems.append(Text(N_("--map: two columns are mapped to {field}"), field=target_n))
        else:
            assign[target_n] = hits[0]
    used = set(assign.values())
    conflicting = set()
    for f in spec.fields:
        if f.name in assign:
            continue
        hits = [i for i, h in enumerate(normed) if h == f.name and i not in used]
        if len(hits) > 1:
            conflicting.add(f.name)
            names = [repr(header[i]) for i in hits]
            problems.append(Text(N_("columns {columns} both mean {field} (--map one of them to {field})"),
                                 columns=Text(lambda lang, names=names: tr(lang, " and ").join(names)), field=f.name))
        elif hits:
            assign[f.name] = hits[0]
            used.add(hits[0])
        else:
            for other in SYNONYMS.get(spec.name, {}).get(f.name, ()):
                hits = [i for i, h in enumerate(normed) if h == norm(other) and i not in used]
                if len(hits) == 1:
                    assign[f.name] = hits[0]
                    used.add(hits[0])
                    break
    missing = [
        f.name for f in spec.fields if f.required and f.name not in assign and f.name not in conflicting
    ]
    if missing:
        found = ", ".join(repr(h) for h in header if h)
        problems.append(Text(lambda lang: trn(
            lang, "missing required column {columns} (the file has: {found}; --map FILE_COLUMN=FIELD names a "
            "column differently)", "missing required columns {columns} (the file has: {found}; --map "
            "FILE_COLUMN=FIELD names a column differently)", len(missing),
            columns=", ".join(missing), found=found or tr(lang, "none"))))
    if problems:
        raise refusal(
            path=path,
            bad_rows=[BadRow(1, joined(problems))],
            reason=Text(N_("the header does not fit {table}"), table=spec.name),
        )
    ignored = [h for i, h in enumerate(header) if i not in used and h]
    return assign, ignored
