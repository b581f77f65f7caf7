"""A deployment's lifecycle: the state machine as data, the actions that move it, and what job outcomes mean.

``LIFECYCLE`` is the whole state machine: action → the states it is allowed in → the state it moves the
deployment to at once → the job action that finishes the move (a job that fails leaves the deployment in
ERROR: :func:`job_ended`). Every write of a deployment's state passes through :func:`_set` (the API's actions
here, the workers and the reconciler through :func:`set_fields`), every action takes the deployment with
:func:`_locked` ("lock, check the state, 409"), and :func:`revoke_keys` is the one place a deployment's keys
and their sessions end.

The ``deployment`` resource type (``resources.deployment``: its document and CRUD) declares this module as
its lifecycle by name, so ``resources/`` does not import ``deploy/``: its actions (:data:`ACTIONS`), delete
rule and job-outcome hook are read from here when the type is made.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core import acl as acls
from ..core import crypto
from ..core.authn import ADMIN, ANON, INTERNAL
from ..core.errors import BadRequest, Conflict, Forbidden, NotFound
from ..core.time import now_ts
from ..resources import crud
from ..resources import job as jobs
from ..resources import private_registry
from ..resources.base import Action, Ctx, ResourceType, Reply
from ..resources.deployment import (CREATED, ERROR, PENDING, STARTED, STARTING, STATES, STOPPED, STOPPING,
                                    UPDATING, resolve_module)
from ..resources.deployment_parameter import DEPLOYMENT_ROLE, of_deployment
from ..resources.module import split_version
from ..resources.session import end_sessions
from ..store.db import Tx
from . import compose, contract, data, readiness
from .mounts import check_mounts

log = logging.getLogger("dockyard.deployments")

__all__ = ["ACTIONS", "BADGES", "LIFECYCLE", "STATES", "job_ended", "revoke_keys", "set_fields"]

@dataclass(frozen=True)
class Move:
    """One step of the lifecycle: the states an action is allowed in, the state it moves the deployment to
    at once, and the job that finishes the move (which, failing, leaves the deployment in ERROR)."""

    allowed: frozenset[str]
    next: str | None = None
    job: str | None = None


# the state machine, in one place: action → allowed states → next state → job action
LIFECYCLE = {
    "start": Move(frozenset({CREATED, STOPPED}), STARTING, "start_deployment"),
    "stop": Move(frozenset({PENDING, STARTING, UPDATING, STARTED, ERROR}), STOPPING, "stop_deployment"),
    "update": Move(frozenset({STARTED, ERROR}), UPDATING, "update_deployment"),
    "create-log": Move(frozenset({STARTED, UPDATING, ERROR})),
    "delete": Move(frozenset({CREATED, STOPPED})),
}
STARTABLE = LIFECYCLE["start"].allowed
STOPPABLE = LIFECYCLE["stop"].allowed
UPDATABLE = LIFECYCLE["update"].allowed
DELETABLE = LIFECYCLE["delete"].allowed
LOGGABLE = LIFECYCLE["create-log"].allowed
# the state each job action puts its deployment in until the job is over
TRANSITIONS = {move.job: move.next for move in LIFECYCLE.values() if move.job}
# state → (label, colour) for the UI and the CLI
BADGES = {CREATED: ("created", "grey"), STARTING: ("starting", "blue"), STARTED: ("started", "green"),
          STOPPING: ("stopping", "blue"), STOPPED: ("stopped", "grey"), UPDATING: ("updating", "blue"),
          PENDING: ("pending", "blue"), ERROR: ("error", "red")}

JOB_PRIORITY = 50

def _allowed_in(action: str) -> Callable[[dict[str, Any]], bool]:
    allowed = LIFECYCLE[action].allowed
    return lambda doc: doc["state"] in allowed


def _refusal(action: str) -> Any:
    """Nuvla's answer to a state action in the wrong state (``throw-cannot-do-action-invalid-state``)."""
    return lambda doc: f"Action {action} cannot be called on {doc['id']} in state {doc['state']}!"


