"""The Slack stand-in, driven by a real ``slack_sdk.WebClient``: it must accept what Slack accepts and
refuse, with Slack's error codes, what Slack refuses."""

from __future__ import annotations

import json
import urllib.request
from urllib.error import HTTPError
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.standin import SlackStandIn, validate_blocks


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack(clock):
    with SlackStandIn(clock=clock) as standin:
        yield standin


@pytest.fixture
def client(slack) -> WebClient:
    return WebClient(base_url=slack.base_url, token=slack.bot_token, timeout=5)


def error_of(call, **kwargs) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(**kwargs)
    return info.value


def section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


# -- auth ------------------------------------------------------------------------------------------------

def test_auth_test_describes_the_bot_and_its_team(client):
    answer = client.auth_test()
    assert answer["team_id"] == "T0STANDIN" and answer["team"] == "Demo Shop"
    assert answer["user_id"] == "U0BOT" and answer["bot_id"] and answer["is_enterprise_install"] is False
    assert answer["url"].startswith("https://")


def test_missing_and_unknown_tokens(slack, client):
    assert error_of(WebClient(base_url=slack.base_url).chat_postMessage, channel="C0GENERAL",
                    text="x").response["error"] == "not_authed"
    bad = WebClient(base_url=slack.base_url, token="xoxb-nope")
    assert error_of(bad.chat_postMessage, channel="C0GENERAL", text="x").response["error"] == "invalid_auth"
    assert slack.messages == []


def test_token_in_a_form_body_counts_but_not_in_a_json_body_or_the_query_string(slack):
    status, body = post(slack.base_url + "auth.test", b"token=xoxb-standin-token",
                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(body)["ok"] is True
    status, body = post(slack.base_url + "chat.postMessage",
                        json.dumps({"token": slack.bot_token, "channel": "C0GENERAL", "text": "x"}).encode(),
                        {"Content-Type": "application/json; charset=utf-8"})
    assert json.loads(body)["error"] == "not_authed"
    status, body = post(slack.base_url + f"auth.test?token={slack.bot_token}", b"",
                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert json.loads(body)["error"] == "not_authed"


def test_get_with_a_query_string_and_json_without_charset(slack):
    request = urllib.request.Request(slack.base_url + "users.info?user=U0BRUNO&include_locale=true",
                                     headers={"Authorization": f"Bearer {slack.bot_token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["user"]["locale"] == "fr-FR"
    status, body = post(slack.base_url + "chat.postMessage", json.dumps({"channel": "C0GENERAL", "text": "x"}).encode(),
                        {"Content-Type": "application/json", "Authorization": f"Bearer {slack.bot_token}"})
    assert json.loads(body)["ok"] is True and json.loads(body)["warning"] == "missing_charset"


def test_unknown_method(client):
    assert error_of(client.api_call, api_method="chat.postMessages").response["error"] == "unknown_method"


# -- chat.postMessage ------------------------------------------------------------------------------------

def test_post_message_is_recorded_with_increasing_unique_ts(slack, client):
    first = client.chat_postMessage(channel="C0GENERAL", text="hello", blocks=[section("*hello*")])
    second = client.chat_postMessage(channel="#growth", text="again", metadata={
        "event_type": "kpi_report", "event_payload": {"kpi": "revenue"}})
    reply = client.chat_postMessage(channel="C0GENERAL", text="in thread", thread_ts=first["ts"])
    assert first["channel"] == "C0GENERAL" and second["channel"] == "C0GROWTH"
    assert first["message"]["text"] == "hello"
    assert float(first["ts"]) < float(second["ts"]) < float(reply["ts"])
    assert [m.text for m in slack.messages_in("C0GENERAL")] == ["hello", "in thread"]
    assert slack.messages_in("C0GENERAL")[1].thread_ts == first["ts"]
    assert slack.messages_in("C0GROWTH")[0].metadata["event_type"] == "kpi_report"
    assert slack.calls[0].method == "chat.postMessage" and slack.calls[0].token == slack.bot_token


def test_public_channel_without_the_bot_is_fine_but_a_private_one_is_invisible(slack, client):
    assert client.chat_postMessage(channel="C0NOTIN", text="chat:write.public")["ok"]
    slack.add_channel("C0SECRET", "secret", is_member=False, is_private=True)
    assert error_of(client.chat_postMessage, channel="C0SECRET", text="x").response["error"] == "channel_not_found"


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"channel": "C0GENERAL"}, "no_text"),
    ({"channel": "C0GENERAL", "text": ""}, "no_text"),
    ({"channel": "C0NOWHERE", "text": "x"}, "channel_not_found"),
    ({"channel": "", "text": "x"}, "channel_not_found"),
    ({"channel": "C0GENERAL", "text": "x" * 40_001}, "msg_too_long"),
    ({"channel": "C0GENERAL", "text": "x", "thread_ts": "1.000001"}, "thread_not_found"),
    ({"channel": "C0GENERAL", "text": "x", "team_id": "T0OTHER"}, "team_access_not_granted"),
    ({"channel": "C0GENERAL", "text": "x", "metadata": {"event_type": "x"}}, "invalid_metadata_format"),
])
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
def test_post_message_errors(slack, client, kwargs, error):
    assert error_of(client.chat_postMessage, **kwargs).response["error"] == error
    assert slack.messages == []
    assert slack.calls[-1].response["error"] == error


