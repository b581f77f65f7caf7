"""Bad requests get Nuvla's 4xx answer, store nothing, and leave the server answering.

Each case is one request against a live server (SQLite and PostgreSQL) with the exact status and message
(or its fixed prefix) the caller gets; around each, the document counts the admin sees must not move.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..conftest import ADMIN_PASSWORD
from .helpers import COOKIE, DOC_TYPE, KEY_TEMPLATE, Caller, admin, anonymous, error_of, make_user

LIMIT = 8 * 1024 * 1024
SCHEMA_RE = re.compile(r"^resource (infrastructure-service-group/[0-9a-f-]{36}) "
                       r"does not satisfy defined schema:\n")
COUNTED = (DOC_TYPE, "credential", "group", "user")


@pytest.fixture(scope="module")
def root(live_server) -> Caller:
    return admin(live_server)


@pytest.fixture(scope="module")
def user(live_server, root) -> Caller:
    caller = make_user(live_server, root)
    caller.doc = caller.new_doc(name="target", tags=["bad-input"])  # type: ignore[attr-defined]
    return caller


def snapshot(root: Caller) -> dict[str, int]:
    return {rtype: root.count(rtype) for rtype in COUNTED}


@pytest.fixture
def unchanged(root, user) -> Iterator[None]:
    """Nothing is stored by the test's request, the target document is intact, the server still answers."""
    before, doc = snapshot(root), root.get(user.doc).json()
    yield
    assert snapshot(root) == before
    assert root.get(user.doc).json() == doc
    assert root.get("cloud-entry-point").status_code == 200
    assert user.get(user.doc).status_code == 200


@dataclass
class Case:
    id: str
    method: str
    path: str  # {doc} and {session} are filled in from the user fixture
    status: int
    message: str  # exact, or a prefix when it ends with "…"
    kwargs: dict[str, Any] = field(default_factory=dict)
    caller: str = "user"  # or "anon"

    def run(self, user: Caller, anon: Caller) -> Any:
        path = self.path.format(doc=user.doc, session=user.session_id)
        who = anon if self.caller == "anon" else user
        # a generator body is made afresh for each run (the cases run once per backend)
        kwargs = {k: v() if callable(v) else v for k, v in self.kwargs.items()}
        return who.request(self.method, path, **kwargs)


JSON_CT = {"content-type": "application/json"}
PATCH_CT = {"content-type": "application/json-patch+json"}
FORM_CT = {"content-type": "application/x-www-form-urlencoded"}


def raw(body: bytes, **headers: str) -> dict[str, Any]:
    return {"content": body, "headers": {**JSON_CT, **headers}}


def too_big_chunks() -> Iterator[bytes]:
    """More than the limit, sent chunked (no Content-Length to refuse up front)."""
    yield b'{"name": "'
    for _ in range(9):
        yield b"x" * (1024 * 1024)
    yield b'"}'


BOMB = gzip.compress(b'{"name": "' + b" " * (LIMIT + 1024) + b'"}', compresslevel=9)
GOOD_GZIP = gzip.compress(b'{"name": "zipped"}')

NOT_AN_OBJECT = "the request body must be a JSON object"
MALFORMED = "malformed JSON in request body: …"
NUL = "malformed JSON in request body: strings must not contain NUL (\\u0000)"

