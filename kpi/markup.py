"""Slack's markup in what people type, read without Slack: ``<#C123|growth>`` or ``#growth`` channels.

(Text only: the domain never calls Slack.)"""

from __future__ import annotations

import re

CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>|(?<![\w&#])#([\w][\w\-]*)")


def take_channels(raw: str) -> tuple[list[tuple[str | None, str | None]], str]:
    """Every channel the text names, as (id, name) pairs (one of them None), and the text with each
    replaced by a separator so that what remains still parses."""
    found: list[tuple[str | None, str | None]] = []

    def take(m: re.Match) -> str:
        found.append((m[1], m[2].lower() if m[2] else None))
        return " | "

    return found, CHANNEL.sub(take, raw)
