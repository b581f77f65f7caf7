"""The swarm rows of ``benchmarks/deploy.py`` (issue 12): a 3-replica service and a 2-service stack on a real
3-node swarm, each beside the docker CLI doing the same on the same swarm in the same run.

The swarm is the tests' (``tests/support/swarm.py``): three Docker-in-Docker nodes on this machine, the
manager reached over TCP + TLS on loopback. A Dockyard server is started for it with the manager registered
as an ``infrastructure-service`` of subtype ``swarm`` and checked (the check probes the routing mesh once and
stores the answer, so no start pays for the probe). Interleaved round by round, after one warm-up round:

* **service**: a component with ``replicas: 3`` and port 8080 (busybox httpd): ``POST .../start`` until the
  deployment is seen STARTED (the start job returns once every replica runs); beside it ``docker service
  create --detach`` of the same image, replicas and port (host mode with ``--endpoint-mode dnsrr`` where the
  routing mesh does not answer, as Dockyard then does) and a client asking the manager for the service's
  running tasks every 20 ms until there are 3.
* **stack**: an ``application`` module (``compatibility: swarm``) of two services, ``web`` publishing 8080 and
  ``backend``: ``POST .../start`` until STARTED; beside it ``docker stack deploy`` of the same compose file
  (as Dockyard hands it over: host-mode ports without a mesh) until both services have a running task.

The client polls ``GET /api/deployment/<uuid>`` every 20 ms (a swarm start takes seconds). The stops and
removals are not timed. Everything is removed at the end: the deployments, the baselines' services and
stacks, the swarm's nodes, network and volumes.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import docker
from rich.table import Table

from tests.conftest import start_server, stop_server
from tests.support.images import BUSYBOX_TAG, _add_bytes, _build
from tests.support.swarm import Swarm, remove_swarm, start_swarm

POLL = 0.02
TIMEOUT = 120.0
REPLICAS = 3
WEB_TAG = "dockyard-bench/swarm-httpd:1"
WEB_DOCKERFILE = f'FROM {BUSYBOX_TAG}\nCMD ["httpd", "-f", "-p", "8080", "-h", "/etc"]\n'.encode()


def _compose(image: str, host_mode: bool) -> str:
    """Two services; ``web`` publishes 8080 (in host mode, with DNS round robin, where the mesh is dead)."""
    port = "      - {target: 8080, mode: host}\n" if host_mode else "      - {target: 8080}\n"
    dnsrr = "    deploy: {endpoint_mode: dnsrr}\n" if host_mode else ""
    return (f"services:\n  web:\n    image: {image}\n    ports:\n{port}{dnsrr}"
            f"  backend:\n    image: {image}\n{dnsrr}")


class SwarmBench:
    def __init__(self, dclient: docker.DockerClient, client_factory: Callable[[str], Any], log: Callable[[str], None],
                 run_id: str) -> None:
        self.dclient, self.new_client, self.log, self.run_id = dclient, client_factory, log, run_id
        self.prefix = f"dybench-{run_id}"
        self.work = tempfile.mkdtemp(prefix="dockyard-bench-swarm-")  # 0700: holds the client's TLS key
        self.swarm: Swarm | None = None
        self.server: Any = None
        self.deployed: list[str] = []

    # -- set-up -----------------------------------------------------------------------------------------

    def set_up(self, admin_password: str) -> None:
        self.swarm = swarm = start_swarm(self.dclient, self.prefix, self.work, progress=self.log)
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", WEB_DOCKERFILE)
        _build(self.dclient, WEB_TAG, context)
        swarm.load_image(self.dclient, WEB_TAG)
        for name, text in (("ca.pem", swarm.ca), ("cert.pem", swarm.cert), ("key.pem", swarm.key)):
            fd = os.open(os.path.join(self.work, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        self.server = start_server(os.path.join(self.work, "data"),
                                   extra_env={"DOCKYARD_SWARM_PROBE_IMAGE": swarm.image})
        admin = self.new_client(self.server.endpoint)
        admin.login("admin", admin_password)
        name, password = f"swarm-bench-{self.run_id}", "pw-" + uuid.uuid4().hex
        admin.call("POST", "/user", {"template": {"href": "user-template/username-password", "username": name,
                                                  "password": password}}, want=201)
        admin.close()
        self.api = api = self.new_client(self.server.endpoint)
        api.login(name, password)
        infra = api.call("POST", "/infrastructure-service", {"name": "bench-swarm", "template": {
            "href": "infrastructure-service-template/generic", "subtype": "swarm",
            "endpoint": swarm.endpoint}}, want=201)["resource-id"]
        self.credential = api.call("POST", "/credential", {"name": "bench-swarm", "template": {
            "href": "credential-template/infrastructure-service-swarm", "parent": infra, "ca": swarm.ca,
            "cert": swarm.cert, "key": swarm.key}}, want=201)["resource-id"]
        job = api.call("POST", f"/{self.credential}/check", want=202)["location"]
        self._until(lambda: api.call("GET", f"/{job}")["state"] in ("SUCCESS", "FAILED"), "the engine check")
        checked = api.call("GET", f"/{infra}")
        if not checked.get("swarm-manager"):
            raise RuntimeError(f"the swarm's manager was not recognised: {checked}")
        self.mesh = bool(checked.get("swarm-routing-mesh", False))
        project = f"swarmbench{self.run_id}"
        api.call("POST", "/module", {"path": project, "subtype": "project", "name": project}, want=201)
        repository, _, tag = WEB_TAG.rpartition(":")
        repo, _, image_name = repository.rpartition("/")
        self.service_module = api.call("POST", "/module", {
            "path": f"{project}/web3", "subtype": "component", "name": "web3", "content": {
                "image": {"repository": repo, "image-name": image_name, "tag": tag}, "author": "bench",
                "architectures": ["amd64"], "ports": [{"target-port": 8080}], "replicas": REPLICAS}},
            want=201)["resource-id"]
        self.stack_module = api.call("POST", "/module", {
            "path": f"{project}/pair", "subtype": "application", "name": "pair", "compatibility": "swarm",
            "content": {"author": "bench", "docker-compose": _compose(WEB_TAG, False)}}, want=201)["resource-id"]
        self.compose_path = os.path.join(self.work, "pair.yml")
        with open(self.compose_path, "w") as f:
            f.write(_compose(WEB_TAG, not self.mesh))
        self.log(f"swarm bench: server at {self.server.endpoint}, routing mesh "
                 f"{'answers' if self.mesh else 'does not answer (host-mode ports, dnsrr)'}")

    # -- Dockyard -------------------------------------------------------------------------------------

    def _until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(POLL)

    def dockyard_start(self, module_id: str) -> float:
        dep = self.api.call("POST", "/deployment", {"module": {"href": module_id}, "parent": self.credential},
                            want=201)["resource-id"]
        self.deployed.append(dep)
        t0 = time.perf_counter()
        self.api.call("POST", f"/{dep}/start", want=202)

        def started() -> bool:
            state = self.api.call("GET", f"/{dep}")["state"]
            if state == "ERROR":
                raise RuntimeError(f"{dep} failed: {self.api.call('GET', f'/{dep}').get('status-message')}")
            return state == "STARTED"

        self._until(started, f"{dep} STARTED")
        elapsed = time.perf_counter() - t0
        self.api.call("POST", f"/{dep}/stop", want=202)
        self._until(lambda: self.api.call("GET", f"/{dep}")["state"] in ("STOPPED", "ERROR"), f"{dep} STOPPED")
        self.api.call("DELETE", f"/{dep}")
        return elapsed

    # -- the docker CLI, on the same manager ------------------------------------------------------------

    def _docker(self, *args: str) -> str:
        env = {**os.environ, "DOCKER_HOST": self.swarm.endpoint, "DOCKER_TLS_VERIFY": "1",
               "DOCKER_CERT_PATH": self.work}
        return subprocess.run(["docker", *args], env=env, check=True, capture_output=True, text=True).stdout

    def _running(self, service_filter: dict[str, str]) -> dict[str, int]:
        api = self._manager
        counts: dict[str, int] = {}
        for service in api.services(filters=service_filter):
            tasks = api.tasks(filters={"service": service["ID"], "desired-state": "running"})
            counts[service["Spec"]["Name"]] = sum(t["Status"]["State"] == "running" for t in tasks)
        return counts

    def cli_service(self) -> float:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        publish = "target=8080" if self.mesh else "mode=host,target=8080"
        mode = [] if self.mesh else ["--endpoint-mode", "dnsrr"]
        t0 = time.perf_counter()
        self._docker("service", "create", "--detach", "--quiet", "--name", name, "--replicas", str(REPLICAS),
                     "--publish", publish, *mode, WEB_TAG)
        self._until(lambda: self._running({"name": name}).get(name, 0) >= REPLICAS, f"service {name}")
        elapsed = time.perf_counter() - t0
        self._docker("service", "rm", name)
        self._gone({"label": f"com.docker.swarm.service.name={name}"})
        return elapsed

    def cli_stack(self) -> float:
        name = f"bench{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        self._docker("stack", "deploy", "--quiet", "-c", self.compose_path, name)
        label = {"label": f"com.docker.stack.namespace={name}"}
        self._until(lambda: (lambda c: len(c) == 2 and all(c.values()))(self._running(label)), f"stack {name}")
        elapsed = time.perf_counter() - t0
        self._docker("stack", "rm", name)
        self._gone(label)
        return elapsed

    def _gone(self, service_filter: dict[str, str]) -> None:
        """Wait until the removed services' task containers are gone (so rounds do not overlap)."""
        self._until(lambda: not self._manager.services(filters=service_filter), "services removed")

    # -- the run --------------------------------------------------------------------------------------

    def run(self, rounds: int, admin_password: str) -> Table:
        try:
            self.set_up(admin_password)
            # the same TLS client identity, through Dockyard's own connection (its context trusts the test CA)
            self._manager = self.swarm.driver()._api()
            self.log("swarm warm-up: one of each, not counted")
            self.dockyard_start(self.service_module), self.cli_service()
            self.dockyard_start(self.stack_module), self.cli_stack()
            rows: dict[str, list[float]] = {k: [] for k in ("service", "cli-service", "stack", "cli-stack")}
            self.log(f"{rounds} swarm rounds: a 3-replica service and a 2-service stack, Dockyard and CLI")
            for _ in range(rounds):
                rows["service"].append(self.dockyard_start(self.service_module))
                rows["cli-service"].append(self.cli_service())
                rows["stack"].append(self.dockyard_start(self.stack_module))
                rows["cli-stack"].append(self.cli_stack())
            return _table(rows, self.mesh)
        finally:
            self.close()

    def close(self) -> None:
        if self.server is not None:
            stop_server(self.server)
        remove_swarm(self.dclient, self.prefix)  # the nodes go with everything they ran
        subprocess.run(["rm", "-rf", self.work], check=False)


def _table(rows: dict[str, list[float]], mesh: bool) -> Table:
    ports = "ingress" if mesh else "host-mode ports, dnsrr"
    table = Table(title=f"On a 3-node swarm ({ports}), same run", title_justify="left")
    for col, justify in (("what", "left"), ("median", "right"), ("p90", "right"), ("n", "right"),
                         ("× CLI", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    med = {k: statistics.median(v) for k, v in rows.items()}
    for key, label, base in (
            ("service", "Dockyard: start → STARTED, component with 3 replicas", "cli-service"),
            ("cli-service", "docker service create --replicas 3 + wait for 3 running tasks", None),
            ("stack", "Dockyard: start → STARTED, application of 2 services (stack)", "cli-stack"),
            ("cli-stack", "docker stack deploy (2 services) + wait for both running", None)):
        values = sorted(rows[key])
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        ratio = f"{med[key] / med[base]:.2f}×" if base else ""
        table.add_row(label, f"{med[key] * 1000:.0f} ms", f"{p90 * 1000:.0f} ms", str(len(values)), ratio)
    return table
