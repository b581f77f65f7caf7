"""Workers: claim jobs with a lease, keep the lease while working, record how each ended.

A pool runs in ``dockyard serve`` (or alone in ``dockyard worker``): one claimer thread takes jobs from the
queue, several at a time in one transaction (one commit for a batch of claims), as many as the pool has room
for, and hands them to runner threads. The runners scale with the queue: a job mostly waits on its engine
(Docker answering a create, a start), which needs no core of its own, so while jobs wait the pool grows from
``threads`` runners up to ``max_threads``, and a runner idle for ``idle`` seconds beyond the first ``threads``
ends. A claim takes only jobs that a runner can start at once, so no lease runs while a job waits in the pool.
The claimer claims again at once while the queue gives it jobs; once it gives none, it waits for a
wake-up: in-process through :meth:`WorkerPool.wake`, across processes through PostgreSQL's ``LISTEN/NOTIFY``;
a slow poll covers SQLite shared by several processes. A job whose worker died is claimed again when its lease
runs out; actions are written so that running again finishes or undoes what the first attempt left. An
action's expected failure (:class:`ActionFailed`) ends its job FAILED with the action's message; any other
exception too, with a message that names a reference under which the server log keeps the traceback: users see
no Python internals.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from ..core.time import now_ts
from ..resources import job as jobs
from ..resources.base import Services
from ..store import queue
from .actions import ACTIONS, ActionFailed, JobContext
from .actions import compose_validate, credential_check, deployment, logs  # noqa: F401  (they register their actions)

log = logging.getLogger("dockyard.jobs")

Claimed = tuple[dict[str, Any], int]  # a job as stored RUNNING by its claim, and its attempt number


class WorkerPool:
    def __init__(self, services: Services, *, threads: int = 2, max_threads: int | None = None, lease: float = 30.0,
                 poll: float = 1.0, batch: int = 32, idle: float = 30.0) -> None:
        """``threads`` runners are kept; up to ``max_threads`` (default: ``threads``) run while jobs wait.
        ``batch``: the most jobs one claim takes. ``idle``: seconds after which an extra runner ends."""
        self.services = services
        self.threads = threads
        self.max_threads = max(threads, max_threads or threads)
        self.lease = lease
        self.poll = poll
        self.batch = batch
        self.idle = idle
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._pending_wake = False
        self._running: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # the runners: jobs claimed and not yet taken, runners alive and busy (alive - busy >= len(ready));
        # a runner ending a job tells the claimer (room), a claim tells as many runners as it took jobs (work)
        mutex = threading.Lock()
        self._room = threading.Condition(mutex)
        self._work = threading.Condition(mutex)
        self._ready: collections.deque[Claimed] = collections.deque()
        self._claimed: set[str] = set()  # the ids of the jobs in _ready and of those runners run
        self._alive = 0
        self._busy = 0
        self._named = 0

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.services.wakers.append(self.wake)
        with self._room:
            names = [self._add_runner() for _ in range(self.threads)]
        for name in names:
            self._spawn(self._runner, name)
        self._spawn(self._claim_loop, "dockyard-claim")
        self._spawn(self._renew_leases, "dockyard-lease")
        if self.services.store.dialect == "postgresql":
            self._spawn(self._listen, "dockyard-listen")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; running jobs finish (their leases would let another worker take them anyway)."""
        self._stop.set()
        self.wake()
        with self._room:
            self._room.notify_all()
            self._work.notify_all()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(deadline - time.monotonic(), 0.1))
        if self.wake in self.services.wakers:
            self.services.wakers.remove(self.wake)

    def wake(self) -> None:
        with self._wake:
            self._pending_wake = True
            self._wake.notify_all()

    # -- claiming ----------------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        while not self._stop.is_set():
            room = self._wait_for_room()
            if room == 0:
                continue
            wanted = min(room, self.batch)
            try:
                claimed = self._claim(wanted)
            except Exception:  # the database went away for a moment: back off, keep the pool alive
                log.exception("claiming jobs failed")
                self._stop.wait(self.poll)
                continue
            self._hand_out(claimed)
            if claimed:
                continue  # the queue may hold more (another claimer may have held some a moment): claim again
            with self._wake:  # the queue is empty: wait for a job
                if not self._pending_wake:
                    self._wake.wait(self.poll)
                self._pending_wake = False

    def _wait_for_room(self) -> int:
        """How many more jobs the runners can start now; waits (a while) for one to finish when none can."""
        with self._room:
            room = self.max_threads - self._busy - len(self._ready)
            if room <= 0 and not self._stop.is_set():
                self._room.wait(self.poll)
                room = self.max_threads - self._busy - len(self._ready)
            return max(room, 0) if not self._stop.is_set() else 0

    def _claim(self, n: int) -> list[Claimed]:
        """Up to ``n`` jobs in one transaction: each stored RUNNING in the commit that takes it."""
        claimed: list[Claimed] = []
        with self.services.store.write() as tx:
            taken = queue.claim_many(tx, self.id, time.time(), self.lease, n, running=self._held())
            found = queue.lock_jobs(tx, [job_id for job_id, _ in taken])  # one read for the batch, then writes
            for job_id, attempt in taken:
                job = found.get(job_id)
                if job is None or job["state"] in jobs.FINAL_STATES:
                    queue.finish(tx, job_id)
                    continue
                updated = jobs.update_in(self.services, tx, job, state=jobs.RUNNING, attempts=attempt,
                                         phases={"claimed": now_ts()})
                claimed.append((updated, attempt))
        for job, attempt in claimed:
            log.info("job %s (%s of %s) claimed by %s, attempt %d", job["id"], job["action"], _target(job),
                     self.id, attempt, extra={**_ids(job), "state": jobs.RUNNING, "worker": self.id,
                                              "attempt": attempt})
        return claimed

    def _held(self) -> set[str]:
        """The jobs this pool has claimed and not ended: waiting for a runner, or running."""
        with self._room:
            return set(self._claimed)

    # -- running -----------------------------------------------------------------------------------

    def _hand_out(self, claimed: list[Claimed]) -> None:
        if not claimed:
            return
        names = []
        with self._room:
            self._ready.extend(claimed)
            self._claimed.update(job["id"] for job, _ in claimed)
            while self._alive - self._busy < len(self._ready):  # a runner for each waiting job
                names.append(self._add_runner())
            self._work.notify(len(claimed))
        for name in names:  # started outside the lock, which runners need: a start waits for the new thread
            try:
                self._spawn(self._runner, name)
            except RuntimeError as exc:  # no thread can be started now: the runners there are take the jobs
                log.warning("starting job runner %s failed: %s", name, exc)
                with self._room:
                    self._alive -= 1

    def _add_runner(self) -> str:
        """Count one more runner (called holding ``_room``); its thread's name, for the caller to start it."""
        self._alive += 1
        self._named += 1
        return f"dockyard-worker-{self._named - 1}"

    def _runner(self) -> None:
        while True:
            with self._room:
                idle_until = time.monotonic() + self.idle
                while not self._ready:
                    left = idle_until - time.monotonic()
                    if self._stop.is_set() or (left <= 0 and self._alive > self.threads):
                        self._alive -= 1  # stopping, or idle for long beyond the kept runners: end
                        return
                    self._work.wait(left if left > 0 else self.idle)
                job, attempt = self._ready.popleft()
                self._busy += 1
            try:
                self._run(job, attempt)
            finally:
                with self._room:
                    self._busy -= 1
                    self._claimed.discard(job["id"])
                    self._room.notify()  # the claimer may wait for room

    def _run(self, job: dict[str, Any], attempt: int) -> None:
        ctx = JobContext(self.services, job, attempt)
        with self._lock:
            self._running[job["id"]] = ctx
        try:
            action = ACTIONS.get(job["action"])
            if action is None:
                self._finish(ctx, jobs.FAILED, 1, f"Not implemented action: {job['action']}")
                return
            message = action(ctx)
            self._finish(ctx, jobs.SUCCESS, 0, message or "done")
        except ActionFailed as exc:
            # not retried here, even when the engine says it may help (``recoverable``): the failed job has
            # already put its deployment in ERROR, whose user starts again; the log keeps the engine's word
            self._finish(ctx, jobs.FAILED, 1, exc.message,
                         {"reason": exc.reason, "recoverable": exc.recoverable})
        except Exception:  # an unexpected crash: its traceback goes to the log, under a reference the user gets
            reference = uuid.uuid4().hex[:8]
            log.exception("job %s (%s) crashed; reference %s", job["id"], job["action"], reference,
                          extra={**_ids(job), "reference": reference})
            self._finish(ctx, jobs.FAILED, 2,
                         f"internal error in {job['action']}; reference {reference} in the server log")
        finally:
            with self._lock:
                self._running.pop(job["id"], None)

    def _finish(self, ctx: JobContext, state: str, code: int, message: str,
                failure: dict[str, Any] | None = None) -> None:
        """Store and log how the job ended, unless another worker runs it now: then the outcome is theirs."""
        job = ctx.job
        if ctx.ended is not None:  # the action ended it with its outcome, in one commit
            stored = ctx.ended
            state, message = stored["state"], stored.get("status-message", message)
        elif ctx.lost.is_set():
            log.info("job %s lost its lease: another worker runs it", job["id"], extra=_ids(job))
            return
        else:
            stored = jobs.update(self.services, job["id"], state=state, return_code=code, status_message=message)
        if stored is not None:
            log.info("job %s (%s of %s) %s after %s s: %s", job["id"], job["action"], _target(job), state,
                     stored.get("duration", 0), message[:300], extra={**_ids(job), "state": state, **(failure or {})})

    def _renew_leases(self) -> None:
        """Every third of a lease, the leases of all running jobs in one statement; a job no longer this pool's
        (taken again after its lease passed) is told so, and stops writing."""
        interval = self.lease / 3
        while not self._stop.wait(interval):
            with self._lock:
                running = dict(self._running)
            if not running:
                continue
            try:
                with self.services.store.write() as tx:
                    kept = queue.renew_many(tx, list(running), self.id, time.time() + self.lease)
            except Exception:
                log.exception("renewing the leases of %d jobs failed", len(running))
                continue
            for job_id, ctx in running.items():
                if job_id not in kept:
                    ctx.lost.set()

    def _listen(self) -> None:
        """PostgreSQL: a NOTIFY from any process (a job queued) wakes this pool at once."""
        import psycopg

        dsn = self.services.store.dsn
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake()
            except Exception:
                log.exception("listening for jobs failed; retrying")
                self._stop.wait(self.poll)


def _target(job: dict[str, Any]) -> str:
    return str((job.get("target-resource") or {}).get("href", ""))


def _ids(job: dict[str, Any]) -> dict[str, Any]:
    """The fields that name a job in the log (the JSON format writes them as they are)."""
    return {"job": job["id"], "action": job["action"], "target": _target(job)}
