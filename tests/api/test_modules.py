"""Modules over HTTP and through the python-library's ``Module`` helper (SQLite and PostgreSQL).

Projects hold components; a component's ``content`` is versioned (each edit that changes it appends a
version, readable as ``module/<uuid>_<n>``); the rules and messages are Nuvla's (``R/module.clj``).
"""

from __future__ import annotations

import re

import pytest
from nuvla.api import Api, NuvlaError
from nuvla.api.resources.module import Module

from .helpers import Caller, error_of, unique


def library(server, caller: Caller) -> Api:
    """The real client, logged in with a password (so that ``Module.create`` knows the author)."""
    api = Api(endpoint=server.endpoint, insecure=True, persist_cookie=False)
    assert api.login_password(caller.username, caller.password).status_code == 201  # type: ignore[attr-defined]
    return api


def project(caller: Caller, path: str | None = None, **extra) -> tuple[str, str]:
    path = path or unique("p")
    return caller.add("module", {"path": path, "subtype": "project", "name": path, **extra}), path


def content(tag: str = "1", **extra) -> dict:
    return {"image": {"image-name": "busybox", "tag": tag}, "author": "tests", "architectures": ["amd64"],
            **extra}


def component_body(path: str, **content_extra) -> dict:
    return {"path": path, "subtype": "component", "name": path.rsplit("/", 1)[-1],
            "content": content(**content_extra)}


def get(caller: Caller, rid: str) -> dict:
    resp = caller.get(rid)
    assert resp.status_code == 200, resp.text
    return resp.json()


def count_path(caller: Caller, path: str) -> int:
    return caller.count("module", f"path='{path}'")


def schema_error(resp, *names: str) -> str:
    """A 400 with Nuvla's schema message naming each attribute."""
    status, message = error_of(resp)
    assert status == 400, message
    assert re.match(r"^resource module/\S+ does not satisfy defined schema:\n", message), message
    for name in names:
        assert f"'{name}'" in message, message
    return message


# -- create, paths, the python-library -------------------------------------------------------------------

def test_the_library_creates_a_project_and_a_component_and_exist_ok_returns_the_existing_id(live_server, alice):
    api = library(live_server, alice)
    modules = Module(api)
    path = unique("p")
    pid = modules.create({"path": path, "subtype": "project", "name": path})
    assert pid.startswith("module/")
    assert modules.create({"path": path, "subtype": "project", "name": "again"}, exist_ok=True) == pid
    with pytest.raises(NuvlaError) as err:
        modules.create({"path": path, "subtype": "project", "name": "again"})
    assert err.value.response.status_code == 409
    assert re.match("path.*already exist", err.value.reason)
    assert err.value.reason == f"path '{path}' already exist"

    # no author given: the library fills in the user name it logged in with
    cid = modules.create({"path": f"{path}/web", "subtype": "component", "name": "web",
                          "content": {"image": {"image-name": "nginx"}, "architectures": ["amd64"]}})
    again = modules.create({"path": f"{path}/web", "subtype": "component", "name": "web",
                            "content": {"image": {"image-name": "other"}, "architectures": ["amd64"]}},
                           exist_ok=True)
    assert again == cid
    doc = modules.get_by_path(f"{path}/web")
    assert doc["id"] == cid
    assert doc["content"]["author"] == alice.username  # type: ignore[attr-defined]
    assert doc["content"]["image"] == {"image-name": "nginx"}  # the duplicate stored nothing
    assert len(doc["versions"]) == 1
    assert count_path(alice, f"{path}/web") == 1 and count_path(alice, path) == 1
    assert modules.get_by_path(unique("nowhere")) == {}


def test_a_duplicate_path_over_http_is_409_with_nuvlas_message(alice, bob):
    pid, path = project(alice)
    resp = alice.post("module", json={"path": path, "subtype": "project"})
    assert error_of(resp) == (409, f"path '{path}' already exist")
    # the path is unique across users, not per user
    assert error_of(bob.post("module", json={"path": path, "subtype": "project"})) == \
        (409, f"path '{path}' already exist")


def test_parent_path_is_computed_and_cannot_be_set(alice):
    pid, path = project(alice, **{"parent-path": "elsewhere"})
    assert get(alice, pid)["parent-path"] == ""
    sub = alice.add("module", {"path": f"{path}/sub", "subtype": "project", "parent-path": "x"})
    assert get(alice, sub)["parent-path"] == path
    cid = alice.add("module", {**component_body(f"{path}/sub/app"), "parent-path": "x"})
    doc = get(alice, cid)
    assert doc["parent-path"] == f"{path}/sub" and doc["path"] == f"{path}/sub/app"
    assert doc["subtype"] == "component"
    edited = alice.put(cid, json={"parent-path": "moved"})
    assert edited.status_code == 200 and edited.json()["parent-path"] == f"{path}/sub"


