"""A small ``multipart/form-data`` reader on the standard library's email parser (``cgi`` is gone)."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.parser import BytesParser

__all__ = ["Part", "parse_multipart"]


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart body; [] when it is not one."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return []
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        payload = part.get_payload(decode=True)
        parts.append(Part(str(name), part.get_filename(), payload if isinstance(payload, bytes) else b""))
    return parts