BODY_CASES = [
    Case("malformed-json", "POST", DOC_TYPE, 400, MALFORMED, raw(b'{"name": "x",')),
    Case("not-utf8", "POST", DOC_TYPE, 400, MALFORMED, raw(b'\xff\xfe{"name": "x"}')),
    Case("deep-nesting", "POST", DOC_TYPE, 400, "malformed JSON in request body: nested too deeply",
         raw(b"[" * 100000)),
    Case("deep-nesting-object", "POST", DOC_TYPE, 400, "malformed JSON in request body: nested too deeply",
         raw(b'{"a":' * 100000)),
    Case("huge-integer", "POST", DOC_TYPE, 400, MALFORMED, raw(b'{"name": ' + b"9" * 5000 + b"}")),
    Case("array-body", "POST", DOC_TYPE, 400, NOT_AN_OBJECT, {"json": [{"name": "x"}]}),
    Case("number-body", "POST", DOC_TYPE, 400, NOT_AN_OBJECT, {"json": 5}),
    Case("string-body", "POST", DOC_TYPE, 400, NOT_AN_OBJECT, {"json": "name"}),
    Case("null-body", "POST", DOC_TYPE, 400, NOT_AN_OBJECT, raw(b"null")),
    Case("empty-body", "POST", DOC_TYPE, 400, NOT_AN_OBJECT, raw(b"")),
    Case("form-body-on-plain-type", "POST", DOC_TYPE, 400,
         "infrastructure-service-group is not created from a template",
         {"content": b"name=x", "headers": FORM_CT}),
    Case("too-large", "POST", DOC_TYPE, 413,
         f"request body of {LIMIT + 13} bytes exceeds the limit of {LIMIT} bytes",
         raw(b'{"name": "' + b"x" * (LIMIT + 1) + b'"}')),
    Case("too-large-chunked", "POST", DOC_TYPE, 413, f"request body exceeds the limit of {LIMIT} bytes",
         {"content": too_big_chunks, "headers": JSON_CT}),
    Case("gzip-bomb", "POST", DOC_TYPE, 413, f"request body inflates beyond the limit of {LIMIT} bytes",
         raw(BOMB, **{"content-encoding": "gzip"})),
    Case("not-gzip", "POST", DOC_TYPE, 400, "request body is not valid gzip: …",
         raw(b'{"name": "x"}', **{"content-encoding": "gzip"})),
    Case("truncated-gzip", "POST", DOC_TYPE, 400, "request body is not valid gzip: …",
         raw(GOOD_GZIP[:-8], **{"content-encoding": "gzip"})),
    Case("nul-in-value", "POST", DOC_TYPE, 400, NUL, {"json": {"name": "a\x00b"}}),
    Case("nul-in-key", "POST", DOC_TYPE, 400, NUL, {"json": {"name": "x", "tags\x00": ["a"]}}),
    Case("nul-in-edit", "PUT", "{doc}", 400, NUL, {"json": {"tags": ["ok", "not\x00ok"]}}),
    Case("nul-in-login", "POST", "session", 400, NUL,
         {"json": {"template": {"href": "session-template/password", "username": "admin\x00", "password": "x"}}},
         "anon"),
    Case("too-large-on-edit", "PUT", "{doc}", 413,
         f"request body of {LIMIT + 13} bytes exceeds the limit of {LIMIT} bytes",
         raw(b'{"name": "' + b"x" * (LIMIT + 1) + b'"}')),
    Case("gzip-bomb-on-action", "POST", "{session}/get-groups", 413,
         f"request body inflates beyond the limit of {LIMIT} bytes", raw(BOMB, **{"content-encoding": "gzip"})),
    Case("gzip-bomb-on-search", "PUT", DOC_TYPE, 413, f"request body inflates beyond the limit of {LIMIT} bytes",
         {"content": gzip.compress(b"filter=" + b"x" * (LIMIT + 10)),
          "headers": {**FORM_CT, "content-encoding": "gzip"}}),
    Case("too-large-login", "POST", "session", 413,
         f"request body of {LIMIT + 13} bytes exceeds the limit of {LIMIT} bytes",
         raw(b'{"name": "' + b"x" * (LIMIT + 1) + b'"}'), caller="anon"),
]


def schema_case(id: str, body: dict[str, Any], *problems: str) -> Case:
    return Case(id, "POST", DOC_TYPE, 400, "\n".join(problems), {"json": body})


SCHEMA_CASES = [
    schema_case("name-number", {"name": 5}, "attribute 'name' must be a string"),
    schema_case("name-blank", {"name": "  "}, "attribute 'name' must not be blank"),
    schema_case("description-number", {"description": 5}, "attribute 'description' must be a string"),
    schema_case("tags-string", {"tags": "x"}, "attribute 'tags' must be a list"),
    schema_case("tags-numbers", {"tags": [1]}, "attribute 'tags' element 0 must be a string"),
    schema_case("tags-repeated", {"tags": ["a", "a"]}, "attribute 'tags' must not repeat elements"),
    schema_case("documentation-not-url", {"documentation": "ftp://x"},
                "attribute 'documentation' must match ^https?://"),
    schema_case("parent-not-an-id", {"parent": "not an id"},
                "attribute 'parent' must be a resource id like type/uuid"),
    schema_case("unknown-attribute", {"name": "x", "bogus": 1}, "unknown attribute 'bogus'"),
    schema_case("several-problems", {"name": 5, "bogus": 1, "tags": "x"},
                "attribute 'name' must be a string", "unknown attribute 'bogus'",
                "attribute 'tags' must be a list"),
    schema_case("acl-not-a-map", {"acl": "user/x"}, "attribute 'acl' must be a map of rights to principals"),
    schema_case("acl-empty", {"acl": {}}, "attribute 'acl' must name at least one owner"),
    schema_case("acl-no-owners", {"acl": {"owners": []}}, "attribute 'acl' must name at least one owner"),
    schema_case("acl-rights-but-no-owners", {"acl": {"view-data": ["group/nuvla-user"]}},
                "attribute 'acl' must name at least one owner"),
    schema_case("acl-unknown-right", {"acl": {"owners": ["group/nuvla-admin"], "frobnicate": ["user/x"]}},
                "attribute 'acl' has unknown rights: frobnicate"),
    schema_case("acl-malformed-principal", {"acl": {"owners": ["Not A Principal"]}},
                "attribute 'acl' element 0 must match ^[a-z-]+/[a-z0-9-]+$"),
    schema_case("acl-principal-number", {"acl": {"owners": [5]}}, "attribute 'acl' element 0 must be a string"),
    schema_case("acl-owners-not-a-list", {"acl": {"owners": "group/nuvla-admin"}},
                "attribute 'acl' must be a list"),
]


