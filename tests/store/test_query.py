"""The store's searches on SQLite and PostgreSQL: ACL restriction, ordering, paging, select, aggregations."""

from __future__ import annotations

import pytest

from dockyard.core import acl
from dockyard.core.errors import Conflict
from dockyard.store import filter as cimi_filter
from dockyard.store.db import Store
from dockyard.store.query import Query

T = "thing"


def doc(n: int, owner: str, **extra) -> dict:
    ts = f"2026-01-01T00:00:{n:02d}.000Z"
    return {"id": f"{T}/{n:04d}", "resource-type": T, "created": ts, "updated": ts,
            "acl": acl.normalise({"owners": [owner]}), **extra}


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    s.migrate()
    with s.write() as tx:
        tx.insert(doc(1, "user/a", name="one", size=10, tags=["x", "y"], state="STARTED"))
        tx.insert(doc(2, "user/a", name="two", size=2, tags=["y"], state="STOPPED"))
        tx.insert(doc(3, "user/b", name="three", size=30, tags=["x"], state="STARTED", flag=True))
        tx.insert(doc(4, "user/b", name="four", state="STARTED",
                      nested={"deep": {"v": "k"}}, **{"data:bucket": "b1"}))
        shared = doc(5, "user/b", name="five", size=5, state="ERROR")
        shared["acl"] = acl.normalise({"owners": ["user/b"], "view-data": ["user/a"]})
        tx.insert(shared)
    yield s
    s.close()


def search(store, **kw):
    with store.read() as tx:
        return tx.search(Query(T, **kw))


def names(result):
    return [d["name"] for d in result.docs]


def test_acl_restriction_applies_with_and_without_a_filter(store):
    a = frozenset({"user/a"})
    assert sorted(names(search(store, claims=a))) == ["five", "one", "two"]
    f = cimi_filter.parse("state='STARTED' or state='ERROR'")
    assert sorted(names(search(store, claims=a, filter=f))) == ["five", "one"]
    assert search(store, claims=frozenset({"user/nobody"})).count == 0
    assert search(store).count == 5  # no claims: no restriction


def test_ordering_by_columns_and_attributes_with_missing_values_last(store):
    assert names(search(store, orderby=(("created", True),))) == ["five", "four", "three", "two", "one"]
    assert names(search(store, orderby=(("size", False),))) == ["two", "five", "one", "three", "four"]
    assert names(search(store, orderby=(("size", True),))) == ["three", "one", "five", "two", "four"]


def test_multiple_order_keys(store):
    result = names(search(store, orderby=(("state", False), ("name", False))))
    # ERROR < STARTED < STOPPED; ties broken by name
    assert result == ["five", "four", "one", "three", "two"]


def test_paging_counts_everything_and_returns_the_page(store):
    page = search(store, orderby=(("name", False),), offset=1, limit=2)
    assert page.count == 5
    assert names(page) == ["four", "one"]
    assert search(store, limit=0).docs == []


def test_filtered_pages_follow_column_and_attribute_orders(store):
    started = cimi_filter.parse("state='STARTED' or state='ERROR'")  # one, three, four, five
    newest_first = search(store, filter=started, orderby=(("created", True),), offset=1, limit=2)
    assert (newest_first.count, names(newest_first)) == (4, ["four", "three"])
    by_id = search(store, filter=started, orderby=(("id", False),), limit=3)
    assert names(by_id) == ["one", "three", "four"]
    by_size = search(store, filter=started, orderby=(("size", True),), offset=1, limit=2)
    assert (by_size.count, names(by_size)) == (4, ["one", "five"])
    mine = search(store, filter=started, claims=frozenset({"user/a"}), orderby=(("created", True),), limit=1)
    assert (mine.count, names(mine)) == (2, ["five"])  # five is shared with user/a through view-data


