"""A compose application's file (Nuvla's ``application`` module): what Dockyard checks in it, and the file its
engine gets.

**Checks.** :func:`problems` are Dockyard's own rules, each naming the service or key: the text is YAML, a map
with ``services``, each service a map with an ``image`` (Dockyard cannot build: ``build`` is refused), known
top-level keys only, ``environment``/``labels`` a map or a list, and for a swarm a version 3 file. The
``validate-docker-compose`` job adds the real compose's verdict (``docker-compose config``:
``drivers.compose.check``); a deployment's ``start`` refuses, before it queues anything, what cannot run at
all (:func:`blocking`).

**Rewrite.** :func:`rewrite` puts into **every** service what a component's container gets:

* the deployment's environment, by name only (``NUVLA_API_KEY`` without a value): the CLI process has the
  values, so the API secret is never written into the file, and ``${NUVLA_…}`` interpolation still works
  (Nuvla only interpolates; a file need not name the variables to get them here);
* the labels that tie it to its deployment, job and installation, and ``dockyard.service`` naming the service
  (on its containers, and in ``deploy.labels`` on a swarm service), so the drivers' label-based inspect, stop,
  destroy, logs and orphan sweep see an application as they see a component;
* the deployment's data mounts (``/mnt/<bucket>``, read-only);
* ``init: true`` unless the file says otherwise, as a component's container has.

Networks, volumes, configs and secrets the file declares (and the ``default`` network) get the deployment's
labels too, so that stop and delete find them; external ones are the user's and are left alone.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..drivers.base import LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_SERVICE, MountSpec

TOP_KEYS = ("version", "services", "networks", "volumes", "configs", "secrets", "name")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
DECLARED = ("networks", "volumes", "configs", "secrets")  # top-level objects the deployment's labels go on
MAX_RANGE = 100  # ports of one published range that readiness checks
VERSION = "3.8"  # what a version 3 file is raised to: labels on configs and secrets need 3.3


def load(text: str) -> Any:
    """The parsed file; ``yaml.YAMLError`` when it is not YAML."""
    return yaml.safe_load(text)


def problems(text: str, compatibility: str = "docker-compose") -> list[str]:
    """Everything Dockyard's own rules find wrong in the file, each naming its service or key."""
    try:
        doc = load(text)
    except yaml.YAMLError as exc:
        return [f"the file is not YAML: {_yaml_error(exc)}"]
    found = _structure(doc)
    if found:
        return found
    found += [f"unknown top-level key '{key}' (known: {', '.join(TOP_KEYS)}, and x-… extensions)"
              for key in doc if key not in TOP_KEYS and not str(key).startswith("x-")]
    version = str(doc.get("version") or "")
    if compatibility == "swarm" and version and not version.startswith("3"):
        found.append(f"version '{version}': a swarm stack (docker stack deploy) reads version 3 files only")
    for name, service in doc["services"].items():
        found += _service_problems(str(name), service)
    return found


def blocking(text: str) -> list[str]:
    """What no engine could run: not YAML, no services, a service without an image or of the wrong shape."""
    try:
        doc = load(text)
    except yaml.YAMLError as exc:
        return [f"the file is not YAML: {_yaml_error(exc)}"]
    found = _structure(doc)
    if not found:
        for name, service in doc["services"].items():
            found += _service_problems(str(name), service)
    return found


def _structure(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return ["the file must be a map with 'services' (it is not a compose file)"]
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        return ["the file declares no services: 'services' must map each service's name to its definition"]
    return []


def _service_problems(name: str, service: Any) -> list[str]:
    if not SERVICE_NAME.match(name):
        return [f"service '{name}': a service's name is made of letters, digits, '_', '.' and '-'"]
    if not isinstance(service, dict):
        return [f"service '{name}' must be a map (image, ports, environment …)"]
    found = []
    if "build" in service:
        found.append(f"service '{name}': 'build' is not supported, Dockyard cannot build images: name a built "
                     "image in 'image'")
    elif not isinstance(service.get("image"), str) or not service["image"].strip():
        found.append(f"service '{name}' has no image: Dockyard cannot build images, name one in 'image'")
    for key in ("environment", "labels"):
        if key in service and not isinstance(service[key], (dict, list)):
            found.append(f"service '{name}': '{key}' must be a map or a list")
    for key in ("ports", "volumes"):
        if key in service and not isinstance(service[key], list):
            found.append(f"service '{name}': '{key}' must be a list")
    deploy = service.get("deploy")
    if deploy is not None and not isinstance(deploy, dict):
        found.append(f"service '{name}': 'deploy' must be a map")
    return found


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}"


