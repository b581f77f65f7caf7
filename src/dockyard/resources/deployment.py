"""Deployments: an app launched on an engine, with Nuvla's states, operations and rules.

``start`` creates the deployment's own API key (its secret is kept encrypted, never returned) and a
``start_deployment`` job; ``stop`` a ``stop_deployment`` job, which removes the containers and deletes
every credential whose parent is the deployment; ``delete`` removes parameters, logs and credentials.
The deployment can read itself and edit its parameters with its key; its ACL is rewritten on every edit
so that this stays true.

This module is the document: its schema, ACL, and the rules of create and edit. What moves it (the state
machine, the actions, what a job's outcome means) is ``deploy/lifecycle.py``, which the type names.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..core import acl as acls
from ..core.authn import USER
from ..core.errors import BadRequest, Conflict, Forbidden, NotFound
from ..store.db import Tx
from . import private_registry
from .attributes import COMMON, Attr, any_map, boolean, described, href, list_of, one_of, string, text
from .base import Ctx, ResourceType
from .deployment_parameter import DEPLOYMENT_ROLE, of_deployment, parameter_acl
from .module import split_version


CREATED, STARTING, STARTED, STOPPING, STOPPED = "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED"
PAUSING, PAUSED, SUSPENDING, SUSPENDED = "PAUSING", "PAUSED", "SUSPENDING", "SUSPENDED"
UPDATING, UPDATED, PENDING, ERROR = "UPDATING", "UPDATED", "PENDING", "ERROR"
STATES = (CREATED, STARTING, STARTED, STOPPING, STOPPED, PAUSING, PAUSED, SUSPENDING, SUSPENDED, UPDATING,
          UPDATED, PENDING, ERROR)

DEFAULT_CREDENTIAL = "credential/local-docker"


@described({"type": "object", "properties": {"api-key": {"type": "string"}},
            "description": "the deployment's API key (its secret is never returned)"})
def _api_credentials(value: Any) -> Any:
    return any_map(value)


SCHEMA = COMMON.extend(
    Attr("module", any_map, required=True, immutable=True, indexed=False),
    # the lifecycle's alone (Nuvla lets an edit set it): a STARTED deployment edited to STOPPED could be
    # deleted under its running container, or started again beside it
    Attr("state", one_of(*STATES), required=True, server=True),
    Attr("api-endpoint", string(max_len=2000), required=True),
    Attr("api-credentials", _api_credentials, server=True, indexed=False),
    Attr("parent", href("credential"), immutable=True),
    Attr("owner", string(), server=True),
    Attr("infrastructure-service", href("infrastructure-service"), server=True),
    Attr("infrastructure-service-name", string(), server=True),
    Attr("credential-name", string(), server=True),
    Attr("execution-mode", one_of("pull", "push", "mixed")),
    Attr("data", any_map),
    Attr("data-records", any_map),
    Attr("data-objects", list_of(string()), server=True),  # the objects chosen in `data`, resolved at start
    # where start decided to mount each selected bucket: {infrastructure-service, credential, bucket, target, objects}
    Attr("data-mounts", list_of(any_map), server=True),
    Attr("registries-credentials", list_of(string(nonblank=False))),
    Attr("status-message", text(100_000), server=True, indexed=False),
    # where the time went: queued, claimed, pulled, created, started (and stop phases)
    Attr("phases", any_map, server=True),
    # the engine's view of the task: state, exit code, restarts, since
    Attr("task", any_map, server=True),
    # whether the started service passed its app's readiness checks (absent while unknown), and why not
    Attr("ready", boolean, server=True),
    Attr("ready-message", text(10_000), server=True, indexed=False),
    Attr("module-href", string(), server=True),
)

class Deployment(ResourceType):
    name = "deployment"
    schema = SCHEMA
    collection_acl = {"query": [USER, DEPLOYMENT_ROLE], "add": [USER], "bulk-action": [USER]}
    merged_keys = frozenset({"module"})  # an admin's edit sets values by name too, not a whole new module

    # the state machine, its actions and what job outcomes mean live above this layer, in deploy/ (which
    # uses the engine drivers): declared here by name and read when the type is made
    lifecycle = "dockyard.deploy.lifecycle"

    def __init__(self) -> None:
        self._lifecycle = importlib.import_module(self.lifecycle)
        self.actions = self._lifecycle.ACTIONS
        super().__init__()

    # -- create ------------------------------------------------------------------------------------

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        module = body.get("module")
        if not isinstance(module, dict) or not isinstance(module.get("href"), str):
            raise BadRequest("a deployment needs 'module': {'href': 'module/<uuid>'}")
        cloned = ctx.scratch.pop("clone-module", None)  # a clone keeps its source's copy, as Nuvla's
        doc: dict[str, Any] = {"module": cloned or resolve_module(ctx, tx, module["href"]), "state": CREATED}
        doc["api-endpoint"] = body.get("api-endpoint") or ctx.services.extras.get("api-endpoint") or ctx.endpoint
        for key in ("name", "description", "tags", "execution-mode", "data", "data-records",
                    "registries-credentials"):
            if key in body:
                doc[key] = body[key]
        doc["parent"] = body.get("parent") or DEFAULT_CREDENTIAL
        doc["owner"] = ctx.authn.active_claim
        return doc

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        resolve_infrastructure(ctx, tx, doc)
        private_registry.check_deployment(ctx, tx, doc)

    # -- edit --------------------------------------------------------------------------------------

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        if new.get("parent") != old.get("parent"):
            resolve_infrastructure(ctx, tx, new)
        if new.get("registries-credentials") != old.get("registries-credentials"):
            private_registry.check_deployment(ctx, tx, new)
        if new.get("acl") != old.get("acl"):
            for param in of_deployment(tx, old["id"]):
                param["acl"] = acls.normalise(parameter_acl({**new, "acl": acls.normalise(new["acl"])}))
                tx.replace(param)

    def merge_immutable(self, ctx: Ctx, new: dict[str, Any], key: str, value: Any) -> None:
        """As Nuvla: a ``module`` in an edit sets the user-defined values of the deployment's copy, by name
        (``environmental-variables[].value``, ``output-parameters[].value``); the rest of it is ignored."""
        if key == "module":
            new["module"] = module_values(new["module"], value)

    def normalise_acl(self, ctx: Ctx, doc: dict[str, Any]) -> None:
        """As Nuvla on every write: the owner stays an owner and the deployment can read itself."""
        acl = {k: list(v) for k, v in doc["acl"].items()}
        owner = doc.get("owner")
        if owner and owner not in acl.get("owners", []):
            acl["owners"] = [*acl.get("owners", []), owner]
        acl["view-data"] = sorted(set(acl.get("view-data", [])) | {doc["id"]})
        doc["acl"] = acl

    def present(self, ctx: Ctx, doc: dict[str, Any]) -> dict[str, Any]:
        creds = doc.get("api-credentials")
        if creds:
            doc = {**doc, "api-credentials": {"api-key": creds.get("api-key")}}
        return doc

    # -- delete ------------------------------------------------------------------------------------

    def can_delete(self, doc: dict[str, Any]) -> bool:
        return bool(self._lifecycle.deletable(doc))

    def refuse_delete(self, doc: dict[str, Any]) -> None:
        raise Conflict(f"Action delete cannot be called on {doc['id']} in state {doc['state']}!", doc["id"])

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        self._lifecycle.delete_children(tx, doc["id"])

    def job_ended(self, ctx: Ctx, tx: Tx, job: dict[str, Any]) -> None:
        self._lifecycle.job_ended(ctx, tx, job)


def resolve_module(ctx: Ctx, tx: Tx, module_href: str) -> dict[str, Any]:
    """A full copy of the module (meta, versions, content of the chosen version) with ``href`` as given."""
    module_type = ctx.services.types["module"]
    base, _ = split_version(module_href)
    doc = module_type.load(tx, module_href)
    if doc is None:
        raise NotFound.for_resource(module_href)
    if not acls.has(doc["acl"], ctx.authn, "view-data"):
        raise Forbidden.for_resource(module_href)
    if doc["subtype"] not in ("component", "application"):
        raise BadRequest(f"only component and application modules can be deployed for now, not {doc['subtype']}")
    if "content" not in doc:
        raise BadRequest(f"{module_href} has no content to deploy")
    copy = {k: v for k, v in doc.items() if k not in ("acl", "operations")}
    copy["id"] = base
    copy["href"] = module_href
    return copy


USER_VALUES = ("environmental-variables", "output-parameters")


def module_values(module: dict[str, Any], body: Any) -> dict[str, Any]:
    """The deployment's module copy with the values an edit gives by name; an unknown name or a value that
    is not a string is a 400 naming it, and nothing changes."""
    content = body.get("content") if isinstance(body, dict) else None
    if content is None:
        return module
    if not isinstance(content, dict):
        raise BadRequest("attribute 'module.content' must be a map")
    copy = {**module, "content": dict(module.get("content") or {})}
    for kind in USER_VALUES:
        given = content.get(kind)
        if given is None:
            continue
        declared = {item.get("name"): i for i, item in enumerate(copy["content"].get(kind) or [])}
        if not isinstance(given, list) or not all(isinstance(g, dict) for g in given):
            raise BadRequest(f"attribute 'module.content.{kind}' must be a list of {{name, value}}")
        items = [dict(item) for item in copy["content"].get(kind) or []]
        for g in given:
            name, value = g.get("name"), g.get("value")
            if name not in declared:
                raise BadRequest(f"attribute 'module.content.{kind}': the app declares no '{name}'")
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"attribute 'module.content.{kind}': the value of '{name}' must be a string")
            if value:
                items[declared[name]]["value"] = value
            else:
                items[declared[name]].pop("value", None)
        copy["content"][kind] = items
    return copy


def resolve_infrastructure(ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
    cred_id = doc.get("parent")
    cred = tx.get(cred_id) if cred_id else None
    if cred is None or cred.get("resource-type") != "credential":
        if cred_id == DEFAULT_CREDENTIAL:
            raise BadRequest("no engine is registered: start Dockyard where a Docker engine runs, or give "
                             "'parent', the credential of an infrastructure-service")
        raise NotFound.for_resource(cred_id or "credential")
    if not acls.can_view(acls.rights_of(cred["acl"], ctx.authn)):
        raise Forbidden.for_resource(cred_id)
    if cred.get("subtype") != "infrastructure-service-swarm":
        raise BadRequest(f"{cred_id} is not the credential of a Docker engine")
    infra = tx.get(cred["parent"])
    if infra is None:
        raise NotFound.for_resource(cred["parent"])
    doc["infrastructure-service"] = infra["id"]
    doc["infrastructure-service-name"] = infra.get("name", infra["id"])
    doc["credential-name"] = cred.get("name", cred_id)
