"""The words of questions, per language: what introduces a breakdown, a comparison or a filter, what
names a dimension, and the filler a question may carry ("how are we doing on", "quel est", "zeig mir").

All lower case with accents folded (``ü`` -> ``u``, ``ß`` -> ``ss``), as ``kpi.metrics.reader`` compares them.
A new language adds its words here, its KPI names in ``config/metrics.yaml`` and its period words in
``kpi.metrics.periods``. Below them, the few functions that cut a question into words and find phrases.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# dimension words, singular and plural, in every language
DIMENSIONS = {
    "channel": "channel", "channels": "channel", "canal": "channel", "canaux": "channel", "source": "channel",
    "sources": "channel", "kanal": "channel", "kanale": "channel", "kanalen": "channel", "kanals": "channel",
    "traffic source": "channel", "traffic sources": "channel", "marketing channel": "channel",
    "marketing channels": "channel", "acquisition channel": "channel",
    "device": "device", "devices": "device", "appareil": "device", "appareils": "device", "terminal": "device",
    "terminaux": "device", "gerat": "device", "gerate": "device", "geraten": "device", "geratetyp": "device",
    "device type": "device",
    "country": "country", "countries": "country", "pays": "country", "land": "country", "lander": "country",
    "landern": "country", "market": "country", "markets": "country", "marche": "country", "marches": "country",
    "markt": "country", "markte": "country", "markten": "country",
}

# words that introduce a breakdown, before the dimension
BY = ("by", "per", "par", "nach", "pro", "je", "split by", "broken down by", "break down by", "breakdown by",
       "for each", "for every", "across", "across all", "each", "every", "pour chaque", "par rapport aux",
       "aufgeschlusselt nach", "aufgeteilt nach", "getrennt nach", "fur jedes", "fur jeden", "fur jede",
       "repartition par", "ventile par", "detail par")

WHICH = ("which", "what", "quel", "quelle", "quels", "quelles", "welcher", "welche", "welches", "welchem", "welchen")

BEST = ("best", "top", "highest", "most", "strongest", "biggest", "largest", "meilleur", "meilleure", "meilleurs",
        "meilleures", "mieux", "plus", "besten", "beste", "bester", "bestes", "starkste", "starksten", "hochste",
        "hochsten", "meisten", "am besten", "le mieux", "le plus", "la plus", "les plus", "am meisten", "top performing",
        "best performing")

WORST = ("worst", "lowest", "least", "weakest", "bottom", "pire", "pires", "moins", "schlechteste", "schlechtesten",
         "schlechtester", "schlechtestes", "schwachste", "schwachsten", "schwachster", "niedrigste", "niedrigsten",
         "wenigsten", "le moins bien", "moins bien", "le plus mauvais", "la plus mauvaise", "plus mauvais",
         "plus mauvaise", "am schlechtesten", "am wenigsten", "worst performing")

# verbs that name a KPI when they follow "which channel ..." ("converts best", "sells most")
VERBS = {"converts": "conversion_rate", "convert": "conversion_rate", "converting": "conversion_rate",
          "converti": "conversion_rate", "convertit": "conversion_rate", "konvertiert": "conversion_rate",
          "sells": "revenue", "sell": "revenue", "selling": "revenue", "vend": "revenue", "verkauft": "revenue",
          "returns": "return_rate"}

GRANULARITY = {
    "daily": "day", "by day": "day", "per day": "day", "day by day": "day", "par jour": "day", "quotidien": "day",
    "quotidienne": "day", "taglich": "day", "pro tag": "day", "nach tag": "day", "nach tagen": "day",
    "weekly": "week", "by week": "week", "per week": "week", "par semaine": "week", "hebdomadaire": "week",
    "wochentlich": "week", "pro woche": "week", "nach woche": "week", "nach wochen": "week",
    "monthly": "month", "by month": "month", "per month": "month", "par mois": "month", "mensuel": "month",
    "mensuelle": "month", "monatlich": "month", "pro monat": "month", "nach monat": "month", "nach monaten": "month",
}

VERSUS = ("vs", "v", "versus", "compared to", "compared with", "compare to", "compare with", "comparing to",
           "against", "relative to", "par rapport a", "par rapport au", "par rapport aux", "compare a",
           "compare au", "comparee a", "comparativement a", "contre", "face a", "im vergleich zu", "im vergleich zum",
           "im vergleich zur", "verglichen mit", "gegenuber", "gegen")

PREVIOUS_TARGETS = ("previous period", "the previous period", "prior period", "the period before", "last period",
                    "the week before", "week before", "the month before", "month before", "the day before",
                    "day before", "the quarter before", "the year before", "previous week", "the previous week",
                    "prior week", "previous month", "the previous month", "prior month", "the previous day",
                    "la semaine d'avant", "la semaine precedente", "le mois d'avant", "le mois precedent", "la veille",
                    "le jour d'avant", "vorwoche", "der vorwoche", "vormonat", "dem vormonat", "vortag", "dem vortag",
                    "vorquartal", "dem vorquartal",
                     "previous", "prev", "prior", "before", "periode precedente", "la periode precedente",
                     "precedente", "precedent", "avant", "vorperiode", "die vorperiode", "vorherige periode",
                     "vorherigen periode", "vorherigen zeitraum", "vorheriger zeitraum", "vorzeitraum")

YEAR_TARGETS = ("last year", "a year ago", "year ago", "one year ago", "the same period last year",
                "same day last year", "the same day last year", "same quarter last year", "the same quarter last year",
                "same period of last year", "le meme jour l'an dernier", "meme jour l'an dernier",
                "la meme semaine l'an dernier", "le meme trimestre l'an dernier", "la meme periode l'annee derniere",
                "gleicher tag im vorjahr", "gleichen tag im vorjahr", "gleiche woche im vorjahr", "gleichen zeitraum im vorjahr",
                "gleicher zeitraum im vorjahr", "gleichen monat im vorjahr", "gleicher monat im vorjahr",
                "selben zeitraum im vorjahr", "im vorjahr", "vorjahreszeitraum",
                 "same period last year", "same time last year", "the same time last year", "same period a year ago",
                 "ly", "py", "previous year", "prior year", "l'an dernier", "l'annee derniere", "an dernier",
                 "annee derniere", "l'an passe", "an passe", "annee passee", "la meme periode l'an dernier",
                 "meme periode l'an dernier", "la meme periode de l'an dernier", "n-1", "l'annee precedente",
                 "vorjahr", "dem vorjahr", "vorjahreszeitraum", "dem vorjahreszeitraum", "letztes jahr",
                 "letzten jahr", "dem letzten jahr", "vorjahresmonat", "vorjahreswoche", "same month last year",
                 "the same month last year", "same week last year", "the same week last year", "same day last year",
                 "meme mois l'an dernier", "le meme mois l'an dernier", "last year's")

ABBREVIATIONS = {"yoy": ("year", None), "y/y": ("year", None), "year over year": ("year", None),
                  "year on year": ("year", None), "sur un an": ("year", None), "en glissement annuel": ("year", None),
                  "gegenuber vorjahr": ("year", None), "im jahresvergleich": ("year", None),
                  "mom": ("previous", "this_month"), "m/m": ("previous", "this_month"),
                  "month over month": ("previous", "this_month"), "month on month": ("previous", "this_month"),
                  "wow": ("previous", "this_week"), "w/w": ("previous", "this_week"),
                  "week over week": ("previous", "this_week"), "week on week": ("previous", "this_week"),
                  "dod": ("previous", "today"), "day over day": ("previous", "today")}

NO_COMPARISON = ("no comparison", "without comparison", "sans comparaison", "ohne vergleich")

# prepositions that introduce a filter value ("on mobile", "in France", "aus Deutschland")
FILTER_PREPS = {"on", "in", "from", "for", "via", "through", "at", "sur", "en", "au", "aux", "depuis", "dans", "pour",
                "ueber", "beim", "am", "an",
                 "de", "du", "des", "par", "auf", "aus", "im", "fur", "uber", "per", "bei", "von", "vom", "mit",
                 "with", "only", "uniquement", "seulement", "nur"}

AND = {"and", "&", "et", "und", "plus", "+", ",", "/"}

# words that carry no meaning for the reading
FILLER = set("""
how hows how's are is was were be been being we our ours us you your me my i i'm im it its it's s do does did doing
done on what whats what's show shows showing give gimme tell get got see check please pls plz can could would will
the a an of about with at to for hey hi hello bot kpi kpis kpibot current currently looking look looks like right
now number numbers figure figures stats stat value values metric metrics report quick update status doing going
trend trending performance performing overall total much many there here so up let lets let's want need know
latest just some any this that these those and or then also again pull bring display list
where stand standing state situation numbers? da da's alright ok okay thanks thank
morning good afternoon evening yo sup terms sanity one came come coming have has had brought bring made make been
like did were performing perform performed doing went go going split broken down breakdown ranking rank
customers people came total figures amount count number quickly check please need want give given look see
generated generate earned earn bringing drove drive driven
happened happening result results tracking track trend kind sort sorta kinda actually exactly roughly about our
quel quelle quels quelles est sont le la les l d de du des un une notre nos mon ma mes ton ta tes votre vos
montre montrez montre-moi montrez-moi moi donne donnez donne-moi donnez-moi affiche affichez peux peux-tu pouvez
pouvez-vous tu vous stp svp s il te plait plaît voir combien comment va vont ou ou en est c c'est ce cet cette ca? y
a avons nous on fait faisons niveau chiffre? chiffres point etat situation bilan merci salut bonjour je veux voudrais
aimerais savoir connaitre dis dites qu que quoi qui
salut coucou donner sortir sors dis-moi donne-moi montre-moi peux-tu pouvez-vous ces venant venus venu provenant
issu issus issues bien mieux mauvais donne quoi ça rapide vite repartition ventile ventilee ventiles ventilees
detail detaille detaillee clients client chiffre chiffres realise realises fait faits eu avoir ete sommes
combien j' l' d' qu' n' s' c' m' t' est-ce ce qu'il qu'on avec rapporte rapportes genere generes realise
gagne obtenu eu
wie ist sind war waren der die das den dem des ein eine einen unser unsere unseren unserer unserem mein meine zeig
zeige zeigen mir mal bitte gib gebt was wieviel viel viele hoch steht stehen es um steht's stehts laufen lauft lauft
aktuell aktuelle aktuellen derzeit gerade momentan jetzt kannst konnen du ihr sie ich mochte will wissen sag sagen
uns hallo hi danke kurz stand zahlen zahl wert werte kennzahl kennzahlen bericht ueberblick uberblick
guten abend servus moin sieht aus lauft lief laufen hatten hatte haben hat wir beim bei am an mit
gemacht macht kamen kam kommen kunden kunde insgesamt gesamt aufgeschlusselt aufgeteilt getrennt verteilt
verteilung schnell mal bitte gerne bisschen ubers furs ins ans aufs zum zur gebracht bringen bringt brachte
brachten kamen kommt rein erzielt generiert eingebracht gemacht geworden werden wird
""".split())

# month abbreviations that are ordinary words too: a period only next to a year or a preposition
# greetings that hold a period word ("Guten Morgen" is not tomorrow): read as filler first
FILLER_PHRASES = ("guten morgen", "good morning", "morning", "guten tag", "bon matin", "bonne journee", "schonen tag")

AMBIGUOUS_PERIOD_WORDS = {"may", "mar", "jan", "sep", "sept", "oct", "nov", "dec", "aug", "jun", "jul", "apr", "feb",
                           "mars", "mai", "juni", "juli", "ca", "au", "de"}

AMBIGUOUS_SHORT = {"us", "de", "ca", "au", "fr", "in", "it", "at", "be", "no", "to", "is", "es", "ch", "pl", "se",
                    "gb", "uk"}

PERIOD_WORDS = {"next", "prochain", "prochaine", "nachste", "nachsten", "ago", "il", "vor", "since", "depuis",
                 "seit", "until", "jusqu'a", "bis", "tomorrow's", "week", "weeks", "month", "months", "year", "years", "day", "days",
                 "semaine", "mois", "annee", "jour", "jours", "woche", "monat", "jahr", "tag", "tage", "quarter",
                 "trimestre", "quartal", "tomorrow", "demain", "morgen", "monday", "lundi", "montag", "weekend"}


# -- cutting a question into words ------------------------------------------------------------------



@dataclass
class Word:
    raw: str  # as typed (case kept: 'DE' is Germany, 'de' is a preposition)
    norm: str  # lower case, accents folded
    used: bool = False


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("`", "'").replace("ß", "ss"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


KEEP = re.compile(r"[^\w\s'=:,./&+\-–…%]")
_SHORTCODE = re.compile(r":[a-z0-9_+\-]+:")  # Slack's emoji, typed as :rocket:
_EMOTICON = re.compile(r"(?<!\w)(?:<3|:-?[)(dp]|;-?\))(?!\w)", re.IGNORECASE)
_ELISION = re.compile(r"^([dljnsmtc]|qu|jusqu)'(\w.*)$")  # French d'hier, l'email, qu'on
_POSSESSIVE = re.compile(r"^(\w+)'s$")  # today's, last month's, lauft's


def _word(token: str) -> Word:
    norm = fold(token)
    if token.lower() == "ça":  # the pronoun, not 'CA' (chiffre d'affaires)
        norm = "ça"
    return Word(token, norm)


def split_words(text: str) -> list[Word]:
    text = _EMOTICON.sub(" ", _SHORTCODE.sub(" ", text))
    text = KEEP.sub(" ", text)  # emoji, quotes, brackets, question and exclamation marks
    out: list[Word] = []
    for token in text.split():
        token = token.strip(".,;:!?…")
        if "=" not in token and ":" not in token:
            token = token.strip("'")
        token = token.strip("-–<>")
        if not token or not re.search(r"\w", token):  # punctuation alone: '-', '->', '&gt;'
            continue
        if m := _POSSESSIVE.match(token):
            token = m[1]
        if (m := _ELISION.match(token.lower())) and "=" not in token:
            out.append(Word(token[: len(m[1]) + 1], m[1] + "'"))
            token = token[len(m[1]) + 1:]
        if re.fullmatch(r"[a-zA-Z]+(?:&[a-zA-Z]+)+", token):  # AOV&conversion
            for i, part in enumerate(token.split("&")):
                if i:
                    out.append(Word("&", "&"))
                out.append(_word(part))
            continue
        if "," in token and "=" not in token and ":" not in token:
            for i, part in enumerate(p for p in token.split(",")):
                if i:
                    out.append(Word(",", ","))
                if part:
                    out.append(_word(part))
            continue
        out.append(_word(token))
    return out


def free(words: list[Word], i: int, n: int) -> bool:
    return i + n <= len(words) and not any(w.used for w in words[i:i + n])


def phrase(words: list[Word], i: int, n: int) -> str:
    """The words' text, an elided word joined to the next as written ("chiffre d'affaires", "l'annee")."""
    out = ""
    for w in words[i:i + n]:
        out += w.norm if not out or out.endswith("'") else " " + w.norm
    return out


