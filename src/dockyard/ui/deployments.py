"""Deployments: the list (state badges, filters, bulk stop/delete) and a deployment's live page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import NotFound
from ..resources import crud
from ..deploy import lifecycle
from ..resources.base import Ctx
from ..store import filter as cimi_filter
from .apps import UUID_RE
from .pages import Pages, eq, fulltext, search

PAGE_SIZE = 50
LIST_FIELDS = ["id", "name", "description", "state", "module", "infrastructure-service-name", "created",
               "status-message", "operations"]
# what the page's script needs to know of the lifecycle (deploy/lifecycle.py is the one source)
LIFECYCLE = {"startable": sorted(lifecycle.STARTABLE), "stoppable": sorted(lifecycle.STOPPABLE),
             "deletable": sorted(lifecycle.DELETABLE), "loggable": sorted(lifecycle.LOGGABLE),
             "badges": {state: list(badge) for state, badge in lifecycle.BADGES.items()}}


def deployment_id(uuid: str) -> str:
    if not UUID_RE.match(uuid):
        raise NotFound.for_resource(f"deployment/{uuid[:40]}")
    return f"deployment/{uuid}"


def listing(ctx: Ctx, state: str, text: str, page: int) -> dict[str, Any]:
    where = []
    if state:
        where.append(eq("state", state))
    words = fulltext(text)
    if words is not None:
        where.append(words)
    first = (page - 1) * PAGE_SIZE + 1
    found = crud.search(ctx, ctx.services.types["deployment"], search(
        cimi_filter.conjoin(where), orderby=[("created", True)], first=first, last=first + PAGE_SIZE - 1,
        select=LIST_FIELDS))
    return {"deployments": found["resources"], "count": found["count"], "page": page,
            "pages": max((found["count"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)}


def detail(ctx: Ctx, rid: str) -> dict[str, Any]:
    """The deployment with its parameters and jobs: the page's first picture, kept live by its script."""
    dep = crud.retrieve(ctx, ctx.services.types["deployment"], rid)
    params = crud.search(ctx, ctx.services.types["deployment-parameter"], search(
        eq("parent", rid), orderby=[("name", False)], last=1000))["resources"]
    jobs = crud.search(ctx, ctx.services.types["job"], search(
        eq("target-resource/href", rid), orderby=[("created", True)], last=50))["resources"]
    return {"deployment": dep, "parameters": params, "jobs": jobs}


def routes(pages: Pages) -> list[Route]:
    async def list_deployments(request: Request) -> Response:
        q = request.query_params
        state = q.get("state", "") if q.get("state") in lifecycle.STATES else ""
        text = q.get("q", "")
        page = int(q["page"]) if q.get("page", "").isdigit() and int(q["page"]) > 0 else 1

        def read(ctx: Ctx) -> dict[str, Any]:
            return {"state": state, "q": text, "STATES": lifecycle.STATES, **listing(ctx, state, text, page)}
        return await pages.page(request, "deployments.html", read, nav="deployments", title="Deployments")

    async def show_deployment(request: Request) -> Response:
        def read(ctx: Ctx) -> dict[str, Any]:
            rid = deployment_id(request.path_params["uuid"])
            return {"initial": {**detail(ctx, rid), "lifecycle": LIFECYCLE},
                    "start_error": request.query_params.get("start-error", "")[:2000], "rid": rid}
        return await pages.page(request, "deployment.html", read, nav="deployments", title="Deployment")

    return [
        Route("/ui/deployments", list_deployments, methods=["GET"]),
        Route("/ui/deployments/{uuid}", show_deployment, methods=["GET"]),
    ]
