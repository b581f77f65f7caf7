"""A deployment's life on the real engine: start, publish, stop, delete — and what must not remain."""

from __future__ import annotations

import time

import httpx
import pytest
from nuvla.api import NuvlaError

from .conftest import api_for, component, deploy, new_user, parameters, start, wait_ready, wait_state


def serve_env(images, api, **content):
    env = [{"name": "GREETING", "value": "hello"}, {"name": "EMPTY"}]
    return component(api, images["app"], ports=[{"target-port": 80}],
                     **{"environmental-variables": env, **content})


def http_env(port: str) -> dict[str, str]:
    """The environment the app serves (call once the deployment is ready)."""
    text = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_start_publishes_ports_and_injects_the_environment(sqlite_server, images, docker_client):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, serve_env(images, api), name="web")
    created = api.get(dep_id).data
    assert created["state"] == "CREATED"
    assert {"rel": "start", "href": f"{dep_id}/start"} in created["operations"]
    job_id = start(api, dep_id)
    doc = wait_ready(api, dep_id)
    params = parameters(api, dep_id)
    env = http_env(params["tcp.80"])
    assert env["NUVLA_DEPLOYMENT_ID"] == dep_id
    assert env["NUVLA_DEPLOYMENT_UUID"] == dep_id.split("/")[1]
    assert env["NUVLA_API_KEY"] == doc["api-credentials"]["api-key"]
    assert len(env["NUVLA_API_SECRET"]) == 34
    assert env["NUVLA_ENDPOINT"] == doc["api-endpoint"]
    assert env["GREETING"] == "hello" and "EMPTY" not in env
    assert env["DATE_TIME"].isdigit() and env["TIMESTAMP"].isdigit()
    assert "api-secret" not in doc["api-credentials"]  # never returned
    job = api.get(job_id).data
    assert job["state"] == "SUCCESS" and job["progress"] == 100
    containers = docker_client.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})
    assert len(containers) == 1
    labels = containers[0].labels
    assert labels["dockyard.job-id"] == job_id and labels["dockyard.managed"] == "true"


def test_stop_removes_the_container_and_the_key_and_keeps_parameters(sqlite_server, images, docker_client):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, serve_env(images, api))
    start(api, dep_id)
    doc = wait_state(api, dep_id, "STARTED")
    env = http_env(parameters(api, dep_id)["tcp.80"])
    key_api = api_for(sqlite_server)
    assert key_api.login_apikey(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"]).status_code == 201
    assert key_api.get(dep_id).id == dep_id
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    # the key is gone: its login is refused and the session it opened ends at once
    assert api_for(sqlite_server).login_apikey(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"]).status_code == 403
    with pytest.raises(NuvlaError) as err:
        key_api.get(dep_id)
    assert err.value.response.status_code == 403
    assert docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
    assert "tcp.80" in parameters(api, dep_id)
    # deleting removes the rest
    api.delete(dep_id)
    assert api.search("deployment-parameter", filter=f"parent='{dep_id}'").count == 0
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0
    with pytest.raises(NuvlaError):
        api.get(dep_id)
    assert doc["state"] == "STARTED"


def test_delete_is_refused_while_started_and_force_delete_leaves_nothing(sqlite_server, images, docker_client):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, serve_env(images, api))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    with pytest.raises(NuvlaError) as err:
        api.delete(dep_id)
    assert err.value.response.status_code == 409
    assert "cannot be called" in err.value.reason
    api.operation(api.get(dep_id), "force-delete")
    deadline = time.monotonic() + 20
    while docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"},
                                        ignore_removed=True):
        assert time.monotonic() < deadline, "force-delete left the container behind"
        time.sleep(0.1)
    assert api.search("deployment-parameter", filter=f"parent='{dep_id}'").count == 0


def test_restart_after_stop_gets_a_new_key(sqlite_server, images):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, serve_env(images, api))
    start(api, dep_id)
    first = wait_state(api, dep_id, "STARTED")["api-credentials"]["api-key"]
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    start(api, dep_id)
    second = wait_state(api, dep_id, "STARTED")["api-credentials"]["api-key"]
    assert first != second
    assert http_env(parameters(api, dep_id)["tcp.80"])["NUVLA_API_KEY"] == second
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


def test_update_replaces_the_container(sqlite_server, images, docker_client):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, serve_env(images, api))
    start(api, dep_id)
    assert wait_state(api, dep_id, "STARTED")["status-message"].startswith("started ")
    before = {c.id for c in docker_client.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})}
    api.operation(api.get(dep_id), "update")
    updated = wait_state(api, dep_id, "STARTED", timeout=30)
    after = {c.id for c in docker_client.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})}
    assert len(after) == 1 and after != before
    # the message says what was done, in English ("updateed" once)
    assert updated["status-message"].startswith("updated "), updated["status-message"]
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