def services_of(text: str) -> list[str]:
    return [str(name) for name in (load(text).get("services") or {})]


def images_of(text: str) -> list[str]:
    """Each service's image, once."""
    services = load(text).get("services") or {}
    return list(dict.fromkeys(str(s["image"]) for s in services.values() if isinstance(s, dict) and s.get("image")))


def published_tcp(text: str) -> dict[str, list[int]]:
    """Each service's target ports that its file publishes over TCP (``ports``, short or long syntax; a range
    counts each of its ports), as the engine reports them in ``<service>.tcp.<port>``. A file that cannot
    be read publishes nothing."""
    try:
        doc = load(text)
    except yaml.YAMLError:
        return {}
    if _structure(doc):
        return {}
    found: dict[str, list[int]] = {}
    for name, service in doc["services"].items():
        ports = service.get("ports") if isinstance(service, dict) else None
        targets = [t for entry in (ports if isinstance(ports, list) else []) for t in _tcp_targets(entry)]
        if targets:
            found[str(name)] = list(dict.fromkeys(targets))
    return found


def readiness_problems(text: str, readiness: dict[str, Any] | None) -> list[str]:
    """What the app's ``readiness.http`` names that its file does not publish: the service, or its port."""
    http = (readiness or {}).get("http")
    if not http:
        return []
    published = published_tcp(text)
    service = http.get("service")
    if service not in published:
        return [f"readiness.http.service: '{service}' is not a service of the file that publishes a tcp port "
                f"({', '.join(published) or 'none does'})"]
    if http["port"] not in published[service]:
        return [f"readiness.http.port: service '{service}' publishes no tcp port {http['port']} "
                f"({', '.join(map(str, published[service]))})"]
    return []


def _tcp_targets(entry: Any) -> list[int]:
    """The container ports of one ``ports`` entry, if it is TCP: ``80``, ``"8080:80"``, ``"127.0.0.1:8080:80"``,
    ``"9000-9002"``, ``"53:53/udp"`` (none) or ``{target: 80, protocol: tcp}``."""
    if isinstance(entry, dict):
        target, protocol = entry.get("target"), str(entry.get("protocol") or "tcp")
        return [target] if isinstance(target, int) and protocol == "tcp" else []
    text, _, protocol = str(entry).partition("/")
    if (protocol or "tcp") != "tcp":
        return []
    first, _, last = text.rsplit(":", 1)[-1].partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return []
    return list(range(int(first), int(last or first) + 1))[:MAX_RANGE]


# -- the file the engine gets ----------------------------------------------------------------------------------

def rewrite(text: str, *, env_names: list[str], labels: dict[str, str], mounts: tuple[MountSpec, ...] = ()) -> str:
    """The file with the deployment's environment names, labels and mounts in every service (see the module's
    docstring). ``labels``: the deployment's, job's and installation's labels for its containers."""
    doc = load(text)
    version = str(doc.get("version") or "")
    if version.startswith("3") and _older(version, VERSION):
        doc["version"] = VERSION
    for name, service in doc["services"].items():
        ours = {**labels, LABEL_SERVICE: str(name)}
        service["environment"] = _with_names(service.get("environment"), env_names)
        service["labels"] = _with_labels(service.get("labels"), ours)
        if not version.startswith(("1", "2")):  # a swarm service's own labels (no `deploy` in a version 2 file)
            # an init process as PID 1, as a component's container has: a server run as PID 1 ignores SIGTERM,
            # so each stop would wait out the kill timeout (init needs a 3.7+ or versionless file)
            service.setdefault("init", True)
            deploy = service.setdefault("deploy", {})
            deploy["labels"] = _with_labels(deploy.get("labels"), ours)
        if mounts:
            service["volumes"] = list(service.get("volumes") or []) + [_volume(m) for m in mounts]
    scope = {k: v for k, v in labels.items() if k in (LABEL_DEPLOYMENT, LABEL_MANAGED, "dockyard.instance")}
    networks = doc.get("networks")
    doc["networks"] = networks = dict(networks) if isinstance(networks, dict) else {}
    networks.setdefault("default", None)
    for kind in DECLARED:
        for key, item in list((doc.get(kind) or {}).items()):
            item = dict(item) if isinstance(item, dict) else {}
            if not item.get("external"):
                item["labels"] = _with_labels(item.get("labels"), scope)
            doc[kind][key] = item
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)


