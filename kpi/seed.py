"""Defaults for a workspace the bot serves for the first time: config/goals.yaml, digests.yaml, alerts.yaml.

Seeded once per team (the ``teams`` row says when), so a team that archives the example goals or
removes the default digest does not get them back.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kpi.errors import KpiError
from kpi.state.store import CONTENTS, Goals, Schedules, parse_days
from kpi.state.tables import teams

log = logging.getLogger("kpibot.seed")


def _load(path: Path, key: str) -> list[dict]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise KpiError("{path}: not valid YAML: {error}", path=path, error=exc) from None
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise KpiError("{path}: '{key}' must be a list of mappings", path=path, key=key)
    return items


def ensure_seeded(state: Engine, team_id: str, *, config_dir: Path, catalog, shop_tz: str, today: date) -> bool:
    """Seed the team's defaults unless done before. True when this call seeded them."""
    with state.connect() as conn:
        if conn.execute(select(teams.c.team_id).where(teams.c.team_id == team_id)).first():
            return False
    try:
        with state.begin() as conn:  # the row first: of two processes seeding at once, one wins
            conn.execute(insert(teams).values(team_id=team_id, seeded_at=datetime.now(UTC).replace(tzinfo=None)))
    except IntegrityError:
        return False
    from kpi.goals import parse_goal

    store = Goals(state, team_id)
    for item in _load(config_dir / "goals.yaml", "goals"):
        try:
            spec = parse_goal(str(item.get("text", "")), catalog, today=today, tz=ZoneInfo(shop_tz))
        except KpiError as exc:
            log.warning("config/goals.yaml: %r skipped: %s", item.get("text"), exc)
            continue
        store.add(spec, created_by="config")
    schedules = Schedules(state, team_id)
    for item in _load(config_dir / "digests.yaml", "digests"):
        tz = str(item.get("timezone") or "shop")
        content = item.get("content") or list(CONTENTS)
        schedules.add(str(item.get("channel") or "#general"), local_time=str(item.get("time") or "08:00"),
                      timezone=shop_tz if tz == "shop" else tz, days=parse_days(str(item.get("days") or "mon-fri")),
                      content=tuple(content), created_by="config")
    from kpi.alerts.rules import parse_rule
    from kpi.alerts.store import AlertRules

    rules = AlertRules(state, team_id)
    for item in _load(config_dir / "alerts.yaml", "alerts"):
        try:
            rules.add(parse_rule(str(item.get("text", "")), catalog, tz_name=shop_tz), created_by="config")
        except KpiError as exc:
            log.warning("config/alerts.yaml: %r skipped: %s", item.get("text"), exc)
    log.info("seeded the defaults of team %s", team_id)
    return True
