"""Deployment jobs: start, update, stop and destroy a deployment's task on its engine."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from ...core.authn import INTERNAL
from ...core.time import now_ts
from ...drivers.base import (DriverError, MountSpec, PortSpec, RegistryAuth, RestartPolicy, StartResult,
                             TaskSpec, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_JOB)
from ...resources import deployment as deployments
from ...resources import deployment_data, private_registry, resource_log
from ...resources.private_registry import image_ref
from ...resources.base import Ctx
from ...resources.deployment_mounts import is_local, volume_name
from ...resources.deployment_parameter import upsert
from ...resources.session import end_sessions
from ...drivers.engines import driver_for
from . import ActionFailed, JobContext, action, data_mounts

log = logging.getLogger("dockyard.jobs")


def _load(ctx: JobContext) -> dict[str, Any]:
    with ctx.services.store.read() as tx:
        dep = tx.get(ctx.target)
    if dep is None:
        raise ActionFailed(f"{ctx.target} no longer exists")
    return dep


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:30] or "app"


def container_name(dep: dict[str, Any]) -> str:
    """DNS-safe and unique: the app's name, then the deployment's uuid."""
    return f"{_slug(dep['module'].get('path', 'app').rsplit('/', 1)[-1])}-{dep['id'].split('/', 1)[1]}"


def environment(ctx: JobContext, dep: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The container contract: Nuvla's variables first, then the app's own (empty values skipped)."""
    creds = dep.get("api-credentials") or {}
    now = datetime.now(timezone.utc)
    env = {
        "NUVLA_ENDPOINT": dep["api-endpoint"],
        "NUVLA_DEPLOYMENT_ID": dep["id"],
        "NUVLA_DEPLOYMENT_UUID": dep["id"].split("/", 1)[1],
        "NUVLA_API_KEY": creds.get("api-key", ""),
        "NUVLA_API_SECRET": ctx.services.keys.cipher.decrypt(creds.get("api-secret", "")),
        "DATE_TIME": now.strftime("%y%m%d%H%M%S"),
        "TIMESTAMP": str(int(now.timestamp())),
    }
    for var in dep["module"]["content"].get("environmental-variables", []):
        if var.get("value"):
            env[var["name"]] = var["value"]
    return tuple(env.items())


def hostname(ctx: JobContext, infra_endpoint: str) -> str:
    configured = ctx.services.settings["public-hostname"]
    if configured:
        return configured
    if infra_endpoint.startswith("unix://"):
        return "localhost"
    return urlparse(infra_endpoint).hostname or "localhost"


def task_spec(ctx: JobContext, dep: dict[str, Any]) -> TaskSpec:
    content = dep["module"]["content"]
    ports = tuple(PortSpec(p["target-port"], p.get("protocol", "tcp"), p.get("published-port"))
                  for p in content.get("ports", []))
    shared = is_local(_endpoint(ctx, dep))
    mounts = tuple(MountSpec(m["mount-type"], m["target"], _source(dep, m, shared), bool(m.get("read-only")),
                             tuple(sorted((m.get("volume-options") or {}).items())))
                   for m in content.get("mounts", [])) + data_mounts.mounts_for(ctx.services, dep)
    policy = content.get("restart-policy") or {}
    restart = RestartPolicy(policy.get("condition", "none"), policy.get("max-attempts"))
    component = dep["module"].get("path", "app").rsplit("/", 1)[-1]
    return TaskSpec(
        deployment_id=dep["id"], name=container_name(dep), image=image_ref(content["image"]),
        env=environment(ctx, dep), ports=ports, mounts=mounts, cpus=content.get("cpus"),
        memory_mib=content.get("memory"), restart=restart,
        labels=((LABEL_JOB, ctx.job["id"]), (LABEL_COMPONENT, component),
                (LABEL_INSTANCE, ctx.services.extras.get("instance-id", ""))),
        registry_auth=_registry_auth(ctx, dep), publish_ip=ctx.services.settings["publish-ip"],
    )


def _source(dep: dict[str, Any], mount: dict[str, Any], shared: bool) -> str | None:
    """A named volume on a shared engine is its owner's own (see ``resources.deployment_mounts``)."""
    source = mount.get("source")
    if shared and mount["mount-type"] == "volume" and source:
        return volume_name(dep.get("owner") or dep["id"], source)
    return source


def _registry_auth(ctx: JobContext, dep: dict[str, Any]) -> RegistryAuth | None:
    """The credential to pull with, checked with the registry at every start (a private image already on the
    engine runs only for a deployment whose credential opens it); None for an image of no private registry."""
    return private_registry.worker_auth(ctx.services, dep)


def create_parameters(ctx: JobContext, dep: dict[str, Any], host: str) -> None:
    """Before the container starts, so that it can set its outputs with one PUT of a computed id."""
    content = dep["module"]["content"]
    node = dep["id"].split("/", 1)[1]
    ictx = Ctx(ctx.services, INTERNAL)
    with ctx.services.store.write() as tx:
        upsert(ictx, tx, dep, "hostname", host, description="the host where the ports are published")
        for out in content.get("output-parameters", []):
            upsert(ictx, tx, dep, out["name"], node_id=node, description=out.get("description"),
                   keep_value=True)
        for port in content.get("ports", []):
            proto = port.get("protocol", "tcp")
            upsert(ictx, tx, dep, f"{proto}.{port['target-port']}", node_id=node, keep_value=True,
                   description=f"mapping for {proto} port {port['target-port']}")


