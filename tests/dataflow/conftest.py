"""Data tests reuse the deployment tests' engine fixtures."""

from ..deployments.conftest import docker_client, images  # noqa: F401
