"""Deployment benchmark: how long a Dockyard ``start`` takes next to a bare ``docker run`` of the same image.

    python benchmarks/deploy.py            # 20 rounds and a burst of 50, about 1-2 minutes
    python benchmarks/deploy.py --quick    # 5 rounds and a burst of 10, under 30 s
    python benchmarks/deploy.py --workers 8 --poll 5 --stop-timeout 0 --rounds 10 --burst 20  # knobs
    python benchmarks/deploy.py --swarm-only   # only the swarm rows (a 3-replica service, a 2-service stack)

It starts ``dockyard serve`` (SQLite, temporary data dir, a free loopback port), creates a user, a project
and a component (the tests' ``app_image``: busybox httpd serving its environment on port 80, with
``ports: [{"target-port": 80}]``), then, interleaved round by round (one warm-up round not counted):

* Dockyard start: ``POST /api/deployment/<uuid>/start`` until the deployment is seen STARTED with its
  ``tcp.80`` parameter set, then the stop (``POST .../stop`` until STOPPED, its own row) and the delete (not
  timed). The client sees the changes on one ``GET /api/event-stream`` (deployments and their parameters)
  opened for the whole run, or, without one or with ``--poll MS``, by ``GET``-ting the deployment (then
  its parameter) every MS milliseconds;
* docker CLI: ``docker run -d -p 127.0.0.1::80 <image>`` then ``docker port <id> 80`` until it answers, as
  subprocesses (``docker rm -f`` after, timed as a reference for the stop row);
* docker SDK: ``client.containers.run(..., detach=True, ports={"80/tcp": ("127.0.0.1", None)})`` then
  ``reload()`` until the port is known, in this process (no CLI start-up).

Readiness, in the same rounds: the same app with ``readiness: {http: {port: 80, path: /, status: 200}}``,
from ``POST .../start`` until the deployment is seen with ``ready: true``, beside ``docker run`` + ``docker
port`` + a client GET-ting ``http://127.0.0.1:<port>/`` every 5 ms until it answers (what a user of bare
Docker does to know the service is up). Target: ≤ 1.1× that baseline's median.

Then a burst: N deployments whose N start requests leave at once from N threads; the time until the last
is STARTED (and that every one has its ``tcp.80``), then the N stops until all are STOPPED; and the same
burst as N docker SDK runs from N threads, the engine's own pace.

Last, on a real 3-node swarm (``benchmarks/_swarm.py``, about 2 minutes more; ``--swarm-rounds 0`` skips it):
a component with 3 replicas beside ``docker service create`` + waiting for its 3 tasks, and a compose
application of 2 services as a stack beside ``docker stack deploy`` + waiting for both.

The server runs with its defaults except ``DOCKYARD_PUBLISH_IP=127.0.0.1``: ports are published on loopback
only, as the baselines' ``-p 127.0.0.1::80`` (the default binds every address of the host).

Everything it creates is removed at the end, even on failure: containers labelled with its deployments'
ids (or with this run's ``dockyard-bench`` label for the baselines), the server, the temporary directory.
The exit status is 0 when every deployment of the burst reached STARTED and STOPPED.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import docker  # noqa: E402
import docker.errors  # noqa: E402
import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._swarm import SwarmBench  # noqa: E402
from tests.conftest import ADMIN_PASSWORD, start_server, stop_server  # noqa: E402
from tests.deployments.images import app_image  # noqa: E402

POLL = 0.005  # seconds between the client's looks at a deployment
BURST_POLL = 0.02  # seconds between searches during a burst
TIMEOUT = 60.0  # seconds any single wait may last
TARGET_RATIO = 1.3  # Dockyard's median start over the bare `docker run` median
READY_TARGET_RATIO = 1.1  # Dockyard's median start → ready over `docker run` + polling the port until it answers
READINESS = {"http": {"port": 80, "path": "/", "status": 200}}
RUN_ID = uuid.uuid4().hex[:8]
BENCH_LABEL = "dockyard-bench"
PHASES = ("queued", "claimed", "pulled", "created", "started")
READY = "READY"  # what a watcher waits for to see `ready: true` (not a state)

console = Console(width=None if sys.stdout.isatty() else 140)


def log(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def wall_of(ts: str) -> float:
    """Epoch seconds of a Nuvla timestamp (``...T12:00:00.123Z``)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


