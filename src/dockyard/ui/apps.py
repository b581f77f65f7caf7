"""Apps: the catalogue (search, filters), an app's page (with the launch dialog), and the editor."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import BadRequest, NotFound
from ..resources import crud
from ..resources.base import Ctx
from ..store import filter as cimi_filter
from .pages import Pages, eq, fulltext, search

PAGE_SIZE = 60
UUID_RE = re.compile(r"^[0-9a-fA-F-]{36}$")
KINDS = {"apps": "Apps", "projects": "Projects", "all": "Apps and projects"}
OWNERS = {"any": "Anyone", "me": "Me (or the group I act as)"}


def module_id(uuid: str, version: str | None = None) -> str:
    if not UUID_RE.match(uuid):
        raise NotFound.for_resource(f"module/{uuid[:40]}")
    if version is None or version == "":
        return f"module/{uuid}"
    if not version.isdigit():
        raise BadRequest(f"version must be a number, not {version[:20]!r}")
    return f"module/{uuid}_{int(version)}"


def catalogue(ctx: Ctx, text: str, kind: str, owner: str, page: int) -> dict[str, Any]:
    where = []
    if kind == "apps":
        where.append(eq("subtype", "component"))
    elif kind == "projects":
        where.append(eq("subtype", "project"))
    if owner == "me" and ctx.authn.active_claim:
        where.append(eq("acl/owners", ctx.authn.active_claim))
    words = fulltext(text)
    if words is not None:
        where.append(cimi_filter.Or((words, cimi_filter.Comp(("path",), "==", words.value))))
    first = (page - 1) * PAGE_SIZE + 1
    found = crud.search(ctx, ctx.services.types["module"], search(
        cimi_filter.conjoin(where), orderby=[("path", False)], first=first, last=first + PAGE_SIZE - 1))
    return {"modules": found["resources"], "count": found["count"], "page": page,
            "pages": max((found["count"] + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "can_add": any(op["rel"] == "add" for op in found["operations"])}


def engines(ctx: Ctx) -> list[dict[str, Any]]:
    """The engine credentials the caller may deploy with."""
    found = crud.search(ctx, ctx.services.types["credential"], search(
        eq("subtype", "infrastructure-service-swarm"), orderby=[("name", False)], last=200))
    return found["resources"]


def projects(ctx: Ctx) -> list[str]:
    found = crud.search(ctx, ctx.services.types["module"], search(
        eq("subtype", "project"), orderby=[("path", False)], last=500, select=["path"]))
    return [m["path"] for m in found["resources"]]


def image_text(image: dict[str, Any] | None) -> str:
    """``registry/repository/image-name:tag`` as one would write it for ``docker run``."""
    if not image:
        return ""
    parts = [p for p in (image.get("registry"), image.get("repository"), image.get("image-name")) if p]
    return "/".join(parts) + (f":{image['tag']}" if image.get("tag") else "")


def rel(doc: dict[str, Any], name: str) -> bool:
    return any(op.get("rel") == name for op in doc.get("operations", []))


def routes(pages: Pages) -> list[Route]:
    async def list_apps(request: Request) -> Response:
        q = request.query_params
        text = q.get("q", "")
        kind = q.get("kind", "apps") if q.get("kind") in KINDS else "apps"
        owner = q.get("owner", "any") if q.get("owner") in OWNERS else "any"
        page = int(q["page"]) if q.get("page", "").isdigit() and int(q["page"]) > 0 else 1

        def read(ctx: Ctx) -> dict[str, Any]:
            return {"q": text, "kind": kind, "owner": owner, "KINDS": KINDS, "OWNERS": OWNERS,
                    **catalogue(ctx, text, kind, owner, page)}
        return await pages.page(request, "apps.html", read, nav="apps", title="Apps")

    async def show_app(request: Request) -> Response:
        version = request.query_params.get("version")

        def read(ctx: Ctx) -> dict[str, Any]:
            rid = module_id(request.path_params["uuid"], version)
            module = crud.retrieve(ctx, ctx.services.types["module"], rid)
            latest = module
            if version is not None:
                latest = crud.retrieve(ctx, ctx.services.types["module"], module_id(request.path_params["uuid"]))
            children: list[dict[str, Any]] = []
            if module.get("subtype") == "project":
                children = crud.search(ctx, ctx.services.types["module"], search(
                    eq("parent-path", module["path"]), orderby=[("path", False)], last=500))["resources"]
            return {"module": module, "latest": latest, "version": version, "children": children,
                    "image": image_text((module.get("content") or {}).get("image")),
                    "can_edit": rel(latest, "edit"), "engines": engines(ctx) if module.get("content") else [],
                    "uuid": request.path_params["uuid"]}
        return await pages.page(request, "app.html", read, nav="apps", title="App")

    async def edit_app(request: Request) -> Response:
        uuid = request.path_params.get("uuid")

        def read(ctx: Ctx) -> dict[str, Any]:
            module: dict[str, Any] = {}
            if uuid is not None:
                module = crud.retrieve(ctx, ctx.services.types["module"], module_id(uuid))
                if module.get("subtype") != "component":
                    raise BadRequest(f"{module['id']} is a {module.get('subtype')}: the editor edits apps "
                                     "(components) only")
            content = module.get("content") or {}
            path = module.get("path", "")
            project, _, name = path.rpartition("/")
            return {"module": module, "content": content, "image": image_text(content.get("image")),
                    "project": project or request.query_params.get("project", ""), "app_name": name,
                    "projects": projects(ctx), "uuid": uuid}
        title = "Edit app" if uuid else "New app"
        return await pages.page(request, "app_edit.html", read, nav="apps", title=title)

    return [
        Route("/ui/apps", list_apps, methods=["GET"]),
        Route("/ui/apps/new", edit_app, methods=["GET"]),
        Route("/ui/apps/{uuid}", show_app, methods=["GET"]),
        Route("/ui/apps/{uuid}/edit", edit_app, methods=["GET"]),
    ]
