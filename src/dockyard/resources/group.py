"""Groups of users: ``group/<identifier>``, created from ``group-template/generic``.

Members see their groups, and a login carries the claims of the groups its user belongs to (and of their
parent groups), so resources shared with a group are visible without switching to it. ``switch-group``
on the session still makes a group the active claim, the owner of what is created next.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.authn import BUILTIN_GROUPS, USER
from ..core import acl as acls
from ..core.errors import BadRequest, Conflict, Forbidden
from ..store.db import Tx
from . import templates
from .attributes import COMMON, Attr, href, list_of
from .base import Ctx, ResourceType

IDENTIFIER_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

SCHEMA = COMMON.extend(
    Attr("users", list_of(href("user"), distinct=True), required=True),
    Attr("parents", list_of(href("group"), distinct=True)),
)


def template_docs() -> list[dict[str, Any]]:
    return [templates.template_doc("group-template", "generic", "generic", name="Group",
                                   description="creates a group of users", **{"group-identifier": "identifier"})]


class Group(ResourceType):
    name = "group"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [USER]}
    templated = True

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        _, params = templates.resolve(ctx, tx, body, "group-template")
        ident = params.get("group-identifier")
        if not isinstance(ident, str) or not IDENTIFIER_RE.match(ident) or len(ident) > 100:
            raise BadRequest("template attribute 'group-identifier' must be lowercase letters, digits and "
                             "single dashes")
        gid = f"group/{ident}"
        if gid in BUILTIN_GROUPS or tx.exists(gid):
            raise Conflict.for_resource(gid)
        doc = {"id": gid, "users": []}
        for key in ("name", "description", "tags", "acl", "users", "parents"):
            if key in body:
                doc[key] = body[key]
        return doc

    def normalise_acl(self, ctx: Ctx, doc: dict[str, Any]) -> None:
        users = doc.get("users", [])
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            return  # validation refuses it
        acl = dict(doc["acl"])
        acl["view-data"] = sorted(set(acl.get("view-data", [])) | set(users))
        doc["acl"] = acl

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        self._check_parents(ctx, tx, doc, [])

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._check_parents(ctx, tx, new, old.get("parents", []))

    def _check_parents(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], kept: list[str]) -> None:
        """Members of a group log in with its parents' claims, so a new parent needs the right to
        change that parent's members (edit-data on it); otherwise anyone could join group/nuvla-admin."""
        for parent in doc.get("parents", []):
            found = tx.get(parent) if parent != doc["id"] else None
            if found is None:
                raise BadRequest(f"parent group {parent} does not exist")
            if parent not in kept and "edit-data" not in acls.rights_of(found["acl"], ctx.authn):
                raise Forbidden.for_resource(parent)

    def can_delete(self, doc: dict[str, Any]) -> bool:
        return doc["id"] not in BUILTIN_GROUPS


__all__ = ["Group", "template_docs"]
