"""Data: the records browser (a CIMI filter and simple key = value filters on metadata, as the seed's users
search), a record's details, and data objects (upload with a progress bar by the page's script, download).

A download link is a page route: it asks the API's ``download`` action, as the caller, for a pre-signed URL
and sends the browser there, so a plain link (and a keyboard) downloads the bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..core.errors import DockyardError, FilterError, NotFound
from ..resources import crud
from ..resources.base import Ctx
from ..resources.data_object import BUCKET_RE, LOCAL_STORAGE_CREDENTIAL
from ..store import filter as cimi_filter
from .apps import UUID_RE, rel
from .pages import Pages, caller_of, login_url, search

PAGE_SIZE = 50
MAX_PAIRS = 10
KEY_RE = re.compile(r"^[A-Za-z0-9_][\w:.-]*(/[\w:.-]+)*$")
# attributes every resource has: a record's metadata is the rest
COMMON_KEYS = {"id", "resource-type", "created", "updated", "created-by", "updated-by", "operations", "acl",
               "name", "description", "tags", "parent", "resource-metadata"}
STATES = {"NEW": ("new", "grey"), "UPLOADING": ("uploading", "blue"), "READY": ("ready", "green")}


def page_number(request: Request) -> int:
    text = request.query_params.get("page", "")
    return int(text) if text.isdigit() and 0 < int(text) < 10_000 else 1


def pairs_of(request: Request) -> list[tuple[str, str]]:
    """The key = value filters of the query string (``key`` and ``value`` repeated, in order)."""
    keys = request.query_params.getlist("key")[:MAX_PAIRS]
    values = request.query_params.getlist("value")[:MAX_PAIRS]
    values += [""] * (len(keys) - len(values))
    return [(k.strip(), v.strip()) for k, v in zip(keys, values) if k.strip() or v.strip()]


def pair_filter(key: str, value: str) -> cimi_filter.Node:
    """``key = value``: the value as written (a string), or as a number or a boolean when it reads as one."""
    path = tuple(key.split("/"))
    comps: list[cimi_filter.Node] = [cimi_filter.Comp(path, "=", cimi_filter.Value("string", value))]
    if value.isdigit() and len(value) < 19:
        comps.append(cimi_filter.Comp(path, "=", cimi_filter.Value("int", int(value))))
    if value in ("true", "false"):
        comps.append(cimi_filter.Comp(path, "=", cimi_filter.TRUE if value == "true" else cimi_filter.FALSE))
    return comps[0] if len(comps) == 1 else cimi_filter.Or(tuple(comps))


def metadata(record: dict[str, Any]) -> list[tuple[str, str]]:
    """A record's own keys and their values as text (maps and lists as JSON)."""
    return [(k, v if isinstance(v, str) else json.dumps(v, sort_keys=True))
            for k, v in sorted(record.items()) if k not in COMMON_KEYS]


