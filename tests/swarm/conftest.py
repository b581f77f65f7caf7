"""Fixtures of the swarm tests: the real 3-node Docker-in-Docker swarm (``tests/support/swarm.py``)."""

from __future__ import annotations

from tests.support import debug_docker, docker_client, docker_prefix, pytest_runtest_makereport  # noqa: F401
from tests.support.swarm import swarm  # noqa: F401