@pytest.mark.parametrize(("blocks", "pointer", "text"), [
    ([section("x")] * 51, "/blocks", "no more than 50 items allowed"),
    ([section("x" * 3001)], "/blocks/0/text/text", "must be less than 3001 characters"),
    ([{"type": "image", "image_url": "https://example.com/a.png"}], "/blocks/0", "missing required field: alt_text"),
    ([{"type": "image", "alt_text": "a", "slack_file": {"id": "F0UNKNOWN"}}], "/blocks/0/slack_file", "invalid slack_file"),
    ([section("a", block_id="b"), section("b", block_id="b")], "/blocks/1/block_id", "duplicate block_id"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "/blocks/0/text/type", "plain_text"),
    ([{"type": "section"}], "/blocks/0", "either text or fields"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}], "/blocks/0/fields", "no more than 10"),
    ([{"type": "carousel"}], "/blocks/0/type", "unsupported block type"),
    ([{"type": "input", "label": {"type": "plain_text", "text": "l"},
       "element": {"type": "plain_text_input"}}], "/blocks/0/type", "unsupported block type"),
    ([{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b"},
                                        "style": "green"}]}], "/blocks/0/elements/0/style", "primary, danger"),
    ([{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}]}],
     "/blocks/0/elements/0/text/text", "less than 76"),
    ([{"type": "actions", "elements": [{"type": "fancy"}]}], "/blocks/0/elements/0/type", "unsupported element"),
    ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 11}], "/blocks/0/elements", "no more than 10"),
    ([{"type": "section", "text": {"type": "plain_text", "text": ""}}], "/blocks/0/text/text", "more than 0"),
])
def test_invalid_blocks_answer_like_slack(slack, client, blocks, pointer, text):
    response = error_of(client.chat_postMessage, channel="C0GENERAL", text="fallback", blocks=blocks).response
    assert response["error"] == "invalid_blocks"
    messages = response["response_metadata"]["messages"]
    assert any(m.startswith("[ERROR] ") and text in m and m.endswith(f"[json-pointer:{pointer}]") for m in messages), messages
    assert slack.messages == []


def test_valid_rich_blocks_pass():
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Revenue"}},
        section("*€12,345*", block_id="kpi", accessory={"type": "button", "text": {"type": "plain_text", "text": "Go"},
                                                        "action_id": "go", "value": "v", "style": "primary"}),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}, {"type": "plain_text", "text": "b"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "vs last week"},
                                         {"type": "image", "image_url": "https://example.com/i.png", "alt_text": "i"}]},
        {"type": "divider"},
        {"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options": [
            {"text": {"type": "plain_text", "text": "A"}, "value": "a"}]}]},
        {"type": "image", "image_url": "https://example.com/c.png", "alt_text": "chart"},
        {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "x"}]}]},
        {"type": "markdown", "text": "**bold**"},
    ]
    assert validate_blocks(blocks) == []


