"""The server log's line for each refused request (a 4xx answer): method, path, status, who, and why.

Every answer passes through :func:`watch`, whatever route made it (resources, streams, signed object URLs,
unknown paths, bodies that did not parse). Who the caller is comes from :func:`note`, which the routes call
once they have authenticated the request; before that (or without a session) it is ``anonymous``, or ``-``
when the request was refused before anyone looked. The query string is never logged (signed URLs carry
their signature there), nor any header, cookie or body: only the path and Nuvla's error message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..core.authn import AuthInfo

log = logging.getLogger("dockyard.requests")

CALLER = "dockyard.caller"  # the ASGI scope's key for who the request authenticated as


def note(scope: dict[str, Any], authn: AuthInfo) -> None:
    scope[CALLER] = authn.user_id or "anonymous"


def watch(scope: dict[str, Any], send: Any) -> Any:
    """``send``, logging the answer when it refuses the request."""
    status = 0

    async def watched(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and 400 <= status < 500:
            _log(scope, status, message.get("body", b""))
            status = 0  # once per answer
        await send(message)
    return watched


def _log(scope: dict[str, Any], status: int, body: bytes) -> None:
    try:
        why = str(json.loads(body).get("message", ""))[:300]
    except (ValueError, AttributeError):
        why = ""
    method, path, who = scope["method"], scope["path"], scope.get(CALLER, "-")
    log.info("refused %s %s: %d for %s%s", method, path, status, who, f" ({why})" if why else "",
             extra={"method": method, "path": path, "status": status, "who": who})
