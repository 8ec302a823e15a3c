"""``kpibot goals ...``, ``kpibot digest ...``, ``kpibot alerts ...``: the command-line twin of ``/kpi goal|digest|alert``
(``bot.manage``). Scripts and cron rely on these commands and options; their messages follow ``--lang``.
"""

from __future__ import annotations

import json

from kpi import cli as domain_cli
from kpi.errors import KpiError
from kpi.i18n import N_, babel_locale, lang_of, tr, trn
from kpi.services import Services

from .config import SlackSettings


# -- goals and digests: scripts and cron rely on these (issue contract) -----------------------------------
def team_of(ctx: Services, args) -> tuple[Services, str, object]:
    """(what the team reads: its shop's services, config/teams.yaml; the team id; its Web API clients)."""
    from kpi.seed import ensure_seeded

    from .teams import TeamClients

    slack = SlackSettings.from_env()
    clients = TeamClients(ctx, slack)
    team = clients.team(getattr(args, "team", None))
    ctx = ctx.for_team(team)
    ensure_seeded(ctx.state(), team, config_dir=ctx.settings.config_dir, catalog=ctx.catalog(),
                  shop_tz=ctx.settings.timezone, today=_today(ctx))
    return ctx, team, clients


def _today(ctx: Services):
    from datetime import UTC, datetime

    return datetime.now(UTC).astimezone(ctx.settings.tz).date()


def lang_for(ctx: Services, args) -> str:
    """The command line's language: --lang, else KPIBOT_LOCALE."""
    return getattr(args, "lang", None) or lang_of(ctx.settings.locale)


# what `kpibot digest send` says of each outcome
OUTCOMES = {"sent": N_("sent"), "already": N_("already sent today (use --force to send again)"),
            "failed": N_("failed: {detail}"), "retry": N_("not sent ({detail}); try again")}


def cmd_goals_add(ctx: Services, args) -> int:
    from kpi.goals import parse_goal, smart_check
    from kpi.state.store import Goals

    ctx, team, _ = team_of(ctx, args)
    engine = ctx.kpi_engine()
    spec = parse_goal(" ".join(args.text), engine.catalog, today=_today(ctx), tz=ctx.settings.tz,
                      values=ctx.dimension_values())
    lang = lang_for(ctx, args)
    check = smart_check(engine, spec, today=_today(ctx), lang=lang, currency=ctx.settings.currency)
    goal = Goals(ctx.state(), team).add(spec, created_by="cli")
    print(tr(lang, "goal #{id} added", id=goal.id))
    for line in (check.specific, check.measurable, check.achievable, check.time_bound):
        print(f"  {line}")
    for warning in check.warnings:
        print("  " + tr(lang, "warning: {warning}", warning=warning))
    return 0


def _goal_rows(ctx: Services, goals):
    from kpi.digests.compose import CachingEngine, spec_of
    from kpi.goals import goal_progress

    engine = ctx.kpi_engine()
    cached = CachingEngine(engine)  # goals on the same KPI share its questions, as in the digest
    for g in goals:
        yield g, engine.catalog.metrics[g.metric], goal_progress(cached, spec_of(g), today=_today(ctx))