def test_a_component_needs_an_existing_parent_project(alice):
    path = unique("c")
    resp = alice.post("module", json=component_body(path))
    assert error_of(resp) == (400, "Application subtype must have a parent project!")
    missing = unique("nowhere")
    resp = alice.post("module", json=component_body(f"{missing}/app"))
    assert error_of(resp) == (400, f"No parent project found for path: {missing}")
    # a component is no project: nothing goes inside it (Nuvla answers 403 here)
    pid, ppath = project(alice)
    alice.add("module", component_body(f"{ppath}/app"))
    resp = alice.post("module", json=component_body(f"{ppath}/app/inner"))
    assert error_of(resp) == (403, "Parent must be a project!")
    assert count_path(alice, path) == 0 and count_path(alice, f"{ppath}/app/inner") == 0


def test_a_project_has_no_content(alice):
    path = unique("p")
    resp = alice.post("module", json={"path": path, "subtype": "project", "content": content()})
    assert error_of(resp) == (400, "Project should not have content attribute!")
    pid, path = project(alice)
    resp = alice.put(pid, json={"content": content()})
    assert error_of(resp)[0] == 400
    assert get(alice, pid)["versions"] == []


def test_another_user_cannot_add_into_someone_elses_project(alice, bob):
    pid, path = project(alice)
    # invisible to bob: as if it did not exist (Nuvla looks the parent up as the caller)
    resp = bob.post("module", json=component_body(f"{path}/intruder"))
    assert error_of(resp) == (400, f"No parent project found for path: {path}")
    # visible but not editable: refused
    shared = alice.put(pid, json={"acl": {"owners": [alice.user_id], "view-data": [bob.user_id]}})
    assert shared.status_code == 200, shared.text
    resp = bob.post("module", json=component_body(f"{path}/intruder"))
    assert error_of(resp) == (403, f"You do not have edit rights for: {pid} at path: {path}")
    resp = bob.post("module", json={"path": f"{path}/sub", "subtype": "project"})
    assert error_of(resp)[0] == 403
    assert count_path(alice, f"{path}/intruder") == 0 and count_path(alice, f"{path}/sub") == 0
    # with edit rights on the project, bob may add (and owns what he adds)
    alice.put(pid, json={"acl": {"owners": [alice.user_id], "edit-data": [bob.user_id]}})
    cid = bob.add("module", component_body(f"{path}/welcome"))
    assert get(bob, cid)["acl"]["owners"] == [bob.user_id]


# -- versions --------------------------------------------------------------------------------------------

def test_each_content_change_appends_a_version_and_each_version_stays_readable(alice):
    pid, path = project(alice)
    cid = alice.add("module", component_body(f"{path}/app", tag="1", commit="first"))
    uuid = cid.split("/", 1)[1]
    first = get(alice, cid)
    assert [v["commit"] for v in first["versions"]] == ["first"]
    assert first["versions"][0]["author"] == "tests"
    assert first["versions"][0]["href"].startswith("module-component/")
    for n in (2, 3):
        resp = alice.put(cid, json={"content": content(tag=str(n), commit=f"v{n}")})
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["versions"]) == n
        assert get(alice, cid)["content"]["image"]["tag"] == str(n)
    latest = get(alice, cid)
    assert [v["commit"] for v in latest["versions"]] == ["first", "v2", "v3"]
    assert latest["content"]["image"]["tag"] == "3"
    assert latest["content"]["id"] == latest["versions"][2]["href"]
    for n in range(3):
        version = get(alice, f"module/{uuid}_{n}")
        assert version["id"] == f"module/{uuid}_{n}"
        assert version["path"] == f"{path}/app"
        assert version["content"]["image"]["tag"] == str(n + 1)
        assert version["content"]["id"] == latest["versions"][n]["href"]
        assert "acl" not in version["content"] and "resource-type" not in version["content"]
    assert error_of(alice.get(f"module/{uuid}_3")) == (404, f"module/{uuid}_3 not found")


def test_an_edit_without_content_changes_no_version(alice):
    pid, path = project(alice)
    cid = alice.add("module", component_body(f"{path}/app", tag="1"))
    before = get(alice, cid)
    resp = alice.put(cid, json={"description": "only the description", "name": "renamed"})
    assert resp.status_code == 200, resp.text
    after = get(alice, cid)
    assert after["versions"] == before["versions"]
    assert after["content"] == before["content"]
    assert after["description"] == "only the description" and after["name"] == "renamed"


def test_an_edit_carrying_unchanged_content_still_appends_a_version_as_nuvla(alice):
    # Nuvla's UI saves the whole module with a commit message: each save is a version, even if only the
    # message is new; clients count on versions growing by one per save
    pid, path = project(alice)
    cid = alice.add("module", component_body(f"{path}/app", tag="1", commit="first"))
    same = get(alice, cid)
    resp = alice.put(cid, json={**same, "content": {**same["content"], "commit": "same image, new note"}})
    assert resp.status_code == 200, resp.text
    after = get(alice, cid)
    assert [v.get("commit") for v in after["versions"]] == ["first", "same image, new note"]
    assert after["content"]["image"] == same["content"]["image"]
    resp = alice.put(cid, json=get(alice, cid))  # the round trip of a whole document is a save too
    assert resp.status_code == 200 and len(resp.json()["versions"]) == 3


