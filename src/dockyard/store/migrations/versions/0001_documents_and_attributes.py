"""Documents and their attribute index.

Revision ID: 0001
Revises:
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("updated", sa.Text, nullable=False),
        sa.Column("doc", sa.Text().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    op.create_index("ix_resources_type_created", "resources", ["type", "created", "id"])
    op.create_table(
        "attrs",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("k", sa.String(1), nullable=False),
        sa.Column("s", sa.Text().with_variant(sa.Text(collation="C"), "postgresql"), nullable=True),
        sa.Column("n", sa.Float, nullable=True),
    )
    op.create_index("ix_attrs_s", "attrs", ["type", "path", "s", "id"])
    op.create_index("ix_attrs_n", "attrs", ["type", "path", "n", "id"])
    op.create_index("ix_attrs_id", "attrs", ["id", "path", "s"])


def downgrade() -> None:
    op.drop_table("attrs")
    op.drop_table("resources")
