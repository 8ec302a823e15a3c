"""What can be asked (/kpi help), the KPI catalog (/kpi list), and errors: an unknown KPI with
suggestions, an unknown period with the accepted forms, a failed query with a reference (never a trace)."""

from __future__ import annotations

import re

from kpi.i18n import lang_of
from kpi.metrics.catalog import Catalog, Metric
from kpi.metrics.definitions import definition_lines
from kpi.metrics.periods import ACCEPTED_FORMS

from .common import (
    FIELD_TEXT,
    MAX_FIELDS,
    SECTION_TEXT,
    Message,
    clip,
    clip_lines,
    code,
    context,
    esc,
    fit,
    header,
    section,
)
from .text import DEFAULT_EXAMPLES, MANAGE_EXAMPLES, colon, dimension, t

MAX_EXAMPLES = 10
MAX_SUGGESTIONS = 5
_TRACE = re.compile(r"Traceback \(most recent call last\)|^\s*File \".*\", line \d+", re.MULTILINE)


def help_message(*, lang: str = "en", examples: list[str] | None = None) -> Message:
    lang = lang_of(lang)
    if examples is None:
        examples = DEFAULT_EXAMPLES.get(lang, DEFAULT_EXAMPLES["en"])
    shown = [_command(e) for e in examples][:MAX_EXAMPLES]
    forms = ACCEPTED_FORMS.get(lang, ACCEPTED_FORMS["en"])
    blocks = [header(t(lang, "help_title")), section(t(lang, "help_usage"))]
    if shown:
        blocks.append(section(f"*{t(lang, 'examples')}*\n" + "\n".join(f"• {code(esc(e))}" for e in shown)))
    blocks.append(context(t(lang, "ask_freely")))
    manage = [_command(e) for e in MANAGE_EXAMPLES.get(lang, MANAGE_EXAMPLES["en"])]
    blocks.append(section(f"*{t(lang, 'manage_examples')}*\n" + "\n".join(f"• {code(esc(e))}" for e in manage)))
    blocks.append(section(code_list(t(lang, "periods"), forms)))
    blocks.append(context(t(lang, "help_more")))
    text = clip_lines([t(lang, "help_title"), _unmark(t(lang, "help_usage")), *map(esc, shown)])
    return Message(text=text, blocks=fit(blocks, lang=lang))


def definition_message(definition, *, lang: str = "en") -> Message:
    """``/kpi define <kpi>``: the formula, each measure with its table and conditions, and the rules."""
    lang = lang_of(lang)
    blocks = [header(definition.name), section(code(esc(definition.formula)))]
    if getattr(definition, "description", ""):  # the catalog's definition in words (as written there)
        blocks.append(section(clip(esc(definition.description), SECTION_TEXT)))
    if definition.parts:
        blocks.append(section(clip("\n".join(f"• {esc(p)}" for p in definition.parts), SECTION_TEXT)))
    if definition.notes:
        blocks.append(context(*[esc(n) for n in definition.notes]))
    return Message(text=clip_lines([esc(line) for line in definition_lines(definition)]), blocks=fit(blocks, lang=lang))


def catalog_message(catalog: Catalog, *, lang: str = "en") -> Message:
    """Every KPI as a section field (ten per section): its name and key, format and better direction,
    main aliases and dimensions. Past 50 blocks, ``fit`` cuts with a note."""
    lang = lang_of(lang)
    metrics = list(catalog.metrics.values())
    example = next(iter(metrics)).key.replace("_", " ") if metrics else "conversion"
    blocks = [header(t(lang, "catalog_title")), context(t(lang, "catalog_count", n=len(metrics), example=example))]
    fields = [_metric_field(catalog, m, lang) for m in metrics]
    for i in range(0, len(fields), MAX_FIELDS):
        blocks.append(section(fields=fields[i: i + MAX_FIELDS]))
    text = clip_lines([t(lang, "catalog_title")] + [esc(f"{m.name(lang)} ({m.key})") for m in metrics])
    return Message(text=text, blocks=fit(blocks, lang=lang))


def error_message(text: str, *, lang: str = "en", suggestions: list[str] | None = None,
                  accepted: list[str] | None = None, ref: str | None = None) -> Message:
    """``text`` is shown as data (escaped: a KPI name typed as "<!channel>" pings nobody). With ``ref``
    the message is "Sorry, something went wrong (ref …)", ``text`` following as a detail; anything that
    looks like a stack trace is cut off."""
    lang = lang_of(lang)
    detail = _no_trace(text)
    head = t(lang, "sorry", ref=ref) if ref else detail
    lines = [f":warning: {esc(head)}"]
    if ref and detail:
        lines.append(esc(detail))
    plain = [esc(head)] + ([esc(detail)] if ref and detail else [])
    if suggestions:
        options = f" {t(lang, 'or')} ".join(code(esc(_command(s))) for s in suggestions[:MAX_SUGGESTIONS])
        lines.append(t(lang, "did_you_mean", options=options))
        plain.append(_unmark(t(lang, "did_you_mean", options=options)))
    blocks = [section(clip("\n".join(lines), SECTION_TEXT))]
    if accepted:
        blocks.append(section(code_list(t(lang, "periods"), accepted)))
        plain.append(f"{t(lang, 'periods')}{colon(lang)}{esc(', '.join(accepted))}")
    return Message(text=clip_lines(plain), blocks=fit(blocks, lang=lang))


def code_list(title: str, items: list[str], limit: int = SECTION_TEXT) -> str:
    """'*Title*\n`a`, `b`, …' within ``limit`` characters."""
    out = f"*{esc(title)}*\n"
    parts: list[str] = []
    for item in items:
        part = code(esc(item))
        if len(out) + len(", ".join([*parts, part])) > limit - 2:
            parts.append("…")
            break
        parts.append(part)
    return out + ", ".join(parts)


def _metric_field(catalog: Catalog, m: Metric, lang: str) -> str:
    better = t(lang, "neutral_direction" if m.higher_is_better is None
               else "higher_better" if m.higher_is_better else "lower_better")
    aliases = [a for a in (m.aliases.get(lang) or m.aliases.get("en") or [])
               if a.lower() not in (m.name(lang).lower(), m.key.replace("_", " "))][:4]
    dims = [dimension(lang, d) for d in catalog.dimensions_of(m)]
    lines = [f"*{esc(m.name(lang))}*  {code(m.key)}", f"{t(lang, 'fmt_' + m.format)} · {better}"]
    if aliases:
        lines.append(f"{t(lang, 'aliases')}{colon(lang)}" + ", ".join(esc(a) for a in aliases))
    lines.append(f"{t(lang, 'dimensions')}{colon(lang)}{esc(', '.join(dims))}" if dims else t(lang, "no_dimensions"))
    return clip("\n".join(lines), FIELD_TEXT)


def _command(text: str) -> str:
    text = " ".join(str(text).split())
    return clip(text if text.startswith("/") else f"/kpi {text}", 200)


def _no_trace(text: str) -> str:
    text = (text or "").strip()
    match = _TRACE.search(text)
    if match:
        text = text[: match.start()].strip()
    return clip("\n".join(text.splitlines()[:5]), 1000)


def _unmark(text: str) -> str:
    return text.replace("`", "").replace("*", "")
