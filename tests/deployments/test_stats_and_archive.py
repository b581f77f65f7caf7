"""A stopped deployment's log (kept by the stop before the container goes) and
``GET /api/deployment/<uuid>/stats-stream`` (CPU and memory of the running container), on the real engine."""

from __future__ import annotations

import json

import httpx

from ..api.helpers import COOKIE, error_of, forbidden
from ..api.test_event_stream import EventStream
from .conftest import component, deploy, new_user, parameters, start, wait_ready, wait_state
from .test_log_stream import cookie_of


def started(server, images):
    api, _ = new_user(server)
    dep_id = deploy(api, component(api, images["app"], ports=[{"target-port": 80}]))
    start(api, dep_id)
    wait_ready(api, dep_id)
    return api, dep_id, parameters(api, dep_id)["tcp.80"]


def test_a_stop_keeps_the_last_lines_and_the_log_stream_serves_them(sqlite_server, images, docker_client):
    api, dep_id, port = started(sqlite_server, images)
    httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    assert not docker_client.api.containers(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"})

    url = f"{sqlite_server.api}/{dep_id}/log-stream"
    plain = httpx.get(url, params={"tail": "all"}, cookies={COOKIE: cookie_of(api)}, timeout=10)
    assert plain.status_code == 200
    lines = plain.text.splitlines()
    assert any(f"app of {dep_id} starting" in line for line in lines), lines
    assert any("response:200" in line for line in lines), lines
    assert httpx.get(url, params={"tail": "1"}, cookies={COOKIE: cookie_of(api)}).text.splitlines() == lines[-1:]
    with EventStream(url, cookie=cookie_of(api), headers={"Accept": "text/event-stream"}) as es:
        end = es.wait_for(lambda e: e.event == "end", "the end of the archive")
        assert "removed when the deployment stopped" in json.loads(end.data)["message"]
        assert any(f"app of {dep_id} starting" in e.data for e in es.events if e.event == "message")
    # kept as the deployment's resource-log, readable as Nuvla's are, and gone with the deployment
    [kept] = api.search("resource-log", filter=f"parent='{dep_id}' and name='archived log'").resources
    assert any("response:200" in line for lines in kept.data["log"].values() for line in lines)
    stranger, _ = new_user(sqlite_server)
    assert error_of(httpx.get(url, cookies={COOKIE: cookie_of(stranger)})) == forbidden(dep_id)
    api.delete(dep_id)
    assert api.search("resource-log", filter=f"parent='{dep_id}'").count == 0


def test_the_stats_stream_sends_cpu_and_memory_while_the_container_runs(sqlite_server, images):
    api, dep_id, _ = started(sqlite_server, images)
    url = f"{sqlite_server.api}/{dep_id}/stats-stream"
    try:
        stranger, _ = new_user(sqlite_server)
        assert error_of(httpx.get(url, cookies={COOKIE: cookie_of(stranger)})) == forbidden(dep_id)
        assert error_of(httpx.get(url)) == forbidden(dep_id)
        assert error_of(httpx.post(url, cookies={COOKIE: cookie_of(api)}))[0] == 405
        with EventStream(url, cookie=cookie_of(api)) as es:
            assert es.response.headers["content-type"].startswith("text/event-stream")
            first = es.wait_for(lambda e: e.event == "stats", "a sample")
            sample = json.loads(first.data)
            assert set(sample) == {"time", "cpu-percent", "memory-bytes", "memory-limit-bytes"}
            assert 0 < sample["memory-bytes"] < sample["memory-limit-bytes"]
            assert sample["cpu-percent"] >= 0
            api.operation(api.get(dep_id), "stop")
            es.wait_for(lambda e: e.event == "end", "the end once the container stops", timeout=30)
        wait_state(api, dep_id, "STOPPED")
        assert error_of(httpx.get(url, cookies={COOKIE: cookie_of(api)})) == \
            (409, f"{dep_id} has no running container in state STOPPED")
    finally:
        doc = api.get(dep_id).data
        if doc["state"] != "STOPPED":
            api.operation(doc, "force-delete")
