"""Resource identifiers: ``<type>/<uuid>``, and Nuvla's name-based ids."""

from __future__ import annotations

import hashlib
import re
import uuid

ID_RE = re.compile(r"^[a-z]([a-z-]*[a-z])?(/[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?)?$")
TYPE_RE = re.compile(r"^[a-z]([a-z-]*[a-z])?$")
UUID_PART_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$")
PRINCIPAL_RE = re.compile(r"^[a-z-]+/[a-z0-9-]+$")


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_id(resource_type: str) -> str:
    return f"{resource_type}/{new_uuid()}"


def split_id(resource_id: str) -> tuple[str, str]:
    kind, _, rest = resource_id.partition("/")
    return kind, rest


def name_uuid(text: str) -> str:
    """Java's ``UUID.nameUUIDFromBytes``: MD5 of the UTF-8 text, version 3, no namespace."""
    return str(uuid.UUID(bytes=hashlib.md5(text.encode("utf-8")).digest(), version=3))


def deployment_parameter_id(parent: str, node_id: str | None, name: str) -> str:
    return "deployment-parameter/" + name_uuid(f"{parent}:{node_id or ''}:{name}")
