"""Control-plane benchmark (issue 13): deployments started per second on the simulated engine, writes, reads and
searches, for each way of running Dockyard, with the issue's targets beside each figure.

    python benchmarks/control_plane.py                 # SQLite, PostgreSQL 1 process, PostgreSQL 2 API + 2 workers
    python benchmarks/control_plane.py --quick         # fewer deployments and requests
    python benchmarks/control_plane.py --only sqlite   # one set-up: sqlite | pg | pg-2x2
    python benchmarks/control_plane.py --database postgresql+psycopg://USER:PW@127.0.0.1/postgres
                                                       # that server instead of a durable cluster of our own

PostgreSQL is measured with its default durable settings (fsync, synchronous_commit and full_page_writes on):
without ``--database`` the benchmark starts a throw-away cluster of its own (initdb in a temporary directory,
a free loopback port, as ``scripts/test-postgres.sh`` does but without its fsync=off) and removes it at the end.

For each set-up, every Dockyard process runs with ``DOCKYARD_ENGINE=simulated`` (``drivers/simulated.py``: no
container runs, so Docker is not in the way) and one data dir (the master key and the simulated engine's
state file are shared):

1. ``dockyard serve`` (or ``serve --no-workers --processes 2`` + ``worker`` × 2), a user, an API key, one document;
   100,000 ``infrastructure-service-group`` documents seeded as ``api.py`` seeds them and 100,000
   ``data-record``s as ``data.py`` does; the processes restarted (their start-up ANALYZE), the searches
   checked for the right answers. (The 2 × 2 set-up seeds nothing, and of step 2 measures GET only.)
2. The ceiling (``_ceiling.py``, bare Starlette) and, through the load generator (``_load.py``): GET of one
   document at 1 and 32 clients, edits (PUT of one attribute, of one document and spread over 64) and API-key
   logins at 32 clients, the broad
   search ``tags='tK' and name^='doc-1'`` and the gnss metadata search at 1 client.
3. Deployments: an event stream open on ``state='STARTED'`` deployments, then 32 client threads each
   creating and starting deployments (``POST /api/deployment``, ``POST /api/<id>/start``) of one component with
   a published port, until 1,000 are started; the rate is 1,000 over the time from the first create to the
   1,000th STARTED seen on the stream. Each deployment must reach STARTED exactly once. In the 2 × 2 set-up the
   two API processes share the port (the kernel hands each connection to one of them).

Loopback only; every loop is bounded by a count and a time cap. Exits 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests.support

import sqlalchemy as sa  # noqa: E402
from rich.table import Table  # noqa: E402

import _load  # noqa: E402
import api  # noqa: E402
import data  # noqa: E402
from api import ADMIN_PASSWORD, COOKIE, HOST, call, console, expect, log  # noqa: E402

from tests.support.postgres import durable_postgres  # noqa: E402

# the targets
STARTS_TARGET = 500.0  # starts/s, PostgreSQL
WRITES_TARGET = {"SQLite": 1000.0, "PostgreSQL": 1500.0}  # edits or logins/s at 32 clients
WRITE_P99_TARGET_MS = 50.0
GET_RATIO_TARGET = 0.50
SEARCH_P50_TARGET_MS = 20.0


@dataclass
class Plan:
    deployments: int
    count: dict[int, int]
    seconds: dict[int, float]
    warm: int


FULL = Plan(deployments=1000, count={1: 3000, 32: 12000}, seconds={1: 6.0, 32: 8.0}, warm=200)
QUICK = Plan(deployments=200, count={1: 600, 32: 3000}, seconds={1: 2.0, 32: 2.5}, warm=60)


# -- PostgreSQL with its default durable settings (tests/support/postgres.py) ---------------------------

def pg_settings(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        got = {name: conn.exec_driver_sql(f"SHOW {name}").scalar() for name in
               ("fsync", "synchronous_commit", "full_page_writes")}
    engine.dispose()
    return ", ".join(f"{k}={v}" for k, v in got.items())


# -- the processes ---------------------------------------------------------------------------------------

@dataclass
class Setup:
    key: str
    label: str
    backend: str  # SQLite | PostgreSQL
    api_processes: int
    workers: int  # separate `dockyard worker` processes (0: the one serve runs its own)


SETUPS = {
    "sqlite": Setup("sqlite", "SQLite, 1 process", "SQLite", 1, 0),
    "pg": Setup("pg", "PostgreSQL, 1 process", "PostgreSQL", 1, 0),
    "pg-2x2": Setup("pg-2x2", "PostgreSQL, 2 API + 2 workers", "PostgreSQL", 2, 2),
}


@dataclass
class Running:
    setup: Setup
    data_dir: str
    database_url: str
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return dict(os.environ, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD, DOCKYARD_DATA_DIR=self.data_dir,
                    DOCKYARD_DATABASE_URL=self.database_url, DOCKYARD_LOG_LEVEL="warning",
                    DOCKYARD_ENGINE="simulated", DOCKYARD_STREAM_QUEUE="100000")

    def start(self) -> None:
        split = self.setup.workers > 0
        port = self.ports[0] if self.ports else api.free_port()
        args = ["serve", "--host", HOST, "--port", str(port)] + (["--no-workers"] if split else [])
        if self.setup.api_processes > 1:  # N API processes on the one port, as an operator runs them
            args += ["--processes", str(self.setup.api_processes)]
        proc = self._spawn(args, "serve")
        # a restart over 200,000 seeded documents refreshes the planner's statistics first (ANALYZE)
        api.wait_ready(proc, port, "dockyard serve", os.path.join(self.data_dir, "serve.log"), timeout=300)
        self.ports = [port]
        for i in range(self.setup.workers):
            self._spawn(["worker"], f"worker-{i}")

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        with open(os.path.join(self.data_dir, f"{name}.log"), "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", *args], env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            api.stop(proc)
        self.procs = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


# -- deployments per second ------------------------------------------------------------------------------

class StartedStream:
    """Reads ``GET /api/event-stream`` (deployments whose state is STARTED) on its own thread; records when each
    deployment's move to STARTED was seen."""

    def __init__(self, port: int, cookie: str) -> None:
        self.seen: dict[str, list[float]] = {}
        self.cond = threading.Condition()
        self.sock = socket.create_connection((HOST, port))
        query = "types=deployment&filter=" + quote("state='STARTED'")
        self.sock.sendall((f"GET /api/event-stream?{query} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                           f"Accept: text/event-stream\r\nCookie: {COOKIE}={cookie}\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"event stream: {status!r}")
        self.last: dict[str, str] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self.file:
                line = raw.strip()
                if not line.startswith(b"data:") or not line.endswith(b"}"):
                    continue  # headers, chunk sizes, ids, comments
                doc = json.loads(line[5:])
                now = time.monotonic()
                with self.cond:
                    if doc.get("state") == "STARTED" and self.last.get(doc.get("id")) != "STARTED":
                        self.seen.setdefault(doc["id"], []).append(now)
                    if doc.get("id"):
                        self.last[doc["id"]] = doc.get("state")
                    self.cond.notify_all()

    def wait(self, ids: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not ids <= set(self.seen):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 1.0))
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class Starts:
    count: int
    seconds: float
    latency_ms: list[float]  # start accepted → STARTED seen
    twice: int  # deployments seen moving to STARTED more than once
    missing: int
    errors: list[str]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def measure_starts(run: Running, cookie: str, module_id: str, count: int, clients: int = 32) -> Starts:
    stream = StartedStream(run.ports[0], cookie)
    time.sleep(0.3)  # subscribed before the first start
    accepted: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def client(n: int) -> None:
        port = run.ports[n % len(run.ports)]
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        headers = {"Cookie": f"{COOKIE}={cookie}", "Content-Type": "application/json", "Accept": "application/json"}
        body = json.dumps({"module": {"href": module_id}})
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            try:
                conn.request("POST", "/api/deployment", body=body, headers=headers)
                resp = conn.getresponse()
                made = json.loads(resp.read())
                if resp.status != 201:
                    raise RuntimeError(f"create: {resp.status} {made}")
                conn.request("POST", f"/api/{made['resource-id']}/start", body="{}", headers=headers)
                resp = conn.getresponse()
                answer = resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"start: {resp.status} {answer[:200]!r}")
                with lock:
                    accepted[made["resource-id"]] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 (counted and shown)
                with lock:
                    errors.append(str(exc)[:200])
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stream.wait(set(accepted), timeout=max(120.0, count / 2))
    time.sleep(0.5)  # a second move to STARTED would show now
    stream.close()
    with stream.cond:
        seen = {k: list(v) for k, v in stream.seen.items()}
    done = [seen[d][0] for d in accepted if d in seen]
    end = max(done) if done else time.monotonic()
    return Starts(count=len(done), seconds=end - t0,
                  latency_ms=[(seen[d][0] - accepted[d]) * 1000 for d in accepted if d in seen],
                  twice=sum(1 for d in accepted if len(seen.get(d, [])) > 1),
                  missing=sum(1 for d in accepted if d not in seen), errors=errors)


