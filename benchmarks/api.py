"""API benchmark: throughput and latency of Dockyard's hot paths against a bare-Starlette ceiling.

    python benchmarks/api.py            # SQLite, about 3-4 minutes
    python benchmarks/api.py --quick    # fewer requests, about 1 minute
    python benchmarks/api.py --database postgresql+psycopg://USER:PW@127.0.0.1/DB
                                        # PostgreSQL: creates and drops its own database on that server

It starts ``dockyard serve`` (a subprocess on a free loopback port, temporary data dir), creates a user
through the admin, logs in, creates an API key and one ``infrastructure-service-group`` document through
the API, then seeds 100,000 more documents of that type owned by the user straight into the store (the
same ``Tx.insert`` the API uses, documents shaped as ``crud.insert`` shapes them). It also starts the
ceiling server (``_ceiling.py``: the same stack answering the same document from memory). Then, at 1 and
32 concurrent keep-alive connections, the load generator (``_load.py``, in its own process) measures each
row. See README.md for what each row means.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import _load  # noqa: E402
from dockyard.core import acl as acls  # noqa: E402
from dockyard.core import ids  # noqa: E402
from dockyard.core.time import now_ts  # noqa: E402
from dockyard.resources import crud  # noqa: E402
from dockyard.resources.registry import all_types  # noqa: E402
from dockyard.store.attrs import flatten  # noqa: E402
from dockyard.store.db import Store  # noqa: E402

HOST = "127.0.0.1"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # as store.db
TYPE = "infrastructure-service-group"
COOKIE = "com.sixsq.nuvla.cookie"
ADMIN_PASSWORD = "bench-admin-" + uuid.uuid4().hex[:12]
HERE = os.path.dirname(os.path.abspath(__file__))
CONCURRENCY = (1, 32)

# targets (see README.md)
GET_RATIO_TARGET = 0.40
SEARCH_P50_TARGET_MS = 20.0
LOGIN_P50_TARGET_MS = 5.0

console = Console(width=None if sys.stdout.isatty() else 150)


def log(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


# -- processes ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, port: int, what: str, logfile: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {logfile}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=1)
            conn.request("GET", "/api/cloud-entry-point")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s; see {logfile}")


def start_dockyard(data_dir: str, database_url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD, DOCKYARD_DATA_DIR=data_dir,
               DOCKYARD_DATABASE_URL=database_url, DOCKYARD_LOG_LEVEL="warning")
    logfile = os.path.join(data_dir, "server.log")
    with open(logfile, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", "serve", "--host", HOST,
                                 "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_ready(proc, port, "dockyard serve", logfile)
    return proc, port


def start_ceiling(data_dir: str, doc: dict[str, Any]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    path = os.path.join(data_dir, "ceiling-doc.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    logfile = os.path.join(data_dir, "ceiling.log")
    with open(logfile, "ab") as out:
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_ceiling.py"), str(port), path],
                                stdout=out, stderr=subprocess.STDOUT)
    wait_ready(proc, port, "ceiling server", logfile)
    return proc, port


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# -- set-up through the API --------------------------------------------------------------------------

def call(port: int, method: str, path: str, body: Any = None, cookie: str | None = None,
         ) -> tuple[int, dict[str, Any], str | None]:
    """One request; returns (status, JSON body, session cookie value set by the answer or None)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    set_cookie = None
    for header in resp.headers.get_all("set-cookie") or []:
        if header.startswith(COOKIE + "="):
            set_cookie = header.split(";", 1)[0].split("=", 1)[1]
    conn.close()
    return resp.status, (json.loads(raw) if raw else {}), set_cookie


def expect(status: int, wanted: int, body: dict[str, Any], what: str) -> None:
    if status != wanted:
        raise RuntimeError(f"{what}: HTTP {status}, expected {wanted}: {body}")


def login_password(port: int, username: str, password: str) -> str:
    status, body, cookie = call(port, "POST", "/api/session", {"template": {
        "href": "session-template/password", "username": username, "password": password}})
    expect(status, 201, body, f"login as {username}")
    assert cookie
    return cookie


@dataclass
class Fixture:
    port: int
    user_id: str
    cookie: str  # the user's session cookie value
    key: str
    secret: str
    doc_id: str  # the document GET and PUT use
    username: str
    password: str


