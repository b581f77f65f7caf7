"""The registry tests: a server of their own, and the loopback registry of ``tests/support/registry.py``
(one per session, shared with ``tests/examples``; ``tests/conftest.py`` provides it)."""

from __future__ import annotations

import os

import docker
import pytest

from ..conftest import start_server, stop_server
from ..deployments.conftest import DEPLOYED, remove_deployed  # noqa: F401
from ..support.registry import registry_process
from .token_service import ISSUER, SERVICE, TokenService


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


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory, private_registry):
    """A second registry over the same storage (so it holds the same image) that challenges with ``Bearer``;
    the token service (``token_service.py``) grants the same user what they ask for."""
    work = tmp_path_factory.mktemp("token-registry")
    with TokenService(private_registry.username, private_registry.password) as tokens:
        bundle = work / "token-ca.pem"
        bundle.write_bytes(tokens.cert_pem())
        auth = (f"  token:\n    realm: {tokens.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
                f"    rootcertbundle: {bundle}\n")
        with registry_process(work, private_registry.storage, auth) as (port, _, _):
            yield f"http://127.0.0.1:{port}", tokens
