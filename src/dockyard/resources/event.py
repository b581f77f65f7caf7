"""The ``event`` resource: the audit trail written by :mod:`dockyard.resources.events`."""

from __future__ import annotations

from ..core.authn import ADMIN, USER
from .attributes import COMMON, Attr, any_map, boolean, one_of, string, text, timestamp
from .base import ResourceType

SCHEMA = COMMON.extend(
    Attr("timestamp", timestamp, required=True),
    Attr("category", one_of("add", "edit", "delete", "action", "state", "alarm", "email", "user"), required=True),
    Attr("severity", one_of("critical", "high", "medium", "low"), required=True),
    Attr("content", any_map, required=True),
    Attr("authn-info", any_map),
    Attr("success", boolean),
    Attr("message", text(1000)),
    Attr("name", string()),
)


class Event(ResourceType):
    name = "event"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [ADMIN], "bulk-delete": [ADMIN]}
    editable = False
    log_events = False
