"""Resource logs: a deployment's log lines fetched on demand (Nuvla's ``create-log`` then ``fetch``).

``fetch`` queues a ``fetch_deployment_log`` job, or answers the one already in progress; the job
replaces ``log`` with the latest lines of each component and records ``last-timestamp``. For following a
log as it is written, the server also streams it (``GET /api/deployment/<uuid>/log-stream``).
"""

from __future__ import annotations

from typing import Any

from ..core import acl as acls
from ..core.authn import ADMIN, USER
from ..core.errors import BadRequest
from ..store.db import Tx
from ..store.query import Query
from ..store import filter as cimi_filter
from . import crud
from . import job as jobs
from .attributes import COMMON, Attr, any_map, integer, list_of, string, timestamp
from .base import Action, Ctx, ResourceType, Reply

SCHEMA = COMMON.extend(
    Attr("parent", string(pattern=r"^(nuvlabox|deployment)/[0-9a-f-]+$"), required=True, immutable=True),
    Attr("components", list_of(string(max_len=200), min_len=1, max_len=100), required=True),
    Attr("since", timestamp),
    Attr("last-timestamp", timestamp),
    Attr("lines", integer(1, 100_000)),
    Attr("log", any_map, indexed=False),
)
DEFAULT_LINES = 200
# the last lines a stop keeps of a container it removes (see archive)
ARCHIVE_LINES = 2000
ARCHIVE_NAME = "archived log"


class ResourceLog(ResourceType):
    name = "resource-log"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [ADMIN]}

    def __init__(self) -> None:
        self.actions = (Action("fetch", fetch),)
        super().__init__()


def _acl_of(deployment: dict[str, Any]) -> dict[str, list[str]]:
    return {"owners": list(deployment["acl"]["owners"]), "view-data": list(deployment["acl"].get("view-data", [])),
            "manage": list(deployment["acl"].get("manage", []))}


def create_for(ctx: Ctx, tx: Tx, deployment: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    components = body.get("components")
    if components is None:
        components = [deployment["module"].get("path", "app").rsplit("/", 1)[-1]]
    doc: dict[str, Any] = {"parent": deployment["id"], "components": components, "acl": _acl_of(deployment)}
    for key in ("since", "lines"):
        if key in body:
            doc[key] = body[key]
    if not isinstance(components, list):
        raise BadRequest("attribute 'components' must be a list of component names")
    return crud.insert(ctx, tx, ctx.services.types["resource-log"], doc)


def archive(ctx: Ctx, tx: Tx, deployment: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """Keep ``lines``, the last ones a container wrote before a stop removes it, in the deployment's resource-log
    named ``archived log`` (replacing what an earlier stop kept), so the log stays readable once the
    container is gone: the log stream serves it (``server/stream.py``). ``ctx`` is the internal identity."""
    component = deployment["module"].get("path", "app").rsplit("/", 1)[-1]
    last = max((line.split(" ", 1)[0] for line in lines if line), default=None)
    rtype = ctx.services.types["resource-log"]
    for old in tx.find_all("resource-log", "parent", deployment["id"]):
        if old.get("name") == ARCHIVE_NAME:
            new = {**old, "components": [component], "log": {component: lines}}
            if last and last[:1].isdigit():
                new["last-timestamp"] = last[:23] + "Z"
            return crud.update(ctx, tx, rtype, old, new)
    new = {"parent": deployment["id"], "components": [component], "name": ARCHIVE_NAME,
           "description": "the last lines of the container, kept when the deployment stopped",
           "log": {component: lines}, "acl": _acl_of(deployment)}
    if last and last[:1].isdigit():
        new["last-timestamp"] = last[:23] + "Z"
    return crud.insert(ctx, tx, rtype, new)


def archived_lines(tx: Tx, deployment_id: str) -> list[str] | None:
    """The lines a stop kept of the deployment's container, or None when none were kept."""
    for doc in tx.find_all("resource-log", "parent", deployment_id):
        if doc.get("name") == ARCHIVE_NAME:
            return [line for lines in (doc.get("log") or {}).values() for line in lines]
    return None


def fetch(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    with ctx.write() as tx:
        parent = tx.get(doc["parent"])
        if parent is None or not acls.has(parent["acl"], ctx.authn, "manage"):
            raise BadRequest(f"{doc['parent']} cannot be managed by you") if parent else \
                BadRequest(f"{doc['parent']} no longer exists")
        active = tx.search(Query("job", cimi_filter.parse(
            f"target-resource/href='{doc['id']}' and (state='QUEUED' or state='RUNNING')"), limit=1)).docs
        job = active[0] if active else jobs.create(
            ctx, tx, "fetch_deployment_log", doc["id"], acl=jobs.job_acl(ctx.authn.active_claim), priority=50)
    return Reply(202, {"status": 202, "message": f"fetching {doc['id']} with async {job['id']}",
                       "resource-id": doc["id"], "location": job["id"]}, {"Location": job["id"]})


__all__ = ["ARCHIVE_LINES", "ARCHIVE_NAME", "DEFAULT_LINES", "ResourceLog", "archive", "archived_lines", "create_for"]
