"""Compose applications as a Docker Swarm stack: the Swarm driver's ``deploy_stack``.

As Nuvla's ``docker_stack`` connector: ``docker stack deploy --with-registry-auth --prune -c
docker-compose.yaml <uuid>`` with Debian's ``docker`` CLI (:mod:`.cli`) pointed at the manager (``-H
tcp://… --tlsverify`` and the credential's certificates, in a 0700 directory removed right after the call).
The stack is named by the deployment's uuid, so its services are ``<uuid>_<service>`` and carry
``com.docker.stack.namespace=<uuid>`` beside the deployment's labels (which the caller put in each service's
``deploy.labels``): the Swarm driver inspects, scales to zero, logs and removes them as a component's service.

Before it is handed over, the file gets what this swarm needs:

* ``version: "3.8"`` when it names none or an older 3.x (the CLI of Debian reads only version 3 files, and
  host-mode ports and ``endpoint_mode`` need 3.2 and 3.3);
* where the routing mesh does not answer (:meth:`SwarmDriver.routing_mesh`: no IPVS in the nodes' kernel),
  every port is published in ``mode: host`` and every service gets ``deploy.endpoint_mode: dnsrr``, so that a
  service reaches another by its name (the name resolves to the tasks' own addresses, not to a virtual IP that
  goes nowhere) and a published port answers on its task's node. The start's status message says so.

``start`` returns once every service runs its replicas (or fails at ``start_timeout`` with the tasks' error).
``destroy`` removes the services (waiting for their tasks to go from every node), then the stack's networks,
configs and secrets; with ``remove_volumes`` the Swarm driver removes the named volumes its services mounted on
every node. Logs are every service's, each line tagged with its service as on a single engine.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import yaml

from dockyard.core.time import now_ts
from dockyard.drivers import cli
from dockyard.drivers.base import LABEL_DEPLOYMENT, DriverError, StackSpec, StartResult, TaskStatus
from dockyard.drivers.compose import dump, headline, tag  # noqa: F401  (tag: the Swarm driver's logs)

if TYPE_CHECKING:
    from dockyard.drivers.swarm import SwarmDriver

log = logging.getLogger(__name__)

DEPLOY_TIMEOUT = 300.0  # seconds `docker stack deploy` may take (it creates the services; nodes pull later)
REMOVE_TIMEOUT = 30.0  # seconds to wait until a network's last task endpoint is gone
POLL = 0.3
START_POLL = 0.05  # seconds between two looks at a starting stack's tasks: a start returns this late at most
STACK_LABEL = "com.docker.stack.namespace"
VERSION = "3.8"
NO_MESH = ("services reach each other by name through DNS round robin (endpoint_mode dnsrr) and publish their "
           "ports in host mode on each task's node: this swarm's routing mesh does not answer")
_FAILED = ("failed", "rejected")


def deploy(driver: SwarmDriver, spec: StackSpec) -> StartResult:
    mesh = driver.routing_mesh()
    doc = for_swarm(yaml.safe_load(spec.compose), mesh)
    with cli.workdir(driver.endpoint, driver._tls, compose=dump(doc), files=spec.files, env=spec.env,
                     registry_auths=spec.registry_auths) as wd:
        cli.run([cli.DOCKER_CLI, *wd.engine_args, "stack", "deploy", "--with-registry-auth", "--prune", "-c",
                 wd.compose_file, spec.project], wd, timeout=DEPLOY_TIMEOUT, what="docker stack deploy")
    created = now_ts()
    tasks = _wait_running(driver, spec, len(doc["services"]))
    notes = () if mesh else (NO_MESH,)
    return StartResult(headline(tasks, spec.deployment_id), phases=(("created", created), ("started", now_ts())),
                       tasks=tuple(tasks), notes=notes)


def for_swarm(doc: dict[str, Any], mesh: bool) -> dict[str, Any]:
    """The file as this swarm needs it (see the module's docstring)."""
    version = str(doc.get("version") or "")
    if version and not version.startswith("3"):
        raise DriverError(f"docker stack deploy reads compose files of version 3, not '{version}'",
                          reason=cli.INVALID_SPEC)
    if not version or _older(version, VERSION):
        doc = {"version": VERSION, **{k: v for k, v in doc.items() if k != "version"}}
    if mesh:
        return doc
    for service in doc["services"].values():
        service["ports"] = [_host_mode(p) for p in service.get("ports") or []]
        if not service["ports"]:
            del service["ports"]
        service.setdefault("deploy", {})["endpoint_mode"] = "dnsrr"
    return doc


def _older(version: str, than: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".") if p.isdigit())
    return parts(version) < parts(than)