def publish(ctx: JobContext, dep: dict[str, Any], result: StartResult) -> None:
    node = dep["id"].split("/", 1)[1]
    ictx = Ctx(ctx.services, INTERNAL)
    with ctx.services.store.write() as tx:
        for port in result.status.ports:
            upsert(ictx, tx, dep, f"{port.protocol}.{port.target}", str(port.host_port), node_id=node,
                   description=f"mapping for {port.protocol} port {port.target}")


def task_summary(status: Any) -> dict[str, Any]:
    out = {"state": status.state, "restarts": status.restart_count, "id": status.task_id[:12],
           "name": status.name, "checked": now_ts()}
    if status.exit_code is not None:
        out["exit-code"] = status.exit_code
    if status.error:
        out["error"] = status.error
    if status.started_at:
        out["started"] = status.started_at
    return out


def _run(ctx: JobContext, verb: str, from_states: frozenset[str]) -> str:
    """Start (or update: replace) the deployment's container. Any failure fails the job, which moves the
    deployment to ERROR (``deployments.job_ended``); a failed start first removes what it made."""
    dep = _load(ctx)
    if dep["state"] not in from_states:
        data_mounts.discard_if_idle(ctx.services, dep["id"])  # what an attempt killed before the stop staged
        return f"nothing to {verb}: {dep['id']} is {dep['state']}"
    try:
        return _deploy(ctx, dep, verb, from_states)
    except Exception as exc:
        if verb == "start":
            _undo_start(ctx, dep)
        if isinstance(exc, DriverError):
            raise ActionFailed(exc.message) from exc
        raise


def _undo_start(ctx: JobContext, dep: dict[str, Any]) -> None:
    """Remove the container and the staged data a failed start may have left (unless another worker runs the
    job now: they are its own). Cleanup must not hide the failure that called it: its own is only logged."""
    if ctx.lost.is_set():
        return
    data_mounts.discard(ctx.services, dep)
    try:
        driver_for(ctx.services, dep["parent"]).destroy(dep["id"])
    except Exception as exc:
        log.warning("cleaning up the failed start of %s failed: %s", dep["id"], exc)


def _deploy(ctx: JobContext, dep: dict[str, Any], verb: str, from_states: frozenset[str]) -> str:
    driver = driver_for(ctx.services, dep["parent"])
    create_parameters(ctx, dep, hostname(ctx, _endpoint(ctx, dep)))
    ctx.progress(10)
    t0 = time.monotonic()
    result = driver.start(task_spec(ctx, dep))
    if ctx.lost.is_set():
        return "lease lost"
    publish(ctx, dep, result)
    phases = dict(result.phases)
    ctx.phases(**phases)
    if "claimed" in ctx.job.get("phases", {}):
        phases = {"claimed": ctx.job["phases"]["claimed"], **phases}
    ports = ", ".join(f"{p.protocol}.{p.target}={p.host_port}" for p in result.status.ports) or "no ports"
    message = f"{verb.rstrip('e')}ed {result.status.name} in {time.monotonic() - t0:.2f} s ({ports})"
    stored = deployments.set_fields(ctx.services, dep["id"], only_in=from_states, state=deployments.STARTED,
                                    status_message=message, phases=phases, task=task_summary(result.status))
    if stored is None:  # stopped or deleted meanwhile: undo, so nothing is leaked
        driver.destroy(dep["id"])
        data_mounts.discard_if_idle(ctx.services, dep["id"])  # the stop may have discarded before this staged
        return f"{dep['id']} changed while starting; its container was removed"
    return message


def _endpoint(ctx: JobContext, dep: dict[str, Any]) -> str:
    with ctx.services.store.read() as tx:
        infra = tx.get(dep["infrastructure-service"])
    return infra["endpoint"] if infra else ""


@action("start_deployment")
def start_deployment(ctx: JobContext) -> str:
    return _run(ctx, "start", frozenset({deployments.STARTING}))


@action("update_deployment")
def update_deployment(ctx: JobContext) -> str:
    return _run(ctx, "update", frozenset({deployments.UPDATING}))


@action("stop_deployment")
def stop_deployment(ctx: JobContext) -> str:
    dep = _load(ctx)
    if dep["state"] != deployments.STOPPING:
        return f"nothing to stop: {dep['id']} is {dep['state']}"
    payload = ctx.payload
    try:
        driver = driver_for(ctx.services, dep["parent"])
        ctx.progress(10)
        driver.stop(dep["id"], timeout=ctx.services.settings["stop-timeout"])
        _archive_log(ctx, driver, dep)
        driver.destroy(dep["id"], remove_volumes=bool(payload.get("remove-volumes")))
    except DriverError as exc:  # the job fails, and so the deployment is in ERROR (deployments.job_ended)
        raise ActionFailed(exc.message) from exc
    with ctx.services.store.write() as tx:
        for cred in tx.find_all("credential", "parent", dep["id"]):
            end_sessions(tx, "credential", cred["id"])
            tx.delete(cred["id"])
        deployment_data.revoke(tx, dep["id"])
    data_mounts.discard(ctx.services, dep)
    deployments.set_fields(ctx.services, dep["id"], only_in=frozenset({deployments.STOPPING}),
                           state=deployments.STOPPED, status_message="stopped",
                           phases={"stopped": now_ts()}, task={"state": "missing", "checked": now_ts()})
    return f"stopped {dep['id']}"


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
        raise ActionFailed(exc.message) from None
    return f"removed what {ctx.target} had on its engine"
