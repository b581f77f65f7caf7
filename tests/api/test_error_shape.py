"""Every answer is a JSON object, errors have exactly Nuvla's shape, and nothing is ever a 204 or empty.

The Python client calls ``response.json()`` on every answer below 400 and reads ``message`` from every
error (nuvla-api-client.md §2, §7), so an empty body, a 204, or an error without ``message`` breaks it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..conftest import ADMIN_PASSWORD
from .helpers import DOC_TYPE, KEY_TEMPLATE, Caller, admin, anonymous, make_user, new_group, unique
from .test_bad_input import ALL_CASES as BAD_INPUT_CASES

ERROR_KEYS = ({"status", "message"}, {"status", "message", "resource-id"})


def check_json_object(resp: httpx.Response) -> dict[str, Any]:
    where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
    assert resp.status_code != 204, where
    assert resp.headers.get("content-type") == "application/json", (where, resp.headers.get("content-type"))
    assert resp.content.strip(), where
    body = resp.json()
    assert isinstance(body, dict), where
    return body


def check_error(resp: httpx.Response) -> dict[str, Any]:
    where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
    assert resp.status_code >= 400, (where, resp.text[:300])
    body = check_json_object(resp)
    assert set(body) in ERROR_KEYS, (where, body)
    assert body["status"] == resp.status_code, (where, body)
    assert isinstance(body["message"], str) and body["message"].strip(), (where, body)
    if "resource-id" in body:
        assert isinstance(body["resource-id"], str) and body["resource-id"], (where, body)
    return body


def test_every_error_answer_has_nuvlas_shape(live_server):
    root = admin(live_server)
    user = make_user(live_server, root)
    other = make_user(live_server, root)
    anon = anonymous(live_server)
    user.doc = user.new_doc(name="target")  # type: ignore[attr-defined]  (read by the bad-input cases)
    theirs = other.new_doc(name="theirs")
    key, secret = other.new_key(ttl=1)
    group = new_group(user, [user.user_id])
    missing = f"{DOC_TYPE}/00000000-0000-4000-8000-000000000000"

    seen: dict[int, int] = {}

    def expect(resp: httpx.Response, status: int) -> None:
        assert resp.status_code == status, (resp.request.method, resp.request.url.path, resp.text[:300])
        check_error(resp)
        seen[status] = seen.get(status, 0) + 1

    # every bad-input case (bodies, schemas, templates, routes, methods, search parameters)
    for case in BAD_INPUT_CASES:
        expect(case.run(user, anon), case.status)

    # access control
    for resp in (user.get(theirs), user.put(theirs, json={"name": "x"}), user.delete(theirs),
                 user.put(theirs, json=[{"op": "replace", "path": "/name", "value": "x"}],
                          headers={"content-type": "application/json-patch+json"}),
                 user.get(other.session_id), user.post(f"{other.session_id}/get-groups"),
                 user.delete(other.user_id), anon.get(DOC_TYPE), anon.put(DOC_TYPE),
                 anon.post(DOC_TYPE, json={"name": "x"}), anon.get(theirs),
                 anon.get(DOC_TYPE, headers={"nuvla-authn-info": "group/nuvla-admin group/nuvla-admin"}),
                 user.post("user", json={"template": {"href": "user-template/username-password",
                                                      "username": unique("x"), "password": "long-enough"}}),
                 user.post(f"{user.session_id}/switch-group", json={"claim": "group/nuvla-admin"}),
                 user.post("group", json={"template": {"href": "group-template/generic",
                                                       "group-identifier": unique("g")},
                                          "parents": ["group/nuvla-admin"]})):
        expect(resp, 403)
    # failed logins
    expect(anon.login_password("admin", "wrong"), 403)
    expect(anon.login_password(unique("nobody"), "whatever"), 403)
    expect(anon.login_key(key, secret + "x"), 403)
    expect(anon.login_key("credential/00000000-0000-4000-8000-000000000000", secret), 403)
    time.sleep(1.5)
    expect(anon.login_key(key, secret), 403)  # expired
    # missing documents
    for resp in (user.get(missing), user.put(missing, json={"name": "x"}), user.delete(missing),
                 user.post("session/00000000-0000-4000-8000-000000000000/get-groups"),
                 root.get("user/00000000-0000-4000-8000-000000000000")):
        expect(resp, 404)
    # conflicts
    ident = group.split("/", 1)[1]
    expect(user.post("group", json={"template": {"href": "group-template/generic",
                                                 "group-identifier": ident}}), 409)
    expect(root.delete("group/nuvla-user"), 409)
    # a logged-out cookie is anonymous, and anonymous is refused
    stale = Caller(live_server, cookie=user.cookie)
    assert user.logout().status_code == 200
    expect(stale.get(user.doc), 403)

    assert {400, 403, 404, 405, 409, 413} <= set(seen), seen


def test_no_answer_is_empty_or_204(live_server):
    """Successes too, including DELETE, logout, actions, bulk delete, preflight and redirects."""
    anon = anonymous(live_server)
    answers: list[httpx.Response] = []

    def ok(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert resp.status_code == status, (resp.request.method, resp.request.url.path, resp.text[:300])
        answers.append(resp)
        return check_json_object(resp)

    ok(anon.get("cloud-entry-point"))
    ok(anon.get("session"))
    ok(anon.put("session"))  # the python client's current_session(): PUT, no body
    ok(anon.request("OPTIONS", DOC_TYPE))
    ok(anon.get("session-template"))
    ok(anon.get("session-template/password"))
    # GET / is the web UI's (tests/ui/test_session.py); every other path outside /api and /ui, and any
    # other verb on /, still redirects as Nuvla does
    for path in ("/api", "/api/", "/elsewhere", "/API/session"):
        redirect = httpx.request("GET", live_server.endpoint + path)
        assert redirect.headers["location"] == "/api/cloud-entry-point"
        ok(redirect, 302)
    ok(httpx.post(live_server.endpoint + "/"), 302)

    root = Caller(live_server)
    body = ok(root.login_password("admin", ADMIN_PASSWORD), 201)
    assert body == {"status": 201, "message": f"{root.session_id} created", "resource-id": root.session_id}
    user = make_user(live_server, root)

    rid = ok(user.post(DOC_TYPE, json={"name": "shape", "tags": ["shape"]}), 201)["resource-id"]
    ok(user.get(rid))
    ok(user.get(rid, params={"select": "name"}))
    ok(user.put(rid, json={"name": "edited"}))
    ok(user.put(rid, json={}))
    ok(user.put(rid, params={"select": "tags"}, json={}))
    ok(user.put(rid, json=[{"op": "replace", "path": "/name", "value": "patched"}],
                headers={"content-type": "application/json-patch+json"}))
    ok(user.get(DOC_TYPE))
    ok(user.put(DOC_TYPE, data={"filter": "name='patched'", "last": "0", "aggregation": "terms:name"}))
    ok(user.put(DOC_TYPE))
    ok(user.get(user.session_id))
    ok(user.post(f"{user.session_id}/get-groups"))
    ok(user.post(f"{user.session_id}/get-groups", json={}))
    ok(user.post(f"{user.session_id}/switch-group", json={"claim": user.user_id}))
    created = ok(user.post("credential", json={"template": {"href": KEY_TEMPLATE}}), 201)
    key = created["resource-id"]
    keyed = Caller(live_server)
    ok(keyed.login_key(key, created["secret-key"]), 201)
    ok(keyed.get(user.user_id))
    gid = ok(user.post("group", json={"template": {"href": "group-template/generic",
                                                   "group-identifier": unique("shape")}}), 201)["resource-id"]
    ok(user.delete(gid))
    tag = unique("bulk")
    for _ in range(2):
        ok(user.post(DOC_TYPE, json={"name": "bulk", "tags": [tag]}), 201)
    assert ok(user.delete(DOC_TYPE, params={"filter": f"tags='{tag}'"}, headers={"bulk": "yes"}))["deleted"] == 2
    assert ok(user.delete(DOC_TYPE, params={"filter": f"tags='{tag}'"}, headers={"bulk": "yes"}))["deleted"] == 0
    assert ok(user.delete(rid)) == {"status": 200, "message": f"{rid} deleted", "resource-id": rid}
    ok(keyed.logout())
    ok(user.delete(key))
    ok(root.delete(user.user_id))
    ok(root.logout())

    assert all(r.status_code != 204 and r.content for r in answers)
    assert {"DELETE", "POST", "PUT", "GET", "OPTIONS"} <= {r.request.method for r in answers}
