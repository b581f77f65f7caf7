"""The audit trail: an ``event`` resource for each add, edit, delete and action (who, what, when, success).

A successful change writes its event in the change's own transaction; a refused one writes it apart.
Types with ``log_events = False`` (jobs, templates) skip the events of the adds, edits and deletes their
own machinery makes; an action is always someone's request (cancelling a job) and is always recorded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..core import acl as acls
from ..core import ids
from ..core.authn import ADMIN
from ..core.errors import InsufficientStorage
from ..core.time import now_ts

if TYPE_CHECKING:
    from ..core.errors import DockyardError
    from ..store.db import Tx
    from .base import Ctx

log = logging.getLogger("dockyard.events")
SEVERITY = {"add": "low", "edit": "low", "delete": "medium", "action": "low"}


def _event(ctx: "Ctx", category: str, target: str, owners: list[str], success: bool,
           name: str | None, message: str | None = None) -> dict[str, Any] | None:
    rtype = ctx.services.types.get(target.split("/", 1)[0])
    if rtype is not None and not rtype.log_events and category != "action":
        return None
    ts = now_ts()
    viewers = sorted({p for p in [ctx.authn.active_claim, *owners] if p and p != ADMIN})
    acl = {"owners": [ADMIN]}
    if viewers:
        acl["view-data"] = viewers
    doc: dict[str, Any] = {
        "id": ids.new_id("event"), "resource-type": "event", "created": ts, "updated": ts,
        "created-by": ctx.authn.user_id or "group/nuvla-anon",
        "timestamp": ts, "category": category, "severity": SEVERITY.get(category, "low"),
        "name": name or category, "success": success,
        "content": {"resource": {"href": target}},
        "authn-info": ctx.authn.as_doc(), "acl": acls.normalise(acl),
    }
    if message:
        doc["message"] = message[:1000]
    return doc


def record(ctx: "Ctx", tx: "Tx", category: str, doc: dict[str, Any], name: str | None = None) -> None:
    event = _event(ctx, category, doc["id"], list(doc.get("acl", {}).get("owners", [])), True, name)
    if event is not None:
        tx.insert(event)


def record_failure(ctx: "Ctx", name: str, target: str, error: "DockyardError") -> None:
    """A refused or failed request by a known caller; anonymous noise is not recorded. On a full disk the
    event is only logged: the answer stays the refusal itself (a 409 must not turn into a 507)."""
    if ctx.authn.is_anonymous:
        return
    category = name if name in SEVERITY else "action"
    event = _event(ctx, category, target, [], False, name, error.message)
    if event is None:
        return
    try:
        if not isinstance(error, InsufficientStorage):  # that one's event would find no room either
            with ctx.store.write() as tx:
                tx.insert(event)
            return
    except InsufficientStorage:
        pass
    log.warning("no space to record the failure of %s on %s by %s: %s", name, target, ctx.authn.user_id,
                    error.message)
