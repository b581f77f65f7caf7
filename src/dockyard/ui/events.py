"""Events: the audit trail the caller may see (their own actions, and those on what they own), newest first,
filtered by category, resource and time, a page at a time."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.authn import ANON
from ..resources import crud
from ..resources.base import Ctx
from ..store import filter as cimi_filter
from .pages import Pages, eq, search

PAGE_SIZE = 50
CATEGORIES = {"": "Any", "add": "Created", "edit": "Changed", "delete": "Deleted", "action": "Action",
              "state": "State", "alarm": "Alarm", "user": "User"}
OUTCOMES = {"": "Any", "ok": "Succeeded", "failed": "Refused or failed"}
# where the UI shows a resource of each type (a uuid is appended where a page per resource exists)
PAGES_OF = {"module": "/ui/apps/", "deployment": "/ui/deployments/", "data-record": "/ui/data/records/",
            "data-object": "/ui/data/objects", "credential": "/ui/credentials"}


def link_of(href: str) -> str:
    rtype, _, uuid = href.partition("/")
    base = PAGES_OF.get(rtype)
    if base is None or not uuid:
        return ""
    return base + uuid.split("_")[0] if base.endswith("/") else base


def utc(text: str) -> datetime | None:
    """A ``datetime-local`` value (``2024-05-01T14:03``), read as UTC; None when it is not one."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def trail(ctx: Ctx, q: dict[str, str], page: int) -> dict[str, Any]:
    errors: dict[str, str] = {}
    where: list[cimi_filter.Node] = []
    if q["category"]:
        where.append(eq("category", q["category"]))
    if q["outcome"]:
        where.append(cimi_filter.Comp(("success",), "=", cimi_filter.TRUE if q["outcome"] == "ok" else cimi_filter.FALSE))
    resource = q["resource"]
    if resource:
        if len(resource) > 200 or not all(c.isalnum() or c in "-_/" for c in resource):
            errors["resource"] = "Enter a resource type (e.g. credential) or an id (e.g. data-record/…)."
        else:
            op = "=" if "/" in resource else "^="
            value = resource if "/" in resource else resource + "/"
            where.append(cimi_filter.Comp(("content", "resource", "href"), op, cimi_filter.Value("string", value)))
    bounds = {}
    for name, op in (("since", ">="), ("until", "<=")):
        if q[name]:
            when = utc(q[name])
            if when is None:
                errors[name] = "Enter a date and time, e.g. 2024-05-01 14:00."
                continue
            bounds[name] = when
            where.append(cimi_filter.Comp(("timestamp",), op,
                                          cimi_filter.Value("date", cimi_filter.format_timestamp(when))))
    if len(bounds) == 2 and bounds["since"] > bounds["until"]:
        errors["until"] = "This is before the start: the end of the period must come after it."
    found: dict[str, Any] = {"resources": [], "count": 0}
    if not errors:
        first = (page - 1) * PAGE_SIZE + 1
        found = crud.search(ctx, ctx.services.types["event"], search(
            cimi_filter.conjoin(where), orderby=[("timestamp", True), ("id", True)], first=first,
            last=first + PAGE_SIZE - 1))
    me = ctx.authn.user_id
    rows = []
    for event in found["resources"]:
        href = ((event.get("content") or {}).get("resource") or {}).get("href", "")
        who = (event.get("authn-info") or {}).get("user-id", "")
        acting = (event.get("authn-info") or {}).get("active-claim", "")
        if who == me:
            who = "you"
        elif who in ("", ANON):  # a login: the session's event, before there is anyone to name
            who = "logging in" if href.startswith("session/") else "anonymous"
        rows.append({"event": event, "href": href, "link": link_of(href), "who": who, "acting": acting if acting not in (me, ANON, "") else ""})
    return {"rows": rows, "count": found["count"], "page": page, "errors": errors,
            "pages": max((found["count"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)}


def routes(pages: Pages) -> list[Route]:
    async def events(request: Request) -> Response:
        params = request.query_params
        q = {"category": params.get("category", "") if params.get("category", "") in CATEGORIES else "",
             "outcome": params.get("outcome", "") if params.get("outcome", "") in OUTCOMES else "",
             "resource": params.get("resource", "").strip(), "since": params.get("since", "").strip(),
             "until": params.get("until", "").strip()}
        text = params.get("page", "")
        page = int(text) if text.isdigit() and 0 < int(text) < 10_000 else 1

        def read(ctx: Ctx) -> dict[str, Any]:
            return {"q": q, "CATEGORIES": CATEGORIES, "OUTCOMES": OUTCOMES,
                    "query": urlencode({k: v for k, v in q.items() if v}), **trail(ctx, q, page)}
        return await pages.page(request, "events.html", read, nav="events", title="Events")

    return [Route("/ui/events", events, methods=["GET"])]
