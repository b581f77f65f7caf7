"""What an app may mount on the engine Dockyard itself runs on, and whose its named volumes are.

An engine behind a ``unix://`` socket is the machine Dockyard runs on, shared by every user: its Docker
socket and Dockyard's data dir (the database and the master key) are one host path away, and its named
volumes are one namespace for everyone. So, on such an engine:

- a non-administrator may use only what cannot reach the host: a ``volume`` with the local driver's default
  options or a tmpfs (``type=tmpfs``, ``device=tmpfs``, ``o`` of size/mode/uid/gid/nr_inodes/nr_blocks), and a
  ``tmpfs`` mount. This is an allow-list: a bind, a volume whose options bind (``o=bind``, ``rbind``), an
  overlay with ``lowerdir=/…``, an NFS device or anything the list does not name is refused with 403 naming
  the mount and the option, before anything starts.
- a named volume belongs to the deployment's owner: the engine's volume is ``dy-<owner digest>-<name>``, so
  two accounts naming ``data`` get two volumes and no name reaches another account's (or the host's own)
  volume. Naming the engine's form directly is refused (403 naming the volume).

A compose application (its file) is held to the same rule there: no bind mounts, host namespaces, devices,
privileges or files outside its own, and no external (or explicitly named) volumes and networks, which would
reach other deployments' (``deploy.compose.host_reach``).

Remote engines are the users' own machines, reached with their own TLS keys, and keep Nuvla's freedom:
names as given, any options.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..core.errors import Forbidden
from ..store.db import Tx
from ..resources.base import Ctx
from . import compose

LOCAL_SCHEME = "unix://"
VOLUME_PREFIX = "dy-"
_ENGINE_FORM = re.compile(r"^dy-[0-9a-f]{12}-")
# volume-options of the local driver that cannot reach the host: a tmpfs and its sizing
SAFE_TYPES = frozenset({"tmpfs"})
SAFE_O = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"})
SAFE_MOUNT_TYPES = frozenset({"volume", "tmpfs"})


def is_local(endpoint: str) -> bool:
    return endpoint.startswith(LOCAL_SCHEME)


def volume_name(owner: str, source: str) -> str:
    """The engine's name of the volume ``source`` of ``owner`` on a shared (local) engine."""
    return f"{VOLUME_PREFIX}{hashlib.sha256(owner.encode()).hexdigest()[:12]}-{source}"


def check_mounts(ctx: Ctx, tx: Tx, dep: dict[str, Any]) -> None:
    """Refuse, before anything starts, what the deployment's app may not mount on its engine."""
    infra = tx.get(dep.get("infrastructure-service") or "") or {}
    if not is_local(str(infra.get("endpoint", ""))):
        return
    where = infra.get("name") or infra.get("id")
    if dep["module"].get("subtype") == "application" and not ctx.authn.is_admin:
        problem = compose.host_reach(dep["module"]["content"]["docker-compose"])
        if problem:
            raise Forbidden(f"{problem}: on {where}, the machine Dockyard runs on, only an administrator may let "
                            "an application reach host paths, devices, the host's namespaces or what other "
                            "deployments made; use plain services and volumes, or an engine of your own",
                            dep["id"])
    for mount in dep["module"].get("content", {}).get("mounts") or []:
        source = str(mount.get("source") or "")
        if mount.get("mount-type") == "volume" and _ENGINE_FORM.match(source):
            raise Forbidden(f"volume '{source}' (mount at '{mount.get('target')}') is named in Dockyard's own "
                            f"form for another account's volumes: name your volume without the "
                            f"'{VOLUME_PREFIX}<digest>-' prefix", dep["id"])
        if ctx.authn.is_admin:
            continue
        problem = _host_reach(mount)
        if problem:
            raise Forbidden(f"mount at '{mount.get('target')}' {problem}: on {where}, the machine Dockyard "
                            f"runs on, only an administrator may mount host paths or use volume options other "
                            f"than a sized tmpfs; use a plain volume, or an engine of your own", dep["id"])


def _host_reach(mount: dict[str, Any]) -> str | None:
    """How a mount could reach the host, in words, or None when it cannot."""
    kind = mount.get("mount-type")
    if kind == "bind":
        return f"uses the host path '{mount.get('source') or '(no source)'}'"
    if kind not in SAFE_MOUNT_TYPES:
        return f"is of type '{kind}'"
    options = dict(mount.get("volume-options") or {})
    if kind == "tmpfs" or not options:
        return None
    device = str(options.pop("device", "tmpfs"))
    kind_option = str(options.pop("type", ""))
    o = str(options.pop("o", ""))
    if device.startswith("/"):
        return f"uses the host path '{device}'"
    if kind_option not in SAFE_TYPES or device != "tmpfs":
        return f"asks for a volume of type '{kind_option}' on device '{device}' (volume options)"
    for item in filter(None, o.split(",")):
        name = item.split("=", 1)[0].strip()
        if name not in SAFE_O:
            return f"asks for the mount option '{name}' (volume options)"
    if options:
        return f"sets the volume option '{sorted(options)[0]}'"
    return None
