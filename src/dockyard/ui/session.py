"""Log in, log out, and act as another of one's groups: plain forms, handled here through crud."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..core.errors import BadRequest, DockyardError, Forbidden
from ..resources import crud
from ..resources.base import Ctx, Reply
from ..resources.session import COOKIE
from .pages import Pages

FORM_LIMIT = 64 * 1024


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this site only (no ``//host`` nor ``https://...``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/ui/apps"
    return value


def same_origin(request: Request) -> bool:
    """A form posted by one of our pages (browsers send Origin with a POST): another site's form may not
    log someone out or switch their group."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if referer is None:
            return origin is None  # a non-browser client
        origin = referer
    parts = urlsplit(origin)
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    return parts.netloc == host


def set_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    secure = (request.headers.get("x-forwarded-proto") or request.url.scheme) == "https"
    response.set_cookie(COOKIE, value or "INVALID", max_age=max_age if value else 0, path="/", httponly=True,
                        secure=secure, samesite="lax")


async def form(request: Request) -> dict[str, str]:
    """A url-encoded form's fields (the last of a repeated one)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise BadRequest("the form is too large")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"malformed form: {exc}") from exc


def routes(pages: Pages) -> list[Route]:
    render = pages.renderer

    async def login_page(request: Request) -> Response:
        if request.method == "GET":
            return render.html("login.html", caller=None, nav="login", title="Log in",
                               next=safe_next(request.query_params.get("next")), username="", error="")
        if not same_origin(request):
            return render.html("error.html", 403, caller=None, title="Error",
                               message="This form was sent from another site; log in from this page.")
        fields = await form(request)
        username, password = fields.get("username", "").strip(), fields.get("password", "")
        target = safe_next(fields.get("next"))

        def login() -> Reply | DockyardError:
            ctx = pages.ctx(request)
            body = {"template": {"href": "session-template/password", "username": username,
                                 "password": password}}
            try:
                return crud.add(ctx, ctx.services.types["session"], body)
            except DockyardError as exc:
                return exc

        if not username or not password:
            outcome: Reply | DockyardError = BadRequest("Enter your username and your password.")
        else:
            outcome = await pages.run(login)
        if isinstance(outcome, DockyardError):
            message = ("Wrong username or password." if isinstance(outcome, Forbidden) else outcome.message)
            return render.html("login.html", 403 if isinstance(outcome, Forbidden) else 400, caller=None,
                               nav="login", title="Log in", next=target, username=username, error=message)
        response = RedirectResponse(target, status_code=303)
        set_cookie(response, request, outcome.cookie or "", outcome.cookie_max_age)
        return response

    async def logout(request: Request) -> Response:
        if not same_origin(request):
            return render.html("error.html", 403, caller=None, title="Error",
                               message="This form was sent from another site.")

        def end() -> None:
            ctx = pages.ctx(request)
            if ctx.authn.session_id:
                try:
                    crud.delete(ctx, ctx.services.types["session"], ctx.authn.session_id)
                except DockyardError:
                    pass  # already gone: logged out all the same

        await pages.run(end)
        response = RedirectResponse("/ui/login", status_code=303)
        set_cookie(response, request, "", 0)
        return response

    async def switch_group(request: Request) -> Response:
        if not same_origin(request):
            return render.html("error.html", 403, caller=None, title="Error",
                               message="This form was sent from another site.")
        fields = await form(request)
        target = safe_next(fields.get("next"))

        def switch() -> Any:
            ctx: Ctx = pages.ctx(request)
            if ctx.authn.session_id is None:
                return None
            try:
                return crud.action(ctx, ctx.services.types["session"], ctx.authn.session_id, "switch-group",
                                   {"claim": fields.get("claim", "")}, "POST", request.url.path)
            except DockyardError as exc:
                return exc

        outcome = await pages.run(switch)
        if isinstance(outcome, DockyardError):
            return render.html("error.html", outcome.status, caller=None, title="Error",
                               message=f"Could not switch group: {outcome.message}")
        if outcome is None:
            return RedirectResponse("/ui/login", status_code=303)
        return RedirectResponse(target, status_code=303)

    return [
        Route("/ui/login", login_page, methods=["GET", "POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui/group", switch_group, methods=["POST"]),
    ]