# -- the API, as a user -------------------------------------------------------------------------------

class Client:
    """A keep-alive HTTP client with a session cookie; every call checks its status."""

    def __init__(self, endpoint: str) -> None:
        self.http = httpx.Client(base_url=endpoint + "/api", timeout=30,
                                 headers={"Accept": "application/json"},
                                 limits=httpx.Limits(max_connections=128, max_keepalive_connections=128))

    def call(self, method: str, path: str, body: Any = None, want: int | tuple[int, ...] = (200, 201, 202),
             **params: Any) -> dict[str, Any]:
        resp = self.http.request(method, path, json=body, params=params or None)
        wanted = (want,) if isinstance(want, int) else want
        if resp.status_code not in wanted:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else {}

    def login(self, username: str, password: str) -> None:
        self.call("POST", "/session", {"template": {"href": "session-template/password", "username": username,
                                                    "password": password}}, want=201)

    def close(self) -> None:
        self.http.close()


def set_up(endpoint: str, image: str) -> tuple[Client, str, str]:
    """A fresh user (logged in), a project and two components (the second with an HTTP readiness check);
    returns the user's client and the modules' ids."""
    admin = Client(endpoint)
    admin.login("admin", ADMIN_PASSWORD)
    name, password = f"bench-{RUN_ID}", "pw-" + uuid.uuid4().hex
    admin.call("POST", "/user", {"template": {"href": "user-template/username-password", "username": name,
                                              "password": password}}, want=201)
    admin.close()
    user = Client(endpoint)
    user.login(name, password)
    project = f"bench{RUN_ID}"
    user.call("POST", "/module", {"path": project, "subtype": "project", "name": project}, want=201)
    repository, _, tag = image.rpartition(":")
    repo, _, image_name = repository.rpartition("/")
    ids = []
    for name, extra in (("app", {}), ("ready-app", {"readiness": READINESS})):
        module = user.call("POST", "/module", {
            "path": f"{project}/{name}", "subtype": "component", "name": name,
            "content": {"image": {"repository": repo, "image-name": image_name, "tag": tag}, "author": "bench",
                        "architectures": ["amd64"], "ports": [{"target-port": 80}], **extra}}, want=201)
        ids.append(module["resource-id"])
    return user, ids[0], ids[1]


def event_stream_available(client: Client) -> bool:
    with client.http.stream("GET", "/event-stream", headers={"Accept": "text/event-stream"}) as resp:
        return resp.status_code == 200  # leaving the block closes the stream without reading it


def path_of(dep_id: str) -> str:
    return "/" + dep_id


def tcp80(client: Client, dep_id: str) -> str | None:
    found = client.call("GET", "/deployment-parameter", filter=f"parent='{dep_id}' and name='tcp.80'",
                        select="value")
    values = [r.get("value") for r in found.get("resources", [])]
    return values[0] if values and values[0] else None


# -- seeing a deployment reach a state: the event stream, or polling ------------------------------------

