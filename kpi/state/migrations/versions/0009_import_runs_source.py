"""import_runs.source_key: which shop's source an import went to (a fingerprint of its URL, never the URL),
so that the App Home shows a team's admins the refused imports of their own shop only; status may now be
``skipped`` (a file whose content was loaded before)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.add_column(sa.Column("source_key", sa.String(16), nullable=True))
    op.create_index("ix_import_runs_source", "import_runs", ["source_key", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_import_runs_source", table_name="import_runs")
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("source_key")
