"""What an import tells about the data it loaded: guest orders, credit notes turned into returns, returns
whose order is not in the data, country values kept as written. Each note is a Text (kpi.data.messages):
English, and told in the reader's language."""

from __future__ import annotations

from babel.numbers import format_decimal

from kpi.data.messages import Text
from kpi.i18n import tr, trn


def guests(n: int) -> Text:
    return Text(lambda lang: trn(
        lang, "{n} guest order (no customer id): counted in orders and revenue, not in customer KPIs",
        "{n} guest orders (no customer id): counted in orders and revenue, not in customer KPIs", n))


def returns(n: int, amount: float) -> Text:
    def say(lang: str) -> str:
        total = format_decimal(amount, format="#,##0.00", locale=lang or "en")
        return trn(lang, "{n} credit note or negative line loaded as a return ({amount} in all)",
                   "{n} credit notes or negative lines loaded as returns ({amount} in all)", n, amount=total)

    return Text(say)


def unmatched(n: int) -> Text:
    return Text(lambda lang: trn(
        lang, "{n} return refers to an order not in the data: counted in totals, shown as unknown in breakdowns",
        "{n} returns refer to orders not in the data: counted in totals, shown as unknown in breakdowns", n))


def countries(unknown: dict[str, int]) -> list[Text]:
    if not unknown:
        return []
    top = sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))
    shown_values, more = top[:8], len(top) - 8

    def say(lang: str) -> str:
        parts = [trn(lang, "{value} ({n} line)", "{value} ({n} lines)", k, value=repr(v)) for v, k in shown_values]
        listed = ", ".join(parts)
        if more > 0:
            listed = tr(lang, "{values} and {n} more", values=listed, n=more)
        return tr(lang, "country values not recognised, kept as written: {values}", values=listed)

    return [Text(say)]
