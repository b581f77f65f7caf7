"""How the engine's view of a deployment's task becomes the deployment's state and parameters.

The rules, whoever applies them (the reconciler from an event or its sweep): a STARTED deployment whose
container is gone or exited is in ERROR, with the reason; one in ERROR whose container runs again is
STARTED; an engine that does not answer puts its STARTED deployments in ERROR with the task state
``unreachable``, and when it answers again what it says of each replaces that. The ``task`` summary and the
parameters ``current.state``, ``restart.number`` and ``restart.exit.code`` follow the engine.

A compose application is judged by its services (``deploy.services.headline``): one service container that
exited, or a service the start ran that has no container left, puts it in ERROR naming the service; once every
service runs again it is STARTED. Its ``<service>.<param>`` parameters follow each service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.time import now_ts
from ..drivers.base import EXITED, MISSING, RESTARTING, RUNNING, TaskStatus
from ..resources import deployment as deployments
from ..resources.base import Ctx
from ..resources.deployment_parameter import upsert
from ..store.db import Tx
from . import services as app_services
from .contract import node_id

WATCHED = frozenset({deployments.STARTED, deployments.ERROR})  # the states the engine's view may change
UNREACHABLE = "unreachable"  # the task state of a deployment whose engine does not answer


def task_summary(status: Any) -> dict[str, Any]:
    """A driver's ``TaskStatus`` as the deployment's ``task``: state, restarts, id, name, when checked."""
    out = {"state": status.state, "restarts": status.restart_count, "id": status.task_id[:12],
           "name": status.name, "checked": now_ts()}
    if status.exit_code is not None:
        out["exit-code"] = status.exit_code
    if status.error:
        out["error"] = status.error
    if status.started_at:
        out["started"] = status.started_at
    return out


def observed(dep: dict[str, Any], tasks: list[TaskStatus]) -> dict[str, Any] | None:
    """What the engine's ``tasks`` of ``dep`` change in it (fields for ``deployment.set_fields``), or None."""
    application = app_services.is_application(dep)
    status = _status(dep, tasks)
    fields: dict[str, Any] = {"task": task_summary(status)}
    if status.node or application:  # a replica or service lost or added changes it too (and its parameters)
        fields["task"]["replicas"] = app_services.running(tasks)
    before = dep.get("task", {}).get("state")
    if dep["state"] == deployments.STARTED and status.state in (EXITED, MISSING):
        fields["state"] = deployments.ERROR
        fields["status_message"] = why(status, application)
    elif dep["state"] == deployments.ERROR and status.state in (RUNNING, RESTARTING) \
            and before in (EXITED, MISSING, RESTARTING, UNREACHABLE):
        fields["state"] = deployments.STARTED
        fields["status_message"] = "its services run again" if application else "the container runs again"
    elif dep["state"] == deployments.ERROR and status.state in (EXITED, MISSING) and before == UNREACHABLE:
        fields["status_message"] = why(status, application)  # the engine is back, and says what became of it
    elif dep["state"] == deployments.ERROR and status.state == MISSING and before not in (None, MISSING):
        # `docker rm -f` is seen as die then destroy: the last word is that the container is gone
        fields["status_message"] = why(status, application)
    if not _changed(dep.get("task", {}), fields["task"]) and "state" not in fields:
        return None
    return fields


def settling(tasks: Sequence[TaskStatus]) -> bool:
    """A Swarm service whose current tasks do not all run yet: they are starting (a task moved from a lost
    node, an update, a scale), and the manager will raise no event when they run."""
    return bool(tasks) and bool(tasks[0].node) and any(t.state != RUNNING for t in tasks)


def unreachable(message: str) -> dict[str, Any]:
    """What a STARTED deployment becomes when its engine does not answer (``message`` says why)."""
    return {"state": deployments.ERROR, "status_message": message,
            "task": {"state": UNREACHABLE, "checked": now_ts()}}


def parameters(ctx: Ctx, tx: Tx, dep: dict[str, Any], tasks: list[TaskStatus]) -> None:
    """The engine's view as parameters, written with the deployment's own change."""
    status = _status(dep, tasks)
    node = node_id(dep)
    upsert(ctx, tx, dep, "current.state", status.state, node_id=node)
    upsert(ctx, tx, dep, "restart.number", str(status.restart_count), node_id=node)
    if status.exit_code is not None and status.state != RUNNING:
        upsert(ctx, tx, dep, "restart.exit.code", str(status.exit_code), node_id=node)
    if app_services.is_application(dep):
        app_services.write(ctx, tx, dep, tasks)
    else:
        service_parameters(ctx, tx, dep, tasks)


def _status(dep: dict[str, Any], tasks: list[TaskStatus]) -> TaskStatus:
    """The task that decides: an application's worst service (``deploy.services.headline``), else the first."""
    if app_services.is_application(dep):
        return app_services.headline(dep, tasks)
    return tasks[0] if tasks else TaskStatus(dep["id"], "", "", MISSING)


def service_parameters(ctx: Ctx, tx: Tx, dep: dict[str, Any], tasks: Sequence[TaskStatus]) -> None:
    """Nuvla's parameters of a Swarm service (tasks that name their node): the replicas desired (the tasks
    meant to run) and running, the desired state, and the node of the first task; with ports published in
    host mode, ``hostname`` and ``<protocol>.<port>`` follow that task when it moves (a node lost, an update)."""
    if not tasks or not tasks[0].node:
        return
    node = node_id(dep)
    first = tasks[0]
    running = sum(1 for t in tasks if t.state == RUNNING)
    upsert(ctx, tx, dep, "replicas.desired", str(len(tasks)), node_id=node)
    upsert(ctx, tx, dep, "replicas.running", str(running), node_id=node)
    upsert(ctx, tx, dep, "current.desired.state", "running", node_id=node)
    upsert(ctx, tx, dep, "current.error.message", first.error or "no error", node_id=node)
    upsert(ctx, tx, dep, "node-id", first.node, node_id=node)
    if first.last_failure is not None:  # as Nuvla's: the newest task the swarm had to replace
        error, code, when = first.last_failure
        upsert(ctx, tx, dep, "restart.error.message", error, node_id=node)
        upsert(ctx, tx, dep, "restart.timestamp", when, node_id=node)
        if code is not None:
            upsert(ctx, tx, dep, "restart.exit.code", str(code), node_id=node)
    if first.state != RUNNING or not first.ports:
        return
    if first.address and any(p.host_ip for p in first.ports) and not ctx.services.settings["public-hostname"]:
        upsert(ctx, tx, dep, "hostname", first.address, description="the host where the ports are published")
    for port in first.ports:
        upsert(ctx, tx, dep, f"{port.protocol}.{port.target}", str(port.host_port), node_id=node,
               description=f"mapping for {port.protocol} port {port.target}")


def why(status: TaskStatus, service: bool = False) -> str:
    if service and status.name:
        return f"service '{status.name}': {why(status)}"
    if status.state == MISSING:
        return "the container is gone (removed outside Dockyard)"
    detail = f": {status.error}" if status.error else ""
    return f"the container exited with code {status.exit_code}{detail}"


def _changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("state", "restarts", "exit-code", "id", "error", "replicas")
    if old.get("state") == new.get("state") == MISSING:  # seen while the engine removed it, then not at all
        keys = ("replicas",)
    return any(old.get(k) != new.get(k) for k in keys)
