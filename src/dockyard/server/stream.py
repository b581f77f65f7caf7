"""Long-lived answers: the event stream of changes, and a deployment's log as it is written.

``GET /api/event-stream`` (server-sent events, ``text/event-stream``). Query: ``types`` (comma-separated or
repeated; default ``deployment,deployment-parameter,job``) and ``filter`` (a CIMI filter each document must
match). The caller is the session cookie's, fixed at connect time. Each committed change the caller may see
is one event::

    event: edit
    id: 42
    data: {"id": "deployment/…", "state": "STARTED", …}

``event`` is ``add``, ``edit`` or ``delete``; ``data`` is the document as the caller's GET returns it, without
``operations`` (a delete: only ``id`` and ``resource-type``); ``id`` increases along the stream, with gaps.
A comment ``: keep-alive`` is sent after ``stream-heartbeat`` seconds without events. A subscriber more than
``stream-queue`` events behind is dropped: the stream ends with ``event: overflow`` (its ``data`` says why),
after which the client must read again what it shows and reconnect. A stream also ends with ``overflow`` when
its server lost its connection to PostgreSQL's change notifications, as changes may be missing (its ``data``
says so). Logging out ends the stream. Errors
(unknown type, bad filter, a type the caller may not search) are Nuvla's JSON error, before streaming.
The fan-out is :mod:`dockyard.resources.changes`; this module is HTTP only.

``GET /api/deployment/<uuid>/log-stream?tail=N`` follows the deployment's container log: the last ``N``
lines (default 100; ``all`` for every line), then each line as the container writes it, until the client
disconnects or the container is gone. Lines are as the engine gives them, ``<RFC 3339 timestamp> <text>``.
By default the answer is ``text/plain``, one line per log line, chunked (``curl -N`` shows it live); a
client that sends ``Accept: text/event-stream`` (a browser's EventSource) gets server-sent events instead:
one ``data:`` event per line, ``: keep-alive`` comments when idle (a plain-text log cannot carry them, so
behind a proxy with an idle timeout prefer events), and ``event: end`` when the log ends. It needs
``view-data`` on the deployment (403/404 otherwise) and a deployment whose container runs or ran, all
answered as Nuvla's JSON error before streaming starts. A stop keeps the container's last 2,000 lines before
it removes it (the deployment's ``resource-log`` named ``archived log``): in a state without a container
(STOPPED, or STARTING again) the stream answers those lines, then ends (``event: end`` says they are the
archive); a deployment that never ran, or whose stop kept nothing, is a 409.

``GET /api/deployment/<uuid>/stats-stream`` follows what the deployment's running container uses, as
server-sent events (whatever ``Accept`` says): about once a second ``event: stats`` with ``data:
{"time", "cpu-percent", "memory-bytes", "memory-limit-bytes"}`` (``cpu-percent`` 100 is one whole CPU;
memory without the reclaimable page cache, the limit is the host's when the app sets none), ``: keep-alive``
comments when idle, and ``event: end`` when the container stops or goes. The same rules as the log stream
(``view-data``, 403/404), and 409 in a state without a running container (or on an engine that cannot report
use).

Both end within a fraction of a second when the client disconnects, and at once when the server begins
its graceful shutdown (:meth:`Streams.close`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..core.errors import BadRequest, DockyardError, MethodNotAllowed
from ..deploy.watch import follow, open_stats
from ..drivers.base import DriverError, StopSignal, TaskStats
from ..resources.base import Ctx, Services
from ..resources.changes import DEFAULT_TYPES, OVERFLOW, UNHEARD, Event, Subscription, drain, feed_of
from ..resources.session import COOKIE, authenticate
from . import http, refusals

log = logging.getLogger("dockyard.server")

# how often a waiting stream looks at its client and at the server (both also wake it when they can)
POLL = 0.5
DEFAULT_TAIL = 100
MAX_TAIL = 100_000
LOG_BUFFER = 1000  # lines read ahead of a slow client before the engine's stream is paused
KEEP_ALIVE = b": keep-alive\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"}
SSE = "text/event-stream"

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {_encode(data)}\n\n".encode()


def sse_event(event: Event) -> bytes:
    return sse(event.change, event.data, event.id)


class Streams:
    """The streaming routes, and the switch that ends every open stream when the server shuts down."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.heartbeat: float = services.settings["stream-heartbeat"]
        self.stopping = threading.Event()

    def close(self) -> None:
        self.stopping.set()
        feed_of(self.services).stop()

    # -- the event stream ----------------------------------------------------------------------------

    async def event_stream(self, request: Request) -> Response:
        if request.method != "GET":
            return http.error_response(MethodNotAllowed(f"invalid method ({request.method.lower()}) for "
                                                        f"{request.url.path}"))
        items = list(request.query_params.multi_items())
        types = [t.strip() for k, v in items if k == "types" for t in v.split(",") if t.strip()]
        filters = [v for k, v in items if k == "filter" and v.strip()]
        cookie = request.cookies.get(COOKIE)

        # repeated filters are joined with 'and', as a search joins them
        joined = " and ".join(f"({f})" for f in filters) if len(filters) > 1 else (filters or [None])[0]

        def subscribe() -> Subscription:
            authn = authenticate(self.services, cookie)
            refusals.note(request.scope, authn)
            return feed_of(self.services).subscribe(authn, types or DEFAULT_TYPES, joined)

        try:
            sub = await run_in_threadpool(subscribe)
        except DockyardError as exc:
            return http.error_response(exc)
        return StreamingResponse(self._events(request, sub), media_type=SSE, headers=HEADERS)

    async def _events(self, request: Request, sub: Subscription) -> AsyncIterator[bytes]:
        feed = feed_of(self.services)
        ready = _ready_event(sub.on_ready)
        try:
            yield b": subscribed\n\n"
            beat = _Heartbeat(self.heartbeat)
            while True:
                events = sub.drain()
                if sub.ended == OVERFLOW:
                    yield sse(OVERFLOW, {"message": f"more than {feed.queue_size} events behind: read again and "
                                                    "reconnect"})
                    return
                if sub.ended == UNHEARD:
                    yield sse(OVERFLOW, {"message": "the server lost its connection to the database's change "
                                                    "notifications, so changes may be missing: read again and "
                                                    "reconnect"})
                    return
                if events:
                    yield b"".join(sse_event(e) for e in events)
                    beat.reset()
                if sub.ended or self.stopping.is_set():
                    return
                if beat.due():
                    yield KEEP_ALIVE
                await _wait(ready, beat.wait())
                if await request.is_disconnected():
                    return
        finally:
            feed.unsubscribe(sub)

    # -- a deployment's log --------------------------------------------------------------------------

    async def log_stream(self, request: Request) -> Response:
        as_events = SSE in request.headers.get("accept", "")

        def chunk(lines: list[str]) -> bytes:
            return _log_chunk(lines, as_events)

        def ending(lines: Iterator[str]) -> str:
            return getattr(lines, "ending", "the log ended")

        return await self._deployment_stream(
            request, lambda ctx, rid: follow(ctx, rid, _tail(request.query_params.getlist("tail"))),
            chunk, ending if as_events else None, SSE if as_events else "text/plain; charset=utf-8")

    # -- a deployment's use of CPU and memory --------------------------------------------------------

    async def stats_stream(self, request: Request) -> Response:
        return await self._deployment_stream(
            request, open_stats, lambda samples: b"".join(_stats_event(s) for s in samples),
            lambda _: "the container is no longer running", SSE)

    # -- what both deployment streams share ----------------------------------------------------------

    async def _deployment_stream(self, request: Request, open_: Callable[[Ctx, str], tuple[Iterator[Any], StopSignal]],
                                 chunk: Callable[[list[Any]], bytes], ending: Callable[[Iterator[Any]], str] | None,
                                 media_type: str) -> Response:
        """Check the caller and open the engine's stream in a worker thread (errors answered as Nuvla's JSON
        before streaming), then pump it to the client. ``ending``: server-sent events, closed with an
        ``end`` event carrying its message (``None``: plain text, without keep-alives or an end)."""
        rid = f"deployment/{request.path_params['uuid']}"
        if request.method != "GET":
            return http.error_response(MethodNotAllowed(f"invalid method ({request.method.lower()}) for "
                                                        f"{request.url.path}"))
        cookie = request.cookies.get(COOKIE)

        def opened() -> tuple[Iterator[Any], StopSignal]:
            ctx = Ctx(self.services, authenticate(self.services, cookie))
            refusals.note(request.scope, ctx.authn)
            return open_(ctx, rid)

        try:
            items, stop = await run_in_threadpool(opened)
        except DockyardError as exc:
            return http.error_response(exc)
        return StreamingResponse(self._pumped(request, items, stop, chunk, ending), media_type=media_type,
                                 headers=HEADERS)

    async def _pumped(self, request: Request, items: Iterator[Any], stop: StopSignal,
                      chunk: Callable[[list[Any]], bytes],
                      ending: Callable[[Iterator[Any]], str] | None) -> AsyncIterator[bytes]:
        pump = _Pump(items, stop)
        ready = _ready_event(pump.on_ready)
        pump.start()
        as_events = ending is not None
        try:
            beat = _Heartbeat(self.heartbeat)
            if as_events:
                yield b": following\n\n"
            while True:
                batch = pump.drain()
                if batch:
                    yield chunk(batch)
                    beat.reset()
                if pump.done.is_set() and pump.empty():
                    if ending is not None:
                        yield sse("end", {"message": pump.error or ending(items)})
                    return
                if self.stopping.is_set():
                    return
                if as_events and beat.due():
                    yield KEEP_ALIVE
                await _wait(ready, beat.wait())
                if await request.is_disconnected():
                    return
        finally:
            stop.set()


