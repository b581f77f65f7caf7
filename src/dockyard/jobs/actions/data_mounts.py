"""The buckets of a deployment's data records, mounted read-only into its container.

Each distinct bucket of the selected records appears at ``/mnt/<bucket>`` (or where a record's ``mount``
says: its ``target``). The embedded store's bucket is a directory, bind-mounted as it is, so the container
sees objects as they are written. An S3 bucket is staged: the selected records' objects are downloaded into
``<data dir>/staging/<deployment uuid>/<bucket>`` before the container starts and that directory is bound —
a snapshot taken at start, holding only the selected objects, and (like every bind mount) only for an
engine on the same host as the worker. It is removed when the deployment stops.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from ...data import DirectoryStore, object_store, objects_root
from ...data.base import StorageError
from ...drivers.base import MountSpec
from ...resources.base import Services
from ...resources.data_object import LOCAL_STORAGE, public_base_of
from . import ActionFailed


def _staging(services: Services, dep: dict[str, Any]) -> str:
    return os.path.join(os.path.abspath(services.settings["data-dir"]), "staging", dep["id"].split("/", 1)[1])


def mounts_for(services: Services, dep: dict[str, Any]) -> tuple[MountSpec, ...]:
    selected = list((dep.get("data-records") or {}).keys())
    if not selected:
        return ()
    with services.store.read() as tx:
        records = [r for r in tx.get_many(selected) if r.get("resource-type") == "data-record"]
    groups: dict[tuple[str, str, str], list[str]] = {}
    for record in records:
        bucket = record.get("data:bucket")
        if not isinstance(bucket, str) or not bucket:
            continue
        target = (record.get("mount") or {}).get("target") or f"/mnt/{bucket}"
        objects = groups.setdefault((record["infrastructure-service"], bucket, target), [])
        if isinstance(record.get("data:object"), str):
            objects.append(record["data:object"])
    return tuple(_mount(services, dep, infra, bucket, target, objects)
                 for (infra, bucket, target), objects in sorted(groups.items()))


def _mount(services: Services, dep: dict[str, Any], infra: str, bucket: str, target: str,
           objects: list[str]) -> MountSpec:
    try:
        if infra == LOCAL_STORAGE:
            store = DirectoryStore(objects_root(services.settings["data-dir"]), services.keys.signing, "")
            store.ensure_bucket(bucket)
            path = store.local_path(bucket)
        else:
            path = _stage(services, dep, infra, bucket, objects)
    except StorageError as exc:
        raise ActionFailed(f"cannot mount bucket '{bucket}': {exc.message}") from None
    return MountSpec("bind", target, path, read_only=True)


def _stage(services: Services, dep: dict[str, Any], infra_id: str, bucket: str, objects: list[str]) -> str:
    with services.store.read() as tx:
        infra = tx.get(infra_id)
        creds = [c for c in tx.find_all("credential", "parent", infra_id)
                 if c.get("subtype") == "infrastructure-service-minio"]
    if infra is None or not creds:
        raise ActionFailed(f"cannot mount bucket '{bucket}': {infra_id} has no S3 credential")
    cred = creds[0]
    store = object_store(infra["endpoint"], cred.get("access-key", ""),
                         services.keys.cipher.decrypt(cred.get("secret-key", "")),
                         data_dir=services.settings["data-dir"], signing_key=services.keys.signing,
                         public_base=public_base_of(services))
    root = os.path.join(_staging(services, dep), bucket)
    for key in objects:
        path = os.path.normpath(os.path.join(root, key))
        if not path.startswith(root + os.sep):
            raise ActionFailed(f"object key '{key}' leaves its bucket")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".part", "wb") as out:
            for chunk in store.get(bucket, key):
                out.write(chunk)
        os.replace(path + ".part", path)
    os.makedirs(root, exist_ok=True)
    return root


def discard(services: Services, dep: dict[str, Any]) -> None:
    shutil.rmtree(_staging(services, dep), ignore_errors=True)
