"""The job queue: what workers claim, with a lease. The job document itself is an ordinary resource.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_queue",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),  # QUEUED | RUNNING
        sa.Column("worker", sa.Text, nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),  # epoch seconds
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_job_queue_claim", "job_queue", ["state", "priority", "created"])


def downgrade() -> None:
    op.drop_table("job_queue")
