"""``fetch_deployment_log``: the latest lines of each component into its ``resource-log``."""

from __future__ import annotations

from ...core.authn import INTERNAL
from ...drivers.base import DriverError
from ...resources import crud
from ...resources.base import Ctx
from ...resources.resource_log import DEFAULT_LINES
from ...drivers.engines import driver_for
from . import ActionFailed, JobContext, action


@action("fetch_deployment_log")
def fetch_deployment_log(ctx: JobContext) -> str:
    with ctx.services.store.read() as tx:
        log = tx.get(ctx.target)
        dep = tx.get(log["parent"]) if log else None
    if log is None or dep is None:
        raise ActionFailed(f"{ctx.target} or its deployment no longer exists")
    since = log.get("last-timestamp") or log.get("since")
    try:
        lines = driver_for(ctx.services, dep["parent"]).logs(
            dep["id"], since=since, tail=log.get("lines", DEFAULT_LINES))
    except DriverError as exc:
        lines = []
        message = exc.message
    else:
        message = f"{len(lines)} lines"
    last = max((line.split(" ", 1)[0] for line in lines if line), default=None)
    ictx = Ctx(ctx.services, INTERNAL)
    with ctx.services.store.write() as tx:
        current = tx.get(log["id"], for_update=True)
        if current is None:
            raise ActionFailed(f"{log['id']} no longer exists")
        new = {**current, "log": {component: lines for component in current["components"]}}
        if last and last[:1].isdigit():
            new["last-timestamp"] = last[:23] + "Z"
        crud.update(ictx, tx, ctx.services.types["resource-log"], current, new)
    return message
