"""teams, goals, digest schedules and the delivery log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("seeded_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "goals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("filters", sa.Text, nullable=False, server_default="[]"),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_value", sa.Float, nullable=False),
        sa.Column("baseline", sa.Float, nullable=True),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("watch", sa.Text, nullable=False, server_default="[]"),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("final_value", sa.Float, nullable=True),
        sa.Column("final_status", sa.String(16), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_goals_team", "goals", ["team_id", "archived_at"])
    op.create_table(
        "digest_schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("local_time", sa.String(5), nullable=False, server_default="08:00"),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("days", sa.String(64), nullable=False, server_default="mon,tue,wed,thu,fri"),
        sa.Column("content", sa.String(128), nullable=False, server_default="goals,watch,movers"),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_digest_schedules_team", "digest_schedules", ["team_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.UniqueConstraint("key", name="uq_deliveries_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deliveries_status", "deliveries", ["status", "claimed_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("digest_schedules")
    op.drop_table("goals")
    op.drop_table("teams")
