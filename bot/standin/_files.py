"""The external file upload flow: files.getUploadURLExternal, the upload URL, then
files.completeUploadExternal (which shares the file and, with a channel, posts the message)."""

from __future__ import annotations

import secrets
from typing import Any

from ._common import ApiError, Req, file_json, find_channel, thread_arg
from ._records import Message, StoredFile, World
from .blocks import validate_blocks
from .multipart import parse_multipart


def get_upload_url(req: Req) -> dict[str, Any]:
    filename = req.require("filename")
    length_arg = req.require("length")
    try:
        length = int(length_arg)
    except ValueError:
        raise ApiError("invalid_arguments", messages=["[ERROR] must provide an integer [json-pointer:/length]"]) from None
    if length < 1:
        raise ApiError("invalid_arguments", messages=["[ERROR] must be greater than 0 [json-pointer:/length]"])
    stored = StoredFile(req.world.next_id("F"), req.team.id, filename, length, req.arg("alt_txt"),
                        upload_secret=secrets.token_urlsafe(12))
    req.world.stored_files[stored.id] = stored
    return {"upload_url": f"{req.root_url}/upload/v1/{stored.upload_secret}", "file_id": stored.id}


def receive_upload(world: World, secret: str, body: bytes, content_type: str) -> tuple[int, str]:
    """The upload URL: raw bytes, or a multipart form whose file part carries them. No auth, as Slack."""
    stored = next((f for f in world.stored_files.values() if f.upload_secret == secret), None)
    if stored is None or stored.completed:
        return 404, "not_found"
    if content_type.startswith("multipart/form-data"):
        parts = parse_multipart(body, content_type)
        file_part = next((p for p in parts if p.filename is not None), None)
        if file_part is None:
            return 400, "no_file_data"
        body = file_part.content
    stored.content = body
    return 200, f"OK - {len(body)}"


def complete_upload(req: Req) -> dict[str, Any]:
    entries = req.json_arg("files", "invalid_arguments")
    if not isinstance(entries, list) or not entries:
        raise ApiError("invalid_arguments", messages=["[ERROR] missing required field: files [json-pointer:/]"])
    targets: list = []
    for channel_arg in [req.arg("channel_id")] + (req.arg("channels") or "").split(","):
        if channel_arg:
            channel = find_channel(req, channel_arg)
            if not channel.is_member:  # chat:write.public does not cover files
                raise ApiError("not_in_channel")
            targets.append(channel)
    if req.arg("thread_ts") and len(targets) != 1:
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] thread_ts needs exactly one channel [json-pointer:/thread_ts]"])
    thread_ts = thread_arg(req, targets[0]) if targets else None
    stored_files = []
    for entry in entries:
        stored = req.world.stored_files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
        if stored is None or stored.team_id != req.team.id or stored.completed or stored.content is None:
            raise ApiError("file_not_found")
        stored_files.append((stored, entry))
    comment = req.arg("initial_comment")
    blocks = None if comment else req.json_arg("blocks", "invalid_blocks_format")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise ApiError("invalid_blocks", messages=errors)
    shares: dict[str, list[dict[str, Any]]] = {}
    for channel in targets:
        message = Message(req.team.id, channel.id, req.world.next_ts(), comment or "", blocks, thread_ts, None,
                          "message", files=[f.id for f, _ in stored_files])
        req.world.messages.append(message)
        shares[channel.id] = [{"ts": message.ts, "channel_name": channel.name, "team_id": req.team.id,
                               "share_user_id": req.team.bot_user_id, "reply_count": 0}
                              | ({"thread_ts": thread_ts} if thread_ts else {})]
    answer = []
    for stored, entry in stored_files:
        stored.completed = True
        stored.ready_at = req.world.clock() + req.world.file_ready_delay
        stored.title = str(entry.get("title") or stored.filename)
        stored.shared_to.update(c.id for c in targets)
        req.world.dm_file_shares.extend({"file_id": stored.id, "team_id": req.team.id, "channel": c.id,
                                         "user": c.im_user} for c in targets if c.im_user)
        req.world.files.append({
            "id": stored.id, "team_id": req.team.id, "filename": stored.filename, "title": stored.title,
            "length": len(stored.content or b""), "content": stored.content,
            "channel_id": targets[0].id if targets else None, "channels": [c.id for c in targets],
            "thread_ts": thread_ts, "initial_comment": comment, "alt_txt": stored.alt_txt,
        })
        answer.append(file_json(req, stored, shares))
    return {"files": answer}


def info(req: Req) -> dict[str, Any]:
    stored = req.world.stored_files.get(req.arg("file") or "")
    if stored is None or stored.team_id != req.team.id or not stored.completed:
        raise ApiError("file_not_found")
    return {"file": file_json(req, stored)}


METHODS = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
    "files.info": info,
}
