"""The store's tables. Migrations (``store/migrations``) create them; this module names them for queries.

Every resource is one JSON document in ``resources``, with an integer ``key`` beside its text ``id`` (SQLite's
rowid, a PostgreSQL identity). Each scalar leaf of the document (and each element of an array) is also one row
of ``attrs``, under the document's ``key`` (8 bytes in every index entry instead of a ~65-byte id: sets of
matches are intersected and looked up as integers), at its slash path (``acl/owners``, ``module/href``,
``data:bucket``); that is what filters, ACL restriction, ordering fallbacks and aggregations use, so a search
is a handful of index look-ups whatever the schema, open schemas included.

``attrs`` value columns: ``k`` is the kind (``s`` string, ``n`` number, ``b`` boolean); ``s`` holds strings
and booleans (``'true'``/``'false'``), ``n`` holds numbers. Strings longer than ``MAX_INDEXED_STRING`` are
not indexed (not searchable), as Elasticsearch's ``ignore_above``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

MAX_INDEXED_STRING = 1024

metadata = sa.MetaData()

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("key", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("updated", sa.Text, nullable=False),
    sa.Column("doc", sa.Text().with_variant(JSONB(), "postgresql"), nullable=False),
    sa.Index("ix_resources_type_created", "type", "created", "id"),
)

attrs = sa.Table(
    "attrs",
    metadata,
    sa.Column("key", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("k", sa.String(1), nullable=False),
    # byte order on PostgreSQL too, so that ranges over strings and timestamps compare as in SQLite
    sa.Column("s", sa.Text().with_variant(sa.Text(collation="C"), "postgresql"), nullable=True),
    sa.Column("n", sa.Float, nullable=True),
    sa.Index("ix_attrs_s", "type", "path", "s", "k", "key"),
    sa.Index("ix_attrs_n", "type", "path", "n", "key"),
    sa.Index("ix_attrs_key", "key", "path", "s", "k"),
)
