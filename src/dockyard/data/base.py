"""Object storage behind one small interface: buckets of objects, and pre-signed URLs to move their bytes.

Two backends: a directory per bucket under the data dir (the embedded default; Dockyard itself serves its
signed, expiring URLs) and any S3-compatible store through boto3 (for scale). The API never streams
object bytes itself: clients PUT and GET them at pre-signed URLs, as with Nuvla.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass


class StorageError(Exception):
    """A storage failure with a message a user understands and a short reason label
    (``no-such-bucket``, ``no-such-object``, ``unavailable``, ``full``, ``invalid-name``, ``denied``)."""

    def __init__(self, message: str, *, reason: str = "storage-error") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    bytes: int
    md5: str  # hex digest of the content
    content_type: str = ""


class ObjectStore(ABC):
    """One storage endpoint."""

    @abstractmethod
    def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket when it is missing (bucket names follow S3's rules)."""

    @abstractmethod
    def remove_bucket_if_empty(self, bucket: str) -> bool:
        """Remove the bucket when it holds nothing; whether it was removed."""

    @abstractmethod
    def stat(self, bucket: str, key: str) -> ObjectInfo:
        """Size and MD5 of a stored object; StorageError ``no-such-object`` when missing."""

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; a missing one counts as removed."""

    @abstractmethod
    def put(self, bucket: str, key: str, data: bytes, content_type: str = "") -> ObjectInfo:
        """Store bytes directly (for the server's own use and for tests)."""

    @abstractmethod
    def get(self, bucket: str, key: str) -> Iterator[bytes]:
        """The object's bytes, in chunks."""

    @abstractmethod
    def presign_put(self, bucket: str, key: str, ttl: int, content_type: str = "") -> str:
        """A URL that accepts one HTTP PUT of the object's bytes for ``ttl`` seconds."""

    @abstractmethod
    def presign_get(self, bucket: str, key: str, ttl: int) -> str:
        """A URL that answers an HTTP GET with the object's bytes for ``ttl`` seconds."""

    @abstractmethod
    def keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        """Every object key of the bucket under ``prefix``."""

    def local_path(self, bucket: str) -> str | None:
        """A directory holding the bucket's objects as files (bind-mountable), if the backend has one."""
        return None
