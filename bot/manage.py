"""``/kpi goal ...``, ``/kpi digest ...`` and ``/kpi alert ...``: parse, check who may change what, call
``kpi``, render. The ``/kpi`` listener (``bot.listeners.commands``) hands these texts to ``Manage.run``.

Everybody may read goals and schedules; creating, changing or removing them is for workspace admins
and owners, and the users listed in ``KPIBOT_ADMINS`` or ``config/access.yaml``. Every call is scoped to
the team the request came from: an id from another workspace is simply not found.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import yaml
from babel.dates import format_datetime
from slack_sdk.errors import SlackApiError

from kpi.digests.compose import CachingEngine, spec_of
from kpi.errors import KpiError, new_ref
from kpi.goals import GoalError, goal_progress, parse_goal, smart_check
from kpi.i18n import N_, babel_locale, tr
from kpi.refs import take_channels
from kpi.seed import ensure_seeded
from kpi.services import Services
from kpi.state.store import CONTENTS, Goals, NotFound, Schedules, checked_id, parse_days

from .answer import Asked
from .blocks import Message, error_message
from .config import SlackSettings
from .render.goals import goal_detail_message, goal_list_message, smart_message

log = logging.getLogger("kpibot.manage")
# the words people type, in each language's own words (they are read, not translated)
GOAL_WORDS = ("goal", "goals", "objectif", "objectifs", "ziel", "ziele")
ALERT_WORDS = ("alert", "alerts", "alerte", "alertes", "alarm", "alarme")
DIGEST_WORDS = ("digest", "digests", "resume", "résumé", "bericht", "zusammenfassung")
LIST = ("", "list", "liste")
SHOW = ("show", "voir", "anzeigen")
ADD = ("add", "ajouter", "hinzufügen")
ARCHIVE = ("archive", "archiver", "archivieren")
REMOVE = ("remove", "supprimer", "delete", "entfernen", "löschen")
PREVIEW = ("preview", "apercu", "aperçu", "vorschau")
TEST = ("test", "backtest")
# TRANSLATORS: a Babel date pattern (https://babel.pocoo.org/en/latest/dates.html#date-fields), in UTC
MUTED_UNTIL = N_("yyyy-MM-dd HH:mm 'UTC'")
# what was not done when a command fails on something other than the user's input (the state database down
# or locked, a bug); said after "Sorry, something went wrong (ref …)."; each change is one transaction, so
# nothing is half-saved
NOT_READ = N_("Nothing could be read right now, and nothing was changed. Try again in a moment.")
NOT_CHANGED = N_("Nothing was saved or changed. Try again in a moment.")
GOAL_NOT_SAVED = N_("Your goal was not saved. Try again in a moment.")
CHANGES = ADD + ARCHIVE + REMOVE + ("mute", "unmute")


def failure_message(lang: str, not_done: str, ref: str) -> Message:
    """"Sorry, something went wrong (ref …)." and what was not done (a msgid)."""
    return error_message(tr(lang, not_done), lang=lang, ref=ref)


def not_done(text: str) -> str:
    """What a failed ``/kpi goal|digest|alert …`` did not do: a goal added says "not saved", any other
    change "nothing saved or changed", a listing or a preview "nothing could be read"."""
    words = text.strip().lower().split()
    first, action = (words + ["", ""])[:2]
    if action not in CHANGES:
        return NOT_READ
    return GOAL_NOT_SAVED if first in GOAL_WORDS and action in ADD else NOT_CHANGED


def plain(text: str) -> Message:
    return Message(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}])


# who may press an alert message's buttons (config/access.yaml ``alert_buttons``): ``anyone`` in the workspace, or
# ``admins`` (workspace admins and owners, KPIBOT_ADMINS, access.yaml ``admins``). Snoozing is muting for a
# while, and ``/kpi alert mute`` is for admins: so is Snooze, unless configured otherwise
BUTTON_RULES = ("anyone", "admins")
BUTTON_DEFAULTS = {"acknowledge": "anyone", "snooze": "admins", "explain": "anyone"}


class Access:
    """Who may change goals, rules and schedules, and press an alert's buttons."""

    def __init__(self, services: Services, slack: SlackSettings):
        self.listed = set(slack.admins)
        self.buttons = dict(BUTTON_DEFAULTS)
        path = Path(services.settings.config_dir) / "access.yaml"
        if path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            self.listed |= {str(u) for u in data.get("admins") or []}
            buttons = data.get("alert_buttons") or {}
            if not isinstance(buttons, dict):
                buttons = {"alert_buttons": buttons}
            for button, rule in buttons.items():
                if button not in ("acknowledge", "snooze") or str(rule) not in BUTTON_RULES:
                    raise KpiError("{path}: alert_buttons.{button} may be 'acknowledge' or 'snooze', set to 'anyone' or "
                                   "'admins', not '{value}'", path="config/access.yaml", button=button, value=rule)
                self.buttons[button] = str(rule)

    def may_change(self, client, user_id: str) -> bool:
        if user_id in self.listed:
            return True
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            log.warning("users.info %s failed: %s", user_id, exc.response.get("error"))
            return False
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

    def may_press(self, client, team_id: str, user_id: str, button: str) -> str:
        """"yes"; "elsewhere" when the user is not a member of ``team_id`` as that workspace's Slack says
        (``users.info`` with its token: a user of another workspace is not found there); or "admins only"."""
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            log.warning("users.info %s in %s failed: %s", user_id, team_id, exc.response.get("error"))
            return "elsewhere"
        teams = {user.get("team_id")} | set((user.get("enterprise_user") or {}).get("teams") or ())
        if user.get("deleted") or team_id not in teams:
            return "elsewhere"
        if self.buttons.get(button, "admins") == "anyone" or user_id in self.listed:
            return "yes"
        return "yes" if user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner") else "admins only"