def records(ctx: Ctx, text: str, pairs: list[tuple[str, str]], page: int) -> dict[str, Any]:
    errors: dict[str, str] = {}
    where: list[cimi_filter.Node] = []
    if text:
        try:
            where.append(cimi_filter.parse(text))
        except FilterError as exc:
            errors["filter"] = "This filter cannot be read: " + exc.message.removeprefix("Invalid CIMI filter. ")
    for i, (key, value) in enumerate(pairs):
        if not key:
            errors[f"key-{i}"] = "Enter the metadata key this value is for (e.g. gnss:mission)."
        elif not KEY_RE.match(key) or len(key) > 200:
            errors[f"key-{i}"] = (f"“{key[:60]}” is not a metadata key: letters, digits and _ : . - only, "
                                  "with / between the levels of a nested key.")
        else:
            where.append(pair_filter(key, value))
    found: dict[str, Any] = {"resources": [], "count": 0}
    if not errors:
        first = (page - 1) * PAGE_SIZE + 1
        try:
            found = crud.search(ctx, ctx.services.types["data-record"], search(
                cimi_filter.conjoin(where), orderby=[("created", True)], first=first, last=first + PAGE_SIZE - 1))
        except FilterError as exc:  # a filter that parses but the store refuses (an operator on a wrong type)
            errors["filter"] = f"This filter cannot be used: {exc.message}"
    rows = [{"record": r, "uuid": r["id"].split("/", 1)[1], "metadata": metadata(r)} for r in found["resources"]]
    keys = sorted({k for row in rows for k, _ in row["metadata"]})
    return {"rows": rows, "count": found["count"], "page": page, "errors": errors, "known_keys": keys,
            "pages": max((found["count"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)}


def objects(ctx: Ctx, page: int) -> dict[str, Any]:
    first = (page - 1) * PAGE_SIZE + 1
    found = crud.search(ctx, ctx.services.types["data-object"], search(
        orderby=[("created", True)], first=first, last=first + PAGE_SIZE - 1))
    stores = crud.search(ctx, ctx.services.types["credential"], search(
        cimi_filter.Comp(("subtype",), "=", cimi_filter.Value("string", "infrastructure-service-minio")),
        orderby=[("name", False)], last=200))["resources"]
    rows = [{"object": o, "uuid": o["id"].split("/", 1)[1], "can_download": rel(o, "download")}
            for o in found["resources"]]
    return {"rows": rows, "count": found["count"], "page": page, "stores": stores,
            "pages": max((found["count"] + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "default_store": LOCAL_STORAGE_CREDENTIAL, "can_add": any(op["rel"] == "add" for op in found["operations"])}


def default_bucket(ctx: Ctx, username: str) -> str:
    """A bucket name of the caller's own to suggest: ``files-<name>``, as the store's rules allow."""
    name = re.sub(r"[^a-z0-9-]+", "-", username.lower()).strip("-")[:50] or "mine"
    bucket = f"files-{name}"
    return bucket if re.match(BUCKET_RE, bucket) else "files"


def routes(pages: Pages) -> list[Route]:
    async def list_records(request: Request) -> Response:
        text = request.query_params.get("filter", "").strip()
        pairs = pairs_of(request)
        page = page_number(request)

        def read(ctx: Ctx) -> dict[str, Any]:
            query = urlencode([("filter", text)] + [(n, v) for pair in pairs for n, v in zip(("key", "value"), pair)])
            return {"filter": text, "pairs": pairs, "tab": "records", "query": query,
                    **records(ctx, text, pairs, page)}
        return await pages.page(request, "data.html", read, nav="data", title="Data records")

    async def show_record(request: Request) -> Response:
        uuid = request.path_params["uuid"]

        def read(ctx: Ctx) -> dict[str, Any]:
            if not UUID_RE.match(uuid):
                raise NotFound.for_resource(f"data-record/{uuid[:40]}")
            record = crud.retrieve(ctx, ctx.services.types["data-record"], f"data-record/{uuid}")
            return {"record": record, "metadata": metadata(record), "tab": "records"}
        return await pages.page(request, "data_record.html", read, nav="data", title="Data record")

    async def list_objects(request: Request) -> Response:
        page = page_number(request)

        def read(ctx: Ctx) -> dict[str, Any]:
            return {"tab": "objects", "STATES": STATES,
                    "bucket": default_bucket(ctx, caller_of(ctx).username), **objects(ctx, page)}
        return await pages.page(request, "data_objects.html", read, nav="data", title="Data objects")

    async def download(request: Request) -> Response:
        """The object's pre-signed URL, from the API's ``download`` action as the caller; then the bytes."""
        uuid = request.path_params["uuid"]

        def work() -> tuple[str | None, Any]:
            ctx = pages.ctx(request)
            if ctx.authn.is_anonymous:
                return None, None
            try:
                if not UUID_RE.match(uuid):
                    raise NotFound.for_resource(f"data-object/{uuid[:40]}")
                reply = crud.action(ctx, ctx.services.types["data-object"], f"data-object/{uuid}", "download",
                                    {}, "POST", f"/api/data-object/{uuid}/download")
                return reply.body["uri"], None
            except DockyardError as exc:
                return None, (caller_of(ctx), exc)

        uri, failed = await pages.run(work)
        if uri:
            return RedirectResponse(uri, status_code=303)
        if failed is None:
            return RedirectResponse(login_url(request), status_code=303)
        return pages.error(failed[0], failed[1], "data")

    return [
        Route("/ui/data", list_records, methods=["GET"]),
        Route("/ui/data/records/{uuid}", show_record, methods=["GET"]),
        Route("/ui/data/objects", list_objects, methods=["GET"]),
        Route("/ui/data/objects/{uuid}/download", download, methods=["GET"]),
    ]
