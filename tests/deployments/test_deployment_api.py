"""The deployment API around the lifecycle, on the real engine: module versions, clone, fetch-module,
operations per state, logs, the python-library ``Deployment`` helper, stop-and-delete and job cancel."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from nuvla.api import NuvlaError
from nuvla.api.resources.deployment import Deployment

from ..conftest import ADMIN_PASSWORD, start_server, stop_server
from .conftest import DEPLOYED, component, deploy, new_user, parameters, start, wait_ready, wait_state

LOCAL_CREDENTIAL = "credential/local-docker"


def ops(doc: dict) -> set[str]:
    return {op["rel"] for op in doc["operations"]}


def env_of(api, dep_id: str) -> dict[str, str]:
    wait_ready(api, dep_id)
    port = parameters(api, dep_id)["tcp.80"]
    text = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def versioned_app(api, images) -> tuple[str, list[str]]:
    """A served app whose GREETING is v0, then v1, then v2; returns the module id and its version hrefs."""
    module_id = component(api, images["app"], ports=[{"target-port": 80}],
                          **{"environmental-variables": [{"name": "GREETING", "value": "v0"}], "commit": "v0"})
    first = api.get(module_id).data["content"]
    for n in (1, 2):
        api.edit(module_id, {"content": {**first, "commit": f"v{n}",
                                         "environmental-variables": [{"name": "GREETING", "value": f"v{n}"}]}})
    versions = [v["href"] for v in api.get(module_id).data["versions"]]
    assert len(versions) == 3
    return module_id, versions


def wait_job(api, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    job = api.get(job_id).data
    while job["state"] not in ("SUCCESS", "FAILED", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.get(job_id).data
    assert job["state"] in ("SUCCESS", "FAILED", "CANCELED"), job
    return job


def stop_and_wait(api, dep_id: str) -> None:
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


# -- module versions -----------------------------------------------------------------------------------

def test_a_deployment_of_a_version_copies_that_version_and_runs_it(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    module_id, versions = versioned_app(api, images)
    uuid = module_id.split("/", 1)[1]

    dep_id = deploy(api, f"module/{uuid}_1")
    doc = api.get(dep_id).data
    module = doc["module"]
    assert module["href"] == f"module/{uuid}_1" and module["id"] == module_id
    assert module["content"]["id"] == versions[1] and module["content"]["commit"] == "v1"
    assert module["content"]["environmental-variables"] == [{"name": "GREETING", "value": "v1"}]
    assert [v["href"] for v in module["versions"]] == versions
    assert module["path"] == api.get(module_id).data["path"] and module["subtype"] == "component"
    assert "acl" not in module

    latest = api.get(deploy(api, module_id)).data["module"]
    assert latest["href"] == module_id and latest["content"]["id"] == versions[2]

    with pytest.raises(NuvlaError) as err:
        api.add("deployment", {"module": {"href": f"module/{uuid}_3"}})
    assert err.value.response.status_code == 404 and err.value.reason == f"module/{uuid}_3 not found"

    # what runs is the version deployed, even though the module has a newer one
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    assert env_of(api, dep_id)["GREETING"] == "v1"
    stop_and_wait(api, dep_id)


def test_fetch_module_moves_to_another_version_of_the_same_module_only(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    module_id, versions = versioned_app(api, images)
    uuid = module_id.split("/", 1)[1]
    dep_id = deploy(api, f"module/{uuid}_0")
    dep = api.get(dep_id)
    assert "fetch-module" in ops(dep.data)

    moved = api.operation(dep, "fetch-module", {"module-href": f"module/{uuid}_2"}).data
    assert moved["id"] == dep_id and moved["module"]["href"] == f"module/{uuid}_2"
    assert moved["module"]["content"]["id"] == versions[2]
    stored = api.get(dep_id).data
    assert stored["module"]["content"]["commit"] == "v2" and stored["state"] == "CREATED"

    other = component(api, images["app"])
    for href in (other, f"{other}_0", f"module/{uuid}", "nonsense", f"module/{uuid}_x"):
        with pytest.raises(NuvlaError) as err:
            api.operation(api.get(dep_id), "fetch-module", {"module-href": href})
        assert (err.value.response.status_code, err.value.reason) == (400, "invalid module-href"), href
    with pytest.raises(NuvlaError) as err:
        api.operation(api.get(dep_id), "fetch-module", {})
    assert (err.value.response.status_code, err.value.reason) == (400, "invalid module-href")
    assert api.get(dep_id).data["module"]["href"] == f"module/{uuid}_2"

    # the new version is what starts
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    assert env_of(api, dep_id)["GREETING"] == "v2"
    stop_and_wait(api, dep_id)


def test_clone_makes_a_new_created_deployment_of_the_same_module(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    module_id, versions = versioned_app(api, images)
    dep_id = deploy(api, module_id)
    api.edit(dep_id, {"name": "original", "description": "to be cloned", "tags": ["a", "b"]})
    # the module moves on after the deployment was made: the clone keeps the deployment's copy
    api.edit(module_id, {"content": {**api.get(module_id).data["content"], "commit": "v3",
                                     "environmental-variables": [{"name": "GREETING", "value": "v3"}]}})
    source = api.get(dep_id)
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    assert "clone" in ops(api.get(dep_id).data)  # in any state

    reply = api.operation(api.get(dep_id), "clone").data
    clone_id = reply["resource-id"]
    DEPLOYED.add(clone_id)
    assert reply["status"] == 201 and reply["message"] == f"{clone_id} created"
    assert clone_id != dep_id and clone_id.startswith("deployment/")
    clone = api.get(clone_id).data
    assert clone["state"] == "CREATED"
    assert (clone["name"], clone["description"], clone["tags"]) == ("original", "to be cloned", ["a", "b"])
    assert clone["module"]["href"] == module_id
    assert clone["module"]["content"] == source.data["module"]["content"]
    assert clone["module"]["content"]["id"] == versions[2]
    assert clone["parent"] == LOCAL_CREDENTIAL
    assert "api-credentials" not in clone
    assert api.search("deployment-parameter", filter=f"parent='{clone_id}'").count == 0
    assert api.get(dep_id).data["state"] == "STARTED"  # the original is untouched
    stop_and_wait(api, dep_id)
    api.delete(clone_id)


# -- operations ----------------------------------------------------------------------------------------

def test_operations_follow_the_state(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"]))
    created = ops(api.get(dep_id).data)
    assert {"edit", "delete", "start", "clone", "fetch-module", "force-delete"} <= created
    assert not created & {"stop", "update", "create-log"}

    start(api, dep_id)
    started = ops(wait_state(api, dep_id, "STARTED"))
    assert {"edit", "stop", "update", "create-log", "clone", "fetch-module", "force-delete"} <= started
    assert not started & {"delete", "start"}
    for refused in ("start", "delete"):
        with pytest.raises(NuvlaError) as err:
            if refused == "delete":
                api.delete(dep_id)
            else:
                api.operation(api.get(dep_id), refused)
        assert err.value.response.status_code == 409
        assert err.value.reason == f"Action {refused} cannot be called on {dep_id} in state STARTED!"

    api.operation(api.get(dep_id), "stop")
    stopped = ops(wait_state(api, dep_id, "STOPPED"))
    assert {"edit", "delete", "start", "clone", "force-delete"} <= stopped
    assert not stopped & {"stop", "update", "create-log"}
    for refused in ("stop", "update", "create-log"):
        with pytest.raises(NuvlaError) as err:
            api.operation(api.get(dep_id), refused)
        assert err.value.response.status_code == 409
        assert err.value.reason == f"Action {refused} cannot be called on {dep_id} in state STOPPED!"


# -- logs ----------------------------------------------------------------------------------------------

def test_create_log_then_fetch_fills_the_log_with_the_apps_lines(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"]))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")

    created = api.operation(api.get(dep_id), "create-log", {"components": ["app"], "lines": 50}).data
    log_id = created["resource-id"]
    assert created["status"] == 201 and log_id.startswith("resource-log/")
    assert created["message"] == f"{log_id} created"
    log = api.get(log_id).data
    assert log["parent"] == dep_id and log["components"] == ["app"] and log["lines"] == 50
    assert "log" not in log and "last-timestamp" not in log
    assert {"rel": "fetch", "href": f"{log_id}/fetch"} in log["operations"]

    expected = f"app of {dep_id} starting"
    deadline = time.monotonic() + 30
    while True:
        reply = api.operation(api.get(log_id), "fetch").data
        assert reply["status"] == 202 and reply["resource-id"] == log_id
        assert reply["location"].startswith("job/")
        job = wait_job(api, reply["location"])
        assert job["state"] == "SUCCESS" and job["action"] == "fetch_deployment_log"
        assert job["target-resource"] == {"href": log_id}
        log = api.get(log_id).data
        lines = log.get("log", {}).get("app", [])
        if any(line.endswith(expected) for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(line.endswith(expected) for line in lines), log
    assert set(log["log"]) == {"app"}
    # the newest line's engine timestamp, to the millisecond (the app may have written it before the log existed)
    newest = max(line.split(" ", 1)[0] for line in lines)
    assert newest >= log["created"][:10] and log["last-timestamp"] == newest[:23] + "Z"
    # without components: the app's component
    other = api.operation(api.get(dep_id), "create-log").data["resource-id"]
    assert api.get(other).data["components"] == ["app"]

    stop_and_wait(api, dep_id)
    api.delete(dep_id)
    for rid in (log_id, other):
        with pytest.raises(NuvlaError) as err:
            api.get(rid)
        assert err.value.response.status_code == 404


# -- the python-library helper -------------------------------------------------------------------------

def test_the_python_library_deployment_helper(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    module_id = component(api, images["app"], ports=[{"target-port": 80}], **{"output-parameters": [
        {"name": "result", "description": "what the app computed"}]})
    helper = Deployment(api)

    created = helper.create(module_id, infra_cred_id=LOCAL_CREDENTIAL)  # create, then an edit of the whole doc
    dep_id = created.id
    DEPLOYED.add(dep_id)
    assert Deployment.state(created) == "CREATED" and Deployment.credential_id(created) == LOCAL_CREDENTIAL
    assert Deployment.module(created)["href"] == module_id
    assert helper.get_state(dep_id) == "CREATED"
    assert dep_id in {d["id"] for d in helper.list()}

    response = helper.start(dep_id)
    assert response.data["status"] == 202 and response.data["location"].startswith("job/")
    wait_state(api, dep_id, "STARTED")
    node = Deployment.uuid(created)
    assert helper.get_parameter(dep_id, None, "hostname") == "localhost"
    assert helper.get_parameter(dep_id, node, "tcp.80").isdigit()
    assert helper.get_parameter(dep_id, node, "result") is None
    assert helper.get_parameter(dep_id, node, "no-such-parameter") is None
    helper.set_parameter(dep_id, node, "result", "42")
    assert helper.get_parameter(dep_id, node, "result") == "42"
    assert helper.get_parameters(dep_id)[node]["result"] == "42"
    assert helper.get_parameters(dep_id)["global"]["hostname"] == "localhost"

    helper.stop(dep_id)
    wait_state(api, dep_id, "STOPPED")
    assert helper.delete(dep_id).data == {"status": 200, "message": f"{dep_id} deleted", "resource-id": dep_id}
    with pytest.raises(NuvlaError) as err:
        helper.get(dep_id)
    assert (err.value.response.status_code, err.value.reason) == (404, f"{dep_id} not found")


def test_stop_with_delete_removes_the_deployment_once_stopped(sqlite_server, images, docker_client):
    api, _ = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"], ports=[{"target-port": 80}]))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    reply = api.operation(api.get(dep_id), "stop", {"delete": True}).data
    assert reply["status"] == 202
    job_id = reply["location"]
    assert api.get(job_id).data["payload"] == '{"delete": true}'
    assert wait_job(api, job_id)["state"] == "SUCCESS"
    with pytest.raises(NuvlaError) as err:
        api.get(dep_id)
    assert (err.value.response.status_code, err.value.reason) == (404, f"{dep_id} not found")
    assert docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
    assert api.search("deployment-parameter", filter=f"parent='{dep_id}'").count == 0
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0


# -- a server whose jobs wait for a separate worker ----------------------------------------------------

@pytest.fixture
def split_server(tmp_path):
    """``dockyard serve`` without workers, and a way to run (and stop) a ``dockyard worker`` beside it."""
    server = start_server(tmp_path / "api", extra_env={"DOCKYARD_WORKERS": "0"})
    env = dict(os.environ, DOCKYARD_DATA_DIR=server.data_dir, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD)
    workers: list[subprocess.Popen] = []

    def worker() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "ab"))
        workers.append(proc)
        return proc

    server.worker = worker  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        stop_server(server)


def stop_worker(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(15) == 0


def test_a_second_fetch_while_one_is_pending_returns_the_same_job(split_server, images):
    api, _ = new_user(split_server)
    dep_id = deploy(api, component(api, images["app"]))
    worker = split_server.worker()
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    stop_worker(worker)  # from here on, jobs stay queued

    log_id = api.operation(api.get(dep_id), "create-log").data["resource-id"]
    first = api.operation(api.get(log_id), "fetch").data
    second = api.operation(api.get(log_id), "fetch").data
    assert first["location"] == second["location"]
    assert second == {"status": 202, "message": f"fetching {log_id} with async {first['location']}",
                      "resource-id": log_id, "location": first["location"]}
    assert api.get(first["location"]).data["state"] == "QUEUED"
    assert api.search("job", filter=f"target-resource/href='{log_id}'").count == 1

    split_server.worker()
    assert wait_job(api, first["location"])["state"] == "SUCCESS"
    assert "app" in api.get(log_id).data["log"]
    third = api.operation(api.get(log_id), "fetch").data
    assert third["location"] != first["location"]  # the first is done: a new one
    wait_job(api, third["location"])
    stop_and_wait(api, dep_id)


def test_cancelling_a_queued_start_leaves_the_deployment_in_error(split_server, images, docker_client):
    api, _ = new_user(split_server)
    dep_id = deploy(api, component(api, images["app"]))
    job_id = start(api, dep_id)
    job = api.get(job_id)
    assert job.data["state"] == "QUEUED" and api.get(dep_id).data["state"] == "STARTING"
    assert {"rel": "cancel", "href": f"{job_id}/cancel"} in job.data["operations"]

    assert api.operation(job, "cancel").data["status"] == 200
    job = api.get(job_id).data
    assert job["state"] == "CANCELED" and job["progress"] == 100
    assert "cancel" not in ops(job)
    dep = api.get(dep_id).data
    assert dep["state"] == "ERROR" and dep["status-message"] == "start_deployment was canceled"
    assert {"stop", "update", "create-log"} <= ops(dep) and "delete" not in ops(dep)
    with pytest.raises(NuvlaError) as err:
        api.operation(api.get(job_id), "cancel")
    assert err.value.response.status_code == 409

    # a worker that comes later does not run the cancelled job
    split_server.worker()
    time.sleep(3)
    assert api.get(job_id).data["state"] == "CANCELED"
    assert api.get(dep_id).data["state"] == "ERROR"
    assert docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
    stop_and_wait(api, dep_id)
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0
    api.delete(dep_id)


def test_an_edit_cannot_move_the_lifecycle(sqlite_server, images, docker_client):
    """State is the lifecycle's: an edit that says STOPPED would otherwise let a delete drop a deployment
    whose container still runs."""
    api, _ = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"]))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    edited = api.edit(dep_id, {"state": "STOPPED", "name": "renamed"}).data
    assert edited["state"] == "STARTED" and edited["name"] == "renamed"
    with pytest.raises(NuvlaError) as err:
        api.delete(dep_id)
    assert err.value.response.status_code == 409
    assert docker_client.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


def test_an_edit_sets_the_apps_values_for_this_deployment_by_name(sqlite_server, images):
    """As Nuvla: a module in an edit sets environment and output-parameter values by name (it used to
    answer 200 and keep the old ones); nothing else of the module changes, and a wrong name changes nothing."""
    api, _ = new_user(sqlite_server)
    module_id = component(api, images["app"], ports=[{"target-port": 80}], **{
        "environmental-variables": [{"name": "GREETING", "value": "default"}, {"name": "EXTRA"}],
        "output-parameters": [{"name": "result", "description": "set by the app"}]})
    dep_id = deploy(api, module_id)
    edited = api.edit(dep_id, {"module": {"content": {
        "image": {"image-name": "elsewhere"},  # ignored: only the user-defined values change
        "environmental-variables": [{"name": "GREETING", "value": "hello"}, {"name": "EXTRA", "value": "x"}],
        "output-parameters": [{"name": "result", "value": "preset"}]}}}).data
    content = edited["module"]["content"]
    assert {v["name"]: v.get("value") for v in content["environmental-variables"]} == {"GREETING": "hello",
                                                                                      "EXTRA": "x"}
    assert content["output-parameters"] == [{"name": "result", "description": "set by the app", "value": "preset"}]
    assert content["image"] == api.get(module_id).data["content"]["image"]
    for bad, words in (([{"name": "NOPE", "value": "1"}], "declares no 'NOPE'"),
                       ([{"name": "GREETING", "value": 3}], "must be a string"), ("x", "must be a list")):
        with pytest.raises(NuvlaError) as err:
            api.edit(dep_id, {"module": {"content": {"environmental-variables": bad}}})
        assert err.value.response.status_code == 400 and words in err.value.reason
    assert api.get(dep_id).data["module"]["content"] == content
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    env = env_of(api, dep_id)
    assert env["GREETING"] == "hello" and env["EXTRA"] == "x"
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
