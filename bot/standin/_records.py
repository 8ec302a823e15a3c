"""What the stand-in knows (teams, users, channels, files, issued URLs) and what it records (calls,
messages). Plain data; all mutation happens under ``World.lock`` in the other modules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One request the stand-in received: Web API method name, ``"upload_url"`` or ``"response_url"``."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    token: str | None
    status: int
    response: dict[str, Any]


@dataclass
class Message:
    """One message Slack accepted (or an ``update`` of one). ``messages_in`` shows updates in place."""

    team_id: str
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    user: str | None  # the recipient of an ephemeral message, or the user a response_url answers
    kind: str  # "message" | "ephemeral" | "response_url" | "update"
    response_type: str | None = None  # response_url only: "ephemeral" | "in_channel"
    replace_original: bool = False
    metadata: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)  # ids of files shared with this message
    delete_original: bool = False
    attachments: list[dict[str, Any]] | None = None
    broadcast: bool = False  # a thread reply also sent to the channel (reply_broadcast)


@dataclass
class User:
    id: str
    team_id: str
    name: str
    locale: str
    tz: str
    is_admin: bool
    is_owner: bool = False
    is_bot: bool = False


@dataclass
class Channel:
    id: str
    team_id: str
    name: str
    is_member: bool
    is_private: bool
    im_user: str | None = None  # set for a direct message channel with the bot


@dataclass
class Team:
    id: str
    name: str
    bot_user_id: str
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in (self.name or self.id).lower()).strip("-")
        return slug or self.id.lower()

    @property
    def bot_id(self) -> str:
        return "B" + self.bot_user_id[1:]


@dataclass
class StoredFile:
    id: str
    team_id: str
    filename: str
    length: int
    alt_txt: str | None
    upload_secret: str
    content: bytes | None = None  # None until the bytes reach the upload URL
    completed: bool = False
    title: str = ""
    shared_to: set[str] = field(default_factory=set)
    ready_at: float | None = None  # World.clock() time from which blocks may reference it (None: not uploaded)


@dataclass
class ResponseURL:
    team_id: str
    channel_id: str
    user_id: str
    created: float
    message_ts: str | None  # the message a block action came from, for replace_original
    uses: int = 0
    last_message: Message | None = None  # the last message posted through it


@dataclass
class Trigger:
    team_id: str
    user_id: str
    created: float
    used: bool = False


@dataclass
class OAuthCode:
    team_id: str
    team_name: str
    bot_token: str
    bot_user_id: str
    installer_user_id: str
    created: float
    used: bool = False


@dataclass
class Failure:
    status: int
    retry_after: int
    error: str | None
    times: int


@dataclass
class World:
    """Everything the server shares between request threads. Guard every access with ``lock``."""

    clock: Callable[[], float]
    app_id: str
    client_id: str
    client_secret: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    teams: dict[str, Team] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # bot token -> team id
    revoked_tokens: set[str] = field(default_factory=set)  # by auth.revoke: answered token_revoked, as Slack does
    calls: list[Call] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    stored_files: dict[str, StoredFile] = field(default_factory=dict)
    home_views: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    opened_views: list[dict[str, Any]] = field(default_factory=list)
    updated_views: list[dict[str, Any]] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # view id -> current view
    response_urls: dict[str, ResponseURL] = field(default_factory=dict)  # path -> state
    triggers: dict[str, Trigger] = field(default_factory=dict)
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    delays: dict[str, list[list[float]]] = field(default_factory=dict)  # method -> [[seconds, times]]
    in_flight: int = 0  # requests received and not answered yet (a delayed call still to take effect)
    # Slack processes an upload before an image block may show it (python-slack-sdk#1521): seconds of
    # World.clock() during which referencing the file is refused (invalid_blocks)
    file_ready_delay: float = 0.2
    dm_file_shares: list[dict[str, Any]] = field(default_factory=list)  # files shared into a DM with the bot
    counter: int = 0
    last_ts_us: int = 0

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}0{self.counter:07X}"

    def next_ts(self) -> str:
        """A message ts: wall-clock seconds and microseconds, unique and increasing."""
        us = max(int(time.time() * 1_000_000), self.last_ts_us + 1)
        self.last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def find_message(self, team_id: str, channel: str, ts: str) -> Message | None:
        for m in self.messages:
            if m.kind != "update" and m.team_id == team_id and m.channel == channel and m.ts == ts:
                return m
        return None
