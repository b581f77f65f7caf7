"""SIGKILL and lost deployments on the swarm (issue 12): the guarantees ``tests/campaign/test_kill9.py`` and the
orphan sweep show for containers hold for services and stacks.

A server killed while it starts a 3-replica service and a two-service stack (each with its service made on the
manager and its tasks still pending: every node is paused, so none can run yet) finishes both starts after a
restart, with one service per component and per stack service, all replicas running, one API key each; killed
again while it stops them, it ends both STOPPED after a restart with nothing on any node and the keys revoked.
A service and a stack whose deployments were lost while the server was down (their rows gone) are removed from
every node by the next server's sweep.

What the first of these found: a stop read every service's version up front and changed each against it, but
the swarm moves a service's version itself while it rolls an update over (a stack deployed again, as the
restarted start does), so the stop failed with "update out of sequence". The last test changes a service
while a stop waits on another, which it must then change at its new version.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager

import pytest

from dockyard.drivers import TlsMaterial
from dockyard.drivers.swarm import SwarmDriver

from tests.apps.app import application
from tests.campaign.crash_support import Installation, installations  # noqa: F401
from tests.conftest import ADMIN_PASSWORD
from tests.deployments.conftest import DEPLOYED, api_for, component, deploy, new_user, start, wait_state
from tests.deployments.test_recovery import delete_rows

from .helpers import NODE_NAMES, register_manager, services_of, swarm_objects, wait_nothing_on_nodes

STACK = """
services:
  web:
    image: %(image)s
    ports:
      - "8080"
    networks: [back]
  echo:
    image: %(image)s
    networks: [back]
networks:
  back: {}
