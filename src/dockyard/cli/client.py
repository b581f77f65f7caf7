"""The HTTP side of the command line: one small client for a Dockyard (or Nuvla) endpoint, and its errors.

The CLI is a client like any other: it speaks the public API over HTTP with the session cookie of the
active profile, and never imports the server's layers. Every failure becomes a :class:`CliError` carrying
the exit code the user sees (documented in README "Command line")::

    CliError                 one line on stderr, no traceback
      exit 1  FAILED         the command could not do its work (a bad app file, a deployment in ERROR, 400/409)
      exit 2  USAGE          the arguments do not say what to do (an ambiguous id)
      exit 3  NOT_FOUND      404, or no such app / deployment / object
      exit 4  REFUSED        401/403, or not logged in
      exit 5  SERVER_ERROR   5xx, or an answer that is not the API's

The server's own message (Nuvla's ``{status, message, resource-id}``) is what is printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

COOKIE = "com.sixsq.nuvla.cookie"
OK, FAILED, USAGE, NOT_FOUND, REFUSED, SERVER_ERROR = 0, 1, 2, 3, 4, 5
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
SEARCH_WINDOW = 10_000

Json = dict[str, Any]


class CliError(Exception):
    """A failure the user is told about in one line; ``exit_code`` is the process's exit status. Raised
    anywhere in a command, it is shown by :class:`dockyard.cli.main.Cli` (never as a traceback)."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = code

    def show(self) -> None:
        sys.stderr.write(f"Error: {self.message}\n")
        sys.stderr.flush()


def code_for_status(status: int) -> int:
    if status == 404:
        return NOT_FOUND
    if status in (401, 403):
        return REFUSED
    if status >= 500:
        return SERVER_ERROR
    return FAILED


def message_of(response: httpx.Response) -> str:
    """What the server said, as nuvla-api reads it: ``message``, else ``error``'s code and reason, else text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{body['error'].get('code')} - {body['error'].get('reason')}"
    text = response.text.strip()
    return text[:500] if text else f"HTTP {response.status_code}"


class ApiError(CliError):
    """An answer of 400 or more, with the server's message."""

    def __init__(self, response: httpx.Response, hint: str = "") -> None:
        self.status = response.status_code
        message = message_of(response)
        if self.status == 401 or (self.status == 403 and message == "credentials required"):
            hint = hint or "log in with `dockyard login`"
        super().__init__(f"{message} ({hint})" if hint else message, code_for_status(self.status))


class Client:
    """An endpoint and an optional session cookie; each method answers the decoded JSON or raises."""

    def __init__(self, endpoint: str, cookie: str | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "dockyard-cli"}
        if cookie:
            headers["Cookie"] = f"{COOKIE}={cookie}"
        self.http = httpx.Client(base_url=self.endpoint + "/api/", headers=headers, timeout=TIMEOUT)
        self.cookie = cookie

    def close(self) -> None:
        self.http.close()

    # -- plumbing ------------------------------------------------------------------------------------

    @contextmanager
    def _transport(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise CliError(f"{self.endpoint} did not answer in time ({type(exc).__name__})", FAILED) from exc
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.endpoint}: {exc}", FAILED) from exc

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        with self._transport():
            response = self.http.request(method, path.lstrip("/"), **kwargs)
        if response.status_code >= 400 and response.status_code not in expect:
            raise ApiError(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Json:
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise CliError(f"{method} {path}: the answer is not JSON ({response.text[:200]!r})",
                           SERVER_ERROR) from exc
        return body if isinstance(body, dict) else {"value": body}

    @contextmanager
    def stream(self, path: str, params: Mapping[str, Any] | None = None,
               headers: Mapping[str, str] | None = None) -> Iterator[httpx.Response]:
        """A streamed GET (event stream, log stream): no read timeout, the server's error answered as one."""
        with self._transport():
            with self.http.stream("GET", path.lstrip("/"), params=params, headers=headers,
                                  timeout=httpx.Timeout(None, connect=10.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response)
                yield response

    # -- the CIMI verbs ------------------------------------------------------------------------------

    def get(self, rid: str, select: str | None = None) -> Json:
        return self.json("GET", rid, params={"select": select} if select else None)

    def search(self, rtype: str, *, filter: str | None = None, orderby: str | None = None,
               select: str | None = None, first: int | None = None, last: int | None = None,
               aggregation: str | None = None) -> Json:
        params = {k.replace("_", "-"): v for k, v in {
            "filter": filter, "orderby": orderby, "select": select, "first": first, "last": last,
            "aggregation": aggregation}.items() if v is not None}
        return self.json("GET", rtype, params=params)

    def add(self, rtype: str, body: Json) -> Json:
        return self.json("POST", rtype, json=body)

    def edit(self, rid: str, body: Json, select: str | None = None) -> Json:
        return self.json("PUT", rid, json=body, params={"select": select} if select else None)

    def delete(self, rid: str) -> Json:
        return self.json("DELETE", rid)

    def operation(self, rid: str, action: str, body: Json | None = None, expect: tuple[int, ...] = ()) -> Json:
        response = self.request("POST", f"{rid}/{action}", json=body or {}, expect=expect)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {"value": answer}


def quote(value: str) -> str:
    """A value as a CIMI filter string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pretty(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
