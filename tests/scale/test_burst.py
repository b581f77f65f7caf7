"""2 API processes and 2 workers on PostgreSQL and the simulated engine, one of each SIGKILLed in the middle
of a burst of 200 starts: every deployment ends STARTED with one container, no job runs twice to completion,
the surviving worker's reconciler takes the engine over, and the event stream through the surviving API
process carries every version of every deployment once, in commit order, as the killed one did up to its
death."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from ..api.test_event_stream import stream_of
from .test_processes import HOLDS_ENGINE, SIMULATED, admin_of, app_module, launch, ok, wait_state

BURST = 200
KILL_AT = 60  # accepted starts before the kills


def test_a_burst_of_starts_survives_the_sigkill_of_an_api_process_and_a_worker(cluster):
    c = cluster(**SIMULATED, DOCKYARD_SIMULATED_START_DELAY="0.2", DOCKYARD_STREAM_QUEUE="100000")
    apis = [c.api("api-a"), c.api("api-b")]
    workers = [c.worker("worker-1"), c.worker("worker-2")]
    deadline = time.monotonic() + 10
    while not any(HOLDS_ENGINE in w.text() for w in workers):
        assert time.monotonic() < deadline, "no process follows the engine"
        time.sleep(0.1)
    holder = next(w for w in workers if HOLDS_ENGINE in w.text())
    survivor = workers[1 - workers.index(holder)]
    a = admin_of(apis[0])
    b = admin_of(apis[1], cookie=a.cookie)
    module_id = app_module(a)
    accepted: list[tuple[str, str]] = []
    lock = threading.Lock()
    half_way = threading.Event()
    b_dead = threading.Event()

    def one(i: int) -> None:
        caller = b if i % 2 and not b_dead.is_set() else a
        try:
            started = launch(caller, module_id)
        except httpx.HTTPError:  # the process it went to was killed: a client tries the other
            if caller is not b:
                raise
            started = launch(a, module_id)
        with lock:
            accepted.append(started)
            if len(accepted) >= KILL_AT:
                half_way.set()

    with stream_of(a, types="deployment") as seen_a, stream_of(b, types="deployment") as seen_b:
        began = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, i) for i in range(BURST)]
            assert half_way.wait(60)
            b_dead.set()
            apis[1].kill()
            holder.kill()
            for future in futures:
                future.result()
        assert len(accepted) == BURST
        for dep_id, _ in accepted:
            wait_state(a, dep_id, "STARTED", timeout=60)
        took = time.monotonic() - began
        # the engine: one container per deployment, whichever worker (or both) ran its start
        rows = sqlite3.connect(str(c.data_dir / "simulated-engine.db")).execute(
            "SELECT deployment, count(*) FROM tasks GROUP BY deployment").fetchall()
        per_deployment = dict(rows)
        assert all(per_deployment.get(dep_id) == 1 for dep_id, _ in accepted), per_deployment
        # the jobs: each start job ended SUCCESS, and no worker logged a second outcome of one (a worker logs an
        # outcome after its commit: the SIGKILLed one may have committed one and died before its line)
        logs = holder.text() + survivor.text()
        unlogged = []
        for dep_id, job_id in accepted:
            job = ok(a.get(job_id))
            assert job["state"] == "SUCCESS", job
            outcomes = re.findall(rf"job {re.escape(job_id)} \(start_deployment of [^)]*\) (SUCCESS|FAILED)", logs)
            assert len(outcomes) <= 1, (job_id, outcomes)
            if not outcomes:
                unlogged.append(job_id)
        retried = [job_id for _, job_id in accepted if ok(a.get(job_id)).get("attempts", 1) > 1]
        # the survivor follows the engine now: a container that exits is noticed
        assert HOLDS_ENGINE in survivor.text()
        exiting, _ = launch(a, app_module(a, SIMULATED_EXIT_AFTER="1", SIMULATED_EXIT_CODE="5"))
        wait_state(a, exiting, "ERROR", timeout=20)
        # the event stream through the surviving process: every version of every deployment once, in commit
        # order, whichever process made it: the create, the accepted start, the outcome
        time.sleep(1.0)
        for dep_id, _ in accepted:
            assert versions(seen_a, dep_id) == [("add", "CREATED"), ("edit", "STARTING"), ("edit", "STARTED")], \
                (dep_id, [(e.event, e.data[:300]) for e in seen_a.of(dep_id)])
        # the killed process's stream, up to its death, is the start of the survivor's: the same changes in the
        # same (commit) order, each as the same document
        assert seen_b.events, "the killed process's stream carried nothing before it died"
        carried = [(e.event, e.data) for e in seen_b.events]
        assert carried == [(e.event, e.data) for e in seen_a.events[:len(carried)]]
    print(f"{BURST} starts with 2 API processes + 2 workers, one of each SIGKILLed after {KILL_AT}: all STARTED "
          f"in {took:.1f} s; {len(retried)} jobs claimed again after their worker died, {len(unlogged)} outcomes "
          f"committed by the killed worker before their log line")


def versions(seen, dep_id: str) -> list[tuple[str, str]]:
    """Each change a stream carried of one deployment, with the state it made."""
    return [(e.event, e.json.get("state")) for e in seen.of(dep_id)]
