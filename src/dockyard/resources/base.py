"""What a resource type is: its schema, ACLs, hooks and actions, declared once per module.

The generic CRUD machinery (:mod:`dockyard.resources.crud`) serves every type from this declaration;
a type overrides only the hooks where it differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import ids
from ..core.errors import BadRequest, Conflict
from .attributes import COMMON, Schema

if TYPE_CHECKING:
    from ..core.authn import AuthInfo
    from ..core.crypto import Keys
    from ..core.settings import Settings
    from ..store.db import Store, Tx


@dataclass
class Services:
    """What every request may use; one per process."""

    store: "Store"
    settings: "Settings"
    keys: "Keys"
    types: dict[str, "ResourceType"] = field(default_factory=dict)
    # called after a transaction that queued jobs commits: wakes the workers at once
    wakers: list[Callable[[], None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def type_of(self, name: str) -> "ResourceType | None":
        return self.types.get(name)

    def wake_workers(self) -> None:
        for wake in self.wakers:
            wake()


@dataclass
class Ctx:
    """One request: who calls, from where, with which services."""

    services: Services
    authn: "AuthInfo"
    base_uri: str = "http://127.0.0.1:8200/api/"
    client_ip: str | None = None
    # values one hook hands to a later hook of the same request
    scratch: dict[str, Any] = field(default_factory=dict)
    # what must be stored with the request's next change, in its transaction (an action's audit event)
    with_change: list[Callable[["Tx"], None]] = field(default_factory=list)

    @property
    def store(self) -> "Store":
        return self.services.store

    @contextmanager
    def write(self) -> Iterator["Tx"]:
        """A write transaction of this request. What waits in ``with_change`` is written in it just before it
        commits, so that a change and its audit event are stored together or not at all."""
        with self.services.store.write() as tx:
            yield tx
            while self.with_change:
                self.with_change.pop(0)(tx)

    @property
    def endpoint(self) -> str:
        """The base URI without ``/api/``, as Nuvla's ``api-endpoint``."""
        return self.base_uri[: -len("api/")].rstrip("/") if self.base_uri.endswith("api/") else self.base_uri


@dataclass
class Reply:
    """A domain answer: the HTTP status and JSON body, plus what the transport must add."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # a session token to set as the cookie; "" revokes it
    cookie: str | None = None
    cookie_max_age: int = 0


ActionFn = Callable[[Ctx, "ResourceType", dict[str, Any], dict[str, Any]], Reply]


@dataclass(frozen=True)
class Action:
    name: str
    fn: ActionFn
    right: str = "manage"
    # whether the action is offered for this document (its state, say); shown in operations
    available: Callable[[dict[str, Any]], bool] = lambda doc: True
    # the 409 message when it is not available; default Nuvla's "operation '<a>' not allowed on <id>"
    refusal: Callable[[dict[str, Any]], str] | None = None


class ResourceType:
    """Base of every resource type. Subclasses set the class attributes and override hooks."""

    name: str = ""
    schema: Schema = COMMON
    collection_acl: dict[str, list[str]] = {}
    actions: tuple[Action, ...] = ()
    templated: bool = False
    log_events: bool = True
    editable: bool = True
    # immutable keys whose edits go through merge_immutable for admins as well
    merged_keys: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.action_map = {a.name: a for a in self.actions}

    # -- ids and defaults --------------------------------------------------------------------------

    def new_id(self, ctx: Ctx, doc: dict[str, Any]) -> str:
        """The id of a new document. Runs before validation, so a type that derives its id from attributes
        must cope with them missing or of the wrong type (a random id then: validation refuses the document)."""
        return ids.new_id(self.name)

    def default_acl(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, list[str]]:
        return {"owners": [ctx.authn.active_claim or "group/nuvla-admin"]}

    def load(self, tx: "Tx", rid: str, *, for_update: bool = False) -> dict[str, Any] | None:
        """Read one document by id (modules resolve ``module/<uuid>_<n>`` versions here)."""
        return tx.get(rid, for_update=for_update)

    # -- hooks (all but before_write run inside the write transaction) ------------------------------

    def before_write(self, ctx: Ctx, body: dict[str, Any]) -> None:
        """Slow work an add needs, done before its write transaction: on SQLite that transaction holds the
        process's one writer lock, so every other write would wait for it. A password's argon2id hash or
        check (~100-250 ms of CPU) is such work; results go to ``ctx.scratch`` for :meth:`prepare`, which
        must still be right when they are missing or stale (the stored data may change in between)."""

    def prepare(self, ctx: Ctx, tx: "Tx", body: dict[str, Any]) -> dict[str, Any]:
        """Turn the add request body into the document to store (templates are resolved here)."""
        if self.templated or "template" in body:
            if not self.templated:
                raise BadRequest(f"{self.name} is not created from a template")
        return body

    def before_add(self, ctx: Ctx, tx: "Tx", doc: dict[str, Any]) -> None:
        pass

    def after_add(self, ctx: Ctx, tx: "Tx", doc: dict[str, Any], reply: Reply) -> None:
        pass

    def before_edit(self, ctx: Ctx, tx: "Tx", old: dict[str, Any], new: dict[str, Any]) -> None:
        pass

    def merge_immutable(self, ctx: Ctx, new: dict[str, Any], key: str, value: Any) -> None:
        """An edit's body names an immutable key (dropped by the merge): what of it may still change. By
        default nothing, as Nuvla; a deployment takes its module's user-defined values this way. Keys in
        ``merged_keys`` come here for admins too (who otherwise replace immutable keys wholesale)."""

    def before_delete(self, ctx: Ctx, tx: "Tx", doc: dict[str, Any]) -> None:
        pass

    def after_delete(self, ctx: Ctx, doc: dict[str, Any], reply: Reply) -> None:
        pass

    def job_ended(self, ctx: Ctx, tx: "Tx", job: dict[str, Any]) -> None:
        """A job acting on a document of this type reached a final state (SUCCESS, FAILED or CANCELED).

        Runs as the internal identity in the transaction that stores the job's outcome, so that the
        document never shows a state its job has left behind (a deployment STARTING after its start failed).
        """

    def restrict_search(self, ctx: Ctx, params: Any) -> Any:
        """Narrow a search before it runs (sessions show only the caller's own)."""
        return params

    def can_delete(self, doc: dict[str, Any]) -> bool:
        return True

    def normalise_acl(self, ctx: Ctx, doc: dict[str, Any]) -> None:
        """Last word on the ACL before a document is stored (deployments add themselves here)."""

    def present(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, Any]:
        """Adjust a document on its way out (derived attributes)."""
        return doc

    def refuse_delete(self, doc: dict[str, Any]) -> None:
        raise Conflict(f"{doc['id']} cannot be deleted in its current state", doc["id"])


class TemplateType(ResourceType):
    """``<type>-template`` collections: read-only documents seeded at start, readable by everyone."""

    editable = False
    log_events = False

    def can_delete(self, doc: dict[str, Any]) -> bool:
        return False
