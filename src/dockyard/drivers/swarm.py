"""The Swarm driver: a deployment's component as one Docker Swarm service, through a swarm manager's Engine API.

It is the Docker driver (same connection, TLS, error translation and labels) with services in place of
containers. How a :class:`TaskSpec` becomes a service (Nuvla's component deploy, reference §2.5):

==============  ==================================================================================================
image           not pulled by the driver: each node pulls (or finds) it when a task is placed there
name, labels    the service's name is ``spec.name``; the service and its task containers carry ``spec.labels``
                plus ``dockyard.deployment-id``, ``dockyard.managed`` and ``dockyard.instance`` (ours win)
replicas        replicated mode with ``spec.replicas`` tasks
ports           where the swarm's routing mesh answers: ingress publishing behind a virtual IP (``published``
                or a port the swarm picks). Where it does not (no IPVS in the nodes' kernel, see
                :mod:`.mesh`): ``endpoint_mode: dnsrr`` and host-mode ports, each node publishing its own
                task's port (``published`` on every node, or one the node picks per task). The mesh is
                probed once per engine and remembered.
mounts, env     as the Docker driver (a volume is made by the node its task runs on, and stays there)
cpus, memory    Nuvla's 10 % tolerance, as the Docker driver
restart         none, on-failure (with max_attempts), any: Swarm's own conditions
==============  ==================================================================================================

``start`` returns once every replica runs (or fails with the first task error after ``start_timeout``).
``stop`` scales the service to zero and waits, so its tasks' logs can still be read; ``destroy`` removes the
service and waits until its task containers are gone from every node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import docker.errors
import docker.types

from dockyard.core.time import format_ts, now_ts
from dockyard.drivers import TlsMaterial
from dockyard.drivers.base import (
    CREATED, EXITED, LABEL_DEPLOYMENT, RUNNING, Capabilities, DriverError, EngineEvent, PublishedPort,
    StartResult, StopSignal, TaskSpec, TaskStatus,
)
from dockyard.drivers.docker import (
    DEFAULT_TIMEOUT, ENGINE_TLS, ENGINE_UNAVAILABLE, INVALID_SPEC, NOT_FOUND, START_FAILED, DockerDriver,
    _closed_on, _epoch, _mount, _ts, _validate,
)
from dockyard.drivers.mesh import routing_mesh_answers

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # the swarm-start-timeout setting's default
REMOVE_TIMEOUT = 30.0  # seconds to wait for a removed service's task containers to go from the nodes
PROBE_TIMEOUT = 30.0  # seconds the routing-mesh probe may take; a probe that cannot finish means "no mesh"
POLL = 0.2
LOG_POLL = 1.0  # seconds between two reads of a followed service log (the API's follow cannot be closed)

_TASK_STATES = {"running": RUNNING, "complete": EXITED, "shutdown": EXITED, "failed": EXITED,
                "rejected": EXITED, "remove": EXITED, "orphaned": EXITED}  # the rest (new … starting): CREATED
_FAILED = ("failed", "rejected")
_RESTART = {"none": "none", "on-failure": "on-failure", "any": "any"}

NO_MESH = "ports published in host mode on each task's node: this swarm's routing mesh does not answer"
SERVICE_LABEL = "com.docker.swarm.service.id"  # on a service task's container
_mesh: dict[str, bool] = {}  # engine endpoint → whether its routing mesh answers (probed once per process)
_mesh_lock = threading.Lock()


class SwarmDriver(DockerDriver):
    """A swarm manager's engine: each deployment's component runs as one replicated service."""

    capabilities = Capabilities(swarm=True, logs_follow=True, events=True, stats=False)

    def __init__(self, endpoint: str | None = None, tls: TlsMaterial | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, instance: str = "", probe_image: str = "busybox:stable",
                 start_timeout: float = START_TIMEOUT) -> None:
        super().__init__(endpoint, tls, timeout=timeout, instance=instance)
        self.probe_image = probe_image
        self.start_timeout = start_timeout

    # -- Driver verbs -------------------------------------------------------------------------------------

    def start(self, spec: TaskSpec) -> StartResult:
        _validate_service(spec)
        self._remove_services(spec.deployment_id)
        mesh = self.routing_mesh()
        try:
            created_service = self._create_service(spec, mesh)
            created = now_ts()
            tasks = self._wait_running(spec, created_service)
        except BaseException:
            self._remove_quietly(spec.deployment_id)
            raise
        notes = () if mesh or not spec.ports else (NO_MESH,)
        return StartResult(tasks[0], phases=(("created", created), ("started", now_ts())), tasks=tuple(tasks),
                           notes=notes)

    def stop(self, deployment_id: str, timeout: float = 10.0) -> None:
        """Scale to zero and wait for the tasks to stop (their containers and logs stay until ``destroy``)."""
        services = self._services(deployment_id)
        if not services:
            super().stop(deployment_id, timeout)  # a container started before the engine was known a manager
        for service in services:
            try:
                self._call("update_service", service["ID"], service["Version"]["Index"],
                           mode=docker.types.ServiceMode("replicated", 0), fetch_current_spec=True)
            except DriverError as err:
                if err.reason != NOT_FOUND:
                    raise
                continue
            deadline = time.monotonic() + timeout + REMOVE_TIMEOUT
            while any(t["Status"]["State"] == "running" for t in self._tasks(service["ID"])) \
                    and time.monotonic() < deadline:
                time.sleep(POLL)

    def destroy(self, deployment_id: str, *, remove_volumes: bool = False) -> None:
        """Volumes made on the nodes stay: a manager's API reaches only its own node's volumes. A container
        the deployment got before its engine was known to be a swarm manager goes too."""
        self._remove_services(deployment_id)
        super().destroy(deployment_id, remove_volumes=remove_volumes)

    def inspect(self, deployment_id: str) -> list[TaskStatus]:
        """The service's current tasks (desired to run), running ones first; a service with none left to run
        shows its latest task. Empty when the deployment has no service."""
        services = self._services(deployment_id)
        if not services:  # a container started before the engine was known to be a swarm manager, if any
            return super().inspect(deployment_id)
        found: list[TaskStatus] = []
        nodes = self._nodes()
        for service in services:
            tasks = self._tasks(service["ID"])
            current = [t for t in tasks if t.get("DesiredState") == "running"] or tasks[-1:]
            found += [_task_status(deployment_id, service, t, nodes) for t in current]
        return sorted(found, key=lambda s: (s.state != RUNNING, s.node, s.task_id))

    def logs(self, deployment_id: str, *, since: str | None = None, tail: int | None = None,
             timestamps: bool = True) -> list[str]:
        """Every task's lines, in time order when timestamped."""
        services = self._services(deployment_id)
        if not services:
            return super().logs(deployment_id, since=since, tail=tail, timestamps=timestamps)
        lines: list[str] = []
        for service in services:
            try:
                raw = self._call("service_logs", service["ID"], stdout=True, stderr=True, timestamps=True,
                                 tail="all" if tail is None else tail, since=_epoch(since) or 0)
            except DriverError as err:
                if err.reason == NOT_FOUND:
                    continue
                raise
            if not isinstance(raw, bytes):
                raw = b"".join(raw)
            lines += raw.decode("utf-8", errors="replace").splitlines()
        lines.sort(key=lambda line: line.split(" ", 1)[0])
        return lines if timestamps else [line.split(" ", 1)[-1] for line in lines]

    def follow_logs(self, deployment_id: str, stop: StopSignal, *, tail: int | None = 0) -> Iterator[str]:
        """Read again every ``LOG_POLL`` s from just after the last line seen, until ``stop`` is set or the
        service is removed: the Engine API's followed service log is a stream the SDK cannot close."""
        lines = self.logs(deployment_id, tail=tail)
        return self._poll_logs(deployment_id, stop, lines)

    def _poll_logs(self, deployment_id: str, stop: StopSignal, lines: list[str]) -> Iterator[str]:
        last = ""
        while True:
            for line in lines:
                stamp = line.split(" ", 1)[0]
                if stamp > last:
                    last = stamp
                    yield line
            if stop.event.wait(LOG_POLL) or not self._services(deployment_id):
                return
            lines = self.logs(deployment_id, since=last or None)

    def events(self, stop: StopSignal, since: str | None = None) -> Iterator[EngineEvent]:
        """The swarm's service events (create, update, remove) of managed services. A task failing on a
        worker node raises no event on the manager: the reconciler's sweep sees it."""
        owners = {s["ID"]: s["Spec"]["Labels"][LABEL_DEPLOYMENT] for s in self._list_services([LABEL_DEPLOYMENT])}
        start = _epoch(since) or datetime.now(timezone.utc).timestamp()
        stream = self._call("events", since=start, filters={"type": ["service"]}, decode=True)
        return self._service_events(stream, stop, owners)

    def _service_events(self, stream: Any, stop: StopSignal, owners: dict[str, str]) -> Iterator[EngineEvent]:
        with _closed_on(stop, stream):
            for raw in self._stream_until_closed(stream, stop):
                service_id = str((raw.get("Actor") or {}).get("ID", ""))
                if service_id not in owners:
                    owners[service_id] = self._owner(service_id)
                action = str(raw.get("Action") or "")
                if owners[service_id] and action:
                    nanos = raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000
                    yield EngineEvent(owners[service_id], service_id, action,
                                      format_ts(datetime.fromtimestamp(nanos / 1e9, timezone.utc)))
        if not stop.is_set():
            raise DriverError(f"The Docker engine at {self.endpoint} closed its event stream.",
                              reason=ENGINE_UNAVAILABLE, recoverable=True)

    def _owner(self, service_id: str) -> str:
        """The deployment of a service this driver manages; "" for any other (or one already gone)."""
        try:
            labels = self._call("inspect_service", service_id)["Spec"].get("Labels") or {}
        except DriverError as err:
            if err.reason == NOT_FOUND:
                return ""
            raise
        scope = dict(label.split("=", 1) for label in self._scope())
        return str(labels.get(LABEL_DEPLOYMENT, "")) if all(labels.get(k) == v for k, v in scope.items()) else ""

    def managed(self) -> dict[str, list[str]]:
        """Services, and containers on the manager's own node that are no service's task (started before the
        engine was known to be a swarm manager)."""
        found: dict[str, list[str]] = {}
        for service in self._list_services([LABEL_DEPLOYMENT]):
            found.setdefault(service["Spec"]["Labels"][LABEL_DEPLOYMENT], []).append(service["ID"])
        for container in self._list([LABEL_DEPLOYMENT]):
            if SERVICE_LABEL not in container["Labels"]:
                found.setdefault(container["Labels"][LABEL_DEPLOYMENT], []).append(container["Id"])
        return found

    def host_address(self) -> str | None:
        return None  # tasks run on many hosts: none of them is "the" host

    # -- the routing mesh ---------------------------------------------------------------------------------

    def routing_mesh(self) -> bool:
        """Whether this swarm's service virtual IPs (and ingress ports) answer; asked once per engine."""
        with _mesh_lock:
            if self.endpoint not in _mesh:
                try:
                    _mesh[self.endpoint] = routing_mesh_answers(self._api(), self.probe_image,
                                                                timeout=PROBE_TIMEOUT)
                except (TimeoutError, docker.errors.DockerException) as exc:
                    log.warning("the routing-mesh probe of %s could not run (%s): services publish in host "
                                "mode there", self.endpoint, exc)
                    _mesh[self.endpoint] = False
                log.info("swarm %s: routing mesh %s", self.endpoint,
                         "answers" if _mesh[self.endpoint] else "does not answer; host-mode ports, dnsrr")
            return _mesh[self.endpoint]

    # -- services of a deployment -------------------------------------------------------------------------

    def _create_service(self, spec: TaskSpec, mesh: bool) -> str:
        labels = self._labels(spec)
        container = docker.types.ContainerSpec(
            spec.image, command=list(spec.command) if spec.command is not None else None,
            env=[f"{key}={value}" for key, value in spec.env], labels=labels,
            mounts=[_mount(spec, m) for m in spec.mounts], init=True)
        policy = docker.types.RestartPolicy(condition=_RESTART[spec.restart.condition],
                                            max_attempts=spec.restart.max_attempts or 0)
        template = docker.types.TaskTemplate(container, resources=self._resources(spec), restart_policy=policy)
        mode = "ingress" if mesh else "host"
        ports = [{"TargetPort": p.target, "Protocol": p.protocol, "PublishMode": mode,
                  **({"PublishedPort": p.published} if p.published else {})} for p in spec.ports]
        endpoint = docker.types.EndpointSpec(mode="vip" if mesh else "dnsrr", ports=ports or None)
        if not ports:
            endpoint = docker.types.EndpointSpec(mode="vip" if mesh else "dnsrr")
        try:
            created = self._call("create_service", template, name=spec.name, labels=labels,
                                 mode=docker.types.ServiceMode("replicated", spec.replicas), endpoint_spec=endpoint)
        except DriverError as err:
            if err.reason in (INVALID_SPEC, ENGINE_UNAVAILABLE, ENGINE_TLS):
                raise
            raise DriverError(f"Service '{spec.name}' could not be created: {err.message}",
                              reason=START_FAILED) from err
        return str(created["ID"])

    def _resources(self, spec: TaskSpec) -> docker.types.Resources | None:
        if spec.cpus is None and spec.memory_mib is None:
            return None
        return docker.types.Resources(
            cpu_limit=self._nano_cpus(spec.cpus) if spec.cpus is not None else None,
            mem_limit=spec.memory_mib * 1024 * 1024 * 11 // 10 if spec.memory_mib else None,
            mem_reservation=spec.memory_mib * 1024 * 1024 if spec.memory_mib else None)

    def _wait_running(self, spec: TaskSpec, service_id: str) -> list[TaskStatus]:
        """The service's tasks once ``replicas`` of them run; a task that failed or was rejected with a
        restart policy of none fails the start at once, otherwise its error is reported at the deadline."""
        deadline = time.monotonic() + self.start_timeout
        error = ""
        while True:
            tasks = self._tasks(service_id)
            running = [t for t in tasks if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"]
            failed = [t for t in tasks if t["Status"]["State"] in _FAILED]
            if failed:
                error = failed[-1]["Status"].get("Err") or failed[-1]["Status"].get("Message", "")
                if spec.restart.condition == "none":
                    break
            if len(running) >= spec.replicas:
                return self.inspect(spec.deployment_id)
            if time.monotonic() > deadline:
                break
            time.sleep(POLL)
        why = error or f"{len(running)} of {spec.replicas} replicas run after {self.start_timeout:g} s"
        raise DriverError(f"Service '{spec.name}' did not start: {why}", reason=START_FAILED)

    def _list_services(self, labels: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("services", filters={"label": self._scope() + labels})
        return sorted(found, key=lambda s: (s.get("CreatedAt", ""), s["ID"]))

    def _services(self, deployment_id: str) -> list[dict[str, Any]]:
        return self._list_services([f"{LABEL_DEPLOYMENT}={deployment_id}"])

    def _tasks(self, service_id: str) -> list[dict[str, Any]]:
        """The service's tasks, oldest first; none once it is removed (the manager then answers 404)."""
        try:
            tasks: list[dict[str, Any]] = self._call("tasks", filters={"service": service_id})
        except DriverError as err:
            if err.reason != NOT_FOUND:
                raise
            return []
        return sorted(tasks, key=lambda t: (t.get("CreatedAt", ""), t["ID"]))

    def _nodes(self) -> dict[str, tuple[str, str]]:
        """node id → (hostname, address)."""
        return {n["ID"]: ((n.get("Description") or {}).get("Hostname", ""), (n.get("Status") or {}).get("Addr", ""))
                for n in self._call("nodes")}

    def _container_ids(self, deployment_id: str) -> list[str]:
        """Plain containers of the deployment on the manager's node: a service task's container is the
        swarm's own to stop and remove."""
        return [c["Id"] for c in self._list([f"{LABEL_DEPLOYMENT}={deployment_id}"])
                if SERVICE_LABEL not in (c.get("Labels") or {})]

    def _remove_services(self, deployment_id: str) -> None:
        """Remove the services (a 404 counts as done) and wait until their task containers are gone."""
        removed = []
        for service in self._services(deployment_id):
            self._done_if_gone("remove_service", service["ID"])
            removed.append(service["ID"])
        deadline = time.monotonic() + REMOVE_TIMEOUT
        while removed and time.monotonic() < deadline:
            # a removed service's tasks stay listed (desired state "remove") until their nodes removed
            # the containers; asked by the service's id, the manager answers 404 at once
            if not any(t.get("ServiceID") in removed for t in self._call("tasks")):
                return
            time.sleep(POLL)
        if removed and time.monotonic() >= deadline:
            log.warning("the tasks of %s's services were still being removed after %g s", deployment_id,
                        REMOVE_TIMEOUT)

    def _remove_quietly(self, deployment_id: str) -> None:
        try:
            self._remove_services(deployment_id)
        except DriverError as err:
            log.warning("could not remove the services of %s after a failed start: %s", deployment_id,
                        err.message)


def _validate_service(spec: TaskSpec) -> None:
    _validate(TaskSpec(spec.deployment_id, spec.name, spec.image))
    if spec.replicas < 1:
        raise DriverError(f"A service needs at least one replica, not {spec.replicas}.", reason=INVALID_SPEC)
    if spec.restart.condition not in _RESTART:
        raise DriverError(f"Unknown restart condition '{spec.restart.condition}' (none, on-failure, any).",
                          reason=INVALID_SPEC)


def _task_status(deployment_id: str, service: dict[str, Any], task: dict[str, Any],
                 nodes: dict[str, tuple[str, str]]) -> TaskStatus:
    status = task.get("Status") or {}
    state = _TASK_STATES.get(status.get("State", ""), CREATED)
    container = status.get("ContainerStatus") or {}
    node, address = nodes.get(task.get("NodeID", ""), ("", ""))
    ports = [PublishedPort(p.get("Protocol", "tcp"), int(p["TargetPort"]), int(p["PublishedPort"]), address)
             for p in (status.get("PortStatus") or {}).get("Ports") or [] if p.get("PublishedPort")]
    if not ports:  # ingress: the service's ports, on every node
        ports = [PublishedPort(p.get("Protocol", "tcp"), int(p["TargetPort"]), int(p["PublishedPort"]))
                 for p in (service.get("Endpoint") or {}).get("Ports") or [] if p.get("PublishedPort")]
    exit_code = container.get("ExitCode") if state == EXITED else None
    name = f"{service['Spec']['Name']}.{task.get('Slot', '')}".rstrip(".")
    return TaskStatus(deployment_id=deployment_id, task_id=task["ID"], name=name, state=state,
                      exit_code=exit_code, error=status.get("Err", ""),
                      started_at=_ts(status.get("Timestamp")) if state == RUNNING else None,
                      ports=tuple(sorted(ports, key=lambda p: (p.target, p.protocol))),
                      image=task.get("Spec", {}).get("ContainerSpec", {}).get("Image", "").split("@")[0],
                      node=node, address=address)

