"""A small, fast HTTP/1.1 load generator for the benchmarks: raw asyncio streams, keep-alive, no library.

``N`` connections each send requests one after another (closed loop: a connection sends its next request
when the previous answer is read) until it has sent ``count`` requests or ``seconds`` have passed. Every
request's latency is taken with ``time.perf_counter_ns`` from just before the write to the end of the body.

The client only knows what the benchmark servers send: a status line, headers, and a body of
``Content-Length`` bytes (uvicorn frames every non-streaming Starlette response that way). A chunked or
close-delimited answer is an error, so it cannot be mis-timed silently.

A run may mix requests of several kinds: each answer is recorded with the index of its request, and
``Result.by_label`` splits the run per kind (``load.py`` measures a mix of operations that way).

``run`` runs the load in a child process (``multiprocessing``, spawn), so the client never shares an
interpreter, a GIL or an event loop with the process that seeded the database or serves the requests.
Traffic goes only to the loopback address it is given.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Result", "Request", "run", "run_inline", "request_bytes"]

Request = bytes  # one complete HTTP/1.1 request, head and body
GRACE_S = 30.0  # how long after its deadline a run waits for answers still in flight


def request_bytes(method: str, path: str, port: int, *, body: bytes = b"", content_type: str | None = None,
                  cookie: str | None = None) -> bytes:
    """A minimal keep-alive request."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json"]
    if cookie:
        head.append(f"Cookie: {cookie}")
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
        if content_type:
            head.append(f"Content-Type: {content_type}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


@dataclass
class Result:
    concurrency: int
    elapsed_s: float  # wall time from the first request to the last answer, all connections
    latencies_ns: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # CPU time the load generator itself used during the run
    # which request (its index in the list given) each answer was for, and its status: parallel to
    # ``latencies_ns``, so that a mixed run can be split per operation (``by_label``)
    indices: list[int] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    error_indices: list[int] = field(default_factory=list)  # the request each error hit (-1: connecting)

    @property
    def client_cpu(self) -> float:
        """The client's CPU use as a fraction of one core: near 1.0 means the client may be the limit."""
        return self.cpu_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    @property
    def rps(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1] / 1e6

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def by_label(self, labels: Sequence[str]) -> dict[str, "Result"]:
        """Split a mixed run per operation: ``labels[i]`` names request ``i``. Each part keeps the run's
        wall time, so its ``rps`` is that operation's share of the throughput."""
        parts = {label: Result(self.concurrency, self.elapsed_s) for label in dict.fromkeys(labels)}
        for index, latency, status in zip(self.indices, self.latencies_ns, self.codes):
            part = parts[labels[index]]
            part.latencies_ns.append(latency)
            part.statuses[status] = part.statuses.get(status, 0) + 1
        for index, error in zip(self.error_indices, self.errors):
            if index >= 0:
                parts[labels[index]].errors.append(error)
        return parts


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    # status line: HTTP/1.1 200 OK
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError("response without Content-Length: " + head[:200].decode("latin-1"))
    end = lower.index(b"\r\n", at + 2)
    length = int(lower[at + 17:end])
    if length:
        await reader.readexactly(length)
    return status


class _Shared:
    """What the connections of one run share (one event loop, so no locks)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = 0.0  # set when every connection is open
        self.opened = 0
        self.start = asyncio.Event()
        self.latencies: list[int] = []
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.error_indices: list[int] = []
        self.indices: list[int] = []
        self.codes: list[int] = []


async def _connection(host: str, port: int, requests: Sequence[Request], offset: int, count: int,
                      shared: _Shared) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        shared.errors.append(f"connect: {exc}")
        shared.error_indices.append(-1)
        shared.opened += 1
        return
    shared.opened += 1
    index = -1
    try:
        await shared.start.wait()
        n = len(requests)
        clock = time.perf_counter_ns
        latencies, statuses, deadline = shared.latencies, shared.statuses, shared.deadline
        indices, codes = shared.indices, shared.codes
        for i in range(count):
            if time.monotonic() >= deadline:
                break
            index = (offset + i) % n
            t0 = clock()
            writer.write(requests[index])
            status = await _read_response(reader)
            latencies.append(clock() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            indices.append(index)
            codes.append(status)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, RuntimeError, ValueError) as exc:
        shared.errors.append(f"{type(exc).__name__}: {exc}")
        shared.error_indices.append(index)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _load(host: str, port: int, requests: Sequence[Request], concurrency: int, count: int,
                seconds: float) -> Result:
    shared = _Shared(seconds)
    per_conn = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]
    stride = max(1, len(requests) // concurrency)
    tasks = [asyncio.create_task(_connection(host, port, requests, i * stride, per_conn[i], shared))
             for i in range(concurrency)]
    for _ in range(1000):  # every connection open (at most ~5 s), then all start together
        if shared.opened >= concurrency:
            break
        await asyncio.sleep(0.005)
    shared.deadline = time.monotonic() + seconds
    t0, cpu0 = time.perf_counter(), time.process_time()
    shared.start.set()
    # a connection stops sending at the deadline; one whose answer never comes is cancelled after a grace
    done, pending = await asyncio.wait(tasks, timeout=seconds + GRACE_S)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
        shared.errors.append(f"{len(pending)} connection(s) still waiting {GRACE_S:.0f} s after the deadline")
        shared.error_indices.append(-1)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return Result(concurrency, elapsed, shared.latencies, shared.statuses, shared.errors, cpu, shared.indices,
                  shared.codes, shared.error_indices)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # plain asyncio still works, only slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_inline(host: str, port: int, requests: Sequence[Request], concurrency: int, count: int,
               seconds: float) -> Result:
    """Run the load in this process (uvloop when available)."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError("the load generator only talks to the loopback interface")
    _install_uvloop()
    return asyncio.run(_load(host, port, list(requests), concurrency, count, seconds))


_CTX = multiprocessing.get_context("spawn")


class Runner:
    """One long-lived client process, reused for every measurement (spawning one per row costs ~0.3 s)."""

    def __init__(self) -> None:
        self._parent, child = _CTX.Pipe()
        self._proc = _CTX.Process(target=_serve_child, args=(child,), daemon=True)
        self._proc.start()
        child.close()

    def run(self, host: str, port: int, requests: Sequence[Request], concurrency: int, count: int,
            seconds: float) -> Result:
        self._parent.send((host, port, list(requests), concurrency, count, seconds))
        # the child stops on its own deadline; allow for connecting and draining, then give up
        if not self._parent.poll(seconds + GRACE_S + 30):
            raise TimeoutError("the load generator did not answer in time")
        return self._parent.recv()

    def close(self) -> None:
        try:
            self._parent.send(None)
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


def _serve_child(conn) -> None:  # type: ignore[no-untyped-def]
    _install_uvloop()
    while True:
        job = conn.recv()
        if job is None:
            break
        host, port, requests, concurrency, count, seconds = job
        try:
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise ValueError("the load generator only talks to the loopback interface")
            result = asyncio.run(_load(host, port, requests, concurrency, count, seconds))
        except BaseException as exc:  # report, never hang the parent
            result = Result(concurrency, 0.0, errors=[f"{type(exc).__name__}: {exc}"], error_indices=[-1])
        conn.send(result)
    conn.close()


def run(host: str, port: int, requests: Sequence[Request], concurrency: int, count: int,
        seconds: float) -> Result:
    """Run the load in a fresh child process and return its result."""
    runner = Runner()
    try:
        return runner.run(host, port, requests, concurrency, count, seconds)
    finally:
        runner.close()
