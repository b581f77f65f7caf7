"""Object stores: pick the backend an S3 endpoint stands for.

The embedded store is addressed like any S3 endpoint, by the URL ``<public base>/data`` of this server (for
example ``http://127.0.0.1:8200/data``): an ``infrastructure-service`` of subtype ``s3`` with that endpoint
keeps its objects in ``<data dir>/objects/<bucket>/`` and its pre-signed URLs point back at this server. Any
other endpoint is an S3-compatible server reached through boto3.

"This server" is matched by origin: scheme, host and port, compared case-insensitively, with default ports
made explicit, and ``localhost``, ``127.0.0.1`` and ``::1`` taken as one host. A trailing ``/`` is ignored.
"""

from __future__ import annotations

import functools
import os
from urllib.parse import SplitResult, urlsplit

from .base import ObjectInfo, ObjectStore, StorageError
from .directory import DirectoryStore

__all__ = [
    "EMBEDDED_PATH",
    "DirectoryStore",
    "ObjectInfo",
    "ObjectStore",
    "StorageError",
    "embedded_endpoint",
    "is_embedded",
    "object_store",
    "objects_root",
]

EMBEDDED_PATH = "/data"
OBJECTS_DIR = "objects"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def objects_root(data_dir: str) -> str:
    """Where the embedded store keeps its buckets."""
    return os.path.join(os.path.abspath(data_dir), OBJECTS_DIR)


def embedded_endpoint(public_base: str) -> str:
    """The S3 endpoint that names this server's embedded store (what to seed an infrastructure-service with)."""
    return public_base.rstrip("/") + EMBEDDED_PATH


def is_embedded(endpoint: str, public_base: str) -> bool:
    """Whether ``endpoint`` is this server's embedded store: ``<public_base>/data``, by origin."""
    try:
        parts = urlsplit(endpoint.strip())
        base = urlsplit(public_base.strip())
        same_origin = _origin(parts) == _origin(base)
    except ValueError:  # a malformed port
        return False
    return same_origin and parts.path.rstrip("/") == base.path.rstrip("/") + EMBEDDED_PATH \
        and not parts.query and not parts.fragment


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK:
        host = "localhost"
    return scheme, host, parts.port or _DEFAULT_PORTS.get(scheme)


def object_store(endpoint: str, access_key: str, secret_key: str, *, data_dir: str, signing_key: bytes,
                 public_base: str) -> ObjectStore:
    """The store behind an S3 endpoint: the embedded directory store for ``<public_base>/data`` (the access
    and secret keys are not used: its URLs are signed with ``signing_key``), else S3 through boto3.

    S3 clients are kept per (endpoint, keys): making one costs tens of milliseconds.
    """
    if is_embedded(endpoint, public_base):
        return DirectoryStore(objects_root(data_dir), signing_key, public_base)
    return _s3_store(endpoint.rstrip("/"), access_key, secret_key)


@functools.lru_cache(maxsize=64)
def _s3_store(endpoint: str, access_key: str, secret_key: str) -> ObjectStore:
    from .s3 import S3Store  # boto3 loads slowly: only when an S3 endpoint is used

    return S3Store(endpoint, access_key, secret_key)