def test_another_teams_channels_and_users_are_invisible(slack):
    slack.add_team("T0OTHER", "xoxb-other", "Other Shop")
    slack.add_channel("C0THEIRS", "theirs", team_id="T0OTHER")
    ours = WebClient(base_url=slack.base_url, token=slack.bot_token)
    theirs = WebClient(base_url=slack.base_url, token="xoxb-other")
    assert error_of(ours.chat_postMessage, channel="C0THEIRS", text="x").response["error"] == "channel_not_found"
    assert error_of(theirs.chat_postMessage, channel="C0GENERAL", text="x").response["error"] == "channel_not_found"
    assert error_of(theirs.users_info, user="U0ALICE").response["error"] == "user_not_found"
    assert theirs.chat_postMessage(channel="C0THEIRS", text="x", team_id="T0OTHER")["ok"]
    assert slack.messages[0].team_id == "T0OTHER"
    assert theirs.auth_test()["team_id"] == "T0OTHER"


def test_form_bodies_carry_blocks_as_json_strings(slack, client):
    blocks = json.dumps([section("from a form")])
    assert client.api_call("chat.postMessage", data={"channel": "C0GENERAL", "text": "x", "blocks": blocks})["ok"]
    assert slack.messages[0].blocks == [section("from a form")]
    assert error_of(client.api_call, api_method="chat.postMessage", data={
        "channel": "C0GENERAL", "text": "x", "blocks": "[{"}).response["error"] == "invalid_blocks_format"


def test_the_apps_dm_with_a_known_user_always_exists(slack, client):
    assert client.chat_postMessage(channel="D0ALICE", text="from the Messages tab")["channel"] == "D0ALICE"
    assert error_of(client.chat_postMessage, channel="D0NOBODY", text="x").response["error"] == "channel_not_found"


# -- other chat methods ------------------------------------------------------------------------------------

def test_ephemeral_update_and_permalink(slack, client):
    assert client.chat_postEphemeral(channel="C0GENERAL", user="U0BRUNO", text="only you")["message_ts"]
    assert error_of(client.chat_postEphemeral, channel="C0GENERAL", user="U0NOBODY",
                    text="x").response["error"] == "user_not_in_channel"
    posted = client.chat_postMessage(channel="C0GENERAL", text="draft")
    updated = client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="final", blocks=[section("final")])
    assert updated["ts"] == posted["ts"]
    assert error_of(client.chat_update, channel="C0GENERAL", ts="1.000001", text="x").response["error"] == "message_not_found"
    assert error_of(client.chat_update, channel="C0GENERAL", ts=posted["ts"], text="x",
                    blocks=[section("x" * 3001)]).response["error"] == "invalid_blocks"
    kinds = [(m.kind, m.text) for m in slack.messages]
    assert kinds == [("ephemeral", "only you"), ("message", "final"), ("update", "final")]
    assert slack.messages[0].user == "U0BRUNO"
    assert [m.text for m in slack.messages_in("C0GENERAL")] == ["only you", "final"]
    link = client.chat_getPermalink(channel="C0GENERAL", message_ts=posted["ts"])["permalink"]
    assert link.endswith("/archives/C0GENERAL/p" + posted["ts"].replace(".", ""))


def test_users_and_conversations(client):
    alice = client.users_info(user="U0ALICE")["user"]
    assert alice["is_admin"] is True and alice["tz"] == "Europe/Paris" and "locale" not in alice
    assert client.users_info(user="U0BRUNO", include_locale=True)["user"]["locale"] == "fr-FR"
    assert error_of(client.users_info, user="U0NOBODY").response["error"] == "user_not_found"
    info = client.conversations_info(channel="C0NOTIN")["channel"]
    assert (info["name"], info["is_member"], info["is_private"]) == ("random", False, False)
    dm = client.conversations_open(users="U0BRUNO")["channel"]["id"]
    assert dm.startswith("D") and client.conversations_open(users="U0BRUNO")["channel"]["id"] == dm
    assert client.chat_postMessage(channel=dm, text="psst")["channel"] == dm
    assert client.chat_postMessage(channel="U0BRUNO", text="to the user id")["channel"] == dm
    assert error_of(client.conversations_open, users="U0NOBODY").response["error"] == "user_not_found"


