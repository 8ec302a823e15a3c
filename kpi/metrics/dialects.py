"""What differs between SQL dialects, and the currency rules of money sums: ``plus_interval`` (a timestamp
plus N months or days, compiled for SQLite, PostgreSQL/DuckDB/ANSI, ClickHouse and MySQL) and
``MixedCurrencies`` (the refusal of a sum over rows in several currencies)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from kpi.errors import QueryError
from kpi.i18n import N_

RATES_TABLE = "currency_rates"  # currency, rate: units of the shop's currency per unit of ``currency``
CURRENCY_COLUMN = "currency"


class MixedCurrencies(QueryError):
    """A money KPI over rows in more than one currency, with no rates table to convert them: refused rather
    than adding pounds to euros. ``missing``: currencies the rates table lacks (when there is one)."""

    def __init__(self, table: str, currencies: Sequence[str], missing: Sequence[str] = (), shown: str | None = None):
        self.table, self.currencies, self.missing = table, tuple(currencies), tuple(missing)
        if shown:  # one currency, but not the one the answers are written in
            super().__init__(N_("The amounts of {table} in this period are in {currencies}, not in the shop's currency "
                                "{shown}: they would be shown as {shown}. Add a table currency_rates (currency, rate: "
                                "units of the shop's currency per unit) to convert them."),
                             table=table, currencies=", ".join(currencies), shown=shown)
        elif missing:
            super().__init__(N_("The amounts of {table} are in several currencies ({currencies}) and the "
                                "currency_rates table has no rate for {missing}: add it to convert them."),
                             table=table, currencies=", ".join(currencies), missing=", ".join(missing))
        else:
            super().__init__(N_("The amounts of {table} in this period are in several currencies ({currencies}): "
                                "they cannot be added up. Add a table currency_rates (currency, rate: units of the "
                                "shop's currency per unit) to convert them, or ask about one currency's data."),
                             table=table, currencies=", ".join(currencies))


class plus_interval(ColumnElement):
    """``timestamp + N months`` (or days), compiled for each dialect: PostgreSQL, DuckDB and the ANSI
    dialects ``col + INTERVAL 'N months'``; SQLite ``strftime(..., col, '+N months')`` in the text form
    SQLAlchemy stores timestamps in (so that it compares with them as text); ClickHouse ``addMonths``;
    MySQL ``DATE_ADD``. Calendar months: PostgreSQL, DuckDB and ClickHouse clamp Jan 31 + 1 month to the
    month's end, SQLite rolls over into the next month (only days 29-31 differ)."""

    inherit_cache = True
    type = DateTime()
    # what SQLAlchemy's statement cache tells apart: without it, "+ 12 months" and "+ 6 months" of the same
    # column shared a cache key, and the second compiled to the first's SQL
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement), ("amount", InternalTraversal.dp_plain_obj),
                           ("unit", InternalTraversal.dp_string)]

    def __init__(self, expr, amount: int, unit: str):
        self.expr, self.amount, self.unit = expr, int(amount), unit


@compiles(plus_interval)
def _plus_interval_default(element, compiler, **kw):
    return f"({compiler.process(element.expr, **kw)} + INTERVAL '{element.amount} {element.unit}')"


@compiles(plus_interval, "sqlite")
def _plus_interval_sqlite(element, compiler, **kw):
    expr = compiler.process(element.expr, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', {expr}, '+{element.amount} {element.unit}') || '000')"


@compiles(plus_interval, "clickhouse")
@compiles(plus_interval, "clickhousedb")  # clickhouse-connect's dialect (a ClickHouse server)
@compiles(plus_interval, "chdb")  # chdb-sqlalchemy's (ClickHouse in process)
def _plus_interval_clickhouse(element, compiler, **kw):
    fn = "addMonths" if element.unit == "months" else "addDays"
    return f"{fn}({compiler.process(element.expr, **kw)}, {element.amount})"


@compiles(plus_interval, "mysql")
def _plus_interval_mysql(element, compiler, **kw):
    unit = "MONTH" if element.unit == "months" else "DAY"
    return f"DATE_ADD({compiler.process(element.expr, **kw)}, INTERVAL {element.amount} {unit})"
