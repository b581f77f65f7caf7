"""Pages not built yet, so the navigation is whole. A page that gets built replaces its entry here with its
own module in :data:`.routes.PAGES`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .pages import Pages

COMING = {"apps": "Apps", "deployments": "Deployments", "credentials": "Credentials", "data": "Data",
          "events": "Events"}


def routes(pages: Pages, names: tuple[str, ...] = tuple(COMING)) -> list[Route]:
    def handler(name: str):  # noqa: ANN202 - a route endpoint
        async def placeholder(request: Request) -> Response:
            return await pages.page(request, "placeholder.html", nav=name, title=COMING[name])
        return placeholder

    return [Route(f"/ui/{name}", handler(name), methods=["GET"]) for name in names]
