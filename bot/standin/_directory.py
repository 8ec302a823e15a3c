"""Who and where: auth.test, users.info, conversations.info/open, and the OAuth install exchange."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ._common import ApiError, Req, channel_json, dm_channel, find_channel, find_user, message_json, user_json
from ._records import Channel, Team, User, World

OAUTH_CODE_LIFETIME = 10 * 60
BOT_SCOPES = ("commands,chat:write,chat:write.public,channels:join,channels:read,groups:read,channels:history,"
              "groups:history,im:history,mpim:history,files:write,im:write,users:read")


def register_team(world: World, team_id: str, name: str, bot_token: str, bot_user_id: str) -> Team:
    """Add (or refresh) a workspace and make ``bot_token`` one of its bot tokens."""
    team = world.teams.get(team_id)
    if team is None:
        team = world.teams[team_id] = Team(team_id, name or team_id, bot_user_id)
    team.name = name or team.name
    team.bot_user_id = bot_user_id
    team.users.setdefault(bot_user_id, User(bot_user_id, team_id, "kpibot", "en-US", "UTC", False, is_bot=True))
    world.tokens[bot_token] = team_id
    return team


def auth_test(req: Req) -> dict[str, Any]:
    team = req.team
    return {"url": f"https://{team.domain}.slack.com/", "team": team.name, "user": "kpibot",
            "team_id": team.id, "user_id": team.bot_user_id, "bot_id": team.bot_id,
            "is_enterprise_install": False}


def auth_revoke(req: Req) -> dict[str, Any]:
    """auth.revoke: the calling token stops working (``token_revoked`` afterwards); ``test=1`` changes nothing."""
    if req.flag("test"):
        return {"revoked": False}
    req.world.tokens.pop(req.token or "", None)
    req.world.revoked_tokens.add(req.token or "")
    return {"revoked": True}


def api_test(req: Req) -> dict[str, Any]:
    return {"args": {k: v for k, v in req.params.items() if k != "token"}}


def users_info(req: Req) -> dict[str, Any]:
    user = find_user(req.team, req.arg("user"))
    return {"user": user_json(user, include_locale=req.flag("include_locale"))}


def conversations_info(req: Req) -> dict[str, Any]:
    return {"channel": channel_json(find_channel(req, req.arg("channel")))}


def conversations_open(req: Req) -> dict[str, Any]:
    channel_arg, users_arg = req.arg("channel"), req.arg("users")
    if channel_arg:
        channel = find_channel(req, channel_arg)
        return {"channel": channel_json(channel) if req.flag("return_im") else {"id": channel.id},
                "no_op": True, "already_open": True}
    if not users_arg:
        raise ApiError("users_list_not_supplied")
    user_ids = [u.strip() for u in users_arg.split(",") if u.strip()]
    for user_id in user_ids:
        user = find_user(req.team, user_id)
        if user.is_bot:
            raise ApiError("cannot_dm_bot")
    if len(user_ids) == 1:
        existed = "D" + user_ids[0][1:] in req.team.channels
        channel = dm_channel(req.world, req.team, user_ids[0])
    else:
        key = ",".join(sorted(set(user_ids)))
        channel_id = "G0MP" + hashlib.sha1(key.encode()).hexdigest()[:7].upper()
        existed = channel_id in req.team.channels
        channel = req.team.channels.setdefault(
            channel_id, Channel(channel_id, req.team.id, "mpdm-" + key, is_member=True, is_private=True))
    answer: dict[str, Any] = {"channel": channel_json(channel) if req.flag("return_im") else {"id": channel.id}}
    if existed:
        answer |= {"no_op": True, "already_open": True}
    return answer


def conversations_join(req: Req) -> dict[str, Any]:
    """``channels:join``: the bot joins a public channel; private channels and DMs cannot be joined."""
    channel = find_channel(req, req.require("channel"))
    if channel.is_private or channel.im_user:
        raise ApiError("method_not_supported_for_channel_type")
    answer: dict[str, Any] = {}
    if channel.is_member:
        answer = {"warning": "already_in_channel",
                  "response_metadata": {"warnings": ["already_in_channel"]}}
    channel.is_member = True
    return {"channel": channel_json(channel)} | answer


MAX_HISTORY_LIMIT = 999


def _history_window(req: Req) -> tuple[float, float, int, int]:
    def number(key: str, default: float) -> float:
        value = req.arg(key)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ApiError("invalid_ts_" + key) from None

    oldest, latest = number("oldest", 0.0), number("latest", float("inf"))
    try:
        limit = int(req.arg("limit") or 100)
    except ValueError:
        raise ApiError("invalid_limit") from None
    cursor = req.arg("cursor")
    try:
        offset = int(cursor.removeprefix("page:")) if cursor else 0
    except ValueError:
        raise ApiError("invalid_cursor") from None
    return oldest, latest, max(1, min(limit, MAX_HISTORY_LIMIT)), offset


def _page(req: Req, found: list, offset: int, limit: int) -> dict[str, Any]:
    page = found[offset:offset + limit]
    with_metadata = req.flag("include_all_metadata")
    messages = []
    for m in page:
        out = message_json(req, m)
        if not with_metadata:  # as Slack: a message's metadata only with include_all_metadata
            out.pop("metadata", None)
        messages.append(out)
    more = offset + limit < len(found)
    return {"messages": messages, "has_more": more,
            "response_metadata": {"next_cursor": f"page:{offset + limit}" if more else ""}}


def _readable(req: Req):
    channel = find_channel(req, req.arg("channel"))
    if not channel.is_member and not channel.im_user:  # posting needs only chat:write.public; reading, membership
        raise ApiError("not_in_channel")
    return channel


def conversations_list(req: Req) -> dict[str, Any]:
    """``channels:read`` / ``groups:read``: the public channels, and the private ones the bot is in."""
    types = set((req.arg("types") or "public_channel").split(","))
    try:
        limit = max(1, min(int(req.arg("limit") or 100), 1000))
        offset = int((req.arg("cursor") or "page:0").removeprefix("page:"))
    except ValueError:
        raise ApiError("invalid_cursor") from None
    found = [c for c in req.team.channels.values() if c.im_user is None and (
        ("public_channel" in types and not c.is_private) or ("private_channel" in types and c.is_private and c.is_member))]
    page = found[offset:offset + limit]
    more = offset + limit < len(found)
    return {"channels": [channel_json(c) for c in page],
            "response_metadata": {"next_cursor": f"page:{offset + limit}" if more else ""}}


def conversations_history(req: Req) -> dict[str, Any]:
    """``channels:history`` (and groups:, im:, mpim:): the channel's messages, newest first; thread replies
    are not in it (only their parents, and replies broadcast to the channel)."""
    channel = _readable(req)
    oldest, latest, limit, offset = _history_window(req)
    found = [m for m in req.world.messages
             if m.kind == "message" and m.team_id == req.team.id and m.channel == channel.id
             and (m.thread_ts is None or m.thread_ts == m.ts or m.broadcast) and oldest < float(m.ts) <= latest]
    found.sort(key=lambda m: float(m.ts), reverse=True)
    return _page(req, found, offset, limit)


def conversations_replies(req: Req) -> dict[str, Any]:
    """A thread: its parent first, then its replies, oldest first."""
    channel = _readable(req)
    ts = req.require("ts")
    parent = req.world.find_message(req.team.id, channel.id, ts)
    if parent is None:
        raise ApiError("thread_not_found")
    oldest, latest, limit, offset = _history_window(req)
    replies = sorted((m for m in req.world.messages
                      if m.kind == "message" and m.team_id == req.team.id and m.channel == channel.id
                      and m.thread_ts == ts and m.ts != ts and oldest < float(m.ts) <= latest),
                     key=lambda m: float(m.ts))
    return _page(req, [parent, *replies], offset, limit)


def _client_credentials(req: Req) -> tuple[str | None, str | None]:
    header = next((v for k, v in req.headers.items() if k.lower() == "authorization"), "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, secret
        except ValueError:
            return None, None
    return req.arg("client_id"), req.arg("client_secret")


def oauth_v2_access(req: Req) -> dict[str, Any]:
    world = req.world
    client_id, client_secret = _client_credentials(req)
    if client_id != world.client_id:
        raise ApiError("invalid_client_id")
    if client_secret != world.client_secret:
        raise ApiError("bad_client_secret")
    code = world.oauth_codes.get(req.arg("code") or "")
    if code is None or code.used or world.clock() - code.created > OAUTH_CODE_LIFETIME:
        raise ApiError("invalid_code")
    code.used = True
    team = register_team(world, code.team_id, code.team_name, code.bot_token, code.bot_user_id)
    if code.installer_user_id not in team.users:
        team.users[code.installer_user_id] = User(code.installer_user_id, team.id, code.installer_user_id.lower(),
                                                  "en-US", "UTC", is_admin=True)
    return {
        "app_id": world.app_id, "authed_user": {"id": code.installer_user_id}, "scope": BOT_SCOPES,
        "token_type": "bot", "access_token": code.bot_token, "bot_user_id": team.bot_user_id,
        "team": {"id": team.id, "name": team.name}, "enterprise": None, "is_enterprise_install": False,
    }


METHODS = {
    "auth.test": auth_test,
    "auth.revoke": auth_revoke,
    "users.info": users_info,
    "conversations.info": conversations_info,
    "conversations.open": conversations_open,
    "conversations.join": conversations_join,
    "conversations.history": conversations_history,
    "conversations.list": conversations_list,
    "conversations.replies": conversations_replies,
}
NO_TOKEN_METHODS = {
    "api.test": api_test,
    "oauth.v2.access": oauth_v2_access,
}
