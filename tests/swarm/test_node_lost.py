"""A node of the swarm is lost: its task moves to another node and the deployment's parameters follow (issue 12).

A 2-replica component (ports each node picks) starts while node1 takes no new task, so its first task (the
one ``node-id``, ``hostname`` and ``tcp.8080`` name) runs on a worker. That worker's container is stopped:
the manager counts the node down, schedules the task on another node, and the parameters show one replica
running, then two again on the new placement, where the new port answers: on a server whose sweep is minutes
away, from the manager's node event and the looks that follow it. The node is started again and
rejoins before the test ends, so later tests have their three nodes. A stop with ``remove-volumes`` while
the node is down removes the component's volume on the nodes that are up and says which node kept its copy.
"""

from __future__ import annotations

import time
import uuid

import httpx

import pytest

from tests.conftest import start_server, stop_server
from tests.deployments.conftest import component, deploy, new_user, parameters, start, wait_state

from .helpers import NODE_NAMES, register_manager, wait_nothing_on_nodes


@pytest.fixture(scope="module")
def unswept(swarm, helper_image, tmp_path_factory):
    """A server whose sweep is ten minutes away, and its user with the manager registered: what it shows of a
    lost node comes from the manager's node events and the looks that follow them. Its probe image is on no
    node, so the check's probe ends at once without an answer (services publish in host mode, as the probe
    finds on this kernel anyway) instead of taking 17 s again."""
    live = start_server(tmp_path_factory.mktemp("swarm-unswept"),
                        extra_env={"DOCKYARD_SWEEP_INTERVAL": "600", "DOCKYARD_SWARM_HELPER_IMAGE": helper_image,
                                   "DOCKYARD_SWARM_PROBE_IMAGE": "dockyard-test/on-no-node:1"})
    try:
        api, _ = new_user(live)
        cred, infra, job = register_manager(api, swarm)
        assert job["state"] == "SUCCESS" and "routing mesh unknown" in job["status-message"], job
        yield api, cred
    finally:
        stop_server(live)


def wait_placement(api, swarm, dep_id: str, lost: str, timeout: float = 90.0) -> tuple[dict, list[str], float]:
    """The parameters once two replicas run again and the first is no longer on ``lost``; every
    ``replicas.running`` value seen on the way; when the manager first called the node down."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    down = 0.0
    while True:
        params = parameters(api, dep_id)
        if not seen or seen[-1] != params["replicas.running"]:
            seen.append(params["replicas.running"])
        if not down and swarm.docker(0, "node", "inspect", "--format", "{{.Status.State}}", lost).strip() == "down":
            down = time.monotonic()
        if params["node-id"] != lost and (params["replicas.desired"], params["replicas.running"]) == ("2", "2"):
            return params, seen, down or time.monotonic()
        assert time.monotonic() < deadline, (params, seen)
        time.sleep(0.1)


def test_a_lost_nodes_task_moves_and_the_parameters_follow_it(unswept, swarm, web_image):
    api, cred = unswept
    volume = f"dy-test-{uuid.uuid4().hex[:8]}"
    module = component(api, web_image, replicas=2, ports=[{"target-port": 8080}],
                       mounts=[{"mount-type": "volume", "source": volume, "target": "/data"}],
                       **{"restart-policy": {"condition": "any"}})
    dep_id = deploy(api, module, parent=cred)
    swarm.docker(0, "node", "update", "--availability", "pause", "node1")  # no new task on the manager
    try:
        start(api, dep_id)
        assert wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)["state"] == "STARTED"
    finally:
        swarm.docker(0, "node", "update", "--availability", "active", "node1")
    before = parameters(api, dep_id)
    lost = before["node-id"]
    assert lost in ("node2", "node3") and before["replicas.running"] == "2"
    index = NODE_NAMES.index(lost)
    assert before["hostname"] == swarm.addresses[index]

    try:
        t0 = time.monotonic()
        swarm.stop_node(index)
        stopped = time.monotonic() - t0
        params, seen, down = wait_placement(api, swarm, dep_id, lost)
        followed = time.monotonic()
        print(f"[swarm node lost] {lost} stopped in {stopped:.1f} s; the manager called it down after "
              f"{down - t0:.1f} s; parameters on the new placement after {followed - t0:.1f} s, "
              f"{followed - down:.1f} s after the manager (replicas.running seen: {' → '.join(seen)}; no sweep)")
        assert followed - down < 15  # the events and the looks after them, not a sweep (10 minutes away)
        assert "1" in seen  # dropped, then recovered
        moved = params["node-id"]
        assert moved in NODE_NAMES and moved != lost
        assert params["hostname"] == swarm.addresses[NODE_NAMES.index(moved)]
        assert params["tcp.8080"] != before["tcp.8080"] or params["hostname"] != before["hostname"]
        answer = httpx.get(f"http://{params['hostname']}:{params['tcp.8080']}/hostname", timeout=5)
        assert answer.status_code == 200
        assert api.get(dep_id).data["state"] == "STARTED"

        # stopped with remove-volumes while the node is still down: its copy of the volume is kept, and
        # the deployment says where; the nodes that are up have none left
        t1 = time.monotonic()
        api.operation(api.get(dep_id), "stop", {"remove-volumes": True})
        doc = wait_state(api, dep_id, "STOPPED", timeout=120)
        print(f"[swarm node lost] stopped with remove-volumes in {time.monotonic() - t1:.1f} s while {lost} was "
              f"down: {doc['status-message']}")
        assert doc["status-message"] == f"stopped; volumes {volume} kept on {lost} (node down: no task reached it)"
        for i, name in enumerate(NODE_NAMES):
            if name != lost:
                assert volume not in swarm.docker(i, "volume", "ls", "-q").split()
    finally:
        t2 = time.monotonic()
        swarm.start_node(index)
        print(f"[swarm node lost] {lost} back and Ready in {time.monotonic() - t2:.1f} s")

    wait_nothing_on_nodes(swarm, dep_id)  # the returned node removes its old task's container too
    assert volume in swarm.docker(index, "volume", "ls", "-q").split()  # the copy it kept, as the stop said
    swarm.docker(index, "volume", "rm", volume)
