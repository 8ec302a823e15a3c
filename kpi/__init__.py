"""KPI Bot's domain: the KPI catalog and engine, periods, import, demo data and the bot's own state.

Nothing in this package imports Slack: it takes plain values and returns plain dataclasses that the
command line, the Slack layer (``bot/``), the worker and the tests all share.
"""

__version__ = "0.1.0"