# -- failures and retries --------------------------------------------------------------------------------

def test_rate_limited_then_ok_posts_exactly_once(slack):
    client = WebClient(base_url=slack.base_url, token=slack.bot_token,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    assert client.chat_postMessage(channel="C0GENERAL", text="once")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert slack.calls[0].response == {"ok": False, "error": "ratelimited"}
    assert len(slack.messages_in("C0GENERAL")) == 1


def test_rate_limit_without_retry_handler_raises_with_retry_after(slack, client):
    slack.fail_next("chat.postMessage", retry_after=7)
    exc = error_of(client.chat_postMessage, channel="C0GENERAL", text="x")
    assert exc.response.status_code == 429 and exc.response.headers["Retry-After"] == "7"
    assert slack.messages == []


def test_server_error_then_ok_with_server_error_retry_handler(slack):
    client = WebClient(base_url=slack.base_url, token=slack.bot_token, retry_handlers=[ServerErrorRetryHandler()])
    slack.fail_next("chat.postMessage", status=500)
    assert client.chat_postMessage(channel="C0GENERAL", text="once")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 200]
    assert len(slack.messages) == 1


def test_injected_error_and_delay(slack, client):
    slack.fail_next("chat.postMessage", error="not_in_channel", times=2)
    for _ in range(2):
        assert error_of(client.chat_postMessage, channel="C0GENERAL", text="x").response["error"] == "not_in_channel"
    assert client.chat_postMessage(channel="C0GENERAL", text="x")["ok"]
    slack.delay_next("chat.postMessage", 0.3)
    impatient = WebClient(base_url=slack.base_url, token=slack.bot_token, timeout=0.05)
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel="C0GENERAL", text="late")
    slack.wait_for(lambda: len(slack.messages) == 2, timeout=3)  # Slack did post it: the client timed out


def test_wait_for_explains_a_timeout(slack, client):
    client.auth_test()
    with pytest.raises(AssertionError, match=r"auth.test -> 200 ok"):
        slack.wait_for(lambda: False, timeout=0.05)


def test_reset_forgets_records_but_keeps_fixtures(slack, client):
    client.chat_postMessage(channel="C0GENERAL", text="x")
    slack.fail_next("auth.test", error="invalid_auth")
    slack.reset()
    assert slack.calls == [] and slack.messages == []
    assert client.auth_test()["ok"] and client.conversations_info(channel="C0GROWTH")["ok"]


# -- files -----------------------------------------------------------------------------------------------

def test_files_upload_v2_then_the_file_in_an_image_block(slack, client, clock, tmp_path):
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG fake chart")
    answer = client.files_upload_v2(channel="C0GROWTH", file=str(chart), filename="chart.png",
                                    title="Revenue", initial_comment="Weekly revenue")
    file_id = answer["file"]["id"]
    assert [f["id"] for f in slack.files] == [file_id]
    stored = slack.files[0]
    assert (stored["filename"], stored["title"], stored["length"], stored["content"]) == (
        "chart.png", "Revenue", 15, b"\x89PNG fake chart")
    assert (stored["channel_id"], stored["initial_comment"]) == ("C0GROWTH", "Weekly revenue")
    shared = slack.messages_in("C0GROWTH")[0]
    assert (shared.kind, shared.text, shared.files) == ("message", "Weekly revenue", [file_id])
    assert [c.method for c in slack.calls] == ["files.getUploadURLExternal", "upload_url",
                                               "files.completeUploadExternal"]
    assert slack.calls[1].token is None  # the upload URL needs no auth

    image = [{"type": "image", "slack_file": {"id": file_id}, "alt_text": "chart"}]
    # Slack is still processing the file: referenced at once it is refused (python-slack-sdk#1521)
    early = error_of(client.chat_postMessage, channel="C0GROWTH", text="chart", blocks=image).response
    assert early["error"] == "invalid_blocks" and "slack_file" in early["response_metadata"]["messages"][0]
    assert client.files_info(file=file_id)["file"]["mimetype"] == ""
    clock.now += slack.file_ready_delay
    info = client.files_info(file=file_id)["file"]
    assert info["mimetype"] == "image/png" and info["thumb_360"]
    assert client.chat_postMessage(channel="C0GROWTH", text="chart", blocks=image)["ok"]
    url_image = [{"type": "image", "slack_file": {"url": answer["file"]["url_private"]}, "alt_text": "chart"}]
    assert client.chat_postMessage(channel="C0GROWTH", text="chart", blocks=url_image)["ok"]
    response = error_of(client.chat_postMessage, channel="C0GENERAL", text="chart", blocks=image).response
    assert response["error"] == "invalid_blocks"  # not shared in #general


