"""The ``kpibot`` console script: the domain's commands (``kpi.cli``) plus the Slack app's.

    kpibot serve     HTTP: /slack/events, /slack/install, /slack/oauth_redirect, /healthz on $PORT (gunicorn)
    kpibot socket    Socket Mode (SLACK_APP_TOKEN), for small installs and development
    kpibot demo      the sandbox: the real app against a local stand-in for Slack, with a prompt
"""

from __future__ import annotations

import os
import sys

from kpi import cli as domain_cli
from kpi.errors import KpiError
from kpi.i18n import tr
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


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), each keeping the memory
    its thread freed: a process with 16 request threads grows by tens of MB that no one uses. Two arenas, as
    ``MALLOC_ARENA_MAX=2`` would set (an operator's own ``MALLOC_ARENA_MAX`` is left alone)."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def serve_config(port: int, host: str, env=None) -> dict[str, object]:
    """gunicorn's settings for ``kpibot serve`` (issue 15: the web tree under 350 MB).

    One worker process by default (``WEB_CONCURRENCY``) with 16 threads (``KPIBOT_WEB_THREADS``): the work of
    an answer is SQL (which releases the GIL) and Slack's HTTP calls, and a second process doubles the memory
    (its caches, its chart helper) for little throughput on a small container. The app is built in the
    master before the fork (``preload_app``) and its objects frozen out of the garbage collector, so the
    worker shares the imported code copy-on-write."""
    env = os.environ if env is None else env
    return {
        "bind": f"{host}:{port}",
        # threads: Bolt runs lazy listeners (the answers) in threads of the worker that acknowledged
        "worker_class": "gthread",
        "workers": int(env.get("WEB_CONCURRENCY") or 1),
        "threads": int(env.get("KPIBOT_WEB_THREADS") or 16),
        "preload_app": True,
        "timeout": 60,
        "accesslog": "-" if env.get("KPIBOT_ACCESS_LOG") else None,
    }


def _start_chart_helper(_server, _worker) -> None:
    """gunicorn's post_fork: the worker's chart helper, forked while the worker is a fresh copy of the master."""
    from .drawing import prestart

    prestart()


def cmd_serve(ctx: Services, args) -> int:
    import gc

    from gunicorn.app.base import BaseApplication

    from .app import wsgi_app

    slack = SlackSettings.from_env()
    slack.check()
    port = args.port or slack.port
    limit_malloc_arenas()
    # threads computing answers after the acknowledgement (bot.app): 8 in the one web worker, fewer than the
    # source pool's 15 connections (16 threads each holding one and asking for a second could wait on each
    # other until the pool's timeout), and on 2 cores 8 answer faster than 16 and leave the GIL to the
    # acknowledgements (bench/RESULTS.md, Memory: 9.4 vs 7.2 answers/s, ack p99 221 vs 337 ms)
    os.environ.setdefault("KPIBOT_LISTENER_THREADS", "8")
    application = wsgi_app(ctx, slack)
    config = serve_config(port, args.host)

    class Server(BaseApplication):
        def load_config(self):
            for key, value in config.items():
                self.cfg.set(key, value)
            self.cfg.set("post_fork", _start_chart_helper)

        def load(self):
            # threads that only acknowledge must get the GIL back quickly from threads that compute
            sys.setswitchinterval(0.001)
            # what the master built is shared with the workers copy-on-write: a collection in a worker
            # would touch (and so copy) every object it inherited; frozen objects are never traversed
            gc.collect()
            gc.freeze()
            return application

    print(f"kpibot: serving Slack on http://{args.host}:{port}/slack/events (health: /healthz)", file=sys.stderr)
    Server().run()
    return 0


# Slack's answers that mean the token itself is wrong (not a network problem)
TOKEN_REFUSED = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                 "not_allowed_token_type", "invalid_token", "missing_scope")
SOCKET_CONNECT_SECONDS = 30


def _refused(exc: Exception) -> str:
    """The Slack error code in a refused call ('' when it is not one of a refused token)."""
    response = getattr(exc, "response", None)
    error = (response.get("error") if response is not None else None) or str(exc)
    return next((code for code in TOKEN_REFUSED if code in error), "")


def cmd_socket(ctx: Services, args) -> int:
    """Socket Mode: 'connected' is printed once the WebSocket is open, and a token Slack refuses is named,
    with what it should be, instead of an unexpected error."""
    import threading
    import time

    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from .app import build_app

    slack = SlackSettings.from_env()
    slack.check(socket_mode=True)
    if not slack.app_token.startswith("xapp-"):
        raise KpiError("SLACK_APP_TOKEN is not an app-level token: it starts with xapp- (Slack app > Basic "
                       "Information > App-Level Tokens, with the connections:write scope)")
    try:
        app = build_app(ctx, slack)
    except BoltError as exc:
        if code := _refused(exc) or ("invalid" if "is invalid" in str(exc) else ""):
            raise KpiError("Slack refused SLACK_BOT_TOKEN ({error}): use the Bot User OAuth Token (xoxb-...) "
                           "of the installed app (Slack app > OAuth & Permissions); reinstall the app if it was "
                           "revoked", error=code) from None
        raise
    handler = SocketModeHandler(app, slack.app_token)
    try:
        handler.connect()
    except SlackApiError as exc:
        if code := _refused(exc):
            raise KpiError("Slack refused SLACK_APP_TOKEN ({error}): use an app-level token (xapp-...) with the "
                           "connections:write scope (Slack app > Basic Information > App-Level Tokens), and turn "
                           "Socket Mode on for the app", error=code) from None
        raise KpiError("Slack did not open a Socket Mode connection ({error}): is Socket Mode on for the app "
                       "(Slack app > Socket Mode)?", error=exc.response.get("error") or exc) from None
    deadline = time.monotonic() + SOCKET_CONNECT_SECONDS
    while not handler.client.is_connected():
        if time.monotonic() > deadline:
            handler.close()
            raise KpiError("no Socket Mode connection to Slack after {seconds} s: check the network and "
                           "SLACK_APP_TOKEN", seconds=SOCKET_CONNECT_SECONDS)
        time.sleep(0.1)
    print(tr(lang_for(ctx, args), "kpibot: connected to Slack in Socket Mode"), file=sys.stderr)
    threading.Event().wait()  # the connection's threads do the work; Ctrl-C ends it (exit 130)
    return 0


def cmd_demo(ctx: Services, args) -> int:
    from .demo import run_demo

    return run_demo(ctx, interactive=sys.stdin.isatty() if args.interactive is None else args.interactive,
                    days=args.days, orders_per_day=args.orders_per_day, lang=lang_for(ctx, args))


def cmd_worker(ctx: Services, args) -> int:
    from .worker import run_worker

    limit_malloc_arenas()
    # the worker acknowledges nothing: its digest and alert charts are drawn in the thread that sends them
    # (a helper forked from a worker that has composed digests copies much of its heap: ~200 MB more)
    os.environ.setdefault("KPIBOT_CHART_PROCESSES", "0")
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
