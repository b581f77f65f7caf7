"""Data tests reuse the deployment tests' engine fixtures."""

from ..deployments.conftest import docker_client, images  # noqa: F401
from ..data.conftest import moto_endpoint  # noqa: F401,E402
