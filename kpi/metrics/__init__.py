"""The metrics layer: what a KPI is and how a question about it is answered.

catalog     the KPI catalog (``config/metrics.yaml``): measures, simple, ratio and derived metrics, validated
periods     "last 7 days", "octobre", "letzte Woche", "Q3 2026" as half-open local ranges (pure)
query       a question's text -> a ``KpiRequest`` (KPI, period, comparison, filters, breakdown)
sql         the one place SQL is built: measure aggregates over time ranges, per dialect
engine      measure aggregates -> KPI values, changes, breakdowns and series (plain dataclasses)
formatting  numbers, changes and plain-text answers per locale (Babel)

May import: ``kpi.errors``, ``kpi.i18n``, ``kpi.refs`` and the canonical schema ``kpi.data.schema``.
Knows no goal, alert, digest or state table.
"""
