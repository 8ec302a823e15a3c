"""Charts that always show and leave no trace (issue 12, item 5), through signed HTTP against the stand-in.

- HTTP mode with ``KPIBOT_PUBLIC_URL``: a private answer's chart is an ``image_url`` on the app's own host,
  at a signed, expiring URL that serves the PNG; nothing is uploaded into anyone's DM.
- Without it (as in Socket Mode): the chart is uploaded, and referenced only once Slack (the stand-in,
  with a readiness delay) says the file is ready; a file that never gets ready leaves the sparkline.
- A digest whose chart upload fails is still posted, once; an alert to a channel the bot is not in
  joins it and attaches its chart.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from urllib.error import HTTPError

import pytest

from bot.alerts import AlertNotifier
from bot.app import build_app, wsgi_app
from bot.config import SlackSettings
from bot.digests import DigestSender
from bot.sandbox import AppServer, SlackSide, block_action
from bot.teams import TeamClients
from kpi.alerts.rules import parse_rule
from kpi.alerts.store import AlertRules
from kpi.state.store import Schedules

from .test_slack_app import SECRET, Rig

TEAM = "T0STANDIN"
PNG = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday 24 November, 08:00 in Paris


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PublicRig(Rig):
    """``Rig`` with ``KPIBOT_PUBLIC_URL`` set to the app server's own address (HTTP mode, charts by URL)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.server.stop()
        port = _free_port()
        self.slack = SlackSettings(signing_secret=SECRET, bot_token=self.standin.bot_token,
                                   api_url=self.standin.base_url, public_url=f"http://127.0.0.1:{port}")
        self.app = build_app(self.services, self.slack)
        self.wsgi = wsgi_app(self.services, self.slack, self.app)
        self.server = AppServer(self.wsgi, port=port).start()
        self.side = SlackSide(self.server.url, SECRET)


@pytest.fixture
def public_rig(database_url):
    r = PublicRig(database_url)
    yield r
    r.close()