def _host_mode(port: Any) -> dict[str, Any]:
    """A port in the long syntax, published in host mode: ``"8080:80/udp"`` → ``{target: 80, published: 8080,
    protocol: udp, mode: host}``."""
    if isinstance(port, dict):
        return {**port, "mode": "host"}
    text, _, protocol = str(port).partition("/")
    parts = text.rsplit(":", 2)
    target = parts[-1]
    published = parts[-2] if len(parts) > 1 else ""
    if not target.isdigit() or (published and not published.isdigit()):
        raise DriverError(f"port '{port}' cannot be published in host mode (a range, or not a port)",
                          reason=cli.INVALID_SPEC)
    out: dict[str, Any] = {"target": int(target), "mode": "host"}
    if published:
        out["published"] = int(published)
    if protocol:
        out["protocol"] = protocol
    return out


def _wait_running(driver: SwarmDriver, spec: StackSpec, expected: int) -> list[TaskStatus]:
    """The stack's tasks once each of its ``expected`` services runs its replicas."""
    deadline = time.monotonic() + driver.start_timeout
    why = ""
    while True:
        services = driver._services(spec.deployment_id)
        pending = []
        for service in services:
            tasks = driver._tasks(service["ID"])
            running = [t for t in tasks if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"]
            failed = [t for t in tasks if t["Status"]["State"] in _FAILED]
            if len(running) < _desired(service):
                name = service["Spec"]["Name"].removeprefix(f"{spec.project}_")
                error = failed[-1]["Status"].get("Err", "") if failed else ""
                pending.append(f"service '{name}': {len(running)} of {_desired(service)} replicas run"
                               + (f" ({error})" if error else ""))
        if len(services) >= expected and not pending:
            return driver.inspect(spec.deployment_id)
        why = "; ".join(pending) or f"{len(services)} of {expected} services created"
        if time.monotonic() > deadline:
            raise DriverError(f"The stack did not start within {driver.start_timeout:g} s: {why}",
                              reason=cli.START_FAILED)
        time.sleep(START_POLL)


def _desired(service: dict[str, Any]) -> int:
    mode = service["Spec"].get("Mode") or {}
    if "Replicated" in mode:
        return int(mode["Replicated"].get("Replicas", 1))
    return 1  # global: at least one


# -- destroy -------------------------------------------------------------------------------------------------

def remove_resources(driver: SwarmDriver, deployment_id: str) -> None:
    """The stack's configs, secrets and (swarm-scoped) networks, once its services are gone. A network stays in
    use until the last task's endpoint on it is released. (Its named volumes on every node are the Swarm driver's
    ``remove_volumes``.)"""
    labels = driver._scope() + [f"{LABEL_DEPLOYMENT}={deployment_id}"]
    for lister, remover in (("configs", "remove_config"), ("secrets", "remove_secret")):
        for item in driver._call(lister, filters={"label": labels}) or []:
            _gone(driver, remover, item["ID"])
    for network in driver._call("networks", filters={"label": labels}) or []:
        if network.get("Scope") == "swarm":
            _remove_network(driver, network["Id"])


def _gone(driver: SwarmDriver, op: str, name: str) -> bool:
    """True once removed (or already gone); False while the engine says it is in use."""
    from dockyard.drivers.docker import CONFLICT, NOT_FOUND

    try:
        driver._call(op, name)
        return True
    except DriverError as err:
        if err.reason == NOT_FOUND:
            return True
        if err.reason in (cli.ENGINE_UNAVAILABLE, cli.ENGINE_TLS):
            raise
        if err.reason != CONFLICT and "in use" not in err.message and "active endpoints" not in err.message:
            log.warning("could not remove %s (%s): %s", name, op, err.message)
            return True
        return False


def _remove_network(driver: SwarmDriver, network_id: str) -> None:
    deadline = time.monotonic() + REMOVE_TIMEOUT
    while not _gone(driver, "remove_network", network_id):
        if time.monotonic() > deadline:
            log.warning("network %s was still in use %g s after its services were removed", network_id,
                        REMOVE_TIMEOUT)
            return
        time.sleep(POLL)
