"""A compose application written for ``docker-compose`` (its module's ``compatibility``) on a swarm manager runs as
Nuvla's ``docker_compose`` connector runs it there: a compose project on the manager's own engine, not a stack.

Two busybox services on the manager's node: ``web`` answers ``/cgi-bin/db`` with what ``db`` answers by name.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.apps.app import app_images, application
from tests.deployments.conftest import DEPLOYED, deploy, parameters, start, wait_state

from .helpers import swarm_objects

COMPOSE = """
services:
  web:
    image: %(web)s
    ports:
      - "80"
  db:
    image: %(web)s
    command: ["sh", "-c", "mkdir -p /d && echo db answers on the manager > /d/index.html && exec httpd -f -p 8081 -h /d"]
    volumes:
      - cache:/cache
volumes:
  cache: {}
"""
WAIT = 60.0


@pytest.fixture(scope="module")
def project(server, manager, swarm, docker_client):
    api, cred, *_ = manager
    images = app_images(docker_client)
    swarm.load_image(docker_client, images["web"])
    dep_id = deploy(api, application(api, COMPOSE % images, "docker-compose"), parent=cred)
    start(api, dep_id)
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)
    yield {"api": api, "id": dep_id, "uuid": dep_id.split("/")[1], "started": doc}
    if dep_id in {d.id for d in api.search("deployment").resources}:
        api.operation(api.get(dep_id), "force-delete")
    DEPLOYED.discard(dep_id)


def manager_containers(swarm, dep_id: str) -> dict[str, str]:
    """service → container id of the deployment's containers on the manager's engine."""
    out = swarm.docker(0, "ps", "-aq", "--filter", f"label=dockyard.deployment-id={dep_id}",
                       "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}')
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_a_docker_compose_app_on_a_manager_is_a_compose_project_there_not_a_stack(project, swarm):
    api, dep_id, doc = project["api"], project["id"], project["started"]
    assert doc["state"] == "STARTED", doc.get("status-message")
    assert sorted(manager_containers(swarm, dep_id)) == ["db", "web"]
    assert swarm_objects(swarm, dep_id)["service"] == []  # no swarm service: compose's containers
    labels = swarm.docker(0, "inspect", "--format", '{{index .Config.Labels "com.docker.compose.project"}}',
                          manager_containers(swarm, dep_id)["web"]).strip()
    assert labels == project["uuid"]

    params = parameters(api, dep_id)
    assert params["web.node-id"] == "web" and params["db.node-id"] == "db"
    port = params["web.tcp.80"]
    base = f"http://{swarm.addresses[0]}:{port}"  # published on the manager's node
    assert f"NUVLA_DEPLOYMENT_ID={dep_id}" in httpx.get(f"{base}/", timeout=5).text
    deadline = time.monotonic() + WAIT
    while "db answers on the manager" not in (answer := httpx.get(f"{base}/cgi-bin/db", timeout=5).text):
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def test_a_killed_service_container_on_the_manager_puts_the_deployment_in_error(project, swarm):
    api, dep_id = project["api"], project["id"]
    swarm.docker(0, "kill", manager_containers(swarm, dep_id)["db"])
    doc = wait_state(api, dep_id, {"ERROR"}, timeout=30)
    assert "db" in doc["status-message"], doc["status-message"]


def test_stop_with_remove_volumes_leaves_nothing_on_the_manager(project, swarm):
    api, dep_id = project["api"], project["id"]
    api.operation(api.get(dep_id), "stop", {"remove-volumes": True})
    doc = wait_state(api, dep_id, {"STOPPED", "ERROR"}, timeout=60)
    assert doc["state"] == "STOPPED", doc.get("status-message")
    assert manager_containers(swarm, dep_id) == {}
    project_filter = f"label=com.docker.compose.project={project['uuid']}"
    assert swarm.docker(0, "network", "ls", "-q", "--filter", project_filter).split() == []
    assert swarm.docker(0, "volume", "ls", "-q", "--filter", project_filter).split() == []
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0  # the key is revoked
