"""Exactly once on Slack's side (issue 14): every digest and alert message carries its delivery key in its
``metadata``; a delivery that may have reached Slack before is looked for in the channel before it is
posted again.

Slack has no idempotency key. What it offers is message metadata (``chat.postMessage(metadata=...)``,
returned by ``conversations.history`` / ``conversations.replies`` with ``include_all_metadata``), which
this module uses as one:

- ``deliver`` posts a claimed delivery. When the claim is a ``retry`` (an earlier attempt was released
  after an error, or taken over after its worker's lease expired), it first looks for the key in the
  channel (or the thread) since the key was first claimed, and records what it finds instead of posting.
- When Slack does not answer in time (a timeout: the message may have been accepted anyway), the worker
  keeps its lease, waits ``settle`` seconds for Slack to finish, and looks: found, it is recorded as
  sent; not found, the claim is released and the next attempt looks again before posting.
- A channel whose history cannot be read (a public channel the bot has not joined and cannot join, a
  channel name rather than an id) is said so in the delivery's notes, and the message is posted marked
  as possibly repeated.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import urllib.error
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from kpi.state.delivery import Claim, DeliveryLog

from .answer import join_channel

log = logging.getLogger("kpibot.delivery")

EVENT_TYPE = "kpibot_delivery"
# how long to wait, after Slack did not answer in time, before looking whether the message arrived
SETTLE_SECONDS = float(os.environ.get("KPIBOT_SLACK_SETTLE") or 30)
HISTORY_PAGES = 5  # 5 x 200 messages: far more than any channel gets between two attempts
LIST_PAGES = 10
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def delivery_metadata(key: str) -> dict:
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}


def key_of(message: dict) -> str | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != EVENT_TYPE:
        return None
    return (metadata.get("event_payload") or {}).get("key")


class HistoryUnavailable(Exception):
    """The channel's history cannot be read, so whether a message arrived cannot be known."""


class NotConfirmed(Exception):
    """Slack did not answer and the message is not in the channel after waiting: not sent (yet)."""


@dataclass(frozen=True)
class Delivered:
    channel: str
    ts: str
    found: bool = False  # an earlier attempt's message, found in the channel (nothing posted this time)


def ambiguous(exc: BaseException) -> bool:
    """A failure after which Slack may have posted the message anyway: a timeout, a connection dropped
    mid-request, an HTTP 5xx. A refused connection or an unknown host never reached Slack."""
    if isinstance(exc, SlackApiError):
        return exc.response.status_code >= 500
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return not isinstance(reason, ConnectionRefusedError | socket.gaierror)


def conversation_id(client: WebClient, channel: str) -> str:
    """The id whose history holds what was posted to ``channel``: an id, a user id (their DM with the
    bot), or a channel name (``#growth``, looked up with ``conversations.list``)."""
    if _CHANNEL_ID.match(channel):
        return channel
    if _USER_ID.match(channel):
        try:
            return client.conversations_open(users=channel)["channel"]["id"]
        except SlackApiError as exc:
            raise HistoryUnavailable(exc.response.get("error") or "conversations.open failed") from None
    name = channel.removeprefix("#")
    cursor = None
    for _ in range(LIST_PAGES):  # a channel given by name: its id, from the channels the bot can see
        try:
            page = client.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                             limit=1000, cursor=cursor)
        except SlackApiError as exc:
            raise HistoryUnavailable(exc.response.get("error") or "conversations.list failed") from None
        except OSError as exc:
            raise HistoryUnavailable(type(exc).__name__) from None
        for found in page.get("channels") or []:
            if found.get("name") == name:
                return found["id"]
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    raise HistoryUnavailable(f"no channel named '{name}' is visible to the bot")


