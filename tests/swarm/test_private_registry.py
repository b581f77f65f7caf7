"""A component whose image is in a private registry runs on every node of a swarm (issue 12).

The registry is Debian's ``docker-registry`` with htpasswd auth, in a container (the binary and libc on the
busybox test image) on the swarm's own bridge network, where the nodes reach it over plain HTTP (the fixture
starts their engines with ``--insecure-registry`` for that network). An image none of the nodes has is pushed
to it from node1 with the credential, and removed there again. Registered with Dockyard as a ``registry``
service with its credential, the app's three replicas pull it on all three nodes: the manager gets the
credential as ``X-Registry-Auth`` and hands it to the nodes. Without the credential the start is refused,
naming the image and the registry; a service created without the header cannot be pulled by the nodes, and
the driver's error names the image and the registry.
"""

from __future__ import annotations

import io
import secrets
import socket
import subprocess
import tarfile
import time
import uuid

import pytest
from nuvla.api import NuvlaError

from dockyard.drivers import TlsMaterial
from dockyard.drivers.base import DriverError, RestartPolicy, TaskSpec
from dockyard.drivers.swarm import SwarmDriver
from tests.deployments.conftest import deploy, start, wait_state
from tests.registry.helpers import add_credential, add_registry
from tests.support.images import BUSYBOX_TAG, _add_bytes, _build
from tests.support.swarm import _load_image, binary_image

from .helpers import NODE_NAMES, wait_nothing_on_nodes

REGISTRY_TAG = "dockyard-test/docker-registry:1"
USER = "pusher"
CONFIG = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
auth:
  htpasswd:
    realm: dockyard-test
    path: /etc/registry/htpasswd
