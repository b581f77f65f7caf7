"""The singleton ``cloud-entry-point``: the base URI and the href of every collection."""

from __future__ import annotations

from typing import Any

from ..core import acl as acls
from ..core.authn import ADMIN, ANON
from .base import Ctx

CREATED = "2026-01-01T00:00:00.000Z"


def entry_point(ctx: Ctx) -> dict[str, Any]:
    return {
        "id": "cloud-entry-point",
        "resource-type": "cloud-entry-point",
        "base-uri": ctx.base_uri,
        "collections": {name: {"href": name} for name in sorted(ctx.services.types)},
        "created": CREATED,
        "updated": CREATED,
        "acl": acls.normalise({"owners": [ADMIN], "view-acl": [ANON]}),
    }