def fetch(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, resp.headers.get("content-type", ""), resp.read()
    except HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


def chart_reply(rig, timeout: float = 20):
    rig.standin.wait_for(lambda: any(m.replace_original for m in rig.standin.messages), timeout=timeout)
    message = next(m for m in rig.standin.messages if m.replace_original)
    images = [b for b in message.blocks if b["type"] == "image"]
    assert len(images) == 1
    return message, images[0]


# -- private answers -------------------------------------------------------------------------------------

def test_private_answer_shows_its_chart_from_a_signed_url_and_leaves_no_file(public_rig):
    rig = public_rig
    _, first = rig.ask("conversion")
    assert first.response_type == "ephemeral"
    message, image = chart_reply(rig)
    assert message.response_type == "ephemeral" and "2.0%" in message.text + str(message.blocks)
    url = image["image_url"]
    assert "slack_file" not in image and url.startswith(rig.server.url + "/charts/") and url.endswith(".png")
    status, content_type, body = fetch(url)
    assert (status, content_type) == (200, "image/png") and body[:8] == PNG
    assert fetch(url, "HEAD")[:2] == (200, "image/png")
    # nothing was uploaded: no file in the asker's DM, nor anywhere else
    assert rig.standin.dm_file_shares == [] and rig.standin.files == []
    assert rig.standin.calls_to("files.getUploadURLExternal") == []

    chart_id, expires, signature = url.rsplit("/", 1)[1].removesuffix(".png").split(".")
    base = url.rsplit("/", 1)[0]
    tampered = [
        f"{base}/{chart_id}.{expires}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}.png",  # signature
        f"{base}/{chart_id}.{int(expires) + 86400}.{signature}.png",  # a longer life
        f"{base}/{chart_id[:-1]}{'A' if chart_id[-1] != 'A' else 'B'}.{expires}.{signature}.png",  # another id
        f"{base}/{chart_id}.{expires}.{signature}",  # no .png
        f"{base}/../healthz",
    ]
    for bad in tampered:
        status, _, body = fetch(bad)
        assert status == 404 and body[:8] != PNG, bad
    assert fetch(url)[0] == 200  # the genuine one still works

    links = rig.wsgi._charts  # a day later: expired, and purged with the next chart stored
    links.clock = lambda: datetime.now(UTC) + timedelta(days=1, minutes=1)
    assert fetch(url)[0] == 404
    assert links.purge() >= 1


def test_a_public_url_slack_cannot_reach_falls_back_to_uploads(database_url, caplog):
    """Slack downloads an ``image_url`` when the message is posted and refuses the message when it cannot
    (``invalid_blocks``, "downloading image failed"); the stand-in does the same. With KPIBOT_PUBLIC_URL
    pointing where nothing answers, the chart still shows (uploaded, as without a public URL), the
    operator is told, and the next answers skip the dead URL."""
    rig = PublicRig(database_url)
    try:
        rig.server.stop()
        dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
        rig.slack = SlackSettings(signing_secret=SECRET, bot_token=rig.standin.bot_token,
                                  api_url=rig.standin.base_url, public_url=dead)
        rig.app = build_app(rig.services, rig.slack)
        rig.server = AppServer(wsgi_app(rig.services, rig.slack, rig.app)).start()
        rig.side = SlackSide(rig.server.url, SECRET)
        _, first = rig.ask("conversion")
        assert "2.0%" in first.text + json.dumps(first.blocks)  # the numbers never wait for the chart
        _, image = chart_reply(rig, timeout=60)
        assert "slack_file" in image and "image_url" not in image  # uploaded, once the file was ready
        refused = [c for c in rig.standin.calls if c.method == "response_url" and c.status != 200]
        assert len(refused) == 1 and "image_url" in json.dumps(refused[0].params)
        assert refused[0].response["error"] == "invalid_blocks"
        assert dead in caplog.text and "KPIBOT_PUBLIC_URL" in caplog.text
        # the next answer goes the upload way at once: no second message refused for its image
        seen = len(rig.standin.messages)
        rig.ask("orders")
        rig.standin.wait_for(lambda: any(m.replace_original for m in rig.standin.messages[seen:]), timeout=60)
        assert len([c for c in rig.standin.calls if c.method == "response_url" and c.status != 200]) == 1
    finally:
        rig.close()


def test_a_chart_url_from_another_secret_is_refused(public_rig):
    from bot.chart_urls import ChartLinks, chart_key

    rig = public_rig
    other = ChartLinks(rig.services.state(), rig.server.url, chart_key("another-signing-secret"))
    forged = other.publish(PNG + b"forged")  # stored in the same database, signed with the wrong key
    assert fetch(forged)[0] == 404
    ours = rig.wsgi._charts.publish(PNG + b"ours")
    assert fetch(ours)[2] == PNG + b"ours"


def test_without_a_public_url_the_file_is_referenced_only_once_ready(rig):
    rig.standin.file_ready_delay = 1.5  # referenced any earlier, Slack (the stand-in) refuses the blocks
    rig.ask("conversion")
    _, image = chart_reply(rig, timeout=30)
    file_id = image["slack_file"]["id"]
    [upload] = [c for c in rig.standin.calls_to("files.completeUploadExternal")]
    info_calls = [c for c in rig.standin.calls_to("files.info") if c.params.get("file") == file_id]
    assert info_calls and info_calls[-1].response["file"]["mimetype"] == "image/png"
    assert any(c.response["file"]["mimetype"] == "" for c in info_calls)  # it was polled while processing
    # the only file is in the asker's own DM (no public URL: the private route)
    assert [s["user"] for s in rig.standin.dm_file_shares] == ["U0ALICE"]
    assert upload.response["ok"]


def test_a_file_that_never_gets_ready_leaves_the_sparkline_and_no_error(rig, monkeypatch):
    import bot.answer

    monkeypatch.setattr(bot.answer, "READY_TIMEOUT", 1.0)
    rig.standin.file_ready_delay = 3600
    _, first = rig.ask("conversion")
    assert "▁" in str(first.blocks) or "█" in str(first.blocks)
    rig.standin.wait_for(lambda: rig.standin.calls_to("files.info"), timeout=20)
    time.sleep(2.5)
    assert not any(m.replace_original for m in rig.standin.messages)
    assert [m for m in rig.standin.messages if m.kind == "response_url"] == [first]  # nothing said broke


# -- digests and alerts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [
    {"method": "upload_url", "status": 500},  # the SDK raises SlackRequestError
    {"method": "files.getUploadURLExternal", "error": "internal_error"},  # SlackApiError
    {"method": "files.completeUploadExternal", "status": 503},
])
def test_a_digest_whose_chart_upload_fails_is_posted_once(rig, monkeypatch, failure):
    import bot.digests

    monkeypatch.setattr(bot.digests, "draw_digest_chart", lambda digest, lang: PNG + b"goals")
    schedule = Schedules(rig.services.state(), TEAM).add("C0GENERAL", local_time="08:00", timezone="Europe/Paris",
                                                         now=datetime(2026, 1, 1))
    failure = dict(failure)  # the parameter is shared by both backends
    method = failure.pop("method")
    rig.standin.fail_next(method, times=5, **failure)
    sender = DigestSender(rig.services, TeamClients(rig.services, rig.slack), clock=lambda: DUE + timedelta(seconds=5))
    outcomes = [o for o in sender.tick() if o.day == date(2026, 11, 24)]
    assert [(o.schedule_id, o.status) for o in outcomes] == [(schedule.id, "sent")]
    digests = [m for m in rig.standin.messages_in("C0GENERAL") if m.kind == "message" and not m.thread_ts]
    assert len(digests) == 1 and rig.standin.files == []
    later = DigestSender(rig.services, TeamClients(rig.services, rig.slack), clock=lambda: DUE + timedelta(minutes=20))
    assert [o for o in later.tick() if o.status == "sent"] == []
    assert len([m for m in rig.standin.messages_in("C0GENERAL") if m.kind == "message" and not m.thread_ts]) == 1


