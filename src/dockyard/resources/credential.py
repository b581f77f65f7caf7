"""Credentials, created from ``credential-template/<method>``.

Each method is a small class that builds the credential from the template parameters. API keys
(``generate-api-key``) keep only a keyed digest of their secret, return the secret once, and carry a
snapshot of the creator's claims. Deleting a credential ends the sessions opened with it.
Later methods (infrastructure credentials) register themselves in :data:`METHODS`.
"""

from __future__ import annotations

from typing import Any

from ..core import acl as acls
from ..core import crypto
from ..core.authn import ADMIN, USER
from ..core.errors import BadRequest, Forbidden, NotFound
from ..core.time import ts_in
from ..store.db import Tx
from . import templates
from .attributes import COMMON, Attr, Invalid, any_map, described, integer, one_of, string, timestamp
from .base import Action, Ctx, ResourceType, Reply
from .session import end_sessions


@described({"type": "object", "required": ["identity"],
            "properties": {"identity": {"type": "string"}, "roles": {"type": "array", "items": {"type": "string"}}}})
def _claims(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("identity"), str):
        raise Invalid("must be a map with an 'identity'")
    roles = value.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Invalid("'roles' must be a list of principals")
    return value


SCHEMA = COMMON.extend(
    Attr("subtype", string(), required=True, immutable=True),
    Attr("method", string(), required=True, immutable=True),
    Attr("status", one_of("VALID", "INVALID", "UNKNOWN")),
    Attr("last-check", timestamp),
    Attr("expiry", timestamp, immutable=True),
    Attr("claims", _claims, immutable=True),
    Attr("digest", string(), server=True, hidden=True),
    Attr("hash", string(), server=True, hidden=True),
    Attr("template", any_map, server=True),
    # infrastructure credentials: public certificates are readable, private keys never returned
    Attr("ca", string(max_len=100000), immutable=True, indexed=False),
    Attr("cert", string(max_len=100000), immutable=True, indexed=False),
    Attr("key", string(max_len=100000), server=True, hidden=True),
    # object-store credentials: the access key is an identifier, the secret key is never returned
    Attr("access-key", string(max_len=1000), immutable=True),
    Attr("secret-key", string(max_len=100000), server=True, hidden=True),
    # registry credentials: the user name is readable, the password (encrypted) never returned
    Attr("username", string(max_len=1000), immutable=True),
    Attr("password", string(max_len=100000), server=True, hidden=True),
)


class Method:
    """How one template method turns parameters into a credential."""

    method = ""
    subtype = ""
    name = ""
    description = ""
    template_fields: dict[str, Any] = {}

    def build(self, ctx: Ctx, tx: Tx, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def after_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], reply: Reply) -> None:
        pass

    @staticmethod
    def parent_service(ctx: Ctx, tx: Tx, params: dict[str, Any], subtype: str | None = None) -> dict[str, Any]:
        """The template's ``parent``: an infrastructure-service the caller can see (of ``subtype``, if given)."""
        parent = params.get("parent")
        if not isinstance(parent, str) or not parent.startswith("infrastructure-service/"):
            raise BadRequest("template attribute 'parent' must be the id of an infrastructure-service")
        infra = tx.get(parent)
        if infra is None or infra.get("resource-type") != "infrastructure-service":
            raise NotFound.for_resource(parent)
        if not acls.can_view(acls.rights_of(infra["acl"], ctx.authn)):
            raise Forbidden.for_resource(parent)
        if subtype is not None and infra.get("subtype") != subtype:
            raise BadRequest(f"template attribute 'parent' must be an infrastructure-service of subtype "
                             f"{subtype}, not {infra.get('subtype')}")
        return infra


