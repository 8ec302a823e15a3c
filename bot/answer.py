"""Answering ``/kpi``: text in, a Block Kit message out. No Bolt here: listeners call these functions.

The steps are the same for the ephemeral answer, the shared one and the sandbox: parse the text, ask
the engine, draw the chart and upload it where the reader can see it, render.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from kpi.errors import KpiError, PeriodError, UnknownMetric, new_ref, redact
from kpi.i18n import tr
from kpi.metrics.definitions import define
from kpi.metrics.engine import KpiResult
from kpi.metrics.periods import ACCEPTED_FORMS
from kpi.metrics.reader import read_question
from kpi.metrics.reading import ReadingError, answer_reading, other_reading
from kpi.services import Services

from .blocks import (
    Message,
    catalog_message,
    combine,
    definition_message,
    error_message,
    help_message,
    kpi_answer,
)
from .charts import chart_filename
from .drawing import draw_chart

log = logging.getLogger("kpibot.answer")

# the words people type, and questions that work, in each language's own words (read, not translated)
HELP_WORDS = {"", "help", "aide", "hilfe", "?"}
LIST_WORDS = {"list", "liste", "metrics", "kpis", "catalog", "catalogue", "katalog", "kennzahlen"}
DEFINE_WORDS = ("define", "definition", "definition of", "définir", "definir", "définition", "définition de",
                "definiere", "definition von")
EXAMPLES = {
    "en": ["conversion", "aov last month by channel", "revenue ytd vs last year", "return rate this week",
           "cac last quarter by channel", "conversion last 30 days channel=email"],
    "fr": ["taux de conversion", "panier moyen le mois dernier par canal", "chiffre d'affaires cette année vs l'an dernier",
           "taux de retour cette semaine", "cac le trimestre dernier par canal"],
    "de": ["Konversionsrate", "Umsatz letzten Monat vs Vorjahr", "Bestellwert diesen Monat nach Kanal",
           "Retourenquote diese Woche", "Bestellungen gestern Kanal=email"],
}


@dataclass
class Asked:
    """Who asks, where, in which language: what a listener knows about a request."""

    team_id: str
    user_id: str
    channel_id: str
    lang: str = "en"


def share_value(text: str, lang: str) -> str | None:
    """What the Share button carries: the question, to answer it again with fresh numbers."""
    value = json.dumps({"q": text, "l": lang}, ensure_ascii=False)
    return value if len(value) <= 2000 else None


@dataclass
class Answer:
    """The message for a question, and what is needed to draw its chart afterwards (the first KPI's)."""

    message: Message
    result: KpiResult | None = None
    lang: str = "en"
    currency: str = "USD"
    share: str | None = None
    shared_by: str | None = None
    read_as: str | None = None  # how the question was read, shown in the answer's last context line
    other: tuple[str, str] | None = None  # the question read the other way (label, button value)
    more: tuple[KpiResult, ...] = ()  # the other KPIs of "revenue and orders yesterday"

    @property
    def has_chart(self) -> bool:
        return self.result is not None and bool(self.result.series)

    def chart(self) -> bytes | None:
        assert self.result is not None
        return draw_chart(self.result, lang=self.lang, currency=self.currency)

    @property
    def chart_name(self) -> str:
        return chart_filename(self.result, self.lang) if self.result is not None else f"chart-{self.lang}.png"

    def render(self, chart_file_id: str | None = None, chart_url: str | None = None) -> Message:
        """Every KPI's answer in one message; the share button and the reading come once, at the end. The
        first KPI's chart: an uploaded file (``chart_file_id``) or a signed URL (``chart_url``)."""
        assert self.result is not None
        results = (self.result, *self.more)
        messages = [kpi_answer(r, lang=self.lang, currency=self.currency, chart_file_id=chart_file_id if i == 0 else None,
                               chart_url=chart_url if i == 0 else None,
                               share_value=self.share if i == len(results) - 1 else None, shared_by=self.shared_by,
                               reading=self.read_as if i == len(results) - 1 else None,
                               other=self.other if i == len(results) - 1 else None)
                    for i, r in enumerate(results)]
        return messages[0] if len(messages) == 1 else combine(messages, lang=self.lang)

    def with_chart(self, file_id: str) -> Message:
        """The same answer with its uploaded chart shown in place of the sparkline."""
        return self.render(chart_file_id=file_id)


def _define_what(words: str) -> str | None:
    """'define conversion', 'définition du panier moyen', 'definiere Umsatz': the KPI asked about, or None."""
    for word in sorted(DEFINE_WORDS, key=len, reverse=True):
        if words.startswith(word + " "):
            return words[len(word):].strip(" ?:")
    return None


def define_answer(services: Services, asked: str, lang: str) -> Message:
    """The definition of a KPI (its formula, tables and conditions), or why it could not be found."""
    catalog = services.catalog()
    for article in ("du ", "de la ", "de l'", "des ", "de ", "d'", "le ", "la ", "l'", "the ", "der ", "die ", "das "):
        if asked.startswith(article):
            asked = asked[len(article):]
    try:
        metric = catalog.metric(asked)
    except UnknownMetric as exc:
        return error_message(tr(lang, "Unknown KPI '{name}'.", name=exc.name), lang=lang, suggestions=exc.suggestions)
    return definition_message(define(catalog, metric, lang), lang=lang)


def public_text(exc: KpiError, lang: str, team_id: str = "") -> tuple[str, str | None]:
    """What a chat may be told of an error: KPIs, tables and columns, never a URL, host or file path. When
    something had to be hidden, the whole message goes to the log with a reference, returned to be shown."""
    text = exc.localized(lang)
    said, hidden = redact(text)
    if not hidden:
        return text, None
    ref = new_ref()
    log.warning("error shown without its details [ref %s] team=%s: %s", ref, team_id, exc.localized("en"))
    return said, ref


def answer(services: Services, text: str, who: Asked, *, shared: bool = False) -> Answer:
    """The answer to ``/kpi <text>``: numbers first (the chart is drawn and uploaded afterwards, so the
    reader never waits for it). Errors the user can fix become a helpful message; anything else an
    apology with a reference that the log carries with the details.
    """
    words = text.strip().lower()
    if words in HELP_WORDS:  # (no shop needed)
        return Answer(help_message(lang=who.lang, examples=EXAMPLES.get(who.lang, EXAMPLES["en"])))
    services = services.for_team(who.team_id)  # the team's shop (config/teams.yaml), else the deployment's
    if words in LIST_WORDS:
        return Answer(catalog_message(services.catalog(), lang=who.lang))
    if (asked := _define_what(words)) is not None:
        return Answer(define_answer(services, asked, who.lang))
    try:
        engine = services.kpi_engine()
        reading = read_question(text, engine.catalog, now=engine.now(), tz=services.settings.tz,
                                values=services.dimension_values())
        started = time.perf_counter()
        results = answer_reading(engine, reading)
        log.info("answered %s in %.0f ms", "+".join(reading.metrics), (time.perf_counter() - started) * 1000)
    except UnknownMetric as exc:
        short = tr(who.lang, "Unknown KPI '{name}'.", name=exc.name)
        return Answer(error_message(short, lang=who.lang, suggestions=exc.suggestions))
    except PeriodError as exc:
        short = period_problem(exc, who.lang)
        return Answer(error_message(short, lang=who.lang, accepted=ACCEPTED_FORMS.get(who.lang, ACCEPTED_FORMS["en"])))
    except ReadingError as exc:  # a filter value the data does not hold, a comparison that cannot be made
        said, ref = public_text(exc, who.lang, who.team_id)
        return Answer(error_message(said, lang=who.lang, suggestions=exc.suggestions, ref=ref))
    except KpiError as exc:  # unknown dimension, a KPI the data cannot give, a catalog problem: said as it is
        said, ref = public_text(exc, who.lang, who.team_id)
        return Answer(error_message(said, lang=who.lang, ref=ref))
    except Exception:  # noqa: BLE001 - the user gets an apology and a reference, the log the details
        ref = new_ref()
        log.exception("query failed [ref %s] team=%s text=%r", ref, who.team_id, text[:200])
        return Answer(error_message("", lang=who.lang, ref=ref))

    share = None if shared else share_value(text, who.lang)
    shared_by = who.user_id if shared else None
    currency = services.settings.currency
    alternative = None if shared else other_reading(reading, text, who.lang)
    other = (alternative, share_value(alternative, who.lang)) if alternative else None
    reply = Answer(Message(text=""), results[0], who.lang, currency, share, shared_by,
                   read_as=reading.describe(engine.catalog, who.lang), more=tuple(results[1:]),
                   other=other if other and other[1] else None)
    reply.message = reply.render()
    return reply


def period_problem(exc: PeriodError, lang: str) -> str:
    """What is wrong with the period, in one sentence: the accepted forms are shown below it. A period
    that was read but cannot be asked (in the future, ending before it starts) says why; any other, that
    it was not understood."""
    if exc.msgid == PeriodError(exc.text, []).msgid:
        return tr(lang, "I don't understand the period '{text}'.", text=exc.text)
    values = {k: (v(lang) if callable(v) else v) for k, v in exc.values.items()}
    head, found, _ = tr(lang, exc.msgid, **{**values, "accepted": "\0"}).partition("\0")
    if not found or ". " not in head:  # not the usual "<why>. Try one of: <forms>.": said in full
        return exc.localized(lang)
    return head.rsplit(". ", 1)[0] + "."


# how long an uploaded chart may take to become usable in blocks (python-slack-sdk#1521: referencing a
# file at once is often refused with invalid_blocks); past it, the answer keeps its sparkline
READY_TIMEOUT = float(os.environ.get("KPIBOT_FILE_READY_TIMEOUT", "20"))
READY_POLL = 0.25
UPLOAD_ERRORS = (SlackApiError, SlackRequestError, OSError, ValueError)


def _error_of(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return f"{type(exc).__name__}: {exc}"


def join_channel(client: WebClient, channel: str) -> bool:
    """Join a public channel (``channels:join``) the bot posts to without being in it, so that a chart can be
    shared there or its history read; False when not allowed (private channel, archived, scope missing)."""
    try:
        client.conversations_join(channel=channel)
        return True
    except UPLOAD_ERRORS as exc:
        log.info("cannot join %s: %s", channel, _error_of(exc))
        return False


def file_ready(client: WebClient, file_id: str, *, timeout: float | None = None, poll: float = READY_POLL) -> bool:
    """Wait until Slack has processed an uploaded file (``files.info`` gives its ``mimetype`` and, for an
    image, its thumbnails), so that an image block may reference it; False if it never did in time."""
    deadline = time.monotonic() + (READY_TIMEOUT if timeout is None else timeout)
    delay = poll
    while True:
        try:
            info = client.files_info(file=file_id).get("file") or {}
            mimetype = info.get("mimetype") or ""
            if mimetype and (not mimetype.startswith("image/") or any(k.startswith("thumb_") for k in info)):
                return True
        except UPLOAD_ERRORS as exc:
            log.info("files.info %s: %s", file_id, _error_of(exc))
        if time.monotonic() + delay > deadline:
            log.warning("chart %s not ready after %.0f s: shown without it", file_id, timeout or READY_TIMEOUT)
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def upload_chart(client: WebClient, channel: str, png: bytes, filename: str, *, title: str,
                 thread_ts: str | None = None, wait: bool = False, join: bool = True) -> str | None:
    """Upload a chart into ``channel`` (or its thread) with Slack's external upload flow; its file id, or
    None. A public channel the bot is not in is joined first (``not_in_channel``). With ``wait``, the id is
    returned only once the file can be referenced in blocks. Never raises: a chart is never worth failing
    an answer, a digest or an alert (the message keeps its text sparkline)."""
    for attempt in (1, 2):
        try:
            resp = client.files_upload_v2(channel=channel, file=png, filename=filename, title=title,
                                          thread_ts=thread_ts)
            files = resp.get("files") or ([resp.get("file")] if resp.get("file") else [])
            file_id = files[0]["id"] if files else None
            break
        except SlackApiError as exc:
            if attempt == 1 and join and exc.response.get("error") == "not_in_channel" and join_channel(client, channel):
                continue
            log.warning("chart upload to %s failed: %s", channel, _error_of(exc))
            return None
        except UPLOAD_ERRORS as exc:  # SlackRequestError, a connection that failed: the same
            log.warning("chart upload to %s failed: %s", channel, _error_of(exc))
            return None
    if file_id and wait and not file_ready(client, file_id):
        return None
    return file_id


def publish_private_chart(client: WebClient, deps, who: Asked, reply: Answer, response_url: str) -> bool:
    """The chart of a private answer, shown in place of its sparkline (replace_original). HTTP mode with
    ``KPIBOT_PUBLIC_URL``: an ``image_url`` at a signed, expiring URL of this web process, nothing uploaded
    anywhere. Otherwise (Socket Mode, no public URL): uploaded to the asker's DM with the bot, referenced
    once Slack says the file is ready. Anything failing leaves the answer as it is, with its sparkline."""
    png = reply.chart()
    if not png:
        return False
    links = getattr(deps, "chart_links", None)
    if links is not None and links.reachable():
        try:
            url = links.publish(png, team_id=who.team_id)
        except Exception:  # noqa: BLE001 - the state database refused it: the sparkline stays
            log.exception("chart of %s not stored", who.team_id)
            return False
        refusals: list[str] = []
        if deps.send(response_url, reply.render(chart_url=url).as_response("ephemeral", replace_original=True),
                     refusals=refusals):
            return True
        if not any("downloading image failed" in r or "invalid_blocks" in r for r in refusals):
            return False
        # Slack could not download the image (KPIBOT_PUBLIC_URL not reachable from the internet): this
        # chart, and the next ones for a while, go the upload way
        links.unreachable()
    dm = deps.dms.channel(client, who.team_id, who.user_id)
    title = reply.result.metric.name(who.lang) if reply.result is not None else reply.chart_name
    file_id = dm and upload_chart(client, dm, png, reply.chart_name, title=title, wait=True, join=False)
    if not file_id:
        return False
    return bool(deps.send(response_url, reply.with_chart(file_id).as_response("ephemeral", replace_original=True)))


def dm_channel(client: WebClient, user_id: str) -> str | None:
    """The bot's DM with the user: where a private answer's chart can be shared so that only they see it."""
    try:
        return client.conversations_open(users=user_id)["channel"]["id"]
    except SlackApiError as exc:
        log.warning("cannot open a DM with %s: %s", user_id, exc.response.get("error"))
        return None
