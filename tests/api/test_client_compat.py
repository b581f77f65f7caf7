"""The real `nuvla-api` client (4.2.3) against a live `dockyard serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from nuvla.api import Api, NuvlaError

from ..conftest import ADMIN_PASSWORD


def client(server) -> Api:
    return Api(endpoint=server.endpoint, insecure=True, persist_cookie=False)


@pytest.fixture(scope="module")
def admin(live_server) -> Api:
    api = client(live_server)
    assert api.login_password("admin", ADMIN_PASSWORD).status_code == 201
    return api


def make_user(admin: Api, server, name: str | None = None) -> tuple[Api, str]:
    name = name or f"u-{uuid.uuid4().hex[:8]}"
    created = admin.add("user", {"template": {"href": "user-template/username-password",
                                              "username": name, "password": "pw-" + name}})
    uid = created.data["resource-id"]
    api = client(server)
    assert api.login_password(name, "pw-" + name).status_code == 201
    return api, uid


def new_group_doc(api: Api, **extra) -> str:
    body = {"name": extra.pop("name", "isg"), "description": "d", **extra}
    return api.add("infrastructure-service-group", body).data["resource-id"]


def test_password_login_session_and_logout(live_server):
    api = client(live_server)
    assert not api.is_authenticated()
    assert api.current_session() is None
    resp = api.login_password("admin", ADMIN_PASSWORD)
    assert resp.status_code == 201
    assert resp.json()["resource-id"].startswith("session/")
    assert "com.sixsq.nuvla.cookie" in resp.headers["set-cookie"]
    assert "HttpOnly" in resp.headers["set-cookie"]
    assert "Secure" not in resp.headers["set-cookie"]  # plain http
    assert api.is_authenticated()
    assert api.current_session() == resp.json()["resource-id"]
    api.logout()
    assert not api.is_authenticated()


def test_wrong_password_is_refused_with_nuvlas_message(live_server):
    api = client(live_server)
    resp = api.login_password("admin", "wrong")
    assert resp.status_code == 403
    assert resp.json()["message"] == "invalid credentials for 'admin'"
    assert not api.is_authenticated()


def test_api_key_login_and_secret_returned_once(admin, live_server):
    user, uid = make_user(admin, live_server)
    created = user.add("credential", {"template": {"href": "credential-template/generate-api-key", "ttl": 0},
                                      "name": "my key"})
    key, secret = created.data["resource-id"], created.data["secret-key"]
    assert created.data["status"] == 201 and key.startswith("credential/")
    assert len(secret) == 34 and secret.count(".") == 4
    doc = user.get(key)
    assert doc.data["subtype"] == "api-key" and doc.data["claims"]["identity"] == uid
    assert "secret-key" not in doc.data and "digest" not in doc.data
    keyed = client(live_server)
    assert keyed.login_apikey(key, secret).status_code == 201
    assert keyed.is_authenticated()
    assert keyed.get(uid).id == uid
    assert client(live_server).login_apikey(key, secret + "x").status_code == 403


def test_add_get_select_edit_select_removal_and_patch(admin, live_server):
    user, _ = make_user(admin, live_server)
    rid = new_group_doc(user, name="first", tags=["a", "b"])
    doc = user.get(rid)
    assert doc.data["name"] == "first" and doc.data["tags"] == ["a", "b"]
    assert doc.data["created"].endswith("Z") and len(doc.data["created"]) == 24
    assert {"rel": "edit", "href": rid} in doc.data["operations"]
    assert {"rel": "delete", "href": rid} in doc.data["operations"]
    selected = user.get(rid, select="name")
    assert set(selected.data) == {"id", "name", "operations"}
    edited = user.edit(rid, {"name": "second"})
    assert edited.data["name"] == "second" and edited.data["description"] == "d"
    removed = user.edit(rid, {}, select=["description", "tags"])
    assert "description" not in removed.data and "tags" not in removed.data
    assert user.get(rid).data["name"] == "second"
    patched = user.edit_patch(rid, [{"op": "replace", "path": "/name", "value": "third"},
                                    {"op": "add", "path": "/tags", "value": ["x"]}])
    assert patched.data["name"] == "third" and patched.data["tags"] == ["x"]
    # server-managed attributes in the body are ignored
    kept = user.edit(rid, {"id": "infrastructure-service-group/other", "created": "2000-01-01T00:00:00.000Z",
                           "operations": [], "resource-type": "x"})
    assert kept.id == rid and kept.data["created"] == doc.data["created"]


def test_delete(admin, live_server):
    user, _ = make_user(admin, live_server)
    rid = new_group_doc(user)
    resp = user.delete(rid)
    assert resp.data == {"status": 200, "message": f"{rid} deleted", "resource-id": rid}
    with pytest.raises(NuvlaError) as err:
        user.get(rid)
    assert err.value.reason == f"{rid} not found"
    assert err.value.response.status_code == 404


def test_search_filter_orderby_select_paging_aggregation(admin, live_server):
    user, _ = make_user(admin, live_server)
    tag = uuid.uuid4().hex[:8]
    ids = [new_group_doc(user, name=f"n{i}", tags=[tag, "even" if i % 2 == 0 else "odd"]) for i in range(5)]
    everything = user.search("infrastructure-service-group", filter=f"tags='{tag}'")
    assert everything.count == 5
    assert {r.id for r in everything.resources} == set(ids)
    ordered = user.search("infrastructure-service-group", filter=f"tags='{tag}'", orderby="name:desc")
    assert [r.data["name"] for r in ordered.resources] == ["n4", "n3", "n2", "n1", "n0"]
    page = user.search("infrastructure-service-group", filter=f"tags='{tag}'", orderby="name:asc",
                       first=2, last=3, select="name")
    assert page.count == 5
    assert [r.data["name"] for r in page.resources] == ["n1", "n2"]
    assert all(set(r.data) == {"id", "name"} for r in page.resources)
    count_only = user.search("infrastructure-service-group", filter=f"tags='{tag}'", last=0)
    assert count_only.count == 5 and count_only.resources == []
    both = user.search("infrastructure-service-group", filter=f"tags='{tag}' and (name='n1' or name='n2')")
    assert {r.data["name"] for r in both.resources} == {"n1", "n2"}
    aggs = user.search("infrastructure-service-group", filter=f"tags='{tag}'", last=0,
                       aggregation=["terms:tags", "value_count:id"]).data["aggregations"]
    buckets = {b["key"]: b["doc_count"] for b in aggs["terms:tags"]["buckets"]}
    assert buckets == {tag: 5, "even": 3, "odd": 2}
    assert aggs["value_count:id"] == {"value": 5}
    assert {"rel": "add", "href": "infrastructure-service-group"} in everything.data["operations"]


def test_bad_filter_is_a_400_naming_the_problem(admin):
    with pytest.raises(NuvlaError) as err:
        admin.search("infrastructure-service-group", filter="name='x' and")
    assert err.value.response.status_code == 400
    assert err.value.reason.startswith("Invalid CIMI filter.")


def test_delete_bulk(admin, live_server):
    user, _ = make_user(admin, live_server)
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        new_group_doc(user, name=f"b{i}", tags=[tag])
    other, _ = make_user(admin, live_server)
    survivor = new_group_doc(other, name="b-other", tags=[tag])
    resp = user.delete_bulk("infrastructure-service-group", f"tags='{tag}'")
    assert resp.data["deleted"] == 3
    assert user.search("infrastructure-service-group", filter=f"tags='{tag}'").count == 0
    assert other.get(survivor).id == survivor


def test_operations_and_unknown_action(admin, live_server):
    user, uid = make_user(admin, live_server)
    session = user.get(user.current_session())
    groups = user.operation(session, "get-groups")
    assert groups.data["groups"] == []
    with pytest.raises(NuvlaError) as err:
        user.operation(session, "no-such-action")
    assert err.value.response.status_code == 404
    assert err.value.reason.startswith("undefined action (post, [session no-such-action])")


def test_switch_group_changes_the_owner_of_new_resources(admin, live_server):
    user, uid = make_user(admin, live_server)
    gname = f"team-{uuid.uuid4().hex[:6]}"
    gid = user.add("group", {"template": {"href": "group-template/generic", "group-identifier": gname},
                             "users": [uid]}).data["resource-id"]
    assert gid == f"group/{gname}"
    session = user.get(user.current_session())
    assert user.operation(session, "switch-group", {"claim": gid}).data["message"] == f"switched to {gid}"
    rid = new_group_doc(user)
    assert user.get(rid).data["acl"]["owners"] == [gid]


def test_errors_are_nuvla_errors_with_nuvlas_messages(admin, live_server):
    alice, _ = make_user(admin, live_server)
    bob, _ = make_user(admin, live_server)
    rid = new_group_doc(alice)
    with pytest.raises(NuvlaError) as err:
        bob.get(rid)
    assert err.value.response.status_code == 403
    assert err.value.reason == f"invalid credentials for '{rid}'"
    name = f"dup-{uuid.uuid4().hex[:6]}"
    alice.add("group", {"template": {"href": "group-template/generic", "group-identifier": name}})
    with pytest.raises(NuvlaError) as err:
        alice.add("group", {"template": {"href": "group-template/generic", "group-identifier": name}})
    assert err.value.response.status_code == 409
    assert err.value.reason == f"conflict with group/{name}"
    with pytest.raises(NuvlaError) as err:
        alice.get("infrastructure-service-group/does-not-exist")
    assert err.value.reason == "infrastructure-service-group/does-not-exist not found"


def test_cloud_entry_point_lists_collections(live_server):
    cep = client(live_server).cloud_entry_point
    assert cep.base_uri == live_server.endpoint + "/api/"
    for name in ("session", "credential", "user", "group", "event", "infrastructure-service-group"):
        assert cep.collections[name] == name


def test_compressed_request_bodies(admin, live_server):
    api = Api(endpoint=live_server.endpoint, insecure=True, persist_cookie=False, compress=True)
    api.login_password("admin", ADMIN_PASSWORD)
    rid = api.add("infrastructure-service-group", {"name": "z", "description": "x" * 5000}).data["resource-id"]
    assert api.get(rid).data["description"] == "x" * 5000


@pytest.mark.parametrize("reserved", ["nuvla-admin", "nuvla-deployment", "nuvla-nuvlabox"])
def test_reserved_groups_cannot_be_created(admin, live_server, reserved):
    user, _ = make_user(admin, live_server)
    with pytest.raises(NuvlaError) as err:
        user.add("group", {"template": {"href": "group-template/generic", "group-identifier": reserved}})
    assert err.value.response.status_code == 409
    assert err.value.reason == f"conflict with group/{reserved}"
