"""The generic CIMI operations, for every resource type: add, retrieve, edit, delete, search, actions.

Each runs in one store transaction, so a failure anywhere stores nothing; the audit event of a change is
written in the same transaction as the change. An action writes through ``ctx.write()``, which stores the
action's event with whatever the action changes (a refused action records its failure apart).
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from ..core import acl as acls
from ..core.errors import BadRequest, Conflict, DockyardError, Forbidden, NotFound, UnknownAction, ValidationError
from ..core.time import now_ts
from ..store.db import Tx
from ..store.query import Query
from . import events
from .base import Action, Ctx, ResourceType, Reply
from .params import SearchParams

PROTECTED_KEYS = frozenset({"id", "resource-type", "created", "updated", "acl", "operations"})


# -- presentation ------------------------------------------------------------------------------------

def operations(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], rights: frozenset[str]) -> list[dict]:
    rid = doc["id"]
    ops = []
    if rtype.editable and acls.can_edit(rights):
        ops.append({"rel": "edit", "href": rid})
    if "delete" in rights and rtype.can_delete(doc):
        ops.append({"rel": "delete", "href": rid})
    for action in rtype.actions:
        if action.right in rights and action.available(doc):
            ops.append({"rel": action.name, "href": f"{rid}/{action.name}"})
    return ops


def present(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], rights: frozenset[str],
            select: list[str] | None = None, with_operations: bool = True) -> dict[str, Any]:
    hidden = rtype.schema.hidden_keys
    out = {k: v for k, v in acls.viewable(doc, rights).items() if k not in hidden}
    out = rtype.present(ctx, out)
    if select is not None:
        keep = set(select) | {"id"}
        out = {k: v for k, v in out.items() if k in keep}
    if with_operations:
        out["operations"] = operations(ctx, rtype, doc, rights)
    return out


def _strip_input(rtype: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    drop = rtype.schema.server_keys | rtype.schema.hidden_keys | {"operations"}
    return {k: v for k, v in body.items() if k not in drop}


def validate(rtype: ResourceType, doc: dict[str, Any]) -> dict[str, Any]:
    out, problems = rtype.schema.problems(doc)
    if problems:
        raise ValidationError(doc.get("id", rtype.name), "\n".join(problems))
    out["acl"] = acls.normalise(out["acl"])
    return out


def _normalise_acl(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any]) -> None:
    """The type's ACL hook, on a well-formed ACL only: a malformed one is left for validation to refuse."""
    acl = doc.get("acl")
    if isinstance(acl, dict) and all(isinstance(ps, list) and all(isinstance(p, str) for p in ps)
                                     for ps in acl.values()):
        rtype.normalise_acl(ctx, doc)


def _object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


# -- add ---------------------------------------------------------------------------------------------

def add(ctx: Ctx, rtype: ResourceType, body: Any) -> Reply:
    body = _object_body(body)
    if not acls.collection_allows(rtype.collection_acl, ctx.authn, "add"):
        raise Forbidden.for_resource(None)  # a collection ACL has no id: "credentials required"
    rtype.before_write(ctx, body)
    with ctx.write() as tx:
        doc = rtype.prepare(ctx, tx, _strip_input(rtype, body) if not rtype.templated else body)
        doc = insert(ctx, tx, rtype, doc)
        reply = Reply(201, {"status": 201, "message": f"{doc['id']} created", "resource-id": doc["id"]},
                      {"Location": doc["id"]})
        rtype.after_add(ctx, tx, doc, reply)
        events.record(ctx, tx, "add", doc)
    if ctx.scratch.get("new-jobs"):  # an add that queued a job (a credential's check)
        ctx.services.wake_workers()
    return reply


def insert(ctx: Ctx, tx: Tx, rtype: ResourceType, doc: dict[str, Any]) -> dict[str, Any]:
    """Complete and store a new document of this type (ids, timestamps, ACL, validation, hooks)."""
    doc = dict(doc)
    doc["id"] = doc.get("id") or rtype.new_id(ctx, doc)
    doc["resource-type"] = rtype.name
    doc["created"] = doc["updated"] = now_ts()
    doc["created-by"] = ctx.authn.user_id or "group/nuvla-anon"
    if doc.get("acl") is None:  # as Nuvla's (or acl default): an empty acl is validated, not replaced
        doc["acl"] = rtype.default_acl(ctx, doc)
    _normalise_acl(ctx, rtype, doc)
    doc = validate(rtype, doc)
    rtype.before_add(ctx, tx, doc)
    tx.insert(doc, exclude=rtype.schema.unindexed)
    return doc


# -- retrieve ----------------------------------------------------------------------------------------

