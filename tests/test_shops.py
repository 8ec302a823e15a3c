"""One deployment, several shops (issue 12, tenancy): ``config/teams.yaml`` gives a workspace its own shop
source, currency and time zone; no number crosses from one shop to another, in answers, goals, digests,
alerts or the command line. Through signed HTTP against the running app and the Slack stand-in, on SQLite
and PostgreSQL (the state database; the shops' sources are SQLite files).

The deployment's shop (KPI_SOURCE_URL) is tests/test_engine.py's, in EUR; shop A is the same shop with
every order three times as big, in USD, served to T0SHOPA only.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import insert

from bot.alerts import AlertNotifier
from bot.app import build_app, wsgi_app
from bot.sandbox import AppServer, SlackSide, Workspace
from bot.teams import TeamClients
from kpi.alerts.rules import parse_rule
from kpi.alerts.store import AlertRules
from kpi.cli import main
from kpi.data import schema
from kpi.data.schema import create_source_tables
from kpi.db import make_engine
from kpi.errors import KpiError
from kpi.metrics.catalog import load_catalog
from kpi.metrics.engine import KpiEngine, KpiRequest
from kpi.metrics.formatting import format_value
from kpi.metrics.periods import parse_period
from kpi.services import Services
from kpi.shops import load_shops

from .test_engine import CAMPAIGNS, CUSTOMERS, NOW, ORDERS, RETURNS, SPEND, TRAFFIC, TZ
from .test_slack_app import CONFIG, SECRET, Rig, _text
from .test_tenancy import oauth_install

WEEK = "2026-11-17..2026-11-23"
SHOP_A = Workspace(team_id="T0SHOPA", team_domain="shop-a")
HOME = Workspace(team_id="T0NEWSHOP", team_domain="new-shop")


def fill_shop_a(url: str) -> None:
    engine = make_engine(url)
    create_source_tables(engine)
    bigger = [{**o, "subtotal": o["subtotal"] * 3, "currency": "USD"} for o in ORDERS]
    with engine.begin() as conn:
        for table, rows in [(schema.orders, bigger), (schema.customers, CUSTOMERS), (schema.traffic, TRAFFIC),
                            (schema.marketing_spend, SPEND), (schema.returns, RETURNS),
                            (schema.email_campaigns, CAMPAIGNS)]:
            conn.execute(insert(table), rows)
    engine.dispose()


def revenue(url: str) -> float:
    """The week's revenue in the source at ``url``, asked of the engine directly (no teams involved)."""
    engine = make_engine(url)
    try:
        kpis = KpiEngine(load_catalog(CONFIG), engine, tz=TZ, clock=lambda: NOW)
        return kpis.ask(KpiRequest("revenue", parse_period(WEEK, now=NOW, tz=TZ), compare=None)).current.value
    finally:
        engine.dispose()


def config_with_teams(tmp_path: Path, teams_yaml: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / "teams.yaml").write_text(teams_yaml, encoding="utf-8")
    return config


@pytest.fixture
def shops(database_url, tmp_path, monkeypatch):
    """Several workspaces: T0NEWSHOP reads the deployment's shop, T0SHOPA its own (allowed by teams.yaml
    alone: the allow-list names only T0NEWSHOP); both installed through OAuth."""
    shop_a = f"sqlite:///{tmp_path / 'shop-a.db'}"
    fill_shop_a(shop_a)
    monkeypatch.setenv("SHOP_A_URL", shop_a)
    config = config_with_teams(tmp_path, "teams:\n  T0SHOPA:\n    name: Shop A\n    source: ${SHOP_A_URL}\n"
                                         "    currency: usd\n")
    rig = Rig(database_url, multi=True)
    rig.server.stop()
    rig.services = Services(dataclasses.replace(rig.services.settings, config_dir=config), clock=rig.services.clock)
    rig.slack = dataclasses.replace(rig.slack, allowed_teams=("T0NEWSHOP",))
    rig.app = build_app(rig.services, rig.slack)
    rig.server = AppServer(wsgi_app(rig.services, rig.slack, rig.app)).start()
    rig.side = SlackSide(rig.server.url, SECRET)
    for team, channel in (("T0NEWSHOP", "C1HOME"), ("T0SHOPA", "C1SHOPA")):
        assert oauth_install(rig, team, f"xoxb-{team.lower()}")[0] == 200
        rig.standin.add_channel(channel, "kpis", team_id=team)
    rig.shop_a = shop_a
    yield rig
    rig.close()


def ask(rig, text: str, ws: Workspace) -> str:
    channel = "C1SHOPA" if ws is SHOP_A else "C1HOME"
    _, message = rig.ask(text, ws=ws, channel_id=channel)
    return _text(message)


def test_each_workspace_reads_its_own_shop_in_its_own_currency(shops):
    home, mine = revenue(shops.url), revenue(shops.shop_a)
    assert mine == pytest.approx(3 * home) and home > 0
    seen_home = ask(shops, f"revenue {WEEK}", HOME)
    seen_a = ask(shops, f"revenue {WEEK}", SHOP_A)
    assert format_value(home, "currency", currency="EUR") in seen_home
    assert format_value(mine, "currency", currency="USD") in seen_a
    # no number, no currency crosses
    assert format_value(mine, "currency", currency="USD") not in seen_home and "$" not in seen_home
    assert format_value(home, "currency", currency="EUR") not in seen_a and "€" not in seen_a
    # a filter value is checked against the asker's shop (both shops sell by email)
    assert "$" in ask(shops, f"revenue {WEEK} channel=email", SHOP_A)


