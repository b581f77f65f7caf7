"""``credential_check``: does the engine answer, and is it a swarm (manager)?"""

from __future__ import annotations

from ...core.authn import INTERNAL
from ...core.time import now_ts
from ...resources import crud
from ...resources.base import Ctx
from ..engines import driver_for
from . import ActionFailed, JobContext, action


@action("credential_check")
def credential_check(ctx: JobContext) -> str:
    with ctx.services.store.read() as tx:
        cred = tx.get(ctx.target)
    if cred is None:
        raise ActionFailed(f"{ctx.target} no longer exists")
    info = driver_for(ctx.services, cred["id"]).check()
    status = "VALID" if info.reachable else ("INVALID" if "tls" in info.message.lower() else "UNKNOWN")
    ictx = Ctx(ctx.services, INTERNAL)
    with ctx.services.store.write() as tx:
        current = tx.get(cred["id"], for_update=True)
        if current is not None:
            crud.update(ictx, tx, ctx.services.types["credential"], current,
                        {**current, "status": status, "last-check": now_ts()})
        infra = tx.get(cred["parent"], for_update=True)
        if infra is not None:
            crud.update(ictx, tx, ctx.services.types["infrastructure-service"], infra,
                        {**infra, "online": info.reachable, "swarm-enabled": info.swarm,
                         "swarm-manager": info.swarm_manager})
    if not info.reachable:
        raise ActionFailed(f"the engine does not answer: {info.message}")
    return f"engine {info.version} answers; swarm: {'manager' if info.swarm_manager else info.swarm}"
