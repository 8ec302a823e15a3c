"""apscheduler_jobs: the worker's job store, created by ``kpibot db upgrade`` instead of by each worker

Exactly APScheduler 3's ``SQLAlchemyJobStore`` table (apscheduler/jobstores/sqlalchemy.py): ``id`` VARCHAR(191)
primary key, ``next_run_time`` FLOAT(25) indexed as ``ix_apscheduler_jobs_next_run_time``, ``job_state`` a
non-null blob. A deployment whose worker already created it keeps it as it is.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("apscheduler_jobs"):
        return  # made by a worker of an earlier version: the same table
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
