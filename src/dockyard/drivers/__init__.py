"""Container-engine drivers, chosen by name.

``get_driver(endpoint, tls, engine="docker")`` returns a :class:`~dockyard.drivers.base.Driver`. Built-in
engines are listed in ``_BUILTIN`` and imported only when chosen, so importing this package does not import
an engine SDK. Other packages add engines through the entry-point group ``dockyard.drivers``
(``name = "module:Class"``), as jupyterhub spawners do.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from dockyard.drivers.base import Driver, DriverError

__all__ = ["ENTRY_POINT_GROUP", "TlsMaterial", "engine_names", "get_driver"]

ENTRY_POINT_GROUP = "dockyard.drivers"
_BUILTIN = {
    "docker": "dockyard.drivers.docker:DockerDriver",
    "swarm": "dockyard.drivers.swarm:SwarmDriver",
    "simulated": "dockyard.drivers.simulated:SimulatedDriver",  # for measurement; only by explicit setting
}


@dataclass(frozen=True)
class TlsMaterial:
    """A TLS client identity for a remote engine, as PEM text (a Nuvla ``infrastructure-service-swarm`` credential).

    ``verify``: check the engine's certificate (chain and host name) against ``ca``. Nuvla itself never
    verifies it, so a credential that works there may need ``verify=False`` here. Without ``ca`` the
    engine's certificate is not checked.
    """

    cert: str
    key: str = field(repr=False)
    ca: str = ""
    verify: bool = True


def engine_names() -> list[str]:
    """The names ``get_driver`` accepts."""
    return sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _load(engine: str) -> type[Driver]:
    target = _BUILTIN.get(engine)
    if target is None:
        found = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == engine]
        if not found:
            raise DriverError(f"Unknown container engine '{engine}'; known engines: {', '.join(engine_names())}.",
                              reason="unknown-engine")
        target = found[0]
    module, _, name = target.partition(":")
    cls: type[Driver] = getattr(importlib.import_module(module), name)
    return cls


def get_driver(endpoint: str | None = None, tls: TlsMaterial | None = None, *, engine: str = "docker",
               **options: Any) -> Driver:
    """A driver for the engine named ``engine`` at ``endpoint`` (``None``: the local engine).

    ``endpoint`` is ``unix:///path``, ``tcp://host:port`` or ``https://host:port``; ``options`` go to the
    driver's constructor (for docker: ``timeout``). Raises DriverError ``unknown-engine``.
    """
    driver: Driver = _load(engine)(endpoint, tls, **options)  # type: ignore[call-arg]
    return driver
