"""From an engine credential to a driver: its engine's endpoint, its own decrypted TLS material, one driver each.

A driver is always opened with one named credential: a deployment's own (its ``parent``, as in Nuvla), or
the credential being checked. An engine may carry several credentials of several users; taking whichever
comes first would let one user act with another's TLS key.

``services`` is the server's ``resources.base.Services``, used for what it holds (its store to read the
credential, its keys to decrypt the TLS key, this installation's id): drivers sit below resources, so the
type is not imported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Any

from . import TlsMaterial, get_driver
from .base import Driver, DriverError, EngineInfo

ENGINE_CREDENTIAL = "infrastructure-service-swarm"
SIMULATED_SCHEME = "simulated://"  # drivers/simulated.py's endpoints

_cache: dict[tuple[str, str, str], Driver] = {}
_lock = threading.Lock()


def engine_of(services: Any, credential_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine credential ``credential_id`` and the infrastructure-service it opens."""
    with services.store.read() as tx:
        return engine_in(tx, credential_id)


def engine_in(tx: Any, credential_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``engine_of`` in the caller's read (a store transaction), beside what else it reads."""
    cred = tx.get(credential_id) if credential_id else None
    if cred is None or cred.get("subtype") != ENGINE_CREDENTIAL:
        raise DriverError(f"the engine credential {credential_id or '(none)'} is no longer registered",
                          reason="engine-unavailable")
    infra = tx.get(cred.get("parent", ""))
    if infra is None:
        raise DriverError(f"the engine {cred.get('parent')} is no longer registered", reason="engine-unavailable")
    return infra, cred


def driver_for(services: Any, credential_id: str) -> Driver:
    """The driver that speaks to the credential's engine with that credential's TLS material."""
    return driver_of(services, *engine_of(services, credential_id))


def driver_of(services: Any, infra: dict[str, Any], cred: dict[str, Any]) -> Driver:
    """``driver_for`` with the engine and credential already read (``engine_in``)."""
    if _simulated(services, infra):
        return _open(services, infra, cred, "simulated")
    # a swarm manager (as its last check found it) runs components as services; any other engine, containers
    return _open(services, infra, cred, "swarm" if infra.get("swarm-manager") else "docker")


def _simulated(services: Any, infra: dict[str, Any]) -> bool:
    """Whether ``infra`` is a simulated engine; one is opened only by a process set to use it (``engine``)."""
    if not infra.get("endpoint", "").startswith(SIMULATED_SCHEME):
        return False
    if services.settings["engine"] != "simulated":
        raise DriverError(f"the engine {infra['id']} is simulated, and this process is not set to use a simulated "
                          "engine (DOCKYARD_ENGINE=simulated)", reason="engine-unavailable")
    return True


def check(services: Any, credential_id: str) -> EngineInfo:
    """Ask the credential's engine what it is; of a swarm manager, also whether its routing mesh answers (the
    probe, about 16 s where it does not), so that starts use the stored answer instead of probing."""
    infra, cred = engine_of(services, credential_id)
    if _simulated(services, infra):
        return _open(services, infra, cred, "simulated").check()
    info = _open(services, infra, cred, "docker").check()
    if not info.swarm_manager:
        return info
    from .swarm import SwarmDriver  # here: importing this module imports no engine SDK

    swarm = _open(services, infra, cred, "swarm")
    assert isinstance(swarm, SwarmDriver)
    return dataclasses.replace(info, routing_mesh=swarm.probe_routing_mesh())


def _open(services: Any, infra: dict[str, Any], cred: dict[str, Any], engine: str) -> Driver:
    tls = None
    if cred.get("cert"):
        ca = cred.get("ca") or ""
        # with a CA the engine's certificate is checked; without one it cannot be (Nuvla never checks)
        tls = TlsMaterial(cert=cred["cert"], key=services.keys.cipher.decrypt(cred.get("key", "")), ca=ca,
                          verify=bool(ca))
    fingerprint = hashlib.sha256(repr(tls).encode() + (tls.key.encode() if tls else b"")).hexdigest()
    options: dict[str, Any] = {}
    if engine == "swarm":
        options = {"probe_image": services.settings["swarm-probe-image"],
                   "helper_image": services.settings["swarm-helper-image"],
                   "start_timeout": services.settings["swarm-start-timeout"],
                   "routing_mesh": infra.get("swarm-routing-mesh")}
    if engine == "simulated":
        options = {"start_delay": services.settings["simulated-start-delay"],
                   "stop_delay": services.settings["simulated-stop-delay"]}
    key = (infra["endpoint"], fingerprint, engine, options.get("routing_mesh"))
    with _lock:
        driver = _cache.get(key)
        if driver is None:
            # scoped to this installation: its lookups (and so its orphan sweep) see only what it created
            driver = _cache[key] = get_driver(infra["endpoint"], tls=tls, engine=engine,
                                              instance=services.extras.get("instance-id", ""), **options)
    return driver