def edit_case(id: str, status: int, message: str, kwargs: dict[str, Any]) -> Case:
    return Case(id, "PUT", "{doc}", status, message, kwargs)


def edit_schema(problem: str) -> str:
    return "resource {doc} does not satisfy defined schema:\n" + problem


EDIT_CASES = [
    edit_case("edit-malformed-json", 400, MALFORMED, raw(b"{bad")),
    edit_case("edit-array-body", 400, NOT_AN_OBJECT, {"json": [{"name": "x"}]}),
    edit_case("edit-name-number", 400, edit_schema("attribute 'name' must be a string"), {"json": {"name": 5}}),
    edit_case("edit-unknown-attribute", 400, edit_schema("unknown attribute 'bogus'"), {"json": {"bogus": 1}}),
    edit_case("edit-acl-no-owners", 400, edit_schema("attribute 'acl' must name at least one owner"),
              {"json": {"acl": {"owners": []}}}),
    edit_case("edit-acl-unknown-right", 400, edit_schema("attribute 'acl' has unknown rights: frobnicate"),
              {"json": {"acl": {"owners": ["group/nuvla-admin"], "frobnicate": []}}}),
    edit_case("patch-not-a-list", 400, "a JSON patch must be a list of operations",
              {"json": {"op": "replace", "path": "/name", "value": "x"}, "headers": PATCH_CT}),
    edit_case("patch-empty-body", 400, "a JSON patch must be a list of operations",
              {"content": b"", "headers": PATCH_CT}),
    edit_case("patch-missing-path", 400, "invalid JSON patch: …",
              {"json": [{"op": "remove", "path": "/nope"}], "headers": PATCH_CT}),
    edit_case("patch-unknown-op", 400, "invalid JSON patch: …",
              {"json": [{"op": "bogus", "path": "/name"}], "headers": PATCH_CT}),
    edit_case("patch-to-invalid-doc", 400, edit_schema("attribute 'name' must be a string"),
              {"json": [{"op": "replace", "path": "/name", "value": 5}], "headers": PATCH_CT}),
]

TEMPLATE_CASES = [
    Case("credential-no-template", "POST", "credential", 400,
         "the request body needs a 'template' map with an 'href'",
         {"json": {"name": "k"}}),
    Case("credential-template-not-a-map", "POST", "credential", 400,
         "the request body needs a 'template' map with an 'href'", {"json": {"template": KEY_TEMPLATE}}),
    Case("credential-template-of-another-type", "POST", "credential", 400,
         "template 'href' must be the id of a credential-template",
         {"json": {"template": {"href": "session-template/password"}}}),
    Case("credential-unknown-template", "POST", "credential", 400,
         "requested href not found: credential-template/bogus",
         {"json": {"template": {"href": "credential-template/bogus"}}}),
    Case("credential-ttl-string", "POST", "credential", 400, "template attribute 'ttl' must be an integer",
         {"json": {"template": {"href": KEY_TEMPLATE, "ttl": "60"}}}),
    Case("credential-ttl-negative", "POST", "credential", 400, "template attribute 'ttl' must be at least 0",
         {"json": {"template": {"href": KEY_TEMPLATE, "ttl": -1}}}),
    Case("session-unknown-template", "POST", "session", 400, "requested href not found: session-template/bogus",
         {"json": {"template": {"href": "session-template/bogus", "username": "a", "password": "b"}}}, "anon"),
    Case("session-username-not-a-string", "POST", "session", 400,
         "a password login needs 'username' and 'password'",
         {"json": {"template": {"href": "session-template/password", "username": 5, "password": "x"}}}, "anon"),
    Case("session-key-missing", "POST", "session", 400, "an API key login needs 'key' and 'secret'",
         {"json": {"template": {"href": "session-template/api-key", "key": "", "secret": "x"}}}, "anon"),
    Case("session-form-without-href", "POST", "session", 400,
         "template 'href' must be the id of a session-template",
         {"content": b"username=admin&password=x", "headers": FORM_CT}, "anon"),
    Case("group-bad-identifier", "POST", "group", 400,
         "template attribute 'group-identifier' must be lowercase letters, digits and single dashes",
         {"json": {"template": {"href": "group-template/generic", "group-identifier": "Not Kebab"}}}),
    Case("user-add-needs-admin", "POST", "user", 403, "credentials required",
         {"json": {"template": {"href": "user-template/username-password", "username": "x",
                                "password": "12345678"}}}),
]

