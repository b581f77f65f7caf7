"""A one-shot command on every node of a swarm, through its manager: a ``global-job`` service.

A swarm manager's Engine API reaches only its own node's objects (volumes, images); what must happen on
each node (remove a deployment's named volumes) runs as a task there. Swarm's ``global-job`` mode (Engine
API 1.41, Docker 20.10) runs one task on each node that is up and counts the service done when each of them
ended; this module creates such a service, waits for its tasks and removes it, leaving nothing behind. A
node that is down gets no task: the answer says so.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import docker
import docker.errors
import docker.types

FINAL = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
SOCKET = "/var/run/docker.sock"
POLL = 0.2
NODE_DOWN = "node down: no task reached it"


def run_on_every_node(api: docker.APIClient, image: str, command: list[str], *, labels: dict[str, str],
                      docker_socket: bool = False, timeout: float = 60.0) -> dict[str, str]:
    """Run ``command`` in ``image`` once on every node; node hostname → "" (exited 0) or what went wrong.

    ``docker_socket`` binds the node's engine socket into the task (for a command that asks the node's own
    engine). Raises TimeoutError when the tasks have not all ended within ``timeout`` seconds; the service
    is removed either way."""
    mounts = [docker.types.Mount(SOCKET, SOCKET, type="bind")] if docker_socket else []
    container = docker.types.ContainerSpec(image, command=command, labels=labels, mounts=mounts)
    template = docker.types.TaskTemplate(container, restart_policy=docker.types.RestartPolicy(condition="none"))
    body = {"Name": f"dockyard-node-job-{uuid.uuid4().hex[:8]}", "Labels": labels, "TaskTemplate": dict(template),
            "Mode": {"GlobalJob": {}}}
    service = str(api._result(api._post_json(api._url("/services/create"), data=body), json=True)["ID"])
    try:
        return _outcome(api, service, time.monotonic() + timeout)
    finally:
        _remove(api, service, time.monotonic() + timeout)


def _outcome(api: docker.APIClient, service: str, deadline: float) -> dict[str, str]:
    nodes = {n["ID"]: (n.get("Description") or {}).get("Hostname", n["ID"]) for n in api.nodes()}
    ready = {n["ID"] for n in api.nodes() if (n.get("Status") or {}).get("State") == "ready"}
    while True:
        tasks = {t.get("NodeID", ""): t for t in api.tasks(filters={"service": service})}
        if ready <= set(tasks) and all(t["Status"]["State"] in FINAL for t in tasks.values()):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the node job {service} did not end on every node in time")
        time.sleep(POLL)
    outcome = {name: NODE_DOWN for node, name in nodes.items() if node not in tasks}
    for node, task in tasks.items():
        status = task["Status"]
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        ok = status["State"] == "complete"
        outcome[nodes.get(node, node)] = "" if ok else (status.get("Err") or f"exit code {exit_code}")
    return outcome


def _remove(api: docker.APIClient, service: str, deadline: float) -> None:
    """Remove the service and wait until the nodes removed its task containers."""
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_service(service)
    while time.monotonic() < deadline and any(t.get("ServiceID") == service for t in api.tasks()):
        time.sleep(POLL)
