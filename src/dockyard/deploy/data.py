"""What a deployment reads: the buckets of its data records and objects, mounted read-only into its container.

(Which records and objects it may read, and the rights that grant it, are still
``resources.deployment_data``: the deployment's ``start`` resolves them in its own transaction.)

Each distinct bucket of the selected records and objects appears at ``/mnt/<bucket>`` (or where a record's
``mount`` says: its ``target``), as the deployment's start planned it in ``data-mounts``. The embedded
store's bucket is a directory, bind-mounted as it is, so the container sees objects as they are written
(the bucket is the starting user's own: see ``resources.data_object.check_bucket``). An S3 bucket is
staged with the starting user's credential: the selected objects are downloaded into
``<data dir>/staging/<deployment uuid>/<bucket>`` before the container starts and that directory is bound —
a snapshot taken at start, holding only the selected objects, and (like every bind mount) only for an
engine on the same host as the worker. It is removed when the deployment stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from ..data import embedded_store
from ..data.base import StorageError
from ..drivers.base import MountSpec
from ..resources import deployment as deployments
from ..resources.base import Services
from ..resources.data_object import LOCAL_STORAGE, public_base_of, store_of
from . import Failed


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
