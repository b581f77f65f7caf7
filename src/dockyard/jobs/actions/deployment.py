"""Deployment jobs: start, update, stop and destroy a deployment's task on its engine.

A component is one task (``driver.start``, or ``driver.update``, which rolls a swarm service over); a compose
application is one project or stack (``driver.deploy_stack``), whose start and update are the same operation,
as Nuvla's. Everything after (state, phases, stop, destroy) is the same for both.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ...core.authn import INTERNAL
from ...core.time import now_ts
from ...deploy import contract
from ...deploy import data as data_mounts
from ...deploy.observe import service_parameters, task_summary
from ...deploy import services as app_services
from ...deploy.plan import plan, plan_application
from ...drivers.base import DriverError, StartResult
from ...drivers.engines import driver_for, driver_of, engine_in
from ...deploy import lifecycle
from ...resources import resource_log
from ...resources.base import Ctx
from ...resources.deployment_parameter import upsert
from ...store.db import Tx
from . import ActionFailed, JobContext, action

log = logging.getLogger("dockyard.jobs")


class Target:
    """The job's deployment and its engine, read together (one read transaction): the engine and its
    credential, or why they cannot be used, raised only when the job needs its driver."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.engine: tuple[dict[str, Any], dict[str, Any]] | None = None
        self.unusable: DriverError | None = None
        with ctx.services.store.read() as tx:
            dep = tx.get(ctx.target)
            if dep is not None:
                try:
                    self.engine = engine_in(tx, dep.get("parent", ""))
                except DriverError as exc:
                    self.unusable = exc
        if dep is None:
            raise ActionFailed(f"{ctx.target} no longer exists")
        self.dep = dep

    def driver(self) -> Any:
        if self.engine is None:
            assert self.unusable is not None
            raise self.unusable
        return driver_of(self.ctx.services, *self.engine)

    def endpoint(self) -> str:
        """The endpoint of the deployment's infrastructure-service (its engine's, read already, as a rule)."""
        wanted = self.dep.get("infrastructure-service")
        if self.engine is not None and self.engine[0]["id"] == wanted:
            return str(self.engine[0].get("endpoint", ""))
        with self.ctx.services.store.read() as tx:
            infra = tx.get(wanted) if wanted else None
        return infra["endpoint"] if infra else ""


DONE = {"start": "started", "update": "updated"}  # what a job's message says it did


def _run(ctx: JobContext, verb: str, from_states: frozenset[str]) -> str:
    """Start (or update: replace) the deployment's container. Any failure fails the job, which moves the
    deployment to ERROR (``lifecycle.job_ended``); a failed start first removes what it made."""
    target = Target(ctx)
    dep = target.dep
    if dep["state"] not in from_states:
        data_mounts.discard_if_idle(ctx.services, dep["id"])  # what an attempt killed before the stop staged
        return f"nothing to {verb}: {dep['id']} is {dep['state']}"
    try:
        return _deploy(ctx, target, verb, from_states)
    except Exception as exc:
        if verb == "start":
            _undo_start(ctx, dep)
        if isinstance(exc, DriverError):
            raise ActionFailed.of(exc) from exc
        raise


def _undo_start(ctx: JobContext, dep: dict[str, Any]) -> None:
    """Remove the container and the staged data a failed start may have left (unless another worker runs the
    job now: they are its own). Cleanup must not hide the failure that called it: its own is only logged."""
    if not ctx.holds():
        return
    data_mounts.discard(ctx.services, dep)
    try:
        driver_for(ctx.services, dep["parent"]).destroy(dep["id"])
    except Exception as exc:
        log.warning("cleaning up the failed start of %s failed: %s", dep["id"], exc)


def _deploy(ctx: JobContext, target: Target, verb: str, from_states: frozenset[str]) -> str:
    dep = target.dep
    driver = target.driver()
    endpoint = target.endpoint()
    if verb != "start":  # a start's parameters were made when it was accepted (deploy.lifecycle.start)
        with ctx.services.store.write() as tx:  # before the container starts, so that it can set its outputs
            contract.create_parameters_in(Ctx(ctx.services, INTERNAL), tx, dep,
                                          contract.hostname(ctx.services, endpoint))
            ctx.update_in(tx, progress=10)
    t0 = time.monotonic()
    application = app_services.is_application(dep)
    if application:
        if not driver.capabilities.stacks:
            raise ActionFailed(f"the engine of {dep['parent']} cannot run compose applications")
        result = driver.deploy_stack(plan_application(ctx.services, dep, ctx.job["id"]))
    else:
        (spec,) = plan(ctx.services, dep, ctx.job["id"], endpoint)  # one component, one task
        result = driver.update(spec) if verb == "update" else driver.start(spec)  # a swarm service rolls over
    if ctx.lost.is_set():
        return "lease lost"
    job_phases = dict(result.phases)
    phases = dict(job_phases)
    if "claimed" in ctx.job.get("phases", {}):
        phases = {"claimed": ctx.job["phases"]["claimed"], **phases}
    message = _message(verb, result, application, time.monotonic() - t0)
    task = task_summary(result.status)
    if application:  # the services the start ran: one with no container left is missing (deploy.services)
        task.update(services=sorted({t.name for t in result.tasks}), replicas=app_services.running(result.tasks))

    def outcome(ictx: Ctx, tx: Tx, _stored: dict[str, Any]) -> None:
        """The parameters and the job's end commit with the deployment's new state: one commit, and a reader
        who sees STARTED sees its ports and a finished job."""
        if application:
            app_services.publish_in(ictx, tx, dep, result)
        else:
            _publish_component(ictx, tx, dep, result)
        ctx.end_in(tx, message, phases=job_phases)

    stored = lifecycle.set_fields(ctx.services, dep["id"], only_in=from_states, state=lifecycle.STARTED,
                                  status_message=message, phases=phases, task=task, also=outcome)
    if stored is None:  # stopped or deleted meanwhile: undo, so nothing is leaked
        if not ctx.holds():  # or started by a newer attempt of this job: what runs is that attempt's
            return "lease lost"
        driver.destroy(dep["id"])
        data_mounts.discard_if_idle(ctx.services, dep["id"])  # the stop may have discarded before this staged
        return f"{dep['id']} changed while starting; its container was removed"
    return message