def cmd_goals_list(ctx: Services, args) -> int:
    from kpi.state.store import Goals

    ctx, team, _ = team_of(ctx, args)
    lang = lang_for(ctx, args)
    rows = list(_goal_rows(ctx, Goals(ctx.state(), team).list(include_archived=args.all)))
    if args.json:
        print(json.dumps([{**domain_cli._jsonable(g), "progress": domain_cli._jsonable(p)} for g, _, p in rows],
                         indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(tr(lang, "no goals yet: kpibot goals add \"revenue +10% by 2026-12-31\""))
    from .render.goals import goal_plain

    for g, metric, p in rows:  # in the words of the digest, the goal card and the Home tab
        line = goal_plain(g, metric, p, lang=lang, currency=ctx.settings.currency, with_id=True)
        print(line + ("  " + tr(lang, "[archived]") if g.archived_at else ""))
    return 0


def cmd_goals_show(ctx: Services, args) -> int:
    from kpi.state.store import Goals

    from .render.goals import goal_detail_message
    from .terminal import render_message

    ctx, team, _ = team_of(ctx, args)
    [(goal, metric, progress)] = list(_goal_rows(ctx, [Goals(ctx.state(), team).get(args.id)]))
    lang = lang_for(ctx, args)
    message = goal_detail_message(goal, metric, progress, lang=lang, currency=ctx.settings.currency)
    print(render_message({"text": message.text, "blocks": message.blocks}, lang=lang))
    return 0


def cmd_goals_archive(ctx: Services, args) -> int:
    from kpi.state.store import Goals

    ctx, team, _ = team_of(ctx, args)
    goal = Goals(ctx.state(), team).archive(args.id)
    print(tr(lang_for(ctx, args), "goal #{id} archived ({goal})", id=goal.id, goal=goal.text or goal.metric))
    return 0


def cmd_digest_list(ctx: Services, args) -> int:
    from datetime import UTC, datetime

    from kpi.digests.schedule import next_due
    from kpi.state.store import Schedules

    ctx, team, _ = team_of(ctx, args)
    lang = lang_for(ctx, args)
    schedules = Schedules(ctx.state(), team).list()
    if not schedules:
        print(tr(lang, "no digest schedules: kpibot digest add '#channel' --time 08:00 --days mon-fri"))
    for s in schedules:
        nxt = next_due(s, datetime.now(UTC)).astimezone(s.tz)
        print(f"#{s.id:<4} {s.channel:<20} {s.local_time} {s.timezone} {','.join(s.days)}  "
              + tr(lang, "content: {content}  next: {next}", content=",".join(s.content),
                   next=format(nxt, "%a %Y-%m-%d %H:%M %Z")))
        if s.last_error:
            print("      " + tr(lang, "last error ({time} UTC): {error}", time=format(s.last_error_at, "%Y-%m-%d %H:%M"),
                                error=s.last_error))
    return 0


def cmd_digest_add(ctx: Services, args) -> int:
    from kpi.state.store import Schedules, parse_days

    ctx, team, _ = team_of(ctx, args)
    s = Schedules(ctx.state(), team).add(args.channel, local_time=args.time, timezone=args.timezone or ctx.settings.timezone,
                                         days=parse_days(args.days), content=tuple(args.content.split(",")),
                                         created_by="cli")
    print(tr(lang_for(ctx, args), "digest #{id}: {channel} at {time} {timezone}, {days}", id=s.id, channel=s.channel,
             time=s.local_time, timezone=s.timezone, days=",".join(s.days)))
    return 0


def cmd_digest_remove(ctx: Services, args) -> int:
    from kpi.state.store import Schedules

    ctx, team, _ = team_of(ctx, args)
    s = Schedules(ctx.state(), team).remove(args.id)
    print(tr(lang_for(ctx, args), "digest #{id} ({channel}) removed", id=s.id, channel=s.channel))
    return 0


def _schedules_for(ctx: Services, team: str, schedule_id: int | None):
    from kpi.state.store import Schedules

    store = Schedules(ctx.state(), team)
    return [store.get(schedule_id)] if schedule_id else store.list()


def cmd_digest_preview(ctx: Services, args) -> int:
    from kpi.digests.compose import compose_digest
    from kpi.state.store import Goals

    from .render.digest import digest_text

    ctx, team, _ = team_of(ctx, args)
    content = ("goals", "watch", "movers")
    if args.schedule:
        content = _schedules_for(ctx, team, args.schedule)[0].content
    digest = compose_digest(ctx.kpi_engine(), Goals(ctx.state(), team).list(), team_id=team, today=_today(ctx),
                            content=content)
    print(digest_text(digest, lang=lang_for(ctx, args), currency=ctx.settings.currency))
    return 0


def cmd_digest_send(ctx: Services, args) -> int:
    from babel.dates import format_date

    from .digests import DigestSender, today_for

    ctx, team, clients = team_of(ctx, args)
    lang = lang_for(ctx, args)
    sender = DigestSender(ctx, clients)
    failed = 0
    for s in _schedules_for(ctx, team, args.schedule):
        day = today_for(s, sender.clock())
        if not s.runs_on(day) and not args.force:
            print(f"#{s.id} {s.channel}: " + tr(lang, "no digest on {weekday}",
                                                weekday=format_date(day, "EEEE", locale=babel_locale(lang))))
            continue
        outcome = sender.send(s, day, force=args.force)
        said = tr(lang, OUTCOMES[outcome.status], detail=outcome.detail) if outcome.status in OUTCOMES else outcome.status
        print(f"#{s.id} {s.channel} {day}: {said}")
        failed += outcome.status in ("failed", "retry")
    return 1 if failed else 0


def _rules(ctx: Services, args):
    from kpi.alerts.store import AlertRules, StateStore

    ctx, team, clients = team_of(ctx, args)
    return ctx, team, clients, AlertRules(ctx.state(), team), StateStore(ctx.state(), team)


def cmd_alerts_list(ctx: Services, args) -> int:
    from .render.alerts import condition_words

    ctx, _, _, rules, states = _rules(ctx, args)
    lang = lang_for(ctx, args)
    catalog = ctx.catalog()
    rows = [(r, states.load(r.id).state) for r in rules.list()]
    if args.json:
        print(json.dumps([{"id": r.id, "rule": domain_cli._jsonable(r.spec), "state": domain_cli._jsonable(s)}
                          for r, s in rows], indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(tr(lang, 'no alert rules: kpibot alerts add "return rate above 8% over 7 days in #ops"'))
    for r, s in rows:
        metric = catalog.metrics[r.spec.metric]
        extra = "  " + tr(lang, "muted until {time}", time=format(s.muted_until, "%Y-%m-%d %H:%M")) if s.muted_until else ""
        print(f"#{r.id:<4} {s.state:<8} {metric.name(lang)} {condition_words(r.spec, metric, lang, ctx.settings.currency)}"
              f"  -> {r.spec.channel}{extra}")
    return 0


def cmd_alerts_add(ctx: Services, args) -> int:
    from kpi.alerts.rules import parse_rule

    ctx, _, _, rules, _ = _rules(ctx, args)
    spec = parse_rule(" ".join(args.text), ctx.catalog(), tz_name=ctx.settings.timezone,
                      values=ctx.dimension_values())
    if not spec.channel:
        raise KpiError("say where to post: add 'in #channel' to the rule")
    r = rules.add(spec, created_by="cli")
    print(tr(lang_for(ctx, args), "alert rule #{id} added: {rule}", id=r.id, rule=r.spec.text))
    return 0


def cmd_alerts_check(ctx: Services, args) -> int:
    from .alerts import AlertNotifier

    ctx, team, clients, rules, _ = _rules(ctx, args)
    sent = AlertNotifier(ctx, clients).check(force=True, rules=rules.list())
    for s in sent:
        print(f"#{s.rule_id} {s.key}: {s.status} {s.detail}".rstrip())
    if not sent:
        print(tr(lang_for(ctx, args), "evaluated every rule: nothing to notify"))
    return 1 if any(s.status in ("failed", "retry") for s in sent) else 0


def cmd_alerts_test(ctx: Services, args) -> int:
    from .manage import run_backtest

    ctx, _, _, rules, _ = _rules(ctx, args)
    r = rules.get(args.id)
    bt = run_backtest(ctx, r.spec, days=args.days)
    lang = lang_for(ctx, args)
    # TRANSLATORS: the English has one form, "time(s)", whatever the number of times
    said = trn(lang, "over the last {days} days it would have fired {n} time(s) ({evaluations} daily evaluations, "
               "{no_data} without enough data)", "over the last {days} days it would have fired {n} time(s) "
               "({evaluations} daily evaluations, {no_data} without enough data)", len(bt.fires), days=args.days,
               evaluations=bt.evaluations, no_data=bt.no_data)
    print(f"#{r.id} {r.spec.text}: {said}")
    for when in bt.fires:
        print("  " + tr(lang, "fired {day}", day=format(when, "%Y-%m-%d")))
    return 0


def cmd_alerts_mute(ctx: Services, args) -> int:
    from datetime import UTC, datetime

    from .manage import parse_duration, set_mute

    ctx, team, _, rules, _ = _rules(ctx, args)
    rules.get(args.id)
    until = None if args.unmute else datetime.now(UTC) + parse_duration(args.duration)
    set_mute(ctx, team, args.id, until)
    lang = lang_for(ctx, args)
    if until:
        print(f"#{args.id} " + tr(lang, "muted until {time} UTC", time=format(until, "%Y-%m-%d %H:%M")))
    else:
        print(f"#{args.id} " + tr(lang, "unmuted"))
    return 0


def cmd_alerts_remove(ctx: Services, args) -> int:
    ctx, _, _, rules, _ = _rules(ctx, args)
    r = rules.remove(args.id)
    print(tr(lang_for(ctx, args), "alert rule #{id} removed", id=r.id))
    return 0


def _team_option(p) -> None:
    p.add_argument("--team", help="the Slack team id (required with several workspaces)")


def extend(sub) -> None:
    """``kpibot goals``, ``kpibot digest``, ``kpibot alerts``."""
    g = sub.add_parser("goals", help="SMART goals").add_subparsers(dest="goals_command", required=True, metavar="ACTION")
    ga = g.add_parser("add", help='add a goal: kpibot goals add "revenue +10%% by 2026-12-31 owner @alice #growth"')
    ga.add_argument("text", nargs="+")
    ga.set_defaults(func=cmd_goals_add)
    gl = g.add_parser("list", help="goals with their progress")
    gl.add_argument("--json", action="store_true")
    gl.add_argument("--all", action="store_true", help="archived goals too")
    gl.set_defaults(func=cmd_goals_list)
    gs = g.add_parser("show", help="one goal in detail")
    gs.add_argument("id", type=int)
    gs.set_defaults(func=cmd_goals_show)
    gr = g.add_parser("archive", help="archive a goal")
    gr.add_argument("id", type=int)
    gr.set_defaults(func=cmd_goals_archive)
    for p in (ga, gl, gs, gr):
        _team_option(p)

    dg = sub.add_parser("digest", help="morning digests").add_subparsers(dest="digest_command", required=True, metavar="ACTION")
    dl = dg.add_parser("list", help="schedules, their next run and last error")
    dl.set_defaults(func=cmd_digest_list)
    da = dg.add_parser("add", help="add a schedule: kpibot digest add '#growth' --time 08:00 --days mon-fri")
    da.add_argument("channel")
    da.add_argument("--time", default="08:00")
    da.add_argument("--days", default="mon-fri")
    da.add_argument("--timezone", default=None, help="default KPIBOT_TIMEZONE")
    da.add_argument("--content", default="goals,watch,movers")
    da.set_defaults(func=cmd_digest_add)
    dr = dg.add_parser("remove", help="remove a schedule")
    dr.add_argument("id", type=int)
    dr.set_defaults(func=cmd_digest_remove)
    dp = dg.add_parser("preview", help="print today's digest")
    dp.add_argument("--schedule", type=int)
    dp.set_defaults(func=cmd_digest_preview)
    ds = dg.add_parser("send", help="send the digests due today (idempotent without --force)")
    ds.add_argument("--schedule", type=int)
    ds.add_argument("--force", action="store_true", help="send again even if already sent today")
    ds.set_defaults(func=cmd_digest_send)
    for p in (dl, da, dr, dp, ds):
        _team_option(p)

    al = sub.add_parser("alerts", help="threshold alerts").add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    a1 = al.add_parser("list", help="rules with their state")
    a1.add_argument("--json", action="store_true")
    a1.set_defaults(func=cmd_alerts_list)
    a2 = al.add_parser("add", help='add a rule: kpibot alerts add "return rate above 8%% over 7 days in #ops"')
    a2.add_argument("text", nargs="+")
    a2.set_defaults(func=cmd_alerts_add)
    a3 = al.add_parser("check", help="evaluate every rule once, now, and send what the state machine says")
    a3.set_defaults(func=cmd_alerts_check)
    a4 = al.add_parser("test", help="backtest a rule on history: when it would have fired")
    a4.add_argument("id", type=int)
    a4.add_argument("--days", type=int, default=90)
    a4.set_defaults(func=cmd_alerts_test)
    a5 = al.add_parser("mute", help="silence a rule (default 24h)")
    a5.add_argument("id", type=int)
    a5.add_argument("--for", dest="duration", default="24h", help="30m, 4h, 2d")
    a5.add_argument("--unmute", action="store_true", help="end the silence")
    a5.set_defaults(func=cmd_alerts_mute)
    a6 = al.add_parser("remove", help="remove a rule")
    a6.add_argument("id", type=int)
    a6.set_defaults(func=cmd_alerts_remove)
    for p in (a1, a2, a3, a4, a5, a6):
        _team_option(p)