def simulated_module(port: int, cookie: str) -> str:
    project = f"bench{uuid.uuid4().hex[:8]}"
    status, body, _ = call(port, "POST", "/api/module", {"path": project, "subtype": "project", "name": project},
                           cookie)
    expect(status, 201, body, "create project")
    status, body, _ = call(port, "POST", "/api/module", {
        "path": f"{project}/app", "subtype": "component", "name": "app",
        "content": {"image": {"image-name": "simulated-app", "tag": "1"}, "author": "bench",
                    "architectures": ["amd64"], "ports": [{"target-port": 80}], "readiness": {"tcp": False}}},
        cookie)
    expect(status, 201, body, "create component")
    return body["resource-id"]


# -- requests per second ---------------------------------------------------------------------------------

@dataclass
class Row:
    key: str
    label: str
    clients: int
    result: _load.Result
    status: int

    @property
    def failed(self) -> int:
        return self.result.count - self.result.statuses.get(self.status, 0) + len(self.result.errors)


def measure_requests(runner: _load.Runner, plan: Plan, run: Running, fx: api.Fixture, user: data.User,
                     ceiling_port: int) -> list[Row]:
    port = run.ports[0]
    base = {r.key: r for r in api.rows(fx, 0, ceiling_port, 0)}
    form = data.search_form(data.BROAD, 20)
    gnss = _load.request_bytes("PUT", f"/api/{data.TYPE}", port, cookie=f"{COOKIE}={user.cookie}",
                               body=form.encode(), content_type="application/x-www-form-urlencoded")
    base["edit-spread"] = api.Row("edit-spread", "", port, spread_edits(fx), 200)
    wanted = [("ceiling", "ceiling: bare Starlette GET", (1, 32)), ("get", "GET one document", (1, 32)),
              ("edit", "edit one attribute (PUT), one document", (32,)),
              ("edit-spread", "edit one attribute (PUT), 64 documents", (32,)), ("login", "API-key login", (32,)),
              ("search-broad", "search tags='tK' and name^='doc-1' (~1.1k matches)", (1,))]
    out = run_rows(runner, plan, base, wanted)
    runner.run(HOST, port, [gnss], 2, 20, 1.0)
    result = runner.run(HOST, port, [gnss], 1, plan.count[1] // 4, plan.seconds[1])
    out.append(Row("gnss", "search gnss:mission='M7' and timestamp>X, last=20", 1, result, 200))
    log(f"  gnss          c=1   {result.rps:8.0f} req/s  p50 {result.percentile_ms(50):7.2f} ms")
    return out


def run_rows(runner: _load.Runner, plan: Plan, base: dict[str, api.Row],
             wanted: list[tuple[str, str, tuple[int, ...]]]) -> list[Row]:
    out = []
    for key, label, clients in wanted:
        row = base[key]
        runner.run(HOST, row.port, row.requests, 4, plan.warm, 1.0)
        for c in clients:
            result = runner.run(HOST, row.port, row.requests, c, plan.count[c], plan.seconds[c])
            out.append(Row(key, label, c, result, row.status))
            log(f"  {key:<13} c={c:<3} {result.rps:8.0f} req/s  p50 {result.percentile_ms(50):7.2f} ms  "
                f"p99 {result.percentile_ms(99):7.2f} ms  n={result.count}")
    return out


def spread_edits(fx: api.Fixture) -> list[bytes]:
    """One edit of each of 64 documents of the user's: as deployments' containers each writing their own
    parameters would, rather than 32 clients queueing on one document's row lock."""
    edits = []
    for i in range(64):
        status, body, _ = call(fx.port, "POST", f"/api/{api.TYPE}", {"name": f"spread-{i}"}, fx.cookie)
        expect(status, 201, body, f"create {api.TYPE}")
        edits.append(_load.request_bytes("PUT", f"/api/{body['resource-id']}", fx.port,
                                         cookie=f"{COOKIE}={fx.cookie}", content_type="application/json",
                                         body=json.dumps({"description": f"edited {i}"}).encode()))
    return edits


def measure_processes(runner: _load.Runner, plan: Plan, fx: api.Fixture, ceiling_port: int) -> list[Row]:
    """The 2 × 2 set-up (2 API processes on one port): GET of one document at 1 and 32 clients beside the
    ceiling, and the writes at 32 clients, which two processes commit side by side."""
    base = {r.key: r for r in api.rows(fx, 0, ceiling_port, 0)}
    base["edit-spread"] = api.Row("edit-spread", "", fx.port, spread_edits(fx), 200)
    return run_rows(runner, plan, base, [("ceiling", "ceiling: bare Starlette GET", (1, 32)),
                                         ("get", "GET one document", (1, 32)),
                                         ("edit", "edit one attribute (PUT), one document", (32,)),
                                         ("edit-spread", "edit one attribute (PUT), 64 documents", (32,)),
                                         ("login", "API-key login", (32,))])


# -- one set-up ------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    setup: Setup
    rows: list[Row]
    starts: Starts | None
    note: str = ""


def run_setup(setup: Setup, plan: Plan, documents: int, pg_admin: str | None, runner: _load.Runner) -> Outcome:
    tmp = tempfile.mkdtemp(prefix=f"dockyard-cp-{setup.key}-")
    pg = None
    run = None
    ceiling = None
    try:
        if setup.backend == "PostgreSQL":
            assert pg_admin
            pg = api.PgDatabase(pg_admin)
            url = pg.__enter__()
        else:
            url = f"sqlite:///{os.path.join(tmp, 'dockyard.db')}"
        run = Running(setup, tmp, url)
        run.start()
        port = run.ports[0]
        log(f"[bold]{setup.label}[/bold]: API on {run.ports}, pids {run.pids}")
        fx = api.set_up(port)
        rows: list[Row] = []
        if not setup.workers:  # the 2 × 2 set-up measures GET, writes and deployments (see the end of the table)
            user = data.new_user(port)
            data.register_prefixes(port, user)
            made = data.add_via_api(port, user, data.Corpus(documents))
            corpus = data.Corpus(documents)
            seconds = api.seed(url, fx.user_id, documents) + data.seed(url, corpus, user.id, made[0])
            log(f"  seeded {documents:,} documents and {documents:,} data-records in {seconds:.0f} s; restarting")
            run.stop()
            run.start()
            api.check_searches(fx, documents)
            data.check_searches(port, user, corpus)
            status, doc, _ = call(port, "GET", f"/api/{fx.doc_id}", cookie=fx.cookie)
            expect(status, 200, doc, "GET the document")
            ceiling, ceiling_port = api.start_ceiling(tmp, doc)
            rows = measure_requests(runner, plan, run, fx, user, ceiling_port)
            api.stop(ceiling)
            ceiling = None
        else:  # GET and writes through the API processes sharing the port (unseeded)
            status, doc, _ = call(port, "GET", f"/api/{fx.doc_id}", cookie=fx.cookie)
            expect(status, 200, doc, "GET the document")
            ceiling, ceiling_port = api.start_ceiling(tmp, doc)
            rows = measure_processes(runner, plan, fx, ceiling_port)
            api.stop(ceiling)
            ceiling = None
        module_id = simulated_module(port, fx.cookie)
        starts = measure_starts(run, fx.cookie, module_id, plan.deployments)
        log(f"  {starts.count} deployments STARTED in {starts.seconds:.1f} s: {starts.rate:.1f}/s, "
            f"{starts.missing} missing, {starts.twice} twice, {len(starts.errors)} errors {starts.errors[:2]}")
        return Outcome(setup, rows, starts)
    except Exception as exc:  # noqa: BLE001 (one set-up failing still leaves the others' figures)
        log(f"[red]{setup.label} failed: {exc}[/red] (logs kept in {tmp})")
        tmp = ""  # kept for its logs
        return Outcome(setup, [], None, note=str(exc)[:200])
    finally:
        api.stop(ceiling)
        if run is not None:
            run.stop()
        if pg is not None:
            pg.__exit__(None, None, None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# -- the table -------------------------------------------------------------------------------------------

def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("[green]met[/green]" if ok else "[red]missed[/red]")


def report(outcomes: list[Outcome], documents: int, plan: Plan, pg_note: str) -> Table:
    table = Table(title=f"Dockyard control plane, simulated engine, {documents:,} documents + {documents:,} "
                        f"data-records ({os.cpu_count()} CPUs){pg_note}")
    for name, justify in (("set-up", "left"), ("figure", "left"), ("clients", "right"), ("rate", "right"),
                          ("p50 ms", "right"), ("p99 ms", "right"), ("of ceiling", "right"), ("target", "left"),
                          ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for out in outcomes:
        first = True

        def add(*cells: str, end: bool = False) -> None:
            nonlocal first
            table.add_row(out.setup.label if first else "", *cells, end_section=end)
            first = False

        if out.starts is None and not out.rows:
            add("failed", "", "", "", "", "", "", out.note, end=True)
            continue
        ceiling = {r.clients: r.result.rps for r in out.rows if r.key == "ceiling"}
        for r in out.rows:
            p50, p99 = r.result.percentile_ms(50), r.result.percentile_ms(99)
            ratio = r.result.rps / ceiling[r.clients] if r.key == "get" and ceiling.get(r.clients) else None
            target, ok = "", None
            if r.key == "get" and (r.clients == 1 or out.setup.api_processes > 1):  # 32 clients: with 2 API processes
                target = f"≥ {GET_RATIO_TARGET:.0%} of ceiling"
                ok = ratio is not None and ratio >= GET_RATIO_TARGET
            elif r.key in ("edit", "edit-spread", "login"):
                want = WRITES_TARGET[out.setup.backend]
                target = f"≥ {want:,.0f}/s, p99 ≤ {WRITE_P99_TARGET_MS:.0f} ms"
                ok = r.result.rps >= want and p99 <= WRITE_P99_TARGET_MS
            elif r.key in ("search-broad", "gnss"):
                target, ok = f"p50 ≤ {SEARCH_P50_TARGET_MS:.0f} ms", p50 <= SEARCH_P50_TARGET_MS
            note = verdict(ok) + (f" [red]{r.failed} failed[/red]" if r.failed else "")
            add(r.label, str(r.clients), f"{r.result.rps:,.0f}/s", f"{p50:.2f}", f"{p99:.2f}",
                "—" if r.key == "ceiling" or ratio is None else f"{ratio:.0%}", target, note)
        s = out.starts
        if s is not None:
            lat = sorted(s.latency_ms)
            p50 = statistics.median(lat) if lat else float("nan")
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
            target = f"≥ {STARTS_TARGET:.0f}/s" + (" (on PostgreSQL)" if out.setup.backend == "PostgreSQL" else
                                                   " (set for PostgreSQL)")
            ok = s.rate >= STARTS_TARGET if out.setup.backend == "PostgreSQL" else None
            bad = s.missing + s.twice + len(s.errors)
            note = verdict(ok) + (f" [red]{s.missing} missing, {s.twice} twice, {len(s.errors)} errors[/red]"
                                  if bad else "")
            add(f"deployments started (create + start → STARTED on the stream), {s.count:,}", "32",
                f"{s.rate:,.1f}/s", f"{p50:.0f}", f"{p99:.0f}", "—", target, note)
        table.add_section()
    return table


# -- main ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 deployments and fewer requests per row")
    parser.add_argument("--only", choices=sorted(SETUPS), action="append", help="only this set-up (repeatable)")
    parser.add_argument("--database", metavar="URL", help="a PostgreSQL server URL (its database postgres) to use "
                        "instead of a durable throw-away cluster of our own; the benchmark creates and drops its "
                        "databases there")
    parser.add_argument("--documents", type=int, default=100_000, help="documents and data-records to seed [100000]")
    parser.add_argument("--deployments", type=int, help="deployments to start [1000; 200 with --quick]")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.deployments:
        plan = Plan(args.deployments, plan.count, plan.seconds, plan.warm)
    chosen = [SETUPS[k] for k in (args.only or ["sqlite", "pg", "pg-2x2"])]
    started = time.monotonic()
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"[yellow]load average {load:.1f} before the run: other processes share the CPUs[/yellow]")
    runner = _load.Runner()
    outcomes = []
    pg_note = ""
    with contextlib.ExitStack() as stack:
        pg_admin = None
        if any(s.backend == "PostgreSQL" for s in chosen):
            pg_admin = args.database or stack.enter_context(durable_postgres())
            pg_note = f"; PostgreSQL {pg_settings(pg_admin)}"
            log(f"PostgreSQL: {pg_settings(pg_admin)}")
        try:
            for setup in chosen:
                outcomes.append(run_setup(setup, plan, args.documents, pg_admin, runner))
        finally:
            runner.close()
    console.print()
    console.print(report(outcomes, args.documents, plan, pg_note))
    console.print(f"[dim]Total time {time.monotonic() - started:.0f} s. Writes are measured at 32 clients, "
                  "searches at 1; the 2 API + 2 workers set-up (`serve --no-workers --processes 2` and 2 "
                  "`dockyard worker`) measures GET, writes and deployments on an unseeded store.[/dim]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
