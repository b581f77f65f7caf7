"""The ASGI application: Nuvla's CIMI routes over the generic resource operations.

HTTP in, one domain call in a worker thread, HTTP out. Nothing type-specific lives here.
"""

from __future__ import annotations

import contextlib
import logging

import anyio
import anyio.to_thread
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import BadRequest, DockyardError, MethodNotAllowed, NotFound
from ..resources import crud, events, openapi, params, registry
from ..resources.base import Ctx, ResourceType, Reply, Services
from ..resources.cloud_entry_point import entry_point
from ..resources.session import COOKIE, authenticate, session_id
from .. import ui
from . import http, objects, refusals
from .http import JSON
from .stream import Streams

log = logging.getLogger("dockyard.server")

SEARCH_METHODS = ("GET", "PUT")
WRITE_VERBS = {"POST": "add", "PUT": "edit", "DELETE": "delete"}


class Api:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.limit = services.settings["max-body-bytes"]
        # a few threads do the domain work: more would only fight over the GIL
        self.limiter = anyio.CapacityLimiter(services.settings["request-threads"])
        self.inline_reads = services.store.dialect == "sqlite"
        self.description: dict[str, Any] | None = None

    # -- plumbing ----------------------------------------------------------------------------------

    async def _run(self, request: Request, work: Callable[[Ctx], Any], verb: str | None = None,
                   target: str | None = None, *, quick_read: bool = False) -> Response:
        """Authenticate, run ``work`` in a thread, and map its result or error to a response.

        ``quick_read``: a read of the document ``target`` by key. On the embedded SQLite it takes
        microseconds, less than the hop to a thread, so it runs on the event loop; on PostgreSQL the session
        and the document are read in one statement (``Store.prefetched``).
        """
        def call() -> Any:
            ctx = Ctx(self.services, authenticate(self.services, request.cookies.get(COOKIE)),
                      http.base_uri(request), request.client.host if request.client else None)
            refusals.note(request.scope, ctx.authn)
            try:
                return work(ctx)
            except DockyardError as exc:
                if verb and target and exc.status != 404:
                    events.record_failure(ctx, verb, target, exc)
                raise

        def read() -> Any:
            own = session_id(request.cookies.get(COOKIE))
            with self.services.store.prefetched([own, target] if own else [target]):  # type: ignore[list-item]
                return call()
        try:
            if quick_read and self.inline_reads:
                result = call()
            elif quick_read and target:
                result = await anyio.to_thread.run_sync(read, limiter=self.limiter)
            else:
                result = await anyio.to_thread.run_sync(call, limiter=self.limiter)
        except DockyardError as exc:
            return http.error_response(exc)
        except Exception:  # the server must answer, whatever broke
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return JSON({"status": 500, "message": "Unexpected exception thrown: see the server log"},
                        status_code=500)
        if isinstance(result, Reply):
            return http.reply_response(result, request)
        return JSON(result)

    def _type(self, name: str, uri: str) -> ResourceType:
        rtype = self.services.type_of(name)
        if rtype is None:
            raise NotFound("unknown resource", uri)
        return rtype

    async def _json_body(self, request: Request) -> Any:
        body = await http.read_body(request, self.limit)
        return http.parse_json(body)

    async def _params(self, request: Request) -> list[tuple[str, str]]:
        items = list(request.query_params.multi_items())
        if request.method in ("PUT", "DELETE", "POST"):
            body = await http.read_body(request, self.limit)
            if body and http.media_type(request) in (http.FORM_TYPE, ""):
                items.extend(http.parse_form(body))
        return items

    async def guarded(self, request: Request, handler: Callable[[Request], Any]) -> Response:
        try:
            return await handler(request)
        except DockyardError as exc:
            return http.error_response(exc)
        except Exception:  # reading or parsing the request broke: still answer Nuvla's JSON
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return JSON({"status": 500, "message": "Unexpected exception thrown: see the server log"},
                        status_code=500)

    # -- routes ------------------------------------------------------------------------------------

    async def cloud_entry_point(self, request: Request) -> Response:
        if request.method != "GET":
            return http.error_response(MethodNotAllowed(f"invalid method ({request.method.lower()}) for {request.url.path}"))
        return await self._run(request, entry_point)

    async def collection(self, request: Request) -> Response:
        return await self.guarded(request, self._collection)

    async def _collection(self, request: Request) -> Response:
        name = request.path_params["type"]
        rtype = self._type(name, request.url.path)
        method = request.method
        if method in SEARCH_METHODS:
            items = await self._params(request)
            search = params.parse(items)
            return await self._run(request, lambda ctx: crud.search(ctx, rtype, search))
        if method == "POST":
            body = await http.read_body(request, self.limit)
            if http.media_type(request) == http.FORM_TYPE:
                payload: Any = http.form_to_template(http.parse_form(body))
            else:
                payload = http.parse_json(body)
            return await self._run(request, lambda ctx: crud.add(ctx, rtype, payload), "add", name)
        if method == "DELETE":
            if "bulk" not in request.headers:
                raise BadRequest("Bulk request should contain bulk http header.")
            search = params.parse(await self._params(request))
            return await self._run(request, lambda ctx: crud.bulk_delete(ctx, rtype, search), "delete", name)
        raise MethodNotAllowed(f"invalid method ({method.lower()}) for {request.url.path}")

    async def item(self, request: Request) -> Response:
        return await self.guarded(request, self._item)

    async def _item(self, request: Request) -> Response:
        name = request.path_params["type"]
        rtype = self._type(name, request.url.path)
        rid = f"{name}/{request.path_params['uuid']}"
        method = request.method
        select = params.select_of(list(request.query_params.multi_items()))
        if method == "GET":
            return await self._run(request, lambda ctx: crud.retrieve(ctx, rtype, rid, select), target=rid,
                                   quick_read=True)
        if method == "PUT":
            patch = http.media_type(request) == "application/json-patch+json"
            body = await self._json_body(request)
            body = {} if body is None and not patch else body
            return await self._run(request, lambda ctx: crud.edit(ctx, rtype, rid, body, select, patch),
                                   "edit", rid)
        if method == "DELETE":
            options = await self._json_body(request)  # optional, as Nuvla's data-object keep-s3-* flags
            if options is not None and not isinstance(options, dict):
                raise BadRequest("the body of a delete must be a JSON object")
            return await self._run(request, lambda ctx: crud.delete(ctx, rtype, rid, options or {}),
                                   "delete", rid)
        raise MethodNotAllowed(f"invalid method ({method.lower()}) for {request.url.path}")

    async def action(self, request: Request) -> Response:
        return await self.guarded(request, self._action)

    async def _action(self, request: Request) -> Response:
        name = request.path_params["type"]
        rtype = self._type(name, request.url.path)
        rid = f"{name}/{request.path_params['uuid']}"
        act = request.path_params["action"]
        if request.method == "GET":
            # Nuvla takes any verb here, but a GET is what a link or an <img> sends with the session cookie
            # (SameSite=Lax lets top-level navigations carry it): no action may be one click on a stranger's page
            raise MethodNotAllowed(f"invalid method (get) for {request.url.path}: actions need POST")
        body = await self._json_body(request)
        return await self._run(
            request, lambda ctx: crud.action(ctx, rtype, rid, act, body, request.method, request.url.path))

    async def openapi_json(self, request: Request) -> Response:
        if request.method != "GET":
            return http.error_response(MethodNotAllowed(f"invalid method ({request.method.lower()}) for {request.url.path}"))
        if self.description is None:  # built on first use: its types and templates never change
            self.description = openapi.document(self.services.types, registry.template_docs())
        return JSON(self.description)

    async def unknown(self, request: Request) -> Response:
        if request.url.path == "/api/":
            return await self.root(request)
        return http.error_response(NotFound("unknown resource", request.url.path))

    async def root(self, request: Request) -> Response:
        """As Nuvla, any URI outside ``/api/.+`` redirects to the cloud entry point (with a JSON body)."""
        return JSON({"status": 302, "message": "see /api/cloud-entry-point"}, status_code=302,
                    headers={"Location": "/api/cloud-entry-point"})


