"""From an infrastructure-service to a driver: endpoint, decrypted TLS material, one driver per engine."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from ..drivers import TlsMaterial, get_driver
from ..drivers.base import Driver, DriverError
from ..resources.base import Services

_cache: dict[tuple[str, str], Driver] = {}
_lock = threading.Lock()


def engine_of(services: Services, infra_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The infrastructure-service and the engine credential that goes with it (if any)."""
    with services.store.read() as tx:
        infra = tx.get(infra_id)
        if infra is None:
            raise DriverError(f"the engine {infra_id} is no longer registered", reason="engine-unavailable")
        creds = [c for c in tx.find_all("credential", "parent", infra_id)
                 if c.get("subtype") == "infrastructure-service-swarm"]
    return infra, (creds[0] if creds else None)


def driver_for(services: Services, infra_id: str) -> Driver:
    infra, cred = engine_of(services, infra_id)
    tls = None
    if cred is not None and cred.get("cert"):
        ca = cred.get("ca") or ""
        # with a CA the engine's certificate is checked; without one it cannot be (Nuvla never checks)
        tls = TlsMaterial(cert=cred["cert"], key=services.keys.cipher.decrypt(cred.get("key", "")), ca=ca,
                          verify=bool(ca))
    fingerprint = hashlib.sha256(repr(tls).encode() + (tls.key.encode() if tls else b"")).hexdigest()
    key = (infra["endpoint"], fingerprint)
    with _lock:
        driver = _cache.get(key)
        if driver is None:
            # scoped to this installation: its lookups (and so its orphan sweep) see only what it created
            driver = _cache[key] = get_driver(infra["endpoint"], tls=tls,
                                              instance=services.extras.get("instance-id", ""))
    return driver
