"""Compiled filters, end to end on SQLite and PostgreSQL: which documents each filter matches."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from dockyard.core.errors import FilterError
from dockyard.store import filter as f
from dockyard.store.attrs import flatten
from dockyard.store.filter import And, Comp, Or, Value, parse
from dockyard.store.filter_sql import SQLITE_MAX_NESTING, compile_filter, prefix_successor
from dockyard.store.schema import attrs, metadata, resources

NOW = datetime(2024, 6, 2, 10, 0, 0, tzinfo=timezone.utc)

DOCS = [
    {"id": "thing/1", "name": "Alpha One", "description": "The first Thing", "state": "STARTED",
     "tags": ["red", "blue"], "count": 5, "ratio": 0.5, "enabled": True, "created": "2019-01-01T00:00:00.000Z",
     "acl": {"owners": ["user/a"]}, "data:bucket": "b1", "version": "5",
     "module": {"href": "module/1", "content": {"author": "ann"}}},
    {"id": "thing/2", "name": "Beta Two", "description": "second thing, with 50% off_sale", "state": "STOPPED",
     "tags": ["green"], "count": 10, "enabled": False, "created": "2019-06-15T12:30:00.000Z",
     "acl": {"owners": ["user/b"]}, "module": {"href": "module/2"}, "code": "50%_off", "path": "C:\\temp\\x"},
    {"id": "thing/3", "name": "gamma", "state": "STARTED", "tags": [], "count": 0,
     "created": "2020-02-29T23:59:59.999Z", "acl": {"owners": ["user/a", "user/b"]},
     "nested": {"a": {"b": {"c": "deep"}}}, "note": None},
    {"id": "thing/4", "name": "Délta ünïcode", "description": "ÜBER straße", "state": "ERROR", "tags": ["red"],
     "count": 5, "created": "2021-12-31T23:00:00.000Z", "code": "50%x"},
    {"id": "thing/5", "name": "Epsilon", "tags": ["blue", "red", "red"], "count": 100, "enabled": True,
     "created": "2022-03-01T00:00:00.000Z", "ports": [{"port": 80, "proto": "tcp"}, {"port": 443, "proto": "udp"}]},
    {"id": "thing/6", "name": "zeta_underscore", "description": "x" * 2000, "state": "STARTED",
     "created": "2023-07-01T00:00:00.000Z", "version": 5, "code": "50_off"},
    {"id": "thing/7", "name": "eta", "quote": "it's \"quoted\"", "sql": "'; DROP TABLE resources; --",
     "created": "2024-01-01T00:00:00.000Z", "count": -3, "ratio": 2.5},
    {"id": "thing/8", "name": "Theta", "created": "2024-06-01T10:00:00.000Z"},
    {"id": "thing/9", "name": "iota", "created": "2018-01-01T00:00:00.000Z", "tags": "single",
     "pfx": "ab\U0010ffffz"},
    {"id": "thing/10", "name": "Kappa", "empty": "", "flag": "true", "num-str": "10",
     "created": "2019-01-01T00:00:00.001Z"},
    # another type with the same attributes: never matched by a search on `thing`
    {"id": "other/1", "name": "Alpha One", "state": "STARTED", "tags": ["red"], "count": 5,
     "created": "2019-01-01T00:00:00.000Z"},
]
ALL = set(range(1, 11))


def _not(*ids: int) -> set[int]:
    return ALL - set(ids)


CASES: dict[str, list[tuple[str, set[int]]]] = {
    "equality": [
        ("state='STARTED'", {1, 3, 6}),
        ('state="STARTED"', {1, 3, 6}),
        ("'STARTED'=state", {1, 3, 6}),
        ("state='started'", set()),  # exact and case-sensitive, as an Elasticsearch keyword
        ("state='START'", set()),
        ("state=['STOPPED','ERROR']", {2, 4}),
        ("name='Alpha One'", {1}),  # not other/1
        ("id='thing/3'", {3}),
        ("name='Délta ünïcode'", {4}),
        ("empty=''", {10}),
        ("quote='it\\'s \"quoted\"'", {7}),
        ('quote="it\'s \\"quoted\\""', {7}),
        ("sql='\\'; DROP TABLE resources; --'", {7}),
        ("acl/owners='user/a'", {1, 3}),
        ("acl/owners='user/b'", {2, 3}),
        ("data:bucket='b1'", {1}),
        ("module/href='module/2'", {2}),
        ("module/content/author='ann'", {1}),
        ("nested/a/b/c='deep'", {3}),
        ("ports/port=443", {5}),
        ("ports/proto='udp'", {5}),
        ("missing='x'", set()),
        ("a=[]", set()),
        ("description='" + "x" * 2000 + "'", set()),  # too long to be indexed
    ],
    "arrays": [
        ("tags='red'", {1, 4, 5}),
        ("tags='blue'", {1, 5}),
        ("tags='single'", {9}),  # a scalar where others have arrays
        ("tags=['green','single']", {2, 9}),
        ("tags=['red' 'green']", {1, 2, 4, 5}),
        ("['green','single']=tags", {2, 9}),
        ("tags='red' and tags='blue'", {1, 5}),
        ("tags='red' and tags!='blue'", {4}),
        ("acl/owners=['user/a','user/b']", {1, 2, 3}),
    ],
    "not-equal": [
        ("state!='STARTED'", _not(1, 3, 6)),  # documents without a state match too
        ("'STARTED'!=state", _not(1, 3, 6)),
        ("tags!='red'", _not(1, 4, 5)),  # no element is red
        ("tags!=['red','blue']", _not(1, 4, 5)),
        ("count!=5", _not(1, 4)),
        ("enabled!=true", _not(1, 5)),
        ("missing!='x'", ALL),
        ("a!=[]", ALL),
        ("acl/owners!='user/a'", _not(1, 3)),
    ],
    "null": [
        ("state=null", {5, 7, 8, 9, 10}),
        ("null=state", {5, 7, 8, 9, 10}),
        ("state!=null", {1, 2, 3, 4, 6}),
        ("null!=state", {1, 2, 3, 4, 6}),
        ("tags=null", {3, 6, 7, 8, 10}),  # an empty array is missing
        ("note=null", ALL),  # null values are not indexed
        ("description=null", {3, 5, 6, 7, 8, 9, 10}),  # 6's is too long to be indexed
        ("module=null", _not(1, 2)),  # an object is there when any leaf under it is
        ("module/href!=null", {1, 2}),
        ("nested/a/b/c!=null", {3}),
        ("empty!=null", {10}),
    ],
    "numbers-and-booleans": [
        ("count=5", {1, 4}),
        ("5=count", {1, 4}),
        ("count=0", {3}),
        ("count='5'", set()),  # numbers and strings never compare equal
        ("version='5'", {1}),
        ("version=5", {6}),
        ("version=[5, '5']", {1, 6}),
        ("count=[5,100]", {1, 4, 5}),
        ("count>5", {2, 5}),
        ("count>=5", {1, 2, 4, 5}),
        ("count<5", {3, 7}),
        ("count<=0", {3, 7}),
        ("5<count", {2, 5}),  # flipped: count>5
        ("5>=count", {1, 3, 4, 7}),  # flipped: count<=5
        ("ratio<1", {1}),
        ("ratio>1", {7}),
        ("count>'5'", set()),  # a string bound compares strings only
        ("num-str>'1'", {10}),
        ("num-str>1", set()),
        ("enabled=true", {1, 5}),
        ("enabled=false", {2}),
        ("true=enabled", {1, 5}),
        ("flag=true", set()),  # the string 'true' is not the boolean
        ("flag='true'", {10}),
        ("enabled='true'", set()),
    ],
    "strings-ordered": [
        ("name>'Theta'", {3, 6, 7, 9}),  # byte order: lowercase after uppercase
        ("name>='Theta'", {3, 6, 7, 8, 9}),
        ("name<'B'", {1}),
        ("name<='Beta Two'", {1, 2}),
        ("'B'>name", {1}),
        ("description>'Z'", {2, 4}),  # 'Ü' (U+00DC) sorts after 'Z' in UTF-8 byte order too
        ("name>'zeta_underscore'", set()),
        ("code<'50%x'", {2}),
    ],
    "dates": [
        ("created>2019-01-01", {2, 3, 4, 5, 6, 7, 8, 10}),
        ("created>=2019-01-01", {1, 2, 3, 4, 5, 6, 7, 8, 10}),
        ("created>2019-01-01T00:00:00Z", {2, 3, 4, 5, 6, 7, 8, 10}),
        ("created>'2019-01-01'", {2, 3, 4, 5, 6, 7, 8, 10}),
        ("created<2019-06-15T12:30:00Z", {1, 9, 10}),
        ("created<=2019-06-15T12:30:00Z", {1, 2, 9, 10}),
        ("created<='2019-06-15T14:30:00+02:00'", {1, 2, 9, 10}),
        ("created<'2019-06-15T14:30:00.000+02:00'", {1, 9, 10}),
        ("created>'2020-02-29' and created<'2022-01-01'", {3, 4}),
        ("created>2020-02-29T23:59:59.998Z and created<2020-03-01", {3}),
        ("created<2019-01", {9}),
        ("created<2019-1", {9}),
        ("2019-06-15T12:30:00Z<created", {3, 4, 5, 6, 7, 8}),  # flipped
        ("created=2019-01-01T00:00:00Z", {1}),  # an unquoted date is normalised for '=' too
        ("created=2019-01-01", {1}),
        ("created='2019-01-01T00:00:00Z'", set()),  # a quoted string with '=' is compared as written
        ("created='2019-01-01T00:00:00.000Z'", {1}),
        ("created=[2019-01-01, 2018-01-01T00:00:00Z]", {1, 9}),
        # date math, relative to NOW = 2024-06-02T10:00:00Z
        ("created>'now-1d'", set()),
        ("created>='now-1d'", {8}),
        ("created>'now-1d-1s'", {8}),
        ("created>'now-6M'", {7, 8}),
        ("created>='now-1d/d'", {8}),
        ("created>'now-1d/d'", set()),
        ("created<'now-1d/d'", _not(8)),
        ("created<='now-2d/d'", _not(8)),
        ("created<'now-5y'", {1, 9, 10}),
        ("created>'2024-01-01||-1d'", {7, 8}),
        ("'now-1d'<=created", {8}),
        ("created>'now'", set()),
        ("created<'now'", ALL),
    ],
    "prefix": [
        ("name^='Al'", {1}),
        ("'Al'^=name", {1}),
        ("name^='Alpha One'", {1}),
        ("name^='Alpha One '", set()),
        ("name^='al'", set()),  # case-sensitive (SQLite's LIKE would not be)
        ("name^='a'", set()),
        ("code^='50%'", {2, 4}),  # % is literal
        ("code^='50%_'", {2}),  # so is _
        ("code^='50_'", {6}),
        ("code^='5'", {2, 4, 6}),
        ("name^='Dé'", {4}),
        ("name^='D'", {4}),
        ("path^='C:\\\\te'", {2}),  # an escaped backslash
        ("path^='C:\\te'", {2}),  # an unknown escape is kept as written
        ("path^='C:\\\\x'", set()),
        ("pfx^='ab\U0010ffff'", {9}),  # the last character has no successor
        ("pfx^='ab'", {9}),
        ("name^=''", ALL),  # every document with a (string) name
        ("tags^='r'", {1, 4, 5}),
        ("tags^='bl'", {1, 5}),
        ("created^='2019-'", {1, 2, 10}),
        ("count^='5'", set()),  # numbers are not strings
        ("sql^='\\'; DROP'", {7}),
    ],
    "fulltext": [
        ("name=='alpha'", {1}),
        ("name=='ALPHA one'", {1}),
        ("name=='one alpha'", {1}),  # every word, in any order
        ("name=='alpha two'", set()),
        ("name=='ph'", {1}),  # words are substrings
        ("name=='alph*'", {1}),  # as Nuvla's UI sends it
        ("name=='  alpha   '", {1}),
        ("'alpha'==name", {1}),
        ("description=='50%'", {2}),
        ("description=='thing%'", set()),  # % is literal, not a wildcard
        ("description=='f_s'", {2}),
        ("description=='f_x'", set()),  # _ is literal
        ("description=='straße'", {4}),
        ("description=='ÜBER'", {4}),
        ("description=='über'", set()),  # only ASCII letters fold case
        ("description=='xxxx'", set()),  # 6's description is too long to be indexed
        ("tags=='re'", {1, 2, 4, 5}),  # any element (g*re*en too)
        ("tags=='gre blu'", set()),  # ... each word in some element: different documents here
        ("tags=='red blue'", {1, 5}),
        ("fulltext=='first'", {1}),  # the virtual field: name and description
        ("fulltext=='alpha first'", {1}),
        ("fulltext=='thing'", {1, 2}),
        ("fulltext=='theta*'", {8}),
        ("fulltext=='STARTED'", set()),  # state is not a full-text field
        ("name==''", ALL),
        ("name=='*'", ALL),
        ("missing=='x'", set()),
        ("name=='" + "a" * 1100 + "'", set()),  # longer than any indexed string
        ("sql=='drop table'", {7}),
        ("sql=='\\'; drop'", {7}),
    ],
    "logic": [
        ("state='STARTED' and count=5", {1}),
        ("state='STARTED' or count=5", {1, 3, 4, 6}),
        ("state='STARTED' and (count=5 or count=0)", {1, 3}),
        ("state='STARTED' and count=5 or enabled=false", {1, 2}),  # and binds tighter
        ("enabled=false or state='STARTED' and count=5", {1, 2}),
        ("(state='STARTED' or enabled=false) and tags='red'", {1}),
        ("(state='STARTED' or enabled=false) and (tags='red' or tags='green')", {1, 2}),
        ("state!='STARTED' and state!=null", {2, 4}),
        ("(count>0 and count<100) or name^='Th'", {1, 2, 4, 8}),
        ("((((state='ERROR'))))", {4}),
        ("state='STARTED' and state='STOPPED'", set()),
        ("state='STARTED' or state!='STARTED'", ALL),
    ],
    "hostile-values": [
        ("name='x\\' or 1=1 --'", set()),
        ("name='x\" or \"1\"=\"1'", set()),
        ("name='Robert\\'); DROP TABLE attrs;--'", set()),
        ("name^='%'", set()),
        ("name^='_'", set()),
        ("name=='%'", set()),
        ("name=='_'", {6}),  # a literal underscore: zeta_underscore
        ("name=='\\\\'", set()),
        ("name>=':type'", ALL),
        ("name=':f0'", set()),
        ("state=':type' or name=':f1'", set()),
        ("name='%s' or name='%(f0)s' or name='?'", set()),
        ("name='中文 🚀'", set()),
        ("name='\U0010ffff'", set()),
    ],
}


@pytest.fixture
def store(db_url):
    engine = sa.create_engine(db_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for doc in DOCS:
            rtype = doc["id"].split("/")[0]
            full = {**doc, "resource-type": rtype}
            key = conn.execute(resources.insert().returning(resources.c.key),
                               {"id": doc["id"], "type": rtype, "created": doc["created"],
                                "updated": doc["created"], "doc": json.dumps(full)}).scalar_one()
            conn.execute(attrs.insert(), [{"key": key, "type": rtype, "path": p, "k": k, "s": s, "n": n}
                                          for p, k, s, n in flatten(full)])
    yield engine
    engine.dispose()


def _counts(conn) -> tuple[int, int]:
    return (conn.execute(sa.text("SELECT count(*) FROM resources")).scalar(),
            conn.execute(sa.text("SELECT count(*) FROM attrs")).scalar())


def _search(conn, node, rtype: str = "thing") -> set[int]:
    sql, params = compile_filter(node, conn.dialect.name, now=NOW)
    assert all(re.fullmatch(r"f\d+", k) for k in params)
    rows = conn.execute(sa.text(f"SELECT r.id FROM resources r WHERE r.type = :type AND ({sql})"),
                        {"type": rtype, **params})
    return {int(rid.split("/")[1]) for (rid,) in rows}


@pytest.mark.parametrize("topic", list(CASES))
def test_matches(store, topic, subtests):
    with store.connect() as conn:
        before = _counts(conn)
        for text, expected in CASES[topic]:
            with subtests.test(filter=text[:80]):
                assert _search(conn, parse(text)) == expected
        assert _counts(conn) == before


def test_values_are_bound_not_interpolated(store):
    hostile = "'; DROP TABLE resources; --"
    node = Comp(("name",), "=", Value("string", hostile))
    for dialect in ("sqlite", "postgresql"):
        for op in ("=", "!=", "^=", "==", ">"):
            sql, params = compile_filter(Comp(("name",), op, Value("string", hostile)), dialect)
            assert "DROP" not in sql.upper() and ";" not in sql and "--" not in sql
            assert any("drop" in str(v).lower() for v in params.values())
    # the path, too, is a parameter
    sql, params = compile_filter(Comp(("x') OR 1=1 --",), "=", Value("int", 1)), "sqlite")
    assert "OR 1=1" not in sql and "x') OR 1=1 --" in params.values()
    with store.connect() as conn:
        before = _counts(conn)
        assert _search(conn, node) == set()
        assert _search(conn, Comp(("x') OR 1=1 --",), "=", Value("int", 1))) == set()
        assert _counts(conn) == before


def test_type_is_respected(store):
    with store.connect() as conn:
        assert _search(conn, parse("name='Alpha One'"), "other") == {1}
        assert _search(conn, parse("tags='red' and count=5"), "other") == {1}
        assert _search(conn, parse("state!='STARTED'"), "other") == set()
        assert _search(conn, parse("description=null"), "other") == {1}


def test_limits_execute(store):
    """The biggest filters the parser lets through run on both databases."""
    with store.connect() as conn:
        many = " or ".join(f"count={i}" for i in range(f.MAX_COMPARISONS))
        assert _search(conn, parse(many)) == {1, 2, 3, 4, 5}
        ids = ", ".join(f"'thing/{i}'" for i in range(f.MAX_LIST))
        assert _search(conn, parse(f"id=[{ids}]")) == ALL
        deep = "name='gamma'"
        for i in range(f.MAX_DEPTH):
            deep = f"(name!=null and {deep})" if i % 2 else f"(missing=1 or {deep})"
        assert _search(conn, parse(deep)) == {3}
        # right-deep nesting (the costliest shape for SQLite's parser) just below the CTE form, heavy leaves
        heavy = "name!=null"
        for i in range(SQLITE_MAX_NESTING):
            leaf = ["tags=['x', 1]", "missing=null", "name=='a b c'", "tags!=['red', 5]"][i % 4]
            heavy = f"({leaf} {'or' if i % 2 else 'and'} {heavy})"
        assert _search(conn, parse(heavy)) == _not(1, 4, 5)
        texts = " or ".join(f"name=='w{i}' or name^='p{i}' or created>'now-{i}d'" for i in range(160))
        assert _search(conn, parse(texts)) == {7, 8}


def _random_filter(rng: random.Random, depth: int, pool: list[tuple[str, set[int]]]) -> tuple[str, set[int]]:
    """A filter nesting ``depth`` and/or levels (alternating, so none collapse), built from cases with known
    results, and its result. Siblings of an ``and`` match much, of an ``or`` little, so results stay varied."""
    if depth == 0:
        return rng.choice(pool)
    op = "and" if depth % 2 else "or"
    wide = [case for case in pool if len(case[1]) >= 6]
    narrow = [case for case in pool if len(case[1]) <= 3]
    items = [_random_filter(rng, depth - 1, pool)]
    for _ in range(rng.randint(1, 2)):
        items.append(rng.choice(wide if op == "and" else narrow))
    rng.shuffle(items)
    text = f" {op} ".join(f"({t})" for t, _ in items)
    result = set.intersection(*(r for _, r in items)) if op == "and" else set.union(*(r for _, r in items))
    return text, result


def test_nested_filters_compose(store, subtests):
    """Deep and/or nesting, up to the parser's limit, against set algebra over cases with known results (on
    SQLite, past SQLITE_MAX_NESTING levels, this exercises the CTE form)."""
    pool = [case for topic in ("equality", "arrays", "not-equal", "null", "numbers-and-booleans", "dates")
            for case in CASES[topic]]
    rng = random.Random(7)
    with store.connect() as conn:
        for depth in (1, 2, 3, 5, 8, SQLITE_MAX_NESTING, SQLITE_MAX_NESTING + 1, 30, f.MAX_DEPTH - 1):
            for attempt in range(6):
                text, expected = _random_filter(rng, depth, pool)
                try:
                    node = parse(text)
                except FilterError as e:  # only the comparison limit may refuse a random filter
                    assert "comparisons" in e.message
                    continue
                with subtests.test(depth=depth, attempt=attempt):
                    assert _search(conn, node) == expected, text


def test_sqlite_flattens_deep_filters():
    shallow = parse("(a=1 or (b=2 and c=3))")
    assert "WITH" not in compile_filter(shallow, "sqlite")[0]
    deep = "a=1"
    for i in range(SQLITE_MAX_NESTING + 1):
        deep = f"(b=2 {'and' if i % 2 else 'or'} {deep})"
    assert compile_filter(parse(deep), "sqlite")[0].startswith("r.key IN (WITH n0 AS (SELECT c.key FROM resources c")
    assert "WITH" not in compile_filter(parse(deep), "postgresql")[0]


def test_geo_operators_are_refused():
    for op in ("intersects", "disjoint", "within", "contains"):
        with pytest.raises(FilterError, match=r"geo-spatial operators \(contains, disjoint, intersects, within\)"):
            compile_filter(parse(f"a=1 and loc {op} 'POINT(1 2)'"), "sqlite")


def test_compile_errors():
    with pytest.raises(ValueError, match="dialect"):
        compile_filter(parse("a=1"), "mysql")
    for node in [
        Comp(("a",), "<", Value("bool", True)),
        Comp(("a",), "^=", Value("int", 1)),
        Comp(("a",), "==", Value("null", None)),
        Comp(("a",), "=", Value("list", (Value("bool", True),))),
        Comp(("a",), "~", Value("string", "x")),
    ]:
        with pytest.raises(FilterError):
            compile_filter(node, "postgresql")


def test_compiled_sql_shape():
    sql, params = compile_filter(parse("a='x' and (b=1 or c=null)"), "sqlite")
    assert sql == (
        "(r.key IN (SELECT a.key FROM attrs a WHERE a.type = :type AND a.path = :f0 AND a.k = 's' AND a.s = :f1)"
        " AND (r.key IN (SELECT a.key FROM attrs a WHERE a.type = :type AND a.path = :f2 AND a.n = :f3)"
        " OR r.key NOT IN (SELECT a.key FROM attrs a WHERE a.type = :type"
        " AND (a.path = :f4 OR (a.path > :f5 AND a.path < :f6)))))"
    )
    assert params == {"f0": "a", "f1": "x", "f2": "b", "f3": 1.0, "f4": "c", "f5": "c/", "f6": "c0"}
    assert compile_filter(And(()), "sqlite") == ("1 = 1", {})
    assert compile_filter(Or(()), "sqlite") == ("1 = 0", {})


def test_date_math_defaults_to_the_clock():
    sql, params = compile_filter(parse("created>'now-1d'"), "sqlite")
    bound = params["f1"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", bound)
    assert bound < datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.999Z")


@pytest.mark.parametrize(("prefix", "successor"), [
    ("a", "b"),
    ("ab", "ac"),
    ("a\U0010ffff", "b"),
    ("\U0010ffff", None),
    ("", None),
    ("\ud7ff", "\ue000"),
    ("50%_", "50%`"),
])
def test_prefix_successor(prefix, successor):
    assert prefix_successor(prefix) == successor
