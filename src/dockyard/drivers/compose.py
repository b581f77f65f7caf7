"""Compose applications on one Docker engine (not a swarm manager): the Docker driver's ``deploy_stack``.

The implementation is Debian bookworm's ``docker-compose`` 1.29.2 (package ``docker-compose``), the real
compose, run as a CLI (:mod:`.cli`): bookworm has no compose v2 plugin, and re-implementing compose over the
Engine API would re-implement its file format, its networks and its ordering. The project name is the
deployment's uuid, as Nuvla's, so the engine names things ``<uuid>_<service>_1`` and ``<uuid>_default``.

==============  ==================================================================================================
start, update   ``docker-compose -p <uuid> -f docker-compose.yaml up -d --remove-orphans --no-build`` in a
                private directory (the file, the app's ``files`` beside it, TLS identity, registry config),
                removed right after. A deployment's containers from before are removed first (as a
                component's start replaces its container): compose 1.29 *recreating* a container fails on
                engines of API 1.44 and later (Docker 25+) with ``KeyError: 'ContainerConfig'``, which they no
                longer report, so an update is remove + ``up``, never compose's recreate. Named volumes stay.
ports           a port the file publishes on no address is bound on ``publish_ip`` (when set), as components
labels          the caller put the deployment's labels on every service, network and volume; what compose
                adds (``com.docker.compose.project=<uuid>``) is used to tell a project's volumes apart
inspect, stop    the Docker driver's own, by label: one task per container, named by its service
logs            every service's container, each line tagged with its service (``<time> <service> | <line>``)
destroy         the containers (the Docker driver's), then the project's networks, and with
                ``remove_volumes`` its named volumes
==============  ==================================================================================================
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import yaml

from dockyard.core.time import now_ts
from dockyard.drivers import cli
from dockyard.drivers.base import (
    LABEL_DEPLOYMENT, LABEL_SERVICE, RUNNING, DriverError, StackSpec, StartResult, StopSignal, TaskStatus,
)

if TYPE_CHECKING:
    from dockyard.drivers.docker import DockerDriver

log = logging.getLogger(__name__)

UP_TIMEOUT = 600.0  # seconds `docker-compose up` may take: it pulls the images it misses
PROJECT_LABEL = "com.docker.compose.project"


def deploy(driver: DockerDriver, spec: StackSpec) -> StartResult:
    """``up`` the project after removing the deployment's containers from before; its containers' states."""
    compose = bind_ports(spec.compose, spec.publish_ip)
    driver._remove_all(spec.deployment_id, volumes=True)
    try:
        with cli.workdir(driver.endpoint, driver._tls, compose=compose, files=spec.files, env=spec.env,
                         registry_auths=spec.registry_auths) as wd:
            cli.run([cli.COMPOSE_CLI, *wd.engine_args, "-p", spec.project, "-f", wd.compose_file, "up", "-d",
                     "--remove-orphans", "--no-build"], wd, timeout=UP_TIMEOUT, what="docker-compose up")
        started = now_ts()
        tasks = driver.inspect(spec.deployment_id)
    except BaseException:
        _remove_quietly(driver, spec.deployment_id)
        raise
    return StartResult(headline(tasks, spec.deployment_id), phases=(("started", started),), tasks=tuple(tasks))


def headline(tasks: list[TaskStatus], deployment_id: str) -> TaskStatus:
    """The task that says the most about an application: the first that does not run, else the first."""
    for task in tasks:
        if task.state != RUNNING:
            return task
    return tasks[0] if tasks else TaskStatus(deployment_id, "", "", "missing")


def bind_ports(text: str, publish_ip: str) -> str:
    """Each port published on no address (``"80"``, ``"8080:80"``) bound on ``publish_ip`` instead."""
    if not publish_ip:
        return text
    doc = yaml.safe_load(text)
    host = f"[{publish_ip}]" if ":" in publish_ip else publish_ip
    for service in (doc.get("services") or {}).values():
        if isinstance(service, dict) and isinstance(service.get("ports"), list):
            service["ports"] = [_bound(p, host) for p in service["ports"]]
    return dump(doc)


def _bound(port: Any, host: str) -> Any:
    if isinstance(port, int):
        return f"{host}::{port}"
    if not isinstance(port, str):
        return port  # the long syntax names no address in compose 1.29's formats
    parts = port.split(":")
    if len(parts) == 1:
        return f"{host}::{port}"
    if len(parts) == 2:
        return f"{host}:{port}"
    return port


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)


# -- logs --------------------------------------------------------------------------------------------------

def tag(line: str, service: str, timestamps: bool = True) -> str:
    """``<time> <service> | <text>``: the timestamp stays first, so lines sort and resume as a container's."""
    if not timestamps:
        return f"{service} | {line}"
    stamp, _, rest = line.partition(" ")
    return f"{stamp} {service} | {rest}"


