"""Defaults for a workspace the bot serves: config/goals.yaml, digests.yaml, alerts.yaml.

First contact seeds only the example goals (config/goals.yaml), once per team (the ``teams`` row says
when), so a team that archives them does not get them back. Nothing is posted and nothing is scheduled
then: the App Home shows an onboarding card (issue 12), where someone picks the digest's channel
(``create_default_digest``: config/digests.yaml's time, days and content, in that channel) and enables
the default alert rules (``enable_default_alerts``: config/alerts.yaml, posted in the digest's channel).
Both are idempotent: a team that has a digest, or has the default rules, gets nothing more.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
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
    """Seed the team's example goals unless done before (no digest, no alert rule: the onboarding card
    offers those). True when this call seeded them."""
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
    log.info("seeded the defaults of team %s", team_id)
    return True


DEFAULT_RULES_BY = ("config", "onboarding")  # who created a team's default alert rules
_lock = threading.Lock()  # a double click in one process creates one digest, one set of rules


@dataclass(frozen=True)
class Onboarding:
    """What the App Home's onboarding card still offers a team."""
    needs_digest: bool
    needs_alerts: bool
    digest_channel: str | None  # where the team's first digest goes (the default rules post there)

    @property
    def done(self) -> bool:
        return not (self.needs_digest or self.needs_alerts)


def onboarding(state: Engine, team_id: str) -> Onboarding:
    from kpi.alerts.store import AlertRules

    schedules = Schedules(state, team_id).list()
    has_rules = any(r.created_by in DEFAULT_RULES_BY for r in AlertRules(state, team_id).list())
    return Onboarding(needs_digest=not schedules, needs_alerts=not has_rules,
                      digest_channel=schedules[0].channel if schedules else None)


def create_default_digest(state: Engine, team_id: str, channel: str, *, config_dir: Path, shop_tz: str,
                          created_by: str | None = None):
    """The team's first digest in ``channel``, at the time, days and with the content of config/digests.yaml
    (its first entry; its channel is not used). None when the team has a digest already."""
    items = _load(config_dir / "digests.yaml", "digests") or [{}]
    item = items[0]
    tz = str(item.get("timezone") or "shop")
    with _lock:
        schedules = Schedules(state, team_id)
        if schedules.list():
            return None
        created = schedules.add(channel, local_time=str(item.get("time") or "08:00"),
                                timezone=shop_tz if tz == "shop" else tz,
                                days=parse_days(str(item.get("days") or "mon-fri")),
                                content=tuple(item.get("content") or CONTENTS), created_by=created_by or "onboarding")
    log.info("team %s: default digest #%s in %s", team_id, created.id, channel)
    return created


def enable_default_alerts(state: Engine, team_id: str, *, config_dir: Path, catalog, shop_tz: str,
                          channel: str | None = None, created_by: str | None = None) -> list:
    """The alert rules of config/alerts.yaml, posting in ``channel`` (default: each rule's own). Empty when
    the team has them already."""
    from kpi.alerts.rules import parse_rule
    from kpi.alerts.store import AlertRules

    with _lock:
        rules = AlertRules(state, team_id)
        if any(r.created_by in DEFAULT_RULES_BY for r in rules.list()):
            return []
        added = []
        for item in _load(config_dir / "alerts.yaml", "alerts"):
            try:
                spec = parse_rule(str(item.get("text", "")), catalog, tz_name=shop_tz)
            except KpiError as exc:
                log.warning("config/alerts.yaml: %r skipped: %s", item.get("text"), exc)
                continue
            if channel:
                spec = replace(spec, channel=channel)
            added.append(rules.add(spec, created_by="onboarding"))
    log.info("team %s: %d default alert rules enabled by %s", team_id, len(added), created_by)
    return added
