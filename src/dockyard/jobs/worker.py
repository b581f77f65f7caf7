"""Workers: claim a job with a lease, keep the lease while working, record how it ended.

A pool runs a few worker threads in ``dockyard serve`` (or alone in ``dockyard worker``). New jobs wake
them at once: in-process through :meth:`WorkerPool.wake`, across processes through PostgreSQL's
``LISTEN/NOTIFY``; a slow poll covers SQLite shared by several processes. A job whose worker died is
claimed again when its lease runs out; actions are written so that running again finishes or undoes
what the first attempt left. An action's expected failure (:class:`ActionFailed`) ends its job FAILED
with the action's message; any other exception too, with a message that names a reference under which
the server log keeps the traceback: users see no Python internals.
"""

from __future__ import annotations

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


class WorkerPool:
    def __init__(self, services: Services, *, threads: int = 2, lease: float = 30.0, poll: float = 1.0) -> None:
        self.services = services
        self.threads = threads
        self.lease = lease
        self.poll = poll
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._pending_wake = False
        self._running: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.services.wakers.append(self.wake)
        for i in range(self.threads):
            self._spawn(self._work, f"dockyard-worker-{i}")
        self._spawn(self._renew_leases, "dockyard-lease")
        if self.services.store.dialect == "postgresql":
            self._spawn(self._listen, "dockyard-listen")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; running jobs finish (their leases would let another worker take them anyway)."""
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        if self.wake in self.services.wakers:
            self.services.wakers.remove(self.wake)

    def wake(self) -> None:
        with self._wake:
            self._pending_wake = True
            self._wake.notify_all()

    # -- the loop ----------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim()
            except Exception:  # the database went away for a moment: back off, keep the worker alive
                log.exception("claiming a job failed")
                claimed = None
                self._stop.wait(self.poll)
            if claimed is None:
                with self._wake:
                    if not self._pending_wake:
                        self._wake.wait(self.poll)
                    self._pending_wake = False
                continue
            self._run(*claimed)

    def _claim(self) -> tuple[dict[str, Any], int] | None:
        with self.services.store.write() as tx:
            taken = queue.claim(tx, self.id, time.time(), self.lease)
            if taken is None:
                return None
            job_id, attempt = taken
            job = tx.get(job_id, for_update=True)
            if job is None or job["state"] in jobs.FINAL_STATES:
                queue.finish(tx, job_id)
                return None
            # the job says RUNNING in the commit that takes it: one commit per claim
            updated = jobs.update_in(self.services, tx, job, state=jobs.RUNNING, attempts=attempt,
                                     phases={"claimed": now_ts()})
        log.info("job %s (%s of %s) claimed by %s, attempt %d", job_id, updated["action"], _target(updated),
                 self.id, attempt, extra={**_ids(updated), "state": jobs.RUNNING, "worker": self.id,
                                          "attempt": attempt})
        return updated, attempt

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
        interval = self.lease / 3
        while not self._stop.wait(interval):
            with self._lock:
                running = list(self._running.items())
            for job_id, ctx in running:
                try:
                    with self.services.store.write() as tx:
                        kept = queue.renew(tx, job_id, self.id, time.time() + self.lease)
                except Exception:
                    log.exception("renewing the lease of %s failed", job_id)
                    continue
                if not kept:
                    ctx.lost.set()

    def _listen(self) -> None:
        """PostgreSQL: a NOTIFY from any process (a job queued) wakes this pool at once."""
        import psycopg

        url = self.services.store.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
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
