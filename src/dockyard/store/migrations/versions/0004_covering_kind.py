"""The attribute indexes cover the value kind, so a filter (which tests ``k``) never visits the table.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_attrs_s", table_name="attrs")
    op.drop_index("ix_attrs_id", table_name="attrs")
    op.create_index("ix_attrs_s", "attrs", ["type", "path", "s", "k", "id"])
    op.create_index("ix_attrs_id", "attrs", ["id", "path", "s", "k"])


def downgrade() -> None:
    op.drop_index("ix_attrs_s", table_name="attrs")
    op.drop_index("ix_attrs_id", table_name="attrs")
    op.create_index("ix_attrs_s", "attrs", ["type", "path", "s", "id"])
    op.create_index("ix_attrs_id", "attrs", ["id", "path", "s"])