GROUP_TEMPLATE = "group-template/generic"


def group_case(id: str, body: dict[str, Any], problem: str) -> Case:
    """Groups derive their ACL from their members before validation: a malformed one must still be a 400."""
    ident = f"bad-{id}"
    return Case(id, "POST", "group", 400,
                f"resource group/{ident} does not satisfy defined schema:\n{problem}",
                {"json": {"template": {"href": GROUP_TEMPLATE, "group-identifier": ident}, **body}})


GROUP_CASES = [
    group_case("group-acl-string", {"acl": "x"}, "attribute 'acl' must be a map of rights to principals"),
    group_case("group-acl-list", {"acl": ["group/nuvla-user"]},
               "attribute 'acl' must be a map of rights to principals"),
    group_case("group-acl-right-not-a-list", {"acl": {"owners": ["group/nuvla-admin"], "view-data": 5}},
               "attribute 'acl' must be a list"),
    group_case("group-acl-principal-number", {"acl": {"owners": ["group/nuvla-admin"], "view-data": [5]}},
               "attribute 'acl' element 0 must be a string"),
    group_case("group-users-string", {"users": "user/x"}, "attribute 'users' must be a list"),
    group_case("group-users-mixed", {"users": [5, "user/x"]},
               "attribute 'users' element 0 must be a resource id like type/uuid"),
]