class Watcher:
    """When (``time.perf_counter``) deployments were first seen in a state, with their ``tcp.80`` set."""

    how = ""

    def wait(self, dep_id: str, state: str, port: bool = False) -> float:
        raise NotImplementedError

    def wait_all(self, ids: list[str], state: str, port: bool = False) -> dict[str, float]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class StreamWatcher(Watcher):
    """One ``GET /api/event-stream`` (deployments and their parameters) read by a thread for the whole run."""

    how = "event stream"

    def __init__(self, endpoint: str, cookies: httpx.Cookies) -> None:
        self.http = httpx.Client(base_url=endpoint + "/api", cookies=cookies,
                                 timeout=httpx.Timeout(30, read=None))
        self.cond = threading.Condition()
        self.seen: dict[str, dict[str, float]] = {}  # deployment id → state → first seen
        self.ports: dict[str, float] = {}  # deployment id → tcp.80 first seen with a value
        self.failed: dict[str, str] = {}  # deployment id → status-message, once in ERROR
        self.error = ""
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, name="event-stream", daemon=True)
        self.thread.start()
        if not self.ready.wait(10) or self.error:
            raise RuntimeError(f"the event stream did not open: {self.error or 'no answer in 10 s'}")

    def _read(self) -> None:
        try:
            with self.http.stream("GET", "/event-stream", params={"types": "deployment,deployment-parameter"},
                                  headers={"Accept": "text/event-stream"}) as resp:
                if resp.status_code != 200:
                    self.error = f"HTTP {resp.status_code}: {resp.read()[:300]!r}"
                    return
                event, data = "message", []
                for line in resp.iter_lines():
                    if line.startswith(":"):
                        self.ready.set()  # ": subscribed" comes first
                    elif line:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if name == "event":
                            event = value
                        elif name == "data":
                            data.append(value)
                    elif data:
                        self._dispatch(event, "\n".join(data))
                        event, data = "message", []
                self._fail("the event stream ended")
        except Exception as exc:  # noqa: BLE001 (closed at the end of the run, or broken: waiters are told)
            self._fail(f"the event stream broke: {type(exc).__name__}: {exc}")
        finally:
            self.ready.set()

    def _fail(self, message: str) -> None:
        with self.cond:
            self.error = self.error or message
            self.cond.notify_all()

    def _dispatch(self, event: str, data: str) -> None:
        now = time.perf_counter()
        doc = json.loads(data)
        if event == "overflow":
            self._fail(f"the event stream overflowed: {doc}")
            return
        if event == "delete":
            return
        with self.cond:
            if doc.get("resource-type") == "deployment":
                self.seen.setdefault(doc["id"], {}).setdefault(doc["state"], now)
                if doc.get("ready") is True:
                    self.seen[doc["id"]].setdefault(READY, now)
                if doc["state"] == "ERROR":
                    self.failed[doc["id"]] = doc.get("status-message", "")
            elif doc.get("name") == "tcp.80" and doc.get("value"):
                self.ports.setdefault(doc["parent"], now)
            self.cond.notify_all()

    def _when(self, dep_id: str, state: str, port: bool) -> float | None:
        if dep_id in self.failed and state != "ERROR":  # ERROR is awaited only where it is the point
            raise RuntimeError(f"{dep_id} went to ERROR: {self.failed[dep_id]}")
        at = self.seen.get(dep_id, {}).get(state)
        if at is None or (port and dep_id not in self.ports):
            return None
        return max(at, self.ports[dep_id]) if port else at

    def wait_all(self, ids: list[str], state: str, port: bool = False) -> dict[str, float]:
        deadline = time.perf_counter() + TIMEOUT * 2
        with self.cond:
            while True:
                found = {d: at for d in ids if (at := self._when(d, state, port)) is not None}
                if len(found) == len(ids) or time.perf_counter() > deadline:
                    return found
                if self.error:
                    raise RuntimeError(self.error)
                self.cond.wait(0.5)

    def wait(self, dep_id: str, state: str, port: bool = False) -> float:
        found = self.wait_all([dep_id], state, port)
        if dep_id not in found:
            raise RuntimeError(f"{dep_id} not {state} after {TIMEOUT * 2:.0f} s")
        return found[dep_id]

    def close(self) -> None:
        self.http.close()  # ends the reading thread's stream
        self.thread.join(5)


