"""KPI Bot's Slack layer: turns Slack requests into calls of ``kpi`` and results into Block Kit.

It depends on ``kpi``; ``kpi`` never depends on it.
"""