def find_delivered(client: WebClient, channel: str, key: str, *, since: datetime | None,
                   thread_ts: str | None = None) -> Delivered | None:
    """The message carrying delivery ``key`` in ``channel`` (or in the thread ``thread_ts``) posted since
    ``since`` (a few minutes' margin before it), or None. Raises HistoryUnavailable."""
    conversation = conversation_id(client, channel)
    since = since or datetime.now(UTC) - timedelta(days=1)
    since = since if since.tzinfo is not None else since.replace(tzinfo=UTC)  # (the log's times are naive UTC)
    oldest = f"{(since - timedelta(minutes=10)).timestamp():.6f}"
    cursor = None
    joined = False
    for _ in range(HISTORY_PAGES):
        args = dict(channel=conversation, oldest=oldest, limit=200, include_all_metadata=True, cursor=cursor)
        try:
            page = (client.conversations_replies(ts=thread_ts, **args) if thread_ts
                    else client.conversations_history(**args))
        except SlackApiError as exc:
            error = exc.response.get("error")
            # a public channel posted to with chat:write.public: joined, then read
            if error == "not_in_channel" and not joined and join_channel(client, conversation):
                joined = True
                continue
            raise HistoryUnavailable(error or f"HTTP {exc.response.status_code}") from None
        except OSError as exc:
            raise HistoryUnavailable(type(exc).__name__) from None
        for message in page.get("messages") or []:
            if key_of(message) == key:
                return Delivered(conversation, message["ts"], found=True)
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def deliver(client: WebClient, log_: DeliveryLog, claim: Claim, *, channel: str, text: str, blocks: list | None,
            thread_ts: str | None = None, settle: float | None = None, repeated_text: str | None = None,
            **post_args) -> Delivered:
    """Post ``claim``'s message once. Raises SlackApiError (Slack refused it: not posted) or NotConfirmed
    (no answer, and not found after waiting: release the claim). A retry whose channel cannot be read is
    posted with ``repeated_text`` (the text saying it may be a repeat) and noted so."""
    if claim.retry:
        try:
            found = find_delivered(client, channel, claim.key, since=claim.since, thread_ts=thread_ts)
        except HistoryUnavailable as exc:
            log_.note(claim, f"an earlier attempt may have reached Slack, and the channel cannot be read "
                             f"({exc}): posting, marked as possibly repeated")
            return post(client, log_, claim, channel=channel, text=repeated_text or text, blocks=blocks,
                        thread_ts=thread_ts, settle=settle, **post_args)
        if found is not None:
            log_.note(claim, f"found in {found.channel} (ts {found.ts}): an earlier attempt had reached Slack; "
                             f"not posted again")
            return found
        log_.note(claim, "not in the channel: no earlier attempt reached Slack")
    return post(client, log_, claim, channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, settle=settle,
                **post_args)


def post(client: WebClient, log_: DeliveryLog, claim: Claim, *, channel: str, text: str, blocks: list | None,
         thread_ts: str | None = None, settle: float | None = None, **post_args) -> Delivered:
    """``chat.postMessage`` with the delivery key in the metadata; after an answer that never came, wait
    ``settle`` seconds (the claim's lease kept alive) and look whether Slack posted it."""
    log_.note(claim, "posting")
    try:
        posted = client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
                                         metadata=delivery_metadata(claim.key), **post_args)
    except (SlackApiError, OSError) as exc:
        if not ambiguous(exc):
            raise
        wait = SETTLE_SECONDS if settle is None else settle
        what = (f"HTTP {exc.response.status_code}" if isinstance(exc, SlackApiError) else type(exc).__name__)
        log_.note(claim, f"no clear answer from Slack ({what}): looking in the channel in {wait:g} s")
        log.warning("delivery %s: no clear answer from Slack (%s); looking in the channel in %g s", claim.key, what, wait)
        with log_.hold(claim):
            threading.Event().wait(wait)
            try:
                found = find_delivered(client, channel, claim.key, since=claim.since, thread_ts=thread_ts)
            except HistoryUnavailable as unreadable:
                raise NotConfirmed(f"{what}; the channel cannot be read ({unreadable})") from None
        if found is None:
            raise NotConfirmed(f"{what}; not in the channel after {wait:g} s") from None
        log_.note(claim, f"found in {found.channel} (ts {found.ts}): Slack had accepted it late")
        return found
    return Delivered(posted.get("channel") or channel, posted["ts"])


def record(log_: DeliveryLog, claim: Claim, delivered: Delivered, *, channel: str | None = None) -> None:
    """The delivery marked sent, with how: posted now, or an earlier attempt's message found in the channel."""
    log_.sent(claim, ts=delivered.ts, channel=channel or delivered.channel,
              note="recorded as sent" if delivered.found else "sent")


__all__ = ["Delivered", "HistoryUnavailable", "NotConfirmed", "ambiguous", "deliver", "record",
           "delivery_metadata", "find_delivered", "key_of", "post"]