def take(words: list[Word], i: int, n: int) -> None:
    for w in words[i:i + n]:
        w.used = True


def find(words: list[Word], phrases, *, start: int = 0) -> tuple[int, int, str] | None:
    """The first free occurrence of one of ``phrases`` (longest first at each position): (i, n, phrase), the
    phrase as written in the list (its words compared as the question's are cut: "l'an dernier" too)."""
    table = _table(tuple(phrases) if not isinstance(phrases, tuple) else phrases)
    norms = [w.norm for w in words]
    for i in range(start, len(words)):
        for parts, n, p in table:
            if i + n <= len(words) and norms[i:i + n] == parts and free(words, i, n):
                return i, n, p
    return None


def parts_of(text: str) -> list[str]:
    """A phrase cut as a question is ("taux d'abandon" -> ['taux', "d'", 'abandon'])."""
    return [w.norm for w in split_words(text)]


@lru_cache(maxsize=256)
def _table(phrases: tuple[str, ...]) -> list[tuple[list[str], int, str]]:
    rows = []
    for p in set(phrases):
        parts = [w.norm for w in split_words(p)]
        rows.append((parts, len(parts), p))
    return sorted(rows, key=lambda r: -r[1])


def edits(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (a swap of two letters is one edit)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


_ALIASES: dict[int, list[tuple[list[str], str]]] = {}


def alias_parts(catalog) -> list[tuple[list[str], str]]:
    """The catalog's names and aliases cut into words as questions are, the longest first."""
    if id(catalog) not in _ALIASES:
        rows = [(parts_of(alias), key) for alias, key in catalog.aliases.items()]
        _ALIASES.clear() if len(_ALIASES) > 16 else None
        _ALIASES[id(catalog)] = sorted((r for r in rows if r[0]), key=lambda r: (-len(r[0]), -len(" ".join(r[0]))))
    return _ALIASES[id(catalog)]