def test_filtered_paging_counts_every_match_whatever_the_page(store):
    started = cimi_filter.parse("state='STARTED'")
    page = search(store, filter=started, orderby=(("name", False),), offset=1, limit=1)
    assert (page.count, names(page)) == (3, ["one"])
    past_the_end = search(store, filter=started, offset=7, limit=2)
    assert (past_the_end.count, past_the_end.docs) == (3, [])
    counted_only = search(store, filter=started, limit=0)
    assert (counted_only.count, counted_only.docs) == (3, [])
    mine = search(store, filter=started, claims=frozenset({"user/a"}), limit=5)
    assert (mine.count, names(mine)) == (1, ["one"])
    nothing = search(store, filter=cimi_filter.parse("state='GONE'"), limit=5)
    assert (nothing.count, nothing.docs) == (0, [])


def test_select_returns_only_the_selected_keys_plus_id_and_acl(store):
    result = search(store, select=("name", "nested", "data:bucket"), orderby=(("name", False),))
    four = next(d for d in result.docs if d["name"] == "four")
    assert four == {"id": "thing/0004", "acl": four["acl"], "name": "four", "nested": {"deep": {"v": "k"}},
                    "data:bucket": "b1"}
    assert set(result.docs[0]) <= {"id", "acl", "name", "nested", "data:bucket"}


def test_aggregations(store):
    aggs = search(store, aggregations=(("terms", "state"), ("value_count", "size"), ("min", "size"),
                                       ("max", "size"), ("sum", "size"), ("avg", "size"),
                                       ("cardinality", "tags"), ("missing", "size"), ("terms", "flag"),
                                       ("stats", "size"))).aggregations
    assert aggs["terms:state"]["buckets"] == [{"key": "STARTED", "doc_count": 3},
                                              {"key": "ERROR", "doc_count": 1},
                                              {"key": "STOPPED", "doc_count": 1}]
    assert aggs["value_count:size"] == {"value": 4}
    assert aggs["min:size"] == {"value": 2}
    assert aggs["max:size"] == {"value": 30}
    assert aggs["sum:size"] == {"value": 47}
    assert aggs["avg:size"] == {"value": 11.75}
    assert aggs["cardinality:tags"] == {"value": 2}
    assert aggs["missing:size"] == {"doc_count": 1}
    assert aggs["terms:flag"]["buckets"] == [{"key": 1, "doc_count": 1}]
    assert aggs["stats:size"] == {"count": 4, "min": 2, "max": 30, "avg": 11.75, "sum": 47}


def test_aggregations_respect_the_acl_and_the_filter(store):
    aggs = search(store, claims=frozenset({"user/a"}), filter=cimi_filter.parse("size>3"),
                  aggregations=(("terms", "state"),)).aggregations
    assert aggs["terms:state"]["buckets"] == [{"key": "ERROR", "doc_count": 1},
                                              {"key": "STARTED", "doc_count": 1}]


def test_insert_conflict_replace_and_delete(store):
    with pytest.raises(Conflict):
        with store.write() as tx:
            tx.insert(doc(1, "user/a", name="again"))
    with store.write() as tx:
        d = tx.get("thing/0001", for_update=True)
        d["name"] = "uno"
        d["tags"] = ["z"]
        tx.replace(d)
    f = cimi_filter.parse("tags='z'")
    assert names(search(store, filter=f)) == ["uno"]
    assert search(store, filter=cimi_filter.parse("tags='x'")).count == 1  # the old index rows are gone
    with store.write() as tx:
        assert tx.delete("thing/0001")
        assert not tx.delete("thing/0001")
    assert search(store).count == 4


def test_a_failed_transaction_stores_nothing(store):
    with pytest.raises(RuntimeError):
        with store.write() as tx:
            tx.insert(doc(9, "user/a", name="nine"))
            raise RuntimeError("boom")
    assert search(store, filter=cimi_filter.parse("name='nine'")).count == 0
    with store.read() as tx:
        assert tx.get("thing/0009") is None
