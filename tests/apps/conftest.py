"""Compose applications on the local engine, through the real nuvla-api client."""

from __future__ import annotations

import pytest

from ..deployments.conftest import docker_client  # noqa: F401
from .app import app_images


@pytest.fixture(scope="session")
def app_image_tags(docker_client):  # noqa: F811
    return app_images(docker_client)
