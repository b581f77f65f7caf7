"""Infrastructures: container engines (and later registries and object stores) that deployments use.

``infrastructure-service`` documents come from ``infrastructure-service-template/generic``. A Docker
engine is subtype ``swarm`` (a plain engine or a swarm manager), reached at ``unix:///var/run/docker.sock``
or ``tcp://host:2376`` with an ``infrastructure-service-swarm`` credential (``ca``, ``cert``, ``key``; the
key is encrypted at rest and never returned). The credential's ``check`` action asks the engine, through a
job, whether it answers and whether it is a swarm.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.authn import ADMIN, USER
from ..core.errors import BadRequest
from ..data import is_embedded
from ..store.db import Tx
from . import job as jobs
from . import infrastructure_service_group as groups
from . import templates
from .attributes import COMMON, Attr, any_map, boolean, href, integer, list_of, one_of, string
from .base import Action, Ctx, ResourceType, Reply
from .credential import METHODS, Method, RegistryCredential
from .data_object import LOCAL_STORAGE, LOCAL_STORAGE_CREDENTIAL, public_base

SUBTYPES = ("swarm", "kubernetes", "registry", "helm-repo", "s3", "vpn")
STATES = ("CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "PAUSING", "PAUSED", "SUSPENDING",
          "SUSPENDED", "TERMINATING", "TERMINATED", "ERROR")

SCHEMA = COMMON.extend(
    Attr("subtype", one_of(*SUBTYPES), required=True, immutable=True),
    Attr("method", string(), required=True, server=True),
    Attr("endpoint", string(max_len=2000), required=True),
    Attr("state", one_of(*STATES)),
    Attr("swarm-enabled", boolean),
    Attr("swarm-manager", boolean),
    Attr("swarm-nodes", integer(minimum=0)),  # not Nuvla's: the node count the manager reported on check
    Attr("swarm-routing-mesh", boolean),  # not Nuvla's: whether the manager's routing mesh answered the check
    Attr("online", boolean),
    Attr("capabilities", list_of(string())),
    Attr("default", boolean, server=True),
    Attr("parent", href("infrastructure-service-group")),
    Attr("template", any_map, server=True),
)


def template_docs() -> list[dict[str, Any]]:
    return [templates.template_doc("infrastructure-service-template", "generic", "generic",
                                   name="Generic infrastructure service",
                                   description="an endpoint of a given subtype", subtype="swarm",
                                   endpoint="unix:///var/run/docker.sock")]


class InfrastructureService(ResourceType):
    name = "infrastructure-service"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [USER]}
    templated = True

    def prepare(self, ctx: Ctx, tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        tpl, params = templates.resolve(ctx, tx, body, "infrastructure-service-template")
        doc = {"method": tpl["method"], "state": "STARTED", "template": {"href": tpl["id"]}}
        for key in ("subtype", "endpoint", "parent", "capabilities", "swarm-enabled", "swarm-manager", "state"):
            if key in params:
                doc[key] = params[key]
        for key in ("name", "description", "tags", "acl"):
            if key in body:
                doc[key] = body[key]
        return doc

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        check_endpoint(ctx, doc)

    def after_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], reply: Reply) -> None:
        groups.link(tx, doc.get("parent"), doc["id"], True)

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        check_endpoint(ctx, new)
        if new.get("parent") != old.get("parent"):
            groups.link(tx, old.get("parent"), old["id"], False)
            groups.link(tx, new.get("parent"), old["id"], True)

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        for cred in tx.find_all("credential", "parent", doc["id"]):
            tx.delete(cred["id"])
        groups.link(tx, doc.get("parent"), doc["id"], False)


_REGISTRY_ENDPOINT = re.compile(r"^(https?://)?[A-Za-z0-9.-]+(:\d{1,5})?/?$")


def check_endpoint(ctx: Ctx, doc: dict[str, Any]) -> None:
    if doc["subtype"] == "swarm" and not doc["endpoint"].startswith(("unix://", "tcp://", "https://", "http://")):
        raise BadRequest("attribute 'endpoint' of a Docker engine must be unix:///path, tcp://host:port "
                         "or https://host:port")
    if doc["subtype"] == "registry" and not _REGISTRY_ENDPOINT.match(doc["endpoint"]):
        raise BadRequest("attribute 'endpoint' of a registry must be https://host[:port], http://host[:port] "
                         "(a registry Docker treats as insecure, such as one on 127.0.0.1) or host[:port]")
    if doc["subtype"] == "s3" and doc.get("id") != LOCAL_STORAGE and is_embedded(doc["endpoint"], public_base(ctx)):
        # harmless (only local-storage opens the embedded store), but surely a mistake: say so
        raise BadRequest(f"attribute 'endpoint' is Dockyard's own object store: use {LOCAL_STORAGE} and "
                         f"{LOCAL_STORAGE_CREDENTIAL} instead of registering it again")


class SwarmCredential(Method):
    """TLS material for a Docker engine; nothing is needed for a local socket."""

    method = "infrastructure-service-swarm"
    subtype = "infrastructure-service-swarm"
    name = "Docker engine credential"
    description = "TLS client certificate and key (and CA) for a Docker engine"
    template_fields = {"ca": "", "cert": "", "key": ""}

    def build(self, ctx: Ctx, tx: Tx, params: dict[str, Any]) -> dict[str, Any]:
        infra = self.parent_service(ctx, tx, params)
        doc: dict[str, Any] = {"parent": infra["id"]}
        tls = {k: params.get(k) or "" for k in ("ca", "cert", "key")}
        local = infra["endpoint"].startswith("unix://")
        for key, value in tls.items():
            if not isinstance(value, str):
                raise BadRequest(f"template attribute '{key}' must be a PEM string")
            if not value.strip() and not local and key in ("cert", "key"):
                raise BadRequest(f"template attribute '{key}' is required for a remote engine")
        if tls["ca"]:
            doc["ca"] = tls["ca"]
        if tls["cert"]:
            doc["cert"] = tls["cert"]
        if tls["key"]:
            doc["key"] = ctx.services.keys.cipher.encrypt(tls["key"])
        return doc

    def after_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], reply: Reply) -> None:
        """As Nuvla's post-add hook: a new engine credential is checked at once."""
        new_check_job(ctx, tx, doc["id"])


METHODS[SwarmCredential.method] = SwarmCredential()


def new_check_job(ctx: Ctx, tx: Tx, cred_id: str) -> dict[str, Any]:
    return jobs.create(ctx, tx, "credential_check", cred_id, acl=jobs.job_acl(ctx.authn.active_claim or ADMIN),
                       priority=50)


def credential_check(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    with ctx.write() as tx:
        job = new_check_job(ctx, tx, doc["id"])
    return Reply(202, {"status": 202, "message": f"checking {doc['id']} with async {job['id']}",
                       "resource-id": doc["id"], "location": job["id"]}, {"Location": job["id"]})


CHECK = Action("check", credential_check,
               available=lambda doc: doc.get("subtype") in (SwarmCredential.subtype, RegistryCredential.subtype))
