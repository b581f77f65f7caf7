"""Dockyard finds out what happened on the engine behind its back: a container removed while it runs, a
container killed while Dockyard was down, and containers whose deployment no longer exists (its own are
removed, another installation's are left alone)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid

import docker.errors
import pytest
from nuvla.api import Api

from dockyard.jobs.reconciler import Reconciler

from ..conftest import ADMIN_PASSWORD, start_server, stop_server
from ..support import make_tls_pems, tls_engine
from ..support.engine_proxy import EngineProxy
from ..support.inprocess import ADMIN_PASSWORD as INPROCESS_ADMIN_PASSWORD, in_process
from .conftest import DEPLOYED, api_for, component, deploy, new_user, parameters, start, wait_state

GONE = "the container is gone (removed outside Dockyard)"


def containers(docker_client, dep_id: str, all_: bool = True) -> list:
    # a container removed between the engine's list and the SDK's look at each is not listed (no 404)
    return docker_client.containers.list(all=all_, filters={"label": f"dockyard.deployment-id={dep_id}"},
                                         ignore_removed=True)


def the_container(docker_client, dep_id: str):
    found = containers(docker_client, dep_id)
    assert len(found) == 1, found
    return found[0]


def started(server, images) -> tuple:
    api, _ = new_user(server)
    dep_id = deploy(api, component(api, images["app"]))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    return api, dep_id


def test_a_container_removed_behind_dockyards_back_turns_the_deployment_to_error(sqlite_server, images,
                                                                                   docker_client):
    api, dep_id = started(sqlite_server, images)
    the_container(docker_client, dep_id).remove(force=True)  # docker rm -f
    removed = time.monotonic()
    doc = wait_state(api, dep_id, "ERROR", timeout=10)
    assert time.monotonic() - removed < 3, "the engine's events should tell within moments, not at a sweep"
    assert doc["status-message"] == GONE  # at once: its kill's exit code is not the news
    assert doc["task"]["state"] == "missing"
    assert parameters(api, dep_id)["current.state"] == "missing"
    assert {"stop", "update", "create-log"} <= {op["rel"] for op in doc["operations"]}
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    api.delete(dep_id)


@pytest.fixture
def quiet_server(tmp_path):
    """A server in this process, so that a test reaches its reconciler and its store's change journal, with
    no sweep after the one at start-up (only the engine's events, and the test, look at deployments); and
    its admin."""
    with in_process(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path), background=True,
                    sweep_interval=3600) as (runtime, endpoint):
        admin = Api(endpoint=endpoint, insecure=True, persist_cookie=False)
        admin.login_password("admin", INPROCESS_ADMIN_PASSWORD)
        yield runtime, admin


def test_a_container_being_removed_is_gone_already(quiet_server, images, docker_client):
    """`docker rm -f` kills the container, and it has exited for a moment before the engine has removed it
    (the engine says "removing"): it is gone from then on. Each deployment goes from STARTED to ERROR once,
    saying the container is gone, never first by its exit code, whatever moment its engine's events are
    looked at; every version of the deployment the store commits is read from its change journal."""
    runtime, admin = quiet_server
    module_id = component(admin, images["app"])
    deps = [deploy(admin, module_id) for _ in range(4)]
    for dep_id in deps:
        start(admin, dep_id)
    for dep_id in deps:
        wait_state(admin, dep_id, "STARTED")
    journal: list[list[tuple[str, str, dict]]] = []
    runtime.services.store.observers.append(journal.append)
    for dep_id in deps:
        the_container(docker_client, dep_id).remove(force=True)
    for dep_id in deps:
        wait_state(admin, dep_id, "ERROR", timeout=10)
    time.sleep(0.5)  # a later version (the destroy event's look) would be in the journal by now
    runtime.services.store.observers.remove(journal.append)
    for dep_id in deps:
        versions = [(doc["state"], doc.get("status-message"), doc["task"]["state"])
                    for tx in journal for _, rid, doc in tx if rid == dep_id]
        assert versions == [("ERROR", GONE, "missing")], (dep_id, versions)
    for dep_id in deps:
        admin.operation(admin.get(dep_id), "stop")
    for dep_id in deps:
        wait_state(admin, dep_id, "STOPPED")
        admin.delete(dep_id)


def test_a_look_answered_late_does_not_overwrite_a_later_one(quiet_server, tmp_path, images, docker_client):
    """Two looks at one deployment at once: the sweep asks the engine while the container runs, it is killed
    and started again before the engine's answer (exited) arrives, and meanwhile the engine's events are
    looked at. The late answer must not leave the deployment in ERROR while its container runs: looks at one
    deployment follow one another, so the events' looks come after it and see the container running. The
    engine is reached through a proxy that holds the sweep's question and then its answer."""
    runtime, admin = quiet_server
    reconciler = next(part for part in runtime.background if isinstance(part, Reconciler))
    proxy = EngineProxy(str(tmp_path / "engine.sock"))
    pems = make_tls_pems()
    try:
        with tls_engine(pems, engine_socket=proxy.path) as engine:
            infra = admin.add("infrastructure-service", {"template": {
                "href": "infrastructure-service-template/generic", "subtype": "swarm", "endpoint": engine},
                "name": "the local engine, through a proxy"}).data["resource-id"]
            cred = admin.add("credential", {"template": {
                "href": "credential-template/infrastructure-service-swarm", "parent": infra, "ca": pems.ca,
                "cert": pems.client_cert, "key": pems.client_key}, "name": "to the proxy"}).data["resource-id"]
            dep_id = deploy(admin, component(admin, images["app"]), parent=cred)
            start(admin, dep_id)
            wait_state(admin, dep_id, "STARTED")
            container = the_container(docker_client, dep_id)

            proxy.hold_next(rb"GET /v[0-9.]+/containers/%s/json " % container.id.encode())
            sweep = threading.Thread(target=reconciler.reconcile, args=(dep_id,))
            sweep.start()  # reads the deployment STARTED, lists its container and asks about it
            assert proxy.held.wait(10), "the sweep's look never asked the engine about the container"
            container.kill()
            proxy.let_through()  # the engine answers now: exited, code 137
            assert proxy.answered.wait(10)
            container.start()
            container.reload()
            assert container.status == "running"
            time.sleep(1.0)  # the kill's and the start's events are seen (and, looked at, would be written) now
            proxy.answer()
            sweep.join(30)

            deadline = time.monotonic() + 10
            doc = admin.get(dep_id).data
            while doc["state"] != "STARTED" and time.monotonic() < deadline:
                time.sleep(0.1)
                doc = admin.get(dep_id).data
            assert (doc["state"], doc["task"]["state"]) == ("STARTED", "running"), doc.get("status-message")
            admin.operation(admin.get(dep_id), "stop")
            wait_state(admin, dep_id, "STOPPED")
            admin.delete(dep_id)
    finally:
        proxy.close()  # a held look lets go


# -- across a restart of Dockyard ------------------------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def servers():
    """Servers started by a test; whichever still runs at the end is stopped."""
    running: list = []
    yield running
    for server in running:
        if server.process.poll() is None:
            stop_server(server)


def login(server, name: str):
    """A user of the store, logged in to this server (users outlive a restart; sessions need not)."""
    api = api_for(server)
    assert api.login_password(name, "pw-" + name).status_code == 201
    return api


def user(server) -> str:
    admin = api_for(server)
    admin.login_password("admin", ADMIN_PASSWORD)
    name = f"rec-{uuid.uuid4().hex[:8]}"
    admin.add("user", {"template": {"href": "user-template/username-password", "username": name,
                                    "password": "pw-" + name}})
    return name


def test_a_container_killed_while_dockyard_was_down_is_found_at_start_up(data_dir, servers, images, docker_client):
    first = start_server(data_dir)
    servers.append(first)
    name = user(first)
    api = login(first, name)
    dep_id = deploy(api, component(api, images["app"]))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    container = the_container(docker_client, dep_id)
    stop_server(first)

    container.kill()  # docker kill, while nobody is watching
    container.reload()
    assert container.status == "exited"

    second = start_server(data_dir)
    servers.append(second)
    api = login(second, name)
    assert api.get(dep_id).data["state"] in ("STARTED", "ERROR")
    doc = wait_state(api, dep_id, "ERROR", timeout=10)  # the sweep runs as the server starts
    assert doc["status-message"] == "the container exited with code 137"
    assert doc["task"]["state"] == "exited" and doc["task"]["exit-code"] == 137
    assert parameters(api, dep_id)["restart.exit.code"] == "137"
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    assert containers(docker_client, dep_id) == []


# -- orphans ---------------------------------------------------------------------------------------------

def delete_rows(data_dir, rid: str) -> None:
    """Remove a document from the store of a stopped server, as if it had been lost."""
    with sqlite3.connect(os.path.join(str(data_dir), "dockyard.db")) as conn:
        (key,) = conn.execute("DELETE FROM resources WHERE id = ? RETURNING key", (rid,)).fetchall()[0]
        conn.execute("DELETE FROM attrs WHERE key = ?", (key,))


def test_orphans_of_this_installation_are_removed_at_start_up_and_others_left_alone(data_dir, servers, images,
                                                                                      docker_client):
    first = start_server(data_dir)
    servers.append(first)
    name = user(first)
    api = login(first, name)
    orphan_id = deploy(api, component(api, images["app"]))
    start(api, orphan_id)
    wait_state(api, orphan_id, "STARTED")
    kept_id = deploy(api, component(api, images["app"]))
    start(api, kept_id)
    wait_state(api, kept_id, "STARTED")
    ours = the_container(docker_client, orphan_id)
    instance = ours.labels["dockyard.instance"]
    assert instance and the_container(docker_client, kept_id).labels["dockyard.instance"] == instance

    # a container another Dockyard installation runs on the same engine, for a deployment unknown here
    foreign_dep = f"deployment/{uuid.uuid4()}"
    DEPLOYED.add(foreign_dep)
    foreign = docker_client.containers.run(images["app"], detach=True, name=f"foreign-{uuid.uuid4().hex[:8]}",
                                           labels={"dockyard.managed": "true", "dockyard.deployment-id": foreign_dep,
                                                   "dockyard.instance": f"other-{instance}"})
    try:
        stop_server(first)
        delete_rows(data_dir, orphan_id)

        second = start_server(data_dir)
        servers.append(second)
        deadline = time.monotonic() + 15
        while containers(docker_client, orphan_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert containers(docker_client, orphan_id) == [], "the orphan outlived the start-up sweep"

        foreign.reload()
        assert foreign.status == "running"  # another installation's: not ours to judge
        assert the_container(docker_client, kept_id).status == "running"  # ours, and still deployed
        api = login(second, name)
        assert api.get(kept_id).data["state"] == "STARTED"
        assert api.search("deployment", filter=f"id='{orphan_id}'").count == 0
        api.operation(api.get(kept_id), "force-delete")
    finally:
        try:
            foreign.remove(force=True)
        except docker.errors.NotFound:
            pass
