"""Data objects: bytes in an object store, moved through pre-signed URLs as in Nuvla.

Created from ``data-object-template/generic`` in state NEW (the bucket is created if missing); ``upload``
answers ``{"uri": <pre-signed PUT>}`` and moves to UPLOADING; ``ready`` fills ``bytes`` and ``md5sum`` from
the store and moves to READY; ``download`` answers 303 with ``{"uri": <pre-signed GET>}``. Deleting the
document deletes the object (and the bucket once empty) unless asked to keep them.

The store is the one behind the object's ``credential`` (subtype ``infrastructure-service-minio``) and its
parent ``infrastructure-service`` of subtype ``s3``: the embedded directory store or an S3 endpoint.
"""

from __future__ import annotations

from typing import Any

from ..core import acl as acls
from ..core.authn import ADMIN, DEPLOYMENT, USER
from ..core.errors import BadRequest, Conflict, DockyardError, Forbidden, InsufficientStorage, NotFound
from ..data import embedded_store, s3_store
from ..data.base import ObjectStore, StorageError
from ..store.db import Tx
from . import crud, templates
from .attributes import COMMON, Attr, any_map, integer, one_of, string, timestamp
from .base import Action, Ctx, ResourceType, Reply
from .credential import METHODS, Method
from .data_record import _location, _md5

NEW, UPLOADING, READY = "NEW", "UPLOADING", "READY"
LOCAL_STORAGE = "infrastructure-service/local-storage"
LOCAL_STORAGE_CREDENTIAL = "credential/local-storage"
BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
DEFAULT_TTL_MINUTES = 15
BUCKET_OWNER = "embedded-bucket-owner:"  # meta key prefix: the claim a bucket of the embedded store belongs to

SCHEMA = COMMON.extend(
    Attr("subtype", string(), required=True, immutable=True),
    Attr("state", one_of(NEW, UPLOADING, READY), required=True, server=True),
    Attr("object", string(max_len=1024), required=True, immutable=True),
    Attr("bucket", string(pattern=BUCKET_RE), required=True, immutable=True),
    Attr("credential", string(pattern=r"^credential/[a-zA-Z0-9-]+$"), required=True, immutable=True),
    Attr("template", any_map, server=True),
    Attr("content-type", string()),
    Attr("bytes", integer(0)),
    Attr("md5sum", _md5),
    Attr("timestamp", timestamp),
    Attr("location", _location),
)


class StorageFailed(DockyardError):
    status = 502


def template_docs() -> list[dict[str, Any]]:
    return [templates.template_doc("data-object-template", "generic", "generic", name="Generic data object",
                                   description="an object in an S3 bucket", subtype="generic",
                                   bucket="bucket", object="object", credential="credential/uuid")]


