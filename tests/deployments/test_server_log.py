"""The server log says what happened to jobs, deployments and refused requests, at the default level, with
ids and without secrets; ``log-format = json`` writes one JSON object per line."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from nuvla.api import NuvlaError

from ..conftest import ADMIN_PASSWORD, start_server, stop_server
from .conftest import api_for, component, deploy, start, wait_state


def _records(server) -> list[dict]:
    with open(f"{server.data_dir}/server.log", encoding="utf-8") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_jobs_deployments_and_refusals_are_logged_as_json_without_secrets(tmp_path, images, docker_client):
    server = start_server(tmp_path, extra_env={"DOCKYARD_LOG_FORMAT": "json"})
    try:
        admin = api_for(server)
        admin.login_password("admin", ADMIN_PASSWORD)
        name = f"log-{uuid.uuid4().hex[:8]}"
        password = f"pw-{uuid.uuid4().hex}"
        uid = admin.add("user", {"template": {"href": "user-template/username-password", "username": name,
                                              "password": password}}).data["resource-id"]
        api = api_for(server)
        api.login_password(name, password)
        key = api.add("credential", {"template": {"href": "credential-template/generate-api-key", "ttl": 0}}).data
        dep_id = deploy(api, component(api, images["app"]))
        job_id = start(api, dep_id)
        wait_state(api, dep_id, "STARTED")
        container = docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"})[0]
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        # refused: a start in the wrong state, a stranger's read, a wrong password, an unknown id
        with pytest.raises(NuvlaError) as refused:
            api.operation(api.get(dep_id), "start")
        assert refused.value.response.status_code == 409
        stranger = httpx.get(f"{server.api}/{dep_id}")
        assert stranger.status_code == 403
        wrong = httpx.post(f"{server.api}/session", json={"template": {
            "href": "session-template/password", "username": "admin", "password": "not-" + ADMIN_PASSWORD}})
        assert wrong.status_code == 403
        api.operation(api.get(dep_id), "stop")
        wait_state(api, dep_id, "STOPPED")
        records = _records(server)
    finally:
        stop_server(server)

    assert {"time", "level", "logger", "message"} <= set(records[0])
    jobs = [r for r in records if r.get("job") == job_id]
    assert [r["state"] for r in jobs] == ["RUNNING", "SUCCESS"]  # claimed, then its outcome
    assert all(r["level"] == "INFO" and r["action"] == "start_deployment" and r["target"] == dep_id for r in jobs)
    moves = [(r["from"], r["to"]) for r in records if r.get("deployment") == dep_id]
    assert moves == [("CREATED", "STARTING"), ("STARTING", "STARTED"), ("STARTED", "STOPPING"),
                     ("STOPPING", "STOPPED")]
    assert [r["by"] for r in records if r.get("deployment") == dep_id][0] == uid
    refusals = {(r["method"], r["path"], r["status"], r["who"]) for r in records if "status" in r}
    path = f"/api/{dep_id}"
    assert {("POST", f"{path}/start", 409, uid), ("GET", path, 403, "anonymous"),
            ("POST", "/api/session", 403, "anonymous")} <= refusals
    text = json.dumps(records)
    for secret in (ADMIN_PASSWORD, password, key["secret-key"], env["NUVLA_API_SECRET"]):
        assert secret not in text
