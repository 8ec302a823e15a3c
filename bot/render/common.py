"""What every message shares: the ``Message`` type, Slack's limits, mrkdwn escaping and clipping, typed
block builders that never exceed a limit, and ``fit``, the last guard on the number of blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    ImageBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from .text import t

# Block Kit limits (/work/shared/SLACK.md); slack_sdk checks most at to_dict(), not these two:
MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_VIEW = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ALT_TEXT = 2000
IMAGE_URL = 3000
FALLBACK_TEXT = 3000  # Slack truncates around 4,000; we stay well under
ELLIPSIS = "…"


@dataclass
class Message:
    """A Slack message: ``text`` is the plain-text fallback (notifications, screen readers), ``blocks`` the
    Block Kit layout as dicts."""

    text: str
    blocks: list[dict] = field(default_factory=list)

    def as_response(self, response_type: str = "ephemeral", replace_original: bool = False) -> dict:
        """The body to POST to a ``response_url``."""
        if response_type not in ("ephemeral", "in_channel"):
            raise ValueError(f"response_type must be 'ephemeral' or 'in_channel', not {response_type!r}")
        return {"response_type": response_type, "replace_original": replace_original,
                "text": self.text, "blocks": self.blocks}

    def as_dict(self) -> dict:
        """``{"text", "blocks"}``: the arguments of chat.postMessage, and what ``bot.terminal`` renders."""
        return {"text": self.text, "blocks": self.blocks}


# -- text ------------------------------------------------------------------------------------------


def esc(text: object) -> str:
    """Escape the three characters Slack's mrkdwn reserves, so that data ("<!channel>", "a & b") is shown,
    never interpreted; and break any triple backtick in it, so that data never opens a code block."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("```", "`\u200b`\u200b`"))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis; an escape entity is never cut in half."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 5:
        cut = cut[:amp]
    return cut + ELLIPSIS


def clip_lines(lines: Sequence[str], limit: int = FALLBACK_TEXT) -> str:
    """Whole lines joined while they fit in ``limit`` characters, then an ellipsis line."""
    out: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, limit - 2)
        if size + len(line) + 1 > limit - 2:
            out.append(ELLIPSIS)
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def code(text: str) -> str:
    """Inline code: backticks inside would end it."""
    return "`" + str(text).replace("`", "'") + "`"


# -- blocks (typed slack_sdk objects, turned into dicts) -------------------------------------------


def header(text: str) -> dict:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_TEXT), emoji=True)).to_dict()


def section(text: str | None = None, *, fields: Sequence[str] = ()) -> dict:
    return SectionBlock(
        text=MarkdownTextObject(text=clip(text, SECTION_TEXT)) if text else None,
        fields=[MarkdownTextObject(text=clip(f, FIELD_TEXT)) for f in fields[:MAX_FIELDS]] or None,
    ).to_dict()


def context(*texts: str) -> dict:
    elements = [MarkdownTextObject(text=clip(x, CONTEXT_TEXT)) for x in texts if x]
    return ContextBlock(elements=elements[:CONTEXT_ELEMENTS]).to_dict()


def divider() -> dict:
    return DividerBlock().to_dict()


def image(*, alt_text: str, file_id: str | None = None, url: str | None = None) -> dict | None:
    """An image block from an uploaded file (``slack_file``) or a public URL; None when neither fits."""
    alt = clip(alt_text, ALT_TEXT)
    if file_id:
        return ImageBlock(alt_text=alt, slack_file={"id": file_id}).to_dict()
    if url and len(url) <= IMAGE_URL:
        return ImageBlock(alt_text=alt, image_url=url).to_dict()
    return None


def button_row(*buttons: tuple[str, str, str | None]) -> dict:
    """An actions block of (text, action_id, value) buttons; a value over Slack's limit is a caller's bug."""
    elements = []
    for text, action_id, value in buttons:
        if value is not None and len(value) > BUTTON_VALUE:
            raise ValueError(f"button value for {action_id} is {len(value)} characters; Slack allows {BUTTON_VALUE}")
        elements.append(ButtonElement(text=clip(text, BUTTON_TEXT), action_id=action_id, value=value))
    return ActionsBlock(elements=elements).to_dict()


def fit(blocks: list[dict], limit: int = MAX_BLOCKS_MESSAGE, *, lang: str = "en") -> list[dict]:
    """At most ``limit`` blocks: past it, the tail is replaced by a context note saying how many were
    dropped. A final actions block (the buttons) is kept."""
    if len(blocks) <= limit:
        return list(blocks)
    keep_last = bool(blocks) and blocks[-1].get("type") == "actions"
    room = limit - 1 - int(keep_last)
    body = blocks[:-1] if keep_last else blocks
    dropped = len(body) - room
    out = list(body[:room]) + [context(t(lang, "blocks_cut", n=dropped, limit=limit))]
    if keep_last:
        out.append(blocks[-1])
    return out


def combine(messages: Sequence[Message], *, lang: str = "en") -> Message:
    """Several answers as one message ("revenue and orders yesterday"), a divider between them."""
    blocks: list[dict] = []
    for i, message in enumerate(messages):
        if i:
            blocks.append(divider())
        blocks.extend(message.blocks)
    return Message(text=clip_lines([m.text for m in messages]), blocks=fit(blocks, lang=lang))
