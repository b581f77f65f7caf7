"""Does this swarm's service virtual-IP load balancing (and so its ingress routing mesh) answer?

Both ride on the kernel's IPVS. Where the nodes' kernel has none (some sandboxes and minimal kernels), a
swarm still forms, schedules tasks, publishes ``mode=host`` ports and carries overlay traffic, but a
connection to a service's virtual IP, or to an ingress-published port, goes nowhere. A driver that deploys
services there must use ``endpoint_mode: dnsrr`` and host-mode ports instead, and say so.

Nothing in the Engine API tells: the engine assigns virtual IPs either way and only logs the IPVS failure.
So the probe asks the swarm itself: a one-replica web service on a fresh overlay network, and a one-shot
task on the same network that fetches it by service name (which resolves to the virtual IP). The probe image
must be busybox-like: ``httpd``, ``wget`` and ``sh``. Everything the probe creates carries
``dockyard.probe=routing-mesh`` and is removed before it returns.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import docker
import docker.errors
import docker.types

LABEL = "dockyard.probe"
_FINAL = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
_CANNOT_RUN = {"failed", "rejected"}


class ProbeFailed(Exception):
    """The probe's web service could not run (its image is missing on the node, say): no answer either way."""


def routing_mesh_answers(api: docker.APIClient, image: str, *, timeout: float = 60.0) -> bool:
    """True when a task reaches another service through its virtual IP; False when the connection fails.

    ``api``: a client of a swarm manager. ``image`` must be present on the nodes (nothing is pulled when it
    is). Raises TimeoutError when the probe's tasks do not finish within ``timeout`` seconds, ProbeFailed
    at once when its web task cannot run (the image is missing, say)."""
    name = f"dockyard-mesh-probe-{uuid.uuid4().hex[:8]}"
    labels = {LABEL: "routing-mesh"}
    network = api.create_network(name, driver="overlay", labels=labels)["Id"]
    services: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        services.append(_service(api, f"{name}-web", image, ["httpd", "-f", "-p", "8080", "-h", "/etc"],
                                 network, labels, restart="any"))
        _wait_task(api, services[0], {"running"}, deadline)
        # `timeout`, not `wget -T`: Debian's static busybox wget crashes on -T
        fetch = (f"for i in 1 2 3; do timeout 3 wget -q -O /dev/null http://{name}-web:8080/hostname && exit 0; "
                 "sleep 1; done; exit 1")
        services.append(_service(api, f"{name}-client", image, ["sh", "-c", fetch], network, labels,
                                 restart="none"))
        return _wait_task(api, services[1], _FINAL, deadline) == "complete"
    finally:
        for service in services:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_service(service)
        _remove_network(api, network)


def _service(api: docker.APIClient, name: str, image: str, command: list[str], network: str,
             labels: dict[str, str], *, restart: str) -> str:
    template = docker.types.TaskTemplate(
        docker.types.ContainerSpec(image, command=command, labels=labels),
        restart_policy=docker.types.RestartPolicy(condition=restart),
        networks=[network])
    created = api.create_service(template, name=name, labels=labels,
                                 endpoint_spec=docker.types.EndpointSpec(mode="vip"))
    return str(created["ID"])


def _wait_task(api: docker.APIClient, service: str, states: set[str], deadline: float) -> str:
    while time.monotonic() < deadline:
        for task in api.tasks(filters={"service": service}):
            state = task.get("Status", {}).get("State", "")
            if state in states:
                return str(state)
            if state in _CANNOT_RUN:
                status = task.get("Status", {})
                raise ProbeFailed(f"the routing-mesh probe's task could not run: {status.get('Err') or state}")
        time.sleep(0.2)
    raise TimeoutError(f"the routing-mesh probe's service {service} did not reach {sorted(states)} in time")


def _remove_network(api: docker.APIClient, network: str, timeout: float = 15.0) -> None:
    """The network stays in use until the removed services' tasks are gone on every node."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            api.remove_network(network)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
