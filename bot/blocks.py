"""Block Kit rendering for KPI Bot: every kind of message, in every language of the message catalogs
(``kpi.i18n``), always within Slack's limits. The listeners call these and send the result; nothing else
builds blocks.

Each function returns a ``Message`` (``text``: the plain-text fallback, at most 3,000 characters;
``blocks``: dicts from typed ``slack_sdk.models.blocks`` objects), except ``home_view`` (a Home tab view
dict). Numbers go through ``kpi.metrics.formatting`` with the same ``lang``; data shown in mrkdwn is escaped.

The implementation lives in ``bot.render`` (one module per kind of message); this is its public API.
"""

from __future__ import annotations

from .render.answer import kpi_answer
from .render.common import MAX_BLOCKS_MESSAGE, MAX_BLOCKS_VIEW, Message, combine, fit
from .render.guide import catalog_message, definition_message, error_message, help_message
from .render.home import home_view, progress_bar

__all__ = [
    "MAX_BLOCKS_MESSAGE",
    "MAX_BLOCKS_VIEW",
    "Message",
    "catalog_message",
    "combine",
    "definition_message",
    "error_message",
    "fit",
    "help_message",
    "home_view",
    "kpi_answer",
    "progress_bar",
]
