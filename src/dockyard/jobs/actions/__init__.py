"""Job actions by name. Each is a function of a :class:`JobContext` returning the status message.

An expected failure raises :class:`ActionFailed` with a message for the user (the job ends FAILED);
anything else is a crash: the job ends FAILED too, its traceback goes to the server log only. Either way
the type of the job's target hears of it in the same transaction (a deployment goes to ERROR).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from ...core.time import now_ts
from ...deploy import Failed
from ...resources import job as jobs
from ...resources.base import Services
from ...store import queue
from ...store.db import Tx


# an expected failure: the deployment path's own (it keeps a driver error's reason and retryability)
ActionFailed = Failed


class JobContext:
    """What an action sees: its job, the services, and ways to report progress."""

    def __init__(self, services: Services, job: dict[str, Any], attempt: int) -> None:
        self.services = services
        self.job = job
        self.attempt = attempt
        # set when the lease was lost: another worker runs the job now, so stop writing
        self.lost = threading.Event()
        # the job as stored once an action has ended it itself, in its outcome's transaction (``end_in``)
        self.ended: dict[str, Any] | None = None

    def holds(self) -> bool:
        """Whether this attempt still holds its job, asked of the queue now: the pool learns of a lost lease only
        at its next renewal, and an attempt whose lease passed to another (a stall longer than the lease) must
        not undo what the newer attempt did. Sets ``lost`` when not. A queue that cannot be read tells nothing
        new: the answer is then what the last renewal said."""
        if not self.lost.is_set():
            try:
                with self.services.store.read() as tx:
                    current = queue.attempt_of(tx, self.job["id"])
            except Exception:
                return True
            if current != self.attempt:
                self.lost.set()
        return not self.lost.is_set()

    @property
    def target(self) -> str:
        return self.job["target-resource"]["href"]

    @property
    def payload(self) -> dict[str, Any]:
        raw = self.job.get("payload")
        return json.loads(raw) if raw else {}

    def progress(self, value: int, message: str | None = None) -> None:
        fields: dict[str, Any] = {"progress": value}
        if message:
            fields["status_message"] = message
        jobs.update(self.services, self.job["id"], **fields)

    def update_in(self, tx: Tx, **fields: Any) -> dict[str, Any] | None:
        """``progress``/``phases`` in the caller's transaction; None when the job is gone or already final."""
        job = tx.get(self.job["id"], for_update=True)
        if job is None or job["state"] in jobs.FINAL_STATES:
            return None
        return jobs.update_in(self.services, tx, job, **fields)

    def end_in(self, tx: Tx, message: str, **fields: Any) -> None:
        """End the job SUCCESS in the caller's transaction, the one that stores what it did (one commit for a
        start's outcome); the worker then stores nothing more. Nothing when the lease was lost."""
        if self.lost.is_set():
            return
        stored = self.update_in(tx, state=jobs.SUCCESS, return_code=0, status_message=message, **fields)
        if stored is not None:
            tx.after_commit.append(lambda: setattr(self, "ended", stored))

    def phases(self, **stamps: str) -> None:
        jobs.update(self.services, self.job["id"], phases=stamps)

    def stamp(self, phase: str) -> str:
        ts = now_ts()
        self.phases(**{phase: ts})
        return ts


Action = Callable[[JobContext], str]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn
    return register