class MinioCredential(Method):
    """Access to an S3 endpoint; the secret key is encrypted at rest and never returned."""

    method = "infrastructure-service-minio"
    subtype = "infrastructure-service-minio"
    name = "S3 credential"
    description = "access key and secret key of an S3-compatible store"
    template_fields = {"access-key": "", "secret-key": ""}

    def build(self, ctx: Ctx, tx: Tx, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("parent")
        infra = tx.get(parent) if isinstance(parent, str) else None
        if infra is None or infra.get("subtype") != "s3":
            raise BadRequest("template attribute 'parent' must be the id of an s3 infrastructure-service")
        if not acls.can_view(acls.rights_of(infra["acl"], ctx.authn)):
            raise Forbidden.for_resource(parent)
        access, secret = params.get("access-key"), params.get("secret-key")
        for key, value in (("access-key", access), ("secret-key", secret)):
            if not isinstance(value, str) or not value.strip():
                raise BadRequest(f"template attribute '{key}' is required")
        return {"parent": parent, "access-key": access, "secret-key": ctx.services.keys.cipher.encrypt(secret)}


METHODS[MinioCredential.method] = MinioCredential()


def store_for(ctx: Ctx, tx: Tx, credential_id: str) -> ObjectStore:
    """The object store a credential opens; the caller must be able to use (view) the credential."""
    cred = tx.get(credential_id)
    if cred is None or cred.get("subtype") != MinioCredential.subtype:
        raise BadRequest(f"{credential_id} is not an S3 credential")
    if not acls.can_view(acls.rights_of(cred["acl"], ctx.authn)) and not ctx.authn.is_admin:
        raise Forbidden.for_resource(credential_id)
    infra = tx.get(cred["parent"])
    if infra is None:
        raise NotFound.for_resource(cred["parent"])
    return store_of(ctx.services, infra, cred, public_base(ctx))


def store_of(services: Any, infra: dict[str, Any], cred: dict[str, Any], base: str) -> ObjectStore:
    """The store behind an s3 infrastructure-service, opened with ``cred``: the embedded store for
    ``infrastructure-service/local-storage`` (chosen by id: see :mod:`dockyard.data`), else S3 through boto3."""
    if infra["id"] == LOCAL_STORAGE:
        return embedded_store(services.settings["data-dir"], services.keys.signing, base)
    return s3_store(infra["endpoint"], cred.get("access-key", ""),
                    services.keys.cipher.decrypt(cred.get("secret-key", "")))


def check_bucket(ctx: Ctx, tx: Tx, infra_id: str, bucket: str) -> None:
    """Refuse a bucket of the embedded store that belongs to another account.

    The embedded store is one namespace that every user reaches through one shared credential, so the
    store itself cannot keep users apart as an S3 service does with per-user keys. Dockyard does: a bucket
    belongs to the active claim that first used it (kept in the store's ``meta``, also after the bucket is
    emptied, so that nobody can take over a name that records still point at), and only callers holding that
    claim may put objects in it, or mount it into a deployment. Admins may use any bucket.
    """
    if infra_id != LOCAL_STORAGE:
        return
    claim = ctx.authn.active_claim or ctx.authn.user_id or ""
    owner = tx.meta(BUCKET_OWNER + bucket, claim)  # an admin's first use claims the bucket too
    if owner not in ctx.authn.claims and not ctx.authn.is_admin:
        raise Forbidden(f"bucket '{bucket}' of the embedded object store belongs to another account: "
                        f"choose another bucket name")


def public_base(ctx: Ctx) -> str:
    configured = ctx.services.settings["public-url"]
    return configured.rstrip("/") if configured else ctx.endpoint


def public_base_of(services: Any) -> str:
    """Where this server's own URLs point when no request says (workers)."""
    configured = services.settings["public-url"]
    return configured.rstrip("/") if configured else f"http://127.0.0.1:{services.settings['port']}"


def _storage(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except StorageError as exc:
        if exc.reason == "full":
            raise InsufficientStorage(f"object store: {exc.message}") from None
        raise StorageFailed(f"object store: {exc.message}") from None


class DataObject(ResourceType):
    name = "data-object"
    schema = SCHEMA
    collection_acl = {"query": [USER, DEPLOYMENT], "add": [USER], "bulk-delete": [USER]}
    templated = True

    def __init__(self) -> None:
        self.actions = (
            Action("upload", upload, available=lambda d: d["state"] in (NEW, UPLOADING)),
            Action("ready", ready, available=lambda d: d["state"] == UPLOADING),
            Action("download", download, right="view-data", available=lambda d: d["state"] == READY),
        )
        super().__init__()

    def default_acl(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, list[str]]:
        return {"owners": [ADMIN], "edit-acl": [ctx.authn.active_claim or ADMIN]}

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        tpl, params = templates.resolve(ctx, tx, body, "data-object-template")
        doc: dict[str, Any] = {"state": NEW, "subtype": params.get("subtype", "generic"),
                               "template": {"href": tpl["id"]}}
        for key in ("bucket", "object", "credential", "content-type", "bytes", "md5sum", "timestamp",
                    "location"):
            if key in params:
                doc[key] = params[key]
        for key in ("name", "description", "tags"):  # the python-library puts them in the template
            if key in tpl_params(body):
                doc[key] = params[key]
        for key in ("name", "description", "tags", "acl"):
            if key in body:
                doc[key] = body[key]
        return doc

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        store = store_for(ctx, tx, doc["credential"])
        check_bucket(ctx, tx, (tx.get(doc["credential"]) or {}).get("parent", ""), doc["bucket"])
        _storage(store.ensure_bucket, doc["bucket"])

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        # as Nuvla: the stored bytes go too, and the bucket once empty, unless the delete's body says keep
        options = ctx.scratch.get("delete-options") or {}
        if options.get("keep-s3-object") is True:
            return
        store = store_for(ctx, tx, doc["credential"])
        _storage(store.delete, doc["bucket"], doc["object"])
        if options.get("keep-s3-bucket") is not True:
            _storage(store.remove_bucket_if_empty, doc["bucket"])


def tpl_params(body: dict[str, Any]) -> dict[str, Any]:
    """What the caller wrote in the template (not what the template document itself holds)."""
    tpl = body.get("template")
    return tpl if isinstance(tpl, dict) else {}


def _ttl(body: dict[str, Any]) -> int:
    ttl = body.get("ttl", DEFAULT_TTL_MINUTES)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 7 * 24 * 60:
        raise BadRequest("attribute 'ttl' must be a number of minutes from 1 to 10080")
    return ttl * 60


def _transition(ctx: Ctx, doc: dict[str, Any], allowed: tuple[str, ...], action: str, **fields: Any) -> None:
    with ctx.write() as tx:
        current = tx.get(doc["id"], for_update=True)
        if current is None:
            raise NotFound.for_resource(doc["id"])
        if current["state"] not in allowed:
            raise Conflict(f"Action {action} cannot be called on {doc['id']} in state {current['state']}!",
                           doc["id"])
        crud.update(ctx, tx, ctx.services.types["data-object"], current, {**current, **fields})


def upload(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    ttl = _ttl(body)
    with ctx.store.read() as tx:
        store = store_for(ctx, tx, doc["credential"])
    uri = _storage(store.presign_put, doc["bucket"], doc["object"], ttl, doc.get("content-type", ""))
    _transition(ctx, doc, (NEW, UPLOADING), "upload", state=UPLOADING)
    return Reply(200, {"uri": uri})


def ready(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    with ctx.store.read() as tx:
        store = store_for(ctx, tx, doc["credential"])
    try:
        info = store.stat(doc["bucket"], doc["object"])
    except StorageError as exc:
        if exc.reason == "no-such-object":
            raise Conflict(f"{doc['id']} has no uploaded bytes yet: PUT them at the upload URI first",
                           doc["id"]) from None
        raise StorageFailed(f"object store: {exc.message}") from None
    _transition(ctx, doc, (UPLOADING,), "ready", state=READY, bytes=info.bytes, md5sum=info.md5)
    with ctx.store.read() as tx:
        stored = tx.get(doc["id"])
    return Reply(200, crud.present(ctx, rtype, stored, acls.rights_of(stored["acl"], ctx.authn)))


def download(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    ttl = _ttl(body)
    with ctx.store.read() as tx:
        store = store_for(ctx, tx, doc["credential"])
    uri = _storage(store.presign_get, doc["bucket"], doc["object"], ttl)
    return Reply(303, {"uri": uri}, {"Location": uri})
