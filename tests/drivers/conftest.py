"""Fixtures for the driver tests, which run real containers on the local engine."""

from __future__ import annotations

import pytest

from dockyard.drivers.docker import DockerDriver
from tests.support import debug_docker, docker_client, docker_prefix, pytest_runtest_makereport  # noqa: F401
from tests.support.images import busybox_image


@pytest.fixture(scope="session")
def busybox(docker_client) -> str:  # noqa: F811
    return busybox_image(docker_client)


@pytest.fixture(scope="module")
def driver():
    with DockerDriver() as engine:
        yield engine
