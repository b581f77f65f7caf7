"""The registry tests: a server of their own, and the loopback registry of ``tests/support/registry.py``
(one per session, shared with ``tests/examples``; ``tests/conftest.py`` provides it)."""

from __future__ import annotations

import os

import docker
import pytest

from ..conftest import start_server, stop_server
from ..deployments.conftest import DEPLOYED, remove_deployed  # noqa: F401


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    yield client
    remove_deployed(client)
    client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own, logging at debug level, so that its whole log can be searched for the password."""
    data_dir = tmp_path_factory.mktemp("registry-server")
    live = start_server(data_dir, extra_env={"DOCKYARD_LOG_LEVEL": "debug"})
    yield live
    stop_server(live)


def server_log(server) -> bytes:
    with open(os.path.join(server.data_dir, "server.log"), "rb") as handle:
        return handle.read()