def set_up(port: int) -> Fixture:
    admin = login_password(port, "admin", ADMIN_PASSWORD)
    username = "bench-" + uuid.uuid4().hex[:8]
    password = "pw-" + uuid.uuid4().hex
    status, body, _ = call(port, "POST", "/api/user", {"template": {
        "href": "user-template/username-password", "username": username, "password": password}}, admin)
    expect(status, 201, body, "create user")
    user_id = body["resource-id"]
    cookie = login_password(port, username, password)
    status, body, _ = call(port, "POST", "/api/credential", {
        "template": {"href": "credential-template/generate-api-key", "ttl": 0}, "name": "bench key"}, cookie)
    expect(status, 201, body, "create API key")
    key, secret = body["resource-id"], body["secret-key"]
    status, body, _ = call(port, "POST", f"/api/{TYPE}",
                           {"name": "bench-doc", "description": "the document GET and PUT use",
                            "tags": ["bench", "t-fixed"]}, cookie)
    expect(status, 201, body, f"create {TYPE}")
    return Fixture(port, user_id, cookie, key, secret, body["resource-id"], username, password)


# -- seeding straight into the store -----------------------------------------------------------------

def seed(database_url: str, user_id: str, count: int, batch: int = 10_000) -> float:
    """Insert ``count`` documents as the API stores them, owned by ``user_id``; returns the seconds taken.

    Document 0 goes through ``Tx.insert`` itself (after the API's own validation, which must leave it
    unchanged). The rest are written with the very rows ``Tx.insert`` writes (``doc`` as the same compact
    JSON, one ``attrs`` row per ``flatten`` leaf) but one ``executemany`` (SQLite) or ``COPY`` (PostgreSQL)
    per batch instead of two statements per document, and with the two tables' secondary indexes dropped during the load and re-created after
    from their own stored definitions: index maintenance of ~1.9 million random-order ``attrs`` rows is
    what makes a document-by-document load take minutes.
    """
    rtype = all_types()[TYPE]
    exclude = rtype.schema.unindexed
    acl = acls.normalise({"owners": [user_id]})
    store = Store(database_url, pool_size=1)
    if store.dialect == "sqlite":
        @sa.event.listens_for(store.engine, "connect")
        def _big_cache(dbapi_conn: Any, _record: Any) -> None:  # this loading connection only
            dbapi_conn.execute("PRAGMA cache_size=-262144")  # 256 MiB
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")  # a crash mid-seed only loses the benchmark

    def make(i: int) -> dict[str, Any]:
        ts = now_ts()
        return {"name": f"doc-{i}", "description": f"seeded document {i}", "tags": [f"t{i % 10}", f"g{i % 97}"],
                "id": ids.new_id(TYPE), "resource-type": TYPE, "created": ts, "updated": ts,
                "created-by": user_id, "acl": acl}

    t0 = time.perf_counter()
    try:
        with store.write() as tx:
            first = make(0)
            checked = crud.validate(rtype, dict(first))
            if checked != first:
                raise RuntimeError(f"a seeded document differs from its validated form: {checked}")
            tx.insert(first, exclude=exclude)
        indexes = _drop_indexes(store)
        try:
            for start in range(1, count, batch):
                docs, rows = [], []
                for i in range(start, min(start + batch, count)):
                    add_rows(docs, rows, make(i), exclude)
                write_rows(store, docs, rows)
        finally:
            _create_indexes(store, indexes)
        settle(store)
    finally:
        store.close()
    return time.perf_counter() - t0


def add_rows(docs: list[tuple[Any, ...]], rows: list[tuple[Any, ...]], doc: dict[str, Any],
             exclude: Any) -> None:
    """Append the rows ``Tx.insert`` writes for ``doc``: its ``resources`` row and one ``attrs`` row per leaf."""
    rid, rtype = doc["id"], doc["resource-type"]
    docs.append((rid, rtype, doc["created"], doc["updated"], _dumps(doc)))
    rows.extend((rid, rtype, p, k, s_, n) for p, k, s_, n in flatten(doc, exclude))