"""
NOTHING = {"service": [], "secret": [], "config": [], **{f"{n} networks": [] for n in NODE_NAMES}}


@pytest.fixture
def installation(swarm, helper_image, tmp_path, installations):  # noqa: F811
    """``dockyard serve`` with the campaign's short lease and sweep (2 s), and a user with the manager
    registered. Its probe image is on no node: the check ends at once without a routing-mesh answer, and
    services publish in host mode, as the probe finds on this kernel anyway."""
    live = Installation(tmp_path / "dockyard", env={"DOCKYARD_SWARM_HELPER_IMAGE": helper_image,
                                                    "DOCKYARD_SWARM_PROBE_IMAGE": "dockyard-test/on-no-node:1"})
    installations.append(live)
    live.start()
    api, _ = new_user(live)
    cred, _, job = register_manager(api, swarm)
    assert job["state"] == "SUCCESS", job
    return live, api, cred


@contextmanager
def nodes_paused(swarm):
    """No node takes a new task (a service can be made, its tasks stay pending) until the block ends."""
    try:
        for name in NODE_NAMES:
            swarm.docker(0, "node", "update", "--availability", "pause", name)
        yield
    finally:
        for name in NODE_NAMES:
            swarm.docker(0, "node", "update", "--availability", "active", name)


def running_tasks(swarm, service_id: str) -> int:
    states = swarm.docker(0, "service", "ps", "-q", "--filter", "desired-state=running", "--format",
                          "{{.CurrentState}}", service_id).splitlines()
    return sum(state.startswith("Running") for state in states)


def stored(installation: Installation, rid: str) -> dict:
    """The document as the killed server left it in its database."""
    with sqlite3.connect(installation.data_dir / "dockyard.db") as conn:
        (doc,) = conn.execute("SELECT doc FROM resources WHERE id = ?", (rid,)).fetchone()
    return json.loads(doc)


def keys_of(admin, dep_id: str) -> list[str]:
    return [key.id for key in admin.search("credential", filter=f"parent='{dep_id}'").resources]


def wait_until(what, timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def test_a_server_killed_mid_start_and_mid_stop_settles_services_and_stacks_and_leaves_nothing(
        installation, swarm, web_image):
    live, api, cred = installation
    admin = api_for(live)
    admin.login_password("admin", ADMIN_PASSWORD)
    service = deploy(api, component(api, web_image, replicas=3, ports=[{"target-port": 8080}]), parent=cred)
    stack = deploy(api, application(api, STACK % {"image": web_image}, "swarm"), parent=cred)
    both = (service, stack)
    try:
        with nodes_paused(swarm):
            for dep_id in both:
                start(api, dep_id)
            # the service and the stack's two services are made; no task can run on a paused node
            wait_until(lambda: len(services_of(swarm, service)) == 1 and len(services_of(swarm, stack)) == 2, 60,
                       "the starts made no service on the manager")
            live.kill()
        assert {d: stored(live, d)["state"] for d in both} == {service: "STARTING", stack: "STARTING"}

        live.start()
        for dep_id in both:
            doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)
            assert doc["state"] == "STARTED", doc.get("status-message")
        [made] = services_of(swarm, service)
        assert made["Spec"]["Mode"]["Replicated"]["Replicas"] == 3 and running_tasks(swarm, made["ID"]) == 3
        stacked = services_of(swarm, stack)
        assert sorted(s["Spec"]["Labels"]["dockyard.service"] for s in stacked) == ["echo", "web"]
        assert all(running_tasks(swarm, s["ID"]) == 1 for s in stacked)
        keys = {d: keys_of(admin, d) for d in both}
        assert all(len(found) == 1 for found in keys.values()), keys

        # killed again once both stops are under way
        for dep_id in both:
            api.operation(api.get(dep_id), "stop")
        wait_until(lambda: all(stored(live, d)["state"] == "STOPPING" for d in both), 30, "no stop began")
        live.kill()
        print(f"[swarm crash] killed mid-stop with {len(services_of(swarm, service))} + "
              f"{len(services_of(swarm, stack))} services still on the manager")

        live.start()
        for dep_id in both:
            doc = wait_state(api, dep_id, {"STOPPED", "ERROR"}, timeout=120)
            assert doc["state"] == "STOPPED", doc.get("status-message")
            wait_nothing_on_nodes(swarm, dep_id)
            assert swarm_objects(swarm, dep_id) == NOTHING
            assert keys_of(admin, dep_id) == []
    finally:
        for dep_id in both:
            DEPLOYED.discard(dep_id)
            if live.processes():
                api.operation(api.get(dep_id), "force-delete")


def test_a_service_and_a_stack_whose_deployments_were_lost_are_removed_from_every_node_by_the_next_sweep(
        installation, swarm, web_image):
    live, api, cred = installation
    service = deploy(api, component(api, web_image, replicas=3, ports=[{"target-port": 8080}]), parent=cred)
    stack = deploy(api, application(api, STACK % {"image": web_image}, "swarm"), parent=cred)
    both = (service, stack)
    for dep_id in both:
        start(api, dep_id)
    for dep_id in both:
        assert wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)["state"] == "STARTED"
    assert len(services_of(swarm, service)) == 1 and len(services_of(swarm, stack)) == 2
    assert swarm_objects(swarm, stack)["node1 networks"], "the stack's network is on the manager"

    live.stop()
    for dep_id in both:
        delete_rows(live.data_dir, dep_id)
        DEPLOYED.discard(dep_id)
    t0 = time.monotonic()
    live.start()
    for dep_id in both:
        wait_until(lambda: swarm_objects(swarm, dep_id) == NOTHING, 60, f"{dep_id} outlived the sweep")
        wait_nothing_on_nodes(swarm, dep_id)
    print(f"[swarm crash] lost service and stack gone from every node {time.monotonic() - t0:.1f} s after the "
          f"restart")


def test_a_stop_changes_each_service_at_the_version_it_has_when_the_stop_reaches_it(swarm, web_image):
    """Two services of one deployment whose tasks take 3 s to stop (SIGTERM ignored): while the stop waits on
    the first, the other is changed (a label, as the swarm's own writes of an update's progress do), so the
    version the stop listed for it is no longer the service's."""
    dep_id = f"deployment/{uuid.uuid4()}"
    slow = ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
    made = [swarm.docker(0, "service", "create", "--quiet", "--detach", "--name", f"v{i}-{dep_id[-8:]}",
                         "--label", f"dockyard.deployment-id={dep_id}", "--label", "dockyard.managed=true",
                         "--stop-grace-period", "3s", web_image,
                         *slow).strip() for i in range(2)]
    with SwarmDriver(swarm.endpoint, TlsMaterial(swarm.cert, swarm.key, swarm.ca), probe_image=swarm.image,
                     routing_mesh=False) as driver:
        try:
            wait_until(lambda: all(running_tasks(swarm, s) == 1 for s in made), 60, "the services never ran")
            changed: list[str] = []

            def change_the_other() -> None:
                def scaled() -> list[str]:
                    return [s for s in made if '"Replicas": 0' in swarm.docker(0, "service", "inspect", s)]
                wait_until(lambda: scaled(), 30, "the stop scaled no service")
                [other] = set(made) - set(scaled())
                swarm.docker(0, "service", "update", "--quiet", "--detach", "--label-add", "moved=1", other)
                changed.append(other)

            changer = threading.Thread(target=change_the_other)
            changer.start()
            driver.stop(dep_id, timeout=5)
            changer.join()
            assert changed, "the test changed no service while the stop waited"
            for service in made:
                spec = json.loads(swarm.docker(0, "service", "inspect", service))[0]["Spec"]
                assert spec["Mode"]["Replicated"]["Replicas"] == 0 and running_tasks(swarm, service) == 0
        finally:
            driver.destroy(dep_id)
