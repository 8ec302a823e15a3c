"""Block Kit rendering (bot.blocks) and its terminal view (bot.terminal).

Results are built by hand (no database): periods from parse_period with a fixed "now", metrics from the
real catalog. Canonical messages are compared with stored JSON in tests/data/blocks/; set
KPIBOT_UPDATE_SNAPSHOTS=1 to rewrite them after an intended change (and review the diff).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.blocks import (
    Message,
    catalog_message,
    error_message,
    fit,
    help_message,
    home_view,
    kpi_answer,
    progress_bar,
)
from bot.render.answer import BAD, NEUTRAL
from bot.render.text import DEFAULT_EXAMPLES
from bot.terminal import render_message, render_view
from kpi.metrics.catalog import Catalog, load_catalog
from kpi.metrics.engine import OTHER, BreakdownRow, KpiResult, SeriesPoint, Value, change_between
from kpi.metrics.formatting import no_data
from kpi.metrics.periods import ACCEPTED_FORMS, parse_period
from kpi.metrics.query import parse_query

TZ = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=TZ)
AS_OF = datetime(2026, 11, 24, 6, 0, tzinfo=TZ)  # after the end of "last 7 days": not stale
ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(ROOT / "config")
SNAPSHOTS = Path(__file__).resolve().parent / "data" / "blocks"
UPDATE = os.environ.get("KPIBOT_UPDATE_SNAPSHOTS") == "1"


# -- building results ------------------------------------------------------------------------------


def make_result(key: str, period: str = "last 7 days", *, current: Value, previous: Value | None = None,
                compare: str | None = "previous", series: list[float | None] | None = None,
                breakdown_by: str | None = None, breakdown: list[BreakdownRow] = (), total_groups: int | None = None,
                filters=(), as_of: datetime | None = AS_OF) -> KpiResult:
    metric = CATALOG.metrics[key]
    p = parse_period(period, now=NOW, tz=TZ)
    cmp_period = None
    if compare is not None:
        cmp_period = p.previous() if compare == "previous" else p.year_ago()
    points = []
    if series is not None:
        points = [SeriesPoint(s, e, Value(v)) for (s, e), v in zip(p.buckets("day"), series, strict=False)]
    return KpiResult(
        metric=metric, period=p, current=current, compare=compare if previous is not None else None,
        comparison_period=cmp_period if previous is not None else None, comparison=previous,
        change=change_between(metric, current, previous), series=points, granularity="day" if points else None,
        breakdown_by=breakdown_by, breakdown=list(breakdown),
        breakdown_total_groups=total_groups if total_groups is not None else len(breakdown),
        filters=filters, as_of=as_of,
    )


def row(key: str, metric: str, value: float | None, before: float | None, share: float | None,
        sample: float | None = None) -> BreakdownRow:
    m = CATALOG.metrics[metric]
    cur, prev = Value(value, sample=sample), Value(before)
    return BreakdownRow(key=key, value=cur, comparison=prev, change=change_between(m, cur, prev), share=share,
                        is_other=key == OTHER)


def conversion(**kw) -> KpiResult:
    # 3.2% of 123,450 sessions against 2.8% of 107,140: a real change (p < 0.001)
    return make_result("conversion_rate", current=Value(0.032, 3950, 123450, 123450),
                       previous=Value(0.028, 3000, 107140, 107140),
                       series=[0.030, 0.031, None, 0.035, 0.029, 0.033, 0.032], **kw)


def revenue_mtd() -> KpiResult:
    rows = [row("email", "revenue", 5200.5, 4800, 0.45), row("paid_search", "revenue", 3100, 3500, 0.27),
            row("social", "revenue", 1500, 1000, 0.13), row(OTHER, "revenue", 1740, 1650, 0.15)]
    return make_result("revenue", "mtd", current=Value(11540.5), previous=Value(10950), breakdown_by="channel",
                       breakdown=rows, total_groups=7, filters=(("device", ("mobile",)),),
                       series=[300.0 + 20 * i for i in range(24)])


def return_rate_up() -> KpiResult:
    return make_result("return_rate", "last month", current=Value(0.08, 400, 5000, 5000),
                       previous=Value(0.05, 300, 6000, 6000), compare="year")


def return_rate_small() -> KpiResult:
    return make_result("return_rate", "last month", current=Value(0.08, 4, 50, 50),
                       previous=Value(0.05, 3, 60, 60), compare="year")


# -- limits ----------------------------------------------------------------------------------------


def _text_len(obj: dict | None) -> int:
    return len((obj or {}).get("text", ""))


def assert_within_limits(blocks: list[dict], *, max_blocks: int = 50) -> None:
    """Every Block Kit limit of /work/shared/SLACK.md (and a few more from Slack's reference)."""
    assert len(blocks) <= max_blocks, f"{len(blocks)} blocks > {max_blocks}"
    json.dumps(blocks)
    for b in blocks:
        kind = b["type"]
        assert len(b.get("block_id", "")) <= 255
        if kind == "header":
            assert b["text"]["type"] == "plain_text" and 0 < _text_len(b["text"]) <= 150
        elif kind == "section":
            assert b.get("text") or b.get("fields"), "a section needs text or fields"
            if b.get("text"):
                text = b["text"]["text"]
                assert 0 < len(text) <= 3000
                assert text.count("```") % 2 == 0, "an unclosed code block"
            fields = b.get("fields") or []
            assert len(fields) <= 10
            assert all(0 < _text_len(f) <= 2000 for f in fields)
        elif kind == "context":
            assert 0 < len(b["elements"]) <= 10
            assert all(_text_len(e) <= 3000 for e in b["elements"])
        elif kind == "actions":
            assert 0 < len(b["elements"]) <= 25
            for e in b["elements"]:
                assert len(e.get("action_id", "")) <= 255
                if e["type"] == "button":
                    assert 0 < _text_len(e["text"]) <= 75
                    assert len(e.get("value", "")) <= 2000
        elif kind == "image":
            assert 0 < len(b["alt_text"]) <= 2000
            assert ("image_url" in b) != ("slack_file" in b)
            assert len(b.get("image_url", "")) <= 3000
            assert _text_len(b.get("title")) <= 2000
        else:
            assert kind == "divider", f"unexpected block type {kind}"


def assert_message_ok(msg: Message) -> None:
    assert isinstance(msg, Message)
    assert 0 < len(msg.text) <= 3000
    assert_within_limits(msg.blocks)


def all_text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# -- snapshots -------------------------------------------------------------------------------------


def check_snapshot(name: str, payload: dict) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with KPIBOT_UPDATE_SNAPSHOTS=1"
    assert payload == json.loads(path.read_text(encoding="utf-8")), f"{name} differs from {path}"


CANONICAL = {
    "answer_conversion_en": lambda: kpi_answer(conversion(), share_value="conversion_rate|last_7_days|previous"),
    "answer_conversion_fr": lambda: kpi_answer(conversion(), lang="fr", currency="EUR", share_value="q"),
    "answer_revenue_mtd_fr": lambda: kpi_answer(revenue_mtd(), lang="fr", currency="EUR", chart_file_id="F0CHART1",
                                                share_value="revenue|mtd|by=channel"),
    "answer_return_rate_shared_en": lambda: kpi_answer(return_rate_up(), shared_by="U012ABCDEF",
                                                       chart_url="https://example.com/c.png"),
    "help_en": lambda: help_message(),
    "help_fr": lambda: help_message(lang="fr"),
    "catalog_en": lambda: catalog_message(CATALOG),
    "catalog_fr": lambda: catalog_message(CATALOG, lang="fr"),
    "error_unknown_kpi_en": lambda: error_message("Unknown KPI 'conversoin'.", suggestions=["conversion", "aov"]),
    "error_period_fr": lambda: error_message("Je ne comprends pas la période 'lundi prochain'.", lang="fr",
                                             accepted=ACCEPTED_FORMS["fr"]),
    "error_ref_en": lambda: error_message("", ref="abc123"),
}


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_messages_match_stored_json(name):
    msg = CANONICAL[name]()
    assert_message_ok(msg)
    check_snapshot(name, {"text": msg.text, "blocks": msg.blocks})


def test_home_view_matches_stored_json():
    view = home_view(headline=[conversion(), revenue_mtd(), return_rate_up()], chart_file_id="F0CHART1",
                     sections=[Message("goals", [{"type": "section", "text": {"type": "mrkdwn", "text": "*Goals*"}}])])
    assert view["type"] == "home"
    assert_within_limits(view["blocks"], max_blocks=100)
    check_snapshot("home_en", view)


# -- the answer ------------------------------------------------------------------------------------


def _comparison_line(msg: Message) -> str:
    return msg.blocks[1]["text"]["text"].split("\n")[1]


@pytest.mark.parametrize("key,now,before,emoji", [
    ("conversion_rate", 0.032, 0.028, ":large_green_circle:"),  # up, higher is better
    ("conversion_rate", 0.020, 0.028, ":red_circle:"),
    ("return_rate", 0.08, 0.05, ":red_circle:"),  # up, but lower is better
    ("return_rate", 0.03, 0.05, ":large_green_circle:"),
    ("cac", 40.0, 30.0, ":red_circle:"),
    ("conversion_rate", 0.028, 0.028, ":white_circle:"),  # flat
    ("conversion_rate", 0.028, None, ":white_circle:"),  # unknown
])
def test_colour_follows_whether_the_change_is_good(key, now, before, emoji):
    msg = kpi_answer(make_result(key, current=Value(now, sample=1000), previous=Value(before, sample=1000)))
    line = _comparison_line(msg)
    assert line.startswith(emoji)
    assert ("↑" in line) == (before is not None and now > before)


def test_rates_change_in_points_and_percent():
    line = _comparison_line(kpi_answer(conversion()))
    assert "+0.4 pt (+14.3%)" in line and "vs previous period (Nov 10\u2009–\u200916, 2026): 2.8%" in line


def test_a_change_within_normal_variation_gets_no_colour():
    # +3 pt of returns on 50 orders is noise (p ≈ 0.5): an arrow, no red, and the words that say why
    line = _comparison_line(kpi_answer(return_rate_small()))
    assert line.startswith(NEUTRAL) and "↑" in line and "within normal variation" in line
    assert "🔴" not in line and ":red_circle:" not in line
    assert _comparison_line(kpi_answer(return_rate_up())).startswith(BAD)


def test_no_data_is_shown_as_such_never_zero():
    result = make_result("conversion_rate", current=Value(None, 0, 0, 0), previous=Value(None, 0, 0, 0),
                         series=[None] * 7)
    for lang in ("en", "fr"):
        msg = kpi_answer(result, lang=lang)
        assert_message_ok(msg)
        main = msg.blocks[1]["text"]["text"]
        assert main.startswith(f"*{no_data(lang)}*")
        assert "0.0%" not in all_text(msg.blocks) and "0,0 %" not in all_text(msg.blocks)
        assert all(b["type"] != "image" for b in msg.blocks)  # no sparkline of nothing either
        assert "`" not in main


def test_sample_behind_a_rate_and_small_sample_warning():
    en = all_text(kpi_answer(conversion()).blocks)
    assert "based on 123,450 sessions" in en and "Small sample" not in en
    assert "sur 123 450 sessions" in all_text(kpi_answer(conversion(), lang="fr").blocks).replace("\u202f", " ")
    small = all_text(kpi_answer(return_rate_small()).blocks)
    assert "based on 50 orders" in small and ":warning: Small sample" in small
    simple = all_text(kpi_answer(revenue_mtd()).blocks)
    assert "based on" not in simple


def test_french_numbers_and_strings():
    msg = kpi_answer(conversion(), lang="fr", currency="EUR", share_value="q")
    text = all_text(msg.blocks)
    # no-break spaces: a narrow one before % (French typography), a plain one inside "0,4 pt"
    assert "*3,2\u202f%*" in text and "+0,4\u00a0pt (+14,3\u202f%)" in text
    assert "vs période précédente" in text and "Partager dans le canal" in text and "données au 24/11/2026" in text
    assert "Taux de conversion" in text
    assert "vs previous" not in text and "Share in channel" not in text


def test_as_of_in_shop_time_and_stale_note():
    assert "as of 2026-11-24 06:00 CET" in all_text(kpi_answer(conversion()).blocks)
    current = all_text(kpi_answer(revenue_mtd()).blocks)  # month to date, data up to 06:00 today: not stale
    assert ":hourglass_flowing_sand:" not in current and "as of 2026-11-24 06:00 CET" in current
    late = datetime(2026, 11, 20, 6, tzinfo=ZoneInfo("Europe/Paris"))  # nothing since Thursday: the feed stopped
    stale = all_text(kpi_answer(conversion(as_of=late)).blocks)
    assert ":hourglass_flowing_sand:" in stale and "2026-11-20 06:00 CET" in stale
    none = all_text(kpi_answer(conversion(as_of=None)).blocks)
    assert "No data in the source yet" in none


def test_chart_image_or_sparkline():
    by_file = kpi_answer(conversion(), chart_file_id="F123")
    images = [b for b in by_file.blocks if b["type"] == "image"]
    assert images == [{"type": "image", "slack_file": {"id": "F123"},
                       "alt_text": "Conversion rate, last 7 days (Nov 17\u2009–\u200923): chart by day"}]
    assert "▁" not in all_text(by_file.blocks)
    by_url = kpi_answer(conversion(), chart_url="https://example.com/x.png")
    assert [b["image_url"] for b in by_url.blocks if b["type"] == "image"] == ["https://example.com/x.png"]
    spark = kpi_answer(conversion())
    assert not [b for b in spark.blocks if b["type"] == "image"]
    assert re.search(r"`[▁▂▃▄▅▆▇█ ]{7}`", all_text(spark.blocks))


def test_breakdown_table_is_aligned_with_other_and_top_note():
    msg = kpi_answer(revenue_mtd())
    table = next(b["text"]["text"] for b in msg.blocks if b["type"] == "section" and "```" in b["text"]["text"])
    assert table.startswith("*By channel*  _top 3 of 7_")
    lines = table.split("```")[1].strip("\n").split("\n")
    assert lines[0].split() == ["channel", "value", "share", "change"]
    assert lines[-1].startswith("other (4)")
    assert len({len(line.rstrip()) for line in lines[:-1]}) == 1  # right-aligned columns end together
    assert "+8.3%" in lines[1]  # relative change for a currency KPI


def test_filters_are_shown_and_escaped():
    msg = kpi_answer(conversion(filters=(("channel", ("email", "<!channel>")),)))
    main = msg.blocks[1]["text"]["text"]
    assert "_Filters: channel = email, &lt;!channel&gt;_" in main
    assert "<!channel>" not in all_text(msg.blocks)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_huge_breakdown_stays_within_every_limit(lang):
    m = "revenue"
    keys = [(f"{i:03d}-" + "ü&<>`*_~" * 20)[:150] for i in range(500)]
    rows = [row(k, m, 1000.0 + i, 900.0, 1 / 500) for i, k in enumerate(keys)]
    long_label = dataclasses.replace(CATALOG.metrics[m], label={"en": "R" * 300, "fr": "R" * 300})
    result = dataclasses.replace(
        make_result(m, "last 3 months", current=Value(1e6), previous=Value(9e5), series=[1.0] * 92,
                    breakdown_by="channel", breakdown=rows, filters=(("country", tuple("X" * 150 for _ in range(40))),)),
        metric=long_label)
    msg = kpi_answer(result, lang=lang, currency="EUR", share_value="s" * 2000)
    assert_message_ok(msg)
    text = all_text(msg.blocks)
    assert ("of 500 rows" in text) if lang == "en" else ("sur 500" in text)
    assert msg.blocks[-1]["type"] == "actions"


def test_share_button_and_shared_by():
    msg = kpi_answer(conversion(), share_value="v1")
    actions = [b for b in msg.blocks if b["type"] == "actions"]
    assert actions[0]["elements"][0]["action_id"] == "kpi_share" and actions[0]["elements"][0]["value"] == "v1"
    assert not [b for b in kpi_answer(conversion()).blocks if b["type"] == "actions"]
    shared = kpi_answer(conversion(), share_value="v1", shared_by="U012ABCDEF")
    assert not [b for b in shared.blocks if b["type"] == "actions"]
    assert "Shared by <@U012ABCDEF>" in all_text(shared.blocks)
    assert "Partagé par <@U012ABCDEF>" in all_text(kpi_answer(conversion(), lang="fr", shared_by="<@U012ABCDEF>").blocks)
    with pytest.raises(ValueError):
        kpi_answer(conversion(), share_value="x" * 2001)


def test_response_body():
    msg = kpi_answer(conversion())
    body = msg.as_response("in_channel", replace_original=True)
    assert body == {"response_type": "in_channel", "replace_original": True, "text": msg.text, "blocks": msg.blocks}
    assert msg.as_response()["response_type"] == "ephemeral"
    with pytest.raises(ValueError):
        msg.as_response("public")


# -- help, catalog, errors -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_help_lists_usage_examples_and_periods(lang):
    msg = help_message(lang=lang)
    assert_message_ok(msg)
    text = all_text(msg.blocks)
    assert "/kpi list" in text and "/kpi help" in text and "/kpi &lt;kpi&gt;" in text
    assert all(f"`{form}`" in text for form in ACCEPTED_FORMS[lang])
    custom = help_message(lang=lang, examples=["conversion by channel", "/kpi aov"] * 20)
    assert_message_ok(custom)
    assert "`/kpi conversion by channel`" in all_text(custom.blocks)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_default_help_examples_are_understood(lang):
    for example in DEFAULT_EXAMPLES[lang]:
        parse_query(example, CATALOG, now=NOW, tz=TZ)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_catalog_lists_every_kpi(lang):
    msg = catalog_message(CATALOG, lang=lang)
    assert_message_ok(msg)
    text = all_text(msg.blocks)
    for m in CATALOG.metrics.values():
        assert f"*{m.name(lang)}*" in text.replace("'", "'")
    assert ("↓ lower is better" if lang == "en" else "↓ plus bas = mieux") in text


def test_a_huge_catalog_still_fits():
    base = CATALOG.metrics["revenue"]
    metrics = {f"kpi_{i}": dataclasses.replace(base, key=f"kpi_{i}", label={"en": f"KPI {i} " + "x" * 200},
                                               aliases={"en": ["a" * 900] * 5}) for i in range(600)}
    msg = catalog_message(Catalog(CATALOG.measures, metrics))
    assert_message_ok(msg)
    assert "more blocks not shown" in msg.blocks[-1]["elements"][0]["text"]


def test_errors_never_show_a_trace_and_escape_input():
    msg = error_message("Query failed\nTraceback (most recent call last):\n  File \"x.py\", line 1\nboom", ref="r1")
    assert_message_ok(msg)
    assert "Sorry, something went wrong (ref r1)." in msg.text
    assert "Traceback" not in all_text(msg.blocks) and "Traceback" not in msg.text
    assert "Query failed" in msg.text
    fr = error_message("", ref="r1", lang="fr")
    assert "Désolé, une erreur s'est produite (réf. r1)." in fr.text
    unknown = error_message("Unknown KPI '<!here>'", suggestions=["conversion rate", "/kpi aov"] * 10)
    assert_message_ok(unknown)
    text = all_text(unknown.blocks)
    assert "<!here>" not in text and "Did you mean `/kpi conversion rate` or `/kpi aov`" in text
    period = error_message("x" * 5000, lang="fr", accepted=ACCEPTED_FORMS["fr"] * 50, suggestions=["y" * 3000])
    assert_message_ok(period)


# -- guards ----------------------------------------------------------------------------------------


def test_fit_cuts_with_a_note_and_keeps_the_buttons():
    blocks = [{"type": "divider"}] * 80 + [{"type": "actions", "elements": []}]
    out = fit(blocks)
    assert len(out) == 50 and out[-1]["type"] == "actions"
    assert out[-2]["type"] == "context" and "32 more blocks" in out[-2]["elements"][0]["text"]
    assert fit(blocks[:10]) == blocks[:10]


def test_home_view_with_many_sections_stays_under_100_blocks():
    many = [help_message() for _ in range(30)]
    view = home_view(headline=[conversion()] * 5, sections=many, lang="fr")
    assert_within_limits(view["blocks"], max_blocks=100)
    assert view["blocks"][-1]["type"] == "context" and "Mis à jour le" in view["blocks"][-1]["elements"][0]["text"]
    empty = home_view(headline=[])
    assert_within_limits(empty["blocks"], max_blocks=100)


@pytest.mark.parametrize("fraction,expected", [
    (0.5, "▓▓▓▓▓░░░░░ 50%"), (0.0, "░░░░░░░░░░ 0%"), (1.0, "▓▓▓▓▓▓▓▓▓▓ 100%"),
    (1.3, "▓▓▓▓▓▓▓▓▓▓ 130%"), (-0.2, "░░░░░░░░░░ -20%"), (None, "no data"), (float("nan"), "no data"),
])
def test_progress_bar(fraction, expected):
    assert progress_bar(fraction) == expected


def test_progress_bar_width_and_french():
    assert progress_bar(0.25, width=4) == "▓░░░ 25%"
    assert progress_bar(0.5, lang="fr") == "▓▓▓▓▓░░░░░ 50\u202f%"  # never wraps before the %
    assert progress_bar(None, lang="fr") == "pas de données"


# -- the terminal view -----------------------------------------------------------------------------


def test_terminal_renders_an_answer_readably():
    msg = kpi_answer(revenue_mtd(), chart_file_id="F0CHART1", share_value="v")
    out = render_message(msg.as_dict(), width=80)
    assert "\x1b[" not in out
    assert out.startswith("Revenue\n═══════\n")
    assert "🟢 ↑" in out and "[ Share in channel ]" in out
    assert "[chart: Revenue, month to date (Nov 1\u2009–\u200924, so far): chart by day] (file F0CHART1)" in \
        " ".join(out.split("\n"))  # wrapped at 80 columns like the rest
    assert "│ channel" in out and "*" not in out.replace("```", "")
    assert all(len(line) <= 80 for line in out.split("\n") if not line.startswith("│"))
    coloured = render_message(msg.as_dict(), color=True)
    assert "\x1b[1m" in coloured and "\x1b[2m" in coloured


def test_terminal_renders_fields_mentions_and_views():
    shared = render_message(kpi_answer(return_rate_up(), shared_by="U1ABC").as_dict())
    assert "🔴" in shared and "Shared by @U1ABC" in shared and "[image:" not in shared
    catalog = render_message(catalog_message(CATALOG).as_dict(), width=100)
    assert re.search(r"^Revenue  `revenue` +Orders  `orders`$", catalog, re.MULTILINE)
    assert render_message({"text": "plain *fallback* :unknown_emoji: :warning:"}) == "plain fallback :unknown_emoji: ⚠️"
    home = render_view(home_view(headline=[conversion()]))
    assert home.startswith("[App Home]") and "Your KPIs" in home
    modal = render_view({"type": "modal", "title": {"type": "plain_text", "text": "New goal"},
                         "submit": {"type": "plain_text", "text": "Save"}, "blocks": [{"type": "divider"}]})
    assert "New goal" in modal and "[ Save ]" in modal
