"""Readiness: when a started deployment's service is usable, as its app's ``readiness`` says.

An app (module content) may declare, all keys optional::

    readiness: {tcp: true, http: {port: 80, path: /, status: 200}, output-parameters: [token], timeout: 120}

Every published TCP port must accept a connection (unless ``tcp`` is false); ``http`` adds a ``GET path``
on that port answered with ``status`` (default ``/`` and 200); each of ``output-parameters`` must be set
(not empty); all within ``timeout`` seconds of the start (default: the ``readiness-timeout`` setting).
An app without ``readiness`` gets the TCP check alone; one with nothing to check is ready when STARTED.

A compose application is checked the same way over all its services: every TCP port its file publishes
(``<service>.tcp.<port>``, at ``<service>.hostname`` where a swarm publishes it on a node, else at
``hostname``), and ``http`` names its ``service``.

The deployment says where it stands:

* no ``ready``: not known yet. The deployment is not STARTED, or it is and its checks run;
  ``ready-message`` then says what they wait for;
* ``ready: true`` and the phase ``ready`` (when the last check passed): usable;
* ``ready: false``: the checks did not pass within the timeout. The deployment stays STARTED (its
  container runs) and ``ready-message`` says which check failed and how.

Every change of state clears ``ready`` and its message (a stop, an ERROR, an update: the service that
passed is gone or about to be replaced); each move to STARTED starts the checks again. The rules here
run inside the write that changes the state (``deployment._set``), so readiness costs one write of its
own per start: its outcome. The checks themselves run in :mod:`dockyard.jobs.readiness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.time import now_ts
from . import compose

STARTED, STARTING, UPDATING = "STARTED", "STARTING", "UPDATING"
FIELDS = ("ready", "ready-message")


def port_key(service: str, port: int) -> str:
    """The parameter holding the host port a target TCP port is published at: ``tcp.<port>`` of a component,
    ``<service>.tcp.<port>`` of an application's service."""
    return f"{service}.tcp.{port}" if service else f"tcp.{port}"


def host_of(params: dict[str, str], key: str) -> str:
    """Where the port of parameter ``key`` answers: its service's own ``hostname`` (a swarm's node) if it has
    one, else the deployment's."""
    service = key.rsplit(".tcp.", 1)[0] if ".tcp." in key else ""
    return (service and params.get(f"{service}.hostname")) or params.get("hostname") or "localhost"


@dataclass(frozen=True)
class HttpCheck:
    port: int  # the app's (target) port; probed at its published host port
    path: str = "/"
    status: int = 200
    service: str = ""  # an application's service that publishes ``port``; "" for a component

    @property
    def key(self) -> str:
        return port_key(self.service, self.port)

    @property
    def where(self) -> str:
        return f"{self.service} port {self.port}" if self.service else f"port {self.port}"


@dataclass(frozen=True)
class Spec:
    """What one deployment must pass to be ready."""

    tcp_ports: tuple[str, ...]  # the parameters (``port_key``) of the published ports that must accept
    http: HttpCheck | None
    outputs: tuple[str, ...]  # output parameters that must be set
    timeout: int  # seconds, from the start

    @property
    def empty(self) -> bool:
        return not (self.tcp_ports or self.http or self.outputs)

    def waiting(self) -> str:
        """What the checks wait for, as ``ready-message`` says while they run."""
        parts = [f"{key} accepts connections" for key in self.tcp_ports]
        if self.http:
            parts.append(f"GET {self.http.path} on {self.http.where} answers {self.http.status}")
        parts += [f"output parameter {name} is set" for name in self.outputs]
        listed = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return f"waiting until {listed} (at most {self.timeout} s)"


def spec_of(dep: dict[str, Any], default_timeout: int) -> Spec:
    content = (dep.get("module") or {}).get("content") or {}
    readiness = content.get("readiness") or {}
    if "docker-compose" in content:  # an application: every service's published TCP ports
        tcp = [port_key(service, port)
               for service, ports in compose.published_tcp(content["docker-compose"]).items() for port in ports]
    else:
        tcp = [port_key("", p["target-port"]) for p in content.get("ports") or [] if p.get("protocol", "tcp") == "tcp"]
    http = readiness.get("http")
    check = HttpCheck(http["port"], http.get("path", "/"), http.get("status", 200), http.get("service", "")) \
        if http else None
    if readiness.get("tcp") is False:
        tcp = []
    elif check is not None:
        tcp = [key for key in tcp if key != check.key]  # an HTTP answer says more than an accepted connection
    return Spec(tuple(dict.fromkeys(tcp)), check, tuple(readiness.get("output-parameters") or ()),
                int(readiness.get("timeout") or default_timeout))


def generation(dep: dict[str, Any]) -> str:
    """Which run of the service the checks are for: a new start, an update or a restart is another."""
    task = dep.get("task") or {}
    return f"{(dep.get('phases') or {}).get('started', '')}|{task.get('id', '')}|{task.get('started', '')}"


def since(dep: dict[str, Any]) -> float:
    """Epoch seconds the timeout counts from: the later of the start phase and the container's own start
    (the engine restarted it, or it runs again after an ERROR)."""
    stamps = [(dep.get("phases") or {}).get("started"), (dep.get("task") or {}).get("started")]
    times = [_epoch(s) for s in stamps if s]
    return max([t for t in times if t is not None] or [_epoch(dep.get("updated") or now_ts()) or 0.0])


def _epoch(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


def pending(dep: dict[str, Any]) -> bool:
    """Whether the deployment waits for its checks."""
    return dep.get("state") == STARTED and dep.get("ready") is None


def follow_state(current: dict[str, Any], new: dict[str, Any], given: set[str],
                 default_timeout: int) -> None:
    """The readiness fields that the write of ``new`` over ``current`` implies (edits ``new``)."""
    if new.get("ready"):
        new.pop("ready-message", None)
    if new["state"] == current["state"] or "ready" in given:
        return
    for key in FIELDS:
        new.pop(key, None)
    phases = dict(new.get("phases") or {})
    if new["state"] in (STARTING, UPDATING) and phases.pop("ready", None):
        new["phases"] = phases
    if new["state"] == STARTED:
        spec = spec_of(new, default_timeout)
        if spec.empty:
            new["ready"] = True
            new["phases"] = {**phases, "ready": phases.get("started") or now_ts()}
        else:
            new["ready-message"] = spec.waiting()
