"""The embedded object store: a directory per bucket, served at signed, expiring URLs by ``server/objects.py``.

Layout under ``root``::

    <bucket>/<key>          the objects, as plain files: the bucket directory is what containers mount
    .meta/<bucket>/..       size, mtime, MD5 and content type of each object, in a file named by the key's hash
    .tmp/                   uploads being written; renamed into their bucket when complete

Bucket names follow S3's rules, which never start with ``.``, so the two dot-directories cannot clash with a
bucket. Metadata lives outside the bucket directory so that a mount shows only the objects; it is a cache:
a record whose size or mtime no longer matches the file (a container rewrote it, or the server stopped
between the rename and the record) is recomputed from the file.

Keys map onto paths segment by segment, and a key that would not name exactly one file inside its bucket is
refused with ``invalid-name``: empty, absolute, ``.`` or ``..`` segments, NUL and other control characters,
or more than 1024 bytes. Symbolic links (which a container could plant in a mounted bucket) are never
followed out of the bucket.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from . import signing
from .base import ObjectInfo, ObjectStore, StorageError

CHUNK = 1024 * 1024
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255  # the longest file name most file systems take
META_DIR = ".meta"
TMP_DIR = ".tmp"
UPLOAD_PREFIX = "upload-"
STALE_UPLOAD = 24 * 3600  # seconds after which a temporary upload file is an abandoned one
IOV_MAX = 1024  # buffers one writev takes (POSIX minimum, Linux value)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", "--table-s3")


def check_bucket(bucket: str) -> str:
    """``bucket`` when it is a valid S3 bucket name; StorageError ``invalid-name`` otherwise."""
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise StorageError(f"invalid bucket name {bucket!r}: 3 to 63 lower-case letters, digits, '.' and '-', "
                           "starting and ending with a letter or digit", reason="invalid-name")
    if _is_ip(bucket) or bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        raise StorageError(f"invalid bucket name {bucket!r}: reserved by S3", reason="invalid-name")
    return bucket


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_key(key: str) -> list[str]:
    """The path segments of ``key``; StorageError ``invalid-name`` when it would not name one file in its bucket."""
    if not isinstance(key, str) or not key:
        raise StorageError("an object key must not be empty", reason="invalid-name")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise StorageError("an object key must be valid UTF-8", reason="invalid-name") from None
    if size > MAX_KEY_BYTES:
        raise StorageError(f"object key longer than {MAX_KEY_BYTES} bytes", reason="invalid-name")
    if _CONTROL.search(key):
        raise StorageError("an object key must not contain NUL or control characters", reason="invalid-name")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise StorageError(f"invalid object key {key!r}: no empty, '.' or '..' path segments, "
                               "and no leading or trailing '/'", reason="invalid-name")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise StorageError(f"invalid object key {key!r}: a path segment is longer than "
                               f"{MAX_SEGMENT_BYTES} bytes", reason="invalid-name")
    return segments


class DirectoryStore(ObjectStore):
    """Buckets as directories under ``root``; signed URLs under ``<public_base>/data/``."""

    def __init__(self, root: str, signing_key: bytes, public_base: str) -> None:
        self.root = os.path.abspath(root)
        self.signing_key = signing_key
        self.public_base = public_base.rstrip("/")
        self._tmp = os.path.join(self.root, TMP_DIR)
        _make_dir(self._tmp)

    # -- paths -------------------------------------------------------------------------------------

    def bucket_dir(self, bucket: str) -> str:
        return os.path.join(self.root, check_bucket(bucket))

    def _existing_bucket(self, bucket: str) -> str:
        path = self.bucket_dir(bucket)
        if not os.path.isdir(path):
            raise StorageError(f"bucket {bucket} does not exist", reason="no-such-bucket")
        return path

    def _object_path(self, bucket: str, key: str) -> tuple[str, str]:
        """(bucket directory, object path), the bucket existing."""
        segments = check_key(key)
        base = self._existing_bucket(bucket)
        return base, os.path.join(base, *segments)

    @staticmethod
    def _inside(base: str, path: str) -> bool:
        """Whether ``path``'s directory resolves inside ``base`` (a container may have planted a symlink)."""
        real_base = os.path.realpath(base)
        real_parent = os.path.realpath(os.path.dirname(path))
        return real_parent == real_base or real_parent.startswith(real_base + os.sep)

    def _meta_path(self, bucket: str, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return os.path.join(self.root, META_DIR, bucket, digest[:2], digest + ".json")

    # -- reading -----------------------------------------------------------------------------------

    def open(self, bucket: str, key: str) -> tuple[BinaryIO, int, str]:
        """The object opened for reading, its size and its content type; StorageError ``no-such-object`` when
        missing. The size is the open file's, so that it holds even if the key is rewritten meanwhile (a
        rewrite renames a new file into place and leaves this one whole). The caller closes the file."""
        f, st = self._open(bucket, key)
        record = self._read_meta(bucket, key)
        return f, st.st_size, str(record.get("content-type", "")) if record else ""

    def _open(self, bucket: str, key: str) -> tuple[BinaryIO, os.stat_result]:
        base, path = self._object_path(bucket, key)
        missing = StorageError(f"object {key} does not exist in bucket {bucket}", reason="no-such-object")
        if not self._inside(base, path):
            raise missing
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise missing from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the object itself is a symlink
                raise missing from None
            raise StorageError(f"cannot read object {key}: {exc.strerror}", reason="unavailable") from exc
        f = os.fdopen(fd, "rb", buffering=0)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise missing
        return f, st

    def _info(self, bucket: str, key: str, f: BinaryIO, st: os.stat_result) -> ObjectInfo:
        record = self._read_meta(bucket, key)
        content_type = str(record.get("content-type", "")) if record else ""
        if record and record.get("bytes") == st.st_size and record.get("mtime-ns") == st.st_mtime_ns:
            return ObjectInfo(bucket, key, st.st_size, str(record["md5"]), content_type)
        # written behind our back (or the record was lost): the file is the truth
        md5 = hashlib.md5(usedforsecurity=False)
        f.seek(0)
        while chunk := f.read(CHUNK):
            md5.update(chunk)
        f.seek(0)
        info = ObjectInfo(bucket, key, st.st_size, md5.hexdigest(), content_type)
        self._write_meta(info, st)
        return info

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        f, st = self._open(bucket, key)
        with f:
            return self._info(bucket, key, f, st)

    def get(self, bucket: str, key: str) -> Iterator[bytes]:
        f, _ = self._open(bucket, key)
        return _chunks(f)

    def keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        """Keys in S3's order (by UTF-8 bytes). Only regular files count: symlinks and stray directories don't."""
        base = self._existing_bucket(bucket)
        # start at the deepest directory the prefix names, rather than walking the whole bucket
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        segments = head.split("/") if head else []
        if any(s in ("", ".", "..") or "\0" in s for s in segments):
            return iter(())  # no valid key starts so
        start = os.path.join(base, *segments)
        if not self._inside(base, os.path.join(start, "x")):
            return iter(())
        found = [k for k in _walk(start, head) if k.startswith(prefix)]
        found.sort(key=lambda k: k.encode("utf-8"))
        return iter(found)

    def local_path(self, bucket: str) -> str | None:
        """The bucket directory, created when missing (so that a bind mount never makes a root-owned one)."""
        path = self.bucket_dir(bucket)
        _make_dir(path)
        return path

    # -- writing -----------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        _make_dir(self.bucket_dir(bucket))

    def remove_bucket_if_empty(self, bucket: str) -> bool:
        """Empty directories don't count as content; any file (or symlink) keeps the bucket."""
        path = self.bucket_dir(bucket)
        if not os.path.isdir(path):
            return False
        for current, dirs, files in os.walk(path, topdown=False):
            if files or any(os.path.islink(os.path.join(current, d)) for d in dirs):
                return False
            try:
                os.rmdir(current)
            except OSError:  # something appeared meanwhile: the bucket stays
                return False
        _remove_tree(os.path.join(self.root, META_DIR, bucket))
        return True

    def upload(self, bucket: str, key: str, content_type: str = "") -> "Upload":
        """An atomic upload: write chunks, then ``commit()``; until then nothing is visible at the key.
        Use as a context manager: leaving without a commit discards what was written."""
        base, path = self._object_path(bucket, key)
        if not self._inside(base, path):
            raise StorageError(f"invalid object key {key!r}: it leads out of the bucket", reason="invalid-name")
        return Upload(self, bucket, key, base, path, content_type)

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "") -> ObjectInfo:
        with self.upload(bucket, key, content_type) as upload:
            upload.write(data)
            return upload.commit()

    def delete(self, bucket: str, key: str) -> None:
        """Also removes directories left empty by the deletion, as S3 has no empty "folders"."""
        try:
            base, path = self._object_path(bucket, key)
        except StorageError as exc:
            if exc.reason == "no-such-bucket":
                return
            raise
        if not self._inside(base, path):
            return
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except IsADirectoryError:
            return  # a key prefix, not an object
        _unlink_quietly(self._meta_path(bucket, key))
        _prune(os.path.dirname(path), base)

    # -- signed URLs -------------------------------------------------------------------------------

    def presign_put(self, bucket: str, key: str, ttl: int, content_type: str = "") -> str:
        """With a content type, the PUT must carry exactly it (as S3); the PUT's header is the one stored."""
        check_bucket(bucket)
        check_key(key)
        return signing.signed_url(self.signing_key, self.public_base, "PUT", bucket, key, ttl,
                                  content_type=content_type)

    def presign_get(self, bucket: str, key: str, ttl: int) -> str:
        check_bucket(bucket)
        check_key(key)
        return signing.signed_url(self.signing_key, self.public_base, "GET", bucket, key, ttl)

    def verify(self, method: str, bucket: str, key: str, expires: str | None, signature: str | None,
               content_type: str = "") -> None:
        """StorageError ``denied`` unless this store signed exactly this request and it has not expired."""
        signing.verify(self.signing_key, method, bucket, key, expires, signature, content_type=content_type)

    def discard_stale_uploads(self, older_than: float = STALE_UPLOAD) -> int:
        """Remove upload files a crashed server left in ``.tmp``; how many. Uploads younger than ``older_than``
        seconds are kept: another process sharing the data dir may be writing them."""
        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self._tmp):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
        return removed

    # -- metadata ----------------------------------------------------------------------------------

    def _read_meta(self, bucket: str, key: str) -> dict[str, object] | None:
        try:
            with open(self._meta_path(bucket, key), "rb") as f:
                record = json.loads(f.read())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def _write_meta(self, info: ObjectInfo, st: os.stat_result) -> None:
        """Best effort: a lost record only costs an MD5 recomputation later."""
        record = {"key": info.key, "bytes": info.bytes, "md5": info.md5, "content-type": info.content_type,
                  "mtime-ns": st.st_mtime_ns}
        path = self._meta_path(info.bucket, info.key)
        tmp = ""
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="meta-")
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(record).encode("utf-8"))
            os.replace(tmp, path)
        except OSError:
            if tmp:
                _unlink_quietly(tmp)