"""


def _wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"the registry on {host}:{port} does not listen"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def node_registry(swarm, docker_client, docker_prefix, tmp_path_factory):
    """(address, user, password): the registry's container on the swarm's network, listening on :5000."""
    work = tmp_path_factory.mktemp("swarm-registry")
    password = "reg-" + secrets.token_urlsafe(18)
    # bcrypt (the registry accepts nothing else); the password goes through stdin, not the command line
    subprocess.run(["htpasswd", "-B", "-i", "-c", str(work / "htpasswd"), USER], input=password.encode(),
                   check=True, capture_output=True)
    (work / "config.yml").write_text(CONFIG)
    image = binary_image(docker_client, REGISTRY_TAG, ("/usr/bin/docker-registry",))
    container = docker_client.containers.run(
        image, ["docker-registry", "serve", "/etc/registry/config.yml"], detach=True,
        name=f"{docker_prefix}-swarm-registry", network=swarm.network,
        volumes={str(work): {"bind": "/etc/registry", "mode": "ro"}})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][swarm.network]["IPAddress"]
        _wait_port(address, 5000)
        yield f"{address}:5000", USER, password
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def private_image(swarm, docker_client, node_registry, tmp_path_factory):
    """An image with a layer of its own (no node has it), pushed from node1 and removed there again."""
    address, user, password = node_registry
    tag = uuid.uuid4().hex[:8]
    local = f"dockyard-test/swarm-private:{tag}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", f'FROM {BUSYBOX_TAG}\nCOPY stamp /stamp\nCMD ["httpd", "-f", "-p", "8080", '
                                      f'"-h", "/etc"]\n'.encode())
        _add_bytes(tar, "stamp", tag.encode())
    _build(docker_client, local, context)
    path = tmp_path_factory.mktemp("swarm-private") / "image.tar"
    with open(path, "wb") as out:
        for chunk in docker_client.images.get(local).save(named=local):
            out.write(chunk)
    _load_image(swarm.nodes[0], str(path))
    path.unlink()
    docker_client.images.remove(local)
    repository = f"{address}/dockyard-test/swarm-private"
    with swarm.driver() as driver:
        api = driver._api()
        api.tag(local, repository, tag)
        auth = {"username": user, "password": password, "serveraddress": address}
        failures = [line["error"] for line in api.push(repository, tag=tag, auth_config=auth, stream=True,
                                                        decode=True) if "error" in line]
        assert not failures, failures
        api.remove_image(f"{repository}:{tag}")
        api.remove_image(local)
    return f"{repository}:{tag}"


def private_app(api, image: str, registry: str, credential: str | None) -> str:
    project = f"p{uuid.uuid4().hex[:8]}"
    api.add("module", {"path": project, "subtype": "project"})
    name, tag = image.rsplit(":", 1)
    host, _, rest = name.partition("/")
    repository, _, image_name = rest.rpartition("/")
    content = {"image": {"registry": host, "repository": repository, "image-name": image_name, "tag": tag},
               "author": "tests", "architectures": ["amd64"], "replicas": 3, "ports": [{"target-port": 8080}],
               "private-registries": [registry], **({"registries-credentials": [credential]} if credential else {})}
    return api.add("module", {"path": f"{project}/app", "subtype": "component", "content": content}
                   ).data["resource-id"]


def image_on(swarm, index: int, image: str) -> bool:
    repository = image.rsplit(":", 1)[0]
    return bool(swarm.docker(index, "image", "ls", "-q", repository).split())


def test_a_private_image_runs_on_every_node_with_the_credential_and_is_refused_without_it(
        manager, swarm, node_registry, private_image):
    api, cred, *_ = manager
    address, user, password = node_registry
    assert not any(image_on(swarm, i, private_image) for i in range(3))  # every node must pull it
    registry = add_registry(api, f"http://{address}")
    right = add_credential(api, registry, user, password)

    dep_id = deploy(api, private_app(api, private_image, registry, right), parent=cred)
    t0 = time.monotonic()
    start(api, dep_id)
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)
    assert doc["state"] == "STARTED", doc.get("status-message")
    print(f"[swarm registry] 3 replicas of a private image pulled and running in {time.monotonic() - t0:.2f} s")
    label = f"label=dockyard.deployment-id={dep_id}"
    services = swarm.docker(0, "service", "ls", "-q", "--filter", label).split()
    assert len(services) == 1, (services, api.get(dep_id).data, api.get(manager[2]).data,
                                swarm.docker(0, "ps", "-a", "--filter", label))
    [service] = services
    nodes = swarm.docker(0, "service", "ps", service, "--filter", "desired-state=running", "--format",
                         "{{.Node}}").split()
    assert sorted(nodes) == list(NODE_NAMES)
    assert all(image_on(swarm, i, private_image) for i in range(3))
    # the credential reached the nodes with the request, not in the service's spec
    assert password not in swarm.docker(0, "service", "inspect", service)
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED", timeout=120)

    # no credential: the start is refused before anything runs, naming the image and the registry
    refused = deploy(api, private_app(api, private_image, registry, None), parent=cred)
    with pytest.raises(NuvlaError) as err:
        start(api, refused)
    assert err.value.response.status_code == 400
    assert err.value.response.json()["message"] == (
        f"Image '{private_image}' is in the private registry {address}, and the deployment gives no credential "
        f"for it (registries-credentials).")
    wait_nothing_on_nodes(swarm, dep_id)


def test_a_service_created_without_the_registry_header_is_not_pulled_and_the_error_says_which(
        swarm, node_registry, private_image):
    address = node_registry[0]
    for i in range(3):  # pulled by the test above: not a pull any more
        swarm.docker(i, "image", "rm", "-f", private_image, check=False)
    dep_id = f"deployment/{uuid.uuid4()}"
    spec = TaskSpec(dep_id, f"private-{dep_id[-8:]}", private_image, replicas=3, restart=RestartPolicy("none"))
    with SwarmDriver(swarm.endpoint, TlsMaterial(swarm.cert, swarm.key, swarm.ca), routing_mesh=False) as driver:
        with pytest.raises(DriverError) as err:
            driver.start(spec)
        assert driver.inspect(dep_id) == []  # a failed start leaves no service
    print(f"[swarm registry] without X-Registry-Auth: {err.value.message}")
    assert err.value.reason == "image-not-found"
    assert err.value.message.startswith(f"Image '{private_image}' could not be pulled by node")
    assert f"from the registry {address}: it is not there, or it is private" in err.value.message
