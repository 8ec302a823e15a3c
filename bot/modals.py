"""The ``/kpi goal add`` modal: the same fields as the text form, validated on submit field by field."""

from __future__ import annotations

import json

from kpi.i18n import N_, tr
from kpi.metrics.catalog import Catalog

CALLBACK = "goal_add"
# Slack's limits: a modal's title, submit and close at most 24 characters; a label at most 2,000
LABELS = {
    "title": N_("New goal"), "metric": "KPI", "filters": N_("Filters (optional)"), "target": N_("Target"),
    "baseline": N_("Baseline (optional)"), "start": N_("Start"), "deadline": N_("Deadline"), "owner": N_("Owner"),
    "channel": N_("Channel"), "watch": N_("KPIs to watch"), "submit": N_("Add goal"), "close": N_("Cancel"),
    "target_hint": N_("+10%, 3.5%, +0.5pt, 150000"), "filters_hint": "channel=email",
}


def _input(block_id: str, label: str, element: dict, optional: bool = False) -> dict:
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": {"type": "plain_text", "text": label}, "element": element}


def goal_modal(catalog: Catalog, *, lang: str, today: str, channel_id: str | None) -> dict:
    t = {key: tr(lang, text) for key, text in LABELS.items()}
    options = [{"text": {"type": "plain_text", "text": m.name(lang)[:75]}, "value": m.key} for m in catalog.metrics.values()][:100]
    channel = {"type": "conversations_select", "action_id": "value", "filter": {"include": ["public", "private"]}}
    if channel_id:
        channel["initial_conversation"] = channel_id
    return {
        "type": "modal", "callback_id": CALLBACK, "private_metadata": json.dumps({"lang": lang})[:3000],
        "title": {"type": "plain_text", "text": t["title"]},
        "submit": {"type": "plain_text", "text": t["submit"]}, "close": {"type": "plain_text", "text": t["close"]},
        "blocks": [
            _input("metric", t["metric"], {"type": "static_select", "action_id": "value", "options": options}),
            _input("target", t["target"], {"type": "plain_text_input", "action_id": "value",
                                           "placeholder": {"type": "plain_text", "text": t["target_hint"]}}),
            _input("filters", t["filters"], {"type": "plain_text_input", "action_id": "value",
                                             "placeholder": {"type": "plain_text", "text": t["filters_hint"]}}, True),
            _input("baseline", t["baseline"], {"type": "plain_text_input", "action_id": "value"}, True),
            _input("start", t["start"], {"type": "datepicker", "action_id": "value", "initial_date": today}),
            _input("deadline", t["deadline"], {"type": "datepicker", "action_id": "value"}),
            _input("owner", t["owner"], {"type": "users_select", "action_id": "value"}, True),
            _input("channel", t["channel"], channel, True),
            _input("watch", t["watch"], {"type": "multi_static_select", "action_id": "value", "options": options}, True),
        ],
    }


def goal_text(values: dict) -> str:
    """The modal's fields as the text form of a goal (plain notation: ``@U123``, ``#C123``), so both are
    parsed and checked by the same code."""
    def value(block: str):
        v = values.get(block, {}).get("value", {})
        return (v.get("value") or (v.get("selected_option") or {}).get("value") or v.get("selected_date")
                or v.get("selected_user") or v.get("selected_conversation")
                or [o["value"] for o in v.get("selected_options") or []] or None)

    parts = [value("metric") or "", value("target") or ""]
    if value("filters"):
        parts.append(value("filters"))
    if value("baseline"):
        parts.append(f"baseline {value('baseline')}")
    if value("start"):
        parts.append(f"from {value('start')}")
    parts.append(f"by {value('deadline') or ''}")
    if value("owner"):
        parts.append(f"owner @{value('owner')}")
    if value("channel"):
        parts.append(f"#{value('channel')}")
    if value("watch"):
        parts.append("watch " + ",".join(value("watch")))
    return " ".join(p for p in parts if p)