class Upload:
    """One object being written: a temporary file under ``.tmp``, hashed as it is written, renamed into the
    bucket on ``commit()`` after an fsync, so that readers see the old object or the whole new one."""

    def __init__(self, store: DirectoryStore, bucket: str, key: str, base: str, path: str,
                 content_type: str) -> None:
        self.store = store
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.bytes = 0
        self._base = base
        self._path = path
        self._md5 = hashlib.md5(usedforsecurity=False)
        try:
            fd, self._tmp = tempfile.mkstemp(dir=store._tmp, prefix=UPLOAD_PREFIX)
        except OSError as exc:
            raise _write_error(f"cannot store object {key}", exc) from exc
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._done = False

    def write(self, data: bytes) -> None:
        self.digest([data])
        self.store_bytes([data])

    def write_all(self, chunks: Iterable[bytes]) -> None:
        chunks = list(chunks)
        self.digest(chunks)
        self.store_bytes(chunks)

    # The two halves of a write, for a caller that runs them in two threads at once (hashing is the slower):
    # each must see every chunk, in order, exactly once.

    def digest(self, chunks: Iterable[bytes]) -> None:
        # one update of the joined batch: hashing releases the GIL once, rather than once per small chunk
        # (and each time it must win the GIL back from the event loop)
        self._md5.update(b"".join(chunks))

    def store_bytes(self, chunks: Iterable[bytes]) -> None:
        views = [memoryview(c) for c in chunks if c]
        while views:
            try:
                written = os.writev(self._file.fileno(), views[:IOV_MAX])
            except OSError as exc:  # a full disk, most likely
                raise _write_error(f"cannot store object {self.key}", exc) from exc
            self.bytes += written
            while written:  # drop what was written; a short write leaves part of a chunk
                head = views[0]
                if written >= len(head):
                    written -= len(head)
                    views.pop(0)
                else:
                    views[0] = head[written:]
                    written = 0

    def commit(self) -> ObjectInfo:
        if self._done:
            raise RuntimeError("upload already finished")
        try:
            os.fsync(self._file.fileno())
            st = os.fstat(self._file.fileno())
            self._file.close()
            self._place()
        except StorageError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise _write_error(f"cannot store object {self.key}", exc) from exc
        self._done = True
        info = ObjectInfo(self.bucket, self.key, self.bytes, self._md5.hexdigest(), self.content_type)
        self.store._write_meta(info, st)
        return info

    def _place(self) -> None:
        parent = os.path.dirname(self._path)
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f"cannot store object {self.key}: a prefix of it is an object",
                               reason="invalid-name") from None
        if not self.store._inside(self._base, self._path):
            raise StorageError(f"invalid object key {self.key!r}: it leads out of the bucket", reason="invalid-name")
        if os.path.isdir(self._path) and not os.path.islink(self._path):
            raise StorageError(f"cannot store object {self.key}: objects exist under it as a prefix",
                               reason="invalid-name")
        os.replace(self._tmp, self._path)
        _fsync_dir(parent)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        _unlink_quietly(self._tmp)

    def __enter__(self) -> "Upload":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


def _walk(directory: str, prefix: str) -> Iterator[str]:
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        key = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, key)
        elif entry.is_file(follow_symlinks=False):
            yield key


def _prune(directory: str, base: str) -> None:
    while directory != base and directory.startswith(base + os.sep):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def _write_error(what: str, exc: OSError) -> StorageError:
    """A failed write, as ``full`` when the disk had no room left: the same write works once space is freed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"{what}: no space left on the disk of the data dir", reason="full")
    return StorageError(f"{what}: {exc.strerror}", reason="unavailable")


def _make_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise _write_error(f"cannot create {os.path.basename(path)}", exc) from exc


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
