"""A real private registry on loopback: Debian's ``docker-registry`` (distribution 2.8) with htpasswd auth.

It serves plain HTTP on ``127.0.0.1:<free port>``: the Docker engine treats every 127.0.0.0/8 registry as
insecure by default (``docker info``: Insecure Registries 127.0.0.0/8), so it pulls and pushes over HTTP
without a CA, a daemon.json change or an engine restart, and Dockyard's own client speaks HTTP to it because
the registry's endpoint says ``http://``. (TLS with a generated CA under /etc/docker/certs.d would test the
same code, plus a CA file the test would leave in a system directory.)
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ..conftest import free_port
from ..deployments.conftest import remove_deployed
from ..deployments.images import app_image

USER = "pusher"


@dataclass
class Registry:
    endpoint: str  # http://127.0.0.1:<port>
    address: str  # 127.0.0.1:<port>, as images name it
    username: str
    password: str
    image: str  # a private image pushed there: <address>/dockyard-test/private:<tag>
    process: subprocess.Popen
    log_path: str
    storage: str  # its filesystem storage (a second registry over it serves the same images)


def _wait_port(port: int, proc: subprocess.Popen, log_path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {proc.returncode}: {open(log_path).read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("docker-registry did not listen within 20 s")


@contextlib.contextmanager
def registry_process(work: Path, storage: str, auth: str) -> Iterator[tuple[int, subprocess.Popen, str]]:
    """``docker-registry`` on a free loopback port over ``storage``, with ``auth`` (the YAML of its ``auth:``
    section, indented by four); yields its port, process and log path, and stops it at the end."""
    port = free_port()
    config = work / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
{auth}""")
    log_path = str(work / "registry.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, log_path)
        yield port, proc, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def private_registry(tmp_path_factory):
    """The registry, with the test app (busybox serving its environment on port 80) pushed to it, and its
    local tag removed again. One per session, shared by every test directory (``tests/conftest.py``)."""
    docker_client = docker.from_env()
    work = tmp_path_factory.mktemp("registry")
    password = "reg-" + secrets.token_urlsafe(18)
    htpasswd = work / "htpasswd"
    # bcrypt (the registry accepts nothing else); the password goes through stdin, not the command line
    subprocess.run(["htpasswd", "-B", "-i", "-c", str(htpasswd), USER], input=password.encode(), check=True,
                   capture_output=True)
    storage = str(work / "storage")
    with registry_process(work, storage, f"  htpasswd:\n    realm: dockyard-test\n    path: {htpasswd}\n") as (port, proc, log_path):
        yield from _pushed(docker_client, port, proc, log_path, password, storage)


def _pushed(docker_client, port: int, proc: subprocess.Popen, log_path: str, password: str,
            storage: str) -> Iterator[Registry]:
    try:
        address = f"127.0.0.1:{port}"
        repository = f"{address}/dockyard-test/private"
        tag = uuid.uuid4().hex[:8]
        docker_client.images.get(app_image(docker_client)).tag(repository, tag=tag)
        auth = {"username": USER, "password": password, "serveraddress": address}
        failures = [line["error"] for line in docker_client.images.push(repository, tag=tag, auth_config=auth,
                                                                        stream=True, decode=True)
                    if "error" in line]
        assert not failures, failures
        image = f"{repository}:{tag}"
        docker_client.images.remove(image)  # only the tag: the first start must pull it
        yield Registry(f"http://{address}", address, USER, password, image, proc, log_path, storage)
    finally:
        remove_deployed(docker_client)  # their containers use the pulled tag
        prefix = f"127.0.0.1:{port}/"
        for found in docker_client.images.list(name=f"{prefix}dockyard-test/private"):
            for ref in found.tags:
                if ref.startswith(prefix):  # the same image also carries the local test tag: keep that
                    docker_client.images.remove(ref)
        docker_client.close()
