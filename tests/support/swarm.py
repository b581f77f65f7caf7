"""A real 3-node Docker swarm for tests: Docker-in-Docker nodes on the machine's engine (issue 12).

Each node is a container of :func:`~tests.support.images.dind_image` running Debian's ``dockerd`` on the
``vfs`` storage driver, its ``/var/lib/docker`` on a volume of its own, all three on a user-defined bridge
network of their own (docker0 and the host's network namespace are never touched). ``--privileged`` is
refused in this sandbox (it lacks CAP_SYS_RESOURCE), so a node gets every capability but that one, no
seccomp or AppArmor profile, unmasked /proc and /sys paths, the host's cgroup tree and a tmpfs /run, which is
what dockerd needs to run containers.

node1 is the manager. Its engine also listens on TCP with ``--tlsverify`` (a CA, a server and a client
certificate made here with ``cryptography``), published on 127.0.0.1 only: that is the endpoint Dockyard
registers, as Nuvla's users register ``https://host:2376``. The server's key file lives in this fixture's
private temporary directory (mode 0700) and is removed with it; the client's key stays in memory.

Images reach the nodes with ``docker save | docker load`` (nothing can be pulled here); the busybox test
image is loaded on every node.

What the kernel of this machine allows, seen with this fixture: the swarm forms; replicas spread over the
nodes; ``mode=host`` published ports answer on each node's address; overlay networks carry traffic between
tasks on different nodes (VXLAN). It has no IPVS, so service virtual IPs and the ingress routing mesh do not
answer: :attr:`Swarm.ipvs` says whether the kernel has it and :attr:`Swarm.routing_mesh` asks the swarm
itself with :func:`dockyard.drivers.mesh.routing_mesh_answers` (as the driver will).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import docker.errors
import pytest

from dockyard.drivers import TlsMaterial
from dockyard.drivers.docker import DockerDriver
from dockyard.drivers.mesh import routing_mesh_answers

from . import make_tls_pems, unique_prefix
from .images import _add_bytes, _build, busybox_image, dind_image

NODES = 3
TLS_PORT = 2376
LABEL = "dockyard.test-swarm"
START_TIMEOUT = 90.0  # seconds for the three engines to answer and the swarm to form (vfs, cold volumes)
NODE_HOST_CONFIG = dict(
    cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    binds={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}}, tmpfs={"/run": ""},
)


class NodeCommandFailed(RuntimeError):
    pass


@dataclass
class Swarm:
    endpoint: str  # tcp://127.0.0.1:<port>: the manager's engine, TLS with a client certificate
    ca: str
    cert: str  # the client certificate, signed by ``ca``
    key: str = field(repr=False)  # its private key
    nodes: list = field(default_factory=list)  # the node containers (docker SDK), manager first
    addresses: list[str] = field(default_factory=list)  # each node's address on the swarm's bridge network
    network: str = ""  # the bridge network's name
    image: str = ""  # the busybox test image, loaded on every node
    ipvs: bool = False  # whether the nodes' kernel has IPVS (/proc/net/ip_vs)
    subnet: str = ""  # the bridge network's subnet: the nodes pull from registries there over plain HTTP

    @property
    def manager(self):
        return self.nodes[0]

    def docker(self, node, *args: str, check: bool = True) -> str:
        """Run ``docker <args>`` on ``node`` (a container or its index) against its own engine; its stdout."""
        container = self.nodes[node] if isinstance(node, int) else node
        return node_docker(container, *args, check=check)

    def driver(self) -> DockerDriver:
        """Dockyard's driver of the manager's engine, over TCP + TLS with the client certificate (kept in memory)."""
        return DockerDriver(self.endpoint, TlsMaterial(self.cert, self.key, self.ca))

    def load_image(self, client: docker.DockerClient, tag: str) -> None:
        """``docker save`` of the machine's image ``tag`` loaded on every node (nothing can be pulled here)."""
        work = tempfile.mkdtemp(prefix="dockyard-swarm-image-")
        try:
            path = os.path.join(work, "image.tar")
            with open(path, "wb") as out:
                for chunk in client.images.get(tag).save(named=tag):
                    out.write(chunk)
            _in_parallel(lambda node: _load_image(node, path), self.nodes)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def stop_node(self, index: int) -> None:
        """Stop node ``index``'s container (its engine stops its tasks): the swarm loses that node."""
        self.nodes[index].stop(timeout=15)

    def start_node(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Start a stopped node again and wait until the swarm counts it Ready; its address may have changed."""
        node = self.nodes[index]
        node.start()
        deadline = time.monotonic() + timeout
        _wait_engine(node, deadline)
        _wait_ready(self, deadline)
        node.reload()
        self.addresses[index] = node.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    @functools.cached_property
    def routing_mesh(self) -> bool:
        """Whether service virtual IPs answer (asked of the swarm once, on first use: it takes seconds)."""
        with self.driver() as driver:
            return routing_mesh_answers(driver._api(), self.image)


def node_docker(container, *args: str, check: bool = True) -> str:
    result = container.exec_run(["docker", *args], demux=True)
    out, err = (part.decode("utf-8", "replace") if part else "" for part in result.output)
    if check and result.exit_code != 0:
        raise NodeCommandFailed(f"{container.name}: docker {' '.join(args)} exited {result.exit_code}: {err or out}")
    return out


# -- images of binaries ----------------------------------------------------------------------------------

def binary_image(client: docker.DockerClient, tag: str, binaries: tuple[str, ...]) -> str:
    """The busybox test image plus this machine's ``binaries`` (Debian's ``docker``, ``docker-registry``)
    and the shared libraries ``ldd`` names for them, at the same paths; built when missing."""
    if client.images.list(name=tag):
        return tag
    files = set(binaries)
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        files |= {part for line in out.splitlines() for part in line.split() if part.startswith("/")}
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        copies = "".join(f"COPY files{path} {path}\n" for path in sorted(files))
        _add_bytes(tar, "Dockerfile", f"FROM {busybox_image(client)}\n{copies}ENV PATH=/usr/bin:/bin\n".encode())
        for path in sorted(files):
            tar.add(os.path.realpath(path), arcname=f"files{path}")
    _build(client, tag, context)
    return tag


# -- start -------------------------------------------------------------------------------------------------

def _write_private(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _dockerd_command(index: int, prefix: str, tls: bool, subnet: str) -> list[str]:
    command = ["dockerd", "--storage-driver=vfs", "-H", "unix:///var/run/docker.sock",
               # the nodes share the host's cgroup tree: keep each node's containers under a parent of its own
               f"--cgroup-parent=/{prefix}-node{index}",
               # a test registry on the nodes' network serves plain HTTP, as the loopback one does on the host
               f"--insecure-registry={subnet}",
               # a node's own bridges (docker0, docker_gwbridge) not in 172.17.0.0/16, the host's docker0: one
               # there would hide the host's 172.17.0.1, where Dockyard serves the NUVLA_ENDPOINT its tasks call
               # back (172.16/16 is in no pool the host's engine allocates from)
               "--bip=172.16.200.1/24", "--default-address-pool=base=172.16.0.0/16,size=24"]
    if tls:
        command += ["-H", f"tcp://0.0.0.0:{TLS_PORT}", "--tlsverify", "--tlscacert=/certs/ca.pem",
                    "--tlscert=/certs/server-cert.pem", "--tlskey=/certs/server-key.pem"]
    return command


def _start_node(client: docker.DockerClient, image: str, prefix: str, index: int, network: str, certs: str,
                subnet: str):
    manager = index == 1
    volume = client.volumes.create(f"{prefix}-node{index}-docker", labels={LABEL: prefix})
    mounts = [docker.types.Mount("/var/lib/docker", volume.name, type="volume")]
    if manager:
        mounts.append(docker.types.Mount("/certs", certs, type="bind", read_only=True))
    host_config = client.api.create_host_config(
        mounts=mounts, network_mode=network,
        port_bindings={TLS_PORT: ("127.0.0.1", None)} if manager else None, **NODE_HOST_CONFIG)
    # `--security-opt systempaths=unconfined` of the CLI: the engine masks no /proc or /sys path
    host_config.update(MaskedPaths=[], ReadonlyPaths=[])
    created = client.api.create_container(
        image, _dockerd_command(index, prefix, manager, subnet), name=f"{prefix}-node{index}", hostname=f"node{index}",
        labels={LABEL: prefix}, host_config=host_config, ports=[TLS_PORT] if manager else None)
    client.api.start(created["Id"])
    return client.containers.get(created["Id"])


def _wait_engine(container, deadline: float) -> None:
    while True:
        result = container.exec_run(["docker", "version", "--format", "{{.Server.Version}}"])
        if result.exit_code == 0:
            return
        container.reload()
        if container.status != "running" or time.monotonic() > deadline:
            logs = container.logs(tail=30).decode("utf-8", "replace")
            raise RuntimeError(f"the engine of {container.name} did not start ({container.status}):\n{logs}")
        time.sleep(0.1)


def _load_image(container, tar_path: str) -> None:
    with open(tar_path, "rb") as tar:
        subprocess.run(["docker", "exec", "-i", container.id, "docker", "load", "-q"], stdin=tar, check=True,
                       capture_output=True)


def _in_parallel(target, items) -> None:
    errors: list[BaseException] = []

    def run(item) -> None:
        try:
            target(item)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _wait_ready(swarm: Swarm, deadline: float) -> None:
    while True:
        states = swarm.docker(0, "node", "ls", "--format", "{{.Status}}").split()
        if states.count("Ready") == NODES:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the swarm's nodes are not all Ready: {states}")
        time.sleep(0.2)


def start_swarm(client: docker.DockerClient, prefix: str, work: str, progress=print) -> Swarm:
    """Start the nodes, form the swarm and load the test image; everything is named ``<prefix>-…``."""
    started = time.monotonic()
    image, busybox = dind_image(client), busybox_image(client)
    pems = make_tls_pems("127.0.0.1")
    certs = os.path.join(work, "server")
    os.mkdir(certs, 0o700)
    for name, text in (("ca.pem", pems.ca), ("server-cert.pem", pems.server_cert),
                       ("server-key.pem", pems.server_key)):
        _write_private(certs, name, text)
    created = client.networks.create(f"{prefix}-swarm", driver="bridge", labels={LABEL: prefix})
    created.reload()
    network, subnet = created.name, created.attrs["IPAM"]["Config"][0]["Subnet"]
    nodes = [_start_node(client, image, prefix, i, network, certs, subnet) for i in range(1, NODES + 1)]
    deadline = time.monotonic() + START_TIMEOUT
    tar_path = os.path.join(work, "busybox.tar")
    with open(tar_path, "wb") as tar:
        for chunk in client.images.get(busybox).save(named=busybox):
            tar.write(chunk)
    _in_parallel(lambda node: (_wait_engine(node, deadline), _load_image(node, tar_path)), nodes)
    for node in nodes:
        node.reload()
    addresses = [node.attrs["NetworkSettings"]["Networks"][network]["IPAddress"] for node in nodes]
    port = nodes[0].attrs["NetworkSettings"]["Ports"][f"{TLS_PORT}/tcp"][0]["HostPort"]
    swarm = Swarm(f"tcp://127.0.0.1:{port}", pems.ca, pems.client_cert, pems.client_key, nodes, addresses,
                  network, busybox, subnet=subnet)
    swarm.docker(0, "swarm", "init", "--advertise-addr", addresses[0])
    token = swarm.docker(0, "swarm", "join-token", "-q", "worker").strip()
    _in_parallel(lambda i: swarm.docker(i, "swarm", "join", "--token", token, f"{addresses[0]}:2377"),
                 range(1, NODES))
    _wait_ready(swarm, deadline)
    swarm.ipvs = nodes[0].exec_run(["test", "-e", "/proc/net/ip_vs"]).exit_code == 0
    progress(f"[test swarm] {NODES} nodes ready in {time.monotonic() - started:.1f} s "
             f"(IPVS: {'yes' if swarm.ipvs else 'no'})")
    return swarm


# -- stop --------------------------------------------------------------------------------------------------

def remove_swarm(client: docker.DockerClient, prefix: str) -> None:
    """Remove the nodes (their engines first stop their containers), their volumes and the network."""
    containers = client.containers.list(all=True, filters={"label": f"{LABEL}={prefix}"})
    _in_parallel(_stop_node, containers)
    for container in containers:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(v=True, force=True)
    for volume in client.volumes.list(filters={"label": f"{LABEL}={prefix}"}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            volume.remove(force=True)
    for network in client.networks.list(filters={"label": f"{LABEL}={prefix}"}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            network.remove()
    _remove_cgroups(prefix)


def _stop_node(container) -> None:
    """SIGTERM to dockerd, which stops the node's containers, so that their cgroups go with them."""
    with contextlib.suppress(docker.errors.APIError):
        container.stop(timeout=15)


