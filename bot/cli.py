"""The ``kpibot`` console script: the domain's commands (``kpi.cli``) plus the Slack app's.

    kpibot serve     HTTP: /slack/events, /slack/install, /slack/oauth_redirect, /healthz on $PORT (gunicorn)
    kpibot socket    Socket Mode (SLACK_APP_TOKEN), for small installs and development
    kpibot demo      the sandbox: the real app against a local stand-in for Slack, with a prompt
"""

from __future__ import annotations

import os
import sys

from kpi import cli as domain_cli
from kpi.services import Services

from . import manage_cli
from .config import SlackSettings
from .manage_cli import lang_for, team_of


def cmd_db_upgrade(ctx: Services, args) -> int:
    """The domain's migrations, then slack-sdk's installation and OAuth state tables."""
    from .app import create_slack_tables

    rc = domain_cli.cmd_db_upgrade(ctx, args)
    create_slack_tables(ctx, SlackSettings.from_env())
    return rc


def cmd_serve(ctx: Services, args) -> int:
    from gunicorn.app.base import BaseApplication

    from .app import wsgi_app

    slack = SlackSettings.from_env()
    slack.check()
    port = args.port or slack.port
    application = wsgi_app(ctx, slack)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{port}")
            # threads: Bolt runs lazy listeners (the answers) in threads of the worker that acknowledged
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("workers", int(os.environ.get("WEB_CONCURRENCY", "2")))
            self.cfg.set("threads", int(os.environ.get("KPIBOT_WEB_THREADS", "8")))
            self.cfg.set("timeout", 60)
            self.cfg.set("accesslog", "-" if os.environ.get("KPIBOT_ACCESS_LOG") else None)

        def load(self):
            # threads that only acknowledge must get the GIL back quickly from threads that compute
            sys.setswitchinterval(0.001)
            return application

    print(f"kpibot: serving Slack on http://{args.host}:{port}/slack/events (health: /healthz)", file=sys.stderr)
    Server().run()
    return 0


def cmd_socket(ctx: Services, args) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from .app import build_app

    slack = SlackSettings.from_env()
    slack.check(socket_mode=True)
    app = build_app(ctx, slack)
    print("kpibot: connected to Slack in Socket Mode", file=sys.stderr)
    SocketModeHandler(app, slack.app_token).start()
    return 0


def cmd_demo(ctx: Services, args) -> int:
    from .demo import run_demo

    return run_demo(ctx, interactive=sys.stdin.isatty() if args.interactive is None else args.interactive,
                    days=args.days, orders_per_day=args.orders_per_day, lang=lang_for(ctx, args))


def cmd_worker(ctx: Services, args) -> int:
    from .worker import run_worker

    slack = SlackSettings.from_env()
    if not slack.multi_workspace:
        team_of(ctx, args)  # seeds the defaults of the bot token's workspace
    return run_worker(ctx, slack)


def extend(sub) -> None:
    sub.db_upgrade.set_defaults(func=cmd_db_upgrade)

    s = sub.add_parser("serve", help="serve Slack's HTTP requests (the web process)")
    s.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a web process listens on all interfaces
    s.add_argument("--port", type=int, default=None, help="default $PORT or 3000")
    s.set_defaults(func=cmd_serve)

    k = sub.add_parser("socket", help="connect to Slack in Socket Mode (SLACK_APP_TOKEN)")
    k.set_defaults(func=cmd_socket)

    d = sub.add_parser("demo", help="try the bot without Slack: the real app against a local stand-in, with a prompt")
    d.add_argument("--interactive", action="store_true", default=None, help="prompt even when stdin is not a terminal")
    d.add_argument("--days", type=int, default=730, help="days of demo data created when the source is empty")
    d.add_argument("--orders-per-day", type=int, default=250)
    d.set_defaults(func=cmd_demo)

    w = sub.add_parser("worker", help="run the schedules: digests (the worker process)")
    w.set_defaults(func=cmd_worker)
    manage_cli.extend(sub)


def main(argv: list[str] | None = None) -> int:
    return domain_cli.main(argv, extend=extend)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
