"""Jobs: the asynchronous work behind actions, visible in the API as in Nuvla.

A job is an ordinary document; its place in the queue (priority, lease) is a row of the store's job
queue, written in the same transaction. Moving to a final state (cancelling included) sets ``progress``
100 and ``duration`` and tells the type of the job's target, in the same transaction
(:meth:`~dockyard.resources.base.ResourceType.job_ended`: a failed or cancelled deployment start, stop or
update leaves the deployment in ERROR, as Nuvla's job engine does).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..core import acl as acls
from ..core.authn import ADMIN, INTERNAL, USER
from ..core.errors import Conflict, NotFound
from ..core.time import now, now_ts, parse_ts
from ..store import queue
from ..store.db import Tx
from . import crud
from .attributes import COMMON, Attr, any_map, href, integer, list_of, one_of, string, text, timestamp
from .base import Action, Ctx, ResourceType, Reply, Services

log = logging.getLogger("dockyard.jobs")

QUEUED, RUNNING, SUCCESS, FAILED, CANCELED = "QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELED"
STATES = (QUEUED, RUNNING, SUCCESS, FAILED, CANCELED)
FINAL_STATES = frozenset({SUCCESS, FAILED, CANCELED})
ACTIVE_STATES = frozenset({QUEUED, RUNNING})
MAX_STATUS_MESSAGE = 100_000

SCHEMA = COMMON.extend(
    Attr("state", one_of(*STATES), required=True),
    Attr("action", string(), required=True, immutable=True),
    Attr("progress", integer(0, 100), required=True),
    Attr("execution-mode", one_of("push", "pull", "mixed"), required=True),
    Attr("version", integer(0), required=True),
    Attr("target-resource", any_map, immutable=True),
    Attr("affected-resources", list_of(any_map)),
    Attr("return-code", integer(0)),
    Attr("status-message", text(MAX_STATUS_MESSAGE), indexed=False),
    Attr("time-of-status-change", timestamp),
    Attr("started", timestamp),
    Attr("expiry", timestamp),
    Attr("duration", integer(0)),
    Attr("priority", integer(0, 999), immutable=True),
    Attr("parent-job", href("job")),
    Attr("nested-jobs", list_of(href("job"))),
    Attr("output", text(), indexed=False),
    Attr("payload", text(), indexed=False),
    # where the time went: phase name → timestamp (queued, claimed, pulled, created, started, ...)
    Attr("phases", any_map),
    Attr("attempts", integer(0)),
)


class Job(ResourceType):
    name = "job"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [ADMIN], "bulk-delete": [ADMIN]}
    log_events = False

    def __init__(self) -> None:
        self.actions = (Action("cancel", cancel, available=lambda doc: doc.get("state") in ACTIVE_STATES),)
        super().__init__()

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old["state"] in FINAL_STATES:
            raise Conflict("edit is not allowed in final state", old["id"])
        settle(new, old)

    def can_delete(self, doc: dict[str, Any]) -> bool:
        return doc.get("state") in FINAL_STATES


def settle(new: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Derived attributes of a job's state change (started, progress, duration, message length)."""
    ts = now_ts()
    if old is None or new.get("state") != old.get("state") or new.get("status-message") != old.get("status-message"):
        new["time-of-status-change"] = ts
    if new["state"] == RUNNING and "started" not in new:
        new["started"] = ts
    if new["state"] in FINAL_STATES:
        new["progress"] = 100
        start = new.get("started") or new["created"]
        new["duration"] = max(int((now() - parse_ts(start)).total_seconds()), 0)
    if isinstance(new.get("status-message"), str) and len(new["status-message"]) > MAX_STATUS_MESSAGE:
        new["status-message"] = new["status-message"][:MAX_STATUS_MESSAGE]


def create(ctx: Ctx, tx: Tx, action: str, target: str, *, acl: dict[str, list[str]],
           payload: dict[str, Any] | None = None, priority: int = 50) -> dict[str, Any]:
    """Store a QUEUED job and its queue row; workers are woken once the transaction commits."""
    ts = now_ts()
    doc: dict[str, Any] = {
        "state": QUEUED, "action": action, "progress": 0, "execution-mode": "push", "version": 2,
        "target-resource": {"href": target}, "affected-resources": [{"href": target}],
        "priority": priority, "acl": acl, "phases": {"queued": ts}, "attempts": 0,
    }
    if payload is not None:
        doc["payload"] = json.dumps(payload)
    doc = crud.insert(ctx, tx, ctx.services.types["job"], doc)
    queue.enqueue(tx, doc["id"], priority, doc["created"])
    ctx.scratch.setdefault("new-jobs", []).append(doc["id"])
    return doc


def job_acl(owner: str) -> dict[str, list[str]]:
    """As Nuvla's deployment jobs: admins own them; the user who asked can read and cancel them."""
    return {"owners": [ADMIN], "view-data": [owner], "manage": [owner]}


def cancel(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    with ctx.write() as tx:
        job = tx.get(doc["id"], for_update=True)
        if job is None:
            raise NotFound.for_resource(doc["id"])
        if job["state"] not in ACTIVE_STATES:
            raise Conflict(f"operation 'cancel' not allowed on {job['id']}", job["id"])
        old = dict(job)
        job["state"] = CANCELED
        job["status-message"] = f"canceled by {ctx.authn.user_id}"
        settle(job, old)
        job["updated"] = now_ts()
        tx.replace(job, exclude=SCHEMA.unindexed)
        queue.finish(tx, job["id"])
        _ended(Ctx(ctx.services, INTERNAL), tx, job)
    target = job["target-resource"]["href"]
    log.info("job %s (%s of %s) canceled by %s", job["id"], job["action"], target, ctx.authn.user_id,
             extra={"job": job["id"], "action": job["action"], "target": target, "state": CANCELED,
                    "by": ctx.authn.user_id})
    return Reply(200, {"status": 200, "message": f"{job['id']} canceled", "resource-id": job["id"]})


def update(services: Services, job_id: str, **fields: Any) -> dict[str, Any] | None:
    """A worker's write to its job (state, progress, status-message, phases...), as the internal identity.

    Returns the stored job, or None when the job is gone or already final (cancelled meanwhile).
    """
    with services.store.write() as tx:
        job = tx.get(job_id, for_update=True)
        if job is None or job["state"] in FINAL_STATES:
            return None
        return update_in(services, tx, job, **fields)


def update_in(services: Services, tx: Tx, job: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``update`` inside the caller's transaction, on a job it has read ``for_update`` and found active (the
    worker's claim stores the RUNNING state in the transaction that takes the job)."""
    old = dict(job)
    for key, value in fields.items():
        key = key.replace("_", "-")
        if key == "phases":
            job["phases"] = {**job.get("phases", {}), **value}
        else:
            job[key] = value
    settle(job, old)
    job["updated"] = now_ts()
    job["acl"] = acls.normalise(job["acl"])
    tx.replace(job, exclude=SCHEMA.unindexed)
    if job["state"] in FINAL_STATES:
        queue.finish(tx, job["id"])
        _ended(Ctx(services, INTERNAL), tx, job)
    return job


def _ended(ctx: Ctx, tx: Tx, job: dict[str, Any]) -> None:
    """Tell the type of the job's target that its job is over, in the transaction that says so."""
    target = str((job.get("target-resource") or {}).get("href", ""))
    rtype = ctx.services.types.get(target.split("/", 1)[0])
    if rtype is not None:
        rtype.job_ended(ctx, tx, job)