def test_goals_digests_and_alerts_use_the_teams_shop(shops):
    # a goal's SMART restatement and the digest preview are in shop A's currency, from its numbers
    goal = ask(shops, "goal add revenue 5000 by 2026-12-31", SHOP_A)
    assert "$" in goal and "€" not in goal
    digest = ask(shops, "digest preview", SHOP_A)
    assert "$" in digest and "€" not in digest
    assert "€" in ask(shops, "digest preview", HOME)
    # the same alert rule in both workspaces: the last 7 days' revenue is 340 in the deployment's shop
    # and 1,020 in shop A, so "above 600" fires in shop A's channel only, with shop A's number
    state = shops.services.state()
    catalog = shops.services.catalog()
    for team, channel in (("T0NEWSHOP", "C1HOME"), ("T0SHOPA", "C1SHOPA")):
        AlertRules(state, team).add(parse_rule(f"revenue above 600 over 7 days in <#{channel}|kpis>", catalog,
                                               tz_name="Europe/Paris"), created_by="U0ALICE")
    notifier = AlertNotifier(shops.services, TeamClients(shops.services, shops.slack), clock=lambda: NOW)
    sent = notifier.check(force=True)
    assert [s.status for s in sent] == ["sent"]
    posted = [m for m in shops.standin.messages if m.kind == "message" and not m.thread_ts]  # (the chart: in a thread)
    assert [(m.team_id, m.channel) for m in posted] == [("T0SHOPA", "C1SHOPA")]
    seen = posted[0].text + json.dumps(posted[0].blocks, ensure_ascii=False)
    assert "$" in seen and "€" not in seen


def test_the_command_line_names_the_shop_with_team(shops, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", shops.url)
    monkeypatch.setenv("KPI_SOURCE_URL", shops.url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(shops.services.settings.config_dir))
    monkeypatch.setenv("KPIBOT_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("KPIBOT_CURRENCY", "EUR")
    assert main(["ask", "revenue", WEEK, "--team", "T0SHOPA", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["current"]["value"] == pytest.approx(revenue(shops.shop_a))
    assert main(["ask", "revenue", WEEK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["current"]["value"] == pytest.approx(revenue(shops.url))
    # `db upgrade` reaches every shop: a team added with an empty source gets its tables
    empty = shops.services.settings.config_dir.parent / "shop-b.db"
    teams = shops.services.settings.config_dir / "teams.yaml"
    teams.write_text(teams.read_text() + f"  T0SHOPB:\n    source: sqlite:///{empty}\n    currency: USD\n    timezone: America/New_York\n")
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert "shop-b.db" in out and "orders" in out
    # an import with --team lands in that shop only
    csv = empty.parent / "orders.csv"
    csv.write_text("order_id,customer_id,placed_at,subtotal,currency,status\nb1,cb1,2026-11-20T10:00:00,77,USD,placed\n")
    before_home = revenue(shops.url)
    assert main(["import", str(csv), "--table", "orders", "--team", "T0SHOPB"]) == 0
    assert revenue(f"sqlite:///{empty}") == pytest.approx(77)
    assert revenue(shops.url) == before_home


def test_a_mistake_in_teams_yaml_is_one_clear_line(tmp_path):
    def problem(text: str, env: dict | None = None) -> str:
        path = tmp_path / "teams.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(KpiError) as err:
            load_shops(tmp_path, env or {})
        return str(err.value)

    assert "SHOP_A_URL" in problem("teams:\n  T0SHOPA:\n    source: ${SHOP_A_URL}\n")
    assert "not a Slack team id" in problem("teams:\n  shop-a:\n    source: sqlite:///a.db\n")
    assert "3-letter" in problem("teams:\n  T0SHOPA:\n    source: sqlite:///a.db\n    currency: euro\n")
    assert "time zone" in problem("teams:\n  T0SHOPA:\n    source: sqlite:///a.db\n    timezone: Paris\n")
    assert "unknown setting" in problem("teams:\n  T0SHOPA:\n    source: sqlite:///a.db\n    curency: EUR\n")
    assert "source is missing" in problem("teams:\n  T0SHOPA:\n    currency: EUR\n")
    secret = problem("teams:\n  T0SHOPA:\n    source: reader:hunter2@warehouse/shop\n")
    assert "database URL" in secret and "hunter2" not in secret  # never echoed: it may hold a password
    assert "not valid YAML" in problem("teams: [\n")
    (tmp_path / "teams.yaml").write_text("teams:\n  T0SHOPA: ${A}\n", encoding="utf-8")
    shops = load_shops(tmp_path, {"A": "postgres://reader:pw@db/shop"})
    assert shops["T0SHOPA"].source_url == "postgresql+psycopg://reader:pw@db/shop"
    # the repository's file is an example, all comments: it maps no team
    assert load_shops(CONFIG) == {}


def test_a_refused_installation_leaves_no_usable_token(database_url):
    """Slack hands a token over before the app can refuse the team: it is revoked (auth.revoke)."""
    from .test_tenancy import multi_rig

    rig = multi_rig(database_url, allowed=("T0NEWSHOP",))
    try:
        assert oauth_install(rig, "T0INTRUDER", "xoxb-intruder")[0] == 403
        assert [c.token for c in rig.standin.calls_to("auth.revoke")] == ["xoxb-intruder"]
        with pytest.raises(SlackApiError) as err:
            WebClient(token="xoxb-intruder", base_url=rig.slack.api_url).auth_test()
        assert err.value.response["error"] == "token_revoked"
        assert oauth_install(rig, "T0NEWSHOP", "xoxb-new-shop")[0] == 200
        assert WebClient(token="xoxb-new-shop", base_url=rig.slack.api_url).auth_test()["team_id"] == "T0NEWSHOP"
        assert len(rig.standin.calls_to("auth.revoke")) == 1
    finally:
        rig.close()

