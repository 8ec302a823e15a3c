"""Morning digests (DESIGN.md section 7): which are due, and what each says.

schedule    which digests are due, as a pure function of the schedules and the time
compose     a team's digest for one local day, as plain data (goals, KPIs to watch, movers)

May import: ``kpi.metrics``, ``kpi.state``, ``kpi.goals``, ``kpi.errors``, ``kpi.i18n``. No Slack: ``bot``
renders and sends a ``Digest``.
"""
