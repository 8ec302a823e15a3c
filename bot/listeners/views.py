"""Form submissions: the goal and alert-rule modals.

Slack wants the acknowledgement of a ``view_submission`` within 3 seconds, and shows an error when it
comes late even though the work goes on (a second Submit then made a second goal). So the
acknowledgement does only what is cheap and pure: the form's text is parsed against the catalog (field
formats, dates, units: no database, no Web API call); a problem there goes back on its field
(``response_action: errors``). Otherwise the form is acknowledged at once and turned into a "working
on it" view (``response_action: update``). The lazy part then does what needs the database or Slack:
who may change goals, the filter values in the data, the SMART check against the source, and the
creation; it shows the saved goal in the modal (``views.update`` on the view id), or the form again,
filled in as sent, with the problem on top. Creation is idempotent: a submission claims its view id
(and what it carries) first (``kpi.state.submissions``), so a retried or doubled submission creates
one goal.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace

from slack_sdk.errors import SlackApiError

from kpi.alerts.rules import parse_rule
from kpi.errors import KpiError, new_ref
from kpi.goals import parse_goal, smart_check
from kpi.i18n import N_, tr
from kpi.state.store import Goals
from kpi.state.submissions import Submissions

from ..answer import Asked
from ..blocks import Message, error_message
from ..modals import alert_text, form_again, goal_text, result_view, working_view
from .deps import Deps

log = logging.getLogger("kpibot.listeners")
GOAL_FIELDS = ("metric", "target", "filters", "baseline", "start", "deadline", "owner", "channel", "watch")
RULE_FIELDS = ("window", "clear_threshold", "min_sample", "significant", "channel", "condition", "metric")
BUSY = N_("It could not be saved right now ({error}). Submit the form again in a moment.")


def _meta(view) -> dict:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _lang(view) -> str:
    return _meta(view).get("lang", "en")


def _field_errors(exc: KpiError, lang: str, fields, default_field: str) -> dict:
    field = getattr(exc, "field", "metric")
    return {field if field in fields else default_field: exc.localized(lang)[:150]}


# -- the acknowledgements: pure checks only ----------------------------------------------------------------


def parse_goal_form(deps: Deps, view, team: str, values=None):
    """The submitted goal parsed as ``/kpi goal add`` would, in the team's shop's time zone; with ``values``
    (the data's, a query) the filter values are checked too. Without them: the catalog and the clock only."""
    return parse_goal(goal_text(view["state"]["values"]), deps.services.catalog(), today=deps.manage.today(team),
                      tz=deps.services.for_team(team).settings.tz, values=values)


def parse_alert_form(deps: Deps, view, team: str, values=None):
    return parse_rule(alert_text(view["state"]["values"]), deps.services.catalog(),
                      tz_name=deps.services.for_team(team).settings.timezone, values=values)


def goal_submitted_ack(ack, body, view, deps: Deps) -> None:
    team = _who(body, view).team_id
    acknowledge(ack, view, check=lambda: parse_goal_form(deps, view, team), fields=GOAL_FIELDS, default_field="target",
                kind="goal")


def alert_submitted_ack(ack, body, view, deps: Deps) -> None:
    team = _who(body, view).team_id
    acknowledge(ack, view, check=lambda: parse_alert_form(deps, view, team), fields=RULE_FIELDS,
                default_field="threshold", kind="alert")


def acknowledge(ack, view, *, check, fields, default_field: str, kind: str) -> None:
    """A format problem on its field; else the acknowledgement at once, the form turned "working on it"."""
    lang = _lang(view)
    try:
        check()
    except KpiError as exc:
        ack(response_action="errors", errors=_field_errors(exc, lang, fields, default_field))
        return
    ack(response_action="update", view=working_view(view, lang=lang, kind=kind))


# -- the lazy parts: permissions, database checks, creation (once per submission) -------------------------


def _who(body, view) -> Asked:
    return Asked(team_id=(body.get("team") or {}).get("id", ""), user_id=body["user"]["id"], channel_id="",
                 lang=_lang(view))


def submission_key(view) -> str:
    """The view id and a digest of what was submitted: a retry or a second click is the same key; the
    form sent back after a refusal and corrected is a new one, and so is the form sent back after the
    database failed (it carries a new ``attempt``: its claim may not have been released)."""
    digest = hashlib.sha256(json.dumps(view.get("state", {}).get("values", {}), sort_keys=True).encode()).hexdigest()
    attempt = _meta(view).get("attempt")
    return f"{view.get('id', '')}:{digest[:16]}" + (f":{attempt}" if attempt else "")


def goal_submitted(body, view, client, deps: Deps) -> None:
    create_once(body, view, client, deps, _who(body, view), "goal", create_goal)


def alert_submitted(body, view, client, deps: Deps) -> None:
    create_once(body, view, client, deps, _who(body, view), "alert", create_alert)


def create_goal(view, client, deps: Deps, who: Asked):
    """(goal id, its SMART restatement), or (None, why not): the checks that need Slack or the data."""
    from ..render.goals import smart_message

    if not deps.manage.access.may_change(client, who.user_id):
        return None, tr(who.lang, "Only workspace admins may change goals.")
    services = deps.services.for_team(who.team_id)  # the team's shop (config/teams.yaml)
    engine = services.kpi_engine()
    spec = parse_goal_form(deps, view, who.team_id, values=services.dimension_values())
    currency = services.settings.currency
    check = smart_check(engine, spec, today=deps.manage.today(who.team_id), lang=who.lang, currency=currency)
    goal = Goals(deps.services.state(), who.team_id).add(spec, created_by=who.user_id)
    return goal.id, smart_message(goal, engine.catalog.metrics[goal.metric], check, lang=who.lang)


def create_alert(view, client, deps: Deps, who: Asked):
    from kpi.alerts.store import AlertRules, StateStore

    from ..render.alerts import rules_list_message

    if not deps.manage.access.may_change(client, who.user_id):
        return None, tr(who.lang, "Only workspace admins may change alert rules.")
    spec = parse_alert_form(deps, view, who.team_id, values=deps.services.for_team(who.team_id).dimension_values())
    if not spec.channel:  # the form asks for one; a rule without is posted to its author
        spec = replace(spec, channel=who.user_id)
    state = deps.services.state()
    rule = AlertRules(state, who.team_id).add(spec, created_by=who.user_id)
    metric = deps.services.catalog().metrics[rule.spec.metric]
    return rule.id, rules_list_message([(rule.id, rule.spec, metric, StateStore(state, who.team_id).load(rule.id).state)],
                                       lang=who.lang)


def create_once(body, view, client, deps: Deps, who: Asked, kind: str, create) -> None:
    """Claim the submission, ``create(view, client, deps, who)`` (-> (id, Message) or (None, refusal)), record or release the
    claim, and tell the submitter in the modal (or, when the modal is gone, in a DM). When the database fails
    (down, locked), nothing is created and the form comes back, filled in, saying so with a reference that
    the log carries with the details."""
    claims, key = Submissions(deps.services.state(), who.team_id), submission_key(view)
    try:
        deps.manage.seed(who.team_id)
        claimed = claims.claim(key, kind)
    except Exception:  # noqa: BLE001 - no claim, nothing created: the form again, to submit later
        not_saved(client, who, view, kind, "claim")
        return
    if not claimed:
        log.info("%s form %s submitted again: already being saved", kind, view.get("id"))
        return
    try:
        object_id, outcome = create(view, client, deps, who)
    except KpiError as exc:
        object_id, outcome = None, exc.localized(who.lang)
    except Exception:  # noqa: BLE001 - the database is down or locked: say so, let them resubmit
        object_id, outcome = None, None
    if object_id is None:
        try:
            claims.release(key)
        except Exception:  # noqa: BLE001 - the same form sent unchanged is then taken for a duplicate
            log.warning("%s form %s: its claim could not be released (the database failed again)", kind, view.get("id"))
        if outcome is None:
            not_saved(client, who, view, kind, "create")
            return
        show(client, who, view, form_again(view, view["state"]["values"], outcome),
             error_message(outcome, lang=who.lang))
        return
    try:
        claims.done(key, object_id)
    except Exception:  # noqa: BLE001 - it is saved: said so; only a resubmission's deduplication is weaker
        log.warning("%s form %s: #%s saved, its claim not marked done", kind, view.get("id"), object_id)
    show(client, who, view, result_view(outcome, lang=who.lang, kind=kind), outcome)


def not_saved(client, who: Asked, view, kind: str, step: str) -> None:
    """The form back, filled in as sent, with "not saved (ref …), submit again"; the details in the log."""
    ref = new_ref()
    log.exception("%s form %s not saved at %s [ref %s] team=%s", kind, view.get("id"), step, ref, who.team_id)
    reference = "ref " + ref  # in place of the error's name, which the log has
    outcome = tr(who.lang, BUSY, error=reference)
    again = form_again(view, view["state"]["values"], outcome)
    again["private_metadata"] = json.dumps({**_meta(again), "attempt": ref})  # sent again unchanged: a new claim
    show(client, who, view, again, error_message(outcome, lang=who.lang))


def show(client, who: Asked, view, new_view: dict, message: Message) -> None:
    """The modal updated in place; when Slack refuses (the user closed it), the same news in a DM."""
    try:
        client.views_update(view_id=view["id"], view=new_view)
        return
    except (SlackApiError, KeyError) as exc:
        log.info("views.update refused (%s): telling the submitter in a DM",
                 exc.response.get("error") if isinstance(exc, SlackApiError) else "no view id")
    try:
        client.chat_postMessage(channel=who.user_id, text=message.text, blocks=message.blocks)
    except SlackApiError as exc:
        log.warning("could not tell %s about the form: %s", who.user_id, exc.response.get("error"))


__all__ = ["alert_submitted", "alert_submitted_ack", "goal_submitted", "goal_submitted_ack",
           "submission_key"]
