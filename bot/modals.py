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
