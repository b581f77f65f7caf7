"""HTTP in and out: request bodies (JSON, forms, gzip, size limits), cookies, the caller, JSON answers."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import BadRequest, DockyardError, PayloadTooLarge
from ..resources.base import Reply
from ..resources.session import COOKIE

JSON_TYPES = ("application/json", "application/json-patch+json")
FORM_TYPE = "application/x-www-form-urlencoded"

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content).encode("utf-8")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, inflated when gzipped, refused past ``limit`` bytes (before and after)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if body and request.headers.get("content-encoding", "").lower() == "gzip":
        body = _gunzip(body, limit)
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"request body is not valid gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"request body inflates beyond the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequest("request body is not valid gzip: it ends before the gzip stream does")
    return out


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def parse_json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        value = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON in request body: {exc}") from None
    except RecursionError:
        raise BadRequest("malformed JSON in request body: nested too deeply") from None
    # PostgreSQL cannot store NUL in text or jsonb: refuse it on every backend alike
    if _NUL_ESCAPE.search(body) and _has_string(value, lambda s: "\x00" in s):
        raise BadRequest("malformed JSON in request body: strings must not contain NUL (\\u0000)")
    # an escaped surrogate without its pair is no character at all: it cannot be stored (UTF-8) nor sent back
    if _SURROGATE_ESCAPE.search(body) and _has_string(value, _LONE_SURROGATE.search):
        raise BadRequest("malformed JSON in request body: a \\ud800-\\udfff escape is a lone surrogate; "
                         "only a high and low pair makes a character")
    return value


def _no_constant(name: str) -> Any:
    """Python reads NaN and ±Infinity, which JSON has not: PostgreSQL refuses to store them and clients to read
    them back."""
    raise ValueError(f"{name} is not a JSON number")


_NUL_ESCAPE = re.compile(rb"\\u0000", re.IGNORECASE)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_string(value: Any, test: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys included) passes ``test``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if test(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"malformed form body: {exc}") from None


def form_to_template(items: list[tuple[str, str]]) -> dict[str, Any]:
    """A form-encoded login: its fields go under ``template``, as Nuvla accepts."""
    fields = dict(items)
    return {"template": fields}


def base_uri(request: Request) -> str:
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    return f"{proto}://{host}/api/"


def reply_response(reply: Reply, request: Request) -> Response:
    response = JSON(reply.body, status_code=reply.status, headers=reply.headers)
    if reply.cookie is not None:
        set_session_cookie(response, request, reply.cookie, reply.cookie_max_age)
    return response


def set_session_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    secure = (request.headers.get("x-forwarded-proto") or request.url.scheme) == "https"
    if value:
        response.set_cookie(COOKIE, value, max_age=max_age, path="/", httponly=True, secure=secure,
                            samesite="lax")
    else:
        response.set_cookie(COOKIE, "INVALID", max_age=0, path="/", httponly=True, secure=secure,
                            samesite="lax")


def error_response(exc: DockyardError) -> Response:
    return JSON(exc.body(), status_code=exc.status)
