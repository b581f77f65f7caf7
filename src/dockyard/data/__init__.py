"""Object stores: the embedded directory store, and S3-compatible servers reached through boto3.

The embedded store keeps its objects in ``<data dir>/objects/<bucket>/`` and its pre-signed URLs point back
at this server, under ``<public base>/data``. Exactly one infrastructure-service stands for it
(``infrastructure-service/local-storage``, registered at start), and the resources choose it by that id,
never by endpoint: any URL can be spelled many ways (another host name, the bridge address, a Host header),
and a store chosen by spelling would be one that a user's own registration could reach around the bucket
ownership that guards it. Every other endpoint is S3 through boto3; this server's ``/data`` answers only
its own signed URLs, never S3's API.

:func:`is_embedded` recognises the obvious spellings of ``<public base>/data`` (by origin: scheme, host and
port, compared case-insensitively, with default ports made explicit, and ``localhost``, ``127.0.0.1`` and
``::1`` taken as one host; a trailing ``/`` ignored), so that registering one can be refused with a clear
message.
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
    "embedded_store",
    "is_embedded",
    "objects_root",
    "s3_store",
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


def embedded_store(data_dir: str, signing_key: bytes, public_base: str) -> DirectoryStore:
    """This server's own store; its URLs are signed with ``signing_key`` and point at ``public_base``."""
    return DirectoryStore(objects_root(data_dir), signing_key, public_base)


def s3_store(endpoint: str, access_key: str, secret_key: str) -> ObjectStore:
    """The S3-compatible server at ``endpoint``, opened with these keys.

    S3 clients are kept per (endpoint, keys): making one costs tens of milliseconds.
    """
    return _s3_store(endpoint.strip().rstrip("/"), access_key, secret_key)


@functools.lru_cache(maxsize=64)
def _s3_store(endpoint: str, access_key: str, secret_key: str) -> ObjectStore:
    from .s3 import S3Store  # boto3 loads slowly: only when an S3 endpoint is used

    return S3Store(endpoint, access_key, secret_key)