class PollWatcher(Watcher):
    """GET the deployment (and then its tcp.80 parameter) every ``POLL`` seconds; a burst by searches."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.how = f"polled every {POLL * 1000:g} ms"

    def wait(self, dep_id: str, state: str, port: bool = False) -> float:
        deadline = time.perf_counter() + TIMEOUT
        while True:
            doc = self.client.call("GET", path_of(dep_id), select="state,status-message,ready")
            if state == READY and doc.get("ready") is True:
                return time.perf_counter()
            if doc["state"] == state and (not port or tcp80(self.client, dep_id)):
                return time.perf_counter()
            if doc["state"] == "ERROR":
                raise RuntimeError(f"{dep_id} went to ERROR: {doc.get('status-message')}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{dep_id} not {state} after {TIMEOUT:.0f} s: {doc['state']}")
            time.sleep(POLL)

    def wait_all(self, ids: list[str], state: str, port: bool = False) -> dict[str, float]:
        seen: dict[str, float] = {}
        tag_filter = " or ".join(f"id='{d}'" for d in ids)
        deadline = time.perf_counter() + TIMEOUT * 2
        while len(seen) < len(ids) and time.perf_counter() < deadline:
            found = self.client.call("GET", "/deployment", filter=tag_filter, select="id,state,status-message",
                                     last=str(len(ids)))
            now = time.perf_counter()
            for doc in found.get("resources", []):
                if doc["state"] == state:
                    seen.setdefault(doc["id"], now)
                elif doc["state"] == "ERROR":
                    raise RuntimeError(f"{doc['id']} went to ERROR: {doc.get('status-message')}")
            time.sleep(BURST_POLL)
        return seen  # the ports of a burst are counted once at the end (they are set before STARTED)


# -- one Dockyard deployment ------------------------------------------------------------------------------

@dataclass
class StartRun:
    seconds: float
    sent: float  # wall clock when the start request left
    observed: float  # wall clock when STARTED + tcp.80 was seen
    port: str
    doc: dict[str, Any]


def measure_start(client: Client, watcher: Watcher, dep_id: str) -> StartRun:
    sent = time.time()
    t0 = time.perf_counter()
    client.call("POST", path_of(dep_id) + "/start", {}, want=202)
    seconds = watcher.wait(dep_id, "STARTED", port=True) - t0
    doc = client.call("GET", path_of(dep_id))  # not timed: the phases
    port = tcp80(client, dep_id)
    if doc["state"] != "STARTED" or not port:
        raise RuntimeError(f"{dep_id} seen STARTED with tcp.80 but now {doc['state']} with tcp.80={port}")
    return StartRun(seconds, sent, sent + seconds, port, doc)


def measure_ready(client: Client, watcher: Watcher, dep_id: str) -> float:
    """POST start → ``ready: true`` seen, in seconds (the app's HTTP check answered)."""
    t0 = time.perf_counter()
    client.call("POST", path_of(dep_id) + "/start", {}, want=202)
    return watcher.wait(dep_id, READY) - t0


def measure_stop(client: Client, watcher: Watcher, dep_id: str) -> float:
    t0 = time.perf_counter()
    client.call("POST", path_of(dep_id) + "/stop", {}, want=202)
    return watcher.wait(dep_id, "STOPPED") - t0


def new_deployment(client: Client, module_id: str, tag: str, deployed: list[str]) -> str:
    dep_id = client.call("POST", "/deployment", {"module": {"href": module_id}, "tags": [tag]},
                         want=201)["resource-id"]
    deployed.append(dep_id)
    return dep_id


def check_serves(port: str) -> None:
    """The published port reaches the app (once, not timed): the row measures a working deployment."""
    deadline = time.monotonic() + 10
    while True:
        try:
            body = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
            if "NUVLA_DEPLOYMENT_ID" in body:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing serves the app on 127.0.0.1:{port}")
        time.sleep(0.05)


# -- baselines -------------------------------------------------------------------------------------------

def docker_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=TIMEOUT)


def run_published(image: str) -> tuple[str, str]:
    """``docker run`` of the app with port 80 published on loopback, then ``docker port`` until the engine
    knows the host port: (container id, host port). A container whose port never shows is removed."""
    ran = docker_cli("run", "-d", "--label", f"{BENCH_LABEL}={RUN_ID}", "-p", "127.0.0.1::80", image)
    if ran.returncode != 0:
        raise RuntimeError(f"docker run failed: {ran.stderr.strip()}")
    cid = ran.stdout.strip()
    for _ in range(1000):
        port = docker_cli("port", cid, "80")
        if port.returncode == 0 and port.stdout.strip():
            return cid, port.stdout.split()[0].rsplit(":", 1)[1]
    docker_cli("rm", "-f", cid)
    raise RuntimeError(f"docker port {cid[:12]} 80 never answered")


def measure_cli(image: str) -> tuple[float, float]:
    """(docker run + docker port until known, docker rm -f) in seconds."""
    t0 = time.perf_counter()
    cid, _ = run_published(image)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    docker_cli("rm", "-f", cid)
    return seconds, time.perf_counter() - t1