def write_rows(store: Store, docs: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> None:
    """One batch in one transaction: ``COPY`` on PostgreSQL (several times faster than executemany over a
    socket), ``executemany`` with positional parameters on SQLite (SQLAlchemy's per-row parameter
    processing would double the load time). Each document gets the next integer key (as its insert would:
    SQLite's rowid, PostgreSQL's identity, moved past them) and its ``attrs`` rows carry it."""
    with store.write() as tx:
        base = tx.conn.exec_driver_sql("SELECT coalesce(max(key), 0) FROM resources").scalar_one()
        keys = {record[0]: base + 1 + i for i, record in enumerate(docs)}
        keyed_docs = [(keys[record[0]], *record) for record in docs]
        keyed_rows = [(keys[record[0]], *record[1:]) for record in rows]
        if store.dialect == "postgresql":
            with tx.conn.connection.driver_connection.cursor() as cur:
                with cur.copy("COPY resources (key, id, type, created, updated, doc) FROM STDIN") as copy:
                    for record in keyed_docs:
                        copy.write_row(record)
                with cur.copy("COPY attrs (key, type, path, k, s, n) FROM STDIN") as copy:
                    for record in keyed_rows:
                        copy.write_row(record)
            tx.conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('resources', 'key'), "
                                    "(SELECT max(key) FROM resources))")
        else:
            tx.conn.exec_driver_sql(
                "INSERT INTO resources (key, id, type, created, updated, doc) VALUES (?, ?, ?, ?, ?, ?)", keyed_docs)
            tx.conn.exec_driver_sql("INSERT INTO attrs (key, type, path, k, s, n) VALUES (?, ?, ?, ?, ?, ?)",
                                    keyed_rows)


def settle(store: Store) -> None:
    """PostgreSQL: what autovacuum does soon after a load this size (statistics, visibility map). SQLite:
    nothing here (the server refreshes its statistics when it starts)."""
    if store.dialect != "postgresql":
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE resources")
        conn.exec_driver_sql("VACUUM ANALYZE attrs")


def _drop_indexes(store: Store) -> list[tuple[str, str]]:
    """Drop the secondary indexes of ``resources`` and ``attrs``; returns (name, CREATE statement) pairs."""
    with store.write() as tx:
        if store.dialect == "sqlite":
            found = tx.conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('resources', 'attrs') "
                "AND sql IS NOT NULL").all()
        else:
            found = tx.conn.exec_driver_sql(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
                "AND i.tablename IN ('resources', 'attrs') AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                "WHERE c.conname = i.indexname)").all()
        for name, _ in found:
            tx.conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [(name, sql) for name, sql in found]


def _create_indexes(store: Store, indexes: list[tuple[str, str]]) -> None:
    with store.write() as tx:
        for _, sql in indexes:
            tx.conn.exec_driver_sql(sql)


# -- PostgreSQL: our own database for the run --------------------------------------------------------

class PgDatabase:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"dockyard_bench_{uuid.uuid4().hex[:10]}"
        self.url = ""

    def __enter__(self) -> str:
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        engine.dispose()
        self.url = sa.engine.make_url(self.admin_url).set(database=self.name).render_as_string(
            hide_password=False)
        return self.url

    def __exit__(self, *exc: Any) -> None:
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        engine.dispose()


# -- the rows ----------------------------------------------------------------------------------------

@dataclass
class Row:
    key: str
    label: str
    port: int
    requests: list[bytes]
    status: int  # the status every answer must have
    pid: int = 0  # the server process, whose CPU use is reported


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass
class Measured:
    row: Row
    result: _load.Result
    server_cpu: float  # the server's CPU use during the run, as a fraction of one core


def rows(fx: Fixture, server_pid: int, ceiling_port: int, ceiling_pid: int) -> list[Row]:
    port = fx.port
    cookie = f"{COOKIE}={fx.cookie}"
    item = f"/api/{fx.doc_id}"
    get = _load.request_bytes("GET", item, port, cookie=cookie)
    edits = [_load.request_bytes("PUT", item, port, cookie=cookie, content_type="application/json",
                                 body=json.dumps({"description": f"edited {i}"}).encode())
             for i in range(64)]

    def search(form: str) -> bytes:
        return _load.request_bytes("PUT", f"/api/{TYPE}", port, cookie=cookie, body=form.encode(),
                                   content_type="application/x-www-form-urlencoded")

    selective = [search("filter=" + quote(f"name='doc-{n}'")) for n in range(12345, 12345 + 64)]
    broad = [search("filter=" + quote(f"tags='t{t}' and name^='doc-1'") + "&last=10") for t in range(10)]
    login = _load.request_bytes("POST", "/api/session", port, content_type="application/json", body=json.dumps(
        {"template": {"href": "session-template/api-key", "key": fx.key, "secret": fx.secret}}).encode())
    ceiling = _load.request_bytes("GET", item, ceiling_port, cookie=cookie)
    return [
        Row("ceiling", "ceiling: bare Starlette GET, same doc from memory", ceiling_port, [ceiling], 200,
            ceiling_pid),
        Row("get", "GET one document (cookie)", port, [get], 200, server_pid),
        Row("edit", "PUT edit one attribute", port, edits, 200, server_pid),
        Row("search-1", "search name='doc-N' (1 match)", port, selective, 200, server_pid),
        Row("search-broad", "search tags='tK' and name^='doc-1', last=10 (~1.1k matches)", port, broad, 200,
            server_pid),
        Row("login", "API-key login (POST /api/session)", port, [login], 201, server_pid),
    ]


