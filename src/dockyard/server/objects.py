"""The embedded object store over HTTP: ``PUT`` and ``GET`` of ``/data/<bucket>/<key>?expires=&signature=``.

These are the pre-signed URLs that ``DirectoryStore.presign_put/presign_get`` hand out, used as S3's are: a
plain PUT of the bytes (the Content-Type header is stored with them) and a plain GET, with no cookie. The
signature is the only authority, and it is checked before anything else.

Bodies stream both ways and are never held whole: an upload is gathered into batches of a few MiB, each
hashed in one thread and written in another while the next batch arrives (MD5, at about 700 MB/s on one
core, is what bounds an upload); a download reads the next MiB while the previous one is sent. Errors are
Nuvla's ``{status, message}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..data import objects_root
from ..data.base import StorageError
from ..data.directory import DirectoryStore, Upload
from .http import JSON

log = logging.getLogger("dockyard.server.objects")

DEFAULT_MAX_BYTES = 5 * 1024 ** 3  # S3's limit for one PUT
WRITE_BATCH = 4 * 1024 * 1024  # bytes gathered before a write: one thread hop per batch, not per socket read
READ_CHUNK = 1024 * 1024
UNSATISFIABLE = (-1, -1)  # a Range that starts past the end of the object
DEFAULT_TYPE = "application/octet-stream"
ALL_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]

_STATUS = {"denied": 403, "no-such-object": 404, "no-such-bucket": 404, "invalid-name": 400, "too-large": 413,
           "unavailable": 503, "full": 507}
T = TypeVar("T")


def routes(services: Any, *, max_bytes: int | None = None) -> list[Route]:
    """The routes of the embedded store of a running server: its objects under ``<data-dir>/objects``, its
    URLs checked with ``services.keys.signing``. Mount them before any catch-all route. Upload files a crash
    left behind more than a day ago are removed here, once per start."""
    store = DirectoryStore(objects_root(services.settings["data-dir"]), services.keys.signing, "")
    store.discard_stale_uploads()
    if max_bytes is None:
        max_bytes = _setting(services, "max-object-bytes", DEFAULT_MAX_BYTES)
    return store_routes(store, max_bytes=max_bytes)


def _setting(services: Any, name: str, default: int) -> int:
    try:
        return int(services.settings[name])
    except KeyError:  # not declared (yet) in core/settings.py
        return default


def store_routes(store: DirectoryStore, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Route]:
    endpoint = ObjectEndpoint(store, max_bytes)
    # every method, so that the others get a JSON 405 here rather than falling through to a catch-all
    return [Route("/data/{bucket}/{key:path}", endpoint.handle, methods=ALL_METHODS, name="data-object-bytes")]


class ObjectEndpoint:
    def __init__(self, store: DirectoryStore, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.store = store
        self.max_bytes = max_bytes

    async def handle(self, request: Request) -> Response:
        method = request.method
        bucket = request.path_params["bucket"]
        key = request.path_params["key"]
        try:
            if method not in ("GET", "PUT"):
                return _error(405, f"invalid method ({method.lower()}) for {request.url.path}")
            self.store.verify(method, bucket, key, request.query_params.get("expires"),
                              request.query_params.get("signature"), request.headers.get("content-type", ""))
            if method == "PUT":
                return await self._put(request, bucket, key)
            return await self._get(bucket, key, request.headers.get("range"))
        except StorageError as exc:
            return _error(_STATUS.get(exc.reason, 500), exc.message)
        except ClientDisconnect:
            log.info("client left during %s %s", method, request.url.path)
            return _error(400, "the client disconnected before the end of the body")
        except Exception:  # the server must answer, whatever broke
            log.exception("unexpected error on %s %s", method, request.url.path)
            return _error(500, "Unexpected exception thrown: see the server log")

    async def _put(self, request: Request, bucket: str, key: str) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise _too_large(self.max_bytes)
        content_type = request.headers.get("content-type", "")
        upload = await _in_thread(self.store.upload, bucket, key, content_type)
        try:
            await self._receive(request, upload)
            info = await _in_thread(upload.commit)
        finally:
            await _in_thread(upload.abort)  # nothing after a commit
        return Response(status_code=200, headers={"ETag": f'"{info.md5}"'})

    async def _receive(self, request: Request, upload: Upload) -> None:
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        batch: list[bytes] = []
        batched = total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > self.max_bytes:
                    raise _too_large(self.max_bytes)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH:
                    for future in pending:
                        await future
                    # hashing and writing in two threads, while the next batch arrives
                    pending = [loop.run_in_executor(None, upload.digest, batch),
                               loop.run_in_executor(None, upload.store_bytes, batch)]
                    batch, batched = [], 0
            for future in pending:
                await future
            if batch:
                await _in_thread(upload.write_all, batch)
        finally:
            if pending:  # never let the upload be discarded under a running write
                await asyncio.wait(pending)

    async def _get(self, bucket: str, key: str, range_header: str | None) -> Response:
        file, size, content_type = await _in_thread(self.store.open, bucket, key)
        media_type = _header_safe(content_type) or DEFAULT_TYPE
        wanted = _byte_range(range_header, size)
        if wanted is None:  # no Range, or one this endpoint does not serve (several ranges): the whole object
            return FileStream(file, size, media_type)
        if wanted == UNSATISFIABLE:
            file.close()
            return JSON({"status": 416, "message": f"range {range_header} is outside the object's {size} bytes"},
                        status_code=416, headers={"Content-Range": f"bytes */{size}"})
        start, end = wanted
        await _in_thread(file.seek, start)
        return FileStream(file, end - start + 1, media_type, status_code=206,
                          headers={"content-range": f"bytes {start}-{end}/{size}"})


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single ``bytes=`` range, as S3 serves it; ``None`` to send
    everything (no header, a malformed one, or several ranges, which RFC 9110 lets a server ignore);
    ``UNSATISFIABLE`` when the range starts past the end."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[6:].strip().partition("-")
    if not sep or not (first or last) or not all(part.isdigit() for part in (first, last) if part):
        return None
    if not first:  # the last N bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n and size else UNSATISFIABLE
    start = int(first)
    if start >= size:
        return UNSATISFIABLE
    end = min(int(last), size - 1) if last else size - 1
    return None if end < start else (start, end)


class FileStream(Response):
    """An open file sent with its Content-Length, reading the next chunk in a thread while one is sent.

    Unlike Starlette's FileResponse it sends from a file already open, so the length announced is that of
    the bytes sent even when the key is replaced meanwhile, and it reads in larger chunks."""

    def __init__(self, file: BinaryIO, size: int, media_type: str, *, status_code: int = 200,
                 headers: dict[str, str] | None = None) -> None:
        self.file = file
        self.size = size
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers({"content-length": str(size), "content-type": media_type, "accept-ranges": "bytes",
                           **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()
        watcher = loop.create_task(_watch_disconnect(receive, gone))
        pending = self._read(loop, self.size)
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if self.size == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            remaining = self.size
            while pending is not None and not gone.is_set():
                chunk = await pending
                pending = None
                if not chunk:  # truncated in place (by a container): the connection ends short
                    log.warning("object shrank while being sent: %d bytes short", remaining)
                    return
                remaining -= len(chunk)
                pending = self._read(loop, remaining)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        finally:
            if pending is not None:
                await asyncio.wait([pending])
            watcher.cancel()
            self.file.close()

    def _read(self, loop: asyncio.AbstractEventLoop, remaining: int) -> "asyncio.Future[bytes] | None":
        """The next chunk, read in a thread; None when everything was read."""
        if remaining <= 0:
            return None
        return loop.run_in_executor(None, self.file.read, min(READ_CHUNK, remaining))


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


def _too_large(limit: int) -> StorageError:
    return StorageError(f"object exceeds the limit of {limit} bytes", reason="too-large")


def _header_safe(value: str) -> str:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return ""
    return value if "\r" not in value and "\n" not in value else ""


def _error(status: int, message: str) -> Response:
    return JSON({"status": status, "message": message}, status_code=status)
