"""Many processes on one PostgreSQL, seen from outside: API processes (`serve --no-workers`) and workers
(`dockyard worker`) on the simulated engine, the event stream through one process carrying what another
changed, jobs claimed at once across processes, and one reconciler per engine, taken over when its holder
is SIGKILLed."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from ..api.helpers import DOC_TYPE, Caller
from ..api.test_event_stream import stream_of
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


WRITERS, EDITS, SHARED_EDITS = 4, 40, 20


def test_the_event_stream_through_either_api_process_carries_every_change_once_in_commit_order(cluster):
    c = cluster()
    a, b = c.api("api-a"), c.api("api-b")
    through_a = admin_of(a)
    cookie = through_a.cookie  # one session, valid in every process

    def pair() -> tuple[Caller, Caller]:  # a thread's own clients of each process
        return admin_of(a, cookie=cookie), admin_of(b, cookie=cookie)

    shared = through_a.new_doc(description="shared 0")

    def own_document(w: int) -> str:
        """A document of this writer's, edited as fast as the answers come, alternately through each process:
        its versions commit in this order."""
        callers = pair()
        doc = callers[w % 2].new_doc(description=f"w{w} v0")
        for n in range(1, EDITS + 1):
            ok(callers[(w + n) % 2].put(doc, json={"description": f"w{w} v{n}"}))
        return doc

    def on_shared(t: int) -> None:
        """Edits of one document by two writers at once, each through its own process."""
        caller = pair()[t]
        for n in range(1, SHARED_EDITS + 1):
            ok(caller.put(shared, json={"description": f"s{t} {n}"}))

    with stream_of(through_a, types=DOC_TYPE) as seen_a, stream_of(admin_of(b, cookie=cookie), types=DOC_TYPE) as seen_b:
        with ThreadPoolExecutor(WRITERS + 2) as pool:
            own = [pool.submit(own_document, w) for w in range(WRITERS)]
            for future in [pool.submit(on_shared, t) for t in (0, 1)]:
                future.result()
            docs = [future.result() for future in own]
        ok(through_a.delete(docs[0]))
        last_shared = ok(through_a.get(shared))["description"]
        total = WRITERS * (EDITS + 1) + 2 * SHARED_EDITS + 1
        for seen in (seen_a, seen_b):
            seen.wait_until(lambda s=seen: len(s.events) >= total, f"{total} events", timeout=60)
        time.sleep(0.5)  # a duplicate would come right behind
        streams = []
        for seen in (seen_a, seen_b):
            for w, doc in enumerate(docs):  # every version of each document once, in commit order
                got = [(e.event, e.json.get("description")) for e in seen.of(doc)]
                expected = [("add", f"w{w} v0")] + [("edit", f"w{w} v{n}") for n in range(1, EDITS + 1)]
                assert got == expected + ([("delete", None)] if w == 0 else []), got
            values = [e.json["description"] for e in seen.of(shared)]
            assert sorted(values) == sorted(f"s{t} {n}" for t in (0, 1) for n in range(1, SHARED_EDITS + 1))
            for t in (0, 1):  # each writer's edits committed in its order
                assert [v for v in values if v.startswith(f"s{t} ")] == [f"s{t} {n}" for n in range(1, SHARED_EDITS + 1)]
            assert values[-1] == last_shared
            streams.append([(e.event, e.data) for e in seen.events])
        # both processes carry the same sequence: the installation's commit order, whichever process wrote
        assert streams[0] == streams[1]
        # logging out through one process ends the streams of that session in both, with nothing after
        assert through_a.logout().status_code == 200
        for seen in (seen_a, seen_b):
            seen.wait_ended()
            assert len(seen.events) == total
    print(f"{len(streams[0])} events, the same in both streams")


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


def the_one_holder(workers: list, held: str, role: str) -> tuple:
    """(the worker whose log says it holds the role, the other), once one does and the other has tried at
    least twice more without taking it."""
    deadline = time.monotonic() + 10
    while not any(held in w.text() for w in workers):
        assert time.monotonic() < deadline, f"no process {role}"
        time.sleep(0.1)
    time.sleep(2.5)  # the other has tried at least twice by now
    holders = [w for w in workers if held in w.text()]
    assert len(holders) == 1, f"two processes: {role}"
    return holders[0], workers[1 - workers.index(holders[0])]


def test_one_reconciler_follows_the_engine_and_another_takes_over_when_its_process_is_killed(cluster):
    c = cluster(**SIMULATED)
    a = c.api("api-a")
    workers = [c.worker("worker-1"), c.worker("worker-2")]
    holder, other = the_one_holder(workers, HOLDS_ENGINE, "follows the engine")
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


def children_of(pid: int) -> list[int]:
    """The API processes of a `serve --processes` (multiprocessing's resource tracker left out)."""
    import subprocess as sp

    out = sp.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line]


