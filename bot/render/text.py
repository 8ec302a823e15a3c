"""The fixed strings of the Slack layer, in English and French. Numbers never go through here: they go
through ``kpi.metrics.formatting`` with the same ``lang``."""

from __future__ import annotations

from kpi.metrics.formatting import lang_of

# mrkdwn: & < > are written escaped (&amp; &lt; &gt;), as Slack requires
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        # answers
        "filters": "Filters",
        "vs_previous": "vs previous period",
        "vs_year": "vs same period last year",
        "based_on": "based on {n} {noun}",
        "sample": "sample: {n}",
        "small_sample": ":warning: Small sample (under {min}): read this with care.",
        "as_of": "as of {time}",
        "no_source_data": ":warning: No data in the source yet.",
        "stale": ":hourglass_flowing_sand: Data up to {time} only: this period is not complete in the source yet.",
        "chart_alt": "{name}, {period}: chart {granularity}", "chart_alt_plain": "{name}, {period}: chart",
        "by_day": "by day", "by_week": "by week", "by_month": "by month",
        "by_dim": "By {dim}",
        "top_of": "top {shown} of {total}",
        "value": "value", "share": "share", "change": "change",
        "other": "other", "other_n": "other ({n})",
        "rows_cut": "Showing {shown} of {total} rows.",
        "share_button": "Share in channel",
        "shared_by": "Shared by {user}",
        "blocks_cut": "… {n} more blocks not shown (Slack shows at most {limit}).",
        # help
        "help_title": "KPI Bot: what you can ask",
        "help_usage": ("`/kpi &lt;kpi&gt; [period] [vs previous|vs last year] [by dimension]`\n"
                       "    a KPI over a period (default: the last 7 days), compared and broken down\n"
                       "`/kpi list`    every KPI I know, with its dimensions\n"
                       "`/kpi help`    this message"),
        "help_more": "Also: `channel=email` to filter, `top 5` for a longer breakdown, `daily`, `weekly` or `monthly` for the chart.",
        "examples": "Examples",
        "periods": "Periods I understand",
        # catalog
        "catalog_title": "KPIs you can ask for",
        "catalog_count": "{n} KPIs. Ask with `/kpi &lt;name&gt;`, for example `/kpi {example}`.",
        "higher_better": "↑ higher is better", "lower_better": "↓ lower is better",
        "aliases": "also", "dimensions": "by",
        "no_dimensions": "no breakdown",
        "fmt_currency": "amount", "fmt_percent": "percentage", "fmt_count": "count", "fmt_ratio": "ratio",
        "fmt_number": "number",
        # errors
        "did_you_mean": "Did you mean {options}?",
        "or": "or",
        "sorry": "Sorry, something went wrong (ref {ref}).",
        # home
        "home_title": "Your KPIs",
        "updated_at": "Updated {time}",
        "no_headline": "No headline KPI yet: mark KPIs with `headline: true` in the catalog.",
    },
    "fr": {
        "filters": "Filtres",
        "vs_previous": "vs période précédente",
        "vs_year": "vs même période l'an dernier",
        "based_on": "sur {n} {noun}",
        "sample": "échantillon : {n}",
        "small_sample": ":warning: Petit échantillon (moins de {min}) : à lire avec prudence.",
        "as_of": "données au {time}",
        "no_source_data": ":warning: Aucune donnée dans la source pour l'instant.",
        "stale": ":hourglass_flowing_sand: Données jusqu'au {time} seulement : cette période n'est pas encore complète dans la source.",
        "chart_alt": "{name}, {period} : graphique {granularity}", "chart_alt_plain": "{name}, {period} : graphique",
        "by_day": "par jour", "by_week": "par semaine", "by_month": "par mois",
        "by_dim": "Par {dim}",
        "top_of": "{shown} premiers sur {total}",
        "value": "valeur", "share": "part", "change": "évolution",
        "other": "autres", "other_n": "autres ({n})",
        "rows_cut": "{shown} lignes affichées sur {total}.",
        "share_button": "Partager dans le canal",
        "shared_by": "Partagé par {user}",
        "blocks_cut": "… {n} blocs de plus non affichés (Slack en affiche {limit} au plus).",
        "help_title": "KPI Bot : ce que vous pouvez demander",
        "help_usage": ("`/kpi &lt;kpi&gt; [période] [vs précédente|vs l'an dernier] [par dimension]`\n"
                       "    un KPI sur une période (par défaut les 7 derniers jours), comparé et détaillé\n"
                       "`/kpi list`    tous les KPI que je connais, avec leurs dimensions\n"
                       "`/kpi help`    ce message"),
        "help_more": "Aussi : `canal=email` pour filtrer, `top 5` pour un détail plus long, `par jour`, `par semaine` ou `par mois` pour le graphique.",
        "examples": "Exemples",
        "periods": "Périodes comprises",
        "catalog_title": "Les KPI que vous pouvez demander",
        "catalog_count": "{n} KPI. Demandez avec `/kpi &lt;nom&gt;`, par exemple `/kpi {example}`.",
        "higher_better": "↑ plus haut = mieux", "lower_better": "↓ plus bas = mieux",
        "aliases": "aussi", "dimensions": "par",
        "no_dimensions": "pas de détail",
        "fmt_currency": "montant", "fmt_percent": "pourcentage", "fmt_count": "nombre", "fmt_ratio": "ratio",
        "fmt_number": "nombre",
        "did_you_mean": "Vouliez-vous dire {options} ?",
        "or": "ou",
        "sorry": "Désolé, une erreur s'est produite (réf. {ref}).",
        "home_title": "Vos KPI",
        "updated_at": "Mis à jour le {time}",
        "no_headline": "Aucun KPI principal : marquez des KPI avec `headline: true` dans le catalogue.",
    },
}

# dimension names as people read them
DIMENSIONS = {"fr": {"channel": "canal", "device": "appareil", "country": "pays"}}

# the measure behind a rate, as a noun: "based on 12,345 sessions"
SAMPLE_NOUNS = {
    "sessions": {"en": "sessions", "fr": "sessions"},
    "visitors": {"en": "visitors", "fr": "visiteurs"},
    "orders": {"en": "orders", "fr": "commandes"},
    "carts": {"en": "carts", "fr": "paniers"},
    "emails_delivered": {"en": "emails delivered", "fr": "emails délivrés"},
    "ordering_customers": {"en": "customers", "fr": "clients"},
    "lifetime_customers": {"en": "customers", "fr": "clients"},
    "new_customers": {"en": "new customers", "fr": "nouveaux clients"},
}

DEFAULT_EXAMPLES = {
    "en": ["conversion", "revenue last month vs last year", "aov this month by channel",
           "return rate last 4 weeks", "orders yesterday channel=email"],
    "fr": ["taux de conversion", "chiffre d'affaires le mois dernier vs l'an dernier", "panier moyen ce mois-ci par canal",
           "taux de retour cette semaine", "commandes hier canal=email"],
}


def t(lang: str, key: str, **values: object) -> str:
    """The string ``key`` in ``lang`` ('fr', 'fr-FR'... or English), with ``values`` filled in."""
    text = STRINGS[lang_of(lang)].get(key) or STRINGS["en"][key]
    return text.format(**values) if values else text


def colon(lang: str) -> str:
    """': ' in English, ' : ' in French (a space before the colon)."""
    return " : " if lang_of(lang) == "fr" else ": "


def dimension(lang: str, dim: str) -> str:
    return DIMENSIONS.get(lang_of(lang), {}).get(dim, dim)
