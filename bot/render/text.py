"""The fixed strings of the Slack layer, marked for translation (``kpi.i18n``; the translations are in
``locale/``). Numbers never go through here: they go through ``kpi.metrics.formatting`` with the same ``lang``."""

from __future__ import annotations

from datetime import datetime

from kpi.i18n import COLONS, N_, colon, lang_of, tr  # noqa: F401 - COLONS, colon: the one colon rule, re-exported

# mrkdwn: & < > are written escaped (&amp; &lt; &gt;), as Slack requires
STRINGS: dict[str, str] = {
    "filters": N_("Filters"),
    "vs_previous": N_("vs previous period"),
    "vs_year": N_("vs same period last year"),
    "based_on": N_("based on {n} {noun}"),
    "sample": N_("sample: {n}"),
    "small_sample": N_(":warning: Small sample (under {min}): read this with care."),
    "as_of": N_("as of {time}"),
    "before_history": N_(":warning: The data starts on {date}: nothing to show before it."),
    "partial_history": N_(":warning: The data starts on {date}: this period is only partly covered."),
    "comparison_before_history": N_(":warning: The data starts on {date}: the comparison period is not fully covered, so the change is not judged."),
    "no_source_data": N_(":warning: No data in the source yet."),
    "not_started": N_(":hourglass_flowing_sand: No data for this period yet: the data runs up to {time}."),
    "daily_data": N_(":hourglass_flowing_sand: This KPI's data is daily: a day is counted once it is over."),
    "normal_variation": N_("within normal variation"),
    "stale": N_(":hourglass_flowing_sand: Data up to {time} only: this period is not complete in the source yet."),
    "chart_alt": N_("{name}, {period}: chart {granularity}"),
    "chart_alt_plain": N_("{name}, {period}: chart"),
    "by_day": N_("by day"),
    "by_week": N_("by week"),
    "by_month": N_("by month"),
    "by_dim": N_("By {dim}"),
    "top_of": N_("top {shown} of {total}"),
    "value": N_("value"),
    "share": N_("share"),
    "change": N_("change"),
    "other": N_("other"),
    "other_n": N_("other ({n})"),
    "rows_cut": N_("Showing {shown} of {total} rows."),
    "share_button": N_("Share in channel"),
    "read_as": N_("Read as: {reading}"),
    "did_you_mean_button": N_("Did you mean: {question}?"),
    "shared_by": N_("Shared by {user}"),
    "blocks_cut": N_("… {n} more blocks not shown (Slack shows at most {limit})."),
    "help_title": N_("KPI Bot: what you can ask"),
    "help_usage": N_("`/kpi &lt;kpi&gt; [period] [vs previous|vs last year] [by dimension]`\n    a KPI over a period (default: the last 7 days), compared and broken down\n`/kpi list`    every KPI I know, with its dimensions\n`/kpi help`    this message"),
    "help_more": N_("Also: `channel=email` to filter, `top 5` for a longer breakdown, `daily`, `weekly` or `monthly` for the chart."),
    "examples": N_("Examples"),
    "ask_freely": N_("Ask the way you would say it: the KPI, a period, `vs last year`, `on mobile`, `in France`, `by channel`, `top 5`, in any order. Each answer says how it read the question."),
    "manage_examples": N_("Goals, digests and alerts"),
    "periods": N_("Periods I understand"),
    "catalog_title": N_("KPIs you can ask for"),
    "catalog_count": N_("{n} KPIs. Ask with `/kpi &lt;name&gt;`, for example `/kpi {example}`."),
    "higher_better": N_("↑ higher is better"),
    "lower_better": N_("↓ lower is better"),
    "neutral_direction": N_("↕ neither direction is better"),
    "aliases": N_("also"),
    "dimensions": N_("by"),
    "no_dimensions": N_("no breakdown"),
    "fmt_currency": N_("amount"),
    "fmt_percent": N_("percentage"),
    "fmt_count": N_("count"),
    "fmt_ratio": N_("ratio"),
    "fmt_number": N_("number"),
    "did_you_mean": N_("Did you mean {options}?"),
    "or": N_("or"),
    "sorry": N_("Sorry, something went wrong (ref {ref})."),
    "home_title": N_("Your KPIs"),
    "updated_at": N_("Updated {time}"),
    "no_headline": N_("No headline KPI yet: mark KPIs with `headline: true` in the catalog."),
    # TRANSLATORS: a strftime pattern: the date and time the data is complete up to
    "timestamp": N_("%Y-%m-%d %H:%M %Z"),
}