ALERT_CALLBACK = "alert_add"
CONDITION_WORDS = {"above": "above", "below": "below", "change_above": "change above", "change_below": "change below"}
ALERT_LABELS = {
    "title": N_("New alert"), "submit": N_("Add alert"), "close": N_("Cancel"), "condition": N_("Condition"),
    "threshold": N_("Threshold"), "window": N_("Window (days, 0 = today so far)"),
    "clear_threshold": N_("Clear threshold (optional)"), "min_sample": N_("Minimum sample (optional)"),
    "channel": N_("Channel"), "significance": N_("Significance"), "significant": N_("Only when significant"),
    "significant_hint": N_("Fire only on a statistically significant breach"),
}
# the choices of the condition menu, as people read them (the value is the rule's condition)
CONDITION_CHOICES = {"above": N_("above"), "below": N_("below"), "change_above": N_("rises by more than"),
                     "change_below": N_("drops by more than")}


def alert_modal(catalog: Catalog, *, lang: str, channel_id: str | None) -> dict:
    t = {key: tr(lang, text) for key, text in ALERT_LABELS.items()}
    options = [{"text": {"type": "plain_text", "text": m.name(lang)[:75]}, "value": m.key} for m in catalog.metrics.values()][:100]
    conditions = [{"text": {"type": "plain_text", "text": tr(lang, text)}, "value": v}
                  for v, text in CONDITION_CHOICES.items()]
    channel = {"type": "conversations_select", "action_id": "value", "filter": {"include": ["public", "private"]}}
    if channel_id:
        channel["initial_conversation"] = channel_id

    def text_input(block, label, hint, optional=False):
        return _input(block, label, {"type": "plain_text_input", "action_id": "value",
                                     "placeholder": {"type": "plain_text", "text": hint}}, optional)

    return {
        "type": "modal", "callback_id": ALERT_CALLBACK, "private_metadata": json.dumps({"lang": lang}),
        "title": {"type": "plain_text", "text": t["title"]},
        "submit": {"type": "plain_text", "text": t["submit"]},
        "close": {"type": "plain_text", "text": t["close"]},
        "blocks": [
            _input("metric", "KPI", {"type": "static_select", "action_id": "value", "options": options}),
            _input("condition", t["condition"], {"type": "static_select", "action_id": "value", "options": conditions}),
            text_input("threshold", t["threshold"], "8%, 1.5%, 120, 20%"),
            text_input("window", t["window"], "7"),
            text_input("clear_threshold", t["clear_threshold"], "7%", True),
            text_input("min_sample", t["min_sample"], "500", True),
            _input("significant", t["significance"], {"type": "checkboxes", "action_id": "value", "options": [
                {"text": {"type": "plain_text", "text": t["significant"]}, "value": "significant",
                 "description": {"type": "plain_text", "text": t["significant_hint"][:75]}}]}, True),
            _input("channel", t["channel"], channel),
        ],
    }


def alert_text(values: dict) -> str:
    """The alert form as the text form of a rule: both go through the same parser and checks."""
    def value(block: str):
        v = values.get(block, {}).get("value", {})
        return v.get("value") or (v.get("selected_option") or {}).get("value") or v.get("selected_conversation")

    condition = value("condition") or ""
    parts = [value("metric") or "", CONDITION_WORDS.get(condition, condition), value("threshold") or ""]
    window = (value("window") or "7").strip()
    parts.append("today" if window == "0" else f"over {window} days")
    if value("clear_threshold"):
        parts.append(f"clear {'below' if condition in ('above', 'change_above') else 'above'} {value('clear_threshold')}")
    if value("min_sample"):
        parts.append(f"min {value('min_sample')}")
    checked = values.get("significant", {}).get("value", {}).get("selected_options") or []
    if any(o.get("value") == "significant" for o in checked):
        parts.append("significant")
    if value("channel"):
        parts.append(f"in #{value('channel')}")
    return " ".join(p for p in parts if p)


