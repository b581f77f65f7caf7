"""The data a deployment was launched with: which records and objects, where their buckets are mounted, and
the deployment's right to read them.

A deployment names records in ``data-records`` (a map keyed by record id, the seed's shape) and/or in
Nuvla's newer ``data`` (``records.records-ids`` and ``records.filters``; ``objects.objects-ids`` and
``objects.filters``). At start they resolve, as the user who starts, to one set of records and one of
objects, each of which that user must be able to read. The deployment (its key) is then granted
``view-data`` on exactly those records, the objects they describe and the objects chosen; ``data-records``
lists the records and ``data-objects`` the objects. Stop and delete take the grants back.

Start also decides the mounts (``data-mounts``): one per distinct bucket, with the credential that opens its
store, checked here as the starting user, so that the job that mounts them only carries out a plan. A bucket
of the embedded store must belong to the starting user (see ``data_object.check_bucket``); a bucket of
another S3 store is read with an S3 credential of the starting user for that store.

Then what is mounted. Each distinct bucket of the selected records and objects appears at ``/mnt/<bucket>`` (or where a record's
``mount`` says: its ``target``), as the deployment's start planned it in ``data-mounts``. The embedded
store's bucket is a directory, bind-mounted as it is, so the container sees objects as they are written
(the bucket is the starting user's own: see ``resources.data_object.check_bucket``). An S3 bucket is
staged with the starting user's credential: the selected objects are downloaded into
``<data dir>/staging/<deployment uuid>/<bucket>`` before the container starts and that directory is bound —
a snapshot taken at start, holding only the selected objects, and (like every bind mount) only for an
engine on the same host as the worker. It is removed when the deployment stops.

So buckets are mounted only where the engine sees Dockyard's disk. A start that would mount one on an engine
reached over the network (another machine, a swarm's nodes) is refused before anything is written, naming the
field, rather than left to fail on the nodes (``check_reach``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..core import acl as acls
from ..core.errors import BadRequest, Forbidden, NotFound
from ..core.time import now_ts
from ..data import embedded_store
from ..data.base import StorageError
from ..drivers.base import MountSpec
from ..resources import deployment as deployments
from ..resources.base import Ctx, Services
from ..resources.data_object import (LOCAL_STORAGE, LOCAL_STORAGE_CREDENTIAL, MinioCredential, check_bucket,
                                     public_base_of, store_of)
from ..store import filter as cimi_filter
from ..store.db import Tx
from ..store.query import Query
from . import Failed


# -- what the deployment may read (resolved at start, as the starting user) ------------------------

MAX_SELECTED = 10_000
NETWORK_SCHEMES = frozenset({"tcp", "http", "https", "ssh"})  # an engine on another machine, as far as we know
KINDS = {"records": ("data-record", "records-ids"), "objects": ("data-object", "objects-ids")}


@dataclass
class Selection:
    records: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)  # chosen directly, not through records
    mounts: list[dict[str, Any]] = field(default_factory=list)
    described: list[str] = field(default_factory=list)  # ids of the objects the records describe


def _filtered(ctx: Ctx, tx: Tx, rtype: str, kind: str, spec: Any) -> list[str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("filter"), str):
        raise BadRequest(f"each data.{kind}.filters entry needs a 'filter'")
    if spec.get("data-type", rtype) != rtype:  # the type the filter is about
        return []
    text = f"({spec['filter']})"
    if spec.get("time-start"):
        text += f" and timestamp>='{spec['time-start']}'"
    if spec.get("time-end"):
        text += f" and timestamp<'{spec['time-end']}'"
    claims = None if ctx.authn.is_admin else ctx.authn.claims
    return tx.ids(Query(rtype, cimi_filter.parse(text), claims, limit=MAX_SELECTED))


def selected_ids(ctx: Ctx, tx: Tx, deployment: dict[str, Any], kind: str = "records") -> list[str]:
    rtype, ids_key = KINDS[kind]
    ids = list((deployment.get("data-records") or {}).keys()) if kind == "records" else []
    chosen = (deployment.get("data") or {}).get(kind) or {}
    if not isinstance(chosen, dict):
        raise BadRequest(f"data.{kind} must be a map with '{ids_key}' and/or 'filters'")
    ids += list(chosen.get(ids_key) or [])
    for spec in chosen.get("filters") or []:
        ids += _filtered(ctx, tx, rtype, kind, spec)
    return list(dict.fromkeys(ids))


def _readable(ctx: Ctx, tx: Tx, rtype: str, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for rid in ids:
        doc = tx.get(rid) if isinstance(rid, str) and rid.startswith(rtype + "/") else None
        if doc is None:
            raise NotFound.for_resource(str(rid))
        if not acls.has(doc["acl"], ctx.authn, "view-data"):
            raise Forbidden.for_resource(rid)
        out.append(doc)
    return out


def resolve(ctx: Ctx, tx: Tx, deployment: dict[str, Any]) -> Selection:
    """The selected records and objects, each readable by the user who starts, and their buckets' mounts."""
    records = _readable(ctx, tx, "data-record", selected_ids(ctx, tx, deployment, "records"))
    objects = _readable(ctx, tx, "data-object", selected_ids(ctx, tx, deployment, "objects"))
    described = [obj["id"] for record in records for obj in objects_of(ctx, tx, record)]
    return Selection(records, objects, _plan(ctx, tx, records, objects), list(dict.fromkeys(described)))


