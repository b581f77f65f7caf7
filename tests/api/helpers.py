"""Helpers shared by the HTTP-level tests: raw httpx callers, users, logins, documents and counts.

Everything goes over HTTP to a live ``dockyard serve``; nothing here reaches into the server's process.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from ..conftest import ADMIN_PASSWORD

COOKIE = "com.sixsq.nuvla.cookie"
DOC_TYPE = "infrastructure-service-group"
PASSWORD_TEMPLATE = "session-template/password"
API_KEY_TEMPLATE = "session-template/api-key"
KEY_TEMPLATE = "credential-template/generate-api-key"


class Caller:
    """One HTTP client with its own cookie jar, talking to ``<endpoint>/api``."""

    def __init__(self, server: Any, cookie: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.server = server
        self.api = server.endpoint + "/api"
        # plain http on loopback: no CA bundle to load (it costs ~0.1 s per client)
        self.http = httpx.Client(base_url=self.api + "/", timeout=30, headers=headers or {}, verify=False)
        if cookie:
            self.http.cookies.set(COOKIE, cookie)
        self.user_id: str | None = None
        self.session_id: str | None = None
        self.login_response: httpx.Response | None = None

    # -- raw verbs --------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path.lstrip("/"), **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    # -- sessions ---------------------------------------------------------------------------------

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def login_password(self, username: str, password: str, **kwargs: Any) -> httpx.Response:
        resp = self.post("session", json={"template": {"href": PASSWORD_TEMPLATE, "username": username,
                                                      "password": password}}, **kwargs)
        self._logged_in(resp)
        return resp

    def login_key(self, key: str, secret: str) -> httpx.Response:
        resp = self.post("session", json={"template": {"href": API_KEY_TEMPLATE, "key": key, "secret": secret}})
        self._logged_in(resp)
        return resp

    def _logged_in(self, resp: httpx.Response) -> None:
        self.login_response = resp
        if resp.status_code == 201:
            self.session_id = resp.json()["resource-id"]

    def logout(self) -> httpx.Response:
        assert self.session_id, "not logged in"
        return self.delete(self.session_id)

    def current_session(self) -> dict[str, Any]:
        resp = self.get("session")
        assert resp.status_code == 200, resp.text
        return resp.json()

    # -- searches ---------------------------------------------------------------------------------

    def search(self, rtype: str, **params: Any) -> httpx.Response:
        return self.get(rtype, params=params)

    def count(self, rtype: str, filter: str | None = None) -> int:
        params = {"last": 0}
        if filter is not None:
            params["filter"] = filter
        resp = self.search(rtype, **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["resources"] == []
        return body["count"]

    def ids(self, rtype: str, filter: str | None = None) -> set[str]:
        params = {} if filter is None else {"filter": filter}
        resp = self.search(rtype, **params)
        assert resp.status_code == 200, resp.text
        return {r["id"] for r in resp.json()["resources"]}

    # -- documents --------------------------------------------------------------------------------

    def add(self, rtype: str, body: Any) -> str:
        resp = self.post(rtype, json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()["resource-id"]

    def new_doc(self, **fields: Any) -> str:
        """An ``infrastructure-service-group``: a plain resource every user may create."""
        return self.add(DOC_TYPE, {"name": "doc", "description": "a test document", **fields})

    def new_key(self, ttl: int = 0, **extra: Any) -> tuple[str, str]:
        body = {"template": {"href": KEY_TEMPLATE, "ttl": ttl}, "name": "test key", **extra}
        resp = self.post("credential", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()["resource-id"], resp.json()["secret-key"]

    def close(self) -> None:
        self.http.close()


def anonymous(server: Any, **kwargs: Any) -> Caller:
    return Caller(server, **kwargs)


def admin(server: Any) -> Caller:
    caller = Caller(server)
    resp = caller.login_password("admin", ADMIN_PASSWORD)
    assert resp.status_code == 201, resp.text
    return caller


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_user(admin_caller: Caller, username: str | None = None) -> tuple[str, str, str]:
    """(user id, username, password) of a new active user."""
    username = username or unique("u")
    password = "pw-" + username
    uid = admin_caller.add("user", {"template": {"href": "user-template/username-password",
                                                 "username": username, "password": password}})
    return uid, username, password


def make_user(server: Any, admin_caller: Caller) -> Caller:
    """A new user, logged in with a password; ``caller.user_id`` is their id."""
    uid, username, password = create_user(admin_caller)
    caller = Caller(server)
    resp = caller.login_password(username, password)
    assert resp.status_code == 201, resp.text
    caller.user_id = uid
    caller.username, caller.password = username, password  # type: ignore[attr-defined]
    return caller


def relogin(caller: Caller) -> Caller:
    """A fresh password session for the same user (claims are taken at login)."""
    fresh = Caller(caller.server)
    resp = fresh.login_password(caller.username, caller.password)  # type: ignore[attr-defined]
    assert resp.status_code == 201, resp.text
    fresh.user_id = caller.user_id
    fresh.username, fresh.password = caller.username, caller.password  # type: ignore[attr-defined]
    return fresh


def new_group(owner: Caller, members: list[str]) -> str:
    ident = unique("g")
    return owner.add("group", {"template": {"href": "group-template/generic", "group-identifier": ident},
                               "users": members})


def error_of(resp: httpx.Response) -> tuple[int, str]:
    """(status, message) of an error answer, after checking Nuvla's error shape."""
    body = resp.json()
    assert body["status"] == resp.status_code, body
    return resp.status_code, body["message"]


def forbidden(rid: str) -> tuple[int, str]:
    return 403, f"invalid credentials for '{rid}'"


def set_cookie_attributes(resp: httpx.Response) -> list[str]:
    """The attributes (lower-cased names) of the session Set-Cookie header of a response."""
    headers = [h for h in resp.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    assert len(headers) == 1, resp.headers
    return [part.strip().split("=", 1)[0].lower() for part in headers[0].split(";")[1:]]
