"""``credential_check``: does the engine answer, and is it a swarm (manager)? Does the registry accept the
user name and password? Either way the credential gets ``status`` (VALID, INVALID, UNKNOWN) and ``last-check``."""

from __future__ import annotations

from typing import Any

from ...core.authn import INTERNAL
from ...core.time import now_ts
from ...drivers import registry
from ...drivers.base import DriverError
from ...resources import crud
from ...resources import private_registry
from ...resources.base import Ctx
from ...drivers import engines
from . import ActionFailed, JobContext, action


@action("credential_check")
def credential_check(ctx: JobContext) -> str:
    with ctx.services.store.read() as tx:
        cred = tx.get(ctx.target)
        infra = tx.get(cred.get("parent") or "") if cred is not None else None
    if cred is None:
        raise ActionFailed(f"{ctx.target} no longer exists")
    if cred.get("subtype") == private_registry.CREDENTIAL:
        return _registry_check(ctx, cred, infra)
    info = engines.check(ctx.services, cred["id"])
    status = "VALID" if info.reachable else ("INVALID" if "tls" in info.message.lower() else "UNKNOWN")
    ictx = Ctx(ctx.services, INTERNAL)
    with ctx.services.store.write() as tx:
        current = tx.get(cred["id"], for_update=True)
        if current is not None:
            crud.update(ictx, tx, ctx.services.types["credential"], current,
                        {**current, "status": status, "last-check": now_ts()})
        infra = tx.get(cred["parent"], for_update=True)
        if infra is not None:
            checked = {**infra, "online": info.reachable, "swarm-enabled": info.swarm,
                       "swarm-manager": info.swarm_manager, "swarm-nodes": info.nodes}
            checked.pop("swarm-routing-mesh", None)
            if info.routing_mesh is not None:  # asked of a manager only; starts use it instead of probing
                checked["swarm-routing-mesh"] = info.routing_mesh
            crud.update(ictx, tx, ctx.services.types["infrastructure-service"], infra, checked)
    if not info.reachable:
        raise ActionFailed(f"the engine does not answer: {info.message}")
    if info.swarm_manager:
        mesh = {True: "answers", False: "does not answer (host-mode ports)",
                None: "unknown (the probe could not run; see the log)"}[info.routing_mesh]
        return f"engine {info.version} answers; swarm manager of {info.nodes} node(s); routing mesh {mesh}"
    return f"engine {info.version} answers; swarm: {info.swarm}"


def _registry_check(ctx: JobContext, cred: dict[str, Any], infra: dict[str, Any] | None) -> str:
    """As ``docker login``: the registry's ``/v2/`` with the credential (basic auth or a bearer token)."""
    if infra is None:
        _set_status(ctx, cred["id"], "UNKNOWN")
        raise ActionFailed(f"the registry {cred.get('parent')} is no longer registered")
    where = registry.server_address(infra["endpoint"])
    try:
        registry.login(infra["endpoint"], private_registry.auth_of(ctx.services, cred, infra),
                       timeout=ctx.services.settings["registry-timeout"])
    except DriverError as err:
        _set_status(ctx, cred["id"], "INVALID" if err.reason == registry.REGISTRY_AUTH else "UNKNOWN")
        raise ActionFailed(err.message) from err
    _set_status(ctx, cred["id"], "VALID")
    return f"the registry {where} accepts the credential of user '{cred.get('username')}'"


def _set_status(ctx: JobContext, cred_id: str, status: str) -> None:
    with ctx.services.store.write() as tx:
        current = tx.get(cred_id, for_update=True)
        if current is not None:
            crud.update(Ctx(ctx.services, INTERNAL), tx, ctx.services.types["credential"], current,
                        {**current, "status": status, "last-check": now_ts()})
