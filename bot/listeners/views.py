"""Form submissions: the goal and alert-rule modals.

The acknowledgement validates, so that a problem shows on its field while the form is still open;
the lazy part saves through the same code as the text commands (``/kpi goal add ...``)."""

from __future__ import annotations

import json

from kpi.alerts.rules import RuleError, parse_rule
from kpi.errors import KpiError
from kpi.goals import GoalError, parse_goal, smart_check
from kpi.i18n import tr

from ..answer import Asked
from ..modals import alert_text, goal_text
from .deps import Deps

GOAL_FIELDS = ("metric", "target", "filters", "baseline", "start", "deadline", "owner", "channel", "watch")
RULE_FIELDS = ("window", "clear_threshold", "min_sample", "channel", "condition", "metric")


def _lang(view) -> str:
    return json.loads(view.get("private_metadata") or "{}").get("lang", "en")


def check_goal(deps: Deps, view) -> None:
    """Parse and check a submitted goal as `/kpi goal add` would (unknown KPI, deadline in the past, target
    equal to the baseline, a relative target without history...); raises GoalError."""
    engine = deps.services.kpi_engine()
    today = deps.manage.today()
    spec = parse_goal(goal_text(view["state"]["values"]), engine.catalog, today=today, tz=deps.services.settings.tz)
    smart_check(engine, spec, today=today)


def goal_submitted_ack(ack, body, view, client, deps: Deps) -> None:
    if not deps.manage.access.may_change(client, body["user"]["id"]):
        ack(response_action="errors", errors={"metric": tr(_lang(view), "Only workspace admins may change goals.")})
        return
    try:
        check_goal(deps, view)
    except GoalError as exc:
        field = exc.field if exc.field in GOAL_FIELDS else "target"
        ack(response_action="errors", errors={field: exc.localized(_lang(view))[:150]})
        return
    except KpiError as exc:
        ack(response_action="errors", errors={"metric": exc.localized(_lang(view))[:150]})
        return
    ack()


def goal_submitted(body, view, client, deps: Deps) -> None:
    try:
        check_goal(deps, view)
    except KpiError:
        return  # the acknowledgement showed the problem on its field; nothing to do
    save(deps, body, view, client, "goal add " + goal_text(view["state"]["values"]))


def _check_rule(deps: Deps, view):
    return parse_rule(alert_text(view["state"]["values"]), deps.services.catalog(),
                      tz_name=deps.services.settings.timezone)


def alert_submitted_ack(ack, body, view, client, deps: Deps) -> None:
    if not deps.manage.access.may_change(client, body["user"]["id"]):
        ack(response_action="errors", errors={"metric": tr(_lang(view), "Only workspace admins may change alert rules.")})
        return
    try:
        _check_rule(deps, view)
    except RuleError as exc:
        field = exc.field if exc.field in RULE_FIELDS else "threshold"
        ack(response_action="errors", errors={field: exc.localized(_lang(view))[:150]})
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
