"""Components as Swarm services, through Dockyard's API, on the real 3-node swarm (issue 12).

The manager is registered as Nuvla has it (an ``infrastructure-service`` of subtype ``swarm`` at
``tcp://127.0.0.1:<port>`` with the test swarm's client certificate as its credential) and checked, so its
engine is known to be a swarm manager: its deployments' components then run as services (the server and the
checked manager are shared by the swarm tests: ``conftest.py``). This kernel has no IPVS, so the check's
routing-mesh probe finds no mesh and the driver publishes in host mode with ``dnsrr``.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx

from tests.deployments.conftest import component, deploy, parameters, start, wait_state

from .helpers import node_containers, wait_nothing_on_nodes

PORT = 18181


def test_three_replicas_spread_answer_on_their_host_port_and_stop_leaves_nothing(manager, swarm, web_image):
    api, cred, *_ = manager
    module = component(api, web_image, replicas=3, ports=[{"target-port": 8080, "published-port": PORT}],
                       **{"restart-policy": {"condition": "any"}})
    dep_id = deploy(api, module, parent=cred)
    t0 = time.monotonic()
    start(api, dep_id)
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=180)
    elapsed = time.monotonic() - t0
    assert doc["state"] == "STARTED", doc.get("status-message")
    print(f"[swarm services] start → 3 replicas running in {elapsed:.2f} s ({doc['status-message']})")
    assert doc["status-message"].endswith("; ports published in host mode on each task's node: this swarm's "
                                          "routing mesh does not answer")

    # one service, carrying the deployment's labels, its three tasks on three nodes
    [service] = [json.loads(line) for line in swarm.docker(
        0, "service", "ls", "--filter", f"label=dockyard.deployment-id={dep_id}", "--format", "{{json .}}")
        .splitlines()]
    assert service["Replicas"] == "3/3"
    tasks = swarm.docker(0, "service", "ps", service["ID"], "--filter", "desired-state=running",
                         "--format", "{{.Node}}").split()
    assert sorted(tasks) == ["node1", "node2", "node3"]
    spec = json.loads(swarm.docker(0, "service", "inspect", service["ID"]))[0]["Spec"]
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"  # no routing mesh on this kernel
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"]["dockyard.deployment-id"] == dep_id
    env = dict(e.split("=", 1) for e in spec["TaskTemplate"]["ContainerSpec"]["Env"])
    assert env["NUVLA_DEPLOYMENT_ID"] == dep_id

    params = parameters(api, dep_id)
    assert params["tcp.8080"] == str(PORT)
    assert params["hostname"] in swarm.addresses
    assert (params["replicas.desired"], params["replicas.running"]) == ("3", "3")
    assert params["current.state"] == "running" and params["current.desired.state"] == "running"
    assert params["node-id"] in ("node1", "node2", "node3")
    # the published port answers on the node the parameters name, and on every node with its own task
    assert httpx.get(f"http://{params['hostname']}:{params['tcp.8080']}/hostname", timeout=5).status_code == 200
    names = {httpx.get(f"http://{a}:{PORT}/hostname", timeout=5).text.strip() for a in swarm.addresses}
    assert len(names) == 3

    # scaled outside Dockyard: the parameters follow the swarm
    t0 = time.monotonic()
    swarm.docker(0, "service", "scale", "--detach", f"{service['ID']}=2")
    deadline = time.monotonic() + 30
    while (parameters(api, dep_id)["replicas.desired"], parameters(api, dep_id)["replicas.running"]) != ("2", "2"):
        assert time.monotonic() < deadline, parameters(api, dep_id)
        time.sleep(0.2)
    print(f"[swarm services] scaled to 2 outside Dockyard: parameters 2/2 after {time.monotonic() - t0:.2f} s")
    assert api.get(dep_id).data["state"] == "STARTED"

    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED", timeout=120)
    assert swarm.docker(0, "service", "ls", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").split() == []
    assert node_containers(swarm, dep_id) == {"node1": [], "node2": [], "node3": []}


def test_the_driver_reports_each_task_with_its_node_and_ephemeral_port_and_reads_every_tasks_log(
        swarm, web_image, manager):
    """Without a published port each node picks one for its own task; the log holds every task's lines."""
    from dockyard.drivers import TlsMaterial
    from dockyard.drivers.base import RUNNING, PortSpec, RestartPolicy, TaskSpec
    from dockyard.drivers.swarm import SwarmDriver

    dep_id = f"deployment/{uuid.uuid4()}"
    spec = TaskSpec(dep_id, f"logs-{dep_id[-8:]}", web_image, ports=(PortSpec(8080),), replicas=3,
                    restart=RestartPolicy("any"),
                    command=("sh", "-c", "echo hello from $(hostname); exec httpd -f -p 8080 -h /etc"))
    # the answer the engine check stored (the session's one probe), so the start below probes nothing
    api, _, infra, _ = manager
    known = api.get(infra).data["swarm-routing-mesh"]
    with SwarmDriver(swarm.endpoint, TlsMaterial(swarm.cert, swarm.key, swarm.ca), probe_image=swarm.image,
                     routing_mesh=known) as driver:
        try:
            assert driver.routing_mesh() is swarm.ipvs
            t1 = time.monotonic()
            result = driver.start(spec)
            print(f"[swarm services] driver start → 3 replicas running {time.monotonic() - t1:.2f} s")
            tasks = driver.inspect(dep_id)
            assert len(result.tasks) == 3 and [t.state for t in tasks] == [RUNNING] * 3
            assert sorted(t.node for t in tasks) == ["node1", "node2", "node3"]
            for task in tasks:
                [port] = task.ports
                assert task.address in swarm.addresses and port.host_ip == task.address and port.host_port > 0
                answer = httpx.get(f"http://{task.address}:{port.host_port}/hostname", timeout=5).text.strip()
                assert answer
            deadline = time.monotonic() + 30
            while len(lines := [x for x in driver.logs(dep_id) if "hello from" in x]) < 3:
                assert time.monotonic() < deadline, lines
                time.sleep(0.5)
            assert len({line.rsplit(" ", 1)[-1] for line in lines}) == 3
            assert all(line[:4].isdigit() for line in lines)  # timestamped, in time order
        finally:
            driver.destroy(dep_id)
        assert driver.inspect(dep_id) == [] and driver.managed().get(dep_id) is None
        # the manager's own node is empty when destroy returns; a worker's removal of its task container is out
        # of the manager's sight, and may lag under load (the manager forgets the task first)
        assert node_containers(swarm, dep_id)["node1"] == []
        wait_nothing_on_nodes(swarm, dep_id)