def test_file_ready_delay_is_configurable_and_dm_shares_are_counted(slack, client, clock):
    slack.file_ready_delay = 0
    file_id = client.files_upload_v2(channel="U0ALICE", file=b"png", filename="c.png")["file"]["id"]
    assert slack.dm_file_shares == [{"file_id": file_id, "team_id": slack.team_id, "channel": "D0ALICE",
                                     "user": "U0ALICE"}]
    image = [{"type": "image", "slack_file": {"id": file_id}, "alt_text": "chart"}]
    assert client.chat_postMessage(channel="D0ALICE", text="x", blocks=image)["ok"]  # no delay: at once
    client.files_upload_v2(channel="C0GROWTH", file=b"png", filename="d.png")
    assert len(slack.dm_file_shares) == 1  # a channel is no DM
    slack.reset()
    assert slack.dm_file_shares == []


def test_conversations_join(slack, client):
    assert not slack.is_member("C0NOTIN")
    assert error_of(client.files_upload_v2, channel="C0NOTIN", file=b"png",
                    filename="c.png").response["error"] == "not_in_channel"
    joined = client.conversations_join(channel="C0NOTIN")
    assert joined["channel"]["id"] == "C0NOTIN" and joined["channel"]["is_member"] and "warning" not in joined
    assert slack.is_member("C0NOTIN")
    assert client.conversations_join(channel="C0NOTIN")["warning"] == "already_in_channel"
    assert client.files_upload_v2(channel="C0NOTIN", file=b"png", filename="c.png")["ok"]
    slack.add_channel("G0SECRET", "secret", is_member=False, is_private=True)
    assert error_of(client.conversations_join, channel="G0SECRET").response["error"] == "channel_not_found"
    assert error_of(client.conversations_join, channel="C0NOPE").response["error"] == "channel_not_found"


def test_bytes_upload_without_channel_stays_private(slack, client):
    file_id = client.files_upload_v2(file=b"png", filename="c.png")["file"]["id"]
    assert slack.files[0]["channel_id"] is None and slack.messages == []
    image = [{"type": "image", "slack_file": {"id": file_id}, "alt_text": "chart"}]
    assert error_of(client.chat_postMessage, channel="C0GENERAL", text="x",
                    blocks=image).response["error"] == "invalid_blocks"


def test_upload_flow_errors(slack, client):
    assert error_of(client.files_completeUploadExternal, files=[{"id": "F0NEVER"}]).response["error"] == "file_not_found"
    ticket = client.files_getUploadURLExternal(filename="a.csv", length=3)
    assert error_of(client.files_completeUploadExternal,
                    files=[{"id": ticket["file_id"]}]).response["error"] == "file_not_found"  # no bytes yet
    assert post(ticket["upload_url"], b"a,b", {"Content-Type": "text/csv"}) == (200, "OK - 3")
    assert error_of(client.files_completeUploadExternal, files=[{"id": ticket["file_id"]}],
                    channel_id="C0NOTIN").response["error"] == "not_in_channel"
    assert client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "t"}],
                                               channel_id="C0GENERAL")["ok"]
    assert error_of(client.files_getUploadURLExternal, filename="a", length=0).response["error"] == "invalid_arguments"


def test_multipart_upload(slack, client):
    ticket = client.files_getUploadURLExternal(filename="a.txt", length=5)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n")
    assert post(ticket["upload_url"], body, {"Content-Type": "multipart/form-data; boundary=XyZ"})[0] == 200
    client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id="C0GENERAL")
    assert slack.files[0]["content"] == b"hello"


# -- views -----------------------------------------------------------------------------------------------

MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "New goal"},
         "submit": {"type": "plain_text", "text": "Save"},
         "blocks": [{"type": "input", "block_id": "kpi", "label": {"type": "plain_text", "text": "KPI"},
                     "element": {"type": "plain_text_input", "action_id": "value"}}]}


def test_views_open_trigger_rules(slack, client, clock):
    trigger = slack.new_trigger_id()
    opened = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert opened["id"].startswith("V") and slack.opened_views == [opened]
    assert error_of(client.views_open, trigger_id=trigger, view=MODAL).response["error"] == "exchanged_trigger_id"
    assert error_of(client.views_open, trigger_id="1.2.nope", view=MODAL).response["error"] == "invalid_trigger_id"
    late = slack.new_trigger_id()
    clock.now += 3.5
    assert error_of(client.views_open, trigger_id=late, view=MODAL).response["error"] == "expired_trigger_id"


@pytest.mark.parametrize(("change", "pointer"), [
    ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
    ({"submit": {"type": "plain_text", "text": "x" * 25}}, "/view/submit/text"),
    ({"private_metadata": "x" * 3001}, "/view/private_metadata"),
    ({"blocks": [section("x")] * 101}, "/view/blocks"),
    ({"title": None}, "/view"),
])
def test_invalid_modal(slack, client, change, pointer):
    view = {k: v for k, v in {**MODAL, **change}.items() if v is not None}
    trigger = slack.new_trigger_id()
    response = error_of(client.views_open, trigger_id=trigger, view=view).response
    assert response["error"] == "invalid_arguments"
    assert any(m.endswith(f"[json-pointer:{pointer}]") for m in response["response_metadata"]["messages"])
    assert client.views_open(trigger_id=trigger, view=MODAL)["ok"]  # a refused view does not spend the trigger


def test_views_publish_and_update(slack, client):
    home = {"type": "home", "blocks": [section("Your KPIs")] * 60}
    view = client.views_publish(user_id="U0ALICE", view=home)["view"]
    assert slack.home_views[("T0STANDIN", "U0ALICE")]["blocks"] == home["blocks"]
    assert error_of(client.views_publish, user_id="U0ALICE",
                    view={"type": "home", "blocks": [section("x")] * 101}).response["error"] == "invalid_arguments"
    assert error_of(client.views_publish, user_id="U0ALICE", view=MODAL).response["error"] == "invalid_arguments"
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view={"type": "home", "blocks": []})
    assert slack.home_views[("T0STANDIN", "U0ALICE")]["blocks"] == [] == updated["view"]["blocks"]
    assert error_of(client.views_update, view_id=view["id"], hash=view["hash"],
                    view=home).response["error"] == "hash_conflict"
    assert error_of(client.views_update, view_id="V0NONE", view=home).response["error"] == "not_found"


# -- response_url ----------------------------------------------------------------------------------------

def test_response_url_five_uses_then_refused(slack):
    url = slack.new_response_url(channel_id="C0GROWTH", user_id="U0BRUNO")
    webhook = WebhookClient(url)
    for i in range(5):
        response = webhook.send(text=f"answer {i}", response_type="in_channel" if i == 4 else None)
        assert (response.status_code, response.body) == (200, "ok")
    refused = webhook.send(text="sixth")
    assert (refused.status_code, refused.body) == (404, "used_url")
    answers = slack.messages_in("C0GROWTH")
    assert [m.kind for m in answers] == ["response_url"] * 5
    assert [m.response_type for m in answers] == ["ephemeral"] * 4 + ["in_channel"]
    assert answers[0].user == "U0BRUNO"
    assert slack.calls[-1].method == "response_url" and slack.calls[-1].status == 404


def test_response_url_checks_its_payload_and_expires(slack, clock):
    webhook = WebhookClient(slack.new_response_url())
    assert (webhook.send(text="").status_code, webhook.send(text="").body) == (400, "no_text")
    assert webhook.send(text="x", blocks=[section("x")] * 51).body == "invalid_blocks"
    first = webhook.send(text="working on it…")
    assert first.status_code == 200
    assert webhook.send(text="done", replace_original=True, response_type="in_channel").status_code == 200
    message = slack.messages_in("C0GENERAL")[0]
    assert (message.text, message.response_type) == ("done", "ephemeral")  # ephemeral stays ephemeral
    assert slack.messages[-1].replace_original is True
    clock.now += 30 * 60 + 1
    assert (webhook.send(text="late").status_code, webhook.send(text="late").body) == (404, "expired_url")


