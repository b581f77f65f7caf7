"""Application modules through the API: Nuvla's schema (400s naming the field), the validate-docker-compose
action (202 + a job that names the fault), what a start refuses, and an orphaned project swept away."""

from __future__ import annotations

import time
import uuid

import pytest
from nuvla.api import NuvlaError

from ..conftest import start_server, stop_server
from ..deployments.conftest import DEPLOYED, deploy, new_user, start, wait_state
from ..deployments.test_recovery import delete_rows
from .app import application, compose_text

GOOD = """
services:
  web:
    image: example/web:1
    ports: ["80"]
    environment:
      TITLE: "${NUVLA_DEPLOYMENT_ID}"
  db:
    image: example/db:1
"""
BAD = {  # file → what the module's validation-message must say
    "services: [web": "the file is not YAML: expected ',' or ']', but got '<stream end>' at line 1, column 15",
    "version: '3.8'\n": "the file declares no services",
    "services:\n  web:\n    image: example/web:1\n    bogus: 1\n":
        "Unsupported config option for services.web: 'bogus'",
    "services:\n  web:\n    build: .\n": "service 'web': 'build' is not supported, Dockyard cannot build images",
    "services:\n  web:\n    ports: ['80']\n  db:\n    image: example/db:1\n": "service 'web' has no image",
    "services:\n  web:\n    image: example/web:1\nnetwork: {}\n": "unknown top-level key 'network'",
}


def wait_job(api, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    job = api.get(job_id).data
    while job["state"] not in ("SUCCESS", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.get(job_id).data
    return job


def test_validate_docker_compose_accepts_a_good_file_and_names_the_fault_in_bad_ones(sqlite_server):
    api, _ = new_user(sqlite_server)
    good = application(api, GOOD, "swarm")
    bad = {application(api, text): expected for text, expected in BAD.items()}
    answer = api.operation(api.get(good), "validate-docker-compose")
    assert answer.data["status"] == 202 and answer.data["location"].startswith("job/")
    jobs = {good: answer.data["location"]}
    jobs.update({m: api.operation(api.get(m), "validate-docker-compose").data["location"] for m in bad})
    t0 = time.monotonic()
    assert wait_job(api, jobs[good])["state"] == "SUCCESS"
    module = api.get(good).data
    assert (module["valid"], module["validation-message"]) == (True, "valid: services web, db")
    for module_id, expected in bad.items():
        job = wait_job(api, jobs[module_id])
        module = api.get(module_id).data
        assert job["state"] == "FAILED" and module["valid"] is False, (job, module)
        assert expected in module["validation-message"], module["validation-message"]
        assert expected in job["status-message"]
    print(f"[apps] {len(jobs)} validations in {time.monotonic() - t0:.2f} s")
    # a component has no compose file to validate
    project = api.get(good).data["parent-path"]
    component = api.add("module", {"path": f"{project}/comp", "subtype": "component",
                                   "content": {"image": {"image-name": "x"}, "author": "t"}}).data["resource-id"]
    assert "validate-docker-compose" not in {op["rel"] for op in api.get(component).data["operations"]}


@pytest.mark.parametrize("change, expected", [
    ({"compatibility": None}, "missing required attribute 'compatibility'"),
    ({"compatibility": "kubernetes"}, "attribute 'compatibility'"),
    ({"content": {"author": "t"}}, "content: missing required attribute 'docker-compose'"),
    ({"content": {"author": "t", "docker-compose": "  "}}, "content: attribute 'docker-compose' must not be blank"),
    ({"content": {"author": "t", "docker-compose": GOOD, "files": [{"file-name": "..", "file-content": "x"}]}},
     "content: attribute 'files' element 0 is invalid: attribute 'file-name' must name a file"),
    ({"content": {"author": "t", "docker-compose": GOOD, "files": [{"file-name": "a/b", "file-content": "x"}]}},
     "content: attribute 'files' element 0 is invalid: attribute 'file-name' must match"),
    ({"content": {"author": "t", "docker-compose": GOOD, "files": [
        {"file-name": "a.conf", "file-content": "x"}, {"file-name": "a.conf", "file-content": "y"}]}},
     "content: attribute 'files' must not name a file twice"),
    ({"content": {"author": "t", "docker-compose": GOOD,
                  "environmental-variables": [{"name": "NUVLA_X", "value": "1"}]}}, "must not start with NUVLA_"),
])
def test_bad_application_input_is_a_400_naming_the_field_and_stores_nothing(sqlite_server, change, expected):
    api, _ = new_user(sqlite_server)
    project = f"p{uuid.uuid4().hex[:8]}"
    api.add("module", {"path": project, "subtype": "project"})
    body = {"path": f"{project}/bad", "subtype": "application", "compatibility": "swarm",
            "content": {"author": "t", "docker-compose": GOOD}, **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(NuvlaError) as err:
        api.add("module", body)
    assert err.value.response.status_code == 400
    assert expected in err.value.reason, err.value.reason
    assert api.search("module", filter=f"path='{project}/bad'").count == 0


def test_a_start_refuses_what_cannot_run_and_a_user_may_not_reach_the_host(sqlite_server):
    api, _ = new_user(sqlite_server)
    cases = {
        "services:\n  web:\n    build: .\n":
            (400, "the application's compose file cannot run: service 'web': 'build' is not supported"),
        "services: {}\n": (400, "the application's compose file cannot run: the file declares no services"),
        "services:\n  web:\n    image: x\n    volumes: ['/:/host']\n":
            (403, "service 'web': volume '/:/host' uses the host path '/': on "),
        "services:\n  web:\n    image: x\n    privileged: true\n": (403, "service 'web' sets 'privileged': on "),
        "services:\n  web:\n    image: x\n    network_mode: host\n": (403, "service 'web' sets 'network_mode: host'"),
        "services:\n  web:\n    image: x\nvolumes:\n  data:\n    external: true\n": (403, "volume 'data' sets 'external'"),
    }
    for text, (status, expected) in cases.items():
        dep_id = deploy(api, application(api, text))
        with pytest.raises(NuvlaError) as err:
            start(api, dep_id)
        assert (err.value.response.status_code, expected in err.value.reason) == (status, True), err.value.reason
        doc = api.get(dep_id).data
        assert doc["state"] == "CREATED" and api.search("job", filter=f"target-resource/href='{dep_id}'").count == 0


def test_an_orphaned_project_is_removed_by_the_sweep(tmp_path, app_image_tags, docker_client):
    """The deployment is lost while the server is down: the next server's sweep removes its project."""
    server = start_server(tmp_path / "orphan")
    try:
        api, _ = new_user(server)
        text = compose_text(app_image_tags).split("  db:")[0]  # web alone
        dep_id = deploy(api, application(api, text))
        start(api, dep_id)
        wait_state(api, dep_id, "STARTED", timeout=60)
        label = {"label": f"dockyard.deployment-id={dep_id}"}
        assert docker_client.containers.list(filters=label) and docker_client.networks.list(filters=label)
    finally:
        stop_server(server)
    delete_rows(tmp_path / "orphan", dep_id)
    server = start_server(tmp_path / "orphan")
    try:
        deadline = time.monotonic() + 30
        while (docker_client.containers.list(all=True, filters=label, ignore_removed=True)
               or docker_client.networks.list(filters=label)):
            assert time.monotonic() < deadline, "the orphaned project outlived the sweep"
            time.sleep(0.2)
    finally:
        stop_server(server)
        DEPLOYED.discard(dep_id)
        # the sweep keeps a lost project's named volumes, as a stop without remove-volumes does: the test's own
        for volume in docker_client.volumes.list(filters=label):
            volume.remove(force=True)
