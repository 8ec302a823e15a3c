"""Channels and people named in plain text: ``#growth`` or ``#C0123ABC`` (a channel id: Slack's ids are
upper case with digits, its channel names never have capitals), ``@U0123ABC`` (a user id), ``@here``, ``@alice``.

This is the notation of the command line and of ``config/``; the Slack layer turns Slack's own markup
(``<#C123|growth>``, ``<@U123>``) into it before any text reaches a parser of the domain.
"""

from __future__ import annotations

import re

USER_ID = r"[UW](?=[A-Z]*[0-9]|[A-Z0-9]{2})[A-Z0-9]+"  # U123, W9, UABC
CHANNEL = re.compile(r"(?<![\w&#])#([CG][A-Z]*[0-9][A-Z0-9]*)\b|(?<![\w&#])#([\w][\w\-]*)")


def take_channels(raw: str) -> tuple[list[tuple[str | None, str | None]], str]:
    """Every channel the text names, as (id, name) pairs (one of them None), and the text with each
    replaced by a separator so that what remains still parses."""
    found: list[tuple[str | None, str | None]] = []

    def take(m: re.Match) -> str:
        found.append((m[1], m[2].lower() if m[2] else None))
        return " | "

    return found, CHANNEL.sub(take, raw)


__all__ = ["take_channels"]
