"""Sessions: login with a password or an API key, kept server-side.

The cookie holds ``<session uuid>.<random token>``; the session document keeps only the token's digest.
Because every request looks its session up, logging out, deleting the API key a session was opened with,
or deleting its user ends the session on the very next request (Nuvla's stateless cookies cannot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core import authn as principals
from ..core import crypto, ids
from ..core.authn import ANON, USER, AuthInfo
from ..core.errors import BadRequest, Forbidden
from ..core.time import now, now_ts, parse_ts, ts_in
from ..store.db import Tx
from . import templates
from .attributes import COMMON, Attr, any_map, href, string, timestamp
from .base import Action, Ctx, ResourceType, Reply
from .params import SearchParams
from ..store import filter as cimi_filter

if TYPE_CHECKING:
    from .base import Services

COOKIE = "com.sixsq.nuvla.cookie"

SCHEMA = COMMON.extend(
    Attr("method", string(), required=True, server=True),
    Attr("template", any_map, required=True, server=True),
    Attr("expiry", timestamp, required=True, server=True),
    Attr("identifier", string(), server=True),
    Attr("user", string(), server=True),
    Attr("roles", string(), server=True),
    Attr("active-claim", string(), server=True),
    Attr("client-ip", string(), server=True),
    Attr("credential", href("credential"), server=True),
    Attr("token-digest", string(), server=True, hidden=True),
)


def template_docs() -> list[dict[str, Any]]:
    return [
        templates.template_doc("session-template", "password", "password", name="Password",
                               description="login with a username and password",
                               username="username", password="password", order=0, group="Login"),
        templates.template_doc("session-template", "api-key", "api-key", name="API key",
                               description="login with an API key and secret",
                               key="key", secret="secret", order=1, group="Login"),
    ]


class Session(ResourceType):
    name = "session"
    schema = SCHEMA
    collection_acl = {"query": [ANON], "add": [ANON]}
    templated = True
    editable = False

    def __init__(self) -> None:
        self.actions = (
            Action("switch-group", switch_group),
            Action("get-groups", get_groups),
        )
        super().__init__()

    def before_write(self, ctx: Ctx, body: dict[str, Any]) -> None:
        """A password is checked before the login's write transaction, not while holding it. Its reads need no
        snapshot: ``prepare`` reads everything again inside the write."""
        with ctx.store.read(snapshot=False) as tx:
            tpl, params = templates.resolve(ctx, tx, body, "session-template")
            if tpl["method"] != "password":
                return
            _, password, _, cred = _password_credential(tx, params)
        if cred is not None:
            stored = cred.get("hash", "")
            ctx.scratch["password-check"] = (cred["id"], stored, crypto.verify_password(stored, password))

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        _read_ahead(tx, body)
        tpl, params = templates.resolve(ctx, tx, body, "session-template")
        method = tpl["method"]
        if method == "password":
            identity, roles, extra = _password_login(ctx, tx, params)
        elif method == "api-key":
            identity, roles, extra = _api_key_login(ctx, tx, params)
        else:
            raise BadRequest(f"unknown login method {method!r}")
        sid = ids.new_id("session")
        token = crypto.new_token()
        ttl = ctx.services.settings["session-ttl"]
        claims = sorted(set(roles) | {identity, ANON, sid})
        ctx.scratch["session-token"] = token
        doc = {
            "id": sid, "method": method, "template": {"href": tpl["id"]}, "expiry": ts_in(ttl),
            "user": identity, "roles": " ".join(claims), "active-claim": identity,
            "token-digest": crypto.keyed_digest(ctx.services.keys.digest, token),
            "acl": {"owners": [sid]}, **extra,
        }
        if ctx.client_ip:
            doc["client-ip"] = ctx.client_ip
        for key in ("name", "description", "tags"):
            if key in body:
                doc[key] = body[key]
        return doc

    def after_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], reply: Reply) -> None:
        reply.cookie = _cookie_value(doc["id"], ctx.scratch.pop("session-token"))
        reply.cookie_max_age = ctx.services.settings["session-ttl"]

    def after_delete(self, ctx: Ctx, doc: dict[str, Any], reply: Reply) -> None:
        if ctx.authn.session_id == doc["id"]:
            reply.cookie = ""

    def restrict_search(self, ctx: Ctx, params: SearchParams) -> SearchParams:
        """As Nuvla: a session search shows the caller's own session and nothing else."""
        own = cimi_filter.parse(f"id='{ctx.authn.session_id or 'session/none'}'")
        params.filter = own if params.filter is None else cimi_filter.And((own, params.filter))
        return params


def _read_ahead(tx: Tx, body: dict[str, Any]) -> None:
    """PostgreSQL: an API-key login reads its template and its key in one statement (one round trip, not two).
    What is read is checked exactly as if each were read alone."""
    tpl = body.get("template")
    if tx.dialect != "postgresql" or not isinstance(tpl, dict):
        return
    href, key = tpl.get("href"), tpl.get("key")
    if isinstance(href, str) and isinstance(key, str) and key:
        tx.prefetch([href, key if key.startswith("credential/") else "credential/" + key])


def _cookie_value(session_id: str, token: str) -> str:
    return f"{session_id.split('/', 1)[1]}.{token}"


def _password_credential(tx: Tx, params: dict[str, Any],
                         ) -> tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]:
    """(username, password, the user, their password credential) of a password login's parameters."""
    username, password = params.get("username"), params.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise BadRequest("a password login needs 'username' and 'password'")
    ident = tx.get("user-identifier/" + ids.name_uuid(username))
    user = tx.get(ident["parent"]) if ident else None
    cred = tx.get(user.get("credential-password", "")) if user else None
    return username, password, user, cred