def check_searches(fx: Fixture, seeded: int) -> None:
    """The searches find what they should, so that a fast wrong answer cannot pass for a fast search."""
    def count(form: str) -> int:
        conn = http.client.HTTPConnection(HOST, fx.port, timeout=60)
        conn.request("PUT", f"/api/{TYPE}", body=form, headers={
            "Cookie": f"{COOKIE}={fx.cookie}", "Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        expect(resp.status, 200, body, "search")
        return body["count"]

    n = 12345 if seeded > 12345 else seeded - 1
    got = count("filter=" + quote(f"name='doc-{n}'"))
    if got != 1:
        raise RuntimeError(f"selective search found {got} documents, expected 1")
    want = sum(1 for i in range(seeded) if i % 10 == 7 and str(i).startswith("1"))
    got = count("filter=" + quote("tags='t7' and name^='doc-1'") + "&last=10")
    if got != want:
        raise RuntimeError(f"broad search found {got} documents, expected {want}")


@dataclass
class Plan:
    warm_count: int
    warm_seconds: float
    count: dict[int, int]  # per concurrency: requests in total
    seconds: dict[int, float]  # per concurrency: time cap


FULL = Plan(warm_count=300, warm_seconds=1.5, count={1: 4000, 32: 16000}, seconds={1: 8.0, 32: 10.0})
QUICK = Plan(warm_count=100, warm_seconds=0.5, count={1: 600, 32: 3200}, seconds={1: 2.0, 32: 2.5})


def measure(runner: _load.Runner, plan: Plan, all_rows: list[Row]) -> dict[tuple[str, int], Measured]:
    out: dict[tuple[str, int], Measured] = {}
    for row in all_rows:
        runner.run(HOST, row.port, row.requests, 4, plan.warm_count, plan.warm_seconds)  # warm-up
        for c in CONCURRENCY:
            cpu0 = cpu_seconds(row.pid)
            result = runner.run(HOST, row.port, row.requests, c, plan.count[c], plan.seconds[c])
            # the client's elapsed time brackets the server's work closely enough for a utilisation figure
            server_cpu = (cpu_seconds(row.pid) - cpu0) / result.elapsed_s if result.elapsed_s else 0.0
            out[(row.key, c)] = Measured(row, result, server_cpu)
            bad = result.count - result.statuses.get(row.status, 0)
            log(f"{row.key:<13} c={c:<3} {result.rps:9.0f} req/s  p50 {result.percentile_ms(50):7.2f} ms  "
                f"p99 {result.percentile_ms(99):7.2f} ms  n={result.count:<6} "
                f"CPU server {server_cpu:4.0%} client {result.client_cpu:4.0%}"
                + (f"  [red]{bad} unexpected statuses {result.statuses}[/red]" if bad else "")
                + (f"  [red]errors: {result.errors[:3]}[/red]" if result.errors else ""))
    return out


# -- the table ---------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def report(results: dict[tuple[str, int], Measured], backend: str, seeded: int) -> Table:
    table = Table(title=f"Dockyard API on {backend}, {seeded:,} seeded {TYPE} documents "
                        f"({os.cpu_count()} CPUs, keep-alive HTTP/1.1 clients)")
    table.add_column("row")
    table.add_column("clients", justify="right")
    table.add_column("req/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("of ceiling", justify="right")
    table.add_column("CPU srv/cli", justify="right")
    table.add_column("target (1 client for latency)")
    table.add_column("", justify="left")
    keys = list(dict.fromkeys(k for k, _ in results))
    for key in keys:
        for c in CONCURRENCY:
            m = results[(key, c)]
            r = m.result
            ceiling = results[("ceiling", c)].result.rps
            ratio = r.rps / ceiling if ceiling else float("nan")
            target, ok = "", None
            p50 = r.percentile_ms(50)
            if key == "get":
                target, ok = f"≥ {GET_RATIO_TARGET:.0%} of ceiling", ratio >= GET_RATIO_TARGET
            elif key.startswith("search") and c == 1:
                target = f"p50 ≤ {SEARCH_P50_TARGET_MS:.0f} ms"
                if backend == "SQLite":
                    ok = p50 <= SEARCH_P50_TARGET_MS
                else:
                    target += " (set for SQLite)"
            elif key == "login" and c == 1:
                target, ok = f"p50 ≤ {LOGIN_P50_TARGET_MS:.0f} ms", p50 <= LOGIN_P50_TARGET_MS
            bad = r.count - r.statuses.get(m.row.status, 0) + len(r.errors)
            note = verdict(ok) if ok is not None else ""
            if bad:
                note += f" [red]{bad} failed[/red]"
            table.add_row(m.row.label if c == CONCURRENCY[0] else "", str(c), f"{r.rps:,.0f}", f"{p50:.2f}",
                          f"{r.percentile_ms(99):.2f}", "—" if key == "ceiling" else f"{ratio:.0%}",
                          f"{m.server_cpu:.0%} / {r.client_cpu:.0%}", target, note, end_section=c == CONCURRENCY[-1])
    return table


# -- main --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per row (about 1 minute)")
    parser.add_argument("--database", metavar="URL",
                        help="a PostgreSQL server URL (postgresql+psycopg://...); the benchmark creates and "
                             "drops its own database there. Default: SQLite in a temporary directory.")
    parser.add_argument("--documents", type=int, default=100_000, help="documents to seed [100000]")
    args = parser.parse_args(argv)
    if args.documents < 20_000:
        parser.error("--documents must be at least 20000 (the searches look for doc-12345 and doc-1*)")
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="dockyard-bench-")
    server = ceiling = None
    runner: _load.Runner | None = None
    pg: PgDatabase | None = None
    try:
        if args.database:
            if sa.engine.make_url(args.database).get_backend_name() != "postgresql":
                parser.error("--database must be a PostgreSQL URL")
            pg = PgDatabase(args.database)
            database_url = pg.__enter__()
            backend = "PostgreSQL"
        else:
            database_url = f"sqlite:///{os.path.join(tmp, 'dockyard.db')}"
            backend = "SQLite"
        load = os.getloadavg()[0]
        if load > 0.5:
            log(f"[yellow]load average {load:.1f} before the run: other processes share the CPUs, "
                "so the figures will be lower and noisier[/yellow]")
        runner = _load.Runner()  # spawn the client process early, while nothing else runs
        server, port = start_dockyard(tmp, database_url)
        log(f"dockyard serve (pid {server.pid}) on {HOST}:{port}, {backend}")
        fx = set_up(port)
        log(f"user {fx.user_id}, API key {fx.key}, document {fx.doc_id}")
        seconds = seed(database_url, fx.user_id, args.documents)
        log(f"seeded {args.documents:,} documents in {seconds:.1f} s")
        check_searches(fx, args.documents)
        status, doc, _ = call(port, "GET", f"/api/{fx.doc_id}", cookie=fx.cookie)
        expect(status, 200, doc, "GET the document")
        ceiling, ceiling_port = start_ceiling(tmp, doc)
        log(f"ceiling server (pid {ceiling.pid}) on {HOST}:{ceiling_port}")
        results = measure(runner, plan, rows(fx, server.pid, ceiling_port, ceiling.pid))
        console.print()
        console.print(report(results, backend, args.documents))
        ceiling_rps = max(results[("ceiling", c)].result.rps for c in CONCURRENCY)
        if ceiling_rps < 3000:
            console.print(f"[yellow]The ceiling is only {ceiling_rps:,.0f} req/s: the machine is busy or the "
                          "client is the bottleneck; treat the ratios with care.[/yellow]")
        console.print(f"[dim]Total time {time.monotonic() - started:.0f} s. Latency targets are judged at 1 "
                      "client; at 32 clients p50 includes queueing (≈ 32 / throughput).[/dim]")
        return 0
    finally:
        if runner is not None:
            runner.close()
        stop(ceiling)
        stop(server)
        if pg is not None:
            pg.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
