"""flatten: a document -> its attrs rows."""

from __future__ import annotations

import enum
import re

import pytest

from dockyard.store.attrs import flatten
from dockyard.store.schema import MAX_INDEXED_STRING


def s(path, v):
    return (path, "s", v, None)


def n(path, v):
    return (path, "n", None, float(v))


def b(path, v):
    return (path, "b", "true" if v else "false", None)


CASES = [
    ({}, []),
    ({"name": "x"}, [s("name", "x")]),
    ({"name": ""}, [s("name", "")]),
    ({"count": 3}, [n("count", 3)]),
    ({"ratio": 0.25}, [n("ratio", 0.25)]),
    ({"neg": -7}, [n("neg", -7)]),
    ({"big": 2**63 - 1}, [n("big", 2**63 - 1)]),
    ({"flag": True, "off": False}, [b("flag", True), b("off", False)]),
    ({"one": 1, "yes": True}, [n("one", 1), b("yes", True)]),  # bool is not a number
    ({"gone": None}, []),
    ({"acl": {"owners": ["group/nuvla-admin"], "view-acl": ["user/a", "user/b"]}},
     [s("acl/owners", "group/nuvla-admin"), s("acl/view-acl", "user/a"), s("acl/view-acl", "user/b")]),
    ({"module": {"href": "module/1"}}, [s("module/href", "module/1")]),
    ({"data:bucket": "b", "schema-org:x": {"ns:y": 1}}, [s("data:bucket", "b"), n("schema-org:x/ns:y", 1)]),
    ({"a": {"b": {"c": {"d": "deep"}}}}, [s("a/b/c/d", "deep")]),
    ({"tags": ["x", "y", "x"]}, [s("tags", "x"), s("tags", "y"), s("tags", "x")]),
    ({"mixed": ["x", 1, True, None, 2.5]}, [s("mixed", "x"), n("mixed", 1), b("mixed", True), n("mixed", 2.5)]),
    ({"tags": []}, []),
    ({"obj": {}}, []),
    ({"obj": {"x": None, "y": []}}, []),
    ({"nested": [["a", "b"], ["c"]]}, [s("nested", "a"), s("nested", "b"), s("nested", "c")]),
    ({"ports": [{"port": 80, "proto": "tcp"}, {"port": 443}]},
     [n("ports/port", 80), s("ports/proto", "tcp"), n("ports/port", 443)]),
    ({"envs": [{"name": "A", "opts": {"required": True}}]}, [s("envs/name", "A"), b("envs/opts/required", True)]),
    ({"tuple": ("x", "y")}, [s("tuple", "x"), s("tuple", "y")]),
    # strings longer than the indexed maximum are not indexed; at the maximum they are
    ({"long": "x" * (MAX_INDEXED_STRING + 1)}, []),
    ({"max": "x" * MAX_INDEXED_STRING}, [s("max", "x" * MAX_INDEXED_STRING)]),
    ({"uni": "é中🚀", "sql": "'; DROP TABLE attrs; --"}, [s("uni", "é中🚀"), s("sql", "'; DROP TABLE attrs; --")]),
    # numbers that cannot be compared are skipped
    ({"nan": float("nan"), "inf": float("inf"), "huge": 10**400, "ok": 1}, [n("ok", 1)]),
    # anything that is not JSON is skipped
    ({"obj": object(), "ok": "x"}, [s("ok", "x")]),
]


# ids without object addresses: every pytest-xdist worker must collect the same test names
@pytest.mark.parametrize(("doc", "rows"), CASES, ids=[re.sub(r" at 0x[0-9a-f]+", "", repr(d))[:50] for d, _ in CASES])
def test_flatten(doc, rows):
    assert flatten(doc) == rows


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


def test_flatten_subclasses_of_json_types():
    assert flatten({"c": Colour.RED, "s": Size.BIG}) == [("c", "s", "red", None), ("s", "n", None, 3.0)]
    rows = flatten({"c": Colour.RED})
    assert type(rows[0][2]) is str


EXCLUDE = [
    # (exclude, expected paths)
    ((), ["id", "content", "content/x", "module/content/docker", "module/href", "secret/key", "list/inner"]),
    (("content",), ["id", "content/x", "module/content/docker", "module/href", "secret/key", "list/inner"]),
    (("module/content",), ["id", "content", "content/x", "module/href", "secret/key", "list/inner"]),
    (("module",), ["id", "content", "content/x", "secret/key", "list/inner"]),
    (("secret", "list/inner"), ["id", "content", "content/x", "module/content/docker", "module/href"]),
    (("module/content/docker", "id"), ["content", "content/x", "module/href", "secret/key", "list/inner"]),
    (("nope", "module/con"), ["id", "content", "content/x", "module/content/docker", "module/href", "secret/key",
                              "list/inner"]),
    ({"secret"}, ["id", "content", "content/x", "module/content/docker", "module/href", "list/inner"]),
]


@pytest.mark.parametrize(("exclude", "paths"), EXCLUDE, ids=[repr(e) for e, _ in EXCLUDE])
def test_flatten_exclude(exclude, paths):
    doc = {
        "id": "thing/1",
        "content": "top",
        "module": {"content": {"docker": "compose"}, "href": "module/1"},
        "secret": {"key": "k"},
        "list": [{"inner": "a"}, {"inner": "b"}],
    }
    doc["content/x"] = "literal slash key"  # a key that contains a slash is just a longer path
    assert [p for p, *_ in flatten(doc, exclude)] == [
        p for p in ["id", "content", "module/content/docker", "module/href", "secret/key", "list/inner",
                    "list/inner", "content/x"] if p in paths
    ]


def test_flatten_does_not_modify_the_document():
    doc = {"a": {"b": [1, {"c": "x"}]}, "d": None}
    before = repr(doc)
    flatten(doc, ("a/b/c",))
    assert repr(doc) == before

