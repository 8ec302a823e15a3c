"""Block Kit validation as strict as Slack's, with Slack's error text.

``validate_blocks`` returns Slack-style messages such as
``"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``; an empty list means
the blocks are valid. ``validate_view`` does the same for a modal or Home tab view. Checks: block and
element types, the documented length and count limits, required fields, duplicate ``block_id``s, and
that an image's ``slack_file`` refers to a file the reader can see (``file_check``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MAX_BLOCKS", "validate_blocks", "validate_view"]

MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
_BLOCK_TYPES = {"section", "divider", "image", "actions", "context", "header", "input", "rich_text", "markdown"}
_SELECTS = {
    f"{multi}{kind}_select"
    for multi in ("", "multi_")
    for kind in ("static", "external", "users", "conversations", "channels")
}
_INTERACTIVE = {"button", "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "timepicker"}
_ACCESSORY = _INTERACTIVE | _SELECTS | {"image"}
_ACTIONS = _INTERACTIVE | _SELECTS | {"rich_text_input"}
_INPUTS = (_INTERACTIVE - {"button", "overflow"}) | _SELECTS | {
    "plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input", "file_input",
}

FileCheck = Callable[[dict[str, Any]], "str | None"]


def _err(text: str, pointer: str) -> str:
    return f"[ERROR] {text} [json-pointer:{pointer}]"


class _Checker:
    def __init__(self, surface: str, file_check: FileCheck | None) -> None:
        self.surface = surface
        self.file_check = file_check
        self.errors: list[str] = []
        self.block_ids: set[str] = set()

    def add(self, text: str, pointer: str) -> None:
        self.errors.append(_err(text, pointer))

    # -- primitives ------------------------------------------------------------------------------------

    def string(self, obj: dict, key: str, ptr: str, *, max_len: int, required: bool = False,
               min_len: int = 0) -> None:
        if key not in obj:
            if required:
                self.add(f"missing required field: {key}", ptr)
            return
        value = obj[key]
        if not isinstance(value, str):
            self.add("must provide a string", f"{ptr}/{key}")
        elif len(value) > max_len:
            self.add(f"must be less than {max_len + 1} characters", f"{ptr}/{key}")
        elif len(value) < min_len:
            self.add(f"must be more than {min_len - 1} characters", f"{ptr}/{key}")

    def text(self, obj: dict, key: str, ptr: str, *, max_len: int, required: bool = True,
             plain_only: bool = False) -> None:
        """A text object (plain_text or mrkdwn) at ``obj[key]``."""
        if key not in obj:
            if required:
                self.add(f"missing required field: {key}", ptr)
            return
        self.text_object(obj[key], f"{ptr}/{key}", max_len=max_len, plain_only=plain_only)

    def text_object(self, value: Any, ptr: str, *, max_len: int, plain_only: bool = False) -> None:
        if not isinstance(value, dict):
            self.add("must provide an object", ptr)
            return
        kind = value.get("type")
        if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
            allowed = "plain_text" if plain_only else "plain_text, mrkdwn"
            self.add(f"must be one of the allowed types: {allowed}", f"{ptr}/type")
            return
        if kind == "mrkdwn" and "emoji" in value:
            self.add("emoji is only allowed on plain_text", f"{ptr}/emoji")
        self.string(value, "text", ptr, max_len=max_len, required=True, min_len=1)

    def items(self, obj: dict, key: str, ptr: str, *, max_items: int, min_items: int = 1,
              required: bool = True) -> list[Any]:
        if key not in obj:
            if required:
                self.add(f"missing required field: {key}", ptr)
            return []
        value = obj[key]
        if not isinstance(value, list):
            self.add("must provide an array", f"{ptr}/{key}")
            return []
        if len(value) > max_items:
            self.add(f"no more than {max_items} items allowed", f"{ptr}/{key}")
        if len(value) < min_items:
            self.add(f"must provide at least {min_items} items", f"{ptr}/{key}")
        return value

    def image_source(self, obj: dict, ptr: str) -> None:
        has_url, has_file = "image_url" in obj, "slack_file" in obj
        if has_url == has_file:
            self.add("must provide exactly one of image_url or slack_file", ptr)
        if has_url:
            self.string(obj, "image_url", ptr, max_len=3000, min_len=1)
        if has_file:
            ref = obj["slack_file"]
            if not isinstance(ref, dict) or (("id" in ref) == ("url" in ref)):
                self.add("slack_file must provide exactly one of id or url", f"{ptr}/slack_file")
            elif self.file_check is not None and (problem := self.file_check(ref)):
                self.add(problem, f"{ptr}/slack_file")
        self.string(obj, "alt_text", ptr, max_len=2000, required=True, min_len=1)

    def action_id(self, obj: dict, ptr: str) -> None:
        self.string(obj, "action_id", ptr, max_len=255)

    # -- elements -------------------------------------------------------------------------------------

    def element(self, el: Any, ptr: str, allowed: set[str]) -> None:
        if not isinstance(el, dict):
            self.add("must provide an object", ptr)
            return
        kind = el.get("type")
        if kind not in allowed:
            self.add(f"unsupported element type: {kind!r}", f"{ptr}/type")
            return
        if kind == "image":
            self.image_source(el, ptr)
            return
        self.action_id(el, ptr)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{ptr}/confirm")
        if kind == "button":
            self.text(el, "text", ptr, max_len=75, plain_only=True)
            self.string(el, "value", ptr, max_len=2000)
            self.string(el, "url", ptr, max_len=3000)
            self.string(el, "accessibility_label", ptr, max_len=75)
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.add("must be one of: primary, danger", f"{ptr}/style")
        elif kind == "overflow":
            for i, opt in enumerate(self.items(el, "options", ptr, max_items=5, min_items=1)):
                self.option(opt, f"{ptr}/options/{i}", plain_only=True)
        elif kind in ("checkboxes", "radio_buttons"):
            for i, opt in enumerate(self.items(el, "options", ptr, max_items=10)):
                self.option(opt, f"{ptr}/options/{i}", plain_only=False)
        elif kind in ("static_select", "multi_static_select"):
            if ("options" in el) == ("option_groups" in el):
                self.add("must provide exactly one of options or option_groups", ptr)
            for i, opt in enumerate(self.items(el, "options", ptr, max_items=100, required=False)):
                self.option(opt, f"{ptr}/options/{i}", plain_only=True)
            for g, group in enumerate(self.items(el, "option_groups", ptr, max_items=100, required=False)):
                gptr = f"{ptr}/option_groups/{g}"
                if isinstance(group, dict):
                    self.text(group, "label", gptr, max_len=75, plain_only=True)
                    for i, opt in enumerate(self.items(group, "options", gptr, max_items=100)):
                        self.option(opt, f"{gptr}/options/{i}", plain_only=True)
        elif kind == "plain_text_input":
            self.string(el, "initial_value", ptr, max_len=3000)
        if "placeholder" in el:
            self.text(el, "placeholder", ptr, max_len=150, plain_only=True)

    def option(self, opt: Any, ptr: str, *, plain_only: bool) -> None:
        if not isinstance(opt, dict):
            self.add("must provide an object", ptr)
            return
        self.text(opt, "text", ptr, max_len=75, plain_only=plain_only)
        self.string(opt, "value", ptr, max_len=150, required=True)
        if "description" in opt:
            self.text(opt, "description", ptr, max_len=75, plain_only=plain_only)

    def confirm(self, obj: Any, ptr: str) -> None:
        if not isinstance(obj, dict):
            self.add("must provide an object", ptr)
            return
        self.text(obj, "title", ptr, max_len=100, plain_only=True)
        self.text(obj, "text", ptr, max_len=300)
        self.text(obj, "confirm", ptr, max_len=30, plain_only=True)
        self.text(obj, "deny", ptr, max_len=30, plain_only=True)

    # -- blocks ---------------------------------------------------------------------------------------

    def blocks(self, blocks: Any, ptr: str) -> None:
        if not isinstance(blocks, list):
            self.add("must provide an array", ptr)
            return
        limit = MAX_BLOCKS[self.surface]
        if len(blocks) > limit:
            self.add(f"no more than {limit} items allowed", ptr)
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}")

    def block(self, block: Any, ptr: str) -> None:
        if not isinstance(block, dict):
            self.add("must provide an object", ptr)
            return
        kind = block.get("type")
        if "type" not in block:
            self.add("missing required field: type", ptr)
            return
        if kind not in _BLOCK_TYPES or (kind == "input" and self.surface == "message"):
            self.add(f"unsupported block type: {kind!r}", f"{ptr}/type")
            return
        if "block_id" in block:
            self.string(block, "block_id", ptr, max_len=255, min_len=1)
            bid = block["block_id"]
            if isinstance(bid, str):
                if bid in self.block_ids:
                    self.add(f"duplicate block_id: {bid}", f"{ptr}/block_id")
                self.block_ids.add(bid)
        getattr(self, f"block_{kind}")(block, ptr)

    def block_section(self, b: dict, ptr: str) -> None:
        if "text" not in b and "fields" not in b:
            self.add("must provide either text or fields", ptr)
        self.text(b, "text", ptr, max_len=3000, required=False)
        for i, f in enumerate(self.items(b, "fields", ptr, max_items=10, required=False)):
            self.text_object(f, f"{ptr}/fields/{i}", max_len=2000)
        if "accessory" in b:
            self.element(b["accessory"], f"{ptr}/accessory", _ACCESSORY)

    def block_divider(self, b: dict, ptr: str) -> None:
        pass

    def block_image(self, b: dict, ptr: str) -> None:
        self.image_source(b, ptr)
        self.text(b, "title", ptr, max_len=2000, required=False, plain_only=True)

    def block_actions(self, b: dict, ptr: str) -> None:
        for i, el in enumerate(self.items(b, "elements", ptr, max_items=25)):
            self.element(el, f"{ptr}/elements/{i}", _ACTIONS)

    def block_context(self, b: dict, ptr: str) -> None:
        for i, el in enumerate(self.items(b, "elements", ptr, max_items=10)):
            eptr = f"{ptr}/elements/{i}"
            if isinstance(el, dict) and el.get("type") == "image":
                self.image_source(el, eptr)
            else:
                self.text_object(el, eptr, max_len=3000)

    def block_header(self, b: dict, ptr: str) -> None:
        self.text(b, "text", ptr, max_len=150, plain_only=True)

    def block_input(self, b: dict, ptr: str) -> None:
        self.text(b, "label", ptr, max_len=2000, plain_only=True)
        self.text(b, "hint", ptr, max_len=2000, required=False, plain_only=True)
        if "element" not in b:
            self.add("missing required field: element", ptr)
        else:
            self.element(b["element"], f"{ptr}/element", _INPUTS)

    def block_rich_text(self, b: dict, ptr: str) -> None:
        for i, el in enumerate(self.items(b, "elements", ptr, max_items=100, min_items=0)):
            if not isinstance(el, dict) or not isinstance(el.get("elements", []), list):
                self.add("must provide a rich text element object", f"{ptr}/elements/{i}")

    def block_markdown(self, b: dict, ptr: str) -> None:
        self.string(b, "text", ptr, max_len=12000, required=True, min_len=1)


def validate_blocks(blocks: Any, *, surface: str = "message", pointer: str = "/blocks",
                    file_check: FileCheck | None = None) -> list[str]:
    """Slack's error messages for ``blocks`` on ``surface`` ("message", "modal" or "home")."""
    checker = _Checker(surface, file_check)
    checker.blocks(blocks, pointer)
    return checker.errors


def validate_view(view: Any, *, file_check: FileCheck | None = None) -> list[str]:
    """Slack's error messages for a modal or Home tab ``view`` (pointers start at ``/view``)."""
    if not isinstance(view, dict):
        return [_err("must provide an object", "/view")]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [_err("must be one of the allowed types: modal, home", "/view/type")]
    checker = _Checker(kind, file_check)
    checker.string(view, "private_metadata", "/view", max_len=3000)
    checker.string(view, "callback_id", "/view", max_len=255)
    checker.string(view, "external_id", "/view", max_len=255)
    if kind == "modal":
        checker.text(view, "title", "/view", max_len=24, plain_only=True)
        checker.text(view, "submit", "/view", max_len=24, required=False, plain_only=True)
        checker.text(view, "close", "/view", max_len=24, required=False, plain_only=True)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and "submit" not in view:
            checker.add("must provide submit when the view has input blocks", "/view")
    if "blocks" not in view:
        checker.add("missing required field: blocks", "/view")
    else:
        checker.blocks(view["blocks"], "/view/blocks")
    return checker.errors
