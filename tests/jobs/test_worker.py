"""The job engine on SQLite and PostgreSQL: claims, wake-ups, leases, crashes, cancellation."""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest

from dockyard.core.authn import INTERNAL
from dockyard.drivers.base import DriverError
from dockyard.jobs.actions import ACTIONS, ActionFailed, action
from dockyard.jobs.worker import WorkerPool
from dockyard.resources import job as jobs
from dockyard.resources.base import Ctx
from dockyard.store import queue

RUNS: dict[str, int] = {}
RUNS_LOCK = threading.Lock()


@action("test_count")
def _count(ctx):
    with RUNS_LOCK:
        RUNS[ctx.job["id"]] = RUNS.get(ctx.job["id"], 0) + 1
    time.sleep(float(ctx.payload.get("sleep", 0)))
    return f"ran {ctx.job['id']}"


ACTIVE = {"now": 0, "most": 0}


@action("test_concurrent")
def _concurrent(ctx):
    with RUNS_LOCK:
        ACTIVE["now"] += 1
        ACTIVE["most"] = max(ACTIVE["most"], ACTIVE["now"])
    time.sleep(float(ctx.payload.get("sleep", 0)))
    with RUNS_LOCK:
        ACTIVE["now"] -= 1
    return "done"


@action("test_fail")
def _fail(ctx):
    raise ActionFailed("the image 'nope' does not exist")


@action("test_engine_away")
def _engine_away(ctx):
    raise ActionFailed.of(DriverError("the engine does not answer", reason="engine-unavailable", recoverable=True))


@action("test_crash")
def _crash(ctx):
    raise ZeroDivisionError("boom")


@action("test_slow_progress")
def _slow(ctx):
    ctx.progress(10)
    ctx.stamp("pulled")
    for _ in range(50):
        if ctx.lost.is_set():
            return "lost"
        time.sleep(0.05)
    return "slow done"


def queue_job(services, action_name, payload=None, priority=50):
    ctx = Ctx(services, INTERNAL)
    with services.store.write() as tx:
        doc = jobs.create(ctx, tx, action_name, "event/target", acl=jobs.job_acl("user/x"), payload=payload,
                          priority=priority)
    services.wake_workers()
    return doc["id"]


def read(services, job_id):
    with services.store.read() as tx:
        return tx.get(job_id)