def _remove_cgroups(prefix: str) -> None:
    """The nodes' engines made their containers' cgroups under ``/<prefix>-node<i>`` of the host's tree."""
    for parent in _cgroup_dirs(prefix):
        for path in sorted((os.path.join(d, n) for d, names, _ in os.walk(parent) for n in names), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(path)
        with contextlib.suppress(OSError):
            os.rmdir(parent)


def _cgroup_dirs(prefix: str) -> list[str]:
    root = "/sys/fs/cgroup"
    found = []
    with contextlib.suppress(OSError):
        for controller in os.listdir(root):
            base = os.path.join(root, controller)
            with contextlib.suppress(OSError):
                found += [os.path.join(base, n) for n in os.listdir(base) if n.startswith(prefix + "-node")]
    return found


@pytest.fixture(scope="session")
def swarm(docker_client) -> Iterator[Swarm]:
    """A real 3-node swarm, its manager on ``tcp://127.0.0.1:<port>`` with TLS; removed at the end."""
    prefix = unique_prefix()
    work = tempfile.mkdtemp(prefix="dockyard-swarm-")  # 0700: it holds the private keys
    try:
        yield start_swarm(docker_client, prefix, work)
    finally:
        try:
            remove_swarm(docker_client, prefix)
        finally:
            shutil.rmtree(work, ignore_errors=True)