def delete_children(tx: Tx, deployment_id: str) -> None:
    data.revoke(tx, deployment_id)
    revoke_keys(tx, deployment_id)
    for child_type in ("deployment-parameter", "resource-log"):
        for child in tx.find_all(child_type, "parent", deployment_id):
            tx.delete(child["id"])


def revoke_keys(tx: Tx, deployment_id: str) -> None:
    """The deployment's API keys are deleted and every session opened with one ends, in ``tx``: a container
    holding the key can do nothing more once the transaction commits."""
    for key in tx.find_all("credential", "parent", deployment_id):
        end_sessions(tx, "credential", key["id"])
        tx.delete(key["id"])


# -- actions ---------------------------------------------------------------------------------------

def _locked(tx: Tx, doc: dict[str, Any], action: str | None = None) -> dict[str, Any]:
    """The deployment as stored now, locked for this transaction: a 404 when it is gone, and a 409 (Nuvla's
    words) when ``action`` is not allowed in its state — the state a concurrent request may just have changed."""
    current = tx.get(doc["id"], for_update=True)
    if current is None:
        raise NotFound.for_resource(doc["id"])
    if action is not None and current["state"] not in LIFECYCLE[action].allowed:
        raise Conflict(f"Action {action} cannot be called on {doc['id']} in state {current['state']}!", doc["id"])
    return current


def _queue(ctx: Ctx, tx: Tx, current: dict[str, Any], action: str, **job: Any) -> dict[str, Any]:
    """The job that finishes ``action`` (the lifecycle's), for the caller to follow."""
    return jobs.create(ctx, tx, LIFECYCLE[action].job, current["id"], acl=jobs.job_acl(ctx.authn.active_claim),
                       priority=JOB_PRIORITY, **job)


def _set(ctx: Ctx, tx: Tx, current: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Every write of a deployment's state passes here (the API's actions, jobs, the reconciler): a move
    to another state is logged once its transaction has committed."""
    new = dict(current)
    for key, value in fields.items():
        new[key.replace("_", "-")] = value
    readiness.follow_state(current, new, {k.replace("_", "-") for k in fields},
                                      ctx.services.settings["readiness-timeout"])
    stored = crud.update(Ctx(ctx.services, INTERNAL), tx, ctx.services.types["deployment"], current, new)
    if stored["state"] != current["state"]:
        tx.after_commit.append(lambda: _log_move(current, stored, ctx.authn.user_id or ANON))
    return stored


def _log_move(old: dict[str, Any], new: dict[str, Any], who: str) -> None:
    why = new.get("status-message") if new["state"] == ERROR else None
    log.info("deployment %s: %s -> %s by %s%s", new["id"], old["state"], new["state"], who,
             f" ({why[:300]})" if why else "",
             extra={"deployment": new["id"], "from": old["state"], "to": new["state"], "by": who})


def _accepted(action: str, dep_id: str, job: dict[str, Any]) -> Reply:
    return Reply(202, {"status": 202, "message": f"{action} {dep_id} with async {job['id']}",
                       "resource-id": dep_id, "location": job["id"]}, {"Location": job["id"]})


def new_api_key(ctx: Ctx, tx: Tx, deployment: dict[str, Any]) -> dict[str, str]:
    """The deployment's own key: it acts as the deployment, or as the starting user when the app asks."""
    content = deployment["module"].get("content", {})
    if content.get("requires-user-rights"):
        identity = ctx.authn.active_claim or ctx.authn.user_id
        roles = sorted(c for c in ctx.authn.claims if not c.startswith("session/"))
    else:
        identity = deployment["id"]
        roles = [deployment["id"], DEPLOYMENT_ROLE, ANON]
    secret = crypto.new_api_secret()
    cred = crud.insert(Ctx(ctx.services, INTERNAL), tx, ctx.services.types["credential"], {
        "subtype": "api-key", "method": "generate-api-key", "parent": deployment["id"],
        "name": f"API credential for {deployment['id']}",
        "description": f"generated API credential for {deployment['id']}",
        "digest": crypto.keyed_digest(ctx.services.keys.digest, crypto.clean_api_secret(secret)),
        "claims": {"identity": identity, "roles": roles},
        "acl": {"owners": [ADMIN], "view-meta": [deployment["owner"]], "edit-acl": [deployment["id"]]},
    })
    return {"api-key": cred["id"], "api-secret": ctx.services.keys.cipher.encrypt(secret)}