def wait_final(services, job_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read(services, job_id)
        if doc["state"] in jobs.FINAL_STATES:
            return doc
        time.sleep(0.01)
    raise AssertionError(f"{job_id} still {read(services, job_id)['state']}")


def test_a_queued_job_runs_at_once_and_succeeds(services):
    pool = WorkerPool(services, threads=1, poll=30.0)  # a long poll: only the wake-up can be this fast
    pool.start()
    try:
        t0 = time.monotonic()
        job_id = queue_job(services, "test_count")
        doc = wait_final(services, job_id)
        assert time.monotonic() - t0 < 1.0
    finally:
        pool.stop()
    assert doc["state"] == "SUCCESS" and doc["progress"] == 100 and doc["return-code"] == 0
    assert doc["status-message"] == f"ran {job_id}"
    assert set(doc["phases"]) >= {"queued", "claimed"} and "started" in doc and doc["duration"] >= 0
    with services.store.read() as tx:
        assert queue.pending(tx) == 0


def test_failures_and_crashes_are_recorded(services, caplog):
    caplog.set_level(logging.INFO, logger="dockyard.jobs")
    pool = WorkerPool(services, threads=1)
    pool.start()
    try:
        failed = wait_final(services, queue_job(services, "test_fail"))
        crashed = wait_final(services, queue_job(services, "test_crash"))
        unknown = wait_final(services, queue_job(services, "no_such_action"))
        away = wait_final(services, queue_job(services, "test_engine_away"))
    finally:
        pool.stop()
    # a driver's failure keeps its reason and the engine's word on retrying, for the user and the log
    assert away["state"] == "FAILED" and away["status-message"] == "the engine does not answer"
    ended = [r for r in caplog.records if getattr(r, "job", None) == away["id"] and getattr(r, "state", "") == "FAILED"]
    assert [(r.reason, r.recoverable) for r in ended] == [("engine-unavailable", True)]
    assert failed["state"] == "FAILED" and failed["status-message"] == "the image 'nope' does not exist"
    assert crashed["state"] == "FAILED" and crashed["return-code"] == 2
    # the user reads what happened and where to look, not Python's internals; the log has the traceback
    found = re.fullmatch(r"internal error in test_crash; reference (\w{8}) in the server log",
                         crashed["status-message"])
    assert found, crashed["status-message"]
    logged = [r for r in caplog.records if r.exc_info and f"reference {found.group(1)}" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info[0] is ZeroDivisionError
    assert unknown["state"] == "FAILED" and "Not implemented action" in unknown["status-message"]


def test_two_pools_run_every_job_exactly_once(services):
    ids = [queue_job(services, "test_count", {"sleep": 0.01}) for _ in range(40)]
    pools = [WorkerPool(services, threads=2) for _ in range(2)]
    for pool in pools:
        pool.start()
    try:
        for job_id in ids:
            assert wait_final(services, job_id, timeout=30)["state"] == "SUCCESS"
    finally:
        for pool in pools:
            pool.stop()
    assert all(RUNS[job_id] == 1 for job_id in ids)


def test_priority_orders_claims(services):
    low = queue_job(services, "test_count", priority=900)
    high = queue_job(services, "test_count", priority=10)
    with services.store.write() as tx:
        assert queue.claim(tx, "w", time.time(), 30)[0] == high
        assert queue.claim(tx, "w", time.time(), 30)[0] == low


def test_a_job_whose_worker_died_is_taken_again_after_its_lease(services):
    job_id = queue_job(services, "test_count")
    with services.store.write() as tx:  # a worker that claims and then dies: its lease is never renewed
        assert queue.claim(tx, "dead-worker", time.time(), 1.0)[0] == job_id
    claimed = time.monotonic()
    pool = WorkerPool(services, threads=1, poll=0.1)
    pool.start()
    try:
        time.sleep(0.1)
        state = read(services, job_id)["state"]
        assert time.monotonic() - claimed < 1.0, "the host was too slow to look inside the lease"
        assert state == "QUEUED"  # still leased to the dead worker
        doc = wait_final(services, job_id, timeout=5)
    finally:
        pool.stop()
    assert doc["state"] == "SUCCESS" and doc["attempts"] == 2


def test_a_worker_that_loses_its_lease_stops_writing(services):
    pool = WorkerPool(services, threads=1, lease=0.6)
    pool.start()
    try:
        job_id = queue_job(services, "test_slow_progress")
        deadline = time.monotonic() + 5
        while read(services, job_id)["state"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.01)
        with services.store.write() as tx:  # someone else took the job over
            tx.conn.exec_driver_sql("UPDATE job_queue SET worker = 'other'")
        time.sleep(0.6)
        doc = read(services, job_id)
    finally:
        pool.stop()
    assert doc["state"] == "RUNNING"  # the old worker did not write an outcome


GATE = threading.Event()


@action("test_gated")
def _gated(ctx):
    with RUNS_LOCK:
        RUNS[ctx.job["id"]] = RUNS.get(ctx.job["id"], 0) + 1
    GATE.wait(10)
    return f"attempt {ctx.attempt}, still the job's: {ctx.holds()}"


def gated_job_running(services, **pool_options):
    """A started pool and the id of a test_gated job it runs now, held at the gate until the test sets it."""
    GATE.clear()
    pool = WorkerPool(services, **pool_options)
    pool.start()
    job_id = queue_job(services, "test_gated")
    deadline = time.monotonic() + 5
    while RUNS.get(job_id) != 1:
        if time.monotonic() >= deadline:
            pool.stop(timeout=0.1)
            raise AssertionError(f"the gated job did not start: {read(services, job_id)['state']}")
        time.sleep(0.01)
    return pool, job_id


def test_a_pool_does_not_claim_again_a_job_it_still_runs(services):
    """A stall longer than the lease (a loaded host) lets a job's lease pass while its pool still runs it. The
    pool's own next claim must not take it again: two attempts ran side by side in one pool, the renewal
    followed only the newer, and the older one, finding its deployment STARTED by the newer, removed the
    newer's container (CI's burst test saw that deployment end in ERROR "gone")."""
    pool, job_id = gated_job_running(services, threads=1, max_threads=4, lease=3.0, poll=0.05)
    try:
        with services.store.write() as tx:  # the lease passes while the job runs, as in a long stall
            tx.conn.exec_driver_sql("UPDATE job_queue SET lease_until = 0")
        for _ in range(5):  # the claimer looks at the queue each time it is woken (and each poll)
            pool.wake()
            time.sleep(0.1)
        assert RUNS[job_id] == 1
        GATE.set()
        doc = wait_final(services, job_id)
    finally:
        GATE.set()
        pool.stop()
    assert (doc["state"], doc["attempts"], doc["status-message"]) == ("SUCCESS", 1, "attempt 1, still the job's: True")


def test_an_attempt_whose_lease_another_took_knows_it_when_it_asks(services, caplog):
    """The pool hears of a lost lease only at its next renewal (every third of a lease); an attempt about to
    undo what it did asks the queue itself (ctx.holds), so as not to undo what the newer attempt did."""
    pool, job_id = gated_job_running(services, threads=1, lease=30.0, poll=0.05)
    try:
        with services.store.write() as tx:  # another worker's claim of it: attempt 2
            tx.conn.exec_driver_sql("UPDATE job_queue SET worker = 'other', attempts = attempts + 1")
        lost = f"job {job_id} lost its lease: another worker runs it"
        with caplog.at_level(logging.INFO, logger="dockyard.jobs"):
            GATE.set()  # the attempt ends; its outcome is the other worker's to store
            deadline = time.monotonic() + 10
            while lost not in caplog.messages:
                assert time.monotonic() < deadline, caplog.messages
                time.sleep(0.01)
        doc = read(services, job_id)
    finally:
        GATE.set()
        pool.stop()
    assert doc["state"] == "RUNNING"  # not this attempt's SUCCESS: the renewal (every 10 s) had not told it


def test_cancel_ends_a_queued_job_and_edits_are_refused_after(services):
    job_id = queue_job(services, "test_count")
    ctx = Ctx(services, INTERNAL)
    job_type = services.types["job"]
    from dockyard.resources import crud
    from dockyard.core.errors import Conflict
    reply = crud.action(ctx, job_type, job_id, "cancel", None, "POST", f"/api/{job_id}/cancel")
    assert reply.status == 200
    doc = read(services, job_id)
    assert doc["state"] == "CANCELED" and doc["progress"] == 100
    with pytest.raises(Conflict) as err:
        crud.edit(ctx, job_type, job_id, {"progress": 50})
    assert err.value.message == "edit is not allowed in final state"
    with services.store.read() as tx:
        assert queue.pending(tx) == 0
    assert "test_count" in ACTIONS


def test_runners_grow_while_jobs_wait_and_end_when_idle(services):
    """A job that waits (on its engine) holds no core: 12 jobs of 1 s each run side by side on a pool that keeps
    one runner, and the extra runners end once idle."""
    ACTIVE.update(now=0, most=0)
    ids = [queue_job(services, "test_concurrent", {"sleep": 1.0}) for _ in range(12)]
    pool = WorkerPool(services, threads=1, max_threads=16, idle=0.5)
    t0 = time.monotonic()
    pool.start()
    try:
        for job_id in ids:
            assert wait_final(services, job_id, timeout=30)["state"] == "SUCCESS"
        took = time.monotonic() - t0
        assert ACTIVE["most"] == 12 and took < 6, (ACTIVE, took)  # one at a time would take 12 s
        deadline = time.monotonic() + 5
        while _runners() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _runners() == 1
        # the kept runner still takes a new job at once
        assert wait_final(services, queue_job(services, "test_count"))["state"] == "SUCCESS"
    finally:
        pool.stop()


def test_at_most_max_threads_jobs_run_at_once(services):
    ACTIVE.update(now=0, most=0)
    ids = [queue_job(services, "test_concurrent", {"sleep": 0.3}) for _ in range(9)]
    pool = WorkerPool(services, threads=1, max_threads=3)
    pool.start()
    try:
        for job_id in ids:
            assert wait_final(services, job_id, timeout=30)["state"] == "SUCCESS"
    finally:
        pool.stop()
    assert ACTIVE["most"] == 3


def test_one_commit_claims_several_jobs(services):
    """Jobs waiting when the pool starts are claimed together: one transaction stores all of them RUNNING."""
    ids = [queue_job(services, "test_count") for _ in range(10)]
    transactions = []
    services.store.observers.append(transactions.append)
    pool = WorkerPool(services, threads=2, max_threads=16)
    pool.start()
    try:
        for job_id in ids:
            assert wait_final(services, job_id)["state"] == "SUCCESS"
    finally:
        pool.stop()
        services.store.observers.remove(transactions.append)
    claims = [[rid for kind, rid, doc in tx if doc.get("state") == "RUNNING"] for tx in transactions]
    claims = [c for c in claims if c]
    assert sorted(sum(claims, [])) == sorted(ids) and len(claims) == 1, claims
    assert all(RUNS[job_id] == 1 for job_id in ids)


def _runners() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("dockyard-worker-") and t.is_alive())