def test_versions_cannot_be_set_by_the_user(alice):
    pid, path = project(alice)
    fake = [{"href": "module-component/forged", "author": "mallory"}]
    cid = alice.add("module", {**component_body(f"{path}/app"), "versions": fake})
    versions = get(alice, cid)["versions"]
    assert len(versions) == 1 and versions[0]["author"] == "tests"
    resp = alice.put(cid, json={"versions": fake})
    assert resp.status_code == 200 and resp.json()["versions"] == versions
    resp = alice.put(cid, json={}, params={"select": "versions"})
    assert resp.status_code == 200 and resp.json()["versions"] == versions
    pid2 = alice.add("module", {"path": unique("p"), "subtype": "project", "versions": fake})
    assert get(alice, pid2)["versions"] == []


# -- content validation ----------------------------------------------------------------------------------

def test_variables_named_nuvla_are_reserved(alice):
    pid, path = project(alice)
    for name in ("NUVLA_API_KEY", "NUVLA_ANYTHING"):
        env = [{"name": "GOOD", "value": "1"}, {"name": name, "value": "x"}]
        message = schema_error(alice.post("module", json=component_body(
            f"{path}/app", **{"environmental-variables": env})), "environmental-variables")
        assert "NUVLA_" in message
    assert count_path(alice, f"{path}/app") == 0
    cid = alice.add("module", component_body(f"{path}/app", **{"environmental-variables": [{"name": "GOOD"}]}))
    before = get(alice, cid)["versions"]
    resp = alice.put(cid, json={"content": content(**{"environmental-variables": [{"name": "NUVLA_X"}]})})
    schema_error(resp, "environmental-variables")
    assert get(alice, cid)["versions"] == before
    # not reserved: NUVLA inside a name, or lower case
    alice.add("module", component_body(f"{path}/ok", **{"environmental-variables": [
        {"name": "MY_NUVLA_X"}, {"name": "nuvla_lower"}]}))


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_a_port_outside_1_to_65535_is_refused(alice, port):
    pid, path = project(alice)
    resp = alice.post("module", json=component_body(f"{path}/app", ports=[{"target-port": port}]))
    schema_error(resp, "ports", "target-port")
    resp = alice.post("module", json=component_body(f"{path}/app", ports=[{"target-port": 80,
                                                                           "published-port": port}]))
    schema_error(resp, "ports", "published-port")
    assert count_path(alice, f"{path}/app") == 0


def test_bad_mounts_and_a_missing_image_are_refused(alice):
    pid, path = project(alice)
    resp = alice.post("module", json=component_body(f"{path}/app", mounts=[{"mount-type": "nfs",
                                                                            "target": "/data"}]))
    schema_error(resp, "mounts", "mount-type")
    resp = alice.post("module", json=component_body(f"{path}/app", mounts=[{"mount-type": "volume"}]))
    schema_error(resp, "mounts", "target")
    body = component_body(f"{path}/app")
    del body["content"]["image"]
    schema_error(alice.post("module", json=body), "image")
    body = component_body(f"{path}/app")
    body["content"]["image"] = {"tag": "1"}
    schema_error(alice.post("module", json=body), "image", "image-name")
    assert count_path(alice, f"{path}/app") == 0
    # an edit with a bad mount stores nothing either
    cid = alice.add("module", component_body(f"{path}/app"))
    before = get(alice, cid)
    resp = alice.put(cid, json={"content": content(mounts=[{"mount-type": "nfs", "target": "/x"}])})
    schema_error(resp, "mounts", "mount-type")
    assert get(alice, cid)["versions"] == before["versions"]
    good = [{"mount-type": t, "target": "/data"} for t in ("volume", "bind", "tmpfs")]
    assert alice.put(cid, json={"content": content(mounts=good)}).status_code == 200


# -- delete ----------------------------------------------------------------------------------------------

def test_a_project_with_children_cannot_be_deleted(alice):
    pid, path = project(alice)
    sub = alice.add("module", {"path": f"{path}/sub", "subtype": "project"})
    cid = alice.add("module", component_body(f"{path}/sub/app"))
    assert error_of(alice.delete(pid)) == (403, "Cannot delete project with children")
    assert error_of(alice.delete(sub)) == (403, "Cannot delete project with children")
    assert alice.delete(cid).json() == {"status": 200, "message": f"{cid} deleted", "resource-id": cid}
    assert alice.delete(sub).status_code == 200
    assert alice.delete(pid).status_code == 200
    assert count_path(alice, path) == 0