def test_serve_processes_runs_n_api_processes_on_one_port_and_replaces_one_that_dies(cluster):
    import os
    import signal

    import httpx

    from ..conftest import free_port

    c = cluster(**SIMULATED)
    port = free_port()
    serve = c._spawn("serve", "serve", "--processes", "2", "--port", str(port), port=port)
    deadline = time.monotonic() + 90
    while len(children_of(serve.popen.pid)) < 2 or not _answers(serve.endpoint):
        assert serve.alive(), serve.text()[-3000:]
        assert time.monotonic() < deadline, serve.text()[-3000:]
        time.sleep(0.1)
    first = children_of(serve.popen.pid)
    caller = admin_of(serve)
    module_id = app_module(caller)
    started = [launch(caller, module_id)[0] for _ in range(10)]  # the workers run in the serving process
    for dep_id in started:
        wait_state(caller, dep_id, "STARTED", timeout=15)
    os.kill(first[0], signal.SIGKILL)
    killed = time.monotonic()
    while first[0] in children_of(serve.popen.pid) or len(children_of(serve.popen.pid)) < 2:
        assert time.monotonic() - killed < 30, f"no API process replaced the killed one:\n{serve.text()[-2000:]}"
        time.sleep(0.1)
    for _ in range(20):  # whichever process each connection lands on answers
        with httpx.Client() as fresh:
            assert fresh.get(serve.endpoint + "/api/cloud-entry-point").status_code == 200
    caller.http.close()
    serve.popen.send_signal(signal.SIGTERM)
    assert serve.popen.wait(timeout=30) == 0
    assert children_of(serve.popen.pid) == []
    assert re.search(rf"API process \d \(pid {first[0]}\) ended with -9; starting another", serve.text())



def _answers(endpoint: str) -> bool:
    import httpx

    try:
        return httpx.get(endpoint + "/api/cloud-entry-point", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_processes_needs_postgresql(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "dockyard.cli.main", "serve", "--processes", "2",
                             "--data-dir", str(tmp_path), "--database", f"sqlite:///{tmp_path / 'store.db'}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--processes above 1 needs a PostgreSQL store" in result.stderr
    assert not (tmp_path / "store.db").exists()  # refused before anything was made


def test_one_process_runs_the_readiness_checks_and_another_resumes_them_when_it_is_killed(cluster):
    c = cluster(**SIMULATED)
    a = c.api("api-a")
    workers = [c.worker("worker-1"), c.worker("worker-2")]
    holds = "now holds readiness"
    holder, other = the_one_holder(workers, holds, "runs the readiness checks")
    caller = admin_of(a)
    project = f"scale-{time.monotonic_ns()}"
    ok(caller.post("module", json={"path": project, "subtype": "project", "name": project}), 201)
    content = {"image": {"image-name": "simulated-app", "tag": "1"}, "author": "tests", "architectures": ["amd64"],
               "output-parameters": [{"name": "token", "description": "set later"}],
               "readiness": {"tcp": False, "output-parameters": ["token"], "timeout": 120}}
    module_id = ok(caller.post("module", json={"path": f"{project}/app", "subtype": "component", "name": "app",
                                               "content": content}), 201)["resource-id"]
    dep_id, _ = launch(caller, module_id)
    wait_state(caller, dep_id, "STARTED", timeout=10)
    time.sleep(0.5)
    assert "ready" not in ok(caller.get(dep_id))  # waiting for its output parameter
    holder.kill()
    killed = time.monotonic()
    while holds not in other.text():
        assert time.monotonic() - killed < 5.0, f"the readiness checks were not taken over:\n{other.text()[-2000:]}"
        time.sleep(0.05)
    found = ok(caller.get("deployment-parameter", params={"filter": f"parent='{dep_id}' and name='token'"}))
    (param,) = found["resources"]
    ok(caller.put(param["id"], json={"value": "s3cr3t-token"}))
    deadline = time.monotonic() + 10
    while ok(caller.get(dep_id)).get("ready") is not True:
        assert time.monotonic() < deadline, ok(caller.get(dep_id)).get("ready-message")
        time.sleep(0.05)