def _password_login(ctx: Ctx, tx: Tx, params: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    username, password, user, cred = _password_credential(tx, params)
    refused = Forbidden(f"invalid credentials for '{username}'", None)
    if user is None or cred is None:
        raise refused
    stored = cred.get("hash", "")
    checked = ctx.scratch.pop("password-check", None)  # by before_write, outside this transaction
    if checked is not None and checked[:2] == (cred["id"], stored):
        ok = checked[2]
    else:  # the password changed in between: check again, here (rare)
        ok = crypto.verify_password(stored, password)
    if not ok or user.get("state") != "ACTIVE":
        raise refused
    return user["id"], [USER, *group_claims(tx, user["id"])], {"identifier": username}


def _api_key_login(ctx: Ctx, tx: Tx, params: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    key, secret = params.get("key"), params.get("secret")
    if not isinstance(key, str) or not isinstance(secret, str) or not key:
        raise BadRequest("an API key login needs 'key' and 'secret'")
    key_id = key if key.startswith("credential/") else "credential/" + key
    refused = Forbidden(f"invalid credentials for '{key_id}'", None)
    cred = tx.get(key_id)
    if cred is None or cred.get("subtype") != "api-key" or "digest" not in cred:
        raise refused
    if not crypto.digest_matches(ctx.services.keys.digest, crypto.clean_api_secret(secret), cred["digest"]):
        raise refused
    expiry = cred.get("expiry")
    if expiry and parse_ts(expiry) <= now():
        raise refused
    claims = cred.get("claims") or {}
    identity = claims.get("identity")
    if not identity:
        raise refused
    if identity.startswith("user/"):
        user = tx.get(identity)
        if user is None or user.get("state") != "ACTIVE":
            raise refused
    roles = [r for r in claims.get("roles", []) if not r.startswith("session/")]
    return identity, roles, {"identifier": identity, "credential": key_id}


def group_claims(tx: Tx, user_id: str) -> list[str]:
    """Groups the user is a direct member of, with the groups above them."""
    found: set[str] = set()
    frontier = [g["id"] for g in tx.find_all("group", "users", user_id)]
    while frontier:
        gid = frontier.pop()
        if gid in found:
            continue
        found.add(gid)
        group = tx.get(gid)
        frontier.extend((group or {}).get("parents", []))
    return sorted(found)


def session_id(cookie: str | None) -> str | None:
    """The id of the session a cookie names, if it is well formed (nothing is checked)."""
    if not cookie or "." not in cookie:
        return None
    uuid_part = cookie.partition(".")[0]
    return "session/" + uuid_part if ids.UUID_PART_RE.match(uuid_part) else None


def authenticate(services: "Services", cookie: str | None) -> AuthInfo:
    """The caller behind a session cookie; anonymous when it is missing, stale or revoked."""
    sid = session_id(cookie)
    if sid is None:
        return principals.ANONYMOUS
    with services.store.read(snapshot=False) as tx:
        doc = tx.get(sid)
    return from_session(services, doc, cookie.partition(".")[2])  # type: ignore[union-attr]


def from_session(services: "Services", doc: dict[str, Any] | None, token: str) -> AuthInfo:
    if doc is None or doc.get("resource-type") != "session":
        return principals.ANONYMOUS
    if not crypto.digest_matches(services.keys.digest, token, doc.get("token-digest", "")):
        return principals.ANONYMOUS
    if doc["expiry"] <= now_ts():
        return principals.ANONYMOUS
    claims = frozenset(doc.get("roles", "").split())
    return AuthInfo(doc["user"], doc.get("active-claim") or doc["user"], claims | {ANON}, doc["id"])


def end_sessions(tx: Tx, path: str, value: str) -> None:
    """Delete every session whose ``path`` is ``value`` (its user, or the API key it was opened with)."""
    for doc in tx.find_all("session", path, value):
        tx.delete(doc["id"])


# -- actions -----------------------------------------------------------------------------------------

def switch_group(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    claim = body.get("claim")
    user = doc["user"]
    if not isinstance(claim, str):
        raise BadRequest("switch-group needs 'claim': a group id or your own user id")
    with ctx.write() as tx:
        groups = group_claims(tx, user) if user.startswith("user/") else []
        if claim != user and claim not in groups:
            raise Forbidden(f"switch group not allowed to {claim}", doc["id"])
        roles = {doc["id"], claim, USER, ANON}
        if claim == user:
            roles |= set(groups)
        elif body.get("extended"):
            roles |= set(_subgroups(tx, claim))
        current = tx.get(doc["id"], for_update=True)
        if current is None:
            raise Forbidden.for_resource(doc["id"])
        current["roles"] = " ".join(sorted(roles))
        current["active-claim"] = claim
        current["updated"] = now_ts()
        tx.replace(current, exclude=SCHEMA.unindexed)
    return Reply(200, {"status": 200, "message": f"switched to {claim}", "resource-id": doc["id"]})


def _subgroups(tx: Tx, group_id: str) -> list[str]:
    found: list[str] = []
    frontier = [group_id]
    while frontier:
        gid = frontier.pop()
        for child in tx.find_all("group", "parents", gid):
            if child["id"] not in found:
                found.append(child["id"])
                frontier.append(child["id"])
    return found


def get_groups(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    with ctx.store.read() as tx:
        groups = group_claims(tx, doc["user"]) if doc["user"].startswith("user/") else []
    return Reply(200, {"status": 200, "groups": groups})


__all__ = ["COOKIE", "Session", "authenticate", "end_sessions", "session_id", "template_docs"]
