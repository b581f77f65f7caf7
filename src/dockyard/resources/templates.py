"""Templated creation (``{"template": {"href": "<type>-template/<name>", ...}}``) and the template types.

Templates are ordinary read-only documents, seeded at start, so clients search and read them like any
other resource. A template names a ``method``; the target type maps methods to the code that builds the
resource.
"""

from __future__ import annotations

from typing import Any

from ..core.authn import ADMIN, ANON
from ..core.errors import BadRequest
from ..core.time import now_ts
from ..core import acl as acls
from ..store.db import Tx
from .attributes import COMMON, Attr, Schema, anything, string
from .base import Ctx, TemplateType

TEMPLATE_SCHEMA = COMMON.extend(
    Attr("method", string(), required=True),
    Attr("instance", string()),
    Attr("subtype", string()),
    Attr("group", string()),
    Attr("order", anything),
    Attr("icon", string()),
    open=True,
)


def template_type(type_name: str) -> TemplateType:
    cls = type(type_name.title().replace("-", ""), (TemplateType,), {
        "name": type_name,
        "schema": TEMPLATE_SCHEMA,
        "collection_acl": {"query": [ANON]},
    })
    return cls()


def template_doc(type_name: str, instance: str, method: str, **fields: Any) -> dict[str, Any]:
    ts = now_ts()
    return {"id": f"{type_name}/{instance}", "resource-type": type_name, "created": ts, "updated": ts,
            "method": method, "instance": instance,
            "acl": acls.normalise({"owners": [ADMIN], "view-data": [ANON]}), **fields}


def resolve(ctx: Ctx, tx: Tx, body: dict[str, Any], template_type_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(template document, the user's template parameters merged over it)."""
    tpl = body.get("template")
    if not isinstance(tpl, dict):
        raise BadRequest("the request body needs a 'template' map with an 'href'")
    href = tpl.get("href")
    if not isinstance(href, str) or not href.startswith(template_type_name + "/"):
        raise BadRequest(f"template 'href' must be the id of a {template_type_name}")
    doc = tx.get(href)
    # as Nuvla's std-crud/resolve-hrefs: a bad href is a bad request
    if doc is None:
        raise BadRequest(f"requested href not found: {href}")
    if "view-data" not in acls.rights_of(doc["acl"], ctx.authn):
        raise BadRequest(f"requested href cannot be accessed: {href}")
    merged = {k: v for k, v in doc.items() if k not in COMMON.by_name or k in ("name", "description")}
    merged.update({k: v for k, v in tpl.items() if k != "href"})
    return doc, merged


def seed(tx: Tx, docs: list[dict[str, Any]]) -> None:
    """Create or refresh the built-in templates (their content follows the code)."""
    for doc in docs:
        old = tx.get(doc["id"])
        if old is not None:
            tx.replace({**doc, "created": old["created"]})
        else:
            tx.insert(doc)


__all__ = ["Schema", "resolve", "seed", "template_doc", "template_type"]