def _publish_component(ictx: Ctx, tx: Tx, dep: dict[str, Any], result: StartResult) -> None:
    contract.publish_in(ictx, tx, dep, result)
    if result.tasks:  # a Swarm service: its replicas, desired state and node
        service_parameters(ictx, tx, dep, result.tasks)
        upsert(ictx, tx, dep, "current.state", result.status.state, node_id=contract.node_id(dep))


def _message(verb: str, result: StartResult, application: bool, seconds: float) -> str:
    """``started <name> in 1.23 s (tcp.80=32768)``; an application names its services and their ports."""
    if application:
        names = sorted({t.name for t in result.tasks})
        ports = ", ".join(sorted({f"{t.name}.{p.protocol}.{p.target}={p.host_port}"
                                  for t in result.tasks for p in t.ports})) or "no ports"
        what = f"services {', '.join(names)}"
    else:
        ports = ", ".join(f"{p.protocol}.{p.target}={p.host_port}" for p in result.status.ports) or "no ports"
        what = result.status.name
    return f"{DONE[verb]} {what} in {seconds:.2f} s ({ports})" + "".join(f"; {note}" for note in result.notes)


@action("start_deployment")
def start_deployment(ctx: JobContext) -> str:
    return _run(ctx, "start", frozenset({lifecycle.STARTING}))


@action("update_deployment")
def update_deployment(ctx: JobContext) -> str:
    return _run(ctx, "update", frozenset({lifecycle.UPDATING}))


@action("stop_deployment")
def stop_deployment(ctx: JobContext) -> str:
    target = Target(ctx)
    dep = target.dep
    if dep["state"] != lifecycle.STOPPING:
        return f"nothing to stop: {dep['id']} is {dep['state']}"
    payload = ctx.payload
    try:
        driver = target.driver()
        ctx.progress(10)
        driver.stop(dep["id"], timeout=ctx.services.settings["stop-timeout"])
        _archive_log(ctx, driver, dep)
        kept = driver.destroy(dep["id"], remove_volumes=bool(payload.get("remove-volumes")))
    except DriverError as exc:  # the job fails, and so the deployment is in ERROR (lifecycle.job_ended)
        raise ActionFailed.of(exc) from exc
    with ctx.services.store.write() as tx:
        lifecycle.revoke_keys(tx, dep["id"])
        data_mounts.revoke(tx, dep["id"])
    data_mounts.discard(ctx.services, dep)
    lifecycle.set_fields(ctx.services, dep["id"], only_in=frozenset({lifecycle.STOPPING}),
                           state=lifecycle.STOPPED, status_message="stopped" + (f"; {kept}" if kept else ""),
                           phases={"stopped": now_ts()}, task={"state": "missing", "checked": now_ts()})
    return f"stopped {dep['id']}" + (f"; {kept}" if kept else "")


def _archive_log(ctx: JobContext, driver: Any, dep: dict[str, Any]) -> None:
    """The container's last lines, kept before it is removed, so its log stays readable (the log stream
    serves them once the deployment is STOPPED). Failing to read them must not fail the stop."""
    try:
        lines = driver.logs(dep["id"], tail=resource_log.ARCHIVE_LINES)
    except DriverError as exc:
        log.warning("keeping the log of %s before removing its container failed: %s", dep["id"], exc.message)
        return
    if not lines:
        return
    with ctx.services.store.write() as tx:
        resource_log.archive(Ctx(ctx.services, INTERNAL), tx, dep, lines)


@action("destroy_deployment")
def destroy_deployment(ctx: JobContext) -> str:
    data_mounts.discard(ctx.services, {"id": ctx.target})  # a deleted deployment's staged data is nobody's
    credential = ctx.payload.get("credential")
    if not credential:
        return "no engine to clean"
    try:
        driver_for(ctx.services, credential).destroy(ctx.target)
    except DriverError as exc:
        raise ActionFailed.of(exc) from exc
    return f"removed what {ctx.target} had on its engine"