def _check_application(doc: dict[str, Any]) -> list[str] | None:
    """An application's file must be one an engine can run (a 400 naming what is wrong, before any job);
    its services' images, for the registry pre-flight. None for a component."""
    if doc["module"].get("subtype") != "application":
        return None
    text = doc["module"].get("content", {}).get("docker-compose") or ""
    found = compose.blocking(text) or compose.readiness_problems(text, doc["module"]["content"].get("readiness"))
    if found:
        raise BadRequest(f"the application's compose file cannot run: {'; '.join(found)}", doc["id"])
    return compose.images_of(text)


def start(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    images = _check_application(doc)
    private_registry.preflight(ctx, doc, images)  # asks the registry: before the write, which must stay short
    with ctx.write() as tx:
        current = _locked(tx, doc, "start")
        if current["state"] == STOPPED:
            for param in of_deployment(tx, current["id"]):
                tx.delete(param["id"])
        revoke_keys(tx, current["id"])
        check_mounts(ctx, tx, current)
        # the parameters exist before the container starts (it sets its outputs with one PUT of a computed
        # id), made here so that a start commits three times: this accept, the worker's claim, its outcome
        infra = tx.get(current["infrastructure-service"]) if current.get("infrastructure-service") else None
        contract.create_parameters_in(Ctx(ctx.services, INTERNAL), tx, current,
                                      contract.hostname(ctx.services, infra["endpoint"] if infra else ""))
        selection = data.resolve(ctx, tx, current)
        data.check_reach(current, infra, selection)
        data.grant(tx, current["id"], selection)
        creds = new_api_key(ctx, tx, current)
        job = _queue(ctx, tx, current, "start")
        fields: dict[str, Any] = {}
        if selection.records or "data-records" in current:
            chosen = current.get("data-records") or {}
            fields["data_records"] = {r["id"]: chosen.get(r["id"], {}) for r in selection.records}
        if selection.objects or current.get("data-objects"):
            fields["data_objects"] = [o["id"] for o in selection.objects]
        fields["data_mounts"] = selection.mounts
        _set(ctx, tx, current, state=LIFECYCLE["start"].next, api_credentials=creds, status_message="",
             phases={"queued": job["phases"]["queued"]}, task={}, **fields)
    return _accepted("starting", doc["id"], job)


def stop(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    payload = {k: bool(body[k]) for k in ("delete", "remove-volumes", "remove-images") if k in body}
    if payload.get("delete") and not acls.has(doc["acl"], ctx.authn, "delete"):
        raise Forbidden.for_resource(doc["id"])  # as Nuvla: deleting after the stop needs the delete right
    with ctx.write() as tx:
        current = _locked(tx, doc, "stop")
        job = _queue(ctx, tx, current, "stop", payload=payload)
        _set(ctx, tx, current, state=LIFECYCLE["stop"].next, phases={**current.get("phases", {}), "stop-queued": now_ts()})
    return _accepted("stopping", doc["id"], job)


def update(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    _check_application(doc)  # fetch-module may have brought another version of the file
    with ctx.write() as tx:
        current = _locked(tx, doc, "update")
        check_mounts(ctx, tx, current)  # fetch-module may have brought a version with new mounts
        job = _queue(ctx, tx, current, "update")
        _set(ctx, tx, current, state=LIFECYCLE["update"].next)
    return _accepted("updating", doc["id"], job)


def force_delete(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    """Deletes in any state. The engine's containers go too, through a job, so nothing is leaked."""
    with ctx.write() as tx:
        current = _locked(tx, doc)
        if current["state"] not in DELETABLE:
            jobs.create(ctx, tx, "destroy_deployment", current["id"], acl=jobs.job_acl(ADMIN),
                        payload={"infrastructure-service": current.get("infrastructure-service"),
                                 "credential": current.get("parent")},
                        priority=JOB_PRIORITY)
        crud.remove(ctx, tx, rtype, current, force=True)
    return Reply(200, {"status": 200, "message": f"{doc['id']} deleted", "resource-id": doc["id"]})


def create_log(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    from ..resources.resource_log import create_for

    with ctx.write() as tx:
        log = create_for(ctx, tx, doc, body)
    return Reply(201, {"status": 201, "message": f"{log['id']} created", "resource-id": log["id"]},
                 {"Location": log["id"]})


def clone(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    if not acls.has(doc["acl"], ctx.authn, "view-data"):
        raise Forbidden.for_resource(doc["id"])
    new_body = {"module": {"href": doc["module"].get("href", doc["module"]["id"])}}
    ctx.scratch["clone-module"] = doc["module"]
    for key in ("data", "data-records", "name", "description", "tags"):
        if key in doc:
            new_body[key] = doc[key]
    return crud.add(ctx, rtype, new_body)


def fetch_module(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    if not acls.has(doc["acl"], ctx.authn, "edit-data"):
        raise Forbidden.for_resource(doc["id"])
    href_ = body.get("module-href")
    base = doc["module"]["id"]
    if not isinstance(href_, str) or split_version(href_)[0] != base or split_version(href_)[1] is None:
        raise BadRequest("invalid module-href")
    with ctx.write() as tx:
        current = _locked(tx, doc)
        module = resolve_module(ctx, tx, href_)
        new = _set(ctx, tx, current, module=module)
    return Reply(200, crud.present(ctx, rtype, new, acls.rights_of(new["acl"], ctx.authn)))


# -- what job outcomes mean for the deployment -----------------------------------------------------

def job_ended(ctx: Ctx, tx: Tx, job: dict[str, Any]) -> None:
    """As Nuvla's job engine: a start, update or stop that failed or was cancelled leaves its deployment in
    ERROR with the job's message, whatever made it fail; a stop that succeeded and asked for it deletes it.
    A deployment that another request has moved on since (a stop queued during a start) is left alone."""
    dep = tx.get(job["target-resource"]["href"], for_update=True)
    if dep is None:
        return
    if job["state"] == jobs.SUCCESS:
        if job["action"] == "stop_deployment" and json.loads(job.get("payload") or "{}").get("delete"):
            crud.remove(ctx, tx, ctx.services.types["deployment"], dep, force=True)
        return
    if dep["state"] != TRANSITIONS.get(job["action"]):
        return
    message = f"{job['action']} was canceled" if job["state"] == jobs.CANCELED else \
        job.get("status-message") or f"{job['action']} failed"
    _set(ctx, tx, dep, state=ERROR, status_message=message)





def set_fields(services: Any, deployment_id: str, *, only_in: frozenset[str] | None = None,
               also: Callable[[Ctx, Tx, dict[str, Any]], None] | None = None,
               when: Callable[[dict[str, Any]], bool] | None = None,
               **fields: Any) -> dict[str, Any] | None:
    """A worker's or reconciler's write to a deployment, as the internal identity.

    ``phases`` and ``task`` are merged into what is stored. With ``only_in``, nothing is written unless the
    deployment is in one of those states (a stop that raced the start wins). ``also`` writes more in the
    same transaction, given the stored deployment (its parameters: a reader who sees the new state sees
    them too). ``when`` is a further condition on the locked, current deployment. Returns the stored
    document, or None when it is gone, was in another state or failed ``when``.
    """
    ctx = Ctx(services, INTERNAL)
    with services.store.write() as tx:
        current = tx.get(deployment_id, for_update=True)
        if current is None or (only_in is not None and current["state"] not in only_in):
            return None
        if when is not None and not when(current):
            return None
        for key in ("phases", "task"):
            if key in fields:
                fields[key] = {**current.get(key, {}), **fields[key]}
        new = _set(ctx, tx, current, **fields)
        if also is not None:
            also(ctx, tx, new)
    return new


ACTIONS = (
    *(Action(name, fn, available=_allowed_in(name), refusal=_refusal(name))
      for name, fn in (("start", start), ("stop", stop), ("update", update), ("create-log", create_log))),
    Action("clone", clone, available=lambda d: True),
    Action("fetch-module", fetch_module, available=lambda d: True),
    Action("force-delete", force_delete, right="delete"),
)


def deletable(doc: dict[str, Any]) -> bool:
    return doc["state"] in DELETABLE
