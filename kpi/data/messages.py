"""What the importer tells people, in English and in the reader's language.

A reason ("subtotal 'x' is not a number") is a :class:`Text`: a ``str`` holding the English text, so
``str(exc)``, comparisons and logs see the English exactly, that remembers its gettext msgid and values,
so ``text.localized(lang)`` tells it in another language::

    Text(N_("{name} is empty"), name=name)                              a msgid and its values
    Text(lambda lang: trn(lang, "{n} line", "{n} lines", n))             anything worded per language
    joined(reasons)                                                      several, in one line: "a; b"

``refusal(path, reason, bad_rows)`` builds the ``ImportRefused`` to raise; ``exc.localized(lang)`` tells it in
a language (``str(exc)`` is the English).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kpi.errors import BadRow, ImportRefused
from kpi.i18n import tr


class Text(str):
    """English text (the string itself) that can be told in another language: ``localized(lang)``.
    ``msgid`` is a gettext msgid (marked with ``N_`` where it is written) filled in with ``values`` (a
    value may be a Text too), or a function of the language (plurals: ``lambda lang: trn(...)``)."""

    msgid: str | Callable[[str], str]
    values: dict[str, object]

    def __new__(cls, msgid: str | Callable[[str], str], /, **values: object) -> Text:
        english = msgid("en") if callable(msgid) else tr("en", msgid, **values)
        self = super().__new__(cls, english)
        self.msgid = msgid
        self.values = values
        return self

    def localized(self, lang: str | None = "en") -> str:
        if callable(self.msgid):
            return self.msgid(lang or "en")
        return tr(lang, self.msgid, **{k: told(v, lang) for k, v in self.values.items()})

    def __reduce__(self):  # a copy or a pickle keeps the English only
        return (str, (str(self),))


def told(text: object, lang: str | None) -> str:
    """``text`` in ``lang`` when it is a :class:`Text`, else as it is."""
    return text.localized(lang) if isinstance(text, Text) else str(text)


def joined(parts: Iterable[object]) -> Text:
    """Several reasons in one, separated by "; " (the language's punctuation), each in the reader's language."""
    parts = list(parts)
    return Text(lambda lang: tr(lang, "; ").join(told(p, lang) for p in parts))


def refusal(path: str, reason: str | Text = "", bad_rows: list[BadRow] | None = None) -> ImportRefused:
    """``ImportRefused(path=..., bad_rows=..., reason=...)``, to be raised. Raise this rather than build the
    error in place: Babel's extractor loses the marked messages nested in a call of ``ImportRefused``
    (one of its keywords, whose message it expects first), and finds them in this one."""
    return ImportRefused(path=path, bad_rows=list(bad_rows or []), reason=reason)
