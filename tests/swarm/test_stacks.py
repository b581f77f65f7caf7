"""A compose application as a Swarm stack, through Dockyard's API, on the real 3-node swarm (issue 12).

The two-service app of ``tests/apps/app.py``, with ``web`` placed on a worker and ``db`` on the manager, so that
web reaching db by its service name crosses nodes over the stack's overlay network. This kernel has no IPVS:
the stack is deployed with every port in host mode and ``endpoint_mode: dnsrr``, and the deployment says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import httpx
import pytest

from dockyard.drivers.stack import NO_MESH
from tests.apps.app import APP_CONTENT, app_images, application
from tests.deployments.conftest import DEPLOYED, api_for, deploy, parameters, start, wait_parameter, wait_state
from tests.deployments.test_log_stream import LogLines, cookie_of
from tests.support.swarm import _load_image

from .helpers import NODE_NAMES, services_of, swarm_objects, wait_nothing_on_nodes

STACK = """
services:
  web:
    image: %(web)s
    ports:
      - "80"
    environment:
      WEB_TITLE: "web of ${NUVLA_DEPLOYMENT_UUID}"
    deploy:
      placement:
        constraints: ["node.role == worker"]
  db:
    image: %(db)s
    volumes:
      - cache:/cache
    deploy:
      placement:
        constraints: ["node.role == manager"]
volumes:
  cache: {}
