"""The bot's own state database (``DATABASE_URL``): its tables, and the migrations that create them.

The schema is owned by Alembic (``kpi/migrations``); ``kpibot db upgrade`` runs it. Every table that
holds a team's data carries ``team_id``; this module's tables are shared by all teams.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

VERSION_TABLE = "kpibot_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"

state_metadata = MetaData()

# one row per `kpibot import` run, loaded or refused: what came in, from which file, and what it changed
import_runs = Table(
    "import_runs",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(), nullable=False),
    Column("finished_at", DateTime(), nullable=True),
    Column("file_name", String(512), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # loaded | refused
    Column("rows_read", Integer, nullable=False, server_default="0"),
    Column("inserted", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("message", Text, nullable=True),
)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
