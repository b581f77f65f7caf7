"""Apps: ``module`` documents (projects, components and compose applications) with versioned content.

Each add or edit that carries ``content`` stores it as a new ``module-component`` (or, for an
``application``, ``module-application``) document owned by admins and appends ``{href, author, commit}`` to
``versions``. ``GET module/<uuid>`` answers the meta document with the content of the latest version;
``GET module/<uuid>_<n>`` answers version ``n``.

An ``application`` (Nuvla's, reference §5.1) carries a compose file (``docker-compose``) and needs
``compatibility`` (``swarm`` or ``docker-compose``). Its ``validate-docker-compose`` action queues a job that
checks the file (Dockyard's rules and the real compose's) and sets the module's ``valid`` and
``validation-message``.
"""

from __future__ import annotations

import platform
import re
from typing import Any

from ..core import acl as acls
from ..core import ids
from ..core.authn import ADMIN, USER
from ..core.errors import BadRequest, Conflict, Forbidden, ValidationError
from . import job as jobs
from ..core.time import now_ts
from ..store.db import Tx
from .attributes import (COMMON, Attr, Invalid, Schema, any_map, anything, boolean, described, href, integer,
                         json_schema, list_of, nested, number, one_of, string, text)
from .base import Action, Ctx, ResourceType, Reply
from .private_registry import check_app as check_registries

PATH_RE = r"^[a-zA-Z0-9][\w.-]*(/[a-zA-Z0-9][\w.-]*)*$"
ENV_NAME_RE = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
SUBTYPES = ("project", "component", "application", "application_kubernetes", "application_helm",
            "applications_sets")
CONTENT_TYPES = {"component": "module-component", "application": "module-application"}
FILE_NAME_RE = r"^[\w.-]+$"
COMPOSE_FILE = "docker-compose.yaml"  # where the application's file is written; no app file may take its name
NO_PROJECT_CONTENT = "Project should not have content attribute!"


@described({"type": "string", "pattern": ENV_NAME_RE.pattern,
            "description": "a variable name; NUVLA_* names are reserved"})
def _env_name(value: Any) -> Any:
    string()(value)
    if not ENV_NAME_RE.match(value):
        raise Invalid("must be a variable name (letters, digits, _)")
    if value.startswith("NUVLA_"):
        raise Invalid("must not start with NUVLA_ (reserved for the variables Dockyard injects)")
    return value


@described({"type": "array", "items": {"type": "string", "pattern": r"\S"}, "minItems": 2, "maxItems": 2,
            "description": "[label, url pattern]"})
def _url_pair(value: Any) -> Any:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, str) and v.strip() for v in value)):
        raise Invalid("must be a pair [label, url pattern]")
    return value


@described({"type": "object", "additionalProperties": {"type": "string"}})
def _string_map(value: Any) -> Any:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise Invalid("must be a map of strings to strings")
    return value


TOKEN = string(pattern=r"^\S+$")

IMAGE = Schema((
    Attr("image-name", TOKEN, required=True),
    Attr("registry", TOKEN),
    Attr("repository", TOKEN),
    Attr("tag", TOKEN),
))
PORT = Schema((
    Attr("target-port", integer(1, 65535), required=True),
    Attr("published-port", integer(1, 65535)),
    Attr("protocol", one_of("tcp", "udp", "sctp")),
))
MOUNT = Schema((
    Attr("mount-type", one_of("volume", "bind", "tmpfs"), required=True),
    Attr("target", string(pattern=r"^/"), required=True),
    Attr("source", string()),
    Attr("read-only", boolean),
    Attr("volume-options", _string_map),
))
ENV_VAR = Schema((
    Attr("name", _env_name, required=True),
    Attr("description", text(10000)),
    Attr("required", boolean),
    Attr("value", string(max_len=100000)),
))
OUTPUT_PARAMETER = Schema((
    Attr("name", TOKEN, required=True),
    Attr("description", string(), required=True),
    Attr("value", text()),
))
RESTART_POLICY = Schema((
    Attr("condition", one_of("none", "on-failure", "any"), required=True),
    Attr("delay", integer(0)),
    Attr("max-attempts", integer(0)),
    Attr("window", integer(0)),
))

