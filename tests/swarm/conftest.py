"""Fixtures of the swarm tests: the real 3-node Docker-in-Docker swarm (``tests/support/swarm.py``), one Dockyard
server for them all, and its user with the swarm's manager registered and checked."""

from __future__ import annotations

import pytest

from tests.conftest import start_server, stop_server
from tests.deployments.conftest import new_user
from tests.support import debug_docker, docker_client, docker_prefix, pytest_runtest_makereport  # noqa: F401
from tests.support.images import BUSYBOX_TAG
from tests.support.swarm import binary_image, swarm  # noqa: F401

from .helpers import node_image, register_manager

WEB_TAG = "dockyard-test/swarm-httpd:1"
# each task answers /hostname with its own container's host name
WEB_DOCKERFILE = f"""FROM {BUSYBOX_TAG}
CMD ["httpd", "-f", "-p", "8080", "-h", "/etc"]
""".encode()
HELPER_TAG = "dockyard-test/docker-cli:2"  # sh and Debian's docker CLI: Dockyard's swarm-helper-image here


@pytest.fixture(scope="session")
def web_image(swarm, docker_client):  # noqa: F811
    """A busybox httpd image, built here and loaded on every node."""
    return node_image(swarm, docker_client, WEB_TAG, WEB_DOCKERFILE)


@pytest.fixture(scope="session")
def helper_image(swarm, docker_client):  # noqa: F811
    """Debian's docker CLI on the busybox image, loaded on every node: the server's swarm-helper-image."""
    binary_image(docker_client, HELPER_TAG, ("/usr/bin/docker",))
    swarm.load_image(docker_client, HELPER_TAG)
    return HELPER_TAG


@pytest.fixture(scope="session")
def server(swarm, helper_image, tmp_path_factory):  # noqa: F811
    live = start_server(tmp_path_factory.mktemp("swarm-services"),
                        # the sweep sees what the manager raises no event for (a task's change)
                        extra_env={"DOCKYARD_SWARM_PROBE_IMAGE": swarm.image, "DOCKYARD_SWEEP_INTERVAL": "1",
                                   "DOCKYARD_SWARM_HELPER_IMAGE": helper_image})
    yield live
    stop_server(live)


@pytest.fixture(scope="session")
def manager(server, swarm):  # noqa: F811
    """A user, and the swarm's manager registered with that user's credential and checked (the check a new
    credential gets at once): (api, credential, infrastructure-service, the check's job)."""
    api, _ = new_user(server)
    cred, infra, job = register_manager(api, swarm)
    assert job["state"] == "SUCCESS", job
    assert api.get(infra).data["swarm-manager"] is True
    return api, cred, infra, job
