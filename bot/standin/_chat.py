"""chat.* methods and the response_url, checked as Slack checks them."""

from __future__ import annotations

from typing import Any

from ._common import (
    ApiError,
    Req,
    dm_channel_id,
    find_channel,
    message_content,
    message_json,
    metadata_arg,
    thread_arg,
)
from ._records import Message

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60


def _check_team_arg(req: Req) -> None:
    """Multi-workspace apps may name the team; it must be the token's own."""
    team_id = req.arg("team_id")
    if team_id is not None and team_id != req.team.id:
        raise ApiError("team_access_not_granted")


def post_message(req: Req) -> dict[str, Any]:
    _check_team_arg(req)
    channel = find_channel(req, req.arg("channel"))
    text, blocks, attachments = message_content(req, visible={channel.id})
    thread_ts = thread_arg(req, channel)
    metadata = metadata_arg(req)
    message = Message(req.team.id, channel.id, req.world.next_ts(), text, blocks, thread_ts, None, "message",
                      metadata=metadata, attachments=attachments, broadcast=bool(thread_ts and req.flag("reply_broadcast")))
    req.world.messages.append(message)
    return {"channel": channel.id, "ts": message.ts, "message": message_json(req, message)}


def post_ephemeral(req: Req) -> dict[str, Any]:
    _check_team_arg(req)
    channel = find_channel(req, req.arg("channel"))
    user = req.team.users.get(req.arg("user") or "")
    if user is None or user.is_bot:
        raise ApiError("user_not_in_channel")
    visible = {channel.id, dm_channel_id(user.id)}
    text, blocks, attachments = message_content(req, visible=visible)
    thread_ts = thread_arg(req, channel)
    message = Message(req.team.id, channel.id, req.world.next_ts(), text, blocks, thread_ts, user.id,
                      "ephemeral", attachments=attachments)
    req.world.messages.append(message)
    return {"message_ts": message.ts}


def update(req: Req) -> dict[str, Any]:
    channel = find_channel(req, req.arg("channel"))
    ts = req.arg("ts")
    original = req.world.find_message(req.team.id, channel.id, ts) if ts else None
    if original is None or original.kind == "ephemeral":
        raise ApiError("message_not_found")
    text, blocks, attachments = message_content(req, visible={channel.id})
    metadata = metadata_arg(req)
    if "text" in req.params:
        original.text = text
    if "blocks" in req.params:
        original.blocks = blocks
    if "attachments" in req.params:
        original.attachments = attachments
    if metadata is not None:
        original.metadata = metadata
    req.world.messages.append(Message(req.team.id, channel.id, original.ts, original.text, original.blocks,
                                      original.thread_ts, None, "update", metadata=original.metadata,
                                      attachments=original.attachments))
    return {"channel": channel.id, "ts": original.ts, "text": original.text,
            "message": message_json(req, original)}


def get_permalink(req: Req) -> dict[str, Any]:
    channel = find_channel(req, req.arg("channel"))
    ts = req.arg("message_ts")
    if ts is None or req.world.find_message(req.team.id, channel.id, ts) is None:
        raise ApiError("message_not_found")
    return {"channel": channel.id,
            "permalink": f"https://{req.team.domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"}


METHODS = {
    "chat.postMessage": post_message,
    "chat.postEphemeral": post_ephemeral,
    "chat.update": update,
    "chat.getPermalink": get_permalink,
}


def respond(req: Req, path: str, payload: Any) -> tuple[int, str]:
    """POST to a response_url: (HTTP status, plain-text body), as Slack answers (``200 ok``)."""
    world = req.world
    state = world.response_urls.get(path)
    if state is None:
        return 404, "no_service"
    if world.clock() - state.created > RESPONSE_URL_LIFETIME:
        return 404, "expired_url"
    if state.uses >= RESPONSE_URL_USES:
        return 404, "used_url"
    if not isinstance(payload, dict):
        return 400, "invalid_payload"
    req.params = payload
    channel = req.team.channels[state.channel_id]
    try:
        text, blocks, attachments = message_content(
            req, visible={channel.id, dm_channel_id(state.user_id)},
            require=not payload.get("delete_original"))
    except ApiError as exc:
        return 400, exc.error
    response_type = "in_channel" if payload.get("response_type") == "in_channel" else "ephemeral"
    replace = payload.get("replace_original") in (True, "true")
    original = world.find_message(req.team.id, channel.id, state.message_ts) if state.message_ts else None
    original = original or state.last_message
    if replace and original is not None:
        if original.kind == "ephemeral" or original.response_type == "ephemeral":
            response_type = "ephemeral"  # an ephemeral message can never become in_channel
        original.text, original.blocks, original.attachments = text, blocks, attachments
    state.uses += 1
    message = Message(
        req.team.id, channel.id, world.next_ts(), text, blocks, req.arg("thread_ts"), state.user_id,
        "response_url", response_type=response_type, replace_original=replace,
        delete_original=payload.get("delete_original") in (True, "true"), attachments=attachments,
    )
    world.messages.append(message)
    if not (replace and original is not None):
        state.last_message = message
    return 200, "ok"
