"""``dockyard login``, ``logout`` and ``whoami``: sessions kept in a profile."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from . import profiles
from .client import COOKIE, REFUSED, ApiError, CliError, Client
from .output import JSON_OPTION, fields, print_json


def login(
    endpoint: Optional[str] = typer.Option(None, "--endpoint", "-e",
                                           help="Dockyard (or Nuvla) address (default: the profile's, "
                                                "DOCKYARD_ENDPOINT, or http://127.0.0.1:8200)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p",
                                          help="Profile to keep the session in (default: DOCKYARD_PROFILE, the "
                                               "current one, or 'default'); it becomes the current one."),
    username: Optional[str] = typer.Option(None, "--username", "-u", help="User name (asked when missing)."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of standard input."),
    api_key: Optional[str] = typer.Option(None, "--api-key",
                                          help="Log in with an API key (credential/<uuid>); its secret is read "
                                               "from DOCKYARD_API_SECRET or asked. Only the session is kept."),
) -> None:
    """Log in and keep the session in a profile.

    Example: dockyard login --endpoint http://127.0.0.1:8200 --username jane
    """
    current = profiles.load(profile)
    target = (endpoint or profiles.endpoint_override() or current.endpoint).rstrip("/")
    if api_key:
        secret = os.environ.get("DOCKYARD_API_SECRET") or typer.prompt("API secret", hide_input=True)
        template = {"href": "session-template/api-key", "key": api_key, "secret": secret}
        who = api_key
    else:
        username = username or typer.prompt("Username")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CliError("--password-stdin: standard input holds no password", 2)
        else:
            password = typer.prompt("Password", hide_input=True)
        template = {"href": "session-template/password", "username": username, "password": password}
        who = username
    client = Client(target)
    response = client.request("POST", "session", json={"template": template})
    cookie = response.cookies.get(COOKIE)
    session_id = (response.json() or {}).get("resource-id")
    if not cookie or not session_id:
        raise CliError(f"{target} answered the login without a session cookie", 5)
    session = Client(target, cookie).get(session_id)
    profiles.save(profiles.Profile(current.name, target, cookie, session_id, session.get("user"),
                                   session.get("identifier") or who, extra=current.extra))
    typer.echo(f"Logged in to {target} as {session.get('identifier') or who} (profile {current.name}).")


def logout(
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Profile to log out of (default: the "
                                                                         "current one)."),
) -> None:
    """End the profile's session on the server and forget it.

    Example: dockyard logout
    """
    current = profiles.load(profile)
    if not current.cookie:
        typer.echo(f"Not logged in (profile {current.name}).")
        return
    client = Client(current.endpoint, current.cookie)
    try:
        if current.session:
            client.request("DELETE", current.session, expect=(401, 403, 404))
    finally:
        profiles.save(current.logged_out(), make_current=False)
    typer.echo(f"Logged out of {current.endpoint} (profile {current.name}).")


def whoami(as_json: bool = JSON_OPTION) -> None:
    """Who the current profile is logged in as, where, and until when.

    Example: dockyard whoami --json
    """
    current = profiles.load()
    client = profiles.connect()
    if not current.session:
        raise CliError("the profile holds no session: run `dockyard login`", REFUSED)
    try:
        session = client.get(current.session)
    except ApiError as exc:
        if exc.status in (401, 403, 404):
            raise CliError(f"the session of profile {current.name} has ended: run `dockyard login`",
                           REFUSED) from exc
        raise
    info = {"profile": current.name, "endpoint": client.endpoint, "username": session.get("identifier"),
            "user": session.get("user"), "session": session.get("id"), "method": session.get("method"),
            "expiry": session.get("expiry"), "active-claim": session.get("active-claim"),
            "roles": (session.get("roles") or "").split()}
    if as_json:
        print_json(info)
        return
    fields([("user", f"{info['username']} ({info['user']})"), ("endpoint", info["endpoint"]),
            ("profile", info["profile"]), ("login", info["method"]), ("expires", info["expiry"]),
            ("acting as", info["active-claim"]), ("roles", " ".join(info["roles"]))])
