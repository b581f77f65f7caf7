"""A deployment's module content → the task specs its engine runs.

One spec per component today (a ``component`` module is one container); a compose application will give
one per service. The spec carries the contract (:mod:`.contract`), the app's own mounts (a named volume on
a shared engine is its owner's own: ``deploy.mounts``), the data mounts (:mod:`.data`), the
restart policy and limits, and the registry credential to pull with.
"""

from __future__ import annotations

from typing import Any

from ..drivers.base import MountSpec, PortSpec, RestartPolicy, TaskSpec
from ..resources import private_registry
from ..resources.base import Services
from .mounts import is_local, volume_name
from ..resources.private_registry import image_ref
from . import contract, data


def plan(services: Services, dep: dict[str, Any], job_id: str, engine_endpoint: str) -> list[TaskSpec]:
    """The tasks of ``dep`` on the engine at ``engine_endpoint``, made by the job ``job_id``."""
    return [task_spec(services, dep, job_id, engine_endpoint)]


def task_spec(services: Services, dep: dict[str, Any], job_id: str, engine_endpoint: str) -> TaskSpec:
    content = dep["module"]["content"]
    ports = tuple(PortSpec(p["target-port"], p.get("protocol", "tcp"), p.get("published-port"))
                  for p in content.get("ports", []))
    shared = is_local(engine_endpoint)
    mounts = tuple(MountSpec(m["mount-type"], m["target"], _source(dep, m, shared), bool(m.get("read-only")),
                             tuple(sorted((m.get("volume-options") or {}).items())))
                   for m in content.get("mounts", [])) + data.mounts_for(services, dep)
    policy = content.get("restart-policy") or {}
    restart = RestartPolicy(policy.get("condition", "none"), policy.get("max-attempts"))
    return TaskSpec(
        deployment_id=dep["id"], name=contract.container_name(dep), image=image_ref(content["image"]),
        env=contract.environment(services, dep), ports=ports, mounts=mounts, cpus=content.get("cpus"),
        memory_mib=content.get("memory"), restart=restart, labels=contract.labels(services, dep, job_id),
        # checked with the registry at every start: a private image already on the engine runs only for a
        # deployment whose credential opens it; None for an image of no private registry
        registry_auth=private_registry.worker_auth(services, dep), publish_ip=services.settings["publish-ip"],
        replicas=int(content.get("replicas") or 1),
    )


def _source(dep: dict[str, Any], mount: dict[str, Any], shared: bool) -> str | None:
    """A named volume on a shared engine is its owner's own (see ``deploy.mounts``)."""
    source = mount.get("source")
    if shared and mount["mount-type"] == "volume" and source:
        return volume_name(dep.get("owner") or dep["id"], source)
    return source
