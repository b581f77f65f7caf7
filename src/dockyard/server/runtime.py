"""Assembling a running server: settings → store (migrated) → keys → resource types → seeded data,
then the local engine, the workers and the reconciler."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..core.crypto import Keys
from ..core.settings import Settings
from ..resources.base import Services
from ..data import embedded_endpoint
from ..resources.bootstrap import bootstrap, register_local_engine, register_local_storage
from ..resources.registry import all_types
from ..store.db import Store

KEY_FILE = "master.key"
LOCAL_SOCKET = "unix:///var/run/docker.sock"
log = logging.getLogger("dockyard.runtime")


@dataclass
class Runtime:
    services: Services
    generated_admin_password: str | None
    background: list[Any] = field(default_factory=list)  # things with .stop()
    # extra addresses to listen on (where containers reach this server)
    extra_hosts: list[str] = field(default_factory=list)

    def stop(self) -> None:
        for part in reversed(self.background):
            part.stop()
        feed = self.services.extras.get("change-feed")
        if feed is not None:
            feed.stop()
        self.services.store.close()


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
    """The store, keys and types, seeded; nothing runs in the background yet."""
    os.makedirs(settings["data-dir"], exist_ok=True)
    store = Store(settings.database_url, pool_size=settings["db-pool-size"],
                  busy_timeout=settings["sqlite-busy-timeout"])
    store.migrate()
    services = Services(store=store, settings=settings, keys=Keys(master_key(settings)), types=all_types())
    password = bootstrap(services, settings["admin-password"].reveal())
    with store.write() as tx:
        # labels what this installation creates on engines, so that orphans are only ever its own
        services.extras["instance-id"] = tx.meta("instance-id", secrets.token_hex(8))
    store.optimize()
    register_local_storage(services, embedded_endpoint(public_url(settings)))
    return Runtime(services, password)


def public_url(settings: Settings) -> str:
    if settings["public-url"]:
        return settings["public-url"].rstrip("/")
    host = settings["host"]
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return f"http://{host}:{settings['port']}"


def attach_engine(runtime: Runtime) -> None:
    """Register the local Docker engine for every user when it answers and none is registered, and work
    out the address at which its containers reach this server (their NUVLA_ENDPOINT)."""
    from ..drivers import get_driver

    services = runtime.services
    settings = services.settings
    if settings["engine"] == "simulated":
        attach_simulated(runtime)
        return
    driver = get_driver(LOCAL_SOCKET, tls=None)
    info = driver.check()
    if not info.reachable:
        log.warning("no local Docker engine answers at %s: deployments need one (%s)", LOCAL_SOCKET, info.message)
        return
    register_local_engine(services, LOCAL_SOCKET, info.version)
    if settings["api-endpoint"]:
        services.extras["api-endpoint"] = settings["api-endpoint"].rstrip("/")
        return
    gateway = driver.host_address()
    if gateway:
        runtime.extra_hosts.append(gateway)
        services.extras["api-endpoint"] = f"http://{gateway}:{settings['port']}"


def attach_simulated(runtime: Runtime) -> None:
    """Register the simulated engine (``engine=simulated``: drivers/simulated.py) as the local engine, its
    state file shared by every process of the installation; its containers "reach" this server at its URL."""
    from ..drivers.simulated import endpoint_for

    services = runtime.services
    settings = services.settings
    path = settings["simulated-state"] or os.path.join(settings["data-dir"], "simulated-engine.db")
    register_local_engine(services, endpoint_for(path), "simulated")
    services.extras["api-endpoint"] = (settings["api-endpoint"] or public_url(settings)).rstrip("/")


def start_background(runtime: Runtime, *, workers: bool = True) -> None:
    from ..jobs.readiness import Prober
    from ..jobs.reconciler import Reconciler
    from ..jobs.worker import WorkerPool

    settings = runtime.services.settings
    if workers and settings["workers"] > 0:
        pool = WorkerPool(runtime.services, threads=settings["workers"], max_threads=settings["workers-max"],
                          lease=settings["job-lease"], poll=settings["job-poll"])
        pool.start()
        runtime.background.append(pool)
        reconciler = Reconciler(runtime.services, interval=settings["sweep-interval"])
        reconciler.start()
        runtime.background.append(reconciler)
        prober = Prober(runtime.services)  # readiness checks, beside the reconciler (jobs/readiness.py)
        prober.start()
        runtime.background.append(prober)


def http_server(config: Any) -> Any:
    """A ``uvicorn.Server`` for ``config`` that ends open event and log streams as soon as its graceful shutdown
    begins: uvicorn tells an application nothing until every response has finished, so they would hold the
    shutdown for its whole timeout."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            streams = getattr(getattr(config.app, "state", None), "streams", None)
            if streams is not None:
                streams.close()
            await super().shutdown(sockets=sockets)

    return Server(config)
