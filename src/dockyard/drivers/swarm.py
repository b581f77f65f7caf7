"""The Swarm driver: a deployment's component as one Docker Swarm service, through a swarm manager's Engine API.

It is the Docker driver (same connection, TLS, error translation and labels) with services in place of
containers. How a :class:`TaskSpec` becomes a service (Nuvla's component deploy, reference §2.5):

==============  ==================================================================================================
image           not pulled by the driver: each node pulls (or finds) it when a task is placed there, with
                ``registry_auth`` sent as ``X-Registry-Auth`` on create and update (the manager hands it on)
name, labels    the service's name is ``spec.name``; the service and its task containers carry ``spec.labels``
                plus ``dockyard.deployment-id``, ``dockyard.managed`` and ``dockyard.instance`` (ours win)
replicas        replicated mode with ``spec.replicas`` tasks
ports           where the swarm's routing mesh answers: ingress publishing behind a virtual IP (``published``
                or a port the swarm picks). Where it does not (no IPVS in the nodes' kernel, see
                :mod:`.mesh`): ``endpoint_mode: dnsrr`` and host-mode ports, each node publishing its own
                task's port (``published`` on every node, or one the node picks per task). Whether the mesh
                answers is the engine check's stored answer (``routing_mesh``), else probed once per engine
                in this process.
update          UpdateConfig parallelism 1, ``UPDATE_DELAY``, ``UPDATE_MONITOR``, ``failure_action: rollback``;
                ``stop-first`` with a fixed host-mode port, else ``start-first`` (see :meth:`SwarmDriver.update`)
mounts, env     as the Docker driver (a volume is made by the node its task runs on, and stays there until a
                stop with ``remove_volumes``, whose one-shot task removes it on every node: :mod:`.node_jobs`)
cpus, memory    Nuvla's 10 % tolerance, as the Docker driver
restart         none, on-failure (with max_attempts), any: Swarm's own conditions
==============  ==================================================================================================

``start`` returns once every replica runs (or fails with the first task error after ``start_timeout``; a
node that could not pull names the image and its registry). ``update`` rolls the service over in place and
returns once Swarm's UpdateStatus says completed (a rolled-back update fails with the engine's reason).
``stop`` scales the service to zero and waits, so its tasks' logs can still be read; ``destroy`` removes the
service and waits until its task containers are gone from every node. ``events`` follows service events and,
since a lost node moves tasks without one, node events too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import docker.auth
import docker.errors
import docker.types
import requests

from dockyard.core.time import format_ts, now_ts
from dockyard.drivers import TlsMaterial
from dockyard.drivers.base import (
    CREATED, EXITED, LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_SERVICE, RUNNING, Capabilities, DriverError, EngineEvent,
    PublishedPort, StackSpec, StartResult, StopSignal, TaskSpec, TaskStatus,
)
from dockyard.drivers.docker import (
    DEFAULT_TIMEOUT, ENGINE_TLS, ENGINE_UNAVAILABLE, IMAGE_NOT_FOUND, INVALID_SPEC, NOT_FOUND, REGISTRY_AUTH,
    START_FAILED, DockerDriver, _auth_config, _closed_on, _engine_event, _epoch, _mount, _translate, _ts, _validate,
)
from dockyard.drivers.mesh import ProbeFailed, routing_mesh_answers
from dockyard.drivers.node_jobs import run_on_every_node

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # the swarm-start-timeout setting's default
REMOVE_TIMEOUT = 30.0  # seconds to wait for a removed service's task containers to go from the nodes
PROBE_TIMEOUT = 30.0  # seconds the routing-mesh probe may take; a probe that cannot finish means "no mesh"
POLL = 0.2
START_POLL = 0.05  # seconds between two looks at a starting service's tasks: a start returns this late at most
UPDATE_DELAY = 1.0  # seconds between one task's update and the next one's
UPDATE_MONITOR = 3.0  # seconds an updated task is watched; one that fails within them rolls the update back
STOP_GRACE = 10.0  # Swarm's default grace period of a stopping task, counted in an update's deadline
HELPER_TIMEOUT = 60.0  # seconds the volume-removing job may take on the nodes
LOG_POLL = 1.0  # seconds between two reads of a followed service log (the API's follow cannot be closed)
VERSION_TRIES = 5  # a change the swarm refuses as made from a stale version of the service is sent this often
OUT_OF_SEQUENCE = "update out of sequence"  # the manager's word for that refusal

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

    capabilities = Capabilities(swarm=True, logs_follow=True, events=True, stats=False, stacks=True)

    def __init__(self, endpoint: str | None = None, tls: TlsMaterial | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, instance: str = "", probe_image: str = "busybox:stable",
                 start_timeout: float = START_TIMEOUT, routing_mesh: bool | None = None,
                 helper_image: str = "docker:cli") -> None:
        """``routing_mesh``: the answer of the engine's last check (stored on its infrastructure-service), used
        instead of a probe; None: probe once in this process when first needed. ``helper_image``: an image
        with ``sh`` and the ``docker`` CLI, present on (or pullable by) every node, whose one-shot task removes
        a deployment's named volumes on each node."""
        super().__init__(endpoint, tls, timeout=timeout, instance=instance)
        self.probe_image = probe_image
        self.start_timeout = start_timeout
        self.known_mesh = routing_mesh
        self.helper_image = helper_image

    # -- Driver verbs -------------------------------------------------------------------------------------

    def deploy_stack(self, spec: StackSpec) -> StartResult:
        """A compose application as a stack (``docker stack deploy``, :mod:`.stack`); one written for
        ``docker-compose`` (its module's ``compatibility``) with compose on the manager's own engine, as Nuvla's
        ``docker_compose`` connector does on a swarm: its file may use what a stack ignores (``depends_on``
        conditions, ``container_name``, ``network_mode`` of a service…). Its containers are then the
        manager's, seen by label as a plain engine's (inspect, logs, stop and destroy fall back to them)."""
        if spec.compatibility == "docker-compose":
            return super().deploy_stack(spec)
        from dockyard.drivers import stack

        return stack.deploy(self, spec)

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

    def update(self, spec: TaskSpec) -> StartResult:
        """Roll the deployment's service to ``spec`` in place (new image, environment, ports, replicas), one task
        at a time, and return once the update completed; a deployment without its service is started anew.

        Swarm's UpdateConfig: parallelism 1, ``UPDATE_DELAY`` between tasks, each new task watched for
        ``UPDATE_MONITOR`` s, and ``failure_action: rollback``, so a version whose tasks fail leaves the
        previous one running and the update fails with the engine's message. The order is ``stop-first`` when
        ports are published in host mode on a fixed port: a node cannot bind that port for the new task while
        its old one holds it (and with as many replicas as nodes there is no free node to start it on), so
        each task stops before its successor starts, and the other replicas answer meanwhile. Otherwise
        (ingress publishing, or ports each node picks) it is ``start-first``: the new task runs before the old
        one stops. With one replica and a fixed host-mode port that means a moment without an answer; it is
        still a rolling update (same service, rollback on failure), not a remove and create."""
        _validate_service(spec)
        services = self._services(spec.deployment_id)
        if len(services) != 1 or services[0]["Spec"]["Name"] != spec.name:
            return self.start(spec)
        service_id = services[0]["ID"]
        mesh = self.routing_mesh()
        begun = now_ts()

        def send(service: dict[str, Any]) -> None:
            body = self._service_spec(spec, mesh)
            # a new ForceUpdate rolls the tasks even when nothing else changed (an update re-pulls and restarts,
            # as Nuvla's), so every update gets an UpdateStatus of its own to wait for
            body["TaskTemplate"]["ForceUpdate"] = int(service["Spec"]["TaskTemplate"].get("ForceUpdate") or 0) + 1
            self._send_service(self._api()._url("/services/{0}/update", service_id), body, spec,
                               params={"version": service["Version"]["Index"]})

        changed = self._change(service_id, send)
        if changed is None:
            return self.start(spec)  # removed meanwhile
        self._wait_updated(spec, service_id, (changed.get("UpdateStatus") or {}).get("StartedAt", ""))
        tasks = self._wait_running(spec, service_id)
        notes = () if mesh or not spec.ports else (NO_MESH,)
        return StartResult(tasks[0], phases=(("created", begun), ("started", now_ts())), tasks=tuple(tasks),
                           notes=notes)

    def stop(self, deployment_id: str, timeout: float = 10.0) -> None:
        """Scale to zero and wait for the tasks to stop (their containers and logs stay until ``destroy``)."""
        services = self._services(deployment_id)
        if not services:
            super().stop(deployment_id, timeout)  # a container started before the engine was known a manager
        for service in services:
            if self._change(service["ID"], lambda current: self._call(
                    "update_service", current["ID"], current["Version"]["Index"],
                    mode=docker.types.ServiceMode("replicated", 0), fetch_current_spec=True)) is None:
                continue  # removed meanwhile
            deadline = time.monotonic() + timeout + REMOVE_TIMEOUT
            # a task on a node that is down stays "running" (its last word) until the node is back
            while any(t["Status"]["State"] == "running" and t.get("NodeID") not in self._down_nodes()
                      for t in self._tasks(service["ID"])) and time.monotonic() < deadline:
                time.sleep(POLL)

    def destroy(self, deployment_id: str, *, remove_volumes: bool = False) -> str | None:
        """Remove the service and wait until its task containers are gone from every node. Named volumes of its
        mounts were made by each node a task ran on, and the manager's API reaches only its own node's: with
        ``remove_volumes`` a one-shot task on each node (``helper_image``, :mod:`.node_jobs`) removes them, once
        no task uses them (a volume another container still uses stays, as ``docker volume rm`` refuses it);
        what was kept, and on which node, is the answer. A container the deployment got before its engine was
        known to be a swarm manager goes too."""
        volumes = self._named_volumes(deployment_id) if remove_volumes else []
        self._remove_services(deployment_id)
        super().destroy(deployment_id, remove_volumes=remove_volumes)
        _stack().remove_resources(self, deployment_id)  # a stack's networks, configs and secrets
        if not volumes:
            return None
        kept = {node: why for node, why in self.remove_volumes(volumes).items() if why}
        if not kept:
            return None
        return f"volumes {', '.join(volumes)} kept on " + "; ".join(f"{n} ({w})" for n, w in sorted(kept.items()))

    def remove_volumes(self, names: list[str]) -> dict[str, str]:
        """Remove the named volumes on every node that has them; node → "" (done) or why not. A node that is
        down keeps its copies (no task reaches it): they are named in the answer and the log."""
        # a node's engine that does not answer fails the task (it is not taken for "no such volume")
        # a node may still be removing a task's container that uses the volume (the manager forgets the task
        # first): `volume rm` is tried again for up to 15 s before the node's copy is reported kept
        script = ('for v in "$@"; do names=$(docker volume ls -q) || exit 1; '
                  'echo "$names" | grep -qxF "$v" || continue; n=0; '
                  'until docker volume rm "$v" >/dev/null; do n=$((n+1)); [ $n -ge 30 ] && exit 1; sleep 0.5; done; '
                  'done')
        try:
            outcome = run_on_every_node(self._api(), self.helper_image, script, names,
                                        labels={"dockyard.helper": "remove-volumes", **self._instance_label()},
                                        docker_socket=True, timeout=HELPER_TIMEOUT)
        except (TimeoutError, docker.errors.DockerException, requests.RequestException) as exc:
            outcome = {"every node": f"the volume-removing job failed: {exc}"}
        kept = {node: why for node, why in outcome.items() if why}
        if kept:
            log.warning("volumes %s kept on %s", ", ".join(names),
                        "; ".join(f"{node} ({why})" for node, why in sorted(kept.items())))
        return outcome

    def _instance_label(self) -> dict[str, str]:
        return {LABEL_INSTANCE: self.instance} if self.instance else {}

    def _named_volumes(self, deployment_id: str) -> list[str]:
        """The named volumes its services mount (anonymous ones go with each task's container)."""
        names: set[str] = set()
        for service in self._services(deployment_id):
            for mount in service["Spec"]["TaskTemplate"].get("ContainerSpec", {}).get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Source"):
                    names.add(mount["Source"])
        return sorted(names)

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
            failures = _failures(tasks)
            found += [_task_status(deployment_id, service, t, nodes, failures) for t in current]
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
            found = raw.decode("utf-8", errors="replace").splitlines()
            service_name = (service["Spec"].get("Labels") or {}).get(LABEL_SERVICE)
            lines += [_stack().tag(line, service_name) for line in found] if service_name else found
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
        """The swarm's service events (create, update, remove) of managed services, and for each change of a
        node (down, up, drained) an event of every managed deployment: its tasks may move. A task failing on
        a worker node raises no event on the manager: the reconciler's sweep sees it."""
        owners = {s["ID"]: s["Spec"]["Labels"][LABEL_DEPLOYMENT] for s in self._list_services([LABEL_DEPLOYMENT])}
        start = _epoch(since) or datetime.now(timezone.utc).timestamp()
        stream = self._call("events", since=start, filters={"type": ["service", "node", "container"]},
                            decode=True)
        return self._service_events(stream, stop, owners)

    def _service_events(self, stream: Any, stop: StopSignal, owners: dict[str, str]) -> Iterator[EngineEvent]:
        scope = dict(label.split("=", 1) for label in self._scope())
        with _closed_on(stop, stream):
            for raw in self._stream_until_closed(stream, stop):
                action = str(raw.get("Action") or "")
                nanos = raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000
                when = format_ts(datetime.fromtimestamp(nanos / 1e9, timezone.utc))
                actor = str((raw.get("Actor") or {}).get("ID", ""))
                if raw.get("Type") == "container":  # the manager's own containers: a compose project's
                    event = self._container_event(raw, scope)
                    if event is not None:
                        yield event
                    continue
                if raw.get("Type") == "node":
                    for service in self._list_services([LABEL_DEPLOYMENT]):
                        yield EngineEvent(service["Spec"]["Labels"][LABEL_DEPLOYMENT], service["ID"],
                                          f"node-{action}", when)
                    continue
                if actor not in owners:
                    owners[actor] = self._owner(actor)
                if owners[actor] and action:
                    yield EngineEvent(owners[actor], actor, action, when)
        if not stop.is_set():
            raise DriverError(f"The Docker engine at {self.endpoint} closed its event stream.",
                              reason=ENGINE_UNAVAILABLE, recoverable=True)

    @staticmethod
    def _container_event(raw: dict[str, Any], scope: dict[str, str]) -> EngineEvent | None:
        """A container event of ours that is no service's task (those are seen through their service)."""
        attributes = (raw.get("Actor") or {}).get("Attributes") or {}
        if SERVICE_LABEL in attributes or any(attributes.get(k) != v for k, v in scope.items()):
            return None
        return _engine_event(raw)

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
        """Whether this swarm's service virtual IPs (and ingress ports) answer: as the engine's last check found
        (``known_mesh``), else probed once per engine in this process (a probe that cannot run counts as no
        mesh: host-mode ports work either way)."""
        if self.known_mesh is not None:
            return self.known_mesh
        with _mesh_lock:
            if self.endpoint not in _mesh:
                _mesh[self.endpoint] = bool(self.probe_routing_mesh())
            return _mesh[self.endpoint]

    def probe_routing_mesh(self) -> bool | None:
        """Ask the swarm now (``mesh.routing_mesh_answers``; about 16 s where the mesh is dead); None when the
        probe cannot run (its image missing on the nodes, say)."""
        try:
            answers = routing_mesh_answers(self._api(), self.probe_image, timeout=PROBE_TIMEOUT)
        except (TimeoutError, ProbeFailed, docker.errors.DockerException, requests.RequestException) as exc:
            log.warning("the routing-mesh probe of %s could not run (%s): services publish in host mode there",
                        self.endpoint, exc)
            return None
        log.info("swarm %s: routing mesh %s", self.endpoint,
                 "answers" if answers else "does not answer; host-mode ports, dnsrr")
        return answers

    # -- services of a deployment -------------------------------------------------------------------------

    def _create_service(self, spec: TaskSpec, mesh: bool) -> str:
        created = self._send_service(self._api()._url("/services/create"), self._service_spec(spec, mesh), spec)
        return str(created["ID"])

    def _service_spec(self, spec: TaskSpec, mesh: bool) -> dict[str, Any]:
        """The Engine API's ServiceSpec of ``spec`` (the module docstring's table)."""
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
        endpoint: dict[str, Any] = {"Mode": "vip" if mesh else "dnsrr", **({"Ports": ports} if ports else {})}
        fixed_host_port = not mesh and any(p.published for p in spec.ports)
        rolling = {"Parallelism": 1, "Delay": _nanos(UPDATE_DELAY), "Monitor": _nanos(UPDATE_MONITOR),
                   "FailureAction": "rollback", "MaxFailureRatio": 0.0,
                   "Order": "stop-first" if fixed_host_port else "start-first"}
        return {"Name": spec.name, "Labels": labels, "TaskTemplate": dict(template),
                "Mode": {"Replicated": {"Replicas": spec.replicas}}, "EndpointSpec": endpoint,
                "UpdateConfig": rolling, "RollbackConfig": {**rolling, "FailureAction": "pause"}}

    def _send_service(self, url: str, body: dict[str, Any], spec: TaskSpec,
                      params: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a service's spec with ``spec.registry_auth`` as ``X-Registry-Auth``: the manager resolves the
        image with it and hands it to the nodes that pull. (The SDK's create/update_service send only the
        client's own login configs.)"""
        auth = _auth_config(spec.registry_auth)
        headers = {"X-Registry-Auth": docker.auth.encode_header(auth)} if auth else {}
        try:
            response = self._call("_post_json", url, data=body, headers=headers, params=params or {})
            try:
                answer: dict[str, Any] = self._api()._result(response, json=True)
            except docker.errors.APIError as exc:
                raise _translate(exc, self.endpoint) from exc
        except DriverError as err:
            if err.reason in (INVALID_SPEC, ENGINE_UNAVAILABLE, ENGINE_TLS):
                raise
            verb = "updated" if params else "created"
            raise DriverError(f"Service '{spec.name}' could not be {verb}: {err.message}",
                              reason=START_FAILED) from err
        for warning in answer.get("Warnings") or []:
            log.info("swarm %s, service %s: %s", self.endpoint, spec.name, warning)
        return answer

    def _resources(self, spec: TaskSpec) -> docker.types.Resources | None:
        if spec.cpus is None and spec.memory_mib is None:
            return None
        return docker.types.Resources(
            cpu_limit=self._nano_cpus(spec.cpus) if spec.cpus is not None else None,
            mem_limit=spec.memory_mib * 1024 * 1024 * 11 // 10 if spec.memory_mib else None,
            mem_reservation=spec.memory_mib * 1024 * 1024 if spec.memory_mib else None)

    def _wait_running(self, spec: TaskSpec, service_id: str) -> list[TaskStatus]:
        """The service's tasks once ``replicas`` of them run; a task that failed or was rejected with a
        restart policy of none fails the start at once, as does a node that could not pull the image (Swarm
        would retry it for ever); otherwise a task's error is reported at the deadline."""
        deadline = time.monotonic() + self.start_timeout
        failed: dict[str, Any] | None = None
        while True:
            tasks = self._tasks(service_id)
            running = [t for t in tasks if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"]
            failed = next((t for t in reversed(tasks) if t["Status"]["State"] in _FAILED), failed)
            if failed is not None and (spec.restart.condition == "none" or _pull_failed(failed)):
                break
            if len(running) >= spec.replicas:
                return self.inspect(spec.deployment_id)
            if time.monotonic() > deadline:
                break
            time.sleep(START_POLL)
        if failed is not None:
            raise _task_error(spec, failed, self._nodes())
        raise DriverError(f"Service '{spec.name}' did not start: {len(running)} of {spec.replicas} replicas run "
                          f"after {self.start_timeout:g} s", reason=START_FAILED)

    def _wait_updated(self, spec: TaskSpec, service_id: str, before: str) -> None:
        """Until the update begun after ``before`` (the previous UpdateStatus' StartedAt) completed; one rolled
        back (or paused) fails with the engine's message, and the failed task's error, once the rollback is
        over."""
        deadline = time.monotonic() + self.start_timeout + spec.replicas * (UPDATE_DELAY + UPDATE_MONITOR + STOP_GRACE)
        status: dict[str, Any] = {}
        why = ""  # the engine says why it rolls back only while it does ("update rolled back due to ...")
        while time.monotonic() < deadline:
            try:
                service = self._call("inspect_service", service_id)
            except DriverError as err:
                if err.reason != NOT_FOUND:
                    raise
                raise DriverError(f"Service '{spec.name}' was removed while it was being updated.",
                                  reason=START_FAILED) from err
            status = service.get("UpdateStatus") or {}
            state = status.get("State", "") if status.get("StartedAt", "") != before else ""
            if state == "completed":
                return
            if state in ("paused", "rollback_started") and not why:
                why = status.get("Message", "")
            if state in ("paused", "rollback_paused", "rollback_completed"):
                again = "; its previous version runs again" if state == "rollback_completed" else ""
                failed = [t for t in self._tasks(service_id) if t["Status"]["State"] in _FAILED]
                error = f" ({failed[-1]['Status'].get('Err')})" if failed and failed[-1]["Status"].get("Err") else ""
                # the engine's reason, when a look caught it while rolling back (it may be over in a moment)
                reason = why or ("update rolled back" if state.startswith("rollback") else status.get("Message"))
                raise DriverError(f"Service '{spec.name}' was not updated: {reason or state}{error}{again}",
                                  reason=START_FAILED)
            time.sleep(POLL)
        raise DriverError(f"Service '{spec.name}' was still updating after the deadline "
                          f"({status.get('State') or 'not begun'}: {status.get('Message', '')})", reason=START_FAILED)

    def _change(self, service_id: str, send: Callable[[dict[str, Any]], Any]) -> dict[str, Any] | None:
        """``send`` a change of the service as the manager has it now; the service as it was when the change was
        taken, or None when the service is gone.

        Swarm takes a change only at the version it was made from, and it moves a service's version itself
        while it rolls an update over (it writes the update's progress into the service), so a version read
        earlier (a stop listing a stack's services, then waiting on each in turn) may be refused "update out
        of sequence". The service is read right before each try, and again after such a refusal."""
        tries = 0
        while True:
            tries += 1
            try:
                service: dict[str, Any] = self._call("inspect_service", service_id)
                send(service)
                return service
            except DriverError as err:
                if err.reason == NOT_FOUND:
                    return None
                if OUT_OF_SEQUENCE not in err.message or tries == VERSION_TRIES:
                    raise
                log.info("swarm %s changed service %s meanwhile: sending the change again", self.endpoint,
                         service_id)

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

    def _down_nodes(self) -> set[str]:
        """The ids of the nodes that are not ready: what their tasks last said is all the manager knows."""
        return {n["ID"] for n in self._call("nodes") if (n.get("Status") or {}).get("State") != "ready"}

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
            # the containers; asked by the service's id, the manager answers 404 at once. A node that is
            # down removes its tasks' containers when it is back: not worth waiting for
            down = self._down_nodes()
            if not any(t.get("ServiceID") in removed and t.get("NodeID") not in down for t in self._call("tasks")) \
                    and not self._own_task_containers(deployment_id, removed):
                return
            time.sleep(POLL)
        if removed and time.monotonic() >= deadline:
            log.warning("the tasks of %s's services were still being removed after %g s", deployment_id,
                        REMOVE_TIMEOUT)

    def _own_task_containers(self, deployment_id: str, services: list[str]) -> bool:
        """Whether the manager's own node still has a task container of ``services``: the manager may forget a
        removed task before its node has removed the container (seen under load). Other nodes' containers are
        out of this API's sight."""
        return any(c["Labels"].get(SERVICE_LABEL) in services
                   for c in self._list([f"{LABEL_DEPLOYMENT}={deployment_id}"]))

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


def _nanos(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


_PULL_FAILED = ("no such image", "pull access denied", "unauthorized", "authentication required",
                "manifest unknown")


def _pull_failed(task: dict[str, Any]) -> bool:
    status = task.get("Status") or {}
    detail = (status.get("Err") or status.get("Message") or "").lower()
    return status.get("State") == "rejected" and any(marker in detail for marker in _PULL_FAILED)


def _task_error(spec: TaskSpec, task: dict[str, Any], nodes: dict[str, tuple[str, str]]) -> DriverError:
    """Why a task failed, in a user's words: a node that could not pull names the image and its registry."""
    status = task.get("Status") or {}
    detail = status.get("Err") or status.get("Message") or status.get("State", "")
    node = nodes.get(task.get("NodeID", ""), ("", ""))[0] or "a node"
    if any(marker in detail.lower() for marker in _PULL_FAILED):
        first = spec.image.split("/", 1)[0]
        registry = first if "/" in spec.image and ("." in first or ":" in first or first == "localhost") \
            else "Docker Hub"
        if spec.registry_auth is None:
            return DriverError(f"Image '{spec.image}' could not be pulled by {node} from the registry {registry}: "
                               f"it is not there, or it is private and the deployment gives no credential for "
                               f"it. ({detail})", reason=IMAGE_NOT_FOUND)
        return DriverError(f"Image '{spec.image}' could not be pulled by {node} from the registry {registry} with "
                           f"the credential given. ({detail})", reason=REGISTRY_AUTH)
    return DriverError(f"Service '{spec.name}' did not start: {detail} (on {node})", reason=START_FAILED)


def _stack() -> Any:
    from dockyard.drivers import stack

    return stack


def _failures(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's tasks that failed and were replaced (desired shutdown, state failed or rejected), newest
    last: what Nuvla's ``restart.*`` parameters count and describe."""
    failed = [t for t in tasks if t.get("DesiredState") == "shutdown" and t["Status"].get("State") in _FAILED]
    return sorted(failed, key=lambda t: t.get("CreatedAt", ""))


def _task_status(deployment_id: str, service: dict[str, Any], task: dict[str, Any],
                 nodes: dict[str, tuple[str, str]], failures: list[dict[str, Any]] | None = None) -> TaskStatus:
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
    name = (service["Spec"].get("Labels") or {}).get(LABEL_SERVICE) or \
        f"{service['Spec']['Name']}.{task.get('Slot', '')}".rstrip(".")  # a stack's task: its service's name
    return TaskStatus(deployment_id=deployment_id, task_id=task["ID"], name=name, state=state,
                      exit_code=exit_code, error=status.get("Err", ""),
                      started_at=_ts(status.get("Timestamp")) if state == RUNNING else None,
                      ports=tuple(sorted(ports, key=lambda p: (p.target, p.protocol))),
                      image=task.get("Spec", {}).get("ContainerSpec", {}).get("Image", "").split("@")[0],
                      node=node, address=address, restart_count=len(failures or ()),
                      last_failure=_failure(failures[-1]) if failures else None)


def _failure(task: dict[str, Any]) -> tuple[str, int | None, str]:
    status = task.get("Status") or {}
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    return status.get("Err", ""), code if isinstance(code, int) else None, _ts(status.get("Timestamp")) or ""

