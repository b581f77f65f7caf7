"""The ceiling: a bare Starlette endpoint on the server's own stack (uvicorn, uvloop, httptools, one process).

It answers ``GET /api/<type>/<uuid>`` with a JSON document held in memory, encoded per request with the
same encoder Dockyard's responses use, so the gap between it and Dockyard's GET is what Dockyard does per
request (session look-up, thread hop, store read, ACL, presentation), not HTTP or JSON framing.

    python benchmarks/_ceiling.py PORT DOC.json
"""

from __future__ import annotations

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JSON(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return _encode(content).encode("utf-8")


def build(doc: dict) -> Starlette:
    async def item(request: Request) -> Response:
        return JSON(doc)

    async def ready(request: Request) -> Response:
        return JSON({"status": 200})

    return Starlette(routes=[Route("/api/cloud-entry-point", ready), Route("/api/{type}/{uuid}", item)])


def main() -> None:
    port = int(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        doc = json.load(f)
    uvicorn.run(build(doc), host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