def test_a_container_started_before_the_engine_was_known_a_manager_is_still_seen_and_removed(swarm, web_image):
    """An engine's driver changes when a check first finds it a swarm manager: what a deployment got from the
    container driver before must not be lost to the service driver (nor leaked by its stop)."""
    from dockyard.drivers import TlsMaterial
    from dockyard.drivers.base import RUNNING, TaskSpec
    from dockyard.drivers.swarm import SwarmDriver

    dep_id = f"deployment/{uuid.uuid4()}"
    with swarm.driver() as containers:
        containers.start(TaskSpec(dep_id, f"plain-{dep_id[-8:]}", web_image))
    with SwarmDriver(swarm.endpoint, TlsMaterial(swarm.cert, swarm.key, swarm.ca), probe_image=swarm.image) as driver:
        try:
            assert [t.state for t in driver.inspect(dep_id)] == [RUNNING]
            assert dep_id in driver.managed()
            driver.stop(dep_id, timeout=2)
            assert [t.state for t in driver.inspect(dep_id)] == ["exited"]
        finally:
            driver.destroy(dep_id)
        assert driver.inspect(dep_id) == [] and dep_id not in driver.managed()
    assert node_containers(swarm, dep_id) == {"node1": [], "node2": [], "node3": []}


def test_where_the_routing_mesh_answers_ports_are_published_on_the_ingress_behind_a_virtual_ip(swarm, web_image):
    """What a swarm whose check found a routing mesh gets (here the kernel has none, so the driver is told
    there is one): the service behind a virtual IP, its port published on the ingress network at a port the
    swarm picks, and that port, the same on every node, is the one the tasks report. (That the ingress answers
    cannot be shown on this kernel: without IPVS it does not; ``test_swarm_fixture`` shows that.)"""
    from dockyard.drivers import TlsMaterial
    from dockyard.drivers.base import RUNNING, PortSpec, RestartPolicy, TaskSpec
    from dockyard.drivers.swarm import SwarmDriver

    dep_id = f"deployment/{uuid.uuid4()}"
    spec = TaskSpec(dep_id, f"ingress-{dep_id[-8:]}", web_image, ports=(PortSpec(8080),), replicas=2,
                    restart=RestartPolicy("any"))
    with SwarmDriver(swarm.endpoint, TlsMaterial(swarm.cert, swarm.key, swarm.ca), probe_image=swarm.image,
                     routing_mesh=True) as driver:
        try:
            result = driver.start(spec)
            assert result.notes == ()  # nothing fell back
            [service] = json.loads(swarm.docker(0, "service", "inspect", spec.name))
            assert service["Spec"]["EndpointSpec"]["Mode"] == "vip"
            [port] = service["Endpoint"]["Ports"]
            assert (port["PublishMode"], port["TargetPort"]) == ("ingress", 8080) and port["PublishedPort"] >= 30000
            assert service["Endpoint"]["VirtualIPs"], "no virtual IP"
            tasks = driver.inspect(dep_id)
            assert [t.state for t in tasks] == [RUNNING, RUNNING]
            assert {(p.target, p.host_port, p.host_ip) for t in tasks for p in t.ports} == \
                {(8080, port["PublishedPort"], "")}
        finally:
            driver.destroy(dep_id)
        wait_nothing_on_nodes(swarm, dep_id)