# dimension names as people read them
DIMENSIONS = {"channel": N_("channel"), "device": N_("device"), "country": N_("country")}

# the measure behind a rate, as a noun: "based on 12,345 sessions"
SAMPLE_NOUNS = {
    "sessions": N_("sessions"),
    "visitors": N_("visitors"),
    "orders": N_("orders"),
    "carts": N_("carts"),
    "emails_delivered": N_("emails delivered"),
    "ordering_customers": N_("customers"),
    "lifetime_customers": N_("customers"),
    "new_customers": N_("new customers"),
    "valued_orders": N_("orders"),  # AOV's orders: those with a value
    "paid_new_customers": N_("new customers"),  # paid CAC's: those of paid channels
    "cohort_customers_12m": N_("customers"),  # the 12-month CLV's cohort
}

# questions that work, in each language's own words (they are parsed, not translated)
DEFAULT_EXAMPLES = {
    "en": ["conversion", "revenue last month vs last year", "aov this month by channel",
           "return rate last 4 weeks", "orders yesterday channel=email"],
    "fr": ["taux de conversion", "chiffre d'affaires le mois dernier vs l'an dernier", "panier moyen ce mois-ci par canal",
           "taux de retour cette semaine", "commandes hier canal=email"],
    "de": ["Konversionsrate", "Umsatz letzten Monat vs Vorjahr", "Bestellwert diesen Monat nach Kanal",
           "Retourenquote diese Woche", "Bestellungen gestern Kanal=email"],
}

# goal, digest and alert commands, in each language's own words (they are parsed, not translated)
MANAGE_EXAMPLES = {
    "en": ["goal add revenue +10% by 2026-12-31", "goal list", "digest add #growth 08:00 mon-fri",
           "alert add return rate above 8% over 7 days in #ops", "alert list"],
    "fr": ["objectif ajouter commandes +15 % ce trimestre", "objectif liste", "résumé ajouter #croissance 08:00 lun-ven",
           "alerte ajouter taux de retour au-dessus de 8 % sur 7 jours", "alerte liste"],
    "de": ["ziel hinzufügen Umsatz +10% by 2026-12-31", "ziel liste", "bericht hinzufügen #wachstum 08:00 mon-fri",
           "alarm hinzufügen Retourenquote above 8% over 7 days", "alarm liste"],
}




def t(lang: str, key: str, **values: object) -> str:
    """The string ``key`` in ``lang`` ('fr', 'fr-FR'... or English), with ``values`` filled in."""
    return tr(lang, STRINGS[key], **values)


def timestamp(lang: str, when: datetime) -> str:
    """'2026-11-24 06:00 CET', '24/11/2026 06:00 CET', '24.11.2026 06:00 CET' (the zone of ``when``)."""
    return when.strftime(t(lang, "timestamp"))


def dimension(lang: str, dim: str) -> str:
    return tr(lang, DIMENSIONS[dim]) if dim in DIMENSIONS else dim


def noun_of(lang: str, key: str | None) -> str | None:
    """'sessions', 'commandes', 'Bestellungen': the measure behind a rate, as a noun; None if unknown."""
    return tr(lang, SAMPLE_NOUNS[key]) if key in SAMPLE_NOUNS else None
