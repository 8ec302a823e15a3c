"""``kpibot demo``: the real app, without Slack.

One command on a fresh machine: the embedded SQLite database gets demo shop data if it is empty, the
same Bolt app as in production starts on a loopback port (signatures verified), a local stand-in
plays the Slack Web API, and a prompt plays the Slack client: type ``/kpi conversion``, ``share``
(clicks the last answer's Share button), ``home`` (opens the App Home), ``lang fr`` or ``lang de`` (ask as
the French or the German user: the app answers in their Slack locale), ``quit``.
Works with a pipe too: ``echo "/kpi conversion" | kpibot demo``. The sandbox's own notes are in the language
of the user it asks as (at first, the command line's: ``kpibot --lang de demo``).
"""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from kpi.data.demo import generate_demo_data, source_is_empty
from kpi.data.schema import create_source_tables
from kpi.i18n import N_, lang_of, tr
from kpi.services import Services
from kpi.state.tables import upgrade

from .app import build_app, create_slack_tables, wsgi_app
from .config import SlackSettings
from .sandbox import AppServer, LazyWork, SlackSide, app_home_opened, block_action
from .standin import SlackStandIn
from .terminal import render_message, render_view

# who asks, per language: the stand-in's users, whose Slack locales are LOCALES
USERS = {"en": ("U0ALICE", "alice"), "fr": ("U0BRUNO", "bruno"), "de": ("U0GRETA", "greta")}
LOCALES = {"en": "en-US", "fr": "fr-FR", "de": "de-DE"}
INTRO = N_("""KPI Bot sandbox: the real app on {url}, Slack played by a local stand-in.
Type a slash command as in Slack: /kpi conversion, /kpi aov last month by channel,
/kpi taux de retour cette semaine vs l'an dernier, /kpi retourenquote diese woche, /kpi list, /kpi help.
Then: share (share the last answer in #general), home (the App Home),
lang en|fr|de (ask as alice, bruno or greta, in their language), quit.
""")
WAIT = 60  # seconds for an answer (or a Home tab), then as long again for the rest of its work (a chart)