def measure_cli_answers(image: str, http: httpx.Client) -> float:
    """docker run + docker port until known + GET the port every ``POLL`` s until the app answers."""
    t0 = time.perf_counter()
    cid, host_port = run_published(image)
    try:
        url = f"http://127.0.0.1:{host_port}/"
        deadline = time.perf_counter() + TIMEOUT
        while True:
            try:
                if http.get(url).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"nothing answered at {url}")
            time.sleep(POLL)
    finally:
        docker_cli("rm", "-f", cid)


def measure_sdk(client: docker.DockerClient, image: str) -> float:
    t0 = time.perf_counter()
    container = client.containers.run(image, detach=True, ports={"80/tcp": ("127.0.0.1", None)},
                                      labels={BENCH_LABEL: RUN_ID})
    try:
        for _ in range(1000):
            if container.ports.get("80/tcp"):
                break
            container.reload()
        else:
            raise RuntimeError(f"container {container.short_id} never published port 80")
        return time.perf_counter() - t0
    finally:
        container.remove(force=True)


# -- burst -----------------------------------------------------------------------------------------------

@dataclass
class Burst:
    n: int
    start_total: float = 0.0
    start_each: list[float] = field(default_factory=list)  # request sent → STARTED seen, per deployment
    started: int = 0
    with_port: int = 0
    stop_total: float = 0.0
    stop_each: list[float] = field(default_factory=list)
    stopped: int = 0
    sdk_total: float = float("nan")  # the same burst as bare docker SDK runs
    server_span: float = 0.0  # first queued → last started, from the deployments' phases
    queue_wait: list[float] = field(default_factory=list)  # queued → claimed, per deployment


def fire(client: Client, dep_ids: list[str], verb: str) -> dict[str, float]:
    """One thread per deployment, released together; returns each request's send time (perf_counter)."""
    barrier = threading.Barrier(len(dep_ids))

    def one(dep_id: str) -> tuple[str, float]:
        barrier.wait(timeout=TIMEOUT)
        sent = time.perf_counter()
        client.call("POST", path_of(dep_id) + "/" + verb, {}, want=202)
        return dep_id, sent

    with ThreadPoolExecutor(len(dep_ids)) as pool:
        return dict(pool.map(one, dep_ids))


def run_burst(client: Client, watcher: Watcher, module_id: str, n: int, deployed: list[str]) -> Burst:
    tag = f"burst-{RUN_ID}"
    ids = [new_deployment(client, module_id, tag, deployed) for _ in range(n)]
    burst = Burst(n)
    sent = fire(client, ids, "start")
    seen = watcher.wait_all(ids, "STARTED", port=isinstance(watcher, StreamWatcher))
    t0 = min(sent.values())
    burst.started = len(seen)
    burst.start_total = max(seen.values()) - t0 if len(seen) == n else float("nan")
    burst.start_each = [seen[d] - sent[d] for d in ids if d in seen]
    ports = client.call("GET", "/deployment-parameter", filter="name='tcp.80' and value!=null", last="0")
    burst.with_port = int(ports.get("count", 0))
    phases = [client.call("GET", path_of(d)).get("phases", {}) for d in ids]
    if all("started" in p for p in phases):
        burst.server_span = (max(wall_of(p["started"]) for p in phases)
                             - min(wall_of(p["queued"]) for p in phases))
        burst.queue_wait = [wall_of(p["claimed"]) - wall_of(p["queued"]) for p in phases if "claimed" in p]
    sent = fire(client, ids, "stop")
    seen = watcher.wait_all(ids, "STOPPED")
    burst.stopped = len(seen)
    burst.stop_total = max(seen.values()) - min(sent.values()) if len(seen) == n else float("nan")
    burst.stop_each = [seen[d] - sent[d] for d in ids if d in seen]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda d: client.call("DELETE", path_of(d)), ids))
    return burst