ALL = ["GET", "PUT", "POST", "DELETE", "PATCH"]


def create_app(services: Services) -> "Preflight":
    api = Api(services)
    streams = Streams(services)
    routes = [
        Route("/api/cloud-entry-point", api.cloud_entry_point, methods=ALL),
        Route("/api/openapi.json", api.openapi_json, methods=ALL),
        # long-lived answers, before the generic routes that would take their paths
        Route("/api/event-stream", streams.event_stream, methods=ALL),
        Route("/api/deployment/{uuid}/log-stream", streams.log_stream, methods=ALL),
        Route("/api/deployment/{uuid}/stats-stream", streams.stats_stream, methods=ALL),
        Route("/api/{type}", api.collection, methods=ALL),
        Route("/api/{type}/{uuid}", api.item, methods=ALL),
        Route("/api/{type}/{uuid}/{action}", api.action, methods=ALL),
        Route("/api/{rest:path}", api.unknown, methods=ALL),
        # the embedded object store's pre-signed URLs
        *objects.routes(services),
        # the web UI: /ui/... and GET / (which sends a browser there)
        *ui.routes(services),
        # everything else, as Nuvla: a redirect to the cloud entry point
        Route("/{rest:path}", api.root, methods=ALL),
    ]
    app = Starlette(routes=routes, lifespan=_ending(streams))
    app.state.services = services
    app.state.streams = streams
    return Preflight(app)


def _ending(streams: Streams) -> Callable[[Starlette], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        streams.close()
    return lifespan


class Preflight:
    """Answers OPTIONS on any path, as Nuvla does, without a middleware layer on every other request; logs
    the requests the app refuses (:mod:`.refusals`)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            response = JSON({"status": 200, "message": "preflight complete"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, refusals.watch(scope, send) if scope["type"] == "http" else send)
