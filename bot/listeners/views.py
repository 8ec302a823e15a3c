"""Form submissions: the goal and alert-rule modals.

The acknowledgement validates, so that a problem shows on its field while the form is still open;
the lazy part saves through the same code as the text commands (``/kpi goal add ...``)."""

from __future__ import annotations

import json

from kpi.alerts.rules import parse_rule
from kpi.errors import KpiError
from kpi.goals import parse_goal, smart_check
from kpi.i18n import N_, tr

from ..answer import Asked
from ..modals import alert_text, goal_text
from .deps import Deps

GOAL_FIELDS = ("metric", "target", "filters", "baseline", "start", "deadline", "owner", "channel", "watch")
RULE_FIELDS = ("window", "clear_threshold", "min_sample", "significant", "channel", "condition", "metric")


def _lang(view) -> str:
    return json.loads(view.get("private_metadata") or "{}").get("lang", "en")


def check_goal(deps: Deps, view) -> None:
    """Parse and check a submitted goal as `/kpi goal add` would (unknown KPI, deadline in the past, target
    equal to the baseline, a relative target without history...); raises GoalError."""
    engine = deps.services.kpi_engine()
    today = deps.manage.today()
    spec = parse_goal(goal_text(view["state"]["values"]), engine.catalog, today=today, tz=deps.services.settings.tz,
                      values=deps.services.dimension_values())
    smart_check(engine, spec, today=today)


def goal_submitted_ack(ack, body, view, client, deps: Deps) -> None:
    refuse_or_ack(ack, body, view, client, deps, refusal=N_("Only workspace admins may change goals."),
                  check=lambda: check_goal(deps, view), fields=GOAL_FIELDS, default_field="target")


def goal_submitted(body, view, client, deps: Deps) -> None:
    try:
        check_goal(deps, view)
    except KpiError:
        return  # the acknowledgement showed the problem on its field; nothing to do
    save(deps, body, view, client, "goal add " + goal_text(view["state"]["values"]))


def _check_rule(deps: Deps, view):
    return parse_rule(alert_text(view["state"]["values"]), deps.services.catalog(),
                      tz_name=deps.services.settings.timezone, values=deps.services.dimension_values())


def alert_submitted_ack(ack, body, view, client, deps: Deps) -> None:
    refuse_or_ack(ack, body, view, client, deps, refusal=N_("Only workspace admins may change alert rules."),
                  check=lambda: _check_rule(deps, view), fields=RULE_FIELDS, default_field="threshold")


def refuse_or_ack(ack, body, view, client, deps: Deps, *, refusal: str, check, fields, default_field: str) -> None:
    """Acknowledge a form, or show on its field why it cannot be saved: not allowed, or ``check`` raised a
    domain error (a ``GoalError``/``RuleError`` names its field; any other, the KPI)."""
    lang = _lang(view)
    if not deps.manage.access.may_change(client, body["user"]["id"]):
        ack(response_action="errors", errors={"metric": tr(lang, refusal)})
        return
    try:
        check()
    except KpiError as exc:
        field = getattr(exc, "field", "metric")
        ack(response_action="errors", errors={field if field in fields else default_field: exc.localized(lang)[:150]})
        return
    ack()


def alert_submitted(body, view, client, deps: Deps) -> None:
    try:
        _check_rule(deps, view)
    except KpiError:
        return  # shown on its field by the acknowledgement
    save(deps, body, view, client, "alert add " + alert_text(view["state"]["values"]))


def save(deps: Deps, body, view, client, text: str) -> None:
    """Save as the text command does, and tell the submitter in a DM."""
    who = Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id="",
                lang=_lang(view))
    message = deps.manage.run(text, who, client)
    if message is not None:
        client.chat_postMessage(channel=who.user_id, text=message.text, blocks=message.blocks)


__all__ = ["alert_submitted", "alert_submitted_ack", "goal_submitted", "goal_submitted_ack"]
