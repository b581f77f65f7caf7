"""Every setting, declared once with its default and help text.

A setting is read from the environment variable ``DOCKYARD_<NAME>`` (upper case, ``-`` → ``_``) with an
explicit cast; command-line options override it. Secrets are wrapped in :class:`Secret` so that they never
print.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable


class Secret:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def one_of(*allowed: str) -> Callable[[str], str]:
    """A cast that accepts only ``allowed`` (in any case) and says which they are."""
    def cast(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {raw!r}")
        return value
    return cast


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    cast: Callable[[str], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address the HTTP server listens on."),
    Setting("port", 8200, "Port the HTTP server listens on.", int),
    Setting("data-dir", ".dockyard", "Directory for the SQLite database, keys and object storage."),
    Setting("database-url", "", "SQLAlchemy URL of the store; empty means a SQLite file in the data dir."),
    Setting("admin-password", Secret(""), "Password of the 'admin' user created on first start; "
            "generated and printed once when empty.", Secret),
    Setting("master-key", Secret(""), "Base64 of 32 bytes from which digest and encryption keys derive; "
            "empty means a key file in the data dir, made on first start. Share it between processes.", Secret),
    Setting("session-ttl", 7 * 24 * 3600, "Lifetime of a login session, in seconds.", int),
    Setting("max-body-bytes", 8 * 1024 * 1024, "Largest request body accepted, after decompression.", int),
    Setting("search-window", 10000, "Largest first+last window a search may ask for (as Nuvla).", int),
    Setting("sqlite-busy-timeout", 30.0, "Seconds a SQLite writer waits for the write lock.", float),
    Setting("request-threads", 8, "Threads doing request work in each process (the rest wait their turn).", int),
    Setting("db-pool-size", 16, "Connections kept open to PostgreSQL per process.", int),
    Setting("log-level", "info", "Log level of the server."),
    Setting("log-format", "text", "Format of the server log on stderr: text, or json (one object per line, "
            "with ids such as job, deployment, status and who as fields).", one_of(*LOG_FORMATS)),
    Setting("workers", 4, "Job worker threads kept ready in this process (0: none; run `dockyard worker` "
            "elsewhere).", int),
    Setting("workers-max", 64, "Job worker threads this process may run at once while jobs wait: a job mostly "
            "waits on its engine, so the pool grows from `workers` up to this, and shrinks again when idle.", int),
    Setting("job-lease", 30.0, "Seconds a claimed job stays a worker's without renewal.", float),
    Setting("job-poll", 1.0, "Seconds between queue polls when no wake-up arrives (other processes on SQLite).",
            float),
    Setting("sweep-interval", 30.0, "Seconds between full reconciliations of deployments with their engines.",
            float),
    Setting("stop-timeout", 10.0, "Seconds a stopping container gets before it is killed.", float),
    Setting("readiness-timeout", 120, "Seconds a started deployment's readiness checks may take before it is "
            "reported not ready, for apps whose 'readiness' names no timeout.", int),
    Setting("readiness-interval", 0.25, "Longest pause, in seconds, between two rounds of a deployment's "
            "readiness checks (the first rounds follow each other faster).", float),
    Setting("readiness-grace", 0.05, "Seconds a probe's TCP connection must stay open to count as accepted: "
            "the engine's port proxy accepts at once and closes when nothing listens behind it.", float),
    Setting("max-object-bytes", 5 * 1024 ** 3, "Largest object one PUT to the embedded store's signed URLs "
            "may carry.", int),
    Setting("public-url", "", "The URL users reach this server at (pre-signed object URLs point there); "
            "empty means http://<host>:<port> as served."),
    Setting("publish-ip", "", "Host address container ports are published on; empty means every address."),
    Setting("engine", "docker", "The local engine registered at start: docker (the engine at the local socket) or "
            "simulated (a no-op engine for measuring the control plane: nothing runs; never chosen unless set, and "
            "every process of an installation must set it).", one_of("docker", "simulated")),
    Setting("simulated-state", "", "The simulated engine's state file, shared by every process of the installation; "
            "empty means simulated-engine.db in the data dir."),
    Setting("simulated-start-delay", 0.0, "Seconds a simulated container takes to start.", float),
    Setting("simulated-stop-delay", 0.0, "Seconds a simulated container takes to stop.", float),
    Setting("swarm-probe-image", "busybox:stable", "A busybox-like image (httpd, wget, sh) on a swarm's nodes, "
            "with which Dockyard asks each swarm once whether its routing mesh answers; where the probe cannot "
            "run, services publish in host mode."),
    Setting("swarm-helper-image", "docker:cli", "An image with sh and the docker CLI on (or pullable by) a "
            "swarm's nodes: a stop with remove-volumes runs it once on every node to remove the deployment's "
            "named volumes there."),
    Setting("swarm-start-timeout", 120.0, "Seconds a Swarm service's replicas get to all run before its start "
            "fails.", float),
    Setting("public-hostname", "", "Host name users reach published ports at (the 'hostname' parameter); "
            "empty means localhost for a local engine, else the engine's host."),
    Setting("api-endpoint", "", "NUVLA_ENDPOINT given to containers; empty means this server on the "
            "address of the Docker bridge."),
    Setting("stream-heartbeat", 15.0, "Seconds between keep-alive comments on an idle event or log stream "
            "(proxies close silent connections).", float),
    Setting("stream-queue", 1000, "Events a slow event-stream subscriber may fall behind before it is "
            "dropped with a final 'overflow' event.", int),
    Setting("registry-timeout", 10.0, "Seconds a request to an image registry may take (a credential's check, "
            "the manifest check before a start).", float),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def env_name(name: str) -> str:
    return "DOCKYARD_" + name.upper().replace("-", "_")


@dataclass(frozen=True)
class Settings:
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        if name not in _BY_NAME:
            raise KeyError(name)
        return self.values.get(name, _BY_NAME[name].default)

    def with_(self, **overrides: Any) -> "Settings":
        merged = dict(self.values)
        for key, value in overrides.items():
            name = key.replace("_", "-")
            if name not in _BY_NAME:
                raise KeyError(name)
            if value is not None:
                merged[name] = value
        return replace(self, values=merged)

    @property
    def database_url(self) -> str:
        url = self["database-url"]
        if url:
            return url
        return f"sqlite:///{os.path.abspath(os.path.join(self['data-dir'], 'dockyard.db'))}"


def from_env(environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(env_name(setting.name))
        if raw is not None:
            try:
                values[setting.name] = setting.cast(raw)
            except ValueError as exc:
                raise ValueError(f"{env_name(setting.name)}: {exc}") from exc
    return Settings(values)
