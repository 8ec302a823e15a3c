"""The App Home tab's content: the headline KPIs over the last 7 days against the 7 before, with their
trend; then the team's goals with their progress, and its alert rules with their state; for admins only
(``admin``: workspace admins and owners, and the users of ``KPIBOT_ADMINS`` / config/access.yaml, as
``bot.manage.Access.may_change`` says), the files refused lately by imports into the team's shop."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from kpi.alerts.store import AlertRules, StateStore
from kpi.digests.compose import CachingEngine, spec_of
from kpi.errors import KpiError
from kpi.goals import goal_progress
from kpi.i18n import N_, tr
from kpi.metrics.engine import KpiRequest
from kpi.metrics.periods import default_period
from kpi.seed import onboarding
from kpi.services import Services
from kpi.state.store import Goals
from kpi.state.tables import refused_imports

from .blocks import Message, error_message, home_view
from .render.alerts import rules_list_message
from .render.common import context, esc, header, section
from .render.goals import goal_list_message
from .render.home import onboarding_card
from .render.text import timestamp

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


IMPORTS_TITLE = N_("Imports: files refused")
IMPORTS_HINT = N_("Nothing of a refused file was loaded. Fix it and import it again (`kpibot import FILE`), or drop "
                  "it in the inbox again: the inbox keeps each refused file in refused/ with its reasons.")
REFUSED_SHOWN, REFUSED_DAYS, REASON_LINES = 5, 7, 3


def refused_section(services: Services, lang: str) -> Message | None:
    """The files refused in the last ``REFUSED_DAYS`` days by imports into this shop (the last
    ``REFUSED_SHOWN``), each with its first reasons; None when there are none. For admins only."""
    now = (services.clock or (lambda: datetime.now(UTC)))().astimezone(UTC)
    since = now.replace(tzinfo=None) - timedelta(days=REFUSED_DAYS)
    from kpi.data.batch import source_key  # not at the top: it brings in pandas (the importer), ~60 MB

    runs = refused_imports(services.state(), source_key(services.settings.source_url), limit=REFUSED_SHOWN,
                           since=since)
    if not runs:
        return None
    blocks, plain = [header(tr(lang, IMPORTS_TITLE))], []
    for run in runs:
        lines = (run.message or "").splitlines()
        head = lines[0] if lines else ""
        head = head[len(run.file_name) + 2:] if head.startswith(run.file_name + ": ") else head
        when = timestamp(lang, (run.finished_at or run.started_at).replace(tzinfo=UTC).astimezone(services.settings.tz))
        reasons = [esc(head)] + [esc(x.strip()) for x in lines[1:1 + REASON_LINES]]
        if len(lines) > 1 + REASON_LINES:
            reasons.append("…")
        name = _shown_name(run.file_name)
        blocks.append(section(f"*{esc(name)}* · {esc(when.strip())}\n" + "\n".join(f"> {r}" for r in reasons)))
        plain.append(f"{name}: {head}")
    blocks.append(context(tr(lang, IMPORTS_HINT)))
    return Message(text="\n".join([tr(lang, IMPORTS_TITLE), *plain])[:3000], blocks=blocks)


def _shown_name(name: str) -> str:
    """An inbox file as the inbox names it ("orders/2026-11-28.csv"); a path given to the command line by its
    file name only: Slack is never shown where the machine keeps its files."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.name if path.is_absolute() or ".." in path.parts or ":" in name else name


def build_home(services: Services, lang: str, team_id: str = "", *, notice: str = "", goals_offset: int = 0,
               admin: bool = False) -> dict:
    """The Home tab; for a team not set up yet, the onboarding card first (``notice``: a line under it).
    ``goals_offset``: the page of goals shown (the pager's buttons republish the Home with another).
    ``admin``: the viewer may change the team's setup; the refused imports are shown to admins only."""
    services = services.for_team(team_id)
    lead = None
    if team_id:
        try:
            setup = onboarding(services.state(), team_id)
            lead = onboarding_card(needs_digest=setup.needs_digest, needs_alerts=setup.needs_alerts,
                                   digest_channel=setup.digest_channel, lang=lang, notice=notice)
        except Exception:  # noqa: BLE001 - the rest of the Home still shows
            log.exception("home tab: onboarding state unavailable")
    imports = []  # shown even when the KPIs are not (a shop whose every file was refused has no data)
    if admin:
        try:
            imports = [m for m in [refused_section(services, lang)] if m is not None]
        except Exception:  # noqa: BLE001 - a state database without the import log: the rest shows
            log.exception("home tab: refused imports unavailable")
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
                         sections=[error_message("", lang=lang, ref="home"), *imports], lead=lead)
    return home_view(headline=headline, lang=lang, currency=services.settings.currency, sections=sections + imports,
                     lead=lead)


__all__ = ["build_home", "goal_items", "refused_section"]