# -- after the acknowledgement: the form becomes "working on it", then the result or the form again ----------
MODAL_BLOCKS = {"section", "context", "header", "divider", "image", "actions", "rich_text", "input"}
# the keys views.update takes (a submitted view also carries id, state, hash, team_id...: not sent back)
VIEW_KEYS = ("type", "callback_id", "private_metadata", "title", "submit", "close", "blocks", "notify_on_close",
             "clear_on_close", "submit_disabled")
NOTES = {
    "working_goal": N_("Checking the goal against the data and saving it: a few seconds."),
    "working_alert": N_("Checking the alert rule and saving it: a few seconds."),
    "goal_added": N_("Goal saved"), "alert_added": N_("Alert rule saved"), "done": N_("Close"),
}


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text[:24]}


def working_view(view: dict, *, lang: str, kind: str) -> dict:
    """What the form shows once acknowledged, while the lazy part checks and saves: no inputs, no submit."""
    return {"type": "modal", "callback_id": (view.get("callback_id") or "") + "_working",
            "private_metadata": view.get("private_metadata") or "",
            "title": view.get("title") or _plain(tr(lang, LABELS["title"])),
            "close": _plain(tr(lang, NOTES["done"])),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                    "text": ":hourglass_flowing_sand: " + tr(lang, NOTES[f"working_{kind}"])}}]}


def result_view(message, *, lang: str, kind: str) -> dict:
    """The saved goal or rule, as the modal's last screen (the blocks a modal can show, at most 100)."""
    blocks = [b for b in message.blocks if b.get("type") in MODAL_BLOCKS and b.get("type") != "input"][:100]
    return {"type": "modal", "callback_id": f"{kind}_saved", "title": _plain(tr(lang, NOTES[f"{kind}_added"])),
            "close": _plain(tr(lang, NOTES["done"])),
            "blocks": blocks or [{"type": "section", "text": {"type": "mrkdwn", "text": message.text[:2900]}}]}


def _initial(element: dict, v: dict) -> None:
    """Put a submitted value back into its element (``initial_*``), so the form comes back as it was sent."""
    by_value = {o.get("value"): o for o in element.get("options") or []}
    kind = element.get("type")
    if kind == "plain_text_input" and v.get("value"):
        element["initial_value"] = v["value"]
    elif kind == "static_select" and (v.get("selected_option") or {}).get("value") in by_value:
        element["initial_option"] = by_value[v["selected_option"]["value"]]
    elif kind in ("multi_static_select", "checkboxes") and v.get("selected_options"):
        chosen = [by_value[o.get("value")] for o in v["selected_options"] if o.get("value") in by_value]
        if chosen:
            element["initial_options"] = chosen
    elif kind == "datepicker" and v.get("selected_date"):
        element["initial_date"] = v["selected_date"]
    elif kind == "users_select" and v.get("selected_user"):
        element["initial_user"] = v["selected_user"]
    elif kind == "conversations_select" and v.get("selected_conversation"):
        element["initial_conversation"] = v["selected_conversation"]


def form_again(view: dict, values: dict, problem: str) -> dict:
    """The submitted form, filled in as it was sent, with ``problem`` on top: what the lazy part shows
    when a check that needs the database (or a permission) refuses what the acknowledgement accepted."""
    again = {k: json.loads(json.dumps(view[k])) for k in VIEW_KEYS if k in view}
    blocks = []
    for block in again.get("blocks") or []:
        if block.get("block_id") == "form_problem":
            continue
        if block.get("type") == "input" and isinstance(block.get("element"), dict):
            block["element"].pop("initial_value", None)
            _initial(block["element"], (values.get(block.get("block_id"), {}) or {}).get("value") or {})
        blocks.append(block)
    note = {"type": "section", "block_id": "form_problem",
            "text": {"type": "mrkdwn", "text": (":warning: " + problem)[:2900]}}
    again["blocks"] = [note, *blocks][:100]
    return again
