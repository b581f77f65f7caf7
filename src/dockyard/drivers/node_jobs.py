"""A one-shot command on every node of a swarm, through its manager, leaving nothing behind.

A swarm manager's Engine API reaches only its own node's objects (volumes, images); what must happen on
each node (remove a deployment's named volumes) runs as a task there. Swarm's ``global-job`` mode would fit,
but on Docker 20.10 a removed job service leaves its completed tasks, and their exited containers on every
node, behind for good (moby/moby#42789, #44312). So the command runs as the task of a ``global`` service (one
per node that is up) that marks success in a file its health check looks for and then waits: the task is
``running`` once the command succeeded (a health check holds a Swarm task in ``starting`` until healthy), and
``failed`` when it exits non-zero. Once every node's task is one or the other the service is removed, and
its tasks and containers go with it as for any service. A node that is down gets no task: the answer says so.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import docker
import docker.errors
import docker.types

SOCKET = "/var/run/docker.sock"
DONE = "/tmp/dockyard-node-job-done"
POLL = 0.2
NODE_DOWN = "node down: no task reached it"
_ENDED = {"failed", "rejected", "shutdown", "orphaned", "remove", "complete"}


def run_on_every_node(api: docker.APIClient, image: str, script: str, args: list[str], *,
                      labels: dict[str, str], docker_socket: bool = False, timeout: float = 60.0) -> dict[str, str]:
    """Run the ``sh`` ``script`` (with ``args`` as ``$@``) in ``image`` once on every node that is up; node
    hostname → "" (it succeeded) or what went wrong there.

    ``docker_socket`` binds the node's engine socket into the task (for a script that asks the node's own
    engine). Raises TimeoutError when the tasks have not all ended within ``timeout`` seconds; the service
    is removed either way."""
    mounts = [docker.types.Mount(SOCKET, SOCKET, type="bind")] if docker_socket else []
    wrapped = f"( {script} ) || exit $?; touch {DONE}; exec sleep {int(timeout) + 60}"
    health = docker.types.Healthcheck(test=["CMD", "test", "-e", DONE], interval=int(POLL * 1e9),
                                      timeout=int(5e9), retries=int(timeout / POLL) + 10)
    # init: the waiting `sleep` is PID 1 otherwise, which ignores the SIGTERM of the removal (10 s more)
    container = docker.types.ContainerSpec(image, command=["sh", "-c", wrapped, "node-job", *args],
                                           labels=labels, mounts=mounts, healthcheck=health, init=True)
    template = docker.types.TaskTemplate(container, restart_policy=docker.types.RestartPolicy(condition="none"))
    body = {"Name": f"dockyard-node-job-{uuid.uuid4().hex[:8]}", "Labels": labels, "TaskTemplate": dict(template),
            "Mode": {"Global": {}}}
    service = str(api._result(api._post_json(api._url("/services/create"), data=body), json=True)["ID"])
    try:
        return _outcome(api, service, time.monotonic() + timeout)
    finally:
        _remove(api, service, time.monotonic() + timeout)


def _outcome(api: docker.APIClient, service: str, deadline: float) -> dict[str, str]:
    nodes = api.nodes()
    names = {n["ID"]: (n.get("Description") or {}).get("Hostname", n["ID"]) for n in nodes}
    ready = {n["ID"] for n in nodes if (n.get("Status") or {}).get("State") == "ready"}
    while True:
        tasks = {t.get("NodeID", ""): t for t in api.tasks(filters={"service": service})}
        states = {node: t["Status"]["State"] for node, t in tasks.items()}
        if ready <= set(tasks) and all(s == "running" or s in _ENDED for s in states.values()):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the node job {service} did not end on every node in time ({states})")
        time.sleep(POLL)
    outcome = {name: NODE_DOWN for node, name in names.items() if node not in tasks}
    for node, task in tasks.items():
        status = task["Status"]
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        outcome[names.get(node, node)] = "" if status["State"] == "running" else (
            status.get("Err") or f"exit code {exit_code}")
    return outcome


def _remove(api: docker.APIClient, service: str, deadline: float) -> None:
    """Remove the service and wait until the nodes removed its task containers."""
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_service(service)
    while time.monotonic() < deadline and any(t.get("ServiceID") == service for t in api.tasks()):
        time.sleep(POLL)
