"""What a store holds before anyone logs in: templates, the built-in groups and the ``admin`` user."""

from __future__ import annotations

import secrets

from ..core import acl as acls
from ..core.authn import ADMIN, BUILTIN_GROUPS, DEPLOYMENT, INTERNAL, USER
from ..core.ids import name_uuid
from ..core.time import now_ts
from . import crud, registry, templates
from .base import Ctx, Services

ADMIN_USERNAME = "admin"


def bootstrap(services: Services, admin_password: str = "") -> str | None:
    """Seed the store; returns the admin password when it was generated here (to print once)."""
    ctx = Ctx(services, INTERNAL)
    with services.store.write() as tx:
        templates.seed(tx, registry.template_docs())
        for gid in BUILTIN_GROUPS:
            if not tx.exists(gid):
                ts = now_ts()
                tx.insert({"id": gid, "resource-type": "group", "created": ts, "updated": ts,
                           "name": gid.split("/")[1], "users": [],
                           "acl": acls.normalise({"owners": [ADMIN], "view-meta": [USER]})})
        has_admin = tx.exists("user-identifier/" + name_uuid(ADMIN_USERNAME))
    if has_admin:
        return None
    generated = not admin_password
    password = admin_password or secrets.token_urlsafe(18)
    reply = crud.add(ctx, services.types["user"], {
        "template": {"href": "user-template/username-password", "username": ADMIN_USERNAME,
                     "password": password},
        "name": ADMIN_USERNAME, "description": "the administrator created on first start"})
    uid = reply.body["resource-id"]
    with services.store.write() as tx:
        group = tx.get(ADMIN, for_update=True)
        group["users"] = sorted(set(group["users"]) | {uid})
        tx.replace(group)
    return password if generated else None


LOCAL_INFRA = "infrastructure-service/local-docker"
LOCAL_CREDENTIAL = "credential/local-docker"


def register_local_engine(services: Services, endpoint: str, version: str = "") -> bool:
    """Make the local engine available to every user, once; returns whether it was registered now."""
    with services.store.write() as tx:
        if tx.exists(LOCAL_INFRA):
            return False
        ts = now_ts()
        shared = acls.normalise({"owners": [ADMIN], "view-data": [USER]})
        tx.insert({"id": LOCAL_INFRA, "resource-type": "infrastructure-service", "created": ts, "updated": ts,
                   "created-by": "internal", "name": "Local Docker engine",
                   "description": f"the Docker engine beside Dockyard{(' (' + version + ')') if version else ''}",
                   "subtype": "swarm", "method": "generic", "endpoint": endpoint, "state": "STARTED",
                   "online": True, "default": True, "acl": shared})
        tx.insert({"id": LOCAL_CREDENTIAL, "resource-type": "credential", "created": ts, "updated": ts,
                   "created-by": "internal", "name": "Local Docker engine",
                   "description": "no TLS is needed for the local socket",
                   "subtype": "infrastructure-service-swarm", "method": "infrastructure-service-swarm",
                   "parent": LOCAL_INFRA, "status": "VALID", "last-check": ts, "acl": shared})
    return True


def register_local_storage(services: Services, endpoint: str) -> None:
    """The embedded object store, usable by every user (and deployment) like any S3 store; its secret is
    random, encrypted, and never returned (the directory backend does not need it)."""
    from .data_object import LOCAL_STORAGE, LOCAL_STORAGE_CREDENTIAL

    with services.store.write() as tx:
        infra = tx.get(LOCAL_STORAGE, for_update=True)
        if infra is not None:
            if infra["endpoint"] != endpoint:  # served on another address since last start
                tx.replace({**infra, "endpoint": endpoint, "updated": now_ts()})
            return
        ts = now_ts()
        shared = acls.normalise({"owners": [ADMIN], "view-data": [USER, DEPLOYMENT]})
        tx.insert({"id": LOCAL_STORAGE, "resource-type": "infrastructure-service", "created": ts, "updated": ts,
                   "created-by": "internal", "name": "Dockyard object store",
                   "description": "objects kept in Dockyard's data directory", "subtype": "s3",
                   "method": "generic", "endpoint": endpoint, "state": "STARTED", "online": True,
                   "default": True, "acl": shared})
        tx.insert({"id": LOCAL_STORAGE_CREDENTIAL, "resource-type": "credential", "created": ts, "updated": ts,
                   "created-by": "internal", "name": "Dockyard object store",
                   "subtype": "infrastructure-service-minio", "method": "infrastructure-service-minio",
                   "parent": LOCAL_STORAGE, "access-key": "dockyard",
                   "secret-key": services.keys.cipher.encrypt(secrets.token_urlsafe(24)), "acl": shared},
                  exclude=("secret-key",))
