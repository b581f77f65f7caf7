"""The UI's routes, all under ``/ui/`` (and ``GET /``, which sends a browser there)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from types import ModuleType

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.errors import DockyardError
from ..resources.base import Services
from . import apps, credentials, data, deployments, events, placeholders, session
from .pages import Pages

log = logging.getLogger("dockyard.ui")

# each module has routes(pages) -> list[Route]
PAGES: list[ModuleType] = [session, apps, deployments, credentials, data, events]
# the pages of the navigation not built yet (see placeholders.py)
PLACEHOLDERS: tuple[str, ...] = ()


def _guarded(pages: Pages, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """A request the page cannot read (a malformed form, a body too large) gets an error page, not a 500."""
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except DockyardError as exc:
            return pages.error(None, exc)
    return guarded


async def home(request: Request) -> Response:
    return RedirectResponse("/ui/apps", status_code=303)


def routes(services: Services) -> list[BaseRoute]:
    pages = Pages(services)
    found: list[BaseRoute] = [Route("/", home, methods=["GET", "HEAD"]),
                              Route("/ui", home, methods=["GET", "HEAD"]),
                              Route("/ui/", home, methods=["GET", "HEAD"])]
    for module in PAGES:
        for route in module.routes(pages):
            if isinstance(route, Route):
                route = Route(route.path, _guarded(pages, route.endpoint), methods=list(route.methods or []))
            found.append(route)
    found += placeholders.routes(pages, PLACEHOLDERS)
    found.append(Mount("/ui/static", StaticFiles(packages=[("dockyard.ui", "static")]), name="static"))
    return found
