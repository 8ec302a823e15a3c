"""What every Web API method of the stand-in shares: the request, the error, argument parsing, channel
resolution as Slack does it, message content validation and the JSON shapes Slack answers with."""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from typing import Any

from ._records import Channel, Message, StoredFile, Team, User, World
from .blocks import validate_blocks

MAX_TEXT = 40_000


class ApiError(Exception):
    """A Slack error answer: HTTP 200 ``{"ok": false, "error": code, ...extra}``."""

    def __init__(self, error: str, *, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = dict(extra)
        if messages:
            self.extra["response_metadata"] = {"messages": messages}


@dataclass
class Req:
    """One Web API call as a method implementation sees it (the world's lock is held)."""

    world: World
    root_url: str
    params: dict[str, Any]
    team: Team  # the token's team (a placeholder for methods that need no token)
    token: str | None
    headers: dict[str, str]

    def arg(self, key: str) -> str | None:
        """A string argument; absent and empty both read as None (form bodies send ``key=``)."""
        value = self.params.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        raise ApiError("invalid_arguments", messages=[f"[ERROR] must provide a string [json-pointer:/{key}]"])

    def flag(self, key: str) -> bool:
        return self.params.get(key) in (True, 1, "1", "true", "True")

    def json_arg(self, key: str, error: str) -> Any:
        """An argument that is JSON: a list/dict in a JSON body, a JSON string in a form body."""
        value = self.params.get(key)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value

    def require(self, key: str) -> str:
        value = self.arg(key)
        if value is None:
            raise ApiError("invalid_arguments", messages=[f"[ERROR] missing required field: {key} [json-pointer:/]"])
        return value


# -- channels and users --------------------------------------------------------------------------------

def dm_channel_id(user_id: str) -> str:
    """The id of the bot's direct message channel with a user: stable, ``U0ALICE`` -> ``D0ALICE``."""
    return "D" + user_id[1:]


def dm_channel(world: World, team: Team, user_id: str) -> Channel:
    """The bot's direct message channel with ``user_id`` (the app's Messages tab: it always exists)."""
    channel_id = dm_channel_id(user_id)
    channel = team.channels.get(channel_id)
    if channel is None:
        channel = Channel(channel_id, team.id, user_id, is_member=True, is_private=True, im_user=user_id)
        team.channels[channel_id] = channel
    return channel


def find_channel(req: Req, channel_arg: str | None) -> Channel:
    """The channel an argument names (id, ``#name``, name, or a user id meaning the DM with that user),
    as the bot sees it: unknown and invisible (private or DM, bot not a member) are ``channel_not_found``."""
    team = req.team
    if not channel_arg:
        raise ApiError("channel_not_found")
    channel = team.channels.get(channel_arg)
    if channel is None and channel_arg[0] in "UW" and channel_arg in team.users:
        channel = dm_channel(req.world, team, channel_arg)
    if channel is None and channel_arg[0] == "D" and "U" + channel_arg[1:] in team.users:
        channel = dm_channel(req.world, team, "U" + channel_arg[1:])
    if channel is None:
        name = channel_arg.removeprefix("#")
        channel = next((c for c in team.channels.values() if c.name == name and c.im_user is None), None)
    if channel is None or (not channel.is_member and (channel.is_private or channel.im_user)):
        raise ApiError("channel_not_found")
    return channel


def find_user(team: Team, user_id: str | None, error: str = "user_not_found") -> User:
    user = team.users.get(user_id or "")
    if user is None:
        raise ApiError(error)
    return user


# -- message content -----------------------------------------------------------------------------------

def file_check_for(req: Req, visible_channels: set[str] | None):
    """A ``slack_file`` check: the file must be known, complete, and shared in one of ``visible_channels``
    (None: anywhere in the team, as for a view). Bot-private files are refused, as Slack does."""

    def check(ref: dict[str, Any]) -> str | None:
        stored = lookup_file(req, ref)
        if stored is None or not stored.completed:
            return "invalid slack_file: no such file"
        if not file_ready(req, stored):  # referenced too early after its upload, as Slack refuses it
            return "invalid slack file: the file is still being processed"
        if not stored.shared_to or (visible_channels is not None and not stored.shared_to & visible_channels):
            return "invalid slack_file: the file is not shared in a conversation the reader can see"
        return None

    return check


def lookup_file(req: Req, ref: dict[str, Any]) -> StoredFile | None:
    if "id" in ref:
        stored = req.world.stored_files.get(str(ref["id"]))
    else:
        stored = next((f for f in req.world.stored_files.values()
                       if ref.get("url") in (file_url(req, f), permalink_file(req, f))), None)
    return stored if stored is not None and stored.team_id == req.team.id else None


def message_content(req: Req, *, visible: set[str] | None, surface: str = "message",
                    require: bool = True) -> tuple[str, list | None, list | None]:
    """(text, blocks, attachments) checked as chat.postMessage checks them."""
    text = req.arg("text") or ""
    blocks = req.json_arg("blocks", "invalid_blocks_format")
    attachments = req.json_arg("attachments", "invalid_attachments")
    if blocks is not None and not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    if require and not text and not blocks and not attachments:
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    check = file_check_for(req, visible)
    if blocks:
        errors = validate_blocks(blocks, surface=surface, file_check=check) or image_download_errors(blocks)
        if errors:
            raise ApiError("invalid_blocks", messages=errors)
    for i, attachment in enumerate(attachments or []):
        if not isinstance(attachment, dict):
            raise ApiError("invalid_attachments")
        if "blocks" in attachment:
            errors = validate_blocks(attachment["blocks"], pointer=f"/attachments/{i}/blocks", file_check=check)
            if errors:
                raise ApiError("invalid_attachments", messages=errors)
    return text, blocks or None, attachments or None


IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
IMAGE_FETCH_TIMEOUT = 5.0


def image_download_errors(blocks: list, pointer: str = "/blocks") -> list[str]:
    """Slack downloads every ``image_url`` of a message when it is posted, and refuses the message
    (``invalid_blocks``, "downloading image failed [json-pointer:.../image_url]") when it cannot: an
    address Slack cannot reach, an error status, or a body that is not an image. So does the stand-in
    (python-slack-sdk#1782)."""
    import urllib.error
    import urllib.request

    found = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "image" and isinstance(block.get("image_url"), str):
            found.append((block["image_url"], f"{pointer}/{i}/image_url"))
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "image" and isinstance(accessory.get("image_url"), str):
            found.append((accessory["image_url"], f"{pointer}/{i}/accessory/image_url"))
        if block.get("type") == "context":
            for j, el in enumerate(block.get("elements") or []):
                if isinstance(el, dict) and el.get("type") == "image" and isinstance(el.get("image_url"), str):
                    found.append((el["image_url"], f"{pointer}/{i}/elements/{j}/image_url"))
    errors = []
    for url, where in found:
        try:
            with urllib.request.urlopen(url, timeout=IMAGE_FETCH_TIMEOUT) as resp:  # noqa: S310 - as Slack fetches
                ok = resp.status == 200 and resp.read(16).startswith(IMAGE_MAGIC)
        except (OSError, ValueError, urllib.error.URLError):
            ok = False
        if not ok:
            errors.append(f"[ERROR] downloading image failed [json-pointer:{where}]")
    return errors


def metadata_arg(req: Req) -> dict[str, Any] | None:
    metadata = req.json_arg("metadata", "invalid_metadata_format")
    if metadata is None:
        return None
    if (not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)):
        raise ApiError("invalid_metadata_format")
    return metadata


