"""The filter planner on SQLite and PostgreSQL: an ``and`` whose equalities are all broad is searched as the
intersection of its index sets, one with a narrow equality by probing from it, and both plans find the same
documents, counts and pages as each other and as the filter says."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dockyard.core import acl
from dockyard.store import query
from dockyard.store.db import Store
from dockyard.store.filter import And, parse
from dockyard.store.filter_sql import PROBE_MAX, compile_filter
from dockyard.store.query import Query

from ..conftest import drop_pg_database, new_pg_database

T = "thing"
N = 1500


def _doc(i: int) -> dict:
    ts = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
    owner = "user/b" if i % 5 == 0 else "user/a"
    return {"id": f"{T}/{i:05d}", "resource-type": T, "created": ts, "updated": ts, "name": f"doc-{i}",
            "tags": [f"t{i % 2}", f"g{i % 3}", f"h{i // 2 % 2}"], "size": i, "samples": [i, i + 1, i + 2, i + 3],
            "acl": acl.normalise({"owners": [owner]})}


DOCS = [_doc(i) for i in range(N)]

# filter, whether the planner intersects, the same filter as a predicate
CASES = [
    ("tags='t1' and name^='doc-1'", True, lambda d: "t1" in d["tags"] and d["name"].startswith("doc-1")),
    ("tags='g0' and name^='doc-1'", False, lambda d: "g0" in d["tags"] and d["name"].startswith("doc-1")),
    ("tags='t1' and size>100", True, lambda d: "t1" in d["tags"] and d["size"] > 100),
    ("tags='t1' and tags='h1' and size<700", True,
     lambda d: {"t1", "h1"} <= set(d["tags"]) and d["size"] < 700),
    # a sibling four times the smallest equality (samples: 6,000 rows) stays a probe per match of the others
    ("tags='t1' and tags='h1' and samples>=0", True, lambda d: {"t1", "h1"} <= set(d["tags"])),
    ("tags='t1' and samples>=0", False, lambda d: "t1" in d["tags"]),
    ("name='doc-7' and tags='t1'", False, lambda d: d["name"] == "doc-7"),
    ("tags='t1' and name^='doc-1' and (size<100 or name='doc-1200') and tags!='g2'", True,
     lambda d: "t1" in d["tags"] and d["name"].startswith("doc-1") and (d["size"] < 100 or d["size"] == 1200)
     and "g2" not in d["tags"]),
    ("tags='t0' and name^='doc-14' or tags='h0' and tags='t1' and size<=30", True,
     lambda d: "t0" in d["tags"] and d["name"].startswith("doc-14")
     or {"h0", "t1"} <= set(d["tags"]) and d["size"] <= 30),
    ("tags='t1' and tags='nothing'", False, lambda d: False),
]


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    """One populated store per database (module scope: 1,500 documents)."""
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('planner') / 'store.db'}"
        drop = None
    else:
        url = new_pg_database(request.getfixturevalue("pg_url"))

        def drop() -> None:
            drop_pg_database(url)
    s = Store(url)
    s.migrate()
    with s.write() as tx:
        for d in DOCS:
            tx.insert(d)
    s.optimize()
    yield s
    s.close()
    if drop is not None:
        drop()


def pytest_generate_tests(metafunc):
    if "store" in metafunc.fixturenames:
        metafunc.parametrize("store", ["sqlite", "postgresql"], indirect=True, scope="module")


def _intersects(store: Store, text: str) -> bool:
    with store.read() as tx:
        sql, _ = compile_filter(parse(text), tx.dialect, estimate=query._estimator(tx, T))
    # PostgreSQL joins the sets on their keys; SQLite reads one set and tests its keys against the others'
    return " JOIN (SELECT a.key" in sql or " AND a.key IN (" in sql


def _search(store: Store, q: Query, probe_only: bool, monkeypatch) -> tuple[int, list[str]]:
    with monkeypatch.context() as m:
        if probe_only:
            m.setattr(query, "_estimator", lambda tx, rtype: None)
        with store.read() as tx:
            result = tx.search(q)
    return result.count, [d["id"] for d in result.docs]


def test_sizes_are_as_the_cases_assume():
    assert sum("t1" in d["tags"] for d in DOCS) > PROBE_MAX >= sum("g0" in d["tags"] for d in DOCS)


@pytest.mark.parametrize("text,intersects,predicate", CASES, ids=[c[0] for c in CASES])
def test_the_planner_chooses_and_both_plans_agree(store, monkeypatch, text, intersects, predicate):
    assert _intersects(store, text) is intersects
    node = parse(text)
    for claims, visible in ((None, lambda d: True), (frozenset({"user/a"}), lambda d: d["size"] % 5 != 0)):
        want = sorted((d for d in DOCS if predicate(d) and visible(d)), key=lambda d: (d["created"], d["id"]))
        queries = [
            (Query(T, node, claims), [d["id"] for d in want]),
            (Query(T, node, claims, limit=7, offset=3), [d["id"] for d in want[3:10]]),
            (Query(T, node, claims, orderby=(("size", True),), limit=5),
             [d["id"] for d in sorted(want, key=lambda d: -d["size"])[:5]]),
        ]
        for q, ids in queries:
            planned = _search(store, q, False, monkeypatch)
            probed = _search(store, q, True, monkeypatch)
            assert planned == probed == (len(want), ids), (text, claims, q.limit)


def _sql(store: Store, text: str) -> str:
    with store.read() as tx:
        return compile_filter(parse(text), tx.dialect, estimate=query._estimator(tx, T))[0]


@pytest.mark.parametrize("text", ["tags='t1' and samples>=0", "tags='g0' and name^='doc-1'",
                                  "tags='t1' and tags='h1' and samples>=0"])
def test_postgresql_tests_the_candidates_keys_before_reading_their_documents(store, text):
    # probed from its smallest equality, or intersected with a sibling left to probe: on PostgreSQL the
    # matches are found among the keys first (the results are compared in the test above)
    assert ("SELECT c.key FROM (" in _sql(store, text)) is (store.dialect == "postgresql")


def test_the_intersection_of_an_equality_and_a_prefix(store):
    # SQLite reads the prefix once and tests its keys against the equality's; PostgreSQL merges the two
    sql = _sql(store, "tags='t1' and name^='doc-1'")
    if store.dialect == "sqlite":
        assert " JOIN " not in sql
        assert sql.index("a.s >= ") < sql.index("AND a.key IN (") < sql.index("a.s = ")
    else:
        assert " JOIN (SELECT a.key" in sql and "INTERSECT" not in sql


def test_set_sizes_are_counted_once_and_a_stale_size_changes_no_result(store):
    counted: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("SELECT count(*) FROM (SELECT 1 FROM attrs"):
            counted.append(statement)

    query._SIZES.pop(store.engine, None)
    text = "tags='t1' and name^='doc-1'"
    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        first = _sql(store, text)
        assert len(counted) == 2
        assert _sql(store, text) == first and len(counted) == 2
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    # sizes that no longer hold (as after many writes) choose another plan, never other results
    sizes = query._SIZES[store.engine]
    for key, (when, _) in list(sizes.items()):
        sizes[key] = (when, 1)
    assert not _intersects(store, text)
    want = [d["id"] for d in DOCS if "t1" in d["tags"] and d["name"].startswith("doc-1")]
    with store.read() as tx:
        found = tx.search(Query(T, parse(text), frozenset({"user/a", "user/b"})))
    assert (found.count, [d["id"] for d in found.docs]) == (len(want), want)
    query._SIZES.pop(store.engine, None)


def test_an_and_of_one_equality_object_twice(store):
    # a session search joins the caller's own id='session/…' with the user's filter, which the parse cache
    # may give as the very same node: probed from it, nothing is left to test per key (PostgreSQL answered
    # a syntax error, a 500, for an owner's search of their session by id)
    same = parse("name='doc-7'")
    for node in (And((same, same)), And((same, parse("name='doc-7'")))):
        with store.read() as tx:
            found = tx.search(Query(T, node, None))
        assert [d["id"] for d in found.docs] == [f"{T}/00007"], found