class Manage:
    def __init__(self, services: Services, slack: SlackSettings):
        self.services = services
        self.access = Access(services, slack)

    def today(self, team_id: str | None = None):
        """The shop's local date (the team's shop, config/teams.yaml), by the engine's clock (injected in tests)."""
        services = self.services.for_team(team_id)
        clock = services.clock or (lambda: datetime.now(UTC))
        return clock().astimezone(services.settings.tz).date()

    def seed(self, team_id: str) -> None:
        services = self.services.for_team(team_id)
        ensure_seeded(services.state(), team_id, config_dir=services.settings.config_dir,
                      catalog=services.catalog(), shop_tz=services.settings.timezone, today=self.today(team_id))

    def handles(self, text: str) -> bool:
        first = text.strip().split(" ", 1)[0].lower()
        return first in GOAL_WORDS + DIGEST_WORDS + ALERT_WORDS

    def run(self, text: str, who: Asked, client) -> Message | None:
        """The reply to ``/kpi goal ...`` or ``/kpi digest ...``; None when a modal was opened instead. A
        failure that is not the user's (the state database down or locked) is said with what was not done
        and a reference the log carries with the details."""
        first, _, rest = text.strip().partition(" ")  # (Slack's markup was read at the entry: bot.markup)
        try:
            self.seed(who.team_id)
            if first.lower() in GOAL_WORDS:
                return self.goal(rest.strip(), who, client)
            if first.lower() in ALERT_WORDS:
                return self.alert(rest.strip(), who, client)
            return self.digest(rest.strip(), who, client)
        except (NotFound, GoalError, KpiError) as exc:
            return error_message(exc.localized(who.lang), lang=who.lang)
        except Exception:  # noqa: BLE001 - the user is told what was not done; the log has the details
            ref = new_ref()
            log.exception("/kpi %s failed [ref %s] team=%s user=%s", text.strip()[:60], ref, who.team_id, who.user_id)
            return failure_message(who.lang, not_done(text), ref)

    # -- goals ---------------------------------------------------------------------------------------
    def goal(self, rest: str, who: Asked, client) -> Message | None:
        action, _, args = rest.partition(" ")
        services = self.services.for_team(who.team_id)  # the team's shop (config/teams.yaml)
        action = action.lower()
        store = Goals(services.state(), who.team_id)
        engine = services.kpi_engine()
        currency = services.settings.currency
        if action in LIST:
            cached = CachingEngine(engine)  # goals on the same KPI share its questions, as in the digest
            items = [(g, engine.catalog.metrics[g.metric], goal_progress(cached, spec_of(g), today=self.today(who.team_id)))
                     for g in store.list()]
            return goal_list_message(items, lang=who.lang, currency=currency)
        if action in SHOW:
            goal = store.get(_ident(args))
            progress = goal_progress(engine, spec_of(goal), today=self.today(who.team_id))
            return goal_detail_message(goal, engine.catalog.metrics[goal.metric], progress, lang=who.lang, currency=currency)
        if action in ADD + ARCHIVE:
            if not self.access.may_change(client, who.user_id):
                return error_message(tr(who.lang, "Only workspace admins and the people listed in the bot's "
                                                  "configuration may change goals. Anyone may read them: /kpi goal list"),
                                     lang=who.lang)
            if action in ARCHIVE:
                goal = store.archive(_ident(args))
                return plain(tr(who.lang, "Goal #{id} archived.", id=goal.id))
            if not args.strip():
                return None  # the listener opens the modal
            spec = parse_goal(args, engine.catalog, today=self.today(who.team_id), tz=services.settings.tz,
                              values=services.dimension_values())
            check = smart_check(engine, spec, today=self.today(who.team_id), lang=who.lang, currency=currency)
            goal = store.add(spec, created_by=who.user_id)
            return smart_message(goal, engine.catalog.metrics[goal.metric], check, lang=who.lang)
        return error_message(tr(who.lang, "Unknown goal command '{action}'. Try: /kpi goal add|list|show|archive",
                                action=action), lang=who.lang)

    # -- digests -------------------------------------------------------------------------------------
    def digest(self, rest: str, who: Asked, client) -> Message | None:
        action, _, args = rest.partition(" ")
        services = self.services.for_team(who.team_id)  # the team's shop (config/teams.yaml)
        action = action.lower()
        store = Schedules(services.state(), who.team_id)
        if action in LIST:
            lines = []
            for s in store.list():
                where = f"<#{s.channel}>" if re.fullmatch(r"[CG][A-Z0-9]+", s.channel) else s.channel
                line = f"*#{s.id}* {where} {s.local_time} {s.timezone} · {','.join(s.days)} · {','.join(s.content)}"
                if s.last_error:
                    line += f"\n:warning: {s.last_error}"
                lines.append(line)
            return plain("\n".join(lines) or tr(who.lang, "No digest yet: /kpi digest add #channel 08:00 mon-fri"))
        if action in PREVIEW:
            from kpi.digests.compose import compose_digest

            from .render.digest import digest_message

            content = store.get(_ident(args)).content if args.strip() else CONTENTS
            digest = compose_digest(services.kpi_engine(), Goals(services.state(), who.team_id).list(),
                                    team_id=who.team_id, today=self.today(who.team_id), content=content)
            return digest_message(digest, lang=who.lang, currency=services.settings.currency)
        if action in ADD + REMOVE:
            if not self.access.may_change(client, who.user_id):
                return error_message(tr(who.lang, "Only workspace admins and the people listed in the bot's "
                                                  "configuration may change digests."), lang=who.lang)
            if action in REMOVE:
                s = store.remove(_ident(args))
                return plain(tr(who.lang, "Digest #{id} removed.", id=s.id))
            channel, local_time, days, tz = _digest_args(args, who, services.settings.timezone)
            s = store.add(channel, local_time=local_time, timezone=tz, days=days, created_by=who.user_id)
            return plain(tr(who.lang, "Digest #{id}: {channel} at {time} ({timezone}), {days}.", id=s.id,
                            channel=s.channel, time=s.local_time, timezone=s.timezone, days=",".join(s.days)))
        return error_message(tr(who.lang, "Unknown digest command '{action}'. Try: /kpi digest add|list|remove|preview",
                                action=action), lang=who.lang)


    # -- alerts --------------------------------------------------------------------------------------
    def alert(self, rest: str, who: Asked, client) -> Message | None:
        from kpi.alerts.rules import parse_rule
        from kpi.alerts.store import AlertRules, StateStore

        from .render.alerts import backtest_message, rules_list_message

        action, _, args = rest.partition(" ")
        services = self.services.for_team(who.team_id)  # the team's shop (config/teams.yaml)
        action = action.lower()
        rules = AlertRules(services.state(), who.team_id)
        states = StateStore(services.state(), who.team_id)
        catalog = services.catalog()
        currency = services.settings.currency
        if action in LIST:
            items = [(r.id, r.spec, catalog.metrics[r.spec.metric], states.load(r.id).state) for r in rules.list()]
            return rules_list_message(items, lang=who.lang, currency=currency, now=datetime.now(UTC))
        if action in SHOW:
            r = rules.get(_ident(args))
            return rules_list_message([(r.id, r.spec, catalog.metrics[r.spec.metric], states.load(r.id).state)],
                                      lang=who.lang, currency=currency, now=datetime.now(UTC))
        if action in TEST:
            r = rules.get(_ident(args))
            bt = run_backtest(services, r.spec)
            return backtest_message(r.id, r.spec, catalog.metrics[r.spec.metric], bt.fires, bt.resolves, bt.evaluations,
                                    lang=who.lang, currency=currency)
        if action not in ADD + REMOVE + ("mute", "unmute"):
            return error_message(tr(who.lang, "Unknown alert command '{action}'. Try: /kpi alert "
                                              "add|list|show|mute|unmute|remove|test", action=action), lang=who.lang)
        if not self.access.may_change(client, who.user_id):
            return error_message(tr(who.lang, "Only workspace admins and the people listed in the bot's "
                                              "configuration may change alert rules."), lang=who.lang)
        if action in REMOVE:
            r = rules.remove(_ident(args))
            return plain(tr(who.lang, "Alert rule #{id} removed.", id=r.id))
        if action in ("mute", "unmute"):
            rule_id = _ident(args.split(" ")[0])
            until = None
            if action == "mute":
                until = datetime.now(UTC) + parse_duration(args.split(" ", 1)[1] if " " in args else "24h")
            set_mute(services, who.team_id, rule_id, until)
            if until is None:
                return plain(tr(who.lang, "Alert rule #{id} unmuted.", id=rule_id))
            when = format_datetime(until, tr(who.lang, MUTED_UNTIL), locale=babel_locale(who.lang))
            return plain(tr(who.lang, "Alert rule #{id} muted until {time}.", id=rule_id, time=when))
        if not args.strip():
            return None  # the form
        spec = parse_rule(args, catalog, tz_name=services.settings.timezone,
                          values=services.dimension_values())
        if not spec.channel:
            from dataclasses import replace

            spec = replace(spec, channel=who.channel_id)
        r = rules.add(spec, created_by=who.user_id)
        return rules_list_message([(r.id, r.spec, catalog.metrics[r.spec.metric], states.load(r.id).state)],
                                  lang=who.lang, currency=currency)


