"""A write transaction's documents on both databases: on PostgreSQL its adds and edits are sent together with
the next read or the COMMIT (one round trip), so what the transaction reads must still see them, a duplicate
add must still fail the whole transaction with a 409 naming the id, and nothing of a failed one is stored."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dockyard.core import acl
from dockyard.core.errors import Conflict
from dockyard.store import filter as cimi_filter
from dockyard.store.db import Store
from dockyard.store.query import Query

T = "thing"


def doc(n: int, **extra) -> dict:
    ts = f"2026-01-01T00:00:{n:02d}.000Z"
    return {"id": f"{T}/{n:04d}", "resource-type": T, "created": ts, "updated": ts,
            "acl": acl.normalise({"owners": ["user/a"]}), **extra}


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    s.migrate()
    with s.write() as tx:
        tx.insert(doc(1, name="one", tags=["x"]))
    yield s
    s.close()


def names(store: Store, filter_text: str) -> list[str]:
    with store.read() as tx:
        return sorted(d["name"] for d in tx.search(Query(T, cimi_filter.parse(filter_text))).docs)


def test_a_write_reads_what_it_wrote_before_it_commits(store):
    with store.write() as tx:
        tx.insert(doc(2, name="two", tags=["x"]))
        assert tx.get("thing/0002")["name"] == "two"
        one = tx.get("thing/0001", for_update=True)
        one["name"] = "uno"
        tx.replace(one)
        # a search, and a statement of other code on the transaction's connection, see both
        found = tx.search(Query(T, cimi_filter.parse("tags='x'")))
        assert sorted(d["name"] for d in found.docs) == ["two", "uno"]
        count = tx.conn.execute(sa.text("SELECT count(*) FROM resources WHERE type = :t"), {"t": T}).scalar()
        assert count == 2
        tx.insert(doc(3, name="three", tags=["y"]))
    assert names(store, "tags='x'") == ["two", "uno"]
    assert names(store, "tags='y'") == ["three"]  # written after the last read: sent with the COMMIT


def test_a_duplicate_add_fails_the_whole_write_naming_the_id(store):
    with pytest.raises(Conflict) as refused:
        with store.write() as tx:
            tx.insert(doc(4, name="four", tags=["x"]))
            one = tx.get("thing/0001", for_update=True)
            one["name"] = "changed"
            tx.replace(one)
            tx.insert(doc(1, name="again"))
    assert refused.value.status == 409
    assert "thing/0001" in refused.value.message
    with store.read() as tx:
        assert tx.get("thing/0004") is None
        assert tx.get("thing/0001")["name"] == "one"
    assert names(store, "tags='x'") == ["one"]  # the index rows of both writes rolled back too
    with store.write() as tx:  # the store writes on afterwards
        tx.insert(doc(4, name="four"))
    with store.read() as tx:
        assert tx.get("thing/0004")["name"] == "four"


def test_a_failed_statement_after_writes_rolls_them_back(store):
    with pytest.raises(sa.exc.DBAPIError):
        with store.write() as tx:
            tx.insert(doc(5, name="five"))
            tx.conn.execute(sa.text("SELECT * FROM no_such_table"))
    with store.read() as tx:
        assert tx.get("thing/0005") is None


def test_an_edit_leaves_exactly_the_new_documents_index_rows(store):
    from dockyard.store.attrs import flatten

    two = doc(2, name="two", tags=["x", "y", "y"], nested={"a": {"b": 1, "c": "keep"}}, size=3)
    with store.write() as tx:
        tx.insert(two)
    edited = {**two, "tags": ["y", "z"], "nested": {"a": {"b": 2, "c": "keep"}}, "updated": "2026-01-02T00:00:00.000Z"}
    del edited["size"]
    with store.write() as tx:
        tx.replace(edited)
    assert names(store, "tags='x'") == ["one"]
    assert names(store, "tags='z'") == ["two"]
    assert names(store, "tags='y'") == ["two"]
    assert names(store, "nested/a/b=2") == ["two"] and names(store, "nested/a/b=1") == []
    assert names(store, "nested/a/c='keep'") == ["two"]
    assert names(store, "size=3") == [] and names(store, "size=null") == ["one", "two"]
    with store.read() as tx:
        stored = sorted(tuple(r) for r in tx.conn.execute(sa.text(
            "SELECT a.path, a.k, a.s, a.n FROM attrs a JOIN resources r ON r.key = a.key WHERE r.id = :id"),
            {"id": "thing/0002"}))
    assert stored == sorted(tuple(r) for r in flatten(edited))
    with store.write() as tx:  # an edit that changes nothing indexed
        tx.replace(edited)
    assert names(store, "tags='y'") == ["two"]
