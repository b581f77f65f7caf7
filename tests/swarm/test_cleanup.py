"""Stop and delete leave nothing of a service deployment on any node (issue 12): no service, task container,
network, secret or config, the deployment's key revoked, and with ``remove-volumes`` its named volume gone from
every node a task made it on (a one-shot task on each node removes it there: the manager's API reaches
only its own node's volumes), and that task's containers go too. Without ``remove-volumes`` the volumes stay,
as Nuvla's contract says."""

from __future__ import annotations

import time
import uuid

import pytest
from nuvla.api import NuvlaError

from tests.deployments.conftest import api_for, component, deploy, start, wait_state

from .helpers import NODE_NAMES, swarm_objects, wait_nothing_on_nodes


def volumes_on_nodes(swarm, name: str) -> dict[str, bool]:
    return {NODE_NAMES[i]: name in swarm.docker(i, "volume", "ls", "-q").split() for i in range(len(swarm.nodes))}


def helpers_left(swarm, timeout: float = 15.0) -> list[str]:
    """The volume-removing helper's services and (once the nodes removed them) task containers."""
    deadline = time.monotonic() + timeout
    while True:
        found = swarm.docker(0, "service", "ls", "-q", "--filter", "label=dockyard.helper").split()
        for i in range(len(swarm.nodes)):
            found += swarm.docker(i, "ps", "-aq", "--filter", "label=dockyard.helper").split()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def key_works(server, key: str, secret: str) -> bool:
    return api_for(server).login_apikey(key, secret).status_code == 201


def start_and_read_key(api, swarm, dep_id: str) -> tuple[str, str]:
    """Start; the key and secret its tasks got (from a task's environment, as the container sees them)."""
    start(api, dep_id)
    assert wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)["state"] == "STARTED"
    [service] = swarm.docker(0, "service", "ls", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").split()
    env = swarm.docker(0, "service", "inspect", "--format", "{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}",
                       service)
    found = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    return found["NUVLA_API_KEY"], found["NUVLA_API_SECRET"]


def test_stop_and_delete_leave_nothing_on_any_node_and_remove_volumes_empties_every_node(
        server, manager, swarm, web_image):
    api, cred, *_ = manager
    volume = f"dy-test-{uuid.uuid4().hex[:8]}"
    module = component(api, web_image, replicas=3, ports=[{"target-port": 8080}],
                       mounts=[{"mount-type": "volume", "source": volume, "target": "/data"}],
                       **{"restart-policy": {"condition": "any"}})
    dep_id = deploy(api, module, parent=cred)
    nothing = {"service": [], "secret": [], "config": [], **{f"{n} networks": [] for n in NODE_NAMES}}

    # a stop without remove-volumes: nothing left but the volume on each node, and the key revoked
    key, secret = start_and_read_key(api, swarm, dep_id)
    assert key_works(server, key, secret)
    assert volumes_on_nodes(swarm, volume) == {n: True for n in NODE_NAMES}
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED", timeout=120)
    wait_nothing_on_nodes(swarm, dep_id)
    assert swarm_objects(swarm, dep_id) == nothing
    assert not key_works(server, key, secret)
    assert volumes_on_nodes(swarm, volume) == {n: True for n in NODE_NAMES}

    # started again, stopped with remove-volumes: the volume is gone from every node, no helper left
    key, secret = start_and_read_key(api, swarm, dep_id)
    api.operation(api.get(dep_id), "stop", {"remove-volumes": True})
    doc = wait_state(api, dep_id, "STOPPED", timeout=120)
    print(f"[swarm cleanup] stop with remove-volumes: {doc.get('status-message')}")
    wait_nothing_on_nodes(swarm, dep_id)
    assert swarm_objects(swarm, dep_id) == nothing
    assert volumes_on_nodes(swarm, volume) == {n: False for n in NODE_NAMES}
    assert helpers_left(swarm) == [] and not key_works(server, key, secret)

    # delete: the deployment goes, and still nothing on the nodes
    api.delete(dep_id)
    with pytest.raises(NuvlaError):
        api.get(dep_id)
    assert swarm_objects(swarm, dep_id) == nothing
    wait_nothing_on_nodes(swarm, dep_id)


def test_a_started_deployment_deleted_by_force_leaves_nothing_on_any_node(manager, swarm, web_image):
    api, cred, *_ = manager
    module = component(api, web_image, replicas=3, ports=[{"target-port": 8080}])
    dep_id = deploy(api, module, parent=cred)
    start(api, dep_id)
    assert wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)["state"] == "STARTED"
    api.operation(api.get(dep_id), "force-delete")
    wait_nothing_on_nodes(swarm, dep_id, timeout=60)
    assert swarm_objects(swarm, dep_id)["service"] == []
