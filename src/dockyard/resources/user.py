"""Users, their identifiers (usernames) and passwords.

An admin creates a user from ``user-template/username-password``; the user is active at once. The
username lives in a ``user-identifier`` whose id is derived from the name (so a login is one key look-up),
the password in a ``credential`` of subtype ``hashed-password`` (argon2id). Deleting a user deletes both
and ends the user's sessions.
"""

from __future__ import annotations

import re
from typing import Any

from ..core import crypto, ids
from ..core.authn import ADMIN, USER
from ..core.errors import BadRequest, Conflict
from ..core.time import now_ts
from ..core import acl as acls
from ..store.db import Tx
from . import templates
from .attributes import COMMON, Attr, href, one_of, string
from .base import Ctx, ResourceType
from .session import end_sessions

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
MIN_PASSWORD = 8

SCHEMA = COMMON.extend(
    Attr("state", one_of("NEW", "ACTIVE", "SUSPENDED"), required=True, immutable=True),
    Attr("method", string(), server=True),
    Attr("email", string()),
    Attr("credential-password", href("credential"), server=True),
    Attr("auth-method-2fa", one_of("none", "email", "totp"), immutable=True),
    Attr("name", string(max_len=1000), immutable=True),
)

IDENTIFIER_SCHEMA = COMMON.extend(
    Attr("identifier", string(), required=True, server=True),
    Attr("parent", href("user"), required=True, server=True),
)


def template_docs() -> list[dict[str, Any]]:
    return [templates.template_doc("user-template", "username-password", "username-password",
                                   name="Username and password",
                                   description="creates an active user with a username and password",
                                   username="username", password="password")]


class User(ResourceType):
    name = "user"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [ADMIN]}
    templated = True

    def default_acl(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, list[str]]:
        return {"owners": [ADMIN], "edit-acl": [doc["id"]]}

    def before_write(self, ctx: Ctx, body: dict[str, Any]) -> None:
        """The password is hashed before the write transaction, not while holding it."""
        with ctx.store.read() as tx:
            _, params = templates.resolve(ctx, tx, body, "user-template")
        password = params.get("password")
        if isinstance(password, str) and len(password) >= MIN_PASSWORD:
            ctx.scratch["password-hash"] = (password, crypto.hash_password(password))

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        tpl, params = templates.resolve(ctx, tx, body, "user-template")
        if tpl["method"] != "username-password":
            raise BadRequest(f"unknown user method {tpl['method']!r}")
        username, password = params.get("username"), params.get("password")
        if not isinstance(username, str) or not USERNAME_RE.match(username):
            raise BadRequest("template attribute 'username' must be 1-128 letters, digits or _.@+- "
                             "and start with a letter or digit")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise BadRequest(f"template attribute 'password' must have at least {MIN_PASSWORD} characters")
        if "repeat-password" in params and params["repeat-password"] != password:
            raise BadRequest("template attributes 'password' and 'repeat-password' differ")
        uid = ids.new_id("user")
        ident_id = "user-identifier/" + ids.name_uuid(username)
        if tx.exists(ident_id):
            raise Conflict(f"username '{username}' already exists", ident_id)
        cred_id = ids.new_id("credential")
        hashed = ctx.scratch.pop("password-hash", None)
        password_hash = hashed[1] if hashed and hashed[0] == password else crypto.hash_password(password)
        ctx.scratch["new-user"] = (ident_id, username, cred_id, password_hash)
        doc = {"id": uid, "state": "ACTIVE", "method": "username-password", "name": username,
               "credential-password": cred_id}
        for key in ("name", "description", "tags", "email"):
            if key in body:
                doc[key] = body[key]
        return doc

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        ident_id, username, cred_id, password_hash = ctx.scratch.pop("new-user")
        ts = now_ts()
        own = acls.normalise({"owners": [ADMIN], "view-meta": [doc["id"]]})
        common = {"created": ts, "updated": ts, "created-by": ctx.authn.user_id or ADMIN, "acl": own}
        tx.insert({"id": ident_id, "resource-type": "user-identifier", "identifier": username,
                   "parent": doc["id"], **common})
        tx.insert({"id": cred_id, "resource-type": "credential", "subtype": "hashed-password",
                   "method": "hashed-password", "parent": doc["id"], "hash": password_hash, **common},
                  exclude=("hash",))

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        if new.get("state") != "ACTIVE" and old.get("state") == "ACTIVE":
            end_sessions(tx, "user", old["id"])

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        for child_type in ("user-identifier", "credential"):
            for child in tx.find_all(child_type, "parent", doc["id"]):
                tx.delete(child["id"])
        for key in tx.find_all("credential", "claims/identity", doc["id"]):
            end_sessions(tx, "credential", key["id"])
            tx.delete(key["id"])
        end_sessions(tx, "user", doc["id"])


class UserIdentifier(ResourceType):
    name = "user-identifier"
    schema = IDENTIFIER_SCHEMA
    collection_acl = {"query": [ADMIN], "add": [ADMIN]}
    editable = False
    log_events = False

    def new_id(self, ctx: Ctx, doc: dict[str, Any]) -> str:
        identifier = doc.get("identifier")
        if not isinstance(identifier, str):
            return super().new_id(ctx, doc)
        return "user-identifier/" + ids.name_uuid(identifier)
