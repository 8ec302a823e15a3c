"""lifecycle: paused schedules and rules (app uninstalled, token revoked), Slack event ids already handled

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("digest_schedules", "alert_rules"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("paused_at", sa.DateTime(), nullable=True))
            batch.add_column(sa.Column("paused_reason", sa.String(64), nullable=True))
    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_slack_events_received", "slack_events", ["received_at"])


def downgrade() -> None:
    op.drop_table("slack_events")
    for table in ("alert_rules", "digest_schedules"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("paused_reason")
            batch.drop_column("paused_at")