def _older(version: str, than: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".") if p.isdigit())
    return parts(version) < parts(than)


def _with_names(env: Any, names: list[str]) -> Any:
    """``names`` listed without a value (the CLI's environment has them), replacing the file's own of that name."""
    if isinstance(env, dict):
        return {**{k: v for k, v in env.items() if k not in names}, **dict.fromkeys(names)}
    kept = [e for e in env or [] if str(e).split("=", 1)[0] not in names]
    return kept + list(names)


def _with_labels(given: Any, ours: dict[str, str]) -> dict[str, str]:
    """The file's labels (a map, or a list of ``k=v``) with ours over them."""
    if isinstance(given, list):
        given = dict(str(item).split("=", 1) if "=" in str(item) else (str(item), "") for item in given)
    return {**{str(k): "" if v is None else str(v) for k, v in (given or {}).items()}, **ours}


def _volume(mount: MountSpec) -> str:
    return f"{mount.source}:{mount.target}:ro" if mount.read_only else f"{mount.source}:{mount.target}"


# -- what an application may do on the engine Dockyard runs on ----------------------------------------------------

# service keys that reach the host or other accounts' containers (``deploy.mounts`` for a component's mounts)
HOST_KEYS = ("privileged", "cap_add", "devices", "device_cgroup_rules", "security_opt", "userns_mode",
             "cgroup_parent", "volumes_from", "sysctls", "isolation", "runtime")
SHARED_MODES = ("network_mode", "pid", "ipc", "uts")


def host_reach(text: str) -> str | None:
    """How the file could reach the host or another account's containers, volumes or networks on a shared
    engine, in words naming the service and key; None when it cannot (``deploy.mounts`` explains the rule)."""
    doc = load(text)
    for name, service in doc["services"].items():
        for key in HOST_KEYS:
            if key in service:
                return f"service '{name}' sets '{key}'"
        for key in SHARED_MODES:
            value = str(service.get(key) or "")
            if value == "host" or value.startswith("container:"):
                return f"service '{name}' sets '{key}: {value}'"
        for volume in service.get("volumes") or []:
            problem = _volume_reach(volume)
            if problem:
                return f"service '{name}': volume '{volume}' {problem}"
        for key in ("env_file", "extends"):
            for path in _paths(service.get(key)):
                if path.startswith(("/", "~")) or ".." in path.split("/"):
                    return f"service '{name}': '{key}' reads '{path}', outside the app's own files"
    for kind in DECLARED:
        for key, item in (doc.get(kind) or {}).items():
            item = item if isinstance(item, dict) else {}
            for attr in ("external", "name", "driver", "driver_opts"):
                if item.get(attr):
                    return f"{kind[:-1]} '{key}' sets '{attr}'"
            path = str(item.get("file") or "")
            if path.startswith(("/", "~")) or ".." in path.split("/"):
                return f"{kind[:-1]} '{key}' reads '{path}', outside the app's own files"
    return None


def _volume_reach(volume: Any) -> str | None:
    if isinstance(volume, dict):
        if volume.get("type", "volume") not in ("volume", "tmpfs"):
            return f"is of type '{volume.get('type')}'"
        return None
    source = str(volume).split(":", 1)[0] if ":" in str(volume) else ""
    if source.startswith(("/", ".", "~")):
        return f"uses the host path '{source}'"
    return None


def _paths(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict) and value.get("file"):
        return [str(value["file"])]
    return []