def sdk_burst(image: str, n: int) -> float:
    """The engine's own pace: n ``containers.run`` + reload from n threads at once; first sent → last port."""
    client = docker.from_env(max_pool_size=n)
    barrier = threading.Barrier(n)

    def one(_: int) -> tuple[float, float]:
        barrier.wait(timeout=TIMEOUT)
        sent = time.perf_counter()
        container = client.containers.run(image, detach=True, ports={"80/tcp": ("127.0.0.1", None)},
                                          labels={BENCH_LABEL: RUN_ID})
        for _ in range(1000):
            if container.ports.get("80/tcp"):
                break
            container.reload()
        return sent, time.perf_counter()

    try:
        with ThreadPoolExecutor(n) as pool:
            times = list(pool.map(one, range(n)))
        return max(done for _, done in times) - min(sent for sent, _ in times)
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{BENCH_LABEL}={RUN_ID}"}):
            container.remove(force=True)
        client.close()


# -- the report ------------------------------------------------------------------------------------------

def p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


def report(rows: list[tuple[str, list[float], bool]], burst: Burst, baselines: dict[str, float]) -> Table:
    table = Table(title="Deployment start/stop latency (ms)", title_justify="left")
    for col in ("what", "n", "median", "p90", "min", "max", "× docker run", "× docker SDK"):
        table.add_column(col, justify="left" if col == "what" else "right")

    def spread(name: str, values: list[float], ratios: tuple[str, str] = ("", "")) -> None:
        table.add_row(name, str(len(values)), ms(statistics.median(values)), ms(p90(values)), ms(min(values)),
                      ms(max(values)), *ratios)

    def total(name: str, seconds: float, sdk_ratio: str = "") -> None:
        table.add_row(name, "1", ms(seconds), "", "", "", "", sdk_ratio)

    for name, values, with_ratios in rows:
        med = statistics.median(values)
        spread(name, values, (f"{med / baselines['cli']:.2f}", f"{med / baselines['sdk']:.2f}")
               if with_ratios else ("", ""))
    table.add_section()
    spread(f"burst of {burst.n}: each start → STARTED", burst.start_each)
    total(f"burst of {burst.n}: first start → last STARTED", burst.start_total,
          f"{burst.start_total / burst.sdk_total:.2f}")
    total(f"burst of {burst.n}, docker SDK: first run → last port", burst.sdk_total)
    spread(f"burst of {burst.n}: each stop → STOPPED", burst.stop_each)
    total(f"burst of {burst.n}: first stop → last STOPPED", burst.stop_total)
    return table