def parse_duration(text: str):
    """'1h', '30m', '2d', '90 min', '1 jour', '2 Tage', '4 Std' -> timedelta."""
    from datetime import timedelta

    m = re.fullmatch(r"\s*(\d+)\s*(m|min|mins|minutes?|minuten|h|hours?|heures?|std|stunden?|d|days?|j|jours?|t|tage?)\s*",
                     text.lower())
    if not m:
        raise KpiError("'{text}' is not a duration (use 30m, 4h or 2d)", text=text)
    n, unit = int(m.group(1)), m.group(2)[0]
    return timedelta(minutes=n) if unit == "m" else timedelta(hours=n) if unit in "hs" else timedelta(days=n)


def set_mute(services: Services, team_id: str, rule_id: int, until) -> None:
    from kpi.alerts.machine import mute
    from kpi.alerts.store import StateStore

    store = StateStore(services.state(), team_id)
    for _ in range(3):  # guarded update: retried if a worker changed the state meanwhile
        stored = store.load(rule_id)
        if store.save(stored, mute(stored.state, until), now=datetime.now(UTC), reason="muted" if until else "unmuted"):
            return
    raise KpiError("the rule is being evaluated right now: try again")


def run_backtest(services: Services, spec, days: int = 90):
    """The rule replayed on the last ``days`` days of history, one evaluation per day."""
    from datetime import timedelta

    from kpi.alerts.backtest import backtest
    from kpi.alerts.evaluation import Asker, observe

    engine = services.kpi_engine()
    asker = Asker(engine)
    now = engine.now()
    start = now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days)
    observations = [observe(asker, spec, start + timedelta(days=i))[0] for i in range(days + 1)]
    return backtest(spec, observations)


