"""Infrastructure service groups: named collections of infrastructure services.

As Nuvla, ``infrastructure-services`` lists ``[{href}]`` of the services whose ``parent`` is the group, is
dropped from input, and a group cannot be deleted while services remain linked to it (409). Nuvla computes
the list on each read; Dockyard keeps it on the group, updated in the same transaction as the service, so
that searches and the event stream show it too (a live view of a group changes when its services do).
"""

from __future__ import annotations

from typing import Any

from ..core.authn import USER
from ..core.errors import Conflict
from ..core.time import now_ts
from ..store.db import Tx
from .attributes import COMMON, Attr, anything, string
from .base import Ctx, ResourceType

SCHEMA = COMMON.extend(
    Attr("documentation", string(pattern=r"^https?://")),
    Attr("infrastructure-services", anything, server=True),
)


class InfrastructureServiceGroup(ResourceType):
    name = "infrastructure-service-group"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [USER], "bulk-delete": [USER]}

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        return {**super().prepare(ctx, tx, body), "infrastructure-services": []}

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        linked = tx.find_all("infrastructure-service", "parent", doc["id"])
        if linked:
            raise Conflict(f"cannot delete {doc['id']}: {len(linked)} linked services remain", doc["id"])


def link(tx: Tx, group_id: Any, service_id: str, linked: bool) -> None:
    """Add ``service_id`` to (or remove it from) the services listed on group ``group_id``, if it is a group."""
    if not isinstance(group_id, str) or not group_id.startswith(InfrastructureServiceGroup.name + "/"):
        return
    group = tx.get(group_id, for_update=True)
    if group is None or group.get("resource-type") != InfrastructureServiceGroup.name:
        return
    listed = group.get("infrastructure-services") or []
    hrefs = [h for h in listed if not (isinstance(h, dict) and h.get("href") == service_id)]
    if linked:
        hrefs.append({"href": service_id})
    if hrefs != listed:
        tx.replace({**group, "infrastructure-services": hrefs, "updated": now_ts()})