def thread_arg(req: Req, channel: Channel) -> str | None:
    thread_ts = req.arg("thread_ts")
    if thread_ts is not None and req.world.find_message(req.team.id, channel.id, thread_ts) is None:
        raise ApiError("thread_not_found")
    return thread_ts


# -- JSON shapes ---------------------------------------------------------------------------------------

def message_json(req: Req, m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "message", "subtype": "bot_message", "text": m.text, "user": req.team.bot_user_id,
        "bot_id": req.team.bot_id, "app_id": req.world.app_id, "team": m.team_id, "ts": m.ts,
    }
    for key in ("blocks", "attachments", "thread_ts", "metadata"):
        if getattr(m, key):
            out[key] = getattr(m, key)
    if m.files:
        out["files"] = [{"id": f} for f in m.files]
    return out


def user_json(user: User, *, include_locale: bool) -> dict[str, Any]:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    offset = ZoneInfo(user.tz).utcoffset(datetime.now())
    out = {
        "id": user.id, "team_id": user.team_id, "name": user.name, "deleted": False,
        "real_name": user.name, "tz": user.tz, "tz_label": user.tz,
        "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
        "is_admin": user.is_admin, "is_owner": user.is_owner, "is_primary_owner": user.is_owner,
        "is_restricted": False, "is_ultra_restricted": False, "is_bot": user.is_bot, "is_app_user": False,
        "profile": {"real_name": user.name, "display_name": user.name, "team": user.team_id},
    }
    if include_locale:
        out["locale"] = user.locale
    return out