def load_visible(ctx: Ctx, tx: Tx, rtype: ResourceType, rid: str, *, for_update: bool = False,
                 ) -> tuple[dict[str, Any], frozenset[str]]:
    doc = rtype.load(tx, rid, for_update=for_update)
    if doc is None or doc.get("resource-type") != rtype.name:
        raise NotFound.for_resource(rid)
    rights = acls.rights_of(doc["acl"], ctx.authn)
    if not acls.can_view(rights):
        raise Forbidden.for_resource(rid)
    return doc, rights


def retrieve(ctx: Ctx, rtype: ResourceType, rid: str, select: list[str] | None = None) -> dict[str, Any]:
    with ctx.store.read(snapshot=False) as tx:
        doc, rights = load_visible(ctx, tx, rtype, rid)
    return present(ctx, rtype, doc, rights, select)


# -- edit --------------------------------------------------------------------------------------------

def edit(ctx: Ctx, rtype: ResourceType, rid: str, body: Any, select: list[str] | None = None,
         patch: bool = False) -> dict[str, Any]:
    if not rtype.editable:
        raise Forbidden.for_resource(rid)
    with ctx.write() as tx:
        old, rights = load_visible(ctx, tx, rtype, rid, for_update=True)
        if not acls.can_edit(rights):
            raise Forbidden.for_resource(rid)
        if patch:
            body = _apply_patch(present(ctx, rtype, old, rights, with_operations=False), body)
        new = merge(ctx, rtype, old, _object_body(body), rights, select or [])
        new = update(ctx, tx, rtype, old, new)
        events.record(ctx, tx, "edit", new)
    return present(ctx, rtype, new, acls.rights_of(new["acl"], ctx.authn))


def merge(ctx: Ctx, rtype: ResourceType, old: dict[str, Any], body: dict[str, Any],
          rights: frozenset[str], select: list[str]) -> dict[str, Any]:
    """Nuvla's edit: ``old ∪ (body ∩ editable keys)``, after removing selected keys absent from the body."""
    editable = acls.editable_keys(rights)
    allowed = (lambda k: True) if editable is None else (lambda k: k in editable)
    # admins may change immutable keys, except those the type merges itself (a deployment's module values)
    immutable = set(rtype.merged_keys) if ctx.authn.is_admin else rtype.schema.immutable_keys
    body = _strip_input(rtype, body)
    # what the server manages (versions, digests, api-credentials...) cannot be removed by a select either
    keep = PROTECTED_KEYS | rtype.schema.server_keys | rtype.schema.hidden_keys
    new = dict(old)
    for key in select:
        if key not in body and key not in keep and allowed(key) and key not in immutable:
            new.pop(key, None)
    for key, value in body.items():
        if allowed(key) and key not in immutable:
            new[key] = value
        elif allowed(key):
            rtype.merge_immutable(ctx, new, key, value)
    return new


