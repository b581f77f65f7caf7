"""Deployment parameters: named values of a deployment (ports, hostname, outputs the container sets).

The id is derived from ``parent:node-id:name`` exactly as Nuvla derives it (MD5 name-based UUID with no
namespace), so a container can compute the id of its ``jupyter-token`` and set it with one ``PUT``.
The ACL follows the deployment's, and the deployment itself (its API key) may edit the value.
"""

from __future__ import annotations

from typing import Any

from ..core import acl as acls
from ..core import ids
from ..core.authn import DEPLOYMENT, USER
from ..core.errors import Forbidden, NotFound
from ..store.db import Tx
from .attributes import COMMON, Attr, Invalid, described, string
from .base import Ctx, ResourceType

DEPLOYMENT_ROLE = DEPLOYMENT
TOKEN = string(pattern=r"^\S+$", max_len=1000)


@described({"type": "string", "nullable": True, "maxLength": 1_000_000})
def _value(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise Invalid("must be a string or null")
    if isinstance(value, str) and len(value) > 1_000_000:
        raise Invalid("must be at most 1000000 characters")
    return value


SCHEMA = COMMON.extend(
    Attr("parent", string(pattern=r"^deployment/[0-9a-f]+(-[0-9a-f]+)*$"), required=True, immutable=True),
    Attr("name", TOKEN, required=True, immutable=True),
    Attr("node-id", TOKEN, immutable=True),
    Attr("value", _value),
)


def parameter_acl(deployment: dict[str, Any]) -> dict[str, list[str]]:
    """The deployment's readers and editors, plus the deployment itself as an editor of the value."""
    dep_acl = deployment["acl"]
    return {"owners": list(dep_acl["owners"]),
            "view-acl": list(dep_acl.get("view-acl", [])),
            "view-data": list(dep_acl.get("view-data", [])),
            "edit-data": sorted(set(dep_acl.get("edit-data", [])) | {deployment["id"]})}


class DeploymentParameter(ResourceType):
    name = "deployment-parameter"
    schema = SCHEMA
    collection_acl = {"query": [USER, DEPLOYMENT_ROLE], "add": [USER], "bulk-delete": [USER]}

    def new_id(self, ctx: Ctx, doc: dict[str, Any]) -> str:
        parent, name = doc.get("parent"), doc.get("name")
        if not isinstance(parent, str) or not isinstance(name, str):
            return super().new_id(ctx, doc)
        return ids.deployment_parameter_id(parent, doc.get("node-id"), name)

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        deployment = tx.get(doc["parent"])
        if deployment is None or deployment.get("resource-type") != "deployment":
            raise NotFound.for_resource(doc["parent"])
        if not acls.can_view(acls.rights_of(deployment["acl"], ctx.authn)):
            raise Forbidden.for_resource(doc["parent"])
        doc["acl"] = acls.normalise(parameter_acl(deployment))


def upsert(ctx: Ctx, tx: Tx, deployment: dict[str, Any], name: str, value: str | None = None, *,
           node_id: str | None = None, description: str | None = None, keep_value: bool = False) -> dict[str, Any]:
    """Create the parameter, or set its value (``keep_value``: only create, never overwrite)."""
    from . import crud

    pid = ids.deployment_parameter_id(deployment["id"], node_id, name)
    existing = tx.get(pid, for_update=True)
    rtype = ctx.services.types["deployment-parameter"]
    if existing is None:
        doc: dict[str, Any] = {"id": pid, "parent": deployment["id"], "name": name,
                               "acl": parameter_acl(deployment)}
        if node_id:
            doc["node-id"] = node_id
        if description:
            doc["description"] = description
        if value is not None:
            doc["value"] = value
        return crud.insert(ctx, tx, rtype, doc)
    if keep_value or existing.get("value") == value:
        return existing
    new = dict(existing, value=value)
    return crud.update(ctx, tx, rtype, existing, new)


def of_deployment(tx: Tx, deployment_id: str) -> list[dict[str, Any]]:
    return tx.find_all("deployment-parameter", "parent", deployment_id)
