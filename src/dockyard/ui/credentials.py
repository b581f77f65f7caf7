"""Credentials: the caller's API keys (create, with the secret shown once by the page's script; revoke),
engine credentials and registry credentials (list, add through the API's templates, check, delete).

The page is rendered from what the API would answer to the caller, so secrets never reach it: the API hides
a key's digest, a TLS key and a password (hidden attributes). The one secret a page ever shows, a new API
key's, comes in the API's answer to the script that created it and lives only in that page's DOM.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..resources import crud
from ..resources.base import Ctx
from ..store import filter as cimi_filter
from .apps import rel
from .pages import Pages, eq, search

# what the page calls each kind of credential, by the credential's subtype
ENGINE = "infrastructure-service-swarm"
REGISTRY = "infrastructure-service-registry"
STATUS = {"VALID": ("valid", "green"), "INVALID": ("invalid", "red"), "UNKNOWN": ("unknown", "grey")}


def api_keys(ctx: Ctx) -> list[dict[str, Any]]:
    """The caller's own API keys (the keys Dockyard makes for deployments have a parent and are left out)."""
    where = cimi_filter.conjoin([eq("subtype", "api-key"), cimi_filter.Comp(("parent",), "=", cimi_filter.NULL)])
    return crud.search(ctx, ctx.services.types["credential"], search(
        where, orderby=[("created", True)], last=500))["resources"]


def infrastructures(ctx: Ctx, subtype: str) -> list[dict[str, Any]]:
    return crud.search(ctx, ctx.services.types["infrastructure-service"], search(
        eq("subtype", subtype), orderby=[("name", False)], last=500))["resources"]


def credentials_of(ctx: Ctx, subtype: str, infras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Credentials of ``subtype`` with what a row shows: the infrastructure's name and endpoint, the actions."""
    found = crud.search(ctx, ctx.services.types["credential"], search(
        eq("subtype", subtype), orderby=[("name", False)], last=500))["resources"]
    by_id = {i["id"]: i for i in infras}
    rows = []
    for cred in found:
        infra = by_id.get(cred.get("parent") or "", {})
        rows.append({"cred": cred, "infra_name": infra.get("name") or cred.get("parent") or "",
                     "endpoint": infra.get("endpoint", ""), "can_check": rel(cred, "check"),
                     "can_delete": rel(cred, "delete")})
    return rows


def template_ids(ctx: Ctx) -> set[str]:
    found = crud.search(ctx, ctx.services.types["credential-template"], search(last=200, select=["id"]))
    return {t["id"] for t in found["resources"]}


def overview(ctx: Ctx) -> dict[str, Any]:
    engines = infrastructures(ctx, "swarm")
    registries = infrastructures(ctx, "registry")
    templates = template_ids(ctx)
    infra_ops = crud.search(ctx, ctx.services.types["infrastructure-service"], search(last=0))["operations"]
    return {
        "keys": api_keys(ctx),
        "engines": engines, "engine_creds": credentials_of(ctx, ENGINE, engines),
        "registries": registries, "registry_creds": credentials_of(ctx, REGISTRY, registries),
        "can_add_engine": "credential-template/" + ENGINE in templates,
        "can_add_registry": "credential-template/" + REGISTRY in templates,
        "can_add_infra": any(op.get("rel") == "add" for op in infra_ops),
        "STATUS": STATUS, "rel": rel,
    }


def routes(pages: Pages) -> list[Route]:
    async def credentials(request: Request) -> Response:
        return await pages.page(request, "credentials.html", overview, nav="credentials", title="Credentials")

    return [Route("/ui/credentials", credentials, methods=["GET"])]
