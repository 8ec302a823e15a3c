"""config/slack-manifest.yaml is a valid Slack app manifest that matches what the app does.

Slack's own schema (slackapi/manifest-schema) is not published as a package; the schema below is ours,
written from Slack's manifest reference for every section the app uses, and as strict (no unknown
keys, Slack's length limits and URL patterns) so that a typo fails here rather than in Slack's UI.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.config import BOT_SCOPES

MANIFEST = Path(__file__).resolve().parent.parent / "config" / "slack-manifest.yaml"
URL = {"type": "string", "pattern": r"^https?://", "maxLength": 3000}
STRINGS = {"type": "array", "items": {"type": "string", "maxLength": 50}, "uniqueItems": True}


def _obj(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


SCHEMA = _obj(
    {
        "_metadata": _obj({"major_version": {"type": "integer"}, "minor_version": {"type": "integer"},
                           "schema_version": {"type": "integer"}, "min_version": {"type": "integer"}}),
        "display_information": _obj({
            "name": {"type": "string", "minLength": 1, "maxLength": 35},
            "description": {"type": "string", "minLength": 1, "maxLength": 140},
            "background_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$"},
            "long_description": {"type": "string", "minLength": 175, "maxLength": 4000},
        }, required=("name",)),
        "features": _obj({
            "app_home": _obj({"home_tab_enabled": {"type": "boolean"}, "messages_tab_enabled": {"type": "boolean"},
                              "messages_tab_read_only_enabled": {"type": "boolean"}}),
            "bot_user": _obj({"display_name": {"type": "string", "minLength": 1, "maxLength": 80},
                              "always_online": {"type": "boolean"}}, required=("display_name",)),
            "slash_commands": {"type": "array", "minItems": 1, "maxItems": 50, "items": _obj({
                "command": {"type": "string", "minLength": 2, "maxLength": 32, "pattern": "^/"},
                "url": URL,
                "description": {"type": "string", "minLength": 1, "maxLength": 2000},
                "usage_hint": {"type": "string", "minLength": 1, "maxLength": 1000},
                "should_escape": {"type": "boolean"},
            }, required=("command", "description"))},
        }),
        "oauth_config": _obj({
            "redirect_urls": {"type": "array", "uniqueItems": True, "items": {"type": "string", "maxLength": 2500}},
            "scopes": _obj({"bot": STRINGS, "user": STRINGS}),
            "token_management_enabled": {"type": "boolean"},
        }),
        "settings": _obj({
            "event_subscriptions": _obj({"request_url": URL, "bot_events": STRINGS, "user_events": STRINGS}),
            "interactivity": _obj({"is_enabled": {"type": "boolean"}, "request_url": URL,
                                   "message_menu_options_url": URL}, required=("is_enabled",)),
            "org_deploy_enabled": {"type": "boolean"},
            "socket_mode_enabled": {"type": "boolean"},
            "token_rotation_enabled": {"type": "boolean"},
        }),
    },
    required=("display_information",),
)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_manifest_is_valid(manifest):
    jsonschema.validate(manifest, SCHEMA)


def test_schema_catches_what_slack_would_refuse(manifest):
    broken = {**manifest, "features": {**manifest["features"], "slash_commands": [{"command": "kpi", "description": "x"}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**manifest, "settings": {**manifest["settings"], "interactivty": {}}}, SCHEMA)


def test_manifest_matches_the_app(manifest):
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/kpi"]
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    for url in (manifest["settings"]["event_subscriptions"]["request_url"],
                manifest["settings"]["interactivity"]["request_url"],
                manifest["features"]["slash_commands"][0]["url"]):
        assert url.endswith("/slack/events")
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "socket_mode_enabled" in manifest["settings"]


def test_slash_commands_arrive_escaped(manifest):
    """``should_escape: true``: Slack sends ``@alice`` as ``<@U…|alice>`` and ``#growth`` as ``<#C…|growth>``,
    so owners, channels and mentions are read as ids (issue 12, item 4)."""
    commands = manifest["features"]["slash_commands"]
    assert commands and all(c.get("should_escape") is True for c in commands)
