"""The Docker driver: one container per deployment on a Docker engine, through the Engine API (``docker`` SDK).

How a :class:`TaskSpec` becomes a container (Nuvla's legacy component deploy, reference §2.5, with the Swarm
service replaced by a plain container):

==============  ==================================================================================================
image           pulled only when missing locally, with ``X-Registry-Auth`` from ``registry_auth``
name            ``spec.name`` as given (the caller derives a DNS-safe one and stores it)
env, command    as given
labels          ``spec.labels`` plus ``dockyard.deployment-id`` and ``dockyard.managed=true`` (ours win)
ports           each :class:`PortSpec` is exposed and bound on ``publish_ip`` ("" = every address) to
                ``published``, or to an ephemeral host port the engine picks; the real ports are read back
mounts          the Mounts API: volume (local driver options, labelled with the deployment), bind, tmpfs;
                anonymous volumes are removed with the container (stop, destroy, orphans), named ones are kept
cpus, memory    Nuvla's 10 % tolerance: NanoCpus = cpus × 1.1 (capped at the engine's CPU count),
                Memory = MiB × 1.1, MemoryReservation = MiB
restart         none → ``no``; on-failure → ``on-failure`` with MaximumRetryCount = max_attempts
                (None or 0: no limit, as in Swarm); any → ``unless-stopped``: restarts whatever the exit
                code, like Swarm's ``any``, but a container that dockyard stopped stays stopped when the
                engine restarts (``always`` would start it again). Docker counts attempts only for
                on-failure, so max_attempts is ignored with any.
==============  ==================================================================================================

Every SDK call goes through :meth:`DockerDriver._call`, which translates ``docker.errors`` and ``requests``
errors into :class:`DriverError` where they enter; a 404 becomes reason ``not-found`` and a 409 ``conflict``,
which the cleanup verbs count as done.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import ssl
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import docker
import docker.constants
import docker.errors
import docker.types
import requests
import requests.adapters

from dockyard.core.time import format_ts, now_ts, parse_ts
from dockyard.drivers import TlsMaterial
from dockyard.drivers.base import (
    CREATED, EXITED, LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_MANAGED, LABEL_SERVICE, MISSING, RESTARTING, RUNNING,
    Capabilities, Driver, DriverError, EngineEvent, EngineInfo, MountSpec, PublishedPort, RegistryAuth, StackSpec,
    StartResult, StopSignal, TaskSpec, TaskStats, TaskStatus,
)

log = logging.getLogger(__name__)

LOCAL_ENDPOINT = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60.0  # seconds an API call may take (a pull's progress stream is not bounded by it)
CLOSE_POLL = 0.1  # seconds between looks at a StopSignal while a stream is open
MIB = 1024 * 1024

# reasons (DriverError.reason); the first two are internal and never leave this module from a public verb
NOT_FOUND = "not-found"
CONFLICT = "conflict"
IMAGE_NOT_FOUND = "image-not-found"
REGISTRY_AUTH = "registry-auth"
REGISTRY_UNAVAILABLE = "registry-unavailable"
PORT_CONFLICT = "port-conflict"
ENGINE_UNAVAILABLE = "engine-unavailable"
ENGINE_TLS = "engine-tls"
ENGINE_ERROR = "engine-error"
START_FAILED = "start-failed"
INVALID_SPEC = "invalid-spec"

# "removing": the engine is removing the container (`docker rm -f` kills it first), so it is gone already;
# read as exited, a look between its kill and its removal would report the kill's exit code instead
_STATES = {"created": CREATED, "running": RUNNING, "paused": RUNNING, "restarting": RESTARTING,
           "removing": MISSING, "exited": EXITED, "dead": EXITED}
_RESTART = {"none": "no", "on-failure": "on-failure", "any": "unless-stopped"}
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_PORT_TAKEN = ("port is already allocated", "address already in use")
_QUIET_EVENTS = ("exec_", "attach", "resize", "top", "archive-path", "extract-to-dir", "export", "commit",
                 "copy", "detach")


class DockerDriver(Driver):
    """A plain Docker engine, local (unix socket) or remote (``tcp://``/``https://`` with a TLS client cert)."""

    capabilities = Capabilities(swarm=False, logs_follow=True, events=True, stats=True, stacks=True)

    def __init__(self, endpoint: str | None = None, tls: TlsMaterial | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, instance: str = "") -> None:
        """``instance``: when set, the driver labels what it creates with ``dockyard.instance=<instance>``
        and sees only containers carrying it, so that several Dockyard installations (or test sessions)
        sharing one engine never take each other's containers for orphans."""
        self.endpoint = endpoint or LOCAL_ENDPOINT
        self.timeout = timeout
        self.instance = instance
        self._tls = tls
        self._client: docker.APIClient | None = None
        self._ncpu: int | None = None
        self._lock = threading.Lock()
        self._cleanup = weakref.finalize(self, _forget, None)

    # -- connection ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection. The driver reconnects if used again."""
        with self._lock:
            self._client = None
            self._cleanup()

    def __enter__(self) -> DockerDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _api(self) -> docker.APIClient:
        """The SDK client, made on first use; it asks the engine its API version, so this may raise."""
        with self._lock:
            if self._client is None:
                context = _tls_context(self._tls, self.endpoint) if self._tls is not None else None
                self._client = _EngineClient(self.endpoint, self.timeout, context)
                self._cleanup.detach()
                self._cleanup = weakref.finalize(self, _forget, self._client)
            return self._client

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """Run one ``APIClient`` method; every SDK or transport error becomes a DriverError here."""
        try:
            return getattr(self._api(), op)(*args, **kwargs)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            if not isinstance(exc, docker.errors.NotFound):
                log.debug("docker %s failed: %s", op, exc)
            raise _translate(exc, self.endpoint) from exc

    def _stream(self, stream: Any) -> Iterator[Any]:
        """Iterate an SDK stream; transport errors while reading are translated too."""
        iterator = iter(stream)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
                raise _translate(exc, self.endpoint) from exc
            yield item

    # -- Driver verbs -------------------------------------------------------------------------------------

    def check(self) -> EngineInfo:
        try:
            version = self._call("version", api_version=False)
            info = self._call("info")
        except DriverError as err:
            return EngineInfo(reachable=False, message=err.message)
        swarm = info.get("Swarm") or {}
        active = swarm.get("LocalNodeState") == "active"
        manager = active and bool(swarm.get("ControlAvailable"))
        return EngineInfo(reachable=True, version=version.get("Version", ""), swarm=active, swarm_manager=manager,
                          nodes=int(swarm.get("Nodes") or 0) if manager else 0)

    def start(self, spec: TaskSpec) -> StartResult:
        """Create and start the task's container. The create is tried first, as ``docker run`` does: the image
        is pulled only when the engine lacks it (404), and the deployment's old container (its name is the
        deployment's: a retried start, an update, a start after ERROR) is removed only when the name is taken
        (409), so that a first start costs the engine no look-up beyond create, start and inspect."""
        _validate(spec)
        try:
            container_id, pulled = self._create_fresh(spec)
            created = now_ts()
            self._start(spec, container_id)
            started = now_ts()
            status = self._status(spec.deployment_id, container_id)
        except BaseException:
            self._remove_quietly(spec.deployment_id)
            raise
        return StartResult(status, phases=(("pulled", pulled), ("created", created), ("started", started)))

    def deploy_stack(self, spec: StackSpec) -> StartResult:
        """A compose project, with Debian's ``docker-compose`` (:mod:`.compose`)."""
        from dockyard.drivers import compose

        return compose.deploy(self, spec)

    def stop(self, deployment_id: str, timeout: float = 10.0) -> None:
        for container_id in self._container_ids(deployment_id):
            self._done_if_gone("stop", container_id, timeout=max(0, math.ceil(timeout)))

    def destroy(self, deployment_id: str, *, remove_volumes: bool = False) -> None:
        """Anonymous volumes go with their container, whatever ``remove_volumes`` says: no later container can
        mount them again, so keeping them would only leak them. Named volumes are the user's data and stay;
        a compose project's go with ``remove_volumes``, and its networks always (:mod:`.compose`)."""
        from dockyard.drivers import compose

        self._remove_all(deployment_id, volumes=True)
        compose.remove_resources(self, deployment_id, remove_volumes=remove_volumes)

    def inspect(self, deployment_id: str) -> list[TaskStatus]:
        found = []
        for container_id in self._container_ids(deployment_id):
            try:
                found.append(self._status(deployment_id, container_id))
            except DriverError as err:
                if err.reason != NOT_FOUND:
                    raise
        return found

    def logs(self, deployment_id: str, *, since: str | None = None, tail: int | None = None,
             timestamps: bool = True) -> list[str]:
        containers = self._list([f"{LABEL_DEPLOYMENT}={deployment_id}"])
        if compose_services := _compose().services_of(containers):  # an application: every service's lines
            return _compose().logs(self, compose_services, since=since, tail=tail, timestamps=timestamps)
        ids = [c["Id"] for c in containers]
        if not ids:
            return []
        try:
            raw = self._call("logs", ids[-1], stdout=True, stderr=True, timestamps=timestamps,
                             tail="all" if tail is None else tail, since=_epoch(since))
        except DriverError as err:
            if err.reason == NOT_FOUND:
                return []
            raise
        return raw.decode("utf-8", errors="replace").splitlines()

    def follow_logs(self, deployment_id: str, stop: StopSignal, *, tail: int | None = 0) -> Iterator[str]:
        """Lines with their engine timestamps, as written; ends when ``stop`` is set, the container is
        removed, or it exits for good (followed again across restarts). An application's: every service's."""
        containers = self._list([f"{LABEL_DEPLOYMENT}={deployment_id}"])
        if compose_services := _compose().services_of(containers):
            return _compose().follow(self, compose_services, stop, tail=tail)
        ids = [c["Id"] for c in containers]
        if not ids:
            return iter(())
        stream = self._open_logs(ids[-1], tail=tail)
        return self._follow(ids[-1], stream, stop)

    def follow_stats(self, deployment_id: str, stop: StopSignal) -> Iterator[TaskStats]:
        """The engine's own stream of samples (one a second) of the newest container, as ``docker stats``
        computes them; ends when ``stop`` is set or the container stops or goes."""
        ids = self._container_ids(deployment_id)
        if not ids:
            return iter(())
        # the SDK's stats() is a bare generator, which another thread cannot close: a cancellable stream over
        # the response, as the SDK builds for logs, lets stop end a blocked read at once
        api = self._api()
        response = self._call("_get", api._url("/containers/{0}/stats", ids[-1]), params={"stream": True},
                              stream=True)
        try:
            api._raise_for_status(response)
        except docker.errors.APIError as exc:
            response.close()
            raise _translate(exc, self.endpoint) from exc
        stream = docker.types.CancellableStream(api._stream_helper(response, decode=True), response)
        return self._samples(stream, stop)

    def _samples(self, stream: Any, stop: StopSignal) -> Iterator[TaskStats]:
        with _closed_on(stop, stream):
            for raw in self._stream_until_closed(stream, stop):
                sample = _stats(raw)
                if sample is None:  # the container is no longer running: the engine sends zeros
                    return
                yield sample

    def events(self, stop: StopSignal, since: str | None = None) -> Iterator[EngineEvent]:
        """Engine events of managed containers from ``since`` (default: now). The stream is opened before
        this returns, so an event that happens after the call is never missed."""
        filters = {"type": ["container"], "label": self._scope()}
        start = _epoch(since) or datetime.now(timezone.utc).timestamp()
        stream = self._call("events", since=start, filters=filters, decode=True)
        return self._events(stream, stop)

    def host_address(self) -> str | None:
        """The gateway of the engine's default bridge: where its containers reach the engine's host."""
        try:
            network = self._call("inspect_network", "bridge")
        except DriverError:
            return None
        return _gateway((network.get("IPAM") or {}).get("Config") or [])

    def managed(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for container in self._list([LABEL_DEPLOYMENT]):
            found.setdefault(container["Labels"][LABEL_DEPLOYMENT], []).append(container["Id"])
        return found

    # -- start, step by step ------------------------------------------------------------------------------

    def _ensure_image(self, spec: TaskSpec) -> None:
        try:
            self._call("inspect_image", spec.image)
            return
        except DriverError as err:
            if err.reason != NOT_FOUND:
                raise
        auth = _auth_config(spec.registry_auth)
        try:
            progress = self._stream(self._call("pull", spec.image, stream=True, decode=True, auth_config=auth))
            failures = [line["error"] for line in progress if line.get("error")]
        except DriverError as err:
            if err.reason in (ENGINE_UNAVAILABLE, ENGINE_TLS):
                raise
            raise _pull_error(spec.image, err.message, auth is not None) from err
        if failures:
            raise _pull_error(spec.image, failures[0], auth is not None)

    def _create_fresh(self, spec: TaskSpec) -> tuple[str, str]:
        """The new container's id and when its image was known to be there (the ``pulled`` phase)."""
        pulled = now_ts()
        for _ in range(3):  # an image pulled, an old container removed, then the create that counts
            try:
                return self._create(spec), pulled
            except _CreateRefused as refused:
                if refused.reason == NOT_FOUND:
                    self._ensure_image(spec)
                    pulled = now_ts()
                else:
                    self._remove_all(spec.deployment_id, volumes=True)
                last = refused.error
        raise last

    def _create(self, spec: TaskSpec) -> str:
        try:
            host_config = self._call("create_host_config", **self._host_config(spec))
            created = self._call("create_container", spec.image, name=spec.name,
                                 command=list(spec.command) if spec.command is not None else None,
                                 environment=[f"{key}={value}" for key, value in spec.env],
                                 labels=self._labels(spec), ports=[(p.target, p.protocol) for p in spec.ports],
                                 host_config=host_config)
        except DriverError as err:
            if err.reason in (NOT_FOUND, CONFLICT):  # no such image, or the name is taken
                raise _CreateRefused(err.reason, _start_error(spec, err, "create")) from err
            raise _start_error(spec, err, "create") from err
        return str(created["Id"])

    def _start(self, spec: TaskSpec, container_id: str) -> None:
        try:
            self._call("start", container_id)
        except DriverError as err:
            raise _start_error(spec, err, "start") from err

    def _labels(self, spec: TaskSpec) -> dict[str, str]:
        ours = {LABEL_DEPLOYMENT: spec.deployment_id, LABEL_MANAGED: "true"}
        if self.instance:
            ours[LABEL_INSTANCE] = self.instance
        return {**dict(spec.labels), **ours}

    def _host_config(self, spec: TaskSpec) -> dict[str, Any]:
        config: dict[str, Any] = {
            "port_bindings": _port_bindings(spec),
            "mounts": [_mount(spec, m) for m in spec.mounts],
            "restart_policy": _restart_policy(spec),
            # an init process as PID 1 forwards SIGTERM and reaps zombies: most apps run their server as
            # PID 1 without a signal handler, which the kernel then never stops, so each stop would wait
            # out the kill timeout (10 s) instead of taking milliseconds
            "init": True,
        }
        if spec.cpus is not None:
            config["nano_cpus"] = self._nano_cpus(spec.cpus)
        if spec.memory_mib is not None:
            config["mem_limit"] = spec.memory_mib * MIB * 11 // 10
            config["mem_reservation"] = spec.memory_mib * MIB
        return config

    def _nano_cpus(self, cpus: float) -> int:
        if self._ncpu is None:
            self._ncpu = int(self._call("info").get("NCPU") or 0)
        if cpus <= 0 or (self._ncpu and cpus > self._ncpu):
            raise DriverError(f"The app asks for {cpus:g} CPUs but the engine has {self._ncpu}.",
                              reason=INVALID_SPEC)
        limit = cpus * 1.1
        if self._ncpu:
            limit = min(limit, float(self._ncpu))
        return int(round(limit * 1e9))

    # -- containers of a deployment -----------------------------------------------------------------------

    def _scope(self) -> list[str]:
        """Label filters matching every container this driver manages."""
        scope = [f"{LABEL_MANAGED}=true"]
        return scope + [f"{LABEL_INSTANCE}={self.instance}"] if self.instance else scope

    def _list(self, labels: list[str]) -> list[dict[str, Any]]:
        filters = {"label": self._scope() + labels}
        found: list[dict[str, Any]] = self._call("containers", all=True, filters=filters)
        return sorted(found, key=lambda c: (c.get("Created", 0), c["Id"]))

    def _container_ids(self, deployment_id: str) -> list[str]:
        """Ids of the deployment's containers, oldest first."""
        return [c["Id"] for c in self._list([f"{LABEL_DEPLOYMENT}={deployment_id}"])]

    def _status(self, deployment_id: str, container_id: str) -> TaskStatus:
        return _task_status(deployment_id, self._call("inspect_container", container_id))

    def _done_if_gone(self, op: str, container_id: str, **kwargs: Any) -> None:
        """Stop or remove a container; one that is gone (404) or already going (409) counts as done."""
        try:
            self._call(op, container_id, **kwargs)
        except DriverError as err:
            if err.reason not in (NOT_FOUND, CONFLICT):
                raise
            log.info("docker %s %s: already done (%s)", op, container_id[:12], err.message)

    def _remove_all(self, deployment_id: str, *, volumes: bool) -> None:
        for container_id in self._container_ids(deployment_id):
            self._done_if_gone("remove_container", container_id, v=volumes, force=True)

    def _remove_quietly(self, deployment_id: str) -> None:
        """Undo a failed start; the failure that brought us here is the one to report."""
        try:
            self._remove_all(deployment_id, volumes=True)
        except DriverError as err:
            log.warning("could not remove the containers of %s after a failed start: %s", deployment_id,
                        err.message)

    # -- streams ------------------------------------------------------------------------------------------

    def _open_logs(self, container_id: str, *, tail: int | None, since: float | None = None) -> Any:
        return self._call("logs", container_id, stdout=True, stderr=True, stream=True, follow=True,
                          timestamps=True, tail="all" if tail is None else tail, since=since)

    def _follow(self, container_id: str, stream: Any, stop: StopSignal) -> Iterator[str]:
        last = ""
        while True:
            with _closed_on(stop, stream):
                for line in _lines(self._stream_until_closed(stream, stop)):
                    last = line.split(" ", 1)[0] or last
                    yield line
            if stop.is_set() or not self._wait_running(container_id, stop):
                return
            stream = self._open_logs(container_id, tail=None, since=_after(last))

    def _stream_until_closed(self, stream: Any, stop: StopSignal) -> Iterator[Any]:
        try:
            yield from self._stream(stream)
        except DriverError:
            if not stop.is_set():
                raise

    def _wait_running(self, container_id: str, stop: StopSignal) -> bool:
        """After a followed stream ended: wait while the container restarts; True once it runs again."""
        while not stop.is_set():
            try:
                state = self._call("inspect_container", container_id)["State"]["Status"]
            except DriverError as err:
                if err.reason == NOT_FOUND:
                    return False
                raise
            if state == "running":
                return True
            if state != "restarting":
                return False
            stop.event.wait(CLOSE_POLL)
        return False

    def _events(self, stream: Any, stop: StopSignal) -> Iterator[EngineEvent]:
        with _closed_on(stop, stream):
            for raw in self._stream_until_closed(stream, stop):
                event = _engine_event(raw)
                if event is not None:
                    yield event
        if not stop.is_set():
            raise DriverError(f"The Docker engine at {self.endpoint} closed its event stream.",
                              reason=ENGINE_UNAVAILABLE, recoverable=True)


# -- helpers: connection ------------------------------------------------------------------------------------

class _EngineClient(docker.APIClient):
    """The SDK's client, deaf to the environment: ``requests`` would otherwise let REQUESTS_CA_BUNDLE replace the
    engine's CA (and turn ``verify=False`` back on), and *_PROXY or .netrc apply to the engine's address.

    Over TLS it speaks through :class:`_TlsAdapter` and our own ``ssl.SSLContext``, mounted before the first
    request (the API version question), which the SDK would otherwise send as soon as it is made."""

    def __init__(self, endpoint: str, timeout: float, context: ssl.SSLContext | None) -> None:
        if context is None:
            super().__init__(base_url=endpoint, version="auto", timeout=timeout)
            return
        super().__init__(base_url=endpoint, version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=timeout,
                         tls=True)
        self._custom_adapter = _TlsAdapter(context, pool_connections=docker.constants.DEFAULT_NUM_POOLS)
        self.mount("https://", self._custom_adapter)
        self._version = self._retrieve_server_version()

    @property  # type: ignore[override]
    def trust_env(self) -> bool:
        return False

    @trust_env.setter
    def trust_env(self, value: bool) -> None:
        pass  # requests.Session.__init__ sets it to True


def _gateway(configs: list[dict[str, str]]) -> str | None:
    """The IPv4 gateway of a network; the default bridge often states only its subnet, whose first address
    the engine gives to the bridge."""
    for config in configs:
        if config.get("Gateway") and ":" not in config["Gateway"]:
            return config["Gateway"]
    for config in configs:
        try:
            subnet = ipaddress.ip_network(config.get("Subnet", ""))
        except ValueError:
            continue
        if subnet.version == 4:
            return str(next(subnet.hosts()))
    return None


class _TlsAdapter(requests.adapters.HTTPAdapter):
    """HTTPS through one ``ssl.SSLContext`` that holds the CA and the client's certificate and key in memory.

    ``requests`` takes a client certificate and a CA only as file paths, which urllib3 loads again for every
    new connection: the decrypted key would have to stay on disk as long as the client lives. The context
    decides everything TLS here, so the paths ``requests`` would pass (and its ``verify``) are left out."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, ssl_context=self._context, **kwargs)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None,
                                             ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        return host_params, {"ssl_context": self._context}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        pass  # the context checks the engine's certificate, or (without a CA) does not, as it was made to


def _compose() -> Any:
    from dockyard.drivers import compose

    return compose


def _forget(client: docker.APIClient | None) -> None:
    if client is not None:
        client.close()


def _tls_context(tls: TlsMaterial, endpoint: str) -> ssl.SSLContext:
    """The TLS client context for an engine. Its key is read from memory: the PEM texts never touch the disk."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if tls.verify and tls.ca:
            context.load_verify_locations(cadata=_pem(tls.ca))
        else:  # as Nuvla, which never checks the engine's certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    except (ssl.SSLError, ValueError) as exc:
        raise DriverError(f"TLS with the Docker engine at {endpoint} failed: the CA certificate cannot be loaded "
                          "(not PEM text of a certificate)", reason=ENGINE_TLS) from exc
    if tls.cert and tls.key:
        try:
            with _memory_file(_pem(tls.cert) + _pem(tls.key)) as path:
                context.load_cert_chain(path)
        except ssl.SSLError as exc:
            raise DriverError(f"TLS with the Docker engine at {endpoint} failed: the client certificate and key "
                              "cannot be loaded (not PEM text of a certificate and its private key)",
                              reason=ENGINE_TLS) from exc
    return context


@contextmanager
def _memory_file(text: str) -> Iterator[str]:
    """A path to ``text`` for ``ssl``, which loads a private key only from a file: an anonymous in-memory file
    (Linux memfd), gone when closed. Elsewhere, a private file removed as soon as it has been read."""
    if not hasattr(os, "memfd_create"):
        with tempfile.TemporaryDirectory(prefix="dockyard-tls-") as directory:
            path = os.path.join(directory, "identity.pem")
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
                handle.write(text)
            yield path
        return
    fd = os.memfd_create("dockyard-tls", os.MFD_CLOEXEC)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _pem(text: str) -> str:
    """Nuvla credentials may hold literal ``\\n`` sequences instead of newlines."""
    text = text.replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def _translate(exc: Exception, endpoint: str) -> DriverError:
    if isinstance(exc, docker.errors.APIError):
        return _api_error(exc)
    cause = exc.__cause__ if isinstance(exc.__cause__, (requests.RequestException, OSError)) else exc
    if isinstance(cause, (requests.exceptions.SSLError, ssl.SSLError, docker.errors.TLSParameterError)):
        return DriverError(f"TLS with the Docker engine at {endpoint} failed: {_short(cause)}", reason=ENGINE_TLS)
    if isinstance(cause, (requests.RequestException, OSError)):
        return DriverError(f"Cannot reach the Docker engine at {endpoint}: {_short(cause)}",
                           reason=ENGINE_UNAVAILABLE, recoverable=True)
    return DriverError(f"The Docker engine at {endpoint} failed: {exc}", reason=ENGINE_ERROR)


def _api_error(exc: docker.errors.APIError) -> DriverError:
    explanation = str(exc.explanation or exc)
    if exc.status_code == 404:
        return DriverError(explanation, reason=NOT_FOUND)
    if exc.status_code == 409:
        return DriverError(explanation, reason=CONFLICT)
    if any(marker in explanation for marker in _PORT_TAKEN):
        return DriverError(explanation, reason=PORT_CONFLICT)
    return DriverError(explanation, reason=ENGINE_ERROR)


def _short(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 error: "[Errno 111] Connection refused", "[SSL: ...] ...", "no answer"."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", text) or re.search(r"\[SSL: \w+\] [^'\"(]+", text)
    if found:
        return found.group(0).strip()
    if isinstance(exc, requests.Timeout) or "timed out" in text:
        return "no answer in time"
    return text[-200:]


# -- helpers: start -----------------------------------------------------------------------------------------

class _CreateRefused(Exception):
    """A create the engine refused for a reason the start can remedy: NOT_FOUND (pull the image), CONFLICT (the
    name is taken: remove the deployment's old container). ``error`` is what to report if it persists."""

    def __init__(self, reason: str, error: DriverError) -> None:
        super().__init__(error.message)
        self.reason = reason
        self.error = error


def _validate(spec: TaskSpec) -> None:
    if not _NAME.match(spec.name):
        raise DriverError(f"'{spec.name}' cannot name a container (letters, digits, '_', '.', '-').",
                          reason=INVALID_SPEC)
    if not spec.image.strip():
        raise DriverError("The app names no image.", reason=INVALID_SPEC)
    if spec.replicas != 1:
        raise DriverError(f"The app asks for {spec.replicas} replicas; a plain Docker engine runs one "
                          "container (deploy it on a swarm manager to run several).", reason=INVALID_SPEC)


def _port_bindings(spec: TaskSpec) -> dict[str, list[tuple[str, int | None]]]:
    bindings: dict[str, list[tuple[str, int | None]]] = {}
    for port in spec.ports:
        bindings.setdefault(f"{port.target}/{port.protocol}", []).append((spec.publish_ip, port.published))
    return bindings


def _mount(spec: TaskSpec, mount: MountSpec) -> docker.types.Mount:
    try:
        if mount.type != "volume":
            return docker.types.Mount(mount.target, mount.source, type=mount.type, read_only=mount.read_only)
        driver = docker.types.DriverConfig("local", dict(mount.options)) if mount.options else None
        return docker.types.Mount(mount.target, mount.source, type="volume", read_only=mount.read_only,
                                  driver_config=driver, labels={LABEL_DEPLOYMENT: spec.deployment_id})
    except docker.errors.DockerException as exc:
        raise DriverError(f"Mount on {mount.target} is not valid: {exc}", reason=INVALID_SPEC) from exc


def _restart_policy(spec: TaskSpec) -> dict[str, Any]:
    name = _RESTART.get(spec.restart.condition)
    if name is None:
        raise DriverError(f"Unknown restart condition '{spec.restart.condition}' (none, on-failure, any).",
                          reason=INVALID_SPEC)
    policy: dict[str, Any] = {"Name": name}
    if name == "on-failure":
        policy["MaximumRetryCount"] = spec.restart.max_attempts or 0
    return policy


def _auth_config(auth: RegistryAuth | None) -> dict[str, str] | None:
    if auth is None:
        return None
    return {"username": auth.username, "password": auth.password, "serveraddress": auth.serveraddress}


def _pull_error(image: str, detail: str, with_auth: bool) -> DriverError:
    """Say why an image could not be pulled, in a user's words; the engine's text follows."""
    text = detail.lower()
    if any(m in text for m in ("dial tcp", "no such host", "timeout", "connection refused", "server misbehaving",
                               "network is unreachable", "tls handshake", "eof")):
        return DriverError(f"The registry of image '{image}' cannot be reached; try again later. ({detail})",
                           reason=REGISTRY_UNAVAILABLE, recoverable=True)
    if with_auth and any(m in text for m in ("unauthorized", "authentication required", "denied",
                                             "incorrect username or password")):
        return DriverError(f"The registry refused the credentials given for image '{image}'. ({detail})",
                           reason=REGISTRY_AUTH)
    if "invalid reference format" in text:
        return DriverError(f"'{image}' is not a valid image name. ({detail})", reason=IMAGE_NOT_FOUND)
    private = "" if with_auth else ", or it is private and needs registry credentials"
    return DriverError(f"Image '{image}' was not found in its registry{private}. ({detail})",
                       reason=IMAGE_NOT_FOUND)


def _start_error(spec: TaskSpec, err: DriverError, step: str) -> DriverError:
    if err.reason in (ENGINE_UNAVAILABLE, ENGINE_TLS, INVALID_SPEC):
        return err
    if err.reason == PORT_CONFLICT:
        ports = ", ".join(f"{spec.publish_ip or '*'}:{p.published}" for p in spec.ports if p.published)
        return DriverError(f"A published port is already in use on the host ({ports or 'ephemeral'}); "
                           f"choose another one or leave it empty. ({err.message})", reason=PORT_CONFLICT)
    if err.reason == CONFLICT and step == "create":
        return DriverError(f"A container named '{spec.name}' already exists and belongs to another "
                           f"deployment. ({err.message})", reason=START_FAILED)
    return DriverError(f"Container '{spec.name}' could not {step}: {err.message}", reason=START_FAILED)


# -- helpers: reading state ---------------------------------------------------------------------------------

def _task_status(deployment_id: str, info: dict[str, Any]) -> TaskStatus:
    state = info.get("State") or {}
    status = state.get("Status", "")
    mapped = _STATES.get(status, EXITED)
    error = state.get("Error") or ("out of memory (OOM killed)" if state.get("OOMKilled") else "")
    labels = (info.get("Config") or {}).get("Labels") or {}
    return TaskStatus(
        deployment_id=deployment_id, task_id=info["Id"], state=mapped,
        name=labels.get(LABEL_SERVICE) or info.get("Name", "").lstrip("/"),  # an application's: its service
        exit_code=state.get("ExitCode") if mapped in (EXITED, RESTARTING) else None, error=error,
        started_at=_ts(state.get("StartedAt")), finished_at=_ts(state.get("FinishedAt")),
        restart_count=int(info.get("RestartCount") or 0),
        ports=_published(((info.get("NetworkSettings") or {}).get("Ports")) or {}),
        image=(info.get("Config") or {}).get("Image", ""))


def _published(ports: dict[str, list[dict[str, str]] | None]) -> tuple[PublishedPort, ...]:
    """Host ports from ``NetworkSettings.Ports``: one per container port, the IPv4 binding's when there is one.

    Published on every address, a port is bound twice, on 0.0.0.0 and on ::, and Docker 20.10 allocates the
    two ephemeral host ports independently (moby/moby#42442): they drift apart as ports are taken on one
    family only, and the IPv6 one refuses 127.0.0.1 and every IPv4 client. An IPv6 binding is reported only
    when there is no other (``publish-ip`` an IPv6 address).
    """
    found: dict[tuple[str, int], PublishedPort] = {}
    for key, bindings in ports.items():
        target, _, protocol = key.partition("/")
        for binding in bindings or []:
            if binding.get("HostPort"):
                port = PublishedPort(protocol or "tcp", int(target), int(binding["HostPort"]),
                                     binding.get("HostIp", ""))
                known = found.get((port.protocol, port.target))
                if known is None or (":" in known.host_ip and ":" not in port.host_ip):
                    found[(port.protocol, port.target)] = port
    return tuple(sorted(found.values(), key=lambda p: (p.target, p.protocol)))


def _ts(value: str | None) -> str | None:
    if not value or value.startswith("0001-01-01"):
        return None
    try:
        return format_ts(parse_ts(value))
    except ValueError:
        return None


def _epoch(since: str | None) -> float | None:
    return parse_ts(since).timestamp() if since else None


def _after(timestamp: str) -> float | None:
    """Just after a log line's RFC 3339 timestamp (the engine's ``since`` is inclusive)."""
    try:
        return parse_ts(timestamp).timestamp() + 1e-6 if timestamp else None
    except ValueError:
        return None


def _engine_event(raw: dict[str, Any]) -> EngineEvent | None:
    action = str(raw.get("Action") or raw.get("status") or "")
    attributes = (raw.get("Actor") or {}).get("Attributes") or {}
    deployment_id = attributes.get(LABEL_DEPLOYMENT)
    if not deployment_id or not action or action.startswith(_QUIET_EVENTS):
        return None
    nanos = raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000
    exit_code = attributes.get("exitCode")
    return EngineEvent(deployment_id=deployment_id, task_id=(raw.get("Actor") or {}).get("ID", raw.get("id", "")),
                       action=action, time=format_ts(datetime.fromtimestamp(nanos / 1e9, timezone.utc)),
                       exit_code=int(exit_code) if exit_code not in (None, "") else None)


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Whole lines from a log stream whose frames may split or join lines."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace")
    if pending:
        yield pending.decode("utf-8", errors="replace")


def _stats(raw: dict[str, Any]) -> TaskStats | None:
    """One sample of the engine's stats stream (the formulas of ``docker stats``), or None when the container
    is not running (no pids, no CPU reading)."""
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    if not cpu.get("system_cpu_usage") or not raw.get("pids_stats", {}).get("current"):
        return None
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    percent = cpu_delta / system_delta * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", details.get("cache", 0)))
    used = max(int(memory.get("usage", 0)) - int(cache or 0), 0)
    return TaskStats(time=str(raw.get("read", "")), cpu_percent=round(percent, 2), memory_bytes=used,
                     memory_limit_bytes=int(memory.get("limit", 0)))


@contextmanager
def _closed_on(stop: StopSignal, stream: Any) -> Iterator[None]:
    """Close ``stream`` from a helper thread as soon as ``stop`` is set, which ends a blocked read."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.event.wait(CLOSE_POLL):
                _close(stream)
                return

    watcher = threading.Thread(target=watch, name="dockyard-stream-closer", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        _close(stream)


def _close(stream: Any) -> None:
    try:
        stream.close()
    except (OSError, docker.errors.DockerException, AttributeError):
        pass  # already closed by the other side
