"""``SlackStandIn``: start, seed, inspect and disturb the local Slack."""

from __future__ import annotations

import html
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from ._directory import register_team
from ._http import StandInServer
from ._records import Call, Channel, Failure, Message, OAuthCode, ResponseURL, Trigger, User, World

DEFAULT_TEAM = "T0STANDIN"
_RUNNING: list[SlackStandIn] = []  # started and not stopped, latest last (see ``running``)
# what Slack's client already sends as markup (a mention picked from the menu): kept as it is
_MARKUP = re.compile(r"<(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+|![a-z^A-Z0-9]+)(?:\|[^<>]*)?>")
_TYPED = re.compile(r"(?<![\w@#])([@#])([\w][\w.\-]*)")


def running(team_id: str | None = None) -> SlackStandIn | None:
    """The latest started stand-in (that knows ``team_id``): the Slack a sandbox request is typed into."""
    for standin in reversed(_RUNNING):
        if team_id is None or team_id in standin._world.teams:
            return standin
    return None


class SlackStandIn:
    """A local Slack Web API that checks requests as strictly as Slack does and records them.

    Default fixtures in team ``T0STANDIN``: users ``U0ALICE`` (admin, en-US), ``U0BRUNO`` (fr-FR) and
    ``U0GRETA`` (de-DE), channels ``C0GENERAL`` "general", ``C0GROWTH`` "growth", ``C0PAYLOADS`` "payloads"
    (bot a member) and ``C0NOTIN`` "random" (bot not a member). ``clock`` (monotonic seconds) drives the
    expiry of triggers, response URLs and OAuth codes; pass a fake one to test expiry without waiting.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, team_id: str = DEFAULT_TEAM,
                 team_name: str = "Demo Shop", bot_token: str = "xoxb-standin-token", bot_user_id: str = "U0BOT",
                 app_id: str = "A0KPIBOT", client_id: str = "111.222", client_secret: str = "standin-secret",
                 clock: Callable[[], float] | None = None, file_ready_delay: float = 0.2) -> None:
        self._address = (host, port)
        self._world = World(clock=clock or time.monotonic, app_id=app_id, client_id=client_id,
                            client_secret=client_secret, file_ready_delay=file_ready_delay)
        self.team_id = team_id
        self.bot_token = bot_token
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._response_url_count = 0
        self.add_team(team_id, bot_token, team_name, bot_user_id)
        self.add_user("U0ALICE", name="alice", locale="en-US", tz="Europe/Paris", is_admin=True)
        self.add_user("U0BRUNO", name="bruno", locale="fr-FR", tz="Europe/Paris")
        self.add_user("U0GRETA", name="greta", locale="de-DE", tz="Europe/Berlin")
        self.add_channel("C0GENERAL", "general")
        self.add_channel("C0GROWTH", "growth")
        self.add_channel("C0PAYLOADS", "payloads")
        self.add_channel("C0NOTIN", "random", is_member=False)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        if self._server is None:
            self._stopping.clear()
            self._server = StandInServer(self._address, self._world, self._stopping)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                            name="slack-standin", daemon=True)
            self._thread.start()
            _RUNNING.append(self)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._stopping.set()
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None
        if self in _RUNNING:
            _RUNNING.remove(self)

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not started: call start() first")
        return self._server.root_url

    @property
    def base_url(self) -> str:
        return self.root_url + "/api/"

    # -- seeding --------------------------------------------------------------------------------------

    def add_team(self, team_id: str, bot_token: str, team_name: str = "", bot_user_id: str = "U0BOT") -> None:
        with self._world.lock:
            register_team(self._world, team_id, team_name, bot_token, bot_user_id)

    def add_user(self, user_id: str, *, name: str = "", locale: str = "en-US", tz: str = "Europe/Paris",
                 is_admin: bool = False, team_id: str | None = None) -> None:
        with self._world.lock:
            team = self._team(team_id)
            team.users[user_id] = User(user_id, team.id, name or user_id.lower(), locale, tz, is_admin)

    def add_channel(self, channel_id: str, name: str, *, is_member: bool = True, is_private: bool = False,
                    team_id: str | None = None) -> None:
        with self._world.lock:
            team = self._team(team_id)
            team.channels[channel_id] = Channel(channel_id, team.id, name, is_member, is_private)

    def _team(self, team_id: str | None) -> Any:
        team = self._world.teams.get(team_id or self.team_id)
        if team is None:
            raise KeyError(f"unknown team {team_id!r}: add_team() it first")
        return team

    # -- things Slack hands to the app ----------------------------------------------------------------

    def new_response_url(self, team_id: str | None = None, channel_id: str = "C0GENERAL", user_id: str = "U0ALICE",
                         *, message_ts: str | None = None) -> str:
        """A response_url as a slash command (or, with ``message_ts``, a block action on that message) gets."""
        with self._world.lock:
            team = self._team(team_id)
            if channel_id not in team.channels:
                raise KeyError(f"unknown channel {channel_id!r} in {team.id}: add_channel() it first")
            self._response_url_count += 1
            path = f"/commands/{team.id}/{self._response_url_count}/{secrets.token_urlsafe(12)}"
            self._world.response_urls[path] = ResponseURL(team.id, channel_id, user_id, self._world.clock(),
                                                          message_ts)
        return self.root_url + path

    def new_trigger_id(self, user_id: str = "U0ALICE", team_id: str | None = None) -> str:
        """A trigger_id as an interaction payload carries: valid for 3 seconds, once."""
        with self._world.lock:
            team = self._team(team_id)
            self._world.counter += 1
            trigger_id = f"{self._world.counter}.{int(time.time())}.{secrets.token_hex(16)}"
            self._world.triggers[trigger_id] = Trigger(team.id, user_id, self._world.clock())
        return trigger_id

    def new_oauth_code(self, team_id: str, team_name: str = "", bot_token: str | None = None,
                       bot_user_id: str = "U0BOT", installer_user_id: str = "U0ALICE") -> str:
        """The ``code`` Slack's redirect carries after an install; oauth.v2.access exchanges it once."""
        with self._world.lock:
            self._world.counter += 1
            code = f"{self._world.counter}.{secrets.token_hex(12)}"
            token = bot_token or f"xoxb-{team_id.lower()}-{secrets.token_hex(8)}"
            self._world.oauth_codes[code] = OAuthCode(team_id, team_name, token, bot_user_id, installer_user_id,
                                                      self._world.clock())
        return code

    def escape_command_text(self, text: str, team_id: str | None = None) -> str:
        """A slash command's ``text`` as Slack sends it with ``should_escape: true``: ``&``, ``<``, ``>``
        as ``&amp;``, ``&lt;``, ``&gt;``; ``@alice`` as ``<@U0ALICE|alice>`` and ``#growth`` as
        ``<#C0GROWTH|growth>`` when the workspace has them (else left as typed); ``@here``, ``@channel``,
        ``@everyone`` as ``<!here>``... Markup already in Slack's form (a mention the client inserted)
        is kept."""
        with self._world.lock:
            team = self._team(team_id)
            users = {u.name.lower(): u.id for u in team.users.values() if not u.is_bot}
            channels = {c.name.lower(): c.id for c in team.channels.values() if not c.id.startswith("D")}

        def typed(m: re.Match) -> str:
            sigil, name = m[1], m[2].rstrip(".-")
            rest = m[2][len(name):]
            if sigil == "@" and name.lower() in ("here", "channel", "everyone"):
                return f"<!{name.lower()}>{rest}"
            if sigil == "@" and name.lower() in users:
                return f"<@{users[name.lower()]}|{name}>{rest}"
            if sigil == "#" and name.lower() in channels:
                return f"<#{channels[name.lower()]}|{name.lower()}>{rest}"
            return m[0]

        out, at = [], 0
        for m in _MARKUP.finditer(text):
            out.append(_TYPED.sub(typed, html.escape(text[at:m.start()], quote=False)))
            out.append(m[0])
            at = m.end()
        out.append(_TYPED.sub(typed, html.escape(text[at:], quote=False)))
        return "".join(out)

    # -- disturbances ---------------------------------------------------------------------------------

    def fail_next(self, method: str, *, status: int = 429, retry_after: int = 1, times: int = 1,
                  error: str | None = None) -> None:
        """The next ``times`` calls of ``method`` (a Web API method, ``"response_url"`` or ``"upload_url"``)
        fail: HTTP ``status`` (429 with Retry-After), or with ``error`` HTTP 200 ``{"ok": false, "error"}``
        (for the response and upload URLs: HTTP 404 with ``error`` as the body)."""
        with self._world.lock:
            self._world.failures.setdefault(method, []).append(Failure(status, retry_after, error, times))

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer after ``seconds`` (the call still takes effect)."""
        with self._world.lock:
            self._world.delays.setdefault(method, []).append([seconds, times])

    # -- what happened --------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._world.lock:
            return list(self._world.calls)

    @property
    def messages(self) -> list[Message]:
        with self._world.lock:
            return list(self._world.messages)

    @property
    def file_ready_delay(self) -> float:
        """Seconds (of ``clock``) after an upload during which an image block may not reference the file:
        Slack is still processing it and answers ``invalid_blocks`` (python-slack-sdk#1521)."""
        return self._world.file_ready_delay

    @file_ready_delay.setter
    def file_ready_delay(self, seconds: float) -> None:
        with self._world.lock:
            self._world.file_ready_delay = float(seconds)

    @property
    def dm_file_shares(self) -> list[dict[str, Any]]:
        """Every file shared into a DM with the bot ({file_id, team_id, channel, user}): a private answer
        that leaves no trace adds none."""
        with self._world.lock:
            return list(self._world.dm_file_shares)

    def is_member(self, channel_id: str, team_id: str | None = None) -> bool:
        with self._world.lock:
            return self._team(team_id).channels[channel_id].is_member

    @property
    def files(self) -> list[dict[str, Any]]:
        with self._world.lock:
            return list(self._world.files)

    @property
    def home_views(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._world.lock:
            return dict(self._world.home_views)

    @property
    def opened_views(self) -> list[dict[str, Any]]:
        with self._world.lock:
            return list(self._world.opened_views)

    @property
    def updated_views(self) -> list[dict[str, Any]]:
        with self._world.lock:
            return list(self._world.updated_views)

    def messages_in(self, channel: str) -> list[Message]:
        """The messages a channel shows (ephemeral and response_url ones included, updates applied)."""
        with self._world.lock:
            return [m for m in self._world.messages if m.channel == channel and m.kind != "update"]

    def response_url_answer(self, response_url: str) -> tuple[int, Message | None]:
        """How many times the app posted to ``response_url`` (as ``new_response_url`` made it), and the
        message it shows now: the first answer, with any ``replace_original`` applied to it."""
        path = response_url[len(self.root_url):] if response_url.startswith(self.root_url) else response_url
        with self._world.lock:
            state = self._world.response_urls.get(path)
            return (state.uses, state.last_message) if state else (0, None)

    def calls_to(self, method: str) -> list[Call]:
        with self._world.lock:
            return [c for c in self._world.calls if c.method == method]

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until every request received has been answered (a delayed call has taken effect, as Slack
        posts a message it accepted after the client stopped waiting): count what Slack got after that."""
        self.wait_for(lambda: self._world.in_flight == 0, timeout=timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate`` until it holds; on timeout fail with the calls the stand-in saw."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout} s; {self.describe()}")
            time.sleep(0.01)

    def describe(self, last: int = 15) -> str:
        """A short account of the latest calls and messages, for failure messages."""
        with self._world.lock:
            calls = self._world.calls[-last:]
            lines = [f"{len(self._world.calls)} calls, {len(self._world.messages)} messages; latest calls:"]
            for c in calls:
                outcome = "ok" if c.response.get("ok") else c.response.get("error")
                lines.append(f"  {c.method} -> {c.status} {outcome}")
        return "\n".join(lines)

    def reset(self) -> None:
        """Forget calls, messages, files, views and injected failures; keep teams, users and channels."""
        with self._world.lock:
            w = self._world
            for collection in (w.calls, w.messages, w.files, w.opened_views, w.updated_views, w.dm_file_shares):
                collection.clear()
            for mapping in (w.home_views, w.views, w.stored_files, w.failures, w.delays, w.triggers):
                mapping.clear()