ROUTE_CASES = [
    Case("unknown-type-search", "GET", "no-such-type", 404, "unknown resource"),
    Case("unknown-type-add", "POST", "no-such-type", 404, "unknown resource", {"json": {"name": "x"}}),
    Case("unknown-type-form-search", "PUT", "no-such-type", 404, "unknown resource",
         {"content": b"last=0", "headers": FORM_CT}),
    Case("unknown-type-bulk-delete", "DELETE", "no-such-type", 404, "unknown resource",
         {"params": {"filter": "name='x'"}, "headers": {"bulk": "yes"}}),
    Case("unknown-type-get", "GET", "no-such-type/abc", 404, "unknown resource"),
    Case("unknown-type-action", "POST", "no-such-type/abc/start", 404, "unknown resource"),
    Case("unknown-type-anonymous", "GET", "no-such-type", 404, "unknown resource", caller="anon"),
    Case("type-names-are-case-sensitive", "GET", "Session", 404, "unknown resource"),
    Case("too-many-segments", "GET", "session/abc/get-groups/more", 404, "unknown resource"),
    Case("unknown-action", "POST", "{doc}/frobnicate", 404,
         "undefined action (post, [infrastructure-service-group frobnicate]) for /api/{doc}/frobnicate"),
    Case("action-by-get", "GET", "{doc}/frobnicate", 405,
         "invalid method (get) for /api/{doc}/frobnicate: actions need POST"),
    Case("unknown-action-on-missing-doc", "POST", f"{DOC_TYPE}/missing/frobnicate", 404,
         f"undefined action (post, [{DOC_TYPE} frobnicate]) for /api/{DOC_TYPE}/missing/frobnicate"),
    Case("unknown-session-action", "POST", "{session}/frobnicate", 404,
         "undefined action (post, [session frobnicate]) for /api/{session}/frobnicate"),
    Case("patch-a-document", "PATCH", "{doc}", 405, "invalid method (patch) for /api/{doc}",
         {"json": {"name": "x"}}),
    Case("post-to-a-document", "POST", "{doc}", 405, "invalid method (post) for /api/{doc}",
         {"json": {"name": "x"}}),
    Case("patch-a-collection", "PATCH", DOC_TYPE, 405, f"invalid method (patch) for /api/{DOC_TYPE}",
         {"json": {"filter": "name='x'"}, "headers": {"bulk": "yes"}}),
    Case("post-to-cloud-entry-point", "POST", "cloud-entry-point", 405,
         "invalid method (post) for /api/cloud-entry-point", {"json": {}}),
    Case("delete-cloud-entry-point", "DELETE", "cloud-entry-point", 405,
         "invalid method (delete) for /api/cloud-entry-point"),
    Case("bulk-delete-without-header", "DELETE", DOC_TYPE, 400, "Bulk request should contain bulk http header.",
         {"params": {"filter": "tags='bad-input'"}}),
    Case("bulk-delete-without-filter", "DELETE", DOC_TYPE, 400,
         "Bulk request should contain a non empty cimi filter.", {"headers": {"bulk": "yes"}}),
    Case("bulk-delete-blank-filter", "DELETE", DOC_TYPE, 400,
         "Bulk request should contain a non empty cimi filter.",
         {"params": {"filter": "  "}, "headers": {"bulk": "yes"}}),
    Case("bulk-delete-invalid-filter", "DELETE", DOC_TYPE, 400, "Invalid CIMI filter. …",
         {"params": {"filter": "tags='bad-input' or"}, "headers": {"bulk": "yes"}}),
    Case("bulk-delete-invalid-filter-in-form", "DELETE", DOC_TYPE, 400, "Invalid CIMI filter. …",
         {"content": b"filter=tags%3D%27bad-input%27+or", "headers": {**FORM_CT, "bulk": "yes"}}),
    Case("bulk-delete-without-the-right", "DELETE", "credential", 403, "credentials required",
         {"params": {"filter": "name='x'"}, "headers": {"bulk": "yes"}}),
    Case("action-body-not-an-object", "POST", "{session}/switch-group", 400, NOT_AN_OBJECT, {"json": [1]}),
    Case("action-malformed-json", "POST", "{session}/switch-group", 400, MALFORMED, raw(b"{bad")),
    Case("action-missing-parameter", "POST", "{session}/switch-group", 400,
         "switch-group needs 'claim': a group id or your own user id", {"json": {}}),
]


def search_case(id: str, params: dict[str, str], message: str) -> list[Case]:
    """The same bad parameters in the query string (GET) and in a form body (PUT, as the python client)."""
    return [Case(id, "GET", DOC_TYPE, 400, message, {"params": params}),
            Case(id + "-form", "PUT", DOC_TYPE, 400, message, {"data": params})]


SEARCH_CASES = [
    *search_case("first-not-a-number", {"first": "abc"},
                 "parameter 'first' must be a non-negative integer, not 'abc'"),
    *search_case("first-negative", {"first": "-1"}, "parameter 'first' must be a non-negative integer, not '-1'"),
    *search_case("first-too-big", {"first": "99999999999"},
                 "parameter 'first' must be a non-negative integer, not '99999999999'"),
    *search_case("last-not-a-number", {"last": "x"}, "parameter 'last' must be a non-negative integer, not 'x'"),
    *search_case("window-too-large", {"first": "1", "last": "10001"},
                 "first and last ask for results beyond 10000; narrow the filter or page"),
    *search_case("orderby-direction", {"orderby": "name:sideways"},
                 "parameter 'orderby' direction must be asc or desc, not 'sideways'"),
    *search_case("orderby-attribute", {"orderby": "!!"}, "parameter 'orderby' names an invalid attribute: '!!'"),
    *search_case("orderby-empty-attribute", {"orderby": ":desc"},
                 "parameter 'orderby' names an invalid attribute: ''"),
    *search_case("aggregation-algorithm", {"aggregation": "bogus:name"},
                 "parameter 'aggregation': unsupported algorithm 'bogus'; …"),
    *search_case("aggregation-without-attribute", {"aggregation": "terms"},
                 "parameter 'aggregation' names an invalid attribute: ''"),
    *search_case("select-attribute", {"select": "name,!!"}, "parameter 'select' names an invalid attribute: '!!'"),
    *search_case("filter-dangling-and", {"filter": "name='x' and"}, "Invalid CIMI filter. …"),
    *search_case("filter-no-value", {"filter": "name="}, "Invalid CIMI filter. …"),
    *search_case("filter-unbalanced", {"filter": "(name='x'"}, "Invalid CIMI filter. …"),
    *search_case("filter-unquoted-word", {"filter": "name=x"}, "Invalid CIMI filter. …"),
    *search_case("filter-unknown-operator", {"filter": "name~'x'"}, "Invalid CIMI filter. …"),
    *search_case("filter-bad-date", {"filter": "created>2019-13-45"}, "Invalid CIMI filter. …"),
    *search_case("filter-nul", {"filter": "name='\x00'"}, "Invalid CIMI filter. …"),
    Case("filter-too-deep", "PUT", DOC_TYPE, 400, "Invalid CIMI filter. …",
         {"data": {"filter": "(" * 5000 + "name='x'" + ")" * 5000}}),
    Case("filter-too-long", "PUT", DOC_TYPE, 400, "Invalid CIMI filter. …",
         {"data": {"filter": " or ".join(f"name='{i}'" for i in range(5000))}}),
    Case("search-form-not-utf8", "PUT", DOC_TYPE, 400, "malformed form body: …",
         {"content": b"filter=\xff", "headers": FORM_CT}),
]

