"""Migration 0005 on a database with documents in it (SQLite and PostgreSQL): every document keeps its id,
body and attribute rows, gets an integer key in ``created`` order, and searches, edits, deletes and new
documents work on the migrated store as on a new one."""

from __future__ import annotations

import json

import sqlalchemy as sa

from dockyard.core import acl
from dockyard.store import migrate
from dockyard.store.attrs import flatten
from dockyard.store.db import Store
from dockyard.store.filter import parse
from dockyard.store.query import Query

T = "thing"


def _doc(i: int) -> dict:
    ts = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z"
    return {"id": f"{T}/{i:04d}", "resource-type": T, "created": ts, "updated": ts, "name": f"doc-{i}",
            "tags": [f"t{i % 3}"], "size": i, "acl": acl.normalise({"owners": ["user/a" if i % 2 else "user/b"]})}


def _old_store(url: str, docs: list[dict]) -> None:
    """A database at revision 0004 with ``docs`` in it, written as 0004's Tx.insert wrote them."""
    store = Store(url)
    migrate.upgrade(store.engine, "0004")
    cast = "CAST(:doc AS jsonb)" if store.dialect == "postgresql" else ":doc"
    with store.engine.begin() as conn:
        # inserted out of created order: the keys follow created, not insertion
        for d in reversed(docs):
            conn.execute(sa.text(f"INSERT INTO resources (id, type, created, updated, doc) "
                                 f"VALUES (:id, :type, :created, :updated, {cast})"),
                         {"id": d["id"], "type": T, "created": d["created"], "updated": d["updated"],
                          "doc": json.dumps(d)})
            conn.execute(sa.text("INSERT INTO attrs (id, type, path, k, s, n) VALUES (:id, :type, :p, :k, :s, :n)"),
                         [{"id": d["id"], "type": T, "p": p, "k": k, "s": s, "n": n} for p, k, s, n in flatten(d)])
    store.close()


def test_migration_keys_existing_documents(db_url):
    docs = [_doc(i) for i in range(300)]
    _old_store(db_url, docs)
    store = Store(db_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            keyed = conn.execute(sa.text("SELECT key, id FROM resources ORDER BY key")).all()
            assert [rid for _, rid in keyed] == [d["id"] for d in docs]
            assert len({key for key, _ in keyed}) == len(docs)
            rows = conn.execute(sa.text("SELECT r.id, a.path, a.k, a.s, a.n FROM attrs a "
                                        "JOIN resources r ON r.key = a.key")).all()
            want = sorted((d["id"], p, k, s, n) for d in docs for p, k, s, n in flatten(d))
            assert sorted(tuple(r) for r in rows) == want
            columns = {c["name"] for c in sa.inspect(conn).get_columns("attrs")}
            assert "id" not in columns and "key" in columns
        with store.read() as tx:
            assert tx.get(docs[7]["id"]) == docs[7]
            broad = tx.search(Query(T, parse("tags='t1' and size>=150"), frozenset({"user/a"}), limit=5))
            want_ids = [d["id"] for d in docs if d["size"] % 3 == 1 and d["size"] >= 150 and d["size"] % 2]
            assert broad.count == len(want_ids) and [d["id"] for d in broad.docs] == want_ids[:5]
        # writes after the migration: a new document gets a key past the old ones, edits and deletes follow
        new = _doc(300)
        with store.write() as tx:
            tx.insert(new)
            edited = dict(docs[0], name="renamed")
            tx.replace(edited)
            assert tx.delete(docs[1]["id"])
        with store.read() as tx:
            assert [d["id"] for d in tx.search(Query(T, parse("name='renamed' or name='doc-300'"))).docs] == [
                docs[0]["id"], new["id"]]
            assert tx.search(Query(T, parse("name='doc-0' or name='doc-1'"))).count == 0
        with store.engine.connect() as conn:
            key = conn.execute(sa.text("SELECT key FROM resources WHERE id = :id"), {"id": new["id"]}).scalar_one()
            assert key > max(k for k, _ in keyed)
            orphans = conn.execute(sa.text("SELECT count(*) FROM attrs a WHERE NOT EXISTS "
                                           "(SELECT 1 FROM resources r WHERE r.key = a.key)")).scalar_one()
            assert orphans == 0
    finally:
        store.close()
