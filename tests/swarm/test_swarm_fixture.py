"""The test swarm itself: three Ready nodes, replicas spread, host-mode ports, overlay traffic between nodes,
and whether the routing mesh answers on this kernel."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest

FINAL = ("complete", "failed", "rejected", "shutdown")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def running_tasks(swarm, service: str, count: int, timeout: float = 60.0) -> list[dict]:
    """The service's ``count`` running tasks ({id, node, ...} from ``docker service ps``), waited for."""
    deadline = time.monotonic() + timeout
    while True:
        lines = swarm.docker(0, "service", "ps", service, "--filter", "desired-state=running",
                             "--format", "{{json .}}").splitlines()
        tasks = [json.loads(line) for line in lines if line.strip()]
        running = [t for t in tasks if t["CurrentState"].startswith("Running")]
        if len(running) == count:
            return running
        assert time.monotonic() < deadline, tasks
        time.sleep(0.2)


def overlay_addresses(swarm, service: str, network: str) -> list[str]:
    """The address of each of the service's running tasks on ``network``, as the manager records them."""
    ids = swarm.docker(0, "service", "ps", "-q", "--filter", "desired-state=running", service).split()
    template = ('{{range .NetworksAttachments}}{{if eq .Network.Spec.Name "%s"}}{{index .Addresses 0}}{{end}}{{end}}'
                % network)
    return [line.split("/")[0] for line in swarm.docker(0, "inspect", "--format", template, *ids).split()]


@pytest.fixture
def service(swarm):
    """Names services made by a test and removes them afterwards."""
    made: list[str] = []

    def create(*args: str, name: str | None = None) -> str:
        name = name or unique("svc")
        swarm.docker(0, "service", "create", "--detach", "--name", name, *args)
        made.append(name)
        return name
    yield create
    if made:
        swarm.docker(0, "service", "rm", *made, check=False)


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def test_three_nodes_are_ready_and_node1_manages(swarm):
    nodes = [json.loads(line) for line in swarm.docker(0, "node", "ls", "--format", "{{json .}}").splitlines()]
    assert sorted(n["Hostname"] for n in nodes) == ["node1", "node2", "node3"]
    assert {n["Status"] for n in nodes} == {"Ready"}
    assert [n["Hostname"] for n in nodes if n["ManagerStatus"] == "Leader"] == ["node1"]
    assert swarm.endpoint.startswith("tcp://127.0.0.1:")


def test_three_replicas_spread_over_the_nodes_and_their_host_mode_port_answers(swarm, service):
    name = service("--replicas", "3", "--publish", "mode=host,target=8080,published=18080",
                   swarm.image, "httpd", "-f", "-p", "8080", "-h", "/etc")
    tasks = running_tasks(swarm, name, 3)
    assert sorted(t["Node"] for t in tasks) == ["node1", "node2", "node3"]
    # each node answers on the published port with its own task's container (its hostname)
    hostnames = {http_get(f"http://{address}:18080/hostname").strip() for address in swarm.addresses}
    assert len(hostnames) == 3


def test_an_overlay_network_carries_traffic_between_tasks_on_different_nodes(swarm, service):
    network, name = unique("ov"), unique("svc")
    swarm.docker(0, "network", "create", "--driver", "overlay", network)
    try:
        service("--replicas", "3", "--replicas-max-per-node", "1", "--endpoint-mode", "dnsrr",
                "--network", network, swarm.image, "httpd", "-f", "-p", "8080", "-h", "/etc", name=name)
        assert len({t["Node"] for t in running_tasks(swarm, name, 3)}) == 3
        # from node1's task, each task's overlay address answers with that task's own hostname
        local = swarm.docker(0, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}").split()[0]
        addresses = overlay_addresses(swarm, name, network)
        seen = {swarm.docker(0, "exec", local, "timeout", "5", "wget", "-q", "-O", "-",
                             f"http://{address}:8080/hostname").strip() for address in addresses}
        assert len(seen) == 3, seen
    finally:
        swarm.docker(0, "service", "rm", name, check=False)
        deadline = time.monotonic() + 60  # in use until the tasks are gone: seconds, more on a loaded host
        while swarm.docker(0, "network", "ls", "-q", "--filter", f"name={network}").strip():
            swarm.docker(0, "network", "rm", network, check=False)
            assert time.monotonic() < deadline, f"{network} is still there"
            time.sleep(0.2)


def test_the_routing_mesh_probe_agrees_with_the_kernel(swarm, manager):
    """IPVS carries service virtual IPs and the ingress mesh: the behavioural probe (run by the manager's engine
    check, which stores its answer) and the kernel agree."""
    api, _, infra, _ = manager
    assert api.get(infra).data["swarm-routing-mesh"] is swarm.ipvs