# when a started deployment counts as usable (Dockyard's own; Nuvla has none): every published TCP port
# accepts connections (unless `tcp` is false), the HTTP check answers its status, the outputs named are set
READINESS_HTTP = Schema((
    Attr("service", string(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", max_len=255)),  # an application's: whose port
    Attr("port", integer(1, 65535), required=True),  # one of the app's tcp ports (checked with them)
    Attr("path", string(pattern=r"^/\S*$", max_len=2000)),  # default /
    Attr("status", integer(100, 599)),  # default 200
))
READINESS = Schema((
    Attr("tcp", boolean),
    Attr("http", nested(READINESS_HTTP)),
    Attr("output-parameters", list_of(TOKEN, max_len=1000, distinct=True)),  # of the app's own
    Attr("timeout", integer(1, 86400)),  # seconds after the start; default: the readiness-timeout setting
))

COMPONENT = COMMON.extend(
    Attr("author", string(), required=True),
    Attr("commit", text(10000)),
    Attr("architectures", list_of(one_of("amd64", "arm64", "arm/v6", "arm/v7", "386", "ppc64le", "s390x"),
                                  min_len=1, distinct=True), required=True),
    Attr("image", nested(IMAGE), required=True),
    Attr("memory", integer(1)),
    Attr("cpus", number(exclusive_minimum=0)),
    Attr("replicas", integer(1, 1000)),  # Dockyard's: tasks of the component's Swarm service (1 elsewhere)
    Attr("restart-policy", nested(RESTART_POLICY)),
    Attr("ports", list_of(nested(PORT), max_len=200)),
    Attr("mounts", list_of(nested(MOUNT), max_len=200)),
    Attr("urls", list_of(_url_pair, max_len=100)),
    Attr("environmental-variables", list_of(nested(ENV_VAR), min_len=1, max_len=1000)),
    Attr("output-parameters", list_of(nested(OUTPUT_PARAMETER), max_len=1000)),
    Attr("private-registries", list_of(href("infrastructure-service"), min_len=1, distinct=True)),
    Attr("registries-credentials", list_of(string(nonblank=False), min_len=1)),
    Attr("requires-user-rights", boolean),
    Attr("minimum-requirements", any_map),
    Attr("readiness", nested(READINESS)),
)

@described({"type": "string", "pattern": FILE_NAME_RE, "description": "a file name, written beside the compose file"})
def _file_name(value: Any) -> Any:
    string(pattern=FILE_NAME_RE, max_len=255)(value)
    if set(value) == {"."}:
        raise Invalid("must name a file, not '.' or '..'")
    if value == COMPOSE_FILE:
        raise Invalid(f"must not be '{COMPOSE_FILE}' (the application's compose file is written there)")
    return value


FILE = Schema((
    Attr("file-name", _file_name, required=True),
    Attr("file-content", text(1 << 20), required=True),
))


def _distinct_files(value: Any) -> Any:
    files = list_of(nested(FILE), min_len=1, max_len=100)(value)
    names = [f["file-name"] for f in files]
    if len(set(names)) != len(names):
        raise Invalid("must not name a file twice")
    return files


# Nuvla's module-application: a compose file and what a component has beside its container's settings
APPLICATION = COMMON.extend(
    Attr("author", string(), required=True),
    Attr("commit", text(10000)),
    Attr("architectures", list_of(one_of("amd64", "arm64", "arm/v6", "arm/v7", "386", "ppc64le", "s390x"),
                                  min_len=1, distinct=True)),
    Attr("docker-compose", string(max_len=1 << 20), required=True, indexed=False),
    Attr("files", described(json_schema(list_of(nested(FILE), min_len=1, max_len=100)))(_distinct_files),
         indexed=False),
    Attr("urls", list_of(_url_pair, max_len=100)),
    Attr("environmental-variables", list_of(nested(ENV_VAR), min_len=1, max_len=1000)),
    Attr("output-parameters", list_of(nested(OUTPUT_PARAMETER), max_len=1000)),
    Attr("private-registries", list_of(href("infrastructure-service"), min_len=1, distinct=True)),
    Attr("registries-credentials", list_of(string(nonblank=False), min_len=1)),
    Attr("requires-user-rights", boolean),
    Attr("minimum-requirements", any_map),
    Attr("readiness", nested(READINESS)),  # over every service; http names its service
)
CONTENT_SCHEMAS = {"module-component": COMPONENT, "module-application": APPLICATION}

SCHEMA = COMMON.extend(
    Attr("path", string(pattern=PATH_RE, max_len=1000), required=True),
    Attr("parent-path", string(nonblank=False), server=True),
    Attr("subtype", one_of(*SUBTYPES), required=True, immutable=True),
    Attr("versions", anything, server=True),
    Attr("content", any_map, indexed=False),
    Attr("compatibility", one_of("docker-compose", "swarm")),
    Attr("logo-url", string()),
    Attr("data-accept-content-types", list_of(string())),
    Attr("data-access-protocols", list_of(TOKEN)),
    Attr("valid", boolean),
    Attr("validation-message", text()),
    Attr("published", boolean, server=True),
    Attr("license", any_map),
    Attr("price", any_map),
    Attr("apps-set-subtype", one_of("docker", "kubernetes")),
)


def split_version(rid: str) -> tuple[str, int | None]:
    """``module/<uuid>_<n>`` → (``module/<uuid>``, n); plain ids have no version."""
    match = re.match(r"^(module/[^_]+)_(\d+)$", rid)
    return (match.group(1), int(match.group(2))) if match else (rid, None)


def content_of(tx: Tx, doc: dict[str, Any], version: int | None = None) -> dict[str, Any] | None:
    versions = doc.get("versions") or []
    if version is None:
        entries = [v for v in versions if v]
        entry = entries[-1] if entries else None
    else:
        entry = versions[version] if 0 <= version < len(versions) else None
    if not entry:
        return None
    content = tx.get(entry["href"])
    if content is None:
        return None
    return {k: v for k, v in content.items() if k not in ("resource-type", "acl", "operations")}


def validate_docker_compose(ctx: Ctx, rtype: ResourceType, doc: dict[str, Any], body: dict[str, Any]) -> Reply:
    """As Nuvla: a job checks the application's compose file and sets ``valid`` and ``validation-message``."""
    with ctx.write() as tx:
        job = jobs.create(ctx, tx, "validate-docker-compose", split_version(doc["id"])[0],
                          acl=jobs.job_acl(ctx.authn.active_claim or ADMIN), priority=50)
    return Reply(202, {"status": 202, "message": f"validating {doc['id']} with async {job['id']}",
                       "resource-id": doc["id"], "location": job["id"]}, {"Location": job["id"]})


class Module(ResourceType):
    name = "module"
    schema = SCHEMA
    collection_acl = {"query": [USER], "add": [USER]}
    actions = (Action("validate-docker-compose", validate_docker_compose,
                      available=lambda doc: doc.get("subtype") == "application"),)

    def load(self, tx: Tx, rid: str, *, for_update: bool = False) -> dict[str, Any] | None:
        base, version = split_version(rid)
        doc = tx.get(base, for_update=for_update)
        if doc is None or doc.get("resource-type") != self.name:
            return None
        if version is not None and (version >= len(doc.get("versions") or []) or not doc["versions"][version]):
            return None
        content = content_of(tx, doc, version)
        if content is not None:
            doc = {**doc, "content": content}
        if version is not None:
            doc["id"] = rid
        return doc

    def before_add(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        _check_compatibility(doc)
        self._check_path(ctx, tx, doc)
        if tx.find_one("module", "path", doc["path"]) is not None:
            raise Conflict(f"path '{doc['path']}' already exist", doc["id"])
        content = doc.pop("content", None)
        doc["versions"] = []
        if doc["subtype"] == "project":
            if content is not None:
                raise BadRequest(NO_PROJECT_CONTENT)
        elif content is None:
            raise BadRequest(f"a {doc['subtype']} module needs 'content'")
        else:
            self._add_version(ctx, tx, doc, content)

    def before_edit(self, ctx: Ctx, tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
        if split_version(old["id"])[1] is not None:
            raise BadRequest("edit the module itself, not one of its versions")
        _check_compatibility(new)
        if new["path"] != old["path"]:
            self._check_path(ctx, tx, new)
            other = tx.find_one("module", "path", new["path"])
            if other is not None and other["id"] != old["id"]:
                raise Conflict(f"path '{new['path']}' already exist", old["id"])
        content = new.pop("content", None)
        # as Nuvla, every edit whose body carries `content` appends a version, even an unchanged one (a save
        # with a new commit message is a version). A body without it leaves merge's reference to the old one.
        if content is not None and content is not old.get("content"):
            if new["subtype"] == "project":
                raise BadRequest(NO_PROJECT_CONTENT)
            new["versions"] = list(new.get("versions") or [])
            self._add_version(ctx, tx, new, content)

    def before_delete(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        # a version is read through its module: deleting it would delete every version's content
        if split_version(doc["id"])[1] is not None:
            raise BadRequest("delete the module itself, not one of its versions")
        if doc["subtype"] == "project" and tx.find_one("module", "parent-path", doc["path"]) is not None:
            raise Forbidden("Cannot delete project with children", doc["id"])
        for version in doc.get("versions") or []:
            if version:
                tx.delete(version["href"])

    def _check_path(self, ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
        parent_path = doc["path"].rsplit("/", 1)[0] if "/" in doc["path"] else ""
        doc["parent-path"] = parent_path
        if not parent_path:
            if doc["subtype"] != "project":
                raise BadRequest("Application subtype must have a parent project!")
            return
        # as Nuvla: the parent is looked up as the caller, then must be editable, then a project
        parent = tx.find_one("module", "path", parent_path)
        rights = acls.rights_of(parent["acl"], ctx.authn) if parent is not None else frozenset()
        if parent is None or not acls.can_view(rights):
            raise BadRequest(f"No parent project found for path: {parent_path}")
        if not acls.can_edit(rights):
            raise Forbidden(f"You do not have edit rights for: {parent['id']} at path: {parent_path}", parent["id"])
        if parent["subtype"] != "project":
            raise Forbidden("Parent must be a project!", parent["id"])

    def _add_version(self, ctx: Ctx, tx: Tx, doc: dict[str, Any], content: dict[str, Any]) -> None:
        content_type = CONTENT_TYPES.get(doc["subtype"])
        if content_type is None:
            raise BadRequest(f"modules of subtype {doc['subtype']} are not supported yet; use component")
        content = {k: v for k, v in content.items()
                   if k not in ("id", "resource-type", "created", "updated", "acl", "operations")}
        content.setdefault("author", ctx.authn.user_id or "unknown")
        content.setdefault("architectures", [host_architecture()])
        ts = now_ts()
        content.update({"id": ids.new_id(content_type), "resource-type": content_type, "created": ts,
                        "updated": ts, "acl": {"owners": [ADMIN]}})
        out, problems = CONTENT_SCHEMAS[content_type].problems(content)
        problems += readiness_problems(out) if not problems else []
        if problems:
            raise ValidationError(doc["id"], "\n".join(f"content: {p}" for p in problems))
        check_registries(ctx, tx, out)
        out["acl"] = acls.normalise(out["acl"])
        tx.insert(out)
        entry = {"href": out["id"], "author": out["author"]}
        if out.get("commit"):
            entry["commit"] = out["commit"]
        doc["versions"].append(entry)


def _check_compatibility(doc: dict[str, Any]) -> None:
    """As Nuvla: an application says what it was written for, a swarm stack or a compose project."""
    if doc.get("subtype") == "application" and not doc.get("compatibility"):
        raise ValidationError(doc.get("id", "module"), "missing required attribute 'compatibility' (an "
                              "application is written for 'swarm' or 'docker-compose')")


def readiness_problems(content: dict[str, Any]) -> list[str]:
    """What ``readiness`` names that the app does not declare: its HTTP port, its output parameters."""
    readiness = content.get("readiness") or {}
    problems = []
    http = readiness.get("http")
    if http and "docker-compose" in content:  # an application: whose port (checked with its file, at start)
        if not http.get("service"):
            problems.append("attribute 'readiness.http.service' is required in an application: name the service "
                            "whose port answers")
    elif http:
        tcp_ports = [p["target-port"] for p in content.get("ports") or [] if p.get("protocol", "tcp") == "tcp"]
        if http.get("service"):
            problems.append("attribute 'readiness.http.service' is for an application's services: a component "
                            "has none")
        elif http["port"] not in tcp_ports:
            declared = ", ".join(map(str, tcp_ports)) or "none"
            problems.append(f"attribute 'readiness.http.port' must be one of the app's tcp ports ({declared}), "
                            f"not {http['port']}")
    outputs = {o["name"] for o in content.get("output-parameters") or []}
    for name in readiness.get("output-parameters") or []:
        if name not in outputs:
            problems.append(f"attribute 'readiness.output-parameters': the app declares no output parameter "
                            f"'{name}'")
    return problems


def host_architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm/v7"}.get(machine, "amd64")


class _VersionContent(ResourceType):
    """The stored content of each version of a module, one type per subtype; read through its module."""

    collection_acl = {"query": [ADMIN], "add": [ADMIN]}
    editable = False
    log_events = False


class ModuleApplication(_VersionContent):
    name = "module-application"
    schema = APPLICATION


class ModuleComponent(_VersionContent):
    name = "module-component"
    schema = COMPONENT
