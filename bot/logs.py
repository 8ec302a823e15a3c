"""Secrets never reach a log line: Slack tokens and secrets are masked in every record of the Slack
libraries, at every level (slack_sdk logs whole ``oauth.v2.access`` responses, tokens included, at DEBUG)."""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"\b(xox[abposre]|xapp)-[A-Za-z0-9-]+")
_installed = False


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    text = TOKEN.sub(lambda m: m.group(1) + "-***", text)
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


def install_redaction(*secrets: str) -> None:
    """Wrap the log record factory once: records of ``slack_sdk``, ``slack_bolt`` and ``kpibot`` loggers get
    their message rendered and masked before any handler sees them."""
    global _installed
    known = tuple(s for s in secrets if s)
    previous = logging.getLogRecordFactory()
    if _installed:
        return
    _installed = True

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        if record.name.startswith(("slack_sdk", "slack_bolt", "kpibot", "urllib3")):
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is left as it is
                return record
            masked = redact(message, known + _extra)
            if masked != message:
                record.msg, record.args = masked, ()
        return record

    logging.setLogRecordFactory(factory)


_extra: tuple[str, ...] = ()


def add_secrets(*secrets: str) -> None:
    """Secrets that are not tokens (the signing and client secrets): masked too."""
    global _extra
    _extra = tuple(dict.fromkeys(_extra + tuple(s for s in secrets if s)))