class Sandbox:
    def __init__(self, services: Services, out=sys.stdout, charts_dir: Path = Path("charts"), lang: str = "en"):
        self.services = services
        self.out = out
        self.charts_dir = charts_dir
        self.standin = SlackStandIn().start()
        secret = secrets.token_hex(16)
        self.slack = SlackSettings(signing_secret=secret, bot_token=self.standin.bot_token, api_url=self.standin.base_url)
        app = build_app(services, self.slack)
        self.work = LazyWork(app)  # what the app does after each acknowledgement: done before we move on
        self.server = AppServer(wsgi_app(services, self.slack, app)).start()
        self.side = SlackSide(self.server.url, secret)
        self.lang = lang_of(lang)  # who asks (USERS), and the language of the sandbox's own notes
        self.last_answer: dict | None = None

    def close(self) -> None:
        self.server.stop()
        self.standin.stop()

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def handle(self, line: str) -> bool:
        """One line of input; False to stop."""
        line = line.strip()
        if not line:
            return True
        word = line.lower()
        if word in ("quit", "exit", "q"):
            return False
        if word.startswith("lang"):
            self.lang = next((code for code in USERS if word.endswith(code)), "en")
            self.print(tr(self.lang, "(now asking as {user}, whose Slack locale is {locale})",
                          user=USERS[self.lang][1], locale=LOCALES[self.lang]))
            return True
        if word == "share":
            self.share()
        elif word == "home":
            self.home()
        elif line.startswith("/"):
            self.command(line)
        else:
            self.print(tr(self.lang, "Type a slash command (/kpi conversion), share, home, lang en|fr|de or quit."))
        return True

    def command(self, line: str) -> None:
        command, _, text = line.partition(" ")
        user_id, user_name = USERS[self.lang]
        url = self.standin.new_response_url(user_id=user_id)
        reply = self.side.command(text, response_url=url, user_id=user_id, user_name=user_name, command=command)
        if reply.status != 200:
            self.print(tr(self.lang, "(the app answered HTTP {status}: {body})", status=reply.status,
                          body=reply.body[:200]))
            return
        if command != "/kpi":
            self.print(tr(self.lang, "(Slack would say: {command} is not a valid command)", command=command))
            return
        self.print(tr(self.lang, "(acknowledged in {ms} ms)", ms=format(reply.seconds * 1000, ".0f")))
        # the answer is what came through this command's own response_url (never a message of another
        # request that happened to arrive meanwhile); its chart, if any, replaces it in place, by the end
        # of the request's work: that end is waited for, so nothing of this request lands after we move on
        try:
            self.standin.wait_for(lambda: self.standin.response_url_answer(url)[0] > 0, timeout=WAIT)
        except AssertionError:
            self.print(tr(self.lang, "(no answer within 60 s)"))
            return
        self.work.wait_idle(WAIT)  # (still drawing after that: the answer keeps its text sparkline)
        message = self.standin.response_url_answer(url)[1]
        self.last_answer = {"text": message.text, "blocks": message.blocks or []}
        self.print(render_message(self.last_answer, lang=self.lang))
        self._show_charts()

    def share(self) -> None:
        button = _find_button(self.last_answer, "kpi_share") if self.last_answer else None
        if button is None:
            self.print(tr(self.lang, "(nothing to share: ask something first, e.g. /kpi conversion)"))
            return
        user_id, _ = USERS[self.lang]
        seen = len(self.standin.messages)
        body = block_action("kpi_share", button["value"], response_url=self.standin.new_response_url(user_id=user_id),
                            user_id=user_id, message=self.last_answer)
        reply = self.side.post(body)
        if reply.status != 200:
            self.print(tr(self.lang, "(the app answered HTTP {status})", status=reply.status))
            return
        message = self._wait_message(seen, lambda m: m.kind in ("message", "response_url") and m.channel == "C0GENERAL"
                                     and not m.thread_ts)
        if message is not None:
            self.print("#general:")
            self.print(render_message({"text": message.text, "blocks": message.blocks or []}, lang=self.lang))
            self._show_charts()

    def home(self) -> None:
        user_id, _ = USERS[self.lang]
        before = self.standin.home_views.get((self.standin.team_id, user_id))
        reply = self.side.post(app_home_opened(user_id), "application/json")
        if reply.status != 200:
            self.print(tr(self.lang, "(the app answered HTTP {status})", status=reply.status))
            return
        try:
            self.standin.wait_for(lambda: self.standin.home_views.get((self.standin.team_id, user_id)) not in (None, before),
                                  timeout=WAIT)
        except AssertionError:
            self.print(tr(self.lang, "(no Home tab was published within 60 s)"))
            return
        self.work.wait_idle(WAIT)  # the rest of the event's work ends before we move on
        self.print(render_view(self.standin.home_views[(self.standin.team_id, user_id)], lang=self.lang))

    def _wait_message(self, seen: int, match):
        """The first message since ``seen`` that ``match``es, once the work it belongs to has ended (the
        earlier requests' work ended before this one was sent: nothing of theirs arrives after ``seen``)."""
        try:
            self.standin.wait_for(lambda: any(match(m) for m in self.standin.messages[seen:]), timeout=WAIT)
        except AssertionError:
            self.print(tr(self.lang, "(no answer within 60 s)"))
            return None
        self.work.wait_idle(WAIT)  # the rest of it (a chart in the thread) lands before we move on
        return next(m for m in self.standin.messages[seen:] if match(m))

    def _show_charts(self) -> None:
        """Every chart the stand-in received and the terminal has not shown yet, saved as PNG."""
        for f in self.standin.files:
            if f.get("shown"):
                continue
            f["shown"] = True
            self.charts_dir.mkdir(parents=True, exist_ok=True)
            path = self.charts_dir / f["filename"]
            path.write_bytes(f["content"])
            self.print("  " + tr(self.lang, "chart: {path}", path=path.resolve()))


def _find_button(message: dict, action_id: str) -> dict | None:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def prepare_data(services: Services, *, days: int, orders_per_day: int, out=sys.stdout, lang: str = "en") -> None:
    """Migrations, then demo shop data if the source is empty (a fresh machine needs nothing else)."""
    upgrade(services.settings.database_url)
    create_slack_tables(services, SlackSettings())
    create_source_tables(services.source())
    if source_is_empty(services.source()):
        print(tr(lang, "filling {url} with {days} days of demo shop data...", url=services.settings.source_url,
                 days=days), file=out, flush=True)
        today = datetime.now(UTC).astimezone(services.settings.tz).date()
        summary = generate_demo_data(services.source(), days=days, orders_per_day=orders_per_day, today=today,
                                     tz=services.settings.tz, currency=services.settings.currency)
        print("  " + tr(lang, "{orders} orders, {customers} customers in {seconds} s", **summary.numbers(lang)),
              file=out, flush=True)


def run_demo(services: Services, *, interactive: bool, days: int = 730, orders_per_day: int = 250,
             stdin=sys.stdin, out=sys.stdout, lang: str = "en") -> int:
    """``lang``: the command line's language; the sandbox first asks as that language's user."""
    lang = lang_of(lang)
    prepare_data(services, days=days, orders_per_day=orders_per_day, out=out, lang=lang)
    sandbox = Sandbox(services, out=out, lang=lang)
    try:
        sandbox.print(tr(sandbox.lang, INTRO, url=sandbox.server.url))
        while True:
            if interactive:
                sandbox.print("")
                try:
                    line = input("slack> ")
                except EOFError:
                    break
            else:
                line = stdin.readline()
                if not line:
                    break
                sandbox.print(f"slack> {line.rstrip()}")
            if not sandbox.handle(line):
                break
    finally:
        sandbox.close()
    return 0


__all__ = ["Sandbox", "run_demo", "prepare_data"]