def _ident(args: str) -> int:
    m = re.search(r"-?\d+", args)
    if not m:
        raise KpiError("Which one? Give its number, e.g. /kpi goal show 3")
    return checked_id(m.group(), "item")


def _digest_args(args: str, who: Asked, shop_tz: str) -> tuple[str, str, tuple[str, ...], str]:
    """'#growth 08:30 mon-fri Europe/Paris' (a channel id '#C123' once Slack's markup is read); defaults: here, 08:00."""
    channel = who.channel_id
    found, _ = take_channels(args)
    if found:
        cid, name = found[0]
        channel = cid or "#" + str(name)
    tm = re.search(r"\b(\d{1,2}(?::\d{2}|h\d{0,2})?\s*(?:am|pm)?)(?=\s|$)", args)
    local_time = tm.group(1) if tm else "08:00"
    dm = re.search(r"\b(weekdays|daily|every day|(?:mon|tue|wed|thu|fri|sat|sun|lun|mar|mer|jeu|ven|sam|dim)"
                   r"[a-z]*(?:[-,](?:mon|tue|wed|thu|fri|sat|sun|lun|mar|mer|jeu|ven|sam|dim)[a-z]*)*)\b", args.lower())
    days = parse_days(dm.group(1)) if dm else parse_days("mon-fri")
    zm = re.search(r"\b([A-Z][A-Za-z_]+/[A-Za-z_]+(?:/[A-Za-z_]+)?|UTC)\b", args)
    return channel, local_time, days, zm.group(1) if zm else shop_tz
