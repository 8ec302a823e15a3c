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
         "meilleures", "plus", "besten", "beste", "bester", "bestes", "starkste", "starksten", "hochste", "hochsten",
         "meisten")

WORST = ("worst", "lowest", "least", "weakest", "bottom", "pire", "pires", "moins", "schlechteste", "schlechtesten",
          "schwachste", "schwachsten", "niedrigste", "niedrigsten", "wenigsten")

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
           "against", "relative to", "over", "par rapport a", "par rapport au", "par rapport aux", "compare a",
           "compare au", "comparee a", "comparativement a", "contre", "face a", "im vergleich zu", "im vergleich zum",
           "im vergleich zur", "verglichen mit", "gegenuber", "gegen")

PREVIOUS_TARGETS = ("previous period", "the previous period", "prior period", "the period before", "last period",
                     "previous", "prev", "prior", "before", "periode precedente", "la periode precedente",
                     "precedente", "precedent", "avant", "vorperiode", "die vorperiode", "vorherige periode",
                     "vorherigen periode", "vorherigen zeitraum", "vorheriger zeitraum", "vorzeitraum")

YEAR_TARGETS = ("last year", "a year ago", "year ago", "one year ago", "the same period last year",
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
FILTER_PREPS = {"on", "in", "from", "for", "via", "through", "at", "sur", "en", "au", "aux", "depuis", "dans",
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
latest just some any this that these those and or then also again today's me? pull bring display list
where stand standing state situation numbers? da da's alright ok okay thanks thank
quel quelle quels quelles est sont le la les l d de du des un une notre nos mon ma mes ton ta tes votre vos
montre montrez montre-moi montrez-moi moi donne donnez donne-moi donnez-moi affiche affichez peux peux-tu pouvez
pouvez-vous tu vous stp svp s il te plait plaît voir combien comment va vont ou ou en est c c'est ce cet cette ca? y
a avons nous on fait faisons niveau chiffre? chiffres point etat situation bilan merci salut bonjour je veux voudrais
aimerais savoir connaitre dis dites qu que quoi qui
wie ist sind war waren der die das den dem des ein eine einen unser unsere unseren unserer unserem mein meine zeig
zeige zeigen mir mal bitte gib gebt was wieviel viel viele hoch steht stehen es um steht's stehts laufen lauft lauft
aktuell aktuelle aktuellen derzeit gerade momentan jetzt kannst konnen du ihr sie ich mochte will wissen sag sagen
uns hallo hi danke kurz stand zahlen zahl wert werte kennzahl kennzahlen bericht ueberblick uberblick
""".split())

# month abbreviations that are ordinary words too: a period only next to a year or a preposition
AMBIGUOUS_PERIOD_WORDS = {"may", "mar", "jan", "sep", "sept", "oct", "nov", "dec", "aug", "jun", "jul", "apr", "feb",
                           "mars", "mai", "juni", "juli", "ca", "au", "de"}

AMBIGUOUS_SHORT = {"us", "de", "ca", "au", "fr", "in", "it", "at", "be", "no", "to", "is", "es", "ch", "pl", "se",
                    "gb", "uk"}

PERIOD_WORDS = {"next", "prochain", "prochaine", "nachste", "nachsten", "ago", "il", "vor", "since", "depuis",
                 "seit", "until", "jusqu'a", "bis", "week", "weeks", "month", "months", "year", "years", "day", "days",
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


def split_words(text: str) -> list[Word]:
    text = KEEP.sub(" ", text)  # emoji, quotes, brackets, question and exclamation marks
    out: list[Word] = []
    for token in text.split():
        token = token.strip(".,;:!?…")
        if "=" not in token and ":" not in token:
            token = token.strip("'")
        if not token:
            continue
        if re.fullmatch(r"[a-zA-Z]+(?:&[a-zA-Z]+)+", token):  # AOV&conversion
            for i, part in enumerate(token.split("&")):
                if i:
                    out.append(Word("&", "&"))
                out.append(Word(part, fold(part)))
            continue
        if "," in token and "=" not in token and ":" not in token:
            for i, part in enumerate(p for p in token.split(",")):
                if i:
                    out.append(Word(",", ","))
                if part:
                    out.append(Word(part, fold(part)))
            continue
        out.append(Word(token, fold(token)))
    return out


def free(words: list[Word], i: int, n: int) -> bool:
    return i + n <= len(words) and not any(w.used for w in words[i:i + n])


def phrase(words: list[Word], i: int, n: int) -> str:
    return " ".join(w.norm for w in words[i:i + n])


def take(words: list[Word], i: int, n: int) -> None:
    for w in words[i:i + n]:
        w.used = True


def find(words: list[Word], phrases, *, start: int = 0) -> tuple[int, int, str] | None:
    """The first free occurrence of one of ``phrases`` (longest first at each position): (i, n, phrase)."""
    table = sorted({p for p in phrases}, key=lambda p: -len(p.split()))
    for i in range(start, len(words)):
        for p in table:
            n = len(p.split())
            if free(words, i, n) and phrase(words, i, n) == p:
                return i, n, p
    return None


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