def channel_json(channel: Channel) -> dict[str, Any]:
    if channel.im_user:
        return {"id": channel.id, "is_im": True, "is_org_shared": False, "user": channel.im_user,
                "is_user_deleted": False, "created": 0}
    return {
        "id": channel.id, "name": channel.name, "is_channel": not channel.is_private,
        "is_group": False, "is_im": False, "is_mpim": False, "is_private": channel.is_private,
        "is_archived": False, "is_general": channel.name == "general", "is_member": channel.is_member,
        "context_team_id": channel.team_id, "created": 0,
    }


def file_url(req: Req, f: StoredFile) -> str:
    return f"{req.root_url}/files/{f.team_id}/{f.id}/{f.filename}"


def permalink_file(req: Req, f: StoredFile) -> str:
    return f"https://{req.team.domain}.slack.com/files/{req.team.bot_user_id}/{f.id}/{f.filename}"


def file_json(req: Req, f: StoredFile, shares: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    mimetype = mimetypes.guess_type(f.filename)[0] or "application/octet-stream"
    public = {c: v for c, v in (shares or {}).items() if not req.team.channels[c].is_private}
    private = {c: v for c, v in (shares or {}).items() if req.team.channels[c].is_private}
    out: dict[str, Any] = {
        "id": f.id, "name": f.filename, "title": f.title, "mimetype": mimetype,
        "filetype": f.filename.rsplit(".", 1)[-1].lower() if "." in f.filename else "binary",
        "size": len(f.content or b""), "user": req.team.bot_user_id, "user_team": f.team_id,
        "url_private": file_url(req, f), "url_private_download": file_url(req, f),
        "permalink": permalink_file(req, f), "is_public": bool(public),
        "channels": sorted(c for c in f.shared_to if not req.team.channels[c].is_private),
        "groups": sorted(c for c in f.shared_to if req.team.channels[c].is_private and
                         not req.team.channels[c].im_user),
        "ims": sorted(c for c in f.shared_to if req.team.channels[c].im_user),
        "shares": ({"public": public} if public else {}) | ({"private": private} if private else {}),
    }
    if not file_ready(req, f):  # still being processed: Slack does not know what it is yet
        out |= {"mimetype": "", "filetype": ""}
    elif mimetype.startswith("image/"):
        out |= {f"thumb_{size}": f"{file_url(req, f)}?thumb={size}" for size in (64, 80, 360)}
    if f.alt_txt:
        out["alt_txt"] = f.alt_txt
    return out


def file_ready(req: Req, f: StoredFile) -> bool:
    return f.completed and f.ready_at is not None and req.world.clock() >= f.ready_at