class ApiKey(Method):
    method = "generate-api-key"
    subtype = "api-key"
    name = "Generate API key"
    description = "generates an API key and its secret, returned once"
    template_fields = {"ttl": 0}

    def build(self, ctx: Ctx, tx: Tx, params: dict[str, Any]) -> dict[str, Any]:
        ttl = params.get("ttl", 0)
        try:
            integer(minimum=0)(ttl)
        except Invalid as exc:
            raise BadRequest(f"template attribute 'ttl' {exc}") from None
        secret = crypto.new_api_secret()
        ctx.scratch["secret-key"] = secret
        identity = params.get("identity") or ctx.authn.active_claim
        roles = params.get("roles") or sorted(c for c in ctx.authn.claims if not c.startswith("session/"))
        doc: dict[str, Any] = {
            "digest": crypto.keyed_digest(ctx.services.keys.digest, crypto.clean_api_secret(secret)),
            "claims": {"identity": identity, "roles": roles},
        }
        if ttl:
            try:
                doc["expiry"] = ts_in(ttl)
            except OverflowError:
                raise BadRequest("template attribute 'ttl' puts the expiry past year 9999") from None
        return doc

    def after_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], reply: Reply) -> None:
        reply.body["secret-key"] = ctx.scratch.pop("secret-key")


class HashedPassword(Method):
    """A user's password; created by the user templates, never through the API."""

    method = "hashed-password"
    subtype = "hashed-password"


class RegistryCredential(Method):
    """A user name and password for a private image registry (Nuvla's ``infrastructure-service-registry``).
    The password is kept encrypted and decrypted only where it is used (a pull, a check, a start's
    pre-flight); the ``check`` action logs in with it."""

    method = "infrastructure-service-registry"
    subtype = "infrastructure-service-registry"
    name = "Registry credential"
    description = "user name and password for a private image registry"
    template_fields = {"username": "", "password": ""}

    def build(self, ctx: Ctx, tx: Tx, params: dict[str, Any]) -> dict[str, Any]:
        infra = self.parent_service(ctx, tx, params, "registry")
        for key in ("username", "password"):
            value = params.get(key)
            if not isinstance(value, str) or not value.strip():
                raise BadRequest(f"template attribute '{key}' is required (a non-blank string)")
        return {"parent": infra["id"], "username": params["username"],
                "password": ctx.services.keys.cipher.encrypt(params["password"])}


METHODS: dict[str, Method] = {m.method: m for m in (ApiKey(), RegistryCredential())}


def template_docs() -> list[dict[str, Any]]:
    return [templates.template_doc("credential-template", m.method, m.method, subtype=m.subtype,
                                   name=m.name, description=m.description, **m.template_fields)
            for m in METHODS.values()]


class Credential(ResourceType):
    name = "credential"
    schema = SCHEMA
    collection_acl = {"query": [USER, "group/nuvla-nuvlabox"], "add": [USER, "group/nuvla-nuvlabox"]}
    templated = True

    def __init__(self, actions: tuple[Action, ...] = ()) -> None:
        self.actions = actions
        super().__init__()

    def default_acl(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, list[str]]:
        return {"owners": [ADMIN], "edit-acl": [ctx.authn.active_claim or ADMIN]}

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        tpl, params = templates.resolve(ctx, tx, body, "credential-template")
        method = METHODS.get(tpl["method"])
        if method is None:
            raise BadRequest(f"unknown credential method {tpl['method']!r}")
        if not ctx.authn.is_admin:
            params.pop("identity", None)
            params.pop("roles", None)
        doc = method.build(ctx, tx, params)
        doc.update({"subtype": method.subtype, "method": method.method, "template": {"href": tpl["id"]}})
        for key in ("name", "description", "tags", "acl", "parent"):
            if key in body:
                doc[key] = body[key]
        if "parent" in params and "parent" not in doc:
            doc["parent"] = params["parent"]
        ctx.scratch["credential-method"] = method
        return doc

    def after_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], reply: Reply) -> None:
        ctx.scratch.pop("credential-method").after_add(ctx, tx, doc, reply)

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        end_sessions(tx, "credential", doc["id"])


__all__ = ["METHODS", "Credential", "HashedPassword", "Method", "RegistryCredential", "template_docs"]
