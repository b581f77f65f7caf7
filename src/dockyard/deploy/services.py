"""A compose application's services as the deployment sees them: its parameters per service and its state.

Parameters are named ``<service>.<param>`` with ``node-id`` = the service's name, as Nuvla's
``application_params_update`` writes them (reference §2.7): ``<service>.node-id``, ``<service>.image``,
``<service>.service-id`` (the container, or the swarm task), ``<service>.<protocol>.<port>`` (the published
port), ``<service>.current.state``; on a swarm ``<service>.replicas.desired`` and ``<service>.replicas.running``
and, for a port published in host mode, ``<service>.hostname`` (the node where it answers). An app's URL
pattern such as ``http://${web.hostname}:${web.tcp.80}/`` resolves from them.

The deployment's state follows its services: the task that says the most (:func:`headline`) is the first
service container or task that does not run, or a service of the start with no container left at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..drivers.base import MISSING, RUNNING, StartResult, TaskStatus
from ..resources.base import Ctx
from ..resources.deployment_parameter import upsert
from ..store.db import Tx

SUBTYPE = "application"


def is_application(dep: dict[str, Any]) -> bool:
    return (dep.get("module") or {}).get("subtype") == SUBTYPE


def headline(dep: dict[str, Any], tasks: Sequence[TaskStatus]) -> TaskStatus:
    """The first service task that does not run, a service the start ran that has none left (MISSING), or the
    first task."""
    for task in tasks:
        if task.state != RUNNING:
            return task
    names = {t.name for t in tasks}
    for service in (dep.get("task") or {}).get("services") or []:
        if service not in names:
            return TaskStatus(dep["id"], "", service, MISSING)
    return tasks[0] if tasks else TaskStatus(dep["id"], "", "", MISSING)


def running(tasks: Sequence[TaskStatus]) -> str:
    """``running/all`` of the service containers or tasks, for the deployment's ``task`` summary."""
    return f"{sum(1 for t in tasks if t.state == RUNNING)}/{len(tasks)}"


def publish_in(ctx: Ctx, tx: Tx, dep: dict[str, Any], result: StartResult) -> None:
    """After a start: every service's parameters, and ``hostname`` the node of the first port published in host
    mode (unless a public host name is configured)."""
    write(ctx, tx, dep, result.tasks)
    address = next((t.address for t in result.tasks if t.address and t.ports), "")
    if address and not ctx.services.settings["public-hostname"]:
        upsert(ctx, tx, dep, "hostname", address, description="the host where the ports are published")


def write(ctx: Ctx, tx: Tx, dep: dict[str, Any], tasks: Sequence[TaskStatus]) -> None:
    """Each service's parameters from its tasks (a service without any keeps its last ones)."""
    by_service: dict[str, list[TaskStatus]] = {}
    for task in tasks:
        by_service.setdefault(task.name, []).append(task)
    for service, own in by_service.items():
        first = next((t for t in own if t.state == RUNNING), own[0])
        values = {"node-id": service, "image": first.image, "service-id": first.task_id,
                  "current.state": first.state}
        for port in first.ports:
            values[f"{port.protocol}.{port.target}"] = str(port.host_port)
        if first.node:  # a swarm's service
            values["replicas.desired"] = str(len(own))
            values["replicas.running"] = str(sum(1 for t in own if t.state == RUNNING))
            if first.address and first.ports:
                values["hostname"] = first.address
        for name, value in values.items():
            upsert(ctx, tx, dep, f"{service}.{name}", value, node_id=service)