def _stats_event(sample: TaskStats) -> bytes:
    return sse("stats", {"time": sample.time, "cpu-percent": sample.cpu_percent,
                         "memory-bytes": sample.memory_bytes, "memory-limit-bytes": sample.memory_limit_bytes})


def _tail(values: list[str]) -> int | None:
    if not values:
        return DEFAULT_TAIL
    raw = values[-1].strip()
    if raw == "all":
        return None
    if not raw.isdigit() or int(raw) > MAX_TAIL:
        raise BadRequest(f"parameter 'tail' must be 'all' or an integer from 0 to {MAX_TAIL}, not {raw[:20]!r}")
    return int(raw)


def _log_chunk(lines: list[str], as_events: bool) -> bytes:
    if as_events:
        return "".join(f"data: {line.replace(chr(13), '')}\n\n" for line in lines).encode()
    return "".join(line + "\n" for line in lines).encode()


# -- waiting without a thread per stream -------------------------------------------------------------

def _ready_event(register: Callable[[Callable[[], None]], None]) -> asyncio.Event:
    """An asyncio event that another thread sets through ``register``'s callback."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    register(lambda: loop.call_soon_threadsafe(ready.set))
    return ready


async def _wait(ready: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(ready.wait(), timeout=min(timeout, POLL))
    except asyncio.TimeoutError:
        pass
    ready.clear()


class _Heartbeat:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()

    def reset(self) -> None:
        self.last = self.loop.time()

    def due(self) -> bool:
        if self.loop.time() - self.last >= self.interval:
            self.last = self.loop.time()
            return True
        return False

    def wait(self) -> float:
        return max(self.interval - (self.loop.time() - self.last), 0.01)


class _Pump:
    """Reads a blocking line iterator in its own thread (not the request pool, which it would hold for the
    whole stream) into a bounded queue: a slow client pauses the engine's stream instead of filling memory."""

    def __init__(self, lines: Iterator[Any], stop: StopSignal) -> None:
        self.lines = lines
        self.stop = stop
        self.queue: queue.Queue[Any] = queue.Queue(LOG_BUFFER)
        self.done = threading.Event()
        self.error: str | None = None
        self._wakers: list[Callable[[], None]] = []

    def on_ready(self, wake: Callable[[], None]) -> None:
        self._wakers.append(wake)

    def start(self) -> None:
        threading.Thread(target=self._run, name="dockyard-log-stream", daemon=True).start()

    def drain(self) -> list[str]:
        return drain(self.queue)

    def empty(self) -> bool:
        return self.queue.empty()

    def _run(self) -> None:
        try:
            for line in self.lines:
                while not self.stop.is_set():
                    try:
                        self.queue.put(line, timeout=POLL)
                        break
                    except queue.Full:
                        continue
                self._wake()
                if self.stop.is_set():
                    return
        except DriverError as exc:
            self.error = exc.message
        except Exception:  # the stream must end, whatever broke
            log.exception("following a log failed")
            self.error = "following the log failed: see the server log"
        finally:
            self.done.set()
            self._wake()
            close = getattr(self.lines, "close", None)
            if close is not None:
                close()

    def _wake(self) -> None:
        for wake in self._wakers:
            try:
                wake()
            except RuntimeError:  # the event loop has closed: nobody reads any more
                pass


__all__ = ["Streams", "follow", "open_stats", "sse"]
