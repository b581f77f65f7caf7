"""The container-engine interface every backend implements, and its value types.

Verbs follow nomad's driver: ``start`` creates and starts a deployment's task, ``stop`` signals it and
waits, ``destroy`` removes everything the driver created for a deployment, ``inspect`` reads its state.
Everything a driver creates carries the label ``dockyard.deployment-id`` so orphans can be found by label.
Optional behaviour is declared in :class:`Capabilities`, not discovered by catching failures.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

LABEL_DEPLOYMENT = "dockyard.deployment-id"
LABEL_JOB = "dockyard.job-id"
LABEL_COMPONENT = "dockyard.component"
LABEL_MANAGED = "dockyard.managed"
LABEL_INSTANCE = "dockyard.instance"  # the Dockyard installation that created it
LABEL_SERVICE = "dockyard.service"  # a compose application's service, on its containers and swarm services

# task states, in one place (compare nomad's TaskState)
CREATED = "created"
RUNNING = "running"
RESTARTING = "restarting"
EXITED = "exited"
MISSING = "missing"
TASK_STATES = (CREATED, RUNNING, RESTARTING, EXITED, MISSING)


class DriverError(Exception):
    """An engine failure, with a message a user understands and a short reason label.

    ``recoverable`` is the engine's word on whether trying again may help (the engine was unreachable),
    as opposed to a failure that will repeat (the image does not exist).
    """

    def __init__(self, message: str, *, reason: str = "engine-error", recoverable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.recoverable = recoverable


@dataclass(frozen=True)
class Capabilities:
    swarm: bool = False
    logs_follow: bool = True
    events: bool = True
    stats: bool = False  # follow_stats
    stacks: bool = False  # deploy_stack: compose applications


@dataclass(frozen=True)
class EngineInfo:
    reachable: bool
    version: str = ""
    swarm: bool = False
    swarm_manager: bool = False
    nodes: int = 0  # the swarm's node count, as its manager knows it (0 on a worker or a plain engine)
    routing_mesh: bool | None = None  # a manager's: whether its service VIPs and ingress answer (None: not asked)
    message: str = ""


@dataclass(frozen=True)
class PortSpec:
    target: int
    protocol: str = "tcp"  # tcp | udp | sctp
    published: int | None = None  # None: an ephemeral host port


@dataclass(frozen=True)
class MountSpec:
    type: str  # volume | bind | tmpfs
    target: str
    source: str | None = None
    read_only: bool = False
    options: tuple[tuple[str, str], ...] = ()  # volume driver options


@dataclass(frozen=True)
class RestartPolicy:
    condition: str = "none"  # none | on-failure | any
    max_attempts: int | None = None


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: str
    serveraddress: str


@dataclass(frozen=True)
class TaskSpec:
    """What to run for one deployment (one component)."""

    deployment_id: str  # deployment/<uuid>
    name: str  # DNS-safe name to give the container/service
    image: str  # full reference: [registry/][repository/]name[:tag]
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortSpec, ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    cpus: float | None = None
    memory_mib: int | None = None
    restart: RestartPolicy = RestartPolicy()
    labels: tuple[tuple[str, str], ...] = ()
    registry_auth: RegistryAuth | None = None
    command: tuple[str, ...] | None = None
    publish_ip: str = ""  # host address ports bind to; "" for all
    replicas: int = 1  # tasks to run at once: more than one needs a driver whose capabilities.swarm is true


@dataclass(frozen=True)
class StackSpec:
    """What to run for one deployment of a compose application: a compose project on one engine, or a stack on
    a swarm manager (Nuvla's ``application`` module).

    ``compose`` is the file as the engine's CLI gets it: the caller has already put the deployment's labels
    (:data:`LABEL_SERVICE` naming each service), environment names and mounts in every service. A variable the
    file lists without a value (``environment: [NUVLA_API_KEY]``) takes it from ``env``, the CLI process's
    environment, as does ``${NUVLA_...}`` interpolation: values (the API secret among them) never go into the
    file. The driver may rewrite what depends on its engine (published ports).
    """

    deployment_id: str  # deployment/<uuid>
    project: str  # the compose project or stack name: the deployment's uuid, as Nuvla
    compose: str  # the compose file's text
    env: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (file name, content), written next to the compose file
    registry_auths: tuple[RegistryAuth, ...] = ()
    compatibility: str = "docker-compose"  # docker-compose | swarm (what the app was written for)
    publish_ip: str = ""  # host address a single engine's ports bind to when the file names none; "" for all


@dataclass(frozen=True)
class PublishedPort:
    protocol: str
    target: int
    host_port: int
    host_ip: str = ""


@dataclass(frozen=True)
class TaskStatus:
    deployment_id: str
    task_id: str  # container (or service) id; "" when missing
    name: str
    state: str  # one of TASK_STATES
    exit_code: int | None = None
    error: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    restart_count: int = 0  # a container's restarts; a Swarm service's failed tasks (the swarm replaced them)
    # the newest of those failures (a Swarm service's: its task's error, exit code and time), as Nuvla's restart.*
    last_failure: tuple[str, int | None, str] | None = None  # (error, exit code, RFC 3339 time)
    ports: tuple[PublishedPort, ...] = ()
    image: str = ""
    node: str = ""  # the swarm node running the task (its hostname); "" on a plain engine
    address: str = ""  # that node's address, where its host-mode published ports answer


@dataclass(frozen=True)
class StartResult:
    status: TaskStatus
    # phase → timestamp (UTC, Nuvla format): pulled, created, started
    phases: tuple[tuple[str, str], ...] = ()
    tasks: tuple[TaskStatus, ...] = ()  # a service's every current task (``status`` is the first); () else
    notes: tuple[str, ...] = ()  # what the user should know of how it runs (a fallback the engine forced)


@dataclass(frozen=True)
class EngineEvent:
    """A change the engine reports for a task we manage."""

    deployment_id: str
    task_id: str
    action: str  # start | die | restart | oom | destroy | ...
    time: str
    exit_code: int | None = None


@dataclass(frozen=True)
class TaskStats:
    """One sample of what a running task uses, as ``docker stats`` shows it."""

    time: str  # when the engine read it (RFC 3339)
    cpu_percent: float  # 100 is one whole CPU
    memory_bytes: int  # in use, without the page cache the kernel may reclaim
    memory_limit_bytes: int  # the task's limit, or the host's memory when it has none


@dataclass
class StopSignal:
    """Set by the caller to end a long-running iterator (events, followed logs)."""

    event: threading.Event = field(default_factory=threading.Event)

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class Driver(ABC):
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    def check(self) -> EngineInfo:
        """Whether the engine answers, its version, and whether it is a swarm (manager). Never raises."""

    @abstractmethod
    def start(self, spec: TaskSpec) -> StartResult:
        """Pull the image if it is missing, create and start the task; return its state and published ports.

        Idempotent per deployment: a task already created for the deployment is replaced. On failure
        nothing is left behind and :class:`DriverError` says why (``image-not-found``, ``port-conflict``,
        ``engine-unavailable``, ``registry-auth``, ``start-failed``).
        """

    def update(self, spec: TaskSpec) -> StartResult:
        """Bring the deployment's running task to ``spec`` (a new image, environment, ports); the same failures
        as ``start``. This one replaces the task (``start``); a driver that can roll its tasks over without a
        moment's downtime (a Swarm service with several replicas) does so instead."""
        return self.start(spec)

    @abstractmethod
    def stop(self, deployment_id: str, timeout: float = 10.0) -> None:
        """Signal the deployment's tasks and wait up to ``timeout`` s; a missing task counts as stopped."""

    @abstractmethod
    def destroy(self, deployment_id: str, *, remove_volumes: bool = False) -> str | None:
        """Remove everything created for the deployment (found by label). Idempotent. Returns what had to be
        kept, in a user's words (volumes on a node that was down, say), or None."""

    @abstractmethod
    def inspect(self, deployment_id: str) -> list[TaskStatus]:
        """The current state of each of the deployment's tasks; empty when none exists."""

    @abstractmethod
    def logs(self, deployment_id: str, *, since: str | None = None, tail: int | None = None,
             timestamps: bool = True) -> list[str]:
        """The log lines of the deployment's task (stdout and stderr, in order)."""

    @abstractmethod
    def follow_logs(self, deployment_id: str, stop: StopSignal, *, tail: int | None = 0) -> Iterator[str]:
        """Yield log lines as they are written until ``stop`` is set or the task is removed."""

    @abstractmethod
    def events(self, stop: StopSignal, since: str | None = None) -> Iterator[EngineEvent]:
        """Yield engine events of managed tasks until ``stop`` is set; raises DriverError if the engine goes."""

    def follow_stats(self, deployment_id: str, stop: StopSignal) -> Iterator[TaskStats]:
        """Yield a sample of the deployment's running task about once a second until ``stop`` is set or the
        task stops or is removed (then the iterator ends; a task that is not running yields nothing). Only
        drivers whose ``capabilities.stats`` is true implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot follow a task's resource use")

    def deploy_stack(self, spec: StackSpec) -> StartResult:
        """Deploy a compose application: create (or replace) every service of ``spec.compose`` and return once
        they run. ``tasks`` holds one :class:`TaskStatus` per service container or task, ``name`` the service's;
        ``status`` is the first that does not run, or the first. Everything made carries the deployment's
        labels, so ``inspect``, ``stop``, ``destroy``, ``logs`` and ``managed`` work on it as on a task.

        On failure :class:`DriverError` says why, with the CLI's own words. Only drivers whose
        ``capabilities.stacks`` is true implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot deploy compose applications")

    def host_address(self) -> str | None:
        """The address at which this engine's containers reach the host (a local bridge's gateway), if any."""
        return None

    @abstractmethod
    def managed(self) -> dict[str, list[str]]:
        """Every deployment id the engine holds tasks for (by label) → the task ids; finds orphans."""
