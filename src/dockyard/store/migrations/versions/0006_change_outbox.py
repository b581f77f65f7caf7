"""PostgreSQL: the changes of each committed write wait in ``outbox`` until they are announced.

A write transaction that sent its own ``NOTIFY`` held PostgreSQL's notify lock from its pre-commit until
after its commit record was flushed, so every write of the installation committed one after another (about
400 commits a second on a durable cluster with 32 writers, against 2,000 without it): concurrent commits
could not share WAL flushes. A write now inserts its changes here in its own transaction, and an announcer
(``store/outbox.py``) moves them to ``NOTIFY`` in batches. SQLite (one process) announces through the
store's observers and has no such table.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TABLE outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE outbox")