ALL_CASES = (BODY_CASES + SCHEMA_CASES + EDIT_CASES + TEMPLATE_CASES + GROUP_CASES + ROUTE_CASES
             + SEARCH_CASES)


def check(case: Case, resp: Any, user: Caller) -> None:
    status, message = error_of(resp)
    assert status == case.status, resp.text[:500]
    if case in SCHEMA_CASES:
        match = SCHEMA_RE.match(message)
        assert match, message
        assert message[match.end():] == case.message
        assert resp.json()["resource-id"] == match.group(1)
        return
    expected = case.message.format(doc=user.doc, session=user.session_id)
    if expected.endswith("…"):
        assert message.startswith(expected[:-1]) and len(message) > len(expected), message
    else:
        assert message == expected


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_request_is_refused_and_stores_nothing(case, live_server, user, unchanged):
    resp = case.run(user, anonymous(live_server))
    check(case, resp, user)


def test_bad_filter_on_bulk_delete_deletes_nothing(user, root, unchanged):
    """The bulk-delete cases above use filters that would match the user's document if they parsed."""
    assert user.count(DOC_TYPE, "tags='bad-input'") == 1


def test_good_gzip_and_bodies_under_the_limit_are_read(user, root):
    before = root.count(DOC_TYPE)
    resp = user.post(DOC_TYPE, content=GOOD_GZIP, headers={**JSON_CT, "content-encoding": "gzip"})
    assert resp.status_code == 201, resp.text
    rid = resp.json()["resource-id"]
    assert user.get(rid).json()["name"] == "zipped"
    # just under the limit is accepted
    body = b'{"name": "big", "description": "' + b"d" * (LIMIT - 100) + b'"}'
    assert len(body) <= LIMIT
    big = user.post(DOC_TYPE, content=body, headers=JSON_CT)
    assert big.status_code == 400  # the description is longer than the schema allows
    assert "attribute 'description' must be at most 100000 characters" in big.json()["message"]
    # a backslash followed by u0000 is an ordinary string
    escaped = user.post(DOC_TYPE, json={"name": "a\\u0000b"})
    assert escaped.status_code == 201, escaped.text
    assert user.get(escaped.json()["resource-id"]).json()["name"] == "a\\u0000b"
    assert root.count(DOC_TYPE) == before + 2
    assert user.delete(rid).status_code == 200
    assert user.delete(escaped.json()["resource-id"]).status_code == 200


def test_garbage_cookies_are_anonymous_not_errors(live_server, root):
    for value in ("garbage", "abc.def", "a" * 4000 + ".x", "../../etc.passwd", ""):
        caller = anonymous(live_server)
        resp = caller.get("session", headers={"cookie": f"{COOKIE}={value}"})
        assert resp.status_code == 200, (value, resp.text)
        assert resp.json()["count"] == 0
        refused = caller.get(DOC_TYPE, headers={"cookie": f"{COOKIE}={value}"})
        assert error_of(refused) == (403, "credentials required")
    # a stale cookie does not get in the way of a new login
    stale = admin(live_server)
    old = stale.cookie
    assert stale.logout().status_code == 200
    fresh = Caller(live_server, cookie=old)
    assert fresh.login_password("admin", ADMIN_PASSWORD).status_code == 201
    assert fresh.current_session()["count"] == 1
