"""The container contract: what every container of a deployment receives and finds.

Its environment (Nuvla's variables, then the app's own), its DNS-safe name, the labels that tie it to its
deployment, job and installation, and the parameters that exist before it starts (``hostname``, the output
parameters, ``tcp.<port>``/``udp.<port>``, ids as Nuvla computes them) so that it can set one with a single
``PUT``; once it runs, the ports its engine published.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from ..drivers.base import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_JOB, StartResult
from ..resources.base import Ctx, Services
from ..resources.deployment_parameter import upsert
from ..store.db import Tx


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:30] or "app"


def component_name(dep: dict[str, Any]) -> str:
    return str(dep["module"].get("path", "app").rsplit("/", 1)[-1])


def container_name(dep: dict[str, Any]) -> str:
    """DNS-safe and unique: the app's name, then the deployment's uuid."""
    return f"{_slug(component_name(dep))}-{dep['id'].split('/', 1)[1]}"


def node_id(dep: dict[str, Any]) -> str:
    """The node-id of the deployment's parameters: its uuid (one component per deployment, as Nuvla)."""
    return str(dep["id"].split("/", 1)[1])


def environment(services: Services, dep: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Nuvla's variables first, then the app's own (empty values skipped)."""
    creds = dep.get("api-credentials") or {}
    now = datetime.now(timezone.utc)
    env = {
        "NUVLA_ENDPOINT": dep["api-endpoint"],
        "NUVLA_DEPLOYMENT_ID": dep["id"],
        "NUVLA_DEPLOYMENT_UUID": node_id(dep),
        "NUVLA_API_KEY": creds.get("api-key", ""),
        "NUVLA_API_SECRET": services.keys.cipher.decrypt(creds.get("api-secret", "")),
        "DATE_TIME": now.strftime("%y%m%d%H%M%S"),
        "TIMESTAMP": str(int(now.timestamp())),
    }
    for var in dep["module"]["content"].get("environmental-variables", []):
        if var.get("value"):
            env[var["name"]] = var["value"]
    return tuple(env.items())


def labels(services: Services, dep: dict[str, Any], job_id: str) -> tuple[tuple[str, str], ...]:
    """Beside the driver's own (deployment, managed): the job that made it, its component, this installation."""
    return ((LABEL_JOB, job_id), (LABEL_COMPONENT, component_name(dep)),
            (LABEL_INSTANCE, services.extras.get("instance-id", "")))


def hostname(services: Services, infra_endpoint: str) -> str:
    configured = services.settings["public-hostname"]
    if configured:
        return str(configured)
    if infra_endpoint.startswith("unix://"):
        return "localhost"
    return urlparse(infra_endpoint).hostname or "localhost"


def create_parameters_in(ictx: Ctx, tx: Tx, dep: dict[str, Any], host: str) -> None:
    """Before the container starts, so that it can set its outputs with one PUT of a computed id."""
    content = dep["module"]["content"]
    node = node_id(dep)
    upsert(ictx, tx, dep, "hostname", host, description="the host where the ports are published")
    for out in content.get("output-parameters", []):
        upsert(ictx, tx, dep, out["name"], node_id=node, description=out.get("description"),
               keep_value=True)
    for port in content.get("ports", []):
        proto = port.get("protocol", "tcp")
        upsert(ictx, tx, dep, f"{proto}.{port['target-port']}", node_id=node, keep_value=True,
               description=f"mapping for {proto} port {port['target-port']}")


def publish_in(ictx: Ctx, tx: Tx, dep: dict[str, Any], result: StartResult) -> None:
    """The host ports the engine chose, as the ``<protocol>.<port>`` parameters. A Swarm service published in
    host mode answers on its tasks' nodes: ``hostname`` becomes the address of the first task's node."""
    node = node_id(dep)
    if result.status.address and result.status.ports and not ictx.services.settings["public-hostname"]:
        upsert(ictx, tx, dep, "hostname", result.status.address,
               description="the host where the ports are published")
    for port in result.status.ports:
        upsert(ictx, tx, dep, f"{port.protocol}.{port.target}", str(port.host_port), node_id=node,
               description=f"mapping for {port.protocol} port {port.target}")
