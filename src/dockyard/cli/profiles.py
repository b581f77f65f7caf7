"""Profiles: which endpoint the CLI talks to, and the session it holds there.

One JSON file, ``$XDG_CONFIG_HOME/dockyard/profiles.json`` (``~/.config/dockyard/`` by default)::

    {"current": "default",
     "profiles": {"default": {"endpoint": "http://127.0.0.1:8200", "cookie": "<session cookie>",
                              "session": "session/<uuid>", "user": "user/<uuid>", "username": "jane"}}}

The session cookie is the only secret kept: a login with an API key keeps the session it opened, never the
key's secret. The file is created with mode 0600 (and its directory 0700) and replaced atomically, so it is
never readable by others nor half-written, even for an instant.

``DOCKYARD_PROFILE`` chooses the profile (else the file's ``current``, else ``default``);
``DOCKYARD_ENDPOINT`` overrides its endpoint. The cookie is sent only to the endpoint it was made for: with
another endpoint the commands run anonymously rather than hand a session to a server that did not issue it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import REFUSED, CliError, Client

DEFAULT_ENDPOINT = "http://127.0.0.1:8200"
DEFAULT_PROFILE = "default"
FILE_NAME = "profiles.json"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "dockyard"


def config_file() -> Path:
    return config_dir() / FILE_NAME


@dataclass
class Profile:
    name: str
    endpoint: str = DEFAULT_ENDPOINT
    cookie: str | None = None
    session: str | None = None
    user: str | None = None
    username: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        doc = {"endpoint": self.endpoint, "cookie": self.cookie, "session": self.session, "user": self.user,
               "username": self.username, **self.extra}
        return {k: v for k, v in doc.items() if v is not None}

    def logged_out(self) -> Profile:
        return Profile(self.name, self.endpoint, extra=self.extra)


def _read() -> dict[str, Any]:
    path = config_file()
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {"profiles": {}}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise CliError(f"{path} is not a Dockyard profiles file")
    return data


def _write(data: dict[str, Any]) -> None:
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILE_NAME
    tmp = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    # created 0600 (O_EXCL: never reuse a file someone else made), then renamed over the old one
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def active_name(explicit: str | None = None) -> str:
    return explicit or os.environ.get("DOCKYARD_PROFILE") or _read().get("current") or DEFAULT_PROFILE


def load(name: str | None = None) -> Profile:
    """The named (or active) profile as stored; an unknown name is an empty profile."""
    name = active_name(name)
    stored = _read()["profiles"].get(name) or {}
    known = {k: stored.get(k) for k in ("cookie", "session", "user", "username")}
    extra = {k: v for k, v in stored.items() if k not in known and k != "endpoint"}
    return Profile(name, stored.get("endpoint") or DEFAULT_ENDPOINT, extra=extra, **known)


def save(profile: Profile, make_current: bool = True) -> None:
    data = _read()
    data["profiles"][profile.name] = profile.as_json()
    if make_current:
        data["current"] = profile.name
    _write(data)


def endpoint_override() -> str | None:
    value = os.environ.get("DOCKYARD_ENDPOINT")
    return value.rstrip("/") if value else None


def connect(require_login: bool = True) -> Client:
    """A client for the active profile (with ``DOCKYARD_ENDPOINT`` applied)."""
    profile = load()
    endpoint = endpoint_override() or profile.endpoint
    same = endpoint.rstrip("/") == profile.endpoint.rstrip("/")
    cookie = profile.cookie if same else None
    if require_login and not cookie:
        where = "" if same else f" at {endpoint}"
        raise CliError(f"not logged in{where}: run `dockyard login`"
                       + ("" if profile.name == DEFAULT_PROFILE else f" --profile {profile.name}"), REFUSED)
    return Client(endpoint, cookie)
