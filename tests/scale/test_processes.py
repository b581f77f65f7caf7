"""Many processes on one PostgreSQL, seen from outside: API processes (`serve --no-workers`) and workers
(`dockyard worker`) on the simulated engine, the event stream through one process carrying what another
changed, jobs claimed at once across processes, and one reconciler per engine, taken over when its holder
is SIGKILLed."""

from __future__ import annotations

import time
from datetime import datetime

from ..api.helpers import Caller
from ..conftest import ADMIN_PASSWORD

SIMULATED = {"DOCKYARD_ENGINE": "simulated"}
HOLDS_ENGINE = "now holds engine:credential/local-docker"


def admin_of(proc, cookie: str | None = None) -> Caller:
    caller = Caller(proc, cookie=cookie)
    if cookie is None:
        assert caller.login_password("admin", ADMIN_PASSWORD).status_code == 201
    return caller


def ok(resp, *statuses):
    assert resp.status_code in (statuses or (200,)), f"{resp.request.method} {resp.request.url}: {resp.text}"
    return resp.json()


def app_module(caller: Caller, **env: str) -> str:
    project = f"scale-{time.monotonic_ns()}"
    ok(caller.post("module", json={"path": project, "subtype": "project", "name": project}), 201)
    content = {"image": {"image-name": "simulated-app", "tag": "1"}, "author": "tests", "architectures": ["amd64"],
               "readiness": {"tcp": False}, "ports": [{"target-port": 8080}]}
    if env:
        content["environmental-variables"] = [{"name": k, "value": v} for k, v in env.items()]
    return ok(caller.post("module", json={"path": f"{project}/app", "subtype": "component", "name": "app",
                                          "content": content}), 201)["resource-id"]


def launch(caller: Caller, module_id: str) -> tuple[str, str]:
    """A new deployment of ``module_id``, started: (deployment id, its start job id)."""
    dep_id = ok(caller.post("deployment", json={"module": {"href": module_id}}), 201)["resource-id"]
    job = ok(caller.post(f"{dep_id}/start", json={}), 202)
    return dep_id, job["location"]


def wait_state(caller: Caller, rid: str, state: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = ok(caller.get(rid))
        if doc["state"] == state:
            return doc
        assert time.monotonic() < deadline, f"{rid} is {doc['state']} after {timeout} s: {doc.get('status-message')}"
        time.sleep(0.05)


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_a_job_queued_through_an_api_process_is_claimed_at_once_by_a_worker_process(cluster):
    c = cluster(**SIMULATED, DOCKYARD_JOB_POLL="60")  # no poll would find it in time: the NOTIFY must
    a = c.api("api-a")
    c.worker("worker-1")
    caller = admin_of(a)
    module_id = app_module(caller)
    for _ in range(5):
        dep_id, job_id = launch(caller, module_id)
        wait_state(caller, dep_id, "STARTED", timeout=10)
        job = ok(caller.get(job_id))
        waited = ts(job["phases"]["claimed"]) - ts(job["created"])
        assert waited < 0.5, f"{job_id} waited {waited:.3f} s for a worker"


def test_one_reconciler_follows_the_engine_and_another_takes_over_when_its_process_is_killed(cluster):
    c = cluster(**SIMULATED)
    a = c.api("api-a")
    workers = [c.worker("worker-1"), c.worker("worker-2")]
    deadline = time.monotonic() + 10
    while not any(HOLDS_ENGINE in w.text() for w in workers):
        assert time.monotonic() < deadline, "no process follows the engine"
        time.sleep(0.1)
    time.sleep(2.5)  # the other has tried at least twice by now
    holders = [w for w in workers if HOLDS_ENGINE in w.text()]
    assert len(holders) == 1, "two reconcilers follow one engine"
    holder = holders[0]
    other = workers[1 - workers.index(holder)]
    caller = admin_of(a)
    # a container that exits 4 s after its start: only a reconciler following the engine notices
    dep_id, _ = launch(caller, app_module(caller, SIMULATED_EXIT_AFTER="4", SIMULATED_EXIT_CODE="3"))
    wait_state(caller, dep_id, "STARTED", timeout=10)
    holder.kill()
    killed = time.monotonic()
    while HOLDS_ENGINE not in other.text():
        assert time.monotonic() - killed < 5.0, f"the engine was not taken over:\n{other.text()[-2000:]}"
        time.sleep(0.05)
    taken = time.monotonic() - killed
    doc = wait_state(caller, dep_id, "ERROR", timeout=15)
    assert "3" in (doc.get("status-message") or ""), doc.get("status-message")
    print(f"engine taken over {taken:.2f} s after the SIGKILL")