def phases_table(runs: list[StartRun]) -> Table:
    """The median run's timeline, with each step's median over every run beside it."""
    def timeline(run: StartRun) -> list[tuple[str, float]]:
        phases = run.doc.get("phases", {})
        points = [("start request sent (client)", run.sent)]
        points += [(f"{name} (server)", wall_of(phases[name])) for name in PHASES if name in phases]
        points.append(("STARTED written (server, 'updated')", wall_of(run.doc["updated"])))
        points.append(("STARTED + tcp.80 seen (client)", run.observed))
        return points

    ordered = sorted(runs, key=lambda r: r.seconds)
    median_run = ordered[len(ordered) // 2]
    steps: dict[str, list[float]] = {}
    for run in runs:
        points = timeline(run)
        for (_, before), (name, at) in zip(points, points[1:]):
            steps.setdefault(name, []).append(at - before)
    table = Table(title=f"Where one start's time goes (the median run, {median_run.doc['id']}; server "
                        "timestamps have 1 ms resolution)", title_justify="left")
    for col in ("step", "at (ms)", "step (ms)", f"step median over {len(runs)} runs (ms)"):
        table.add_column(col, justify="left" if col == "step" else "right")
    points = timeline(median_run)
    t0 = points[0][1]
    previous = t0
    for name, at in points:
        step = "" if at == t0 and name.startswith("start request") else f"{(at - previous) * 1000:.0f}"
        med = f"{statistics.median(steps[name]) * 1000:.0f}" if name in steps else ""
        table.add_row(name, f"{(at - t0) * 1000:.0f}", step, med)
        previous = at
    return table


# -- main ------------------------------------------------------------------------------------------------

def cleanup(dclient: docker.DockerClient, deployed: list[str]) -> None:
    """Remove the containers of this run's deployments and baselines (and nothing else)."""
    wanted = set(deployed)
    found = [c for c in dclient.containers.list(all=True, filters={"label": "dockyard.deployment-id"})
             if c.labels.get("dockyard.deployment-id") in wanted]
    found += dclient.containers.list(all=True, filters={"label": f"{BENCH_LABEL}={RUN_ID}"})
    for container in found:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass  # already gone (a stop job or a removal in flight)
        except docker.errors.APIError as exc:
            console.print(f"[red]could not remove container {container.short_id}: {exc}[/red]")


def main() -> int:
    global POLL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds and a burst of 10")
    parser.add_argument("--rounds", type=int, help="rounds of each measurement (default 20, 5 with --quick)")
    parser.add_argument("--burst", type=int, help="deployments in the burst (default 50, 10 with --quick)")
    parser.add_argument("--workers", type=int,
                        help="DOCKYARD_WORKERS for the server (job worker threads; default: the server's own)")
    parser.add_argument("--poll", type=float, metavar="MS",
                        help="poll the API every MS milliseconds instead of reading /api/event-stream (the "
                             "default when the server has one)")
    parser.add_argument("--stop-timeout", type=float, metavar="S",
                        help="DOCKYARD_STOP_TIMEOUT for the server (default: the server's own)")
    parser.add_argument("--keep-log", action="store_true", help="print the server log's path and keep it")
    parser.add_argument("--swarm-rounds", type=int, help="rounds on the 3-node swarm (default 5, 3 with --quick; "
                                                         "0: no swarm rows)")
    parser.add_argument("--swarm-only", action="store_true", help="only the swarm rows")
    args = parser.parse_args()
    swarm_rounds = args.swarm_rounds if args.swarm_rounds is not None else (3 if args.quick else 5)
    if args.swarm_only:
        return swarm_rows(swarm_rounds)
    POLL = (args.poll or POLL * 1000) / 1000
    rounds = args.rounds or (5 if args.quick else 20)
    burst_n = args.burst or (10 if args.quick else 50)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still runs the clean-up below
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    dclient = docker.from_env()
    image = app_image(dclient)
    data_dir = tempfile.mkdtemp(prefix="dockyard-bench-deploy-")
    server = None
    deployed: list[str] = []
    client: Client | None = None
    watcher: Watcher | None = None
    try:
        env = {"DOCKYARD_PUBLISH_IP": "127.0.0.1"}
        if args.workers is not None:
            env["DOCKYARD_WORKERS"] = str(args.workers)
        if args.stop_timeout is not None:
            env["DOCKYARD_STOP_TIMEOUT"] = f"{args.stop_timeout:g}"
        server = start_server(data_dir, extra_env=env)
        log(f"dockyard serve pid {server.process.pid} at {server.endpoint} (SQLite in {data_dir}, "
            f"{args.workers if args.workers is not None else 'default'} workers); image {image}")
        client, module_id, ready_module = set_up(server.endpoint, image)
        probe_http = httpx.Client(timeout=2, headers={"Connection": "close"})
        if args.poll is None and event_stream_available(client):
            watcher = StreamWatcher(server.endpoint, client.http.cookies)
        else:
            watcher = PollWatcher(client)
        log(f"the client sees states through: {watcher.how}")
        tag = f"seq-{RUN_ID}"

        log("warm-up: one of each, not counted")
        dep = new_deployment(client, module_id, tag, deployed)
        check_serves(measure_start(client, watcher, dep).port)
        measure_stop(client, watcher, dep)
        client.call("DELETE", path_of(dep))
        measure_cli(image)
        measure_sdk(dclient, image)
        dep = new_deployment(client, ready_module, tag, deployed)
        measure_ready(client, watcher, dep)
        measure_stop(client, watcher, dep)
        client.call("DELETE", path_of(dep))
        measure_cli_answers(image, probe_http)

        starts: list[StartRun] = []
        stops, cli, cli_rm, sdk, readies, answers = [], [], [], [], [], []
        log(f"{rounds} rounds: Dockyard start + stop, docker run + port, docker SDK run")
        for i in range(rounds):
            dep = new_deployment(client, module_id, tag, deployed)
            starts.append(measure_start(client, watcher, dep))
            stops.append(measure_stop(client, watcher, dep))
            client.call("DELETE", path_of(dep))
            run_s, rm_s = measure_cli(image)
            cli.append(run_s)
            cli_rm.append(rm_s)
            sdk.append(measure_sdk(dclient, image))
            dep = new_deployment(client, ready_module, tag, deployed)
            readies.append(measure_ready(client, watcher, dep))
            measure_stop(client, watcher, dep)
            client.call("DELETE", path_of(dep))
            answers.append(measure_cli_answers(image, probe_http))
        log(f"burst of {burst_n}, then the same burst as bare docker SDK runs")
        burst = run_burst(client, watcher, module_id, burst_n, deployed)
        burst.sdk_total = sdk_burst(image, burst_n)

        stop_note = f" (stop-timeout {args.stop_timeout:g})" if args.stop_timeout is not None else ""
        baselines = {"cli": statistics.median(cli), "sdk": statistics.median(sdk)}
        rows = [
            (f"Dockyard: POST start → STARTED + tcp.80 seen ({watcher.how})", [r.seconds for r in starts],
             True),
            ("docker run -d -p 127.0.0.1::80 + docker port (CLI)", cli, False),
            ("docker SDK containers.run + reload until port", sdk, False),
            (f"Dockyard: POST stop → STOPPED seen{stop_note}", stops, False),
            ("docker rm -f (CLI), reference for the stop", cli_rm, False),
            (f"Dockyard: POST start → ready: true seen (HTTP check; {watcher.how})", readies, False),
            ("docker run + docker port + GET every 5 ms until it answers", answers, False),
        ]
        console.print()
        console.print(report(rows, burst, baselines))
        start_median = statistics.median(r.seconds for r in starts)
        ratio = start_median / baselines["cli"]
        verdict = "[green]meets[/green]" if ratio <= TARGET_RATIO else "[red]misses[/red]"
        console.print(f"Dockyard median start = {ratio:.2f}× the bare `docker run` median: {verdict} the "
                      f"≤ {TARGET_RATIO}× target ({start_median / baselines['sdk']:.2f}× the SDK baseline).")
        ready_ratio = statistics.median(readies) / statistics.median(answers)
        verdict = "[green]meets[/green]" if ready_ratio <= READY_TARGET_RATIO else "[red]misses[/red]"
        console.print(f"Dockyard median start → ready = {ready_ratio:.2f}× `docker run` + polling the port until "
                      f"it answers: {verdict} the ≤ {READY_TARGET_RATIO}× target "
                      f"({ms(statistics.median(readies))} ms vs {ms(statistics.median(answers))} ms).")
        console.print(f"Burst: {burst.started}/{burst.n} STARTED ({burst.with_port} with tcp.80), "
                      f"{burst.stopped}/{burst.n} STOPPED. Server side: first queued → last started "
                      f"{ms(burst.server_span)} ms; a job waits queued → claimed "
                      f"{ms(statistics.median(burst.queue_wait)) if burst.queue_wait else '-'} ms (median), "
                      f"{ms(max(burst.queue_wait)) if burst.queue_wait else '-'} ms (max).")
        console.print()
        console.print(phases_table(starts))
        load_after, cpus = os.getloadavg()[0], os.cpu_count() or 1
        log(f"done in {time.perf_counter() - began:.0f} s; 1-min load average {load_before:.1f} before, "
            f"{load_after:.1f} after, on {cpus} CPUs")
        if load_before > cpus / 2:
            console.print("[yellow]the host was busy with other work: the figures are noisy, run again on a "
                          "quiet host[/yellow]")
        ok = burst.started == burst.n and burst.stopped == burst.n and burst.with_port == burst.n
        if swarm_rounds:
            swarm_rows(swarm_rounds)
        if not ok:
            console.print("[red]not every burst deployment reached STARTED / STOPPED[/red]")
        return 0 if ok else 1
    finally:
        if watcher is not None:
            watcher.close()
        if client is not None:
            client.close()
        try:
            if server is not None:
                stop_server(server)
            cleanup(dclient, deployed)
        finally:
            dclient.close()
            if args.keep_log:
                console.print(f"server log kept in {data_dir}/server.log")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)


def swarm_rows(rounds: int) -> int:
    """The swarm rows (``benchmarks/_swarm.py``), printed as their own table."""
    dclient = docker.from_env()
    try:
        table = SwarmBench(dclient, Client, log, RUN_ID).run(rounds, ADMIN_PASSWORD)
    finally:
        dclient.close()
    console.print()
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
