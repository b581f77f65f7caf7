"""Infrastructure service groups: named collections of infrastructure services."""

from __future__ import annotations

from ..core.authn import USER
from .attributes import COMMON, Attr, anything, string
from .base import ResourceType

SCHEMA = COMMON.extend(
    Attr("documentation", string(pattern=r"^https?://")),
    Attr("infrastructure-services", anything, server=True),
)


class InfrastructureServiceGroup(ResourceType):
    name = "infrastructure-service-group"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [USER], "bulk-delete": [USER]}
