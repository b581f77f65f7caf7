"""Deployments on the simulated engine through the real nuvla-api client: the lifecycle, the reconciler's
ERROR rules on a simulated exit, the log stream, and a burst of starts."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
from nuvla.api import Api

from ..api.test_event_stream import EventStream
from ..deployments.conftest import api_for, new_user, parameters, wait_state
from ..deployments.test_log_stream import LogLines, cookie_of


def app(api: Api, **content) -> str:
    project = f"p{uuid.uuid4().hex[:8]}"
    api.add("module", {"path": project, "subtype": "project", "name": project})
    body = {"path": f"{project}/app", "subtype": "component", "name": "app",
            "content": {"image": {"image-name": "simulated-app", "tag": "1"}, "author": "tests",
                        "architectures": ["amd64"], "readiness": {"tcp": False}, **content}}
    return api.add("module", body).data["resource-id"]


def env(**values) -> dict:
    return {"environmental-variables": [{"name": k, "value": v} for k, v in values.items()]}


def start(api: Api, module_id: str) -> str:
    dep_id = api.add("deployment", {"module": {"href": module_id}}).data["resource-id"]
    api.operation(api.get(dep_id), "start")
    return dep_id


def test_the_local_engine_is_the_simulated_one(simulated_server):
    admin = api_for(simulated_server)
    admin.login_password("admin", "admin-test-password")
    infra = admin.get("infrastructure-service/local-docker").data
    assert infra["endpoint"].startswith("simulated:///")


def test_start_exit_error_stop(simulated_server):
    api, _ = new_user(simulated_server)
    module_id = app(api, ports=[{"target-port": 8080}, {"target-port": 53, "protocol": "udp"}],
                    **env(SIMULATED_EXIT_AFTER="2", SIMULATED_EXIT_CODE="7", SIMULATED_LOG="one|two"))
    dep_id = start(api, module_id)
    logs = None
    try:
        doc = wait_state(api, dep_id, "STARTED", timeout=20)
        params = parameters(api, dep_id)
        assert 32768 <= int(params["tcp.8080"]) <= 60999 and 32768 <= int(params["udp.53"]) <= 60999
        assert params["hostname"] and "tcp.8080=" in doc["status-message"]
        logs = LogLines(f"{simulated_server.api}/{dep_id}/log-stream", cookie_of(api), tail="all")
        logs.wait_until(lambda: logs.count("two") == 1, "the app's log lines")
        doc = wait_state(api, dep_id, "ERROR", timeout=20)  # the simulated exit, seen by the reconciler
        assert "7" in doc["status-message"], doc["status-message"]
        assert parameters(api, dep_id)["current.state"] == "exited"
        logs.wait_until(lambda: logs.count("exited with code 7") == 1, "the exit's line")
        logs.wait_until(lambda: logs.ended, "the end of the log stream")
        api.operation(api.get(dep_id), "stop")
        wait_state(api, dep_id, "STOPPED", timeout=20)
    finally:
        if logs is not None:
            logs.close()


def test_a_burst_of_200_starts_reaches_started_once_each(simulated_server):
    api, _ = new_user(simulated_server)
    module_id = app(api, ports=[{"target-port": 80}])
    ids = [api.add("deployment", {"module": {"href": module_id}}).data["resource-id"] for _ in range(200)]
    cookie = cookie_of(api)
    with EventStream(f"{simulated_server.api}/event-stream", cookie=cookie, params={"types": "deployment"}) as stream:
        time.sleep(0.5)  # subscribed before the starts
        client = httpx.Client(cookies={"com.sixsq.nuvla.cookie": cookie}, timeout=30)

        def starter(part):
            for dep_id in part:
                assert client.post(f"{simulated_server.api}/{dep_id}/start").status_code == 202

        threads = [threading.Thread(target=starter, args=(ids[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wanted = set(ids)

        def started() -> list:
            """Each move to STARTED the stream showed (later edits of a STARTED deployment are not moves)."""
            last: dict = {}
            moves = []
            for e in list(stream.events):
                if e.event in ("add", "edit") and e.doc_id in wanted:
                    state = e.json.get("state")
                    if state == "STARTED" and last.get(e.doc_id) != "STARTED":
                        moves.append(e.doc_id)
                    last[e.doc_id] = state
            return moves

        stream.wait_until(lambda: wanted <= set(started()), "every deployment STARTED", timeout=120)
        time.sleep(1.0)  # a second STARTED would follow at once
        seen = started()
        assert sorted(seen) == sorted(ids), "each deployment reaches STARTED exactly once"
        client.close()
    found = api.search("deployment", filter="state='STARTED'", last=500)
    assert {r.id for r in found.resources} >= wanted
    jobs = api.search("job", filter="action='start_deployment' and state='SUCCESS'", last=1000).resources
    by_target = {}
    for job in jobs:
        by_target.setdefault(job.data["target-resource"]["href"], []).append(job.id)
    assert all(len(by_target.get(dep_id, [])) == 1 for dep_id in ids)