def check_reach(deployment: dict[str, Any], infra: dict[str, Any] | None, selection: Selection) -> None:
    """A 400 naming the field when the selection has buckets to mount and the engine is reached over the
    network: a bind of Dockyard's disk would name a path that machine, or a swarm's nodes, do not have."""
    infra = infra or {}
    endpoint = str(infra.get("endpoint") or "")
    if not selection.mounts or urlparse(endpoint).scheme not in NETWORK_SCHEMES:
        return
    field_name = "data-records" if deployment.get("data-records") else "data"
    buckets = ", ".join(f"'{m['bucket']}'" for m in selection.mounts)
    where = f"{infra.get('name') or infra.get('id')} ({endpoint})"
    raise BadRequest(f"{field_name}: the bucket{'s' if len(selection.mounts) > 1 else ''} {buckets} cannot be "
                     f"mounted on {where}: Dockyard mounts buckets from its own disk, which an engine on another "
                     f"machine does not see. Launch on an engine of this machine, or without data")


def _plan(ctx: Ctx, tx: Tx, records: list[dict[str, Any]], objects: list[dict[str, Any]],
          ) -> list[dict[str, Any]]:
    """One mount per (store, bucket, target), holding the object keys selected in it."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for record in records:
        bucket = record.get("data:bucket")
        if not isinstance(bucket, str) or not bucket:
            continue
        target = (record.get("mount") or {}).get("target") or f"/mnt/{bucket}"
        keys = groups.setdefault((record["infrastructure-service"], bucket, target), [])
        if isinstance(record.get("data:object"), str):
            keys.append(record["data:object"])
    stores: dict[str, str] = {}  # credential -> its infrastructure-service: objects mostly share a few
    for obj in objects:
        cred = obj["credential"]
        if cred not in stores:
            stores[cred] = (tx.get(cred) or {}).get("parent", "")
        groups.setdefault((stores[cred], obj["bucket"], f"/mnt/{obj['bucket']}"), []).append(obj["object"])
    mounts = []
    for (infra, bucket, target), keys in sorted(groups.items()):
        mounts.append({"infrastructure-service": infra, "credential": _credential(ctx, tx, infra, bucket),
                       "bucket": bucket, "target": target, "objects": sorted(set(keys))})
    return mounts


def _credential(ctx: Ctx, tx: Tx, infra: str, bucket: str) -> str:
    """The credential that opens ``infra`` for the starting user (who must own the bucket on the embedded store)."""
    if infra == LOCAL_STORAGE:
        check_bucket(ctx, tx, infra, bucket)
        return LOCAL_STORAGE_CREDENTIAL
    service = tx.get(infra)
    if service is not None and acls.can_view(acls.rights_of(service["acl"], ctx.authn)):
        for cred in tx.find_all("credential", "parent", infra):
            if cred.get("subtype") == MinioCredential.subtype and acls.can_view(acls.rights_of(cred["acl"], ctx.authn)):
                return cred["id"]
    raise Forbidden(f"cannot mount bucket '{bucket}': you have no S3 credential for {infra}", infra)


def _set_view(tx: Tx, doc: dict[str, Any], principal: str, granted: bool) -> None:
    acl = {k: list(v) for k, v in doc["acl"].items()}
    viewers = set(acl.get("view-data", []))
    if (principal in viewers) == granted:
        return
    viewers = viewers | {principal} if granted else viewers - {principal}
    acl["view-data"] = sorted(viewers)
    tx.replace({**doc, "acl": acls.normalise(acl), "updated": now_ts()})


def objects_of(ctx: Ctx, tx: Tx, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The data-objects a record describes: its bucket and key, in its own store, that the caller may read.

    Bucket and key alone name an object in every store at once, and anyone's: a record must not lend a
    deployment the objects of a stranger who happens to use the same names.
    """
    bucket, key = record.get("data:bucket"), record.get("data:object")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return []
    found = []
    for obj in tx.find_all("data-object", "bucket", bucket):
        if obj.get("object") != key or not acls.has(obj["acl"], ctx.authn, "view-data"):
            continue
        if (tx.get(obj["credential"]) or {}).get("parent") == record.get("infrastructure-service"):
            found.append(obj)
    return found


