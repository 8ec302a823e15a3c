"""The bot's own state database (``DATABASE_URL``): its tables, and the migrations that create them.

The schema is owned by Alembic (``kpi/state/migrations``); ``kpibot db upgrade`` runs it. Every table that
holds a team's data carries ``team_id``; this module's tables are shared by all teams.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.engine import Engine

VERSION_TABLE = "kpibot_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"

state_metadata = MetaData()

# one row per file imported (`kpibot import`, the worker's inbox), loaded, skipped or refused: what came in,
# from which file, into which shop's source (``source_key``: kpi.data.batch.source_key), and what it changed
import_runs = Table(
    "import_runs",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(), nullable=False),
    Column("finished_at", DateTime(), nullable=True),
    Column("file_name", String(512), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # loaded | skipped | refused
    Column("rows_read", Integer, nullable=False, server_default="0"),
    Column("inserted", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("message", Text, nullable=True),
    Column("source_key", String(16), nullable=True),  # migration 0009; null for imports logged before it
    Index("ix_import_runs_source", "source_key", "status", "id"),
)


# one row per Slack team the bot has served: when its defaults (config/goals.yaml, digests.yaml) were seeded
teams = Table(
    "teams",
    state_metadata,
    Column("team_id", String(32), primary_key=True),
    Column("seeded_at", DateTime(), nullable=False),
)

# SMART goals, per team (DESIGN.md section 6). filters and watch are JSON text.
goals = Table(
    "goals",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("filters", Text, nullable=False, server_default="[]"),
    Column("target_kind", String(16), nullable=False),  # absolute | relative_pct | relative_pt
    Column("target_value", Float, nullable=False),
    Column("baseline", Float, nullable=True),  # given by the user; else computed
    Column("start", Date, nullable=False),
    Column("deadline", Date, nullable=False),
    Column("owner", String(64), nullable=True),
    Column("channel", String(64), nullable=True),
    Column("watch", Text, nullable=False, server_default="[]"),
    Column("text", Text, nullable=False, server_default=""),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime(), nullable=False),
    Column("archived_at", DateTime(), nullable=True),
    Column("final_value", Float, nullable=True),  # frozen once the deadline passed
    Column("final_status", String(16), nullable=True),
    Index("ix_goals_team", "team_id", "archived_at"),
    sqlite_autoincrement=True,  # ids are never reused: a new goal never inherits an old one's history
)

# digest schedules, per team and channel (DESIGN.md section 7)
digest_schedules = Table(
    "digest_schedules",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("local_time", String(5), nullable=False, server_default="08:00"),
    Column("timezone", String(64), nullable=False),
    Column("days", String(64), nullable=False, server_default="mon,tue,wed,thu,fri"),
    Column("content", String(128), nullable=False, server_default="goals,watch,movers"),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", DateTime(), nullable=True),
    Column("paused_at", DateTime(), nullable=True),  # set when the team uninstalled the app or its token died
    Column("paused_reason", String(64), nullable=True),
    Index("ix_digest_schedules_team", "team_id"),
    sqlite_autoincrement=True,  # a new schedule must not inherit the delivery keys of a removed one
)

# every notification the worker sends claims its row first; the unique key makes a second send impossible
deliveries = Table(
    "deliveries",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("key", String(255), nullable=False),  # digest:<schedule>:<local date>, alert:<rule>:<episode>:<step>
    Column("kind", String(16), nullable=False),  # digest | alert
    Column("status", String(16), nullable=False),  # claimed | sent | failed | skipped | interrupted
    Column("due_at", DateTime(), nullable=True),  # UTC
    Column("claimed_at", DateTime(), nullable=False),
    Column("claimed_by", String(128), nullable=False),
    Column("finished_at", DateTime(), nullable=True),
    Column("late", Boolean, nullable=False, server_default=false()),
    Column("channel", String(64), nullable=True),
    Column("slack_ts", String(32), nullable=True),
    Column("error", Text, nullable=True),
    # the claim is held until then; its worker renews it while composing and sending (kpi.state.delivery)
    Column("lease_until", DateTime(), nullable=True),  # UTC
    Column("notes", Text, nullable=True),  # every step of the delivery, one line each, in order (never overwritten)
    UniqueConstraint("key", name="uq_deliveries_key"),
    Index("ix_deliveries_status", "status", "claimed_at"),
    sqlite_autoincrement=True,
)


# alert rules per team (DESIGN.md section 8); ``spec`` is the rule's fields as JSON
alert_rules = Table(
    "alert_rules",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("text", Text, nullable=False, server_default=""),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime(), nullable=False),
    Column("paused_at", DateTime(), nullable=True),  # as digest_schedules.paused_at: the worker skips the rule
    Column("paused_reason", String(64), nullable=True),
    Index("ix_alert_rules_team", "team_id"),
    sqlite_autoincrement=True,  # delivery keys carry the rule id: never reused
)

# the current state of each rule, guarded by ``version`` so that two workers make one transition
alert_states = Table(
    "alert_states",
    state_metadata,
    Column("rule_id", Integer, primary_key=True),
    Column("team_id", String(32), nullable=False),
    Column("state", Text, nullable=False),  # AlertState as JSON
    Column("version", Integer, nullable=False, server_default="0"),
    Column("evaluated_at", DateTime(), nullable=True),
    Column("next_eval_at", DateTime(), nullable=True),
    Column("message_channel", String(64), nullable=True),  # the episode's first message, for its thread
    Column("message_ts", String(32), nullable=True),
)

# append-only log of every transition
alert_events = Table(
    "alert_events",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("rule_id", Integer, nullable=False),
    Column("at", DateTime(), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("value", Float, nullable=True),
    Column("sample", Float, nullable=True),
    Index("ix_alert_events_rule", "rule_id", "at"),
    sqlite_autoincrement=True,
)


# a modal submission (goal or alert form) claims its view id first: Slack retries and a second click on
# Submit then create one object, not two (status pending until created; released when refused)
form_submissions = Table(
    "form_submissions",
    state_metadata,
    Column("team_id", String(32), primary_key=True),
    Column("view_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # goal | alert
    Column("status", String(16), nullable=False),  # pending | done
    Column("object_id", Integer, nullable=True),
    Column("created_at", DateTime(), nullable=False),
)

# Slack's event ids already handled: a delivery Slack retries (X-Slack-Retry-Num) is processed once
slack_events = Table(
    "slack_events",
    state_metadata,
    Column("event_id", String(64), primary_key=True),
    Column("team_id", String(32), nullable=True),
    Column("event_type", String(64), nullable=True),
    Column("received_at", DateTime(), nullable=False),
    Index("ix_slack_events_received", "received_at"),
)


# chart PNGs waiting to be fetched by Slack through a signed, expiring URL (bot/chart_urls.py): any web
# process can serve them; rows past ``expires_at`` are purged
chart_images = Table(
    "chart_images",
    state_metadata,
    Column("id", String(64), primary_key=True),
    Column("team_id", String(32), nullable=True),
    Column("png", LargeBinary(), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Index("ix_chart_images_expires", "expires_at"),
)


# APScheduler 3's job store (``SQLAlchemyJobStore(tablename="apscheduler_jobs")`` in ``bot/worker.py``), exactly
# as it defines it: created here, by ``kpibot db upgrade``, so that workers started together never race to
# create it (migration 0008)
apscheduler_jobs = Table(
    "apscheduler_jobs",
    state_metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


def log_import(engine: Engine, row: dict) -> None:
    """One row of ``import_runs`` (``kpi.data.batch.Outcome.run_row``)."""
    with engine.begin() as conn:
        conn.execute(import_runs.insert().values(**row))


def refused_imports(engine: Engine, source_key: str, *, limit: int = 5, since: datetime | None = None) -> list:
    """The last files refused for the source ``source_key`` (since ``since``, naive UTC), newest first."""
    query = select(import_runs).where(import_runs.c.source_key == source_key, import_runs.c.status == "refused")
    if since is not None:
        query = query.where(import_runs.c.started_at >= since)
    with engine.connect() as conn:
        return conn.execute(query.order_by(import_runs.c.id.desc()).limit(limit)).all()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
