"""What the swarm tests share: waiting for a job, the deployment's objects on each node."""

from __future__ import annotations

import json
import time

NODE_NAMES = ("node1", "node2", "node3")


def wait_job(api, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    job = api.get(job_id).data
    while job["state"] not in ("SUCCESS", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = api.get(job_id).data
    return job


def node_containers(swarm, dep_id: str) -> dict[str, list[str]]:
    return {f"node{i + 1}": swarm.docker(i, "ps", "-aq", "--filter", f"label=dockyard.deployment-id={dep_id}").split()
            for i in range(len(swarm.nodes))}


def wait_nothing_on_nodes(swarm, dep_id: str, timeout: float = 30.0) -> None:
    """No container of the deployment on any node (a node removes a removed task's container a moment later)."""
    deadline = time.monotonic() + timeout
    while (found := node_containers(swarm, dep_id)) != {name: [] for name in NODE_NAMES}:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def services_of(swarm, dep_id: str) -> list[dict]:
    """The manager's services labelled with the deployment, as ``docker service inspect`` shows them."""
    ids = swarm.docker(0, "service", "ls", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").split()
    return json.loads(swarm.docker(0, "service", "inspect", *ids)) if ids else []


def swarm_objects(swarm, dep_id: str) -> dict[str, list[str]]:
    """The manager's services, networks, secrets and configs labelled with the deployment (all cluster-wide),
    and each node's networks."""
    label = f"label=dockyard.deployment-id={dep_id}"
    found = {kind: swarm.docker(0, kind, "ls", "-q", "--filter", label).split()
             for kind in ("service", "secret", "config")}
    for i in range(len(swarm.nodes)):
        found[f"node{i + 1} networks"] = swarm.docker(i, "network", "ls", "-q", "--filter", label).split()
    return found


def register_manager(api, swarm) -> tuple[str, str, dict]:
    """The swarm's manager registered as Nuvla has it (an infrastructure-service of subtype swarm and its
    credential with the test's client certificate); (credential, infrastructure-service, the check's job),
    once the check that a new credential gets at once has ended."""
    infra = api.add("infrastructure-service", {
        "template": {"href": "infrastructure-service-template/generic", "subtype": "swarm",
                     "endpoint": swarm.endpoint}, "name": "test-swarm"}).data["resource-id"]
    cred = api.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                               "parent": infra, "ca": swarm.ca, "cert": swarm.cert,
                                               "key": swarm.key}, "name": "test-swarm"}).data["resource-id"]
    [job] = api.search("job", filter=f"target-resource/href='{cred}' and action='credential_check'").resources
    return cred, infra, wait_job(api, job.id)


def node_image(swarm, docker_client, tag: str, dockerfile: bytes) -> str:
    """An image built here from ``dockerfile`` alone and loaded on every node of the swarm."""
    import io
    import tarfile

    from tests.support.images import _add_bytes, _build

    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile)
    _build(docker_client, tag, context)
    swarm.load_image(docker_client, tag)
    return tag
