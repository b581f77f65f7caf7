"""A deployment's module content → the task specs its engine runs.

One spec per component (a ``component`` module is one container); a compose application is one
:class:`StackSpec` (:func:`plan_application`), its file rewritten so that every service gets what a component's
container gets (``deploy.compose``). The spec carries the contract (:mod:`.contract`), the app's own mounts (a named volume on
a shared engine is its owner's own: ``deploy.mounts``), the data mounts (:mod:`.data`), the
restart policy and limits, and the registry credential to pull with.
"""

from __future__ import annotations

from typing import Any

from ..drivers.base import LABEL_DEPLOYMENT, LABEL_MANAGED, MountSpec, PortSpec, RestartPolicy, StackSpec, TaskSpec
from ..resources import private_registry
from ..resources.base import Services
from .mounts import is_local, volume_name
from ..resources.private_registry import image_ref
from . import compose, contract, data


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


def plan_application(services: Services, dep: dict[str, Any], job_id: str) -> StackSpec:
    """A compose application's project (or stack): the file with the contract's environment names, labels and
    the data mounts in every service; the values in the CLI's environment; the app's files; the registry
    credentials its services' images need (each checked with its registry, as a component's)."""
    content = dep["module"]["content"]
    env = contract.environment(services, dep)
    labels = {LABEL_DEPLOYMENT: dep["id"], LABEL_MANAGED: "true", **dict(contract.labels(services, dep, job_id))}
    text = compose.rewrite(content["docker-compose"], env_names=[name for name, _ in env], labels=labels,
                           mounts=data.mounts_for(services, dep))
    return StackSpec(
        deployment_id=dep["id"], project=contract.node_id(dep), compose=text, env=env,
        files=tuple((f["file-name"], f["file-content"]) for f in content.get("files") or []),
        registry_auths=private_registry.worker_auths(services, dep, compose.images_of(content["docker-compose"])),
        compatibility=str(dep["module"].get("compatibility") or "swarm"),
        publish_ip=services.settings["publish-ip"])
