"""Slack messages and views shown readably in a terminal, for the ``kpibot demo`` sandbox.

``render_message({"text": ..., "blocks": [...]})`` draws what Slack would show: headers underlined,
mrkdwn (*bold*, _italic_, `code`, ``` blocks) kept readable, emoji shortcodes as Unicode, fields in two
columns, context dimmed, images as ``[chart: alt] (file F123)``, buttons as ``[ Share in channel ]``,
dividers as a line. ANSI styles only with ``color=True``. The few words the terminal adds itself ("chart",
"file", "[App Home]") are in ``lang``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from kpi.i18n import tr

EMOJI = {
    "large_green_circle": "🟢", "red_circle": "🔴", "white_circle": "⚪", "large_yellow_circle": "🟡",
    "large_orange_circle": "🟠", "chart_with_upwards_trend": "📈", "chart_with_downwards_trend": "📉",
    "bar_chart": "📊", "warning": "⚠️", "hourglass_flowing_sand": "⏳", "hourglass": "⌛", "x": "❌",
    "white_check_mark": "✅", "heavy_check_mark": "✔️", "rotating_light": "🚨", "bell": "🔔",
    "no_bell": "🔕", "dart": "🎯", "calendar": "📅", "clock8": "🕗", "mag": "🔍", "bulb": "💡",
    "information_source": "ℹ️", "arrow_up": "⬆️", "arrow_down": "⬇️", "arrow_right": "➡️",
    "memo": "📝", "zzz": "💤", "tada": "🎉", "house": "🏠", "eyes": "👀", "sleeping": "😴",
}
_STYLE = {"bold": "\x1b[1m", "italic": "\x1b[3m", "dim": "\x1b[2m", "code": "\x1b[36m", "underline": "\x1b[4m",
          "reset": "\x1b[0m"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_SHORTCODE = re.compile(r":([a-z0-9_+\-]+):")
_ANGLE = re.compile(r"<([^<>]+)>")


def render_message(message: dict, *, width: int = 80, color: bool = False, lang: str = "en") -> str:
    """A message (``text`` and ``blocks``, optionally ``attachments``) as terminal text."""
    blocks = message.get("blocks") or []
    out = _blocks(blocks, width, color, lang) if blocks else _mrkdwn(message.get("text") or "", width, color)
    for att in message.get("attachments") or []:
        inner = _blocks(att.get("blocks") or [], width - 2, color, lang) if att.get("blocks") else \
            _mrkdwn(att.get("text") or att.get("fallback") or "", width - 2, color)
        out += ["┃ " + line for line in inner]
    return "\n".join(out)


def render_view(view: dict, *, width: int = 80, color: bool = False, lang: str = "en") -> str:
    """An App Home view or a modal as terminal text."""
    out: list[str] = []
    title = (view.get("title") or {}).get("text")
    if view.get("type") == "home":
        out += [_style(tr(lang, "[App Home]"), "dim", color), ""]
    elif title:
        out += _header(title, width, color) + [""]
    out += _blocks(view.get("blocks") or [], width, color, lang)
    buttons = [(view.get(k) or {}).get("text") for k in ("close", "submit")]
    if any(buttons):
        out += ["", "  ".join(f"[ {b} ]" for b in buttons if b)]
    return "\n".join(out)


# -- blocks ----------------------------------------------------------------------------------------


def _blocks(blocks: Iterable[dict], width: int, color: bool, lang: str) -> list[str]:
    out: list[str] = []
    for block in blocks:
        lines = _block(block, width, color, lang)
        if out and lines:
            out.append("")
        out += lines
    return out


def _block(block: dict, width: int, color: bool, lang: str) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return _header(_text_of(block.get("text")), width, color)
    if kind == "section":
        lines = _mrkdwn(_text_of(block.get("text")), width, color) if block.get("text") else []
        if block.get("fields"):
            lines += _columns([_mrkdwn(_text_of(f), (width - 3) // 2, color) for f in block["fields"]], width)
        if block.get("accessory"):
            lines.append(_element(block["accessory"], lang))
        return lines
    if kind == "context":
        parts = [_element(e, lang) if e.get("type") == "image" else _inline(_text_of(e), color)
                 for e in block.get("elements") or []]
        wrapped = _wrap("  ".join(parts), width - 2)
        return ["  " + _style(line, "dim", color) for line in wrapped]
    if kind == "image":
        return _wrap(_element(block, lang), width)
    if kind == "actions":
        return _wrap("  ".join(_element(e, lang) for e in block.get("elements") or []), width)
    if kind == "divider":
        return ["─" * width]
    if kind == "rich_text":
        return _mrkdwn(_rich_text(block), width, color)
    if kind == "input":
        label = _text_of(block.get("label"))
        return [_style(label, "bold", color), "[" + "_" * max(10, min(40, width - 2)) + "]"]
    return [tr(lang, "[{kind} block]", kind=kind)]


def _header(text: str, width: int, color: bool) -> list[str]:
    lines = _wrap(text, width)
    if color:
        return [_STYLE["bold"] + _STYLE["underline"] + line + _STYLE["reset"] for line in lines]
    return lines + ["═" * min(width, max(_width(line) for line in lines))]


def _element(e: dict, lang: str) -> str:
    kind = e.get("type")
    if kind == "button":
        return f"[ {_text_of(e.get('text'))} ]"
    if kind == "image":
        source = e.get("slack_file") or {}
        where = (tr(lang, "file {id}", id=source["id"]) if source.get("id") else source.get("url")) \
            or e.get("image_url") or "?"
        title = _text_of(e.get("title"))
        alt = e.get("alt_text") or ""
        if any(word in alt.lower() for word in ("chart", "graph", "diagramm")):  # graphique, Diagramm too
            label = tr(lang, "[chart: {alt}]", alt=alt)
        else:
            label = tr(lang, "[image: {alt}]", alt=alt)
        return label + (f" {title}" if title else "") + f" ({where})"
    if kind in ("static_select", "external_select", "users_select", "channels_select", "conversations_select",
                "overflow", "datepicker", "timepicker"):
        return f"[ {_text_of(e.get('placeholder')) or kind} ▾ ]"
    return f"[{kind}]"


def _columns(cells: list[list[str]], width: int) -> list[str]:
    """Fields two by two, the left one padded to half the width."""
    col = (width - 3) // 2
    out: list[str] = []
    for i in range(0, len(cells), 2):
        left, right = cells[i], cells[i + 1] if i + 1 < len(cells) else []
        if out:
            out.append("")
        for j in range(max(len(left), len(right))):
            a = left[j] if j < len(left) else ""
            b = right[j] if j < len(right) else ""
            out.append((a + " " * (col - _width(a)) + "   " + b).rstrip() if b else a)
    return out


def _rich_text(block: dict) -> str:
    parts: list[str] = []

    def walk(node: dict) -> None:
        if node.get("type") == "text":
            parts.append(node.get("text", ""))
        elif node.get("type") == "user":
            parts.append(f"<@{node.get('user_id')}>")
        elif node.get("type") == "emoji":
            parts.append(f":{node.get('name')}:")
        elif node.get("type") == "link":
            parts.append(node.get("text") or node.get("url", ""))
        for child in node.get("elements") or []:
            walk(child)
        if node.get("type") in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
            parts.append("\n")

    walk(block)
    return "".join(parts).strip()


# -- mrkdwn ----------------------------------------------------------------------------------------


def _mrkdwn(text: str, width: int, color: bool) -> list[str]:
    """mrkdwn to lines: code blocks kept verbatim (indented by a bar), the rest styled and wrapped."""
    out: list[str] = []
    pos = 0
    for m in _FENCE.finditer(text):
        out += _paragraphs(text[pos: m.start()], width, color)
        body = _unescape(m.group(1).strip("\n"))
        out += ["│ " + (_style(line, "code", color) if color else line) for line in body.split("\n")]
        pos = m.end()
    out += _paragraphs(text[pos:], width, color)
    return out


def _paragraphs(text: str, width: int, color: bool) -> list[str]:
    if not text.strip("\n"):
        return []
    out: list[str] = []
    for raw in text.strip("\n").split("\n"):
        out += _wrap(_inline(raw, color), width) if raw.strip() else [""]
    return out


def _inline(text: str, color: bool) -> str:
    """One line of mrkdwn: inline code untouched (backticks kept without colour), everything else with
    links, mentions and emoji resolved and *bold* / _italic_ / ~strike~ styled (or their marks dropped)."""
    out = []
    for i, part in enumerate(_INLINE_CODE.split(text)):
        if i % 2:
            inner = _unescape(part[1:-1])
            out.append(_style(inner, "code", color) if color else f"`{inner}`")
            continue
        part = _ANGLE.sub(_angle, part)
        part = _SHORTCODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), part)
        part = _BOLD.sub(lambda m: _style(m.group(1), "bold", color), part)
        part = _ITALIC.sub(lambda m: _style(m.group(1), "italic", color), part)
        part = _STRIKE.sub(lambda m: f"\x1b[9m{m.group(1)}\x1b[0m" if color else m.group(1), part)
        out.append(_unescape(part))
    return "".join(out)


def _angle(m: re.Match) -> str:
    """<@U123> -> @U123, <#C1|general> -> #general, <!here> -> @here, <url|label> -> label (url)."""
    inner = m.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        return label or "@" + target[1:].split("^")[0]
    return f"{label} ({target})" if label else target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: object) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return str(obj or "")


def _style(text: str, style: str, color: bool) -> str:
    return f"{_STYLE[style]}{text}{_STYLE['reset']}" if color and text else text


# -- widths ----------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns a string takes in a terminal: ANSI codes none, wide characters (emoji, CJK) two."""
    total = 0
    for ch in _ANSI.sub("", text):
        if unicodedata.combining(ch) or ch in "\ufe0f\u200d":
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap by display width; leading indentation is kept on continuation lines."""
    width = max(width, 10)
    indent = text[: len(text) - len(text.lstrip(" "))]
    lines: list[str] = []
    line = ""
    for word in text.strip(" ").split(" "):
        candidate = f"{line} {word}" if line else indent + word
        if line and _width(candidate) > width:
            lines.append(line)
            line = indent + word
        else:
            line = candidate
    lines.append(line)
    return lines
