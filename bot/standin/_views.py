"""views.* methods: Home tab and modals, with Slack's trigger rules (3 seconds, one use)."""

from __future__ import annotations

import hashlib
from typing import Any

from ._common import ApiError, Req, file_check_for, find_user
from .blocks import validate_view

TRIGGER_LIFETIME = 3.0


def _view_arg(req: Req, allowed: tuple[str, ...]) -> dict[str, Any]:
    view = req.json_arg("view", "invalid_arguments")
    if view is None:
        raise ApiError("invalid_arguments", messages=["[ERROR] missing required field: view [json-pointer:/]"])
    if isinstance(view, dict) and view.get("type") in ("modal", "home") and view["type"] not in allowed:
        raise ApiError("invalid_arguments", messages=[
            f"[ERROR] must be one of the allowed types: {', '.join(allowed)} [json-pointer:/view/type]"])
    errors = validate_view(view, file_check=file_check_for(req, None))
    if errors:
        raise ApiError("invalid_arguments", messages=errors)
    return view


def _store(req: Req, view: dict[str, Any], view_id: str, root_id: str | None = None) -> dict[str, Any]:
    req.world.counter += 1
    digest = hashlib.sha1(f"{view_id}:{req.world.counter}".encode()).hexdigest()[:16]
    stored = {
        **view, "id": view_id, "team_id": req.team.id, "app_id": req.world.app_id, "bot_id": req.team.bot_id,
        "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""), "state": {"values": {}},
        "hash": f"{req.world.counter}.{digest}", "root_view_id": root_id or view_id, "previous_view_id": None,
        "app_installed_team_id": req.team.id,
    }
    req.world.views[view_id] = stored
    return stored


def _check_hash(req: Req, current: dict[str, Any] | None) -> None:
    wanted = req.arg("hash")
    if wanted is not None and current is not None and wanted != current["hash"]:
        raise ApiError("hash_conflict")


def publish(req: Req) -> dict[str, Any]:
    user = find_user(req.team, req.arg("user_id"))
    view = _view_arg(req, ("home",))
    current = req.world.home_views.get((req.team.id, user.id))
    _check_hash(req, current)
    stored = _store(req, view, current["id"] if current else req.world.next_id("V"))
    req.world.home_views[(req.team.id, user.id)] = stored
    return {"view": stored}


def _exchange_trigger(req: Req) -> None:
    """Check the trigger_id before the view and spend it only once the view is valid."""
    trigger_id = req.arg("trigger_id") or req.arg("interactivity_pointer")
    trigger = req.world.triggers.get(trigger_id or "")
    if trigger is None or trigger.team_id != req.team.id:
        raise ApiError("invalid_trigger_id")
    if trigger.used:
        raise ApiError("exchanged_trigger_id")
    if req.world.clock() - trigger.created > TRIGGER_LIFETIME:
        raise ApiError("expired_trigger_id")


def open_view(req: Req) -> dict[str, Any]:
    _exchange_trigger(req)
    view = _view_arg(req, ("modal",))
    req.world.triggers[req.arg("trigger_id") or req.arg("interactivity_pointer") or ""].used = True
    stored = _store(req, view, req.world.next_id("V"))
    req.world.opened_views.append(stored)
    return {"view": stored}


def update_view(req: Req) -> dict[str, Any]:
    view_id, external_id = req.arg("view_id"), req.arg("external_id")
    if view_id is None and external_id is None:
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] must provide one of view_id or external_id [json-pointer:/]"])
    current = next((v for v in req.world.views.values() if v["team_id"] == req.team.id and (
        v["id"] == view_id if view_id else v["external_id"] == external_id)), None)
    if current is None:
        raise ApiError("not_found")
    _check_hash(req, current)
    view = _view_arg(req, (current["type"],))
    stored = _store(req, view, current["id"], current["root_view_id"])
    req.world.updated_views.append(stored)
    for key, home in list(req.world.home_views.items()):
        if home["id"] == current["id"]:
            req.world.home_views[key] = stored
    return {"view": stored}


METHODS = {
    "views.publish": publish,
    "views.open": open_view,
    "views.push": open_view,
    "views.update": update_view,
}