def update(ctx: Ctx, tx: Tx, rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Store an edited document: timestamps, hooks, ACL, validation. ``new`` is a complete document."""
    new["updated"] = now_ts()
    new["updated-by"] = ctx.authn.user_id or "group/nuvla-anon"
    rtype.before_edit(ctx, tx, old, new)
    _normalise_acl(ctx, rtype, new)
    new = validate(rtype, new)
    tx.replace(new, exclude=rtype.schema.unindexed)
    return new


def _apply_patch(current: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise BadRequest("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(current, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise BadRequest(f"invalid JSON patch: {exc}") from None


# -- delete ------------------------------------------------------------------------------------------

def delete(ctx: Ctx, rtype: ResourceType, rid: str, options: dict[str, Any] | None = None) -> Reply:
    """``options``: the request's body, for types whose deletion takes some (``before_delete`` reads
    ``ctx.scratch["delete-options"]``)."""
    ctx.scratch["delete-options"] = options or {}
    with ctx.write() as tx:
        doc, rights = load_visible(ctx, tx, rtype, rid, for_update=True)
        if "delete" not in rights:
            raise Forbidden.for_resource(rid)
        remove(ctx, tx, rtype, doc)
        events.record(ctx, tx, "delete", doc)
    reply = Reply(200, {"status": 200, "message": f"{rid} deleted", "resource-id": rid})
    rtype.after_delete(ctx, doc, reply)
    return reply


def remove(ctx: Ctx, tx: Tx, rtype: ResourceType, doc: dict[str, Any], *, force: bool = False) -> None:
    if not force and not rtype.can_delete(doc):
        rtype.refuse_delete(doc)
    rtype.before_delete(ctx, tx, doc)
    tx.delete(doc["id"])


# -- search ------------------------------------------------------------------------------------------

def query_for(ctx: Ctx, rtype: ResourceType, params: SearchParams, window: int) -> Query:
    claims = None if ctx.authn.is_admin else ctx.authn.claims
    offset, limit = params.paging(window)
    return Query(rtype.name, params.filter, claims, orderby=tuple(params.orderby), offset=offset,
                 limit=limit, select=tuple(params.select) if params.select is not None else None,
                 aggregations=tuple(params.aggregations))


def search(ctx: Ctx, rtype: ResourceType, params: SearchParams) -> dict[str, Any]:
    if not acls.collection_allows(rtype.collection_acl, ctx.authn, "query"):
        raise Forbidden.for_resource(None)
    params = rtype.restrict_search(ctx, params)
    query = query_for(ctx, rtype, params, ctx.services.settings["search-window"])
    with ctx.store.read() as tx:
        result = tx.search(query)
    with_ops = params.select is None or "operations" in params.select
    select = None if params.select is None else params.select
    resources = [present(ctx, rtype, doc, acls.rights_of(doc.get("acl", {}), ctx.authn), select, with_ops)
                 for doc in result.docs]
    if select is not None and "acl" not in select:
        for doc in resources:
            doc.pop("acl", None)
    return collection_body(ctx, rtype, result.count, resources, result.aggregations if params.aggregations else None)


def collection_body(ctx: Ctx, rtype: ResourceType, count: int, resources: list[dict[str, Any]],
                    aggregations: dict[str, Any] | None = None) -> dict[str, Any]:
    rights = acls.collection_rights(rtype.collection_acl, ctx.authn)
    ops = []
    if "add" in rights:
        ops.append({"rel": "add", "href": rtype.name})
    if "bulk-delete" in rights:
        ops.append({"rel": "bulk-delete", "href": rtype.name})
    body: dict[str, Any] = {"id": rtype.name, "resource-type": f"{rtype.name}-collection", "count": count,
                            "acl": rtype.collection_acl, "resources": resources, "operations": ops}
    if aggregations is not None:
        body["aggregations"] = aggregations
    return body


def bulk_delete(ctx: Ctx, rtype: ResourceType, params: SearchParams) -> Reply:
    if params.filter is None:
        raise BadRequest("Bulk request should contain a non empty cimi filter.")
    if not acls.collection_allows(rtype.collection_acl, ctx.authn, "bulk-delete"):
        raise Forbidden.for_resource(None)
    claims = None if ctx.authn.is_admin else ctx.authn.claims
    query = Query(rtype.name, params.filter, claims, acl_paths=("acl/owners", "acl/delete"))
    deleted: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    with ctx.write() as tx:
        for doc in tx.get_many(tx.ids(query)):
            if not rtype.can_delete(doc):
                failures.append({"id": doc["id"], "message": f"{doc['id']} cannot be deleted in its current state"})
                continue
            remove(ctx, tx, rtype, doc)
            events.record(ctx, tx, "delete", doc)
            deleted.append(doc)
    n = len(deleted)
    return Reply(200, {"status": 200, "message": f"{n} {rtype.name} resource{'s' if n != 1 else ''} deleted",
                       "deleted": n, "total": n + len(failures), "failures": failures})


# -- actions -----------------------------------------------------------------------------------------

def action(ctx: Ctx, rtype: ResourceType, rid: str, name: str, body: Any, method: str, uri: str) -> Reply:
    act = rtype.action_map.get(name)
    if act is None:
        raise UnknownAction(f"undefined action ({method.lower()}, [{rtype.name} {name}]) for {uri}", rid)
    with ctx.store.read() as tx:
        doc, rights = load_visible(ctx, tx, rtype, rid)
    try:
        reply = _run_action(ctx, rtype, act, doc, rights, body)
    except DockyardError as exc:
        ctx.with_change.clear()
        events.record_failure(ctx, name, rid, exc)
        raise
    if ctx.with_change:  # the action changed nothing (a download): its event is stored alone
        with ctx.write():
            pass
    if ctx.scratch.get("new-jobs"):
        ctx.services.wake_workers()
    return reply


def _run_action(ctx: Ctx, rtype: ResourceType, act: Action, doc: dict[str, Any], rights: frozenset[str],
                body: Any) -> Reply:
    """Check and run one action. Its audit event waits in ``ctx.with_change``: the action's own write
    transaction (``ctx.write()``) stores it with the change, or a failure drops it with the change."""
    rid = doc["id"]
    if act.right not in rights:
        raise Forbidden.for_resource(rid)
    if not act.available(doc):
        raise Conflict(act.refusal(doc) if act.refusal else f"operation '{act.name}' not allowed on {rid}", rid)
    body = {} if body is None else _object_body(body)
    ctx.with_change.append(lambda tx: events.record(ctx, tx, "action", doc, name=act.name))
    return act.fn(ctx, rtype, doc, body)
