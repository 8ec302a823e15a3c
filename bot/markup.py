"""Slack's markup in what people type, turned into the domain's plain notation at the entry.

Slack sends references in its own syntax (with ``should_escape`` on, always): ``<#C123|growth>``,
``<@U123|alice>``, ``<!here>``, ``<!subteam^S123|@growth>``. The domain (``kpi``) knows nothing of Slack:
it reads the plain notation a person would type in a terminal, ``#growth`` / ``#C123``, ``@U123``,
``@here``, ``@S123``. Every text that comes from Slack and reaches a domain parser (command text, form
fields) goes through :func:`from_slack` once.
"""

from __future__ import annotations

import html
import re

# Slack's markup, and the same typed by hand (which Slack sends HTML-escaped: &lt;@U123&gt;)
_REF = re.compile(r"(?:<|&lt;)([#@!])([^<>|&]*)(?:\|([^<>&]*))?(?:>|&gt;)")


def _plain(m: re.Match) -> str:
    sigil, ref, label = m[1], m[2], m[3]
    if sigil == "#" and re.fullmatch(r"[CG][A-Z0-9]+", ref):
        return "#" + ref
    if sigil == "@" and re.fullmatch(r"[UW][A-Z0-9]+", ref):
        return "@" + ref
    if sigil == "!":
        if ref in ("here", "channel", "everyone"):
            return "@" + ref
        if ref.startswith("subteam^") and re.fullmatch(r"S[A-Z0-9]+", ref[8:]):
            return "@" + ref[8:]
    return m[0] if label is None else label  # a link or a date: its label is what the person sees


def to_plain(text: str) -> str:
    """``<#C123|growth>`` -> ``#C123``, ``<@U123|al>`` -> ``@U123``, ``<!here>`` -> ``@here``,
    ``<!subteam^S1|@team>`` -> ``@S1``; anything else is left as it is."""
    return _REF.sub(_plain, text or "")


def from_slack(text: str) -> str:
    """A text as Slack sends it (command text: references in Slack's markup, and what the user typed with
    ``&``, ``<``, ``>`` escaped as ``&amp;``, ``&lt;``, ``&gt;``) -> what the user meant, in plain notation.
    Called once, where a Slack text enters the app."""
    return html.unescape(to_plain(text))


__all__ = ["from_slack", "to_plain"]
