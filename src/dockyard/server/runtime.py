"""Assembling a running server: settings → store (migrated) → keys → resource types → seeded data."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from ..core.crypto import Keys
from ..core.settings import Settings
from ..resources.base import Services
from ..resources.bootstrap import bootstrap
from ..resources.registry import all_types
from ..store.db import Store

KEY_FILE = "master.key"


@dataclass
class Runtime:
    services: Services
    generated_admin_password: str | None


def master_key(settings: Settings) -> bytes:
    configured = settings["master-key"]
    if configured:
        key = base64.b64decode(configured.reveal())
        if len(key) < 32:
            raise ValueError("DOCKYARD_MASTER_KEY must be the base64 of at least 32 bytes")
        return key
    path = os.path.join(settings["data-dir"], KEY_FILE)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    with open(path, "rb") as f:
        return f.read()


def start(settings: Settings) -> Runtime:
    os.makedirs(settings["data-dir"], exist_ok=True)
    store = Store(settings.database_url, pool_size=settings["db-pool-size"],
                  busy_timeout=settings["sqlite-busy-timeout"])
    store.migrate()
    services = Services(store=store, settings=settings, keys=Keys(master_key(settings)), types=all_types())
    password = bootstrap(services, settings["admin-password"].reveal())
    return Runtime(services, password)
