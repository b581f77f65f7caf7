"""A compose application on one Docker engine (Debian's docker-compose 1.29.2), through Dockyard's API.

One deployment of the two-service app (``tests/apps/app.py``) is taken through its life by the tests of this
module in order: started with a data object mounted, its services reach each other by name and carry the
deployment's contract, its logs come from both, a killed service puts it in ERROR and back, an update
replaces its containers, and a stop with ``remove-volumes`` leaves nothing of it on the engine.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from nuvla.api.resources.data import DataObjectS3
from nuvla.api.resources.deployment import Deployment

from dockyard.cli.deployments import urls_of

from ..dataflow.test_data_api import LOCAL_CRED
from ..deployments.conftest import DEPLOYED, api_for, new_user, parameters, start, wait_parameter, wait_state
from ..deployments.test_log_stream import LogLines, cookie_of
from .app import APP_CONTENT, application, compose_text

WAIT = 30.0


@pytest.fixture(scope="module")
def app(sqlite_server, app_image_tags, docker_client):
    """A user's deployment of the app with a data object mounted, started; its key's id and secret too."""
    api, _ = new_user(sqlite_server)
    bucket = f"app-data-{uuid.uuid4().hex[:6]}"
    obj = DataObjectS3(api).create(b"data for every service", bucket, "hello.txt", LOCAL_CRED,
                                   content_type="text/plain")
    module = application(api, compose_text(app_image_tags), **APP_CONTENT)
    dep = Deployment(api).create(module, data_objects=[obj])
    DEPLOYED.add(dep.id)
    t0 = time.monotonic()
    start(api, dep.id)
    doc = wait_state(api, dep.id, {"STARTED", "ERROR"}, timeout=120)
    print(f"[apps] compose start → both services running in {time.monotonic() - t0:.2f} s")
    yield {"api": api, "id": dep.id, "uuid": dep.id.split("/")[1], "bucket": bucket, "started": doc}
    if dep.id in {d.id for d in api.search("deployment").resources}:
        api.operation(api.get(dep.id), "force-delete")


def containers(docker_client, dep_id: str) -> dict[str, object]:
    found = docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"})
    return {c.labels["dockyard.service"]: c for c in found}


def env_of(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def test_both_services_run_with_the_contract_and_web_reaches_db_by_name(app, docker_client):
    api, dep_id, doc = app["api"], app["id"], app["started"]
    assert doc["state"] == "STARTED", doc.get("status-message")
    assert doc["status-message"].startswith("started services db, web in ")
    assert doc["task"]["services"] == ["db", "web"] and doc["task"]["replicas"] == "2/2"

    found = containers(docker_client, dep_id)
    assert sorted(found) == ["db", "web"]
    for service, container in found.items():
        labels = container.labels
        assert labels["dockyard.managed"] == "true" and labels["dockyard.job-id"].startswith("job/")
        assert labels["com.docker.compose.project"] == app["uuid"] and labels["com.docker.compose.service"] == service
        env = env_of(container)  # the contract in every service, by name in the file, by value from the CLI
        assert env["NUVLA_DEPLOYMENT_ID"] == dep_id and env["NUVLA_API_KEY"] == doc["api-credentials"]["api-key"]
        assert len(env["NUVLA_API_SECRET"]) > 20 and env["NUVLA_ENDPOINT"] == doc["api-endpoint"]
        assert env["GREETING"] == "hi"  # the app's own variable
        # the data object's bucket, read-only, in every service
        assert container.exec_run(["cat", f"/mnt/{app['bucket']}/hello.txt"]).output == b"data for every service"
        assert container.exec_run(["sh", "-c", f"echo x > /mnt/{app['bucket']}/new.txt"]).exit_code != 0

    params = parameters(api, dep_id)
    assert params["web.node-id"] == "web" and params["db.node-id"] == "db"
    assert params["web.image"] == "dockyard-test/app-web:1" and params["db.current.state"] == "running"
    assert params["db.service-id"] == found["db"].id
    port = params["web.tcp.80"]
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text  # the published port answers
    assert f"WEB_TITLE=web of {app['uuid']}" in page  # ${NUVLA_DEPLOYMENT_UUID} interpolated by compose
    answer = httpx.get(f"http://127.0.0.1:{port}/cgi-bin/db", timeout=5).text
    assert answer.startswith("db answers hi from ")  # web reached db by its service name
    # db logged in with the deployment's key and set its output parameter through the API
    assert wait_parameter(api, dep_id, "db-says", timeout=WAIT) == "hello from db: hi"
    param_docs = {r.data["name"]: r.data for r in api.search("deployment-parameter",
                                                           filter=f"parent='{dep_id}'").resources}
    assert urls_of(api.get(dep_id).data, param_docs) == [
        {"label": "web", "url": f"http://{params['hostname']}:{port}/"}]


def test_logs_come_from_both_services_each_line_tagged(app, sqlite_server):
    api, dep_id = app["api"], app["id"]
    logs = LogLines(f"{sqlite_server.api}/{dep_id}/log-stream", cookie_of(api), tail="all")
    try:
        logs.wait_until(lambda: logs.count(" web | web of ") and logs.count(" db | db of ")
                        and logs.count(" db | db set db-says"), "start lines of both services")
        port = parameters(api, dep_id)["web.tcp.80"]
        httpx.get(f"http://127.0.0.1:{port}/cgi-bin/db", timeout=5)
        logs.wait_until(lambda: logs.count(" db | db served /"), "db's request line, as it is written")
    finally:
        logs.close()


def test_a_killed_service_puts_the_deployment_in_error_naming_it_and_back(app, docker_client):
    api, dep_id = app["api"], app["id"]
    db = containers(docker_client, dep_id)["db"]
    t0 = time.monotonic()
    db.kill()
    doc = wait_state(api, dep_id, "ERROR", timeout=WAIT)
    print(f"[apps] db killed → deployment ERROR after {time.monotonic() - t0:.2f} s")
    assert doc["status-message"] == "service 'db': the container exited with code 137"
    assert parameters(api, dep_id)["db.current.state"] == "exited"
    db.start()
    doc = wait_state(api, dep_id, "STARTED", timeout=WAIT)
    assert doc["status-message"] == "its services run again"


def test_an_update_replaces_every_service(app, docker_client):
    api, dep_id = app["api"], app["id"]
    before = {name: c.id for name, c in containers(docker_client, dep_id).items()}
    api.operation(api.get(dep_id), "update")
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)
    assert doc["state"] == "STARTED" and doc["status-message"].startswith("updated services db, web"), doc
    after = {name: c.id for name, c in containers(docker_client, dep_id).items()}
    assert sorted(after) == ["db", "web"] and not set(after.values()) & set(before.values())
    port = parameters(api, dep_id)["web.tcp.80"]
    deadline = time.monotonic() + WAIT
    while True:  # db's server starts a moment after its container
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/cgi-bin/db", timeout=5).text
        except httpx.HTTPError:
            answer = ""
        if answer.startswith("db answers") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.startswith("db answers hi")


def test_stop_with_remove_volumes_leaves_nothing_and_revokes_the_key(app, docker_client, sqlite_server):
    api, dep_id, uuid_ = app["api"], app["id"], app["uuid"]
    key = containers(docker_client, dep_id)["web"]
    secret = env_of(key)["NUVLA_API_SECRET"]
    key_id = api.get(dep_id).data["api-credentials"]["api-key"]
    assert docker_client.volumes.list(filters={"label": f"com.docker.compose.project={uuid_}"})
    api.operation(api.get(dep_id), "stop", {"remove-volumes": True})
    doc = wait_state(api, dep_id, "STOPPED", timeout=60)
    for label in (f"dockyard.deployment-id={dep_id}", f"com.docker.compose.project={uuid_}"):
        assert docker_client.containers.list(all=True, filters={"label": label}) == []
        assert docker_client.networks.list(filters={"label": label}) == []
        assert docker_client.volumes.list(filters={"label": label}) == []
    assert api_for(sqlite_server).login_apikey(key_id, secret).status_code == 403
    archived = httpx.get(f"{sqlite_server.api}/{dep_id}/log-stream", params={"tail": "all"},
                         cookies={"com.sixsq.nuvla.cookie": cookie_of(api)}, timeout=10).text
    assert " web | " in archived and " db | " in archived  # the stop kept both services' lines
    assert doc["state"] == "STOPPED"
    api.delete(dep_id)
