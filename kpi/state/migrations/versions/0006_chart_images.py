"""chart images served at signed, expiring URLs (private answers leave no file in anyone's DM)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chart_images",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_chart_images_expires", "chart_images", ["expires_at"])


def downgrade() -> None:
    op.drop_table("chart_images")