def grant(tx: Tx, deployment_id: str, selection: Selection) -> None:
    """``view-data`` for the deployment on exactly the selected records and objects, by id."""
    for record in selection.records:
        _set_view(tx, record, deployment_id, True)
    for obj_id in dict.fromkeys([*selection.described, *(o["id"] for o in selection.objects)]):
        obj = tx.get(obj_id)
        if obj is not None:
            _set_view(tx, obj, deployment_id, True)


def revoke(tx: Tx, deployment_id: str) -> None:
    for rtype in ("data-record", "data-object"):
        for doc in tx.find_all(rtype, "acl/view-data", deployment_id):
            _set_view(tx, doc, deployment_id, False)


# -- what is mounted ---------------------------------------------------------------------------------

IDLE = frozenset({deployments.CREATED, deployments.STOPPING, deployments.STOPPED})
INCOMING = ".incoming"  # downloads in flight, beside the buckets (a bucket name never starts with ".")


def _staging(services: Services, dep: dict[str, Any]) -> str:
    return os.path.join(os.path.abspath(services.settings["data-dir"]), "staging", dep["id"].split("/", 1)[1])


def mounts_for(services: Services, dep: dict[str, Any]) -> tuple[MountSpec, ...]:
    """The deployment's ``data-mounts``, as its start decided them (and checked them, as the starting user)."""
    return tuple(_mount(services, dep, m) for m in dep.get("data-mounts") or [])


def _mount(services: Services, dep: dict[str, Any], plan: dict[str, Any]) -> MountSpec:
    bucket = plan["bucket"]
    try:
        if plan["infrastructure-service"] == LOCAL_STORAGE:
            store = embedded_store(services.settings["data-dir"], services.keys.signing, "")
            store.ensure_bucket(bucket)
            path = store.local_path(bucket)
        else:
            path = _stage(services, dep, plan)
    except StorageError as exc:
        raise Failed.of(exc, f"cannot mount bucket '{bucket}': ") from exc
    return MountSpec("bind", plan["target"], path, read_only=True)


def _stage(services: Services, dep: dict[str, Any], plan: dict[str, Any]) -> str:
    bucket, infra_id = plan["bucket"], plan["infrastructure-service"]
    with services.store.read() as tx:
        infra = tx.get(infra_id)
        cred = tx.get(plan["credential"])
    if infra is None or cred is None or cred.get("parent") != infra_id:
        raise Failed(f"cannot mount bucket '{bucket}': the credential for {infra_id} is gone")
    store = store_of(services, infra, cred, public_base_of(services))
    root = os.path.join(_staging(services, dep), bucket)
    incoming = os.path.join(_staging(services, dep), INCOMING)
    for key in plan.get("objects") or []:
        path = os.path.normpath(os.path.join(root, key))
        if not path.startswith(root + os.sep):
            raise Failed(f"object key '{key}' leaves its bucket")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(_download(store, bucket, key, incoming), path)
    os.makedirs(root, exist_ok=True)
    return root


def _download(store: Any, bucket: str, key: str, incoming: str) -> str:
    """The object's bytes in a file of this attempt's own, beside (not in) the mounted bucket: a retried job
    may run while the attempt whose lease it took still writes, and a killed one leaves nothing in sight."""
    os.makedirs(incoming, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=incoming, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in store.get(bucket, key):
                out.write(chunk)
    except BaseException:
        os.unlink(part)
        raise
    return part


def discard(services: Services, dep: dict[str, Any]) -> None:
    shutil.rmtree(_staging(services, dep), ignore_errors=True)


def discard_if_idle(services: Services, deployment_id: str) -> None:
    """Remove what a start staged for a deployment that no start or update can be using: gone, created,
    stopping or stopped. (A start overtaken by a stop, or killed and run again after the stop, may stage after
    the stop discarded.) The check and the removal hold the deployment, so no start begins between them."""
    with services.store.write() as tx:
        dep = tx.get(deployment_id, for_update=True)
        if dep is None or dep["state"] in IDLE:
            discard(services, {"id": deployment_id})
