"""Engines as Nuvla has them: an ``infrastructure-service`` (subtype swarm) and its
``infrastructure-service-swarm`` credential, whose private key is never returned and is encrypted at rest;
the credential's ``check`` job asks the engine. The built-in local engine serves everyone.

Over HTTP and the python-library helpers, against a live server on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
import time

import pytest
import sqlalchemy as sa
from nuvla.api import Api
from nuvla.api.resources.credential import CredentialDockerSwarm
from nuvla.api.resources.infra_service import InfraServiceDocker, InfraServiceGroup

from tests.support import make_tls_pems, tls_engine

from ..conftest import free_port
from .helpers import Caller, error_of, forbidden, unique

LOCAL_ENGINE = "unix:///var/run/docker.sock"
LOCAL_INFRA = "infrastructure-service/local-docker"
LOCAL_CREDENTIAL = "credential/local-docker"
FINAL = ("SUCCESS", "FAILED", "CANCELED")


@pytest.fixture(scope="module")
def pems():
    return make_tls_pems()


def library(server, caller: Caller) -> Api:
    api = Api(endpoint=server.endpoint, insecure=True, persist_cookie=False)
    assert api.login_password(caller.username, caller.password).status_code == 201  # type: ignore[attr-defined]
    return api


def get(caller: Caller, rid: str, **params) -> dict:
    resp = caller.get(rid, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def engine(caller: Caller, endpoint: str, **template) -> str:
    return caller.add("infrastructure-service", {
        "template": {"href": "infrastructure-service-template/generic", "subtype": "swarm", "endpoint": endpoint,
                     **template}, "name": unique("engine")})


def swarm_credential(caller: Caller, infra: str, ca: str, cert: str, key: str) -> str:
    return caller.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                                  "parent": infra, "ca": ca, "cert": cert, "key": key},
                                     "name": unique("cred")})


def wait_job(caller: Caller, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    job = get(caller, job_id)
    while job["state"] not in FINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        job = get(caller, job_id)
    assert job["state"] in FINAL, job
    return job


def check(caller: Caller, cred: str) -> dict:
    """The ``check`` action: 202 with the job, which is waited for."""
    resp = caller.post(f"{cred}/check")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == 202 and body["resource-id"] == cred
    assert body["location"].startswith("job/") and resp.headers["location"] == body["location"]
    job = wait_job(caller, body["location"])
    assert job["action"] == "credential_check" and job["target-resource"] == {"href": cred}
    return job


def stored_documents(server, text: str) -> list[str]:
    """Ids of stored rows (documents and their search index) that contain ``text``, read from the database
    itself: the SQLite file in the data dir, or the PostgreSQL database."""
    if server.database_url:
        engine = sa.create_engine(server.database_url)
        try:
            with engine.connect() as conn:
                docs = conn.execute(sa.text("SELECT id FROM resources WHERE strpos(doc::text, :t) > 0"),
                                    {"t": text}).scalars().all()
                attrs = conn.execute(sa.text("SELECT r.id FROM attrs a JOIN resources r ON r.key = a.key "
                                             "WHERE strpos(a.s, :t) > 0"),
                                     {"t": text}).scalars().all()
        finally:
            engine.dispose()
        return [*docs, *attrs]
    path = os.path.join(server.data_dir, "dockyard.db")
    assert os.path.exists(path), os.listdir(server.data_dir)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        docs = [r[0] for r in conn.execute("SELECT id FROM resources WHERE instr(doc, ?) > 0", (text,))]
        attrs = [r[0] for r in conn.execute("SELECT r.id FROM attrs a JOIN resources r ON r.key = a.key "
                                            "WHERE instr(a.s, ?) > 0", (text,))]
    return docs + attrs


def stored_doc(server, rid: str) -> str:
    if server.database_url:
        engine = sa.create_engine(server.database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT doc::text FROM resources WHERE id = :id"),
                                    {"id": rid}).scalar_one()
        finally:
            engine.dispose()
    with sqlite3.connect(f"file:{os.path.join(server.data_dir, 'dockyard.db')}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT doc FROM resources WHERE id = ?", (rid,)).fetchone()[0]


# -- registering an engine ---------------------------------------------------------------------------------

def test_the_python_library_registers_a_swarm_engine_and_its_credential(live_server, alice, pems):
    api = library(live_server, alice)
    group = InfraServiceGroup(api).create(unique("group"))
    infra = InfraServiceDocker(api).create(LOCAL_ENGINE, group, name="mine")
    doc = get(alice, infra)
    assert doc["subtype"] == "swarm" and doc["method"] == "generic" and doc["endpoint"] == LOCAL_ENGINE
    assert doc["parent"] == group and doc["state"] == "STARTED"
    assert doc["acl"]["owners"] == [alice.user_id]
    cred = CredentialDockerSwarm(api).create(pems.ca, pems.client_cert, pems.client_key, infra, "my engine")
    doc = get(alice, cred)
    assert doc["subtype"] == doc["method"] == "infrastructure-service-swarm"
    assert doc["parent"] == infra and doc["name"] == "my engine"
    assert doc["ca"] == pems.ca and doc["cert"] == pems.client_cert
    assert "key" not in doc
    assert {"rel": "check", "href": f"{cred}/check"} in doc["operations"]
    assert [r.id for r in CredentialDockerSwarm(api).find_parent(infra)] == [cred]


def test_the_private_key_is_never_returned_and_is_stored_encrypted(live_server, alice, root, pems):
    infra = engine(alice, LOCAL_ENGINE)
    cred = swarm_credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
    # every reader, every way of reading: no key
    for caller in (alice, root):
        assert "key" not in get(caller, cred)
        assert set(get(caller, cred, select="key")) <= {"id", "operations"}
        for params in ({}, {"select": "key"}, {"select": "id,key,cert"}, {"filter": f"id='{cred}'"}):
            resp = caller.search("credential", **{"filter": f"parent='{infra}'", **params})
            assert resp.status_code == 200, resp.text
            entries = resp.json()["resources"]
            assert [e["id"] for e in entries] == [cred]
            assert "key" not in entries[0]
            assert pems.client_key not in resp.text
    edited = alice.put(cred, json={"description": "edited"})
    assert edited.status_code == 200 and "key" not in edited.json()
    assert pems.client_key.splitlines()[1] not in edited.text
    # a select naming the key cannot remove it either
    assert alice.put(cred, params={"select": "key"}, json={}).status_code == 200
    # at rest: the stored document holds a key, but not the key's text
    raw = stored_doc(live_server, cred)
    assert '"key"' in raw
    for line in pems.client_key.splitlines()[1:-1]:
        assert stored_documents(live_server, line) == []
    assert pems.client_cert.splitlines()[1] in raw  # the public certificate is kept as given


def test_a_user_cannot_attach_a_credential_to_someone_elses_engine(alice, bob, pems):
    infra = engine(alice, LOCAL_ENGINE)
    resp = bob.post("credential", json={"template": {"href": "credential-template/infrastructure-service-swarm",
                                                     "parent": infra, "ca": pems.ca, "cert": pems.client_cert,
                                                     "key": pems.client_key}})
    assert error_of(resp) == forbidden(infra)
    assert bob.count("credential", f"parent='{infra}'") == 0 and alice.count("credential", f"parent='{infra}'") == 0


# -- checking it -------------------------------------------------------------------------------------------

def test_check_of_the_local_engine_is_valid_and_the_engine_online(alice, pems):
    infra = engine(alice, LOCAL_ENGINE)
    cred = swarm_credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
    job = check(alice, cred)
    assert job["state"] == "SUCCESS" and job["progress"] == 100 and job["return-code"] == 0
    assert job["status-message"].startswith("engine ")
    doc = get(alice, cred)
    assert doc["status"] == "VALID" and doc["last-check"] >= job["created"]
    assert get(alice, infra)["online"] is True


def test_check_of_a_closed_port_is_unknown_and_the_engine_offline(alice, pems):
    closed = free_port()
    infra = engine(alice, f"tcp://127.0.0.1:{closed}")
    cred = swarm_credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
    job = check(alice, cred)
    assert job["state"] == "FAILED" and job["return-code"] == 1
    assert job["status-message"].startswith("the engine does not answer: ")
    assert f"127.0.0.1:{closed}" in job["status-message"]
    doc = get(alice, cred)
    assert doc["status"] == "UNKNOWN" and "last-check" in doc
    assert get(alice, infra)["online"] is False


def test_check_through_tls_uses_the_decrypted_key_and_a_foreign_certificate_is_invalid(alice, pems):
    with tls_engine(pems) as endpoint:
        infra = engine(alice, endpoint)
        cred = swarm_credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
        assert check(alice, cred)["state"] == "SUCCESS"
        assert get(alice, cred)["status"] == "VALID" and get(alice, infra)["online"] is True
        stranger = make_tls_pems()  # a client certificate the engine's CA never signed
        infra2 = engine(alice, endpoint)
        cred2 = swarm_credential(alice, infra2, pems.ca, stranger.client_cert, stranger.client_key)
        job = check(alice, cred2)
        assert job["state"] == "FAILED"
        assert get(alice, cred2)["status"] == "INVALID" and get(alice, infra2)["online"] is False


def test_creating_a_swarm_credential_checks_it_at_once(alice, pems):
    infra = engine(alice, LOCAL_ENGINE)
    cred = swarm_credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
    jobs = alice.search("job", filter=f"target-resource/href='{cred}'").json()["resources"]
    assert [j["action"] for j in jobs] == ["credential_check"]
    wait_job(alice, jobs[0]["id"])
    assert get(alice, cred)["status"] == "VALID"


def test_only_those_who_manage_a_credential_can_check_it(alice, bob, pems):
    infra = engine(alice, LOCAL_ENGINE)
    cred = swarm_credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
    assert error_of(bob.post(f"{cred}/check")) == forbidden(cred)
    # the built-in engine's credential is everyone's to use, not to check or change
    assert error_of(bob.post(f"{LOCAL_CREDENTIAL}/check")) == forbidden(LOCAL_CREDENTIAL)
    ops = get(bob, LOCAL_CREDENTIAL)["operations"]
    assert [op["rel"] for op in ops] == []


# -- the built-in local engine -----------------------------------------------------------------------------

def test_the_local_engine_is_visible_to_every_user_and_read_only(alice, bob):
    for caller in (alice, bob):
        infra = get(caller, LOCAL_INFRA)
        assert infra["subtype"] == "swarm" and infra["endpoint"] == LOCAL_ENGINE and infra["online"] is True
        cred = get(caller, LOCAL_CREDENTIAL)
        assert cred["parent"] == LOCAL_INFRA and cred["subtype"] == "infrastructure-service-swarm"
        assert cred["status"] == "VALID" and "key" not in cred
        assert LOCAL_INFRA in caller.ids("infrastructure-service", "subtype='swarm'")
        assert LOCAL_CREDENTIAL in caller.ids("credential", f"parent='{LOCAL_INFRA}'")
        assert error_of(caller.put(LOCAL_INFRA, json={"endpoint": "tcp://elsewhere:2376"})) == forbidden(LOCAL_INFRA)
        assert error_of(caller.delete(LOCAL_CREDENTIAL)) == forbidden(LOCAL_CREDENTIAL)
    assert get(alice, LOCAL_INFRA)["endpoint"] == LOCAL_ENGINE


def component(caller: Caller) -> str:
    project = unique("p")
    caller.add("module", {"path": project, "subtype": "project"})
    return caller.add("module", {"path": f"{project}/app", "subtype": "component", "content": {
        "image": {"image-name": "busybox"}, "author": "tests", "architectures": ["amd64"]}})


def test_a_deployment_without_parent_uses_the_local_engine(alice, bob):
    module = component(alice)
    dep = alice.add("deployment", {"module": {"href": module}})
    doc = get(alice, dep)
    assert doc["parent"] == LOCAL_CREDENTIAL and doc["infrastructure-service"] == LOCAL_INFRA
    assert doc["credential-name"] == get(alice, LOCAL_CREDENTIAL)["name"]
    assert doc["infrastructure-service-name"] == get(alice, LOCAL_INFRA)["name"]
    assert doc["state"] == "CREATED"
    # a deployment on alice's own engine names that engine instead
    infra = engine(alice, LOCAL_ENGINE)
    cred = alice.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                                 "parent": infra, "ca": "", "cert": "", "key": ""}})
    mine = get(alice, alice.add("deployment", {"module": {"href": module}, "parent": cred}))
    assert mine["parent"] == cred and mine["infrastructure-service"] == infra
    # bob cannot deploy with alice's credential
    resp = bob.post("deployment", json={"module": {"href": component(bob)}, "parent": cred})
    assert error_of(resp) == forbidden(cred)
    for rid in (dep, mine["id"]):
        assert alice.delete(rid).status_code == 200


# -- groups ------------------------------------------------------------------------------------------------

def test_a_group_lists_its_services_and_cannot_be_deleted_while_they_remain(alice):
    group = alice.add("infrastructure-service-group", {"name": unique("group"),
                                                       "infrastructure-services": [{"href": "made-up"}]})
    assert get(alice, group)["infrastructure-services"] == []  # server-computed: input dropped
    first = engine(alice, LOCAL_ENGINE, parent=group)
    second = engine(alice, "tcp://127.0.0.1:2376", parent=group)
    assert get(alice, group)["infrastructure-services"] == [{"href": first}, {"href": second}]
    found = alice.put("infrastructure-service-group", data={"filter": f"id='{group}'"}).json()["resources"]
    assert found[0]["infrastructure-services"] == [{"href": first}, {"href": second}]  # searches show it too
    resp = alice.delete(group)
    assert error_of(resp) == (409, f"cannot delete {group}: 2 linked services remain")
    other = alice.add("infrastructure-service-group", {"name": unique("group")})
    assert alice.put(second, json={"parent": other}).status_code == 200
    assert get(alice, group)["infrastructure-services"] == [{"href": first}]
    assert get(alice, other)["infrastructure-services"] == [{"href": second}]
    assert alice.delete(first).status_code == 200
    assert get(alice, group)["infrastructure-services"] == []
    assert alice.delete(group).status_code == 200
