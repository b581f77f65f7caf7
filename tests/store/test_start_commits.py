"""A start's own writes commit three times: the API's accept, the worker's claim, the outcome.

The server runs in this process over a real store (SQLite and PostgreSQL) with its workers on the simulated
engine, so that the test reads the store's change journal: its observers see each committed write
transaction's changes, in commit order.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from ..support.inprocess import ADMIN_PASSWORD, in_process


@pytest.fixture
def server(db_url, tmp_path):
    with in_process(db_url, str(tmp_path), background=True, engine="simulated") as (runtime, endpoint):
        yield runtime.services, endpoint


def test_a_start_commits_three_times(server):
    services, endpoint = server
    http = httpx.Client(base_url=endpoint + "/api/", timeout=30)
    assert http.post("session", json={"template": {"href": "session-template/password", "username": "admin",
                                                   "password": ADMIN_PASSWORD}}).status_code == 201
    project = f"p{uuid.uuid4().hex[:8]}"
    assert http.post("module", json={"path": project, "subtype": "project"}).status_code == 201
    module = http.post("module", json={"path": f"{project}/app", "subtype": "component", "content": {
        "image": {"image-name": "example/app:1"}, "author": "tests", "architectures": ["amd64"],
        "ports": [{"protocol": "tcp", "target-port": 80}],
        "output-parameters": [{"name": "ready", "description": "set by the app"}]}}).json()["resource-id"]
    dep = http.post("deployment", json={"module": {"href": module}}).json()["resource-id"]

    transactions: list[list[tuple[str, str, dict]]] = []
    services.store.observers.append(transactions.append)
    job = http.post(f"{dep}/start").json()["location"]
    deadline = time.monotonic() + 30
    while http.get(job).json()["state"] not in ("SUCCESS", "FAILED"):
        assert time.monotonic() < deadline, "the start did not end"
        time.sleep(0.02)
    time.sleep(0.3)  # anything the start still wrote after its job ended would show now
    services.store.observers.remove(transactions.append)

    assert http.get(job).json()["state"] == "SUCCESS"
    assert http.get(dep).json()["state"] == "STARTED"

    def own(tx: list[tuple[str, str, dict]]) -> bool:
        return any(rid in (dep, job) or doc.get("parent") == dep for _, rid, doc in tx)

    mine = [tx for tx in transactions if own(tx)]
    summary = [[(kind, rid.split("/")[0], doc.get("state") or doc.get("name")) for kind, rid, doc in tx]
               for tx in mine]
    # what changed in the deployment at each commit (for a failure's message)
    versions = [doc for tx in mine for _, rid, doc in tx if rid == dep]
    changed = [sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)) for a, b in zip(versions, versions[1:])]
    assert len(mine) == 3, (summary, changed, versions[-1])
    accept, claim, outcome = mine
    # the accept: the job queued, the deployment STARTING, its parameters made before the container runs
    assert ("edit", "deployment", "STARTING") in summary[0] and ("add", "job", "QUEUED") in summary[0]
    assert {("add", "deployment-parameter", n) for n in ("hostname", "tcp.80", "ready")} <= set(summary[0])
    assert summary[1] == [("edit", "job", "RUNNING")]
    # the outcome: STARTED, the port the engine chose, the job's end, together
    assert ("edit", "deployment", "STARTED") in summary[2] and ("edit", "job", "SUCCESS") in summary[2]
    port = next(doc for _, rid, doc in outcome if doc.get("name") == "tcp.80")
    assert port["value"].isdigit()
    assert transactions.index(accept) < transactions.index(claim) < transactions.index(outcome)
