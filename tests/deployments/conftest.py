"""Deployments on the real Docker engine, through the real nuvla-api client."""

from __future__ import annotations

import time
import uuid

import docker
import pytest
from nuvla.api import Api

from ..conftest import ADMIN_PASSWORD
from .images import app_image, seed_image


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env()
    yield client
    remove_deployed(client)
    client.close()


DEPLOYED: set[str] = set()


def remove_deployed(client: docker.DockerClient) -> None:
    """Nothing these tests deployed may outlive the session (and nothing else is touched). Called when the
    client goes and again once every server has stopped (``tests/conftest.py``): a start still running when
    a test failed may create its container after the first call."""
    for dep_id in DEPLOYED:
        for container in client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}):
            container.remove(force=True)


@pytest.fixture(scope="session")
def images(docker_client):
    return {"app": app_image(docker_client), "seed": seed_image(docker_client)}


def api_for(server) -> Api:
    return Api(endpoint=server.endpoint, insecure=True, persist_cookie=False)


def new_user(server) -> tuple[Api, str]:
    admin = api_for(server)
    admin.login_password("admin", ADMIN_PASSWORD)
    name = f"dep-{uuid.uuid4().hex[:8]}"
    uid = admin.add("user", {"template": {"href": "user-template/username-password", "username": name,
                                          "password": "pw-" + name}}).data["resource-id"]
    api = api_for(server)
    assert api.login_password(name, "pw-" + name).status_code == 201
    return api, uid


def component(api: Api, image: str, **content) -> str:
    """A project and a component app in it; returns the module id."""
    project = f"p{uuid.uuid4().hex[:8]}"
    api.add("module", {"path": project, "subtype": "project", "name": project})
    tag = None
    if ":" in image:
        image, tag = image.rsplit(":", 1)
    repository, _, name = image.rpartition("/")
    img = {"image-name": name, **({"repository": repository} if repository else {}), **({"tag": tag} if tag else {})}
    body = {"path": f"{project}/app", "subtype": "component", "name": "app",
            "content": {"image": img, "author": "tests", "architectures": ["amd64"], **content}}
    return api.add("module", body).data["resource-id"]


def deploy(api: Api, module_id: str, **extra) -> str:
    dep_id = api.add("deployment", {"module": {"href": module_id}, **extra}).data["resource-id"]
    DEPLOYED.add(dep_id)
    return dep_id


def start(api: Api, dep_id: str) -> str:
    return api.operation(api.get(dep_id), "start").data["location"]


def wait_state(api: Api, dep_id: str, states, timeout: float = 60.0) -> dict:
    states = {states} if isinstance(states, str) else set(states)
    deadline = time.monotonic() + timeout
    doc = api.get(dep_id).data
    while doc["state"] not in states and time.monotonic() < deadline:
        time.sleep(0.05)
        doc = api.get(dep_id).data
    assert doc["state"] in states, f"{dep_id} is {doc['state']}: {doc.get('status-message')}"
    return doc


def wait_ready(api: Api, dep_id: str, timeout: float = 60.0) -> dict:
    """The deployment once its service passed its readiness checks (STARTED and ``ready``)."""
    deadline = time.monotonic() + timeout
    doc = api.get(dep_id).data
    while doc.get("ready") is None and doc["state"] in ("CREATED", "STARTING", "STARTED") \
            and time.monotonic() < deadline:
        time.sleep(0.05)
        doc = api.get(dep_id).data
    assert doc["state"] == "STARTED" and doc.get("ready") is True, \
        f"{dep_id} is {doc['state']}, ready {doc.get('ready')}: {doc.get('ready-message') or doc.get('status-message')}"
    return doc


def parameters(api: Api, dep_id: str) -> dict[str, str | None]:
    found = api.search("deployment-parameter", filter=f"parent='{dep_id}'")
    return {r.data["name"]: r.data.get("value") for r in found.resources}


def wait_parameter(api: Api, dep_id: str, name: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = parameters(api, dep_id).get(name)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{name} of {dep_id} never set; parameters: {parameters(api, dep_id)}")


def http_get(url: str):
    """One GET of a URL a deployment serves. Wait for the deployment to be ready (:func:`wait_ready`, or
    ``dockyard deploy --wait``) first: a ready service answers, so there is nothing to retry."""
    import httpx

    return httpx.get(url, timeout=5)


def deployment_key(server, api: Api, dep_id: str) -> Api:
    """A client logged in with the key the deployment's container got (the test app serves its environment
    on port 80, once the deployment is ready)."""
    import httpx

    wait_ready(api, dep_id)
    page = httpx.get(f"http://127.0.0.1:{parameters(api, dep_id)['tcp.80']}/", timeout=5).text
    env = dict(line.split("=", 1) for line in page.splitlines() if "=" in line)
    key = api_for(server)
    assert key.login_apikey(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"]).status_code == 201
    return key


def container_of(docker_client, dep_id: str):
    [container] = docker_client.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})
    return container


def sh(container, script: str) -> tuple[int, str]:
    result = container.exec_run(["sh", "-c", script])
    return result.exit_code, result.output.decode()