def services_of(containers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(container id, service) of a deployment's containers that belong to an application's service."""
    return [(c["Id"], c["Labels"][LABEL_SERVICE]) for c in containers if LABEL_SERVICE in (c.get("Labels") or {})]


def logs(driver: DockerDriver, containers: list[tuple[str, str]], *, since: str | None, tail: int | None,
         timestamps: bool) -> list[str]:
    """Every service's lines, tagged and in time order; ``tail`` counts over them all."""
    from dockyard.drivers.docker import NOT_FOUND, _epoch

    lines: list[str] = []
    for container_id, service in containers:
        try:
            raw = driver._call("logs", container_id, stdout=True, stderr=True, timestamps=True,
                               tail="all" if tail is None else tail, since=_epoch(since))
        except DriverError as err:
            if err.reason == NOT_FOUND:
                continue
            raise
        lines += [tag(line, service) for line in raw.decode("utf-8", errors="replace").splitlines()]
    lines.sort(key=lambda line: line.split(" ", 1)[0])
    if tail is not None:
        lines = lines[-tail:] if tail else []
    return lines if timestamps else [line.split(" ", 1)[-1] for line in lines]


def follow(driver: DockerDriver, containers: list[tuple[str, str]], stop: StopSignal, *,
           tail: int | None) -> Iterator[str]:
    """Every service's lines as they are written, tagged; the streams are open when this returns."""
    streams = [(cid, service, driver._open_logs(cid, tail=tail)) for cid, service in containers]
    return _merged(driver, streams, stop)


_DONE = object()


def _merged(driver: DockerDriver, streams: list[tuple[str, str, Any]], stop: StopSignal) -> Iterator[str]:
    found: queue.Queue[Any] = queue.Queue()

    def pump(container_id: str, service: str, stream: Any) -> None:
        try:
            for line in driver._follow(container_id, stream, stop):
                found.put(tag(line, service))
        except DriverError as exc:
            found.put(exc)
        finally:
            found.put(_DONE)

    for container_id, service, stream in streams:
        threading.Thread(target=pump, args=(container_id, service, stream), daemon=True,
                         name=f"dockyard-logs-{service}").start()
    remaining = len(streams)
    try:
        while remaining:
            item = found.get()
            if item is _DONE:
                remaining -= 1
            elif isinstance(item, DriverError):
                if not stop.is_set():
                    raise item
            else:
                yield item
    finally:
        stop.set()  # a reader that left early ends the other services' streams too


# -- destroy -----------------------------------------------------------------------------------------------

def remove_resources(driver: DockerDriver, deployment_id: str, *, remove_volumes: bool) -> None:
    """The project's networks, and with ``remove_volumes`` its named volumes (a component's volumes, which carry
    no compose project, are never taken). Its containers are gone already."""
    labels = driver._scope() + [f"{LABEL_DEPLOYMENT}={deployment_id}"]
    for network in driver._call("networks", filters={"label": labels}) or []:
        if network.get("Scope") != "swarm":  # a stack's are the Swarm driver's (:mod:`.stack`)
            _remove(driver, "remove_network", network["Id"])
    if remove_volumes:
        found = driver._call("volumes", filters={"label": labels + [PROJECT_LABEL]}) or {}
        for volume in found.get("Volumes") or []:
            _remove(driver, "remove_volume", volume["Name"])


def _remove(driver: DockerDriver, op: str, name: str) -> None:
    from dockyard.drivers.docker import CONFLICT, NOT_FOUND

    try:
        driver._call(op, name)
    except DriverError as err:
        if err.reason in (NOT_FOUND, CONFLICT):
            return
        if err.reason in (cli.ENGINE_UNAVAILABLE, cli.ENGINE_TLS):
            raise
        log.warning("could not remove %s (%s): %s", name, op, err.message)


def _remove_quietly(driver: DockerDriver, deployment_id: str) -> None:
    """Undo a failed ``up``; the failure that brought us here is the one to report."""
    try:
        driver.destroy(deployment_id)
    except DriverError as err:
        log.warning("could not remove what the failed start of %s made: %s", deployment_id, err.message)


# -- the file, as the real compose reads it ------------------------------------------------------------------

CONFIG_TIMEOUT = 60.0


def check(compose: str, files: tuple[tuple[str, str], ...] = (), env: tuple[tuple[str, str], ...] = ()) -> None:
    """Raise DriverError ``invalid-spec`` with compose's own words when ``docker-compose config`` refuses the
    file (unknown keys, wrong types, a missing ``env_file``); no engine is asked."""
    with cli.workdir("unix:///var/run/docker.sock", None, compose=compose, files=files, env=env) as wd:
        try:
            cli.run([cli.COMPOSE_CLI, "-f", wd.compose_file, "config", "-q"], wd, timeout=CONFIG_TIMEOUT,
                    what="docker-compose config")
        except DriverError as err:
            if err.reason == "engine-error":  # not installed: not the file's fault
                raise
            raise DriverError(err.message.replace("docker-compose config: ", "", 1), reason=cli.INVALID_SPEC) from err