"""
WAIT = 60.0


@pytest.fixture(scope="module")
def stack_images(swarm, docker_client):
    """web on every node; db (Python + nuvla-api, 170 MB) on the manager only, where it is placed."""
    images = app_images(docker_client)
    swarm.load_image(docker_client, images["web"])
    work = tempfile.mkdtemp(prefix="dockyard-stack-image-")
    try:
        path = os.path.join(work, "db.tar")
        with open(path, "wb") as out:
            for chunk in docker_client.images.get(images["db"]).save(named=images["db"]):
                out.write(chunk)
        _load_image(swarm.manager, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return images


@pytest.fixture(scope="module")
def stack(server, manager, swarm, stack_images):
    api, cred, *_ = manager
    dep_id = deploy(api, application(api, STACK % stack_images, "swarm", **APP_CONTENT), parent=cred)
    t0 = time.monotonic()
    start(api, dep_id)
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=180)
    print(f"[swarm stacks] start → both services running in {time.monotonic() - t0:.2f} s")
    yield {"api": api, "id": dep_id, "uuid": dep_id.split("/")[1], "started": doc}
    if dep_id in {d.id for d in api.search("deployment").resources}:
        api.operation(api.get(dep_id), "force-delete")
    DEPLOYED.discard(dep_id)


def services_by_name(swarm, dep_id: str) -> dict[str, dict]:
    return {s["Spec"]["Labels"]["dockyard.service"]: s for s in services_of(swarm, dep_id)}


def test_the_stack_runs_both_services_with_the_contract_and_web_reaches_db_across_nodes(stack, swarm):
    api, dep_id, doc = stack["api"], stack["id"], stack["started"]
    assert doc["state"] == "STARTED", doc.get("status-message")
    assert doc["status-message"].startswith("started services db, web in ")
    assert doc["status-message"].endswith(f"; {NO_MESH}")  # no IPVS here: host-mode ports and dnsrr, said so

    found = services_by_name(swarm, dep_id)
    assert sorted(found) == ["db", "web"]
    for name, service in found.items():
        spec = service["Spec"]
        assert spec["Name"] == f"{stack['uuid']}_{name}"
        assert spec["Labels"]["com.docker.stack.namespace"] == stack["uuid"]
        assert spec["Labels"]["dockyard.managed"] == "true" and spec["Labels"]["dockyard.job-id"].startswith("job/")
        assert spec["EndpointSpec"]["Mode"] == "dnsrr"
        env = dict(e.split("=", 1) for e in spec["TaskTemplate"]["ContainerSpec"]["Env"])
        assert env["NUVLA_DEPLOYMENT_ID"] == dep_id and env["NUVLA_API_KEY"] == doc["api-credentials"]["api-key"]
        assert len(env["NUVLA_API_SECRET"]) > 20 and env["GREETING"] == "hi"
    assert [p["PublishMode"] for p in found["web"]["Spec"]["EndpointSpec"]["Ports"]] == ["host"]

    params = parameters(api, dep_id)
    assert (params["web.replicas.desired"], params["web.replicas.running"]) == ("1", "1")
    assert params["db.node-id"] == "db" and params["db.current.state"] == "running"
    host, port = params["web.hostname"], params["web.tcp.80"]
    assert host in swarm.addresses[1:] and params["hostname"] == host  # web runs on a worker
    page = httpx.get(f"http://{host}:{port}/", timeout=5).text
    assert f"WEB_TITLE=web of {stack['uuid']}" in page
    # db logs in with the deployment's key, sets its output parameter, then serves
    def db_logs() -> str:
        return "".join(swarm.docker(0, *args, f"{stack['uuid']}_db", check=False)
                       for args in (("service", "logs"), ("service", "ps", "--no-trunc")))
    try:
        said = wait_parameter(api, dep_id, "db-says", timeout=WAIT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ndb's log:\n{db_logs()}") from None
    assert said == "hello from db: hi"
    deadline = time.monotonic() + WAIT
    while not (answer := httpx.get(f"http://{host}:{port}/cgi-bin/db", timeout=5).text):
        assert time.monotonic() < deadline, db_logs()
        time.sleep(0.2)
    assert answer.startswith("db answers hi from ")  # by name, worker → manager over the overlay


def test_the_stack_is_ready_once_web_accepts_on_the_node_it_runs_on(stack):
    """Readiness checks each published port where its service publishes it (``web.hostname``, a worker)."""
    api, dep_id = stack["api"], stack["id"]
    deadline = time.monotonic() + WAIT
    while (doc := api.get(dep_id).data).get("ready") is None:
        assert time.monotonic() < deadline, doc.get("ready-message")
        time.sleep(0.1)
    assert doc["ready"] is True, doc.get("ready-message")
    assert doc["phases"]["ready"] >= doc["phases"]["started"]


def test_logs_come_from_both_services_of_the_stack(stack, server):
    api, dep_id = stack["api"], stack["id"]
    logs = LogLines(f"{server.api}/{dep_id}/log-stream", cookie_of(api), tail="all")
    try:
        logs.wait_until(lambda: logs.count(" web | web of ") and logs.count(" db | db set db-says"),
                        "the start lines of both services", timeout=WAIT)
    finally:
        logs.close()


def test_a_killed_task_container_is_replaced_by_the_swarm_and_the_parameters_follow(stack, swarm):
    api, dep_id = stack["api"], stack["id"]
    before = parameters(api, dep_id)["web.service-id"]
    node = NODE_NAMES.index(next(n for n in NODE_NAMES if swarm.docker(
        NODE_NAMES.index(n), "ps", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").strip()
        and n != "node1"))
    [container] = swarm.docker(node, "ps", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").split()
    t0 = time.monotonic()
    swarm.docker(node, "kill", container)
    deadline = time.monotonic() + WAIT
    while (params := parameters(api, dep_id))["web.service-id"] == before or params["web.current.state"] != "running":
        assert time.monotonic() < deadline, params
        time.sleep(0.2)
    print(f"[swarm stacks] web's container killed → a new task running, parameters following, after "
          f"{time.monotonic() - t0:.2f} s")
    assert wait_state(api, dep_id, "STARTED")["state"] == "STARTED"


def test_stop_with_remove_volumes_and_delete_leave_nothing_on_any_node(stack, swarm, server):
    api, dep_id, uuid_ = stack["api"], stack["id"], stack["uuid"]
    spec = services_by_name(swarm, dep_id)["db"]["Spec"]["TaskTemplate"]["ContainerSpec"]
    env = dict(e.split("=", 1) for e in spec["Env"])
    assert f"{uuid_}_cache" in swarm.docker(0, "volume", "ls", "-q").split()
    api.operation(api.get(dep_id), "stop", {"remove-volumes": True})
    wait_state(api, dep_id, "STOPPED", timeout=120)
    wait_nothing_on_nodes(swarm, dep_id)
    nothing = {"service": [], "secret": [], "config": [], **{f"{n} networks": [] for n in NODE_NAMES}}
    assert swarm_objects(swarm, dep_id) == nothing
    for i in range(len(swarm.nodes)):
        assert not [v for v in swarm.docker(i, "volume", "ls", "-q").split() if v.startswith(uuid_)]
        assert swarm.docker(i, "network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={uuid_}") == ""
    assert api_for(server).login_apikey(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"]).status_code == 403
    api.delete(dep_id)
