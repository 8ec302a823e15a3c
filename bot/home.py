"""The App Home tab's content: the headline KPIs over the last 7 days against the 7 before, with their
trend; then the team's goals with their progress, and its alert rules with their state."""

from __future__ import annotations

import logging

from kpi.alerts.store import AlertRules, StateStore
from kpi.digests.compose import CachingEngine, spec_of
from kpi.errors import KpiError
from kpi.goals import goal_progress
from kpi.metrics.engine import KpiRequest
from kpi.metrics.periods import default_period
from kpi.seed import onboarding
from kpi.services import Services
from kpi.state.store import Goals

from .blocks import error_message, home_view
from .render.alerts import rules_list_message
from .render.goals import goal_list_message
from .render.home import onboarding_card

log = logging.getLogger("kpibot.home")


def goal_items(services: Services, team_id: str, engine=None) -> list:
    """(goal, metric, progress) of each of the team's active goals, as the lists and the Home show them."""
    services = services.for_team(team_id)
    engine = engine or services.kpi_engine()
    today = engine.now().date()
    cached = CachingEngine(engine)  # goals on the same KPI share its questions, as in the digest
    items = []
    for g in Goals(services.state(), team_id).list():
        try:
            progress = goal_progress(cached, spec_of(g), today=today)
        except KpiError as exc:  # its KPI is one the data cannot give: listed, marked not computed
            log.info("goal #%s not computed: %s", g.id, exc)
            progress = None
        items.append((g, engine.catalog.metrics[g.metric], progress))
    return items


def build_home(services: Services, lang: str, team_id: str = "", *, notice: str = "", goals_offset: int = 0) -> dict:
    """The Home tab; for a team not set up yet, the onboarding card first (``notice``: a line under it).
    ``goals_offset``: the page of goals shown (the pager's buttons republish the Home with another)."""
    services = services.for_team(team_id)
    lead = None
    if team_id:
        try:
            setup = onboarding(services.state(), team_id)
            lead = onboarding_card(needs_digest=setup.needs_digest, needs_alerts=setup.needs_alerts,
                                   digest_channel=setup.digest_channel, lang=lang, notice=notice)
        except Exception:  # noqa: BLE001 - the rest of the Home still shows
            log.exception("home tab: onboarding state unavailable")
    try:
        engine = services.kpi_engine()
        period = default_period(now=engine.now(), tz=services.settings.tz)
        headline = []
        for m in engine.catalog.metrics.values():
            if not m.headline:
                continue
            try:
                headline.append(engine.ask(KpiRequest(m.key, period)))
            except KpiError as exc:  # one KPI the data cannot give (a missing column...): the others still show
                log.info("home tab: %s left out: %s", m.key, exc)
        sections = []
        if team_id:
            sections.append(goal_list_message(goal_items(services, team_id, engine), lang=lang, home_hint=False,
                                              currency=services.settings.currency, offset=goals_offset))
            states = StateStore(services.state(), team_id)
            rules = [(r.id, r.spec, engine.catalog.metrics[r.spec.metric], states.load(r.id).state)
                     for r in AlertRules(services.state(), team_id).list()]
            sections.append(rules_list_message(rules, lang=lang, currency=services.settings.currency, now=engine.now()))
    except Exception:  # noqa: BLE001 - the Home tab says so rather than stay blank
        log.exception("home tab: KPIs unavailable")
        return home_view(headline=[], lang=lang, currency=services.settings.currency,
                         sections=[error_message("", lang=lang, ref="home")], lead=lead)
    return home_view(headline=headline, lang=lang, currency=services.settings.currency, sections=sections, lead=lead)


__all__ = ["build_home", "goal_items"]
