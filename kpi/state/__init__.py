"""The bot's own database (``DATABASE_URL``): goals, digest schedules, alert rules and states, the
delivery log, Slack installations.

tables      the tables (SQLAlchemy Core) and ``upgrade``: Alembic owns the schema
migrations  the Alembic migrations, run by ``kpibot db upgrade``
store       goals and digest schedules per team (every query filters by ``team_id``)
delivery    the delivery log: a notification is claimed once, then sent and recorded
lifecycle   a team paused (app uninstalled, token revoked) and resumed; Slack event ids already handled

May import: ``kpi.errors``, ``kpi.db``. Knows no KPI arithmetic and no Slack. The stores of a feature
whose rows need the feature's own types (alert rules and states) live with the feature
(``kpi.alerts.store``) and use these tables.
"""
