"""What every page handler needs: the caller's context, domain calls in a worker thread, rendering."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core.authn import AuthInfo
from ..core.errors import DockyardError, FilterError
from ..resources import crud
from ..resources.base import Ctx, Services
from ..resources.params import SearchParams
from ..resources.session import COOKIE, authenticate, group_claims
from ..store import filter as cimi_filter
from .render import Renderer

log = logging.getLogger("dockyard.ui")


@dataclass
class Caller:
    """Who is logged in, as the header shows it."""

    authn: AuthInfo
    username: str = ""
    active_claim: str = ""
    # (id, label) of the identities the user may act as: themself first, then their groups
    identities: list[tuple[str, str]] = field(default_factory=list)

    @property
    def active_label(self) -> str:
        return dict(self.identities).get(self.active_claim, self.active_claim)


def base_uri(request: Request) -> str:
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    return f"{proto}://{host}/api/"


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/ui/login?next=" + quote(target, safe="/")


def caller_of(ctx: Ctx) -> Caller:
    """The header's data: the session (its username), and the groups the user belongs to."""
    authn = ctx.authn
    caller = Caller(authn, active_claim=authn.active_claim or "")
    if authn.session_id:
        try:
            session = crud.retrieve(ctx, ctx.services.types["session"], authn.session_id)
            caller.username = session.get("identifier") or ""
        except DockyardError:
            pass
    user = authn.user_id or ""
    caller.username = caller.username or user
    caller.identities = [(user, f"{caller.username} (personal)")]
    if user.startswith("user/"):
        # the groups the session may switch to, as switch-group decides them; not searched as the caller,
        # since acting as a group drops the user's own claim, and with it the right to read their groups
        with ctx.store.read() as tx:
            groups = [(gid, (tx.get(gid) or {}).get("name") or gid) for gid in group_claims(tx, user)]
        caller.identities += sorted(groups, key=lambda g: g[1].lower())
    if caller.active_claim and caller.active_claim not in dict(caller.identities):
        caller.identities.append((caller.active_claim, caller.active_claim))
    return caller


def search(where: Any = None, *, orderby: list[tuple[str, bool]] | None = None, first: int = 1,
           last: int | None = None, select: list[str] | None = None) -> SearchParams:
    """Search parameters from an AST (never from pasted filter text)."""
    return SearchParams(filter=where, orderby=orderby or [], first=first, last=last, select=select)


def eq(attr: str, value: str) -> cimi_filter.Comp:
    return cimi_filter.Comp(tuple(attr.split("/")), "=", cimi_filter.Value("string", value))


def fulltext(words: str) -> cimi_filter.Comp | None:
    """What a search box means: every word in the name or the description (case-insensitive)."""
    words = " ".join(words.split())
    if not words:
        return None
    if len(words) > 200:
        raise FilterError("the search text is too long (at most 200 characters)")
    return cimi_filter.Comp(("fulltext",), "==", cimi_filter.Value("string", words))


class Pages:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.renderer = Renderer()
        self.limiter = anyio.CapacityLimiter(services.settings["request-threads"])

    def ctx(self, request: Request) -> Ctx:
        """The caller's context, exactly as the API builds it (call in a worker thread: it reads the store)."""
        return Ctx(self.services, authenticate(self.services, request.cookies.get(COOKIE)), base_uri(request),
                   request.client.host if request.client else None)

    async def run(self, fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn, limiter=self.limiter)

    async def page(self, request: Request, template: str, read: Callable[[Ctx], dict[str, Any]] | None = None,
                   *, nav: str = "", title: str = "") -> Response:
        """Render ``template`` for the logged-in caller with what ``read(ctx)`` returns; an anonymous
        visitor goes to the login page first, and a domain error becomes an error page saying what it was."""
        def work() -> tuple[Caller | None, dict[str, Any] | DockyardError]:
            ctx = self.ctx(request)
            if ctx.authn.is_anonymous:
                return None, {}
            caller = caller_of(ctx)
            try:
                return caller, (read(ctx) if read else {})
            except DockyardError as exc:
                return caller, exc

        try:
            caller, values = await self.run(work)
        except Exception:  # the page must answer, whatever broke
            log.exception("unexpected error rendering %s", request.url.path)
            return self.renderer.html("error.html", 500, caller=None, nav=nav, title="Error",
                                      message="Something went wrong on the server; its log says what.")
        if caller is None:
            return RedirectResponse(login_url(request), status_code=303)
        if isinstance(values, DockyardError):
            return self.error(caller, values, nav)
        return self.renderer.html(template, caller=caller, nav=nav, title=title, request_path=request.url.path,
                                  **values)

    def error(self, caller: Caller | None, exc: DockyardError, nav: str = "") -> Response:
        return self.renderer.html("error.html", exc.status, caller=caller, nav=nav, title="Error",
                                  message=plain_message(exc), code=exc.status)


def plain_message(exc: DockyardError) -> str:
    if exc.status == 404:
        return f"{exc.resource_id or 'This page'} does not exist (or no longer does)."
    if exc.status == 403:
        return f"You may not see {exc.resource_id or 'this'}: it is not shared with you or your group."
    return exc.message
