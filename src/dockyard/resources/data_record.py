"""Data records (an open schema of metadata about data), the key prefixes they may use, and data sets.

Any key written ``prefix:name`` (``data:bucket``, ``gnss:mission``), at any depth, needs a registered
``data-record-key-prefix`` with that prefix, or the request is refused with 406 as Nuvla does. Every
attribute of a record is indexed, so searches by metadata and time stay index look-ups.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.authn import ADMIN, DEPLOYMENT, USER
from ..core.errors import Conflict, NotAcceptable
from ..store import filter as cimi_filter
from ..store.db import Tx
from .attributes import COMMON, Attr, Invalid, any_map, described, integer, list_of, number, string, timestamp
from .base import Ctx, ResourceType

PREFIX_RE = r"^[a-z]([a-z0-9-]*[a-z0-9])?$"


@described({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3})
def _location(value: Any) -> Any:
    list_of(number(), min_len=2, max_len=3)(value)
    return value


@described({"type": "string", "pattern": "^[0-9a-fA-F]{32}$"})
def _md5(value: Any) -> Any:
    string(pattern=r"^[0-9a-fA-F]{32}$")(value)
    return value


@described({"type": "object", "required": ["type", "coordinates"],
            "properties": {"type": {"type": "string", "enum": ["Point", "Polygon", "MultiPolygon"]}}})
def _geometry(value: Any) -> Any:
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon", "Point"):
        raise Invalid("must be a GeoJSON Point, Polygon or MultiPolygon")
    if "coordinates" not in value:
        raise Invalid("must have coordinates")
    return value


RECORD_SCHEMA = COMMON.extend(
    Attr("infrastructure-service", string(pattern=r"^infrastructure-service/[a-zA-Z0-9-]+(_\d+)?$"), required=True),
    Attr("location", _location),
    Attr("timestamp", timestamp),
    Attr("bytes", integer(0)),
    Attr("content-type", string()),
    Attr("md5sum", _md5),
    Attr("geometry", _geometry),
    Attr("mount", any_map),
    open=True,
)

PREFIX_SCHEMA = COMMON.extend(
    Attr("prefix", string(pattern=PREFIX_RE, max_len=100), required=True, immutable=True),
    Attr("uri", string(max_len=2000), required=True),
)

SET_SCHEMA = COMMON.extend(
    Attr("module-filter", string(max_len=20000)),
    Attr("data-object-filter", string(max_len=20000)),
    Attr("data-record-filter", string(max_len=20000)),
)


def prefixes_used(doc: Any, found: set[str] | None = None) -> set[str]:
    """Every ``prefix`` of a ``prefix:name`` key, at any depth."""
    found = set() if found is None else found
    if isinstance(doc, dict):
        for key, value in doc.items():
            if ":" in key:
                found.add(key.split(":", 1)[0])
            prefixes_used(value, found)
    elif isinstance(doc, list):
        for item in doc:
            prefixes_used(item, found)
    return found


def check_prefixes(tx: Tx, doc: dict[str, Any]) -> None:
    for prefix in sorted(prefixes_used(doc)):
        if not re.match(PREFIX_RE, prefix) or tx.find_one("data-record-key-prefix", "prefix", prefix) is None:
            raise NotAcceptable("resource uses keys with undefined prefixes", doc.get("id"))


class DataRecord(ResourceType):
    name = "data-record"
    schema = RECORD_SCHEMA
    collection_acl = {"query": [USER, DEPLOYMENT], "add": [USER], "bulk-delete": [USER]}

    def default_acl(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, list[str]]:
        return {"owners": [ADMIN], "edit-acl": [ctx.authn.active_claim or ADMIN]}

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        check_prefixes(tx, doc)

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        check_prefixes(tx, new)


class DataRecordKeyPrefix(ResourceType):
    name = "data-record-key-prefix"
    schema = PREFIX_SCHEMA
    collection_acl = {"query": [USER, DEPLOYMENT], "add": [USER]}

    def default_acl(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, list[str]]:
        # prefixes are a shared vocabulary: everyone may read them
        return {"owners": [ctx.authn.active_claim or ADMIN], "view-data": [USER, DEPLOYMENT]}

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        if tx.find_one("data-record-key-prefix", "prefix", doc["prefix"]) is not None:
            raise Conflict(f"prefix '{doc['prefix']}' already exists", doc["id"])


class DataSet(ResourceType):
    name = "data-set"
    schema = SET_SCHEMA
    collection_acl = {"query": [USER], "add": [USER], "bulk-delete": [USER]}

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        for key in ("module-filter", "data-object-filter", "data-record-filter"):
            if key in doc:
                cimi_filter.parse(doc[key])  # a bad filter is refused now, not when the set is used

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.before_add(ctx, tx, new)