def test_response_url_injected_failure(slack):
    slack.fail_next("response_url", status=500)
    webhook = WebhookClient(slack.new_response_url())
    assert webhook.send(text="x").status_code == 500
    assert webhook.send(text="x").status_code == 200


# -- OAuth -----------------------------------------------------------------------------------------------

def test_oauth_v2_access_installs_a_workspace(slack):
    code = slack.new_oauth_code("T0NEWSHOP", "New Shop", "xoxb-new-shop", "U0NEWBOT", installer_user_id="U0OWNER")
    anonymous = WebClient(base_url=slack.base_url)
    answer = anonymous.oauth_v2_access(client_id="111.222", client_secret="standin-secret", code=code)
    assert answer["access_token"] == "xoxb-new-shop" and answer["token_type"] == "bot"
    assert answer["team"] == {"id": "T0NEWSHOP", "name": "New Shop"} and answer["enterprise"] is None
    assert answer["authed_user"]["id"] == "U0OWNER" and answer["bot_user_id"] == "U0NEWBOT"
    assert answer["app_id"] == "A0KPIBOT" and "chat:write" in answer["scope"].split(",")
    assert answer["is_enterprise_install"] is False
    installed = WebClient(base_url=slack.base_url, token="xoxb-new-shop")
    assert installed.auth_test()["team_id"] == "T0NEWSHOP"
    assert error_of(installed.chat_postMessage, channel="C0GENERAL", text="x").response["error"] == "channel_not_found"
    assert error_of(anonymous.oauth_v2_access, client_id="111.222", client_secret="standin-secret",
                    code=code).response["error"] == "invalid_code"  # codes work once


def test_oauth_v2_access_with_form_credentials(slack):
    body = f"client_id=111.222&client_secret=standin-secret&code={slack.new_oauth_code('T0FORM')}".encode()
    status, answer = post(slack.base_url + "oauth.v2.access", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert json.loads(answer)["team"]["id"] == "T0FORM"


@pytest.mark.parametrize(("client_id", "secret", "code", "error"), [
    ("111.222", "standin-secret", "nope", "invalid_code"),
    ("999.999", "standin-secret", None, "invalid_client_id"),
    ("111.222", "wrong", None, "bad_client_secret"),
])
def test_oauth_v2_access_errors(slack, client_id, secret, code, error):
    code = code or slack.new_oauth_code("T0NEWSHOP", "New Shop")
    anonymous = WebClient(base_url=slack.base_url)
    assert error_of(anonymous.oauth_v2_access, client_id=client_id, client_secret=secret,
                    code=code).response["error"] == error


def test_command_text_is_escaped_as_slack_does_with_should_escape(slack):
    from bot.sandbox import escape_text, slash_command

    typed = "goal add revenue +10% by 2026-12-31 owner @alice #growth mention @here a&b <x> @nobody #nowhere"
    escaped = slack.escape_command_text(typed)
    assert escaped == ("goal add revenue +10% by 2026-12-31 owner <@U0ALICE|alice> <#C0GROWTH|growth> "
                       "mention <!here> a&amp;b &lt;x&gt; @nobody #nowhere")
    # markup the client already inserted (a mention picked from the menu) is kept as it is
    assert slack.escape_command_text("owner <@U0BRUNO|bruno> <#C0GENERAL|general>") == \
        "owner <@U0BRUNO|bruno> <#C0GENERAL|general>"
    # the sandbox's slash commands are typed into the running stand-in
    assert escape_text("@greta", "T0STANDIN") == "<@U0GRETA|greta>"
    body = parse_qs(slash_command("owner @alice", response_url="http://x/"))
    assert body["text"] == ["owner <@U0ALICE|alice>"]
    assert parse_qs(slash_command("owner @alice", response_url="http://x/", escape=False))["text"] == ["owner @alice"]