def test_an_alert_to_a_channel_the_bot_is_not_in_joins_it_and_attaches_its_chart(rig):
    assert not rig.standin.is_member("C0NOTIN")
    spec = parse_rule("return rate above 8% over 7 days clear below 7% repeat 24h in #random",
                      rig.services.catalog(), tz_name="Europe/Paris")
    AlertRules(rig.services.state(), TEAM).add(spec, created_by="test", now=T0 - timedelta(hours=1))
    sent = AlertNotifier(rig.services, TeamClients(rig.services, rig.slack), clock=lambda: T0, worker="w1").check()
    assert [s.status for s in sent] == ["sent"]
    [first] = [m for m in rig.standin.messages_in("C0NOTIN") if m.kind == "message" and not m.thread_ts]
    assert rig.standin.is_member("C0NOTIN") and rig.standin.calls_to("conversations.join")
    [chart] = [f for f in rig.standin.files if f["channel_id"] == "C0NOTIN"]
    assert chart["thread_ts"] == first.ts and chart["content"][:8] == PNG
    updates = [m for m in rig.standin.messages if m.kind == "update" and m.ts == first.ts]
    images = [b for m in updates for b in (m.blocks or []) if b["type"] == "image"]
    assert images and images[-1]["slack_file"] == {"id": chart["id"]}
    assert rig.standin.dm_file_shares == []


def test_a_shared_answer_attaches_its_chart_in_a_channel_the_bot_was_not_in(rig):
    value = json.dumps({"q": "conversion", "l": "en"})
    url = rig.standin.new_response_url(channel_id="C0NOTIN")
    reply = rig.side.post(block_action("kpi_share", value, response_url=url, channel_id="C0NOTIN"))
    assert reply.status == 200
    rig.standin.wait_for(lambda: [f for f in rig.standin.files if f["channel_id"] == "C0NOTIN"], timeout=30)
    [posted] = [m for m in rig.standin.messages_in("C0NOTIN") if m.kind == "message" and not m.thread_ts]
    [chart] = [f for f in rig.standin.files if f["channel_id"] == "C0NOTIN"]
    assert chart["thread_ts"] == posted.ts and rig.standin.is_member("C0NOTIN")
