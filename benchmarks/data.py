"""Data benchmark: metadata search over 100,000 data-records, and object bytes through the embedded store.

    python benchmarks/data.py            # SQLite, and PostgreSQL too when the test server answers; ~2 minutes
    python benchmarks/data.py --quick    # fewer requests, a 20 MB object; ~1 1/4 minutes (seeding dominates)
    python benchmarks/data.py --database postgresql+psycopg://USER:PW@127.0.0.1/DB
                                         # that PostgreSQL server (own database created and dropped there)
    python benchmarks/data.py --no-postgresql          # SQLite only

1. Search. For each database: ``dockyard serve`` (subprocess, loopback, temporary data dir), a user made
   through the admin, the key prefixes ``data`` and ``gnss`` registered through the API, the first records
   added through the API (``POST /api/data-record``) and the rest of the 100,000 seeded straight into the
   store as the API stores them (each through ``crud.validate``, the same rows as ``Tx.insert``; bulk
   inserts with the secondary indexes dropped, as ``api.py`` does), then the server restarted (its start-up
   ``ANALYZE`` gives SQLite's planner statistics of the loaded tables). Then ``PUT /api/data-record`` with
   ``filter=gnss:mission='M7' and timestamp>'2026-06-01T00:00:00Z'&last=20`` and with
   ``filter=data:object='obj-N'``, at 1 and 8 keep-alive clients (``_load.py``).
2. Objects. On the SQLite server: create a ``data-object`` on ``credential/local-storage`` (the body the
   real client's ``DataObjectS3`` sends), ``upload`` action, a streamed ``PUT`` of a 100 MB file to the
   pre-signed URL, ``ready``, ``download`` action, a streamed ``GET`` into a file; beside
   ``shutil.copyfile``, ``cp`` and ``copyfile`` + ``fsync`` of the same file on the same disk, interleaved
   in the same run.

See README.md ("Data benchmark") for what each row means and the figures measured.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa  # noqa: E402
from rich.table import Table  # noqa: E402

import _load  # noqa: E402
from api import (  # noqa: E402
    ADMIN_PASSWORD, COOKIE, HOST, PgDatabase, _create_indexes, _drop_indexes, add_rows, call, console,
    cpu_seconds, expect, log, login_password, settle, start_dockyard, stop, write_rows,
)
from dockyard.core import ids  # noqa: E402
from dockyard.core.time import now_ts  # noqa: E402
from dockyard.resources import crud  # noqa: E402
from dockyard.resources.registry import all_types  # noqa: E402
from dockyard.store.db import Store  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://dockyard:dockyard@127.0.0.1/dockyard_test"
TYPE = "data-record"
LOCAL_STORAGE = "infrastructure-service/local-storage"
LOCAL_CRED = "credential/local-storage"
MISSIONS = 20
MISSION = "M7"
SINCE = "2026-06-01T00:00:00Z"  # the search's bound; records are spread over 2026
SINCE_STORED = "2026-06-01T00:00:00.000Z"  # the same instant in the form records store
YEAR_START = 1767225600  # 2026-01-01T00:00:00Z
YEAR_MS = 365 * 24 * 3600 * 1000
BUCKETS = 8
SELECTIVE_FROM = 12345  # data:object='obj-12345', 'obj-12346', ...
VIA_API = 10  # records added through POST /api/data-record before the bulk seed
SEARCH_P50_TARGET_MS = 20.0
MB = 1_000_000  # MB and MB/s are decimal: 100 MB = 100,000,000 bytes

_CONNECT_TIMEOUT = 3.0


# -- the records -------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """The deterministic content of the ``count`` records: record i is ``body(i)``."""

    count: int
    offsets_ms: list[int] = field(default_factory=list)  # timestamp of record i, ms after 2026-01-01

    def __post_init__(self) -> None:
        rng = random.Random(2026)
        self.offsets_ms = [rng.randrange(YEAR_MS) for _ in range(self.count)]

    def timestamp(self, i: int) -> str:
        ms = self.offsets_ms[i]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(YEAR_START + ms // 1000)) + f".{ms % 1000:03d}Z"

    def body(self, i: int) -> dict[str, Any]:
        """What a client POSTs (already in the canonical form validation gives timestamps)."""
        return {"infrastructure-service": LOCAL_STORAGE, "data:bucket": f"bucket-{i % BUCKETS}",
                "data:object": f"obj-{i}", "gnss:mission": f"M{i % MISSIONS}", "timestamp": self.timestamp(i),
                "content-type": "application/octet-stream", "bytes": 1000 + (i * 7919) % 1_000_000}

    def expected_broad(self) -> int:
        """How many records ``gnss:mission='M7' and timestamp>SINCE`` must find."""
        return sum(1 for i in range(self.count)
                   if f"M{i % MISSIONS}" == MISSION and self.timestamp(i) > SINCE_STORED)


def stored_shape(corpus: Corpus, i: int, user_id: str, acl: dict[str, list[str]]) -> dict[str, Any]:
    """Record i as ``crud.insert`` completes it for ``user_id`` (before validation)."""
    doc = corpus.body(i)
    ts = now_ts()
    doc.update({"id": ids.new_id(TYPE), "resource-type": TYPE, "created": ts, "updated": ts,
                "created-by": user_id, "acl": acl})
    return doc


def seed(database_url: str, corpus: Corpus, user_id: str, api_made: str, batch: int = 10_000) -> float:
    """Records ``VIA_API`` .. ``count - 1``, stored as the API stores them; returns the seconds taken.

    ``api_made`` is a record the API stored (record 0): the seeded ones must have its shape (same keys in
    the same order, same ACL). Every seeded record goes through ``crud.validate``, which must leave it
    unchanged. The rows are those ``Tx.insert`` writes, loaded as ``api.seed`` loads them (one
    ``executemany`` or ``COPY`` per batch, secondary indexes dropped and re-created from their definitions).
    """
    rtype = all_types()[TYPE]
    exclude = rtype.schema.unindexed
    store = Store(database_url, pool_size=1)
    pg = store.dialect == "postgresql"
    if not pg:
        @sa.event.listens_for(store.engine, "connect")
        def _big_cache(dbapi_conn: Any, _record: Any) -> None:  # this loading connection only
            dbapi_conn.execute("PRAGMA cache_size=-262144")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    t0 = time.perf_counter()
    try:
        with store.read() as tx:
            reference = tx.get(api_made)
        if reference is None:
            raise RuntimeError(f"{api_made} is not in the store")
        acl = reference["acl"]
        probe = crud.validate(rtype, stored_shape(corpus, 0, user_id, acl))
        same = {k: v for k, v in probe.items() if k not in ("id", "created", "updated")}
        want = {k: v for k, v in reference.items() if k not in ("id", "created", "updated")}
        # jsonb keeps its own key order; SQLite keeps the JSON text, whose order must match too
        if (not pg and list(probe) != list(reference)) or same != want:
            raise RuntimeError(f"seeded records would differ from the API's:\n{probe}\n{reference}")
        indexes = _drop_indexes(store)
        try:
            for start in range(VIA_API, corpus.count, batch):
                docs, rows = [], []
                for i in range(start, min(start + batch, corpus.count)):
                    doc = stored_shape(corpus, i, user_id, acl)
                    checked = crud.validate(rtype, doc)
                    if checked != doc:
                        raise RuntimeError(f"record {i} differs from its validated form: {checked}")
                    add_rows(docs, rows, doc, exclude)
                write_rows(store, docs, rows)
        finally:
            _create_indexes(store, indexes)
        settle(store)
    finally:
        store.close()
    return time.perf_counter() - t0


# -- set-up through the API --------------------------------------------------------------------------

@dataclass
class User:
    id: str
    cookie: str


def new_user(port: int) -> User:
    admin = login_password(port, "admin", ADMIN_PASSWORD)
    username = "data-" + uuid.uuid4().hex[:8]
    password = "pw-" + uuid.uuid4().hex
    status, body, _ = call(port, "POST", "/api/user", {"template": {
        "href": "user-template/username-password", "username": username, "password": password}}, admin)
    expect(status, 201, body, "create user")
    return User(body["resource-id"], login_password(port, username, password))


def register_prefixes(port: int, user: User) -> None:
    for prefix in ("data", "gnss"):
        status, body, _ = call(port, "POST", "/api/data-record-key-prefix",
                               {"prefix": prefix, "uri": f"https://example.org/{prefix}"}, user.cookie)
        if status != 409:  # already there: fine
            expect(status, 201, body, f"register prefix {prefix}")


def add_via_api(port: int, user: User, corpus: Corpus) -> list[str]:
    made = []
    for i in range(VIA_API):
        status, body, _ = call(port, "POST", f"/api/{TYPE}", corpus.body(i), user.cookie)
        expect(status, 201, body, f"add record {i}")
        made.append(body["resource-id"])
    return made


def search_form(filter_: str, last: int | None = None) -> str:
    return "filter=" + quote(filter_) + (f"&last={last}" if last is not None else "")


BROAD = f"gnss:mission='{MISSION}' and timestamp>'{SINCE}'"


def selective(n: int) -> str:
    return f"data:object='obj-{n}'"


def search(port: int, user: User, form: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    conn.request("PUT", f"/api/{TYPE}", body=form, headers={
        "Cookie": f"{COOKIE}={user.cookie}", "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    expect(resp.status, 200, body, "search")
    return body


def check_searches(port: int, user: User, corpus: Corpus) -> None:
    """The searches find what they should, so that a fast wrong answer cannot pass for a fast search."""
    want = corpus.expected_broad()
    body = search(port, user, search_form(BROAD, 20))
    got = body["count"]
    docs = body.get("resources", [])
    if got != want or len(docs) != min(20, want):
        raise RuntimeError(f"broad search: count {got} and {len(docs)} documents, expected {want} and 20")
    if any(d["gnss:mission"] != MISSION or d["timestamp"] <= SINCE_STORED for d in docs):
        raise RuntimeError("broad search returned records outside its filter")
    keys = [(d["created"], d["id"]) for d in docs]
    if keys != sorted(keys):
        raise RuntimeError("broad search page is not in (created, id) order")
    n = SELECTIVE_FROM if corpus.count > SELECTIVE_FROM + 64 else corpus.count - 1
    body = search(port, user, search_form(selective(n)))
    if body["count"] != 1 or body["resources"][0]["data:object"] != f"obj-{n}":
        raise RuntimeError(f"selective search found {body['count']} records, expected obj-{n}")


# -- search load -------------------------------------------------------------------------------------

@dataclass
class SearchPlan:
    warm: int
    count: dict[int, int]
    seconds: dict[int, float]


CLIENTS = (1, 8)
FULL_SEARCH = SearchPlan(warm=40, count={1: 1000, 8: 2000}, seconds={1: 7.0, 8: 7.0})
QUICK_SEARCH = SearchPlan(warm=10, count={1: 200, 8: 400}, seconds={1: 2.5, 8: 2.5})


@dataclass
class SearchRow:
    key: str
    label: str
    requests: list[bytes]


@dataclass
class SearchResult:
    backend: str
    row: SearchRow
    clients: int
    result: _load.Result
    server_cpu: float


def search_rows(port: int, user: User, corpus: Corpus) -> list[SearchRow]:
    cookie = f"{COOKIE}={user.cookie}"

    def req(form: str) -> bytes:
        return _load.request_bytes("PUT", f"/api/{TYPE}", port, cookie=cookie, body=form.encode(),
                                   content_type="application/x-www-form-urlencoded")

    first = SELECTIVE_FROM if corpus.count > SELECTIVE_FROM + 64 else VIA_API
    return [
        SearchRow("broad", f"search {BROAD}, last=20", [req(search_form(BROAD, 20))]),
        SearchRow("selective", "search data:object='obj-N' (1 match; N = 12345..12408)",
                  [req(search_form(selective(n))) for n in range(first, first + 64)]),
    ]


def measure_searches(runner: _load.Runner, backend: str, port: int, pid: int, rows: list[SearchRow],
                     plan: SearchPlan) -> list[SearchResult]:
    out = []
    for row in rows:
        runner.run(HOST, port, row.requests, 2, plan.warm, 1.5)  # warm-up
        for c in CLIENTS:
            cpu0 = cpu_seconds(pid)
            r = runner.run(HOST, port, row.requests, c, plan.count[c], plan.seconds[c])
            cpu = (cpu_seconds(pid) - cpu0) / r.elapsed_s if r.elapsed_s else 0.0
            bad = r.count - r.statuses.get(200, 0)
            log(f"{backend:<10} {row.key:<9} c={c}  {r.rps:7.1f} req/s  p50 {r.percentile_ms(50):7.2f} ms  "
                f"p99 {r.percentile_ms(99):7.2f} ms  n={r.count:<5} CPU server {cpu:4.0%}"
                + (f"  [red]{bad} unexpected statuses {r.statuses}[/red]" if bad else "")
                + (f"  [red]errors: {r.errors[:3]}[/red]" if r.errors else ""))
            out.append(SearchResult(backend, row, c, r, cpu))
    return out


def run_backend(backend: str, database_url: str, data_dir: str, records: int, plan: SearchPlan,
                runner: _load.Runner, after: Callable[[int, int, User], None] | None = None,
                ) -> list[SearchResult]:
    """Serve ``database_url``, seed, check, measure the searches; ``after(port, pid, user)`` runs before the
    server stops (the object benchmark uses the SQLite server)."""
    os.makedirs(data_dir, exist_ok=True)
    server = None
    try:
        server, port = start_dockyard(data_dir, database_url)
        log(f"{backend}: dockyard serve (pid {server.pid}) on {HOST}:{port}")
        user = new_user(port)
        register_prefixes(port, user)
        corpus = Corpus(records)
        made = add_via_api(port, user, corpus)
        seconds = seed(database_url, corpus, user.id, made[0])
        log(f"{backend}: {VIA_API} records through the API, {records - VIA_API:,} seeded in {seconds:.1f} s")
        # as after the server's next start: on SQLite its start-up ANALYZE gives the planner statistics of
        # the loaded tables (the seed's DROP INDEX removed those of the re-created indexes); the session
        # cookie lives in the database and stays valid
        stop(server)
        server, port = start_dockyard(data_dir, database_url)
        log(f"{backend}: restarted (pid {server.pid}) on {HOST}:{port}")
        check_searches(port, user, corpus)
        log(f"{backend}: searches checked ({corpus.expected_broad():,} records match {BROAD})")
        results = measure_searches(runner, backend, port, server.pid, search_rows(port, user, corpus), plan)
        if after is not None:
            after(port, server.pid, user)
        return results
    finally:
        stop(server)


# -- objects -----------------------------------------------------------------------------------------

BLOCK = 1024 * 1024  # the streaming clients' read/write size


def _local_path(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.hostname != HOST:
        raise RuntimeError(f"the pre-signed URL does not point at {HOST}: {uri}")
    return parts.path + ("?" + parts.query if parts.query else "")


def put_file(port: int, path_qs: str, src: str, size: int, content_type: str) -> str:
    """Stream ``src`` as the body of a PUT (1 MiB reads, Content-Length framing); returns the ETag."""
    conn = http.client.HTTPConnection(HOST, port, timeout=300, blocksize=BLOCK)
    try:
        with open(src, "rb") as f:
            conn.request("PUT", path_qs, body=f, headers={"Content-Length": str(size),
                                                         "Content-Type": content_type})
            resp = conn.getresponse()
            raw = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"PUT to the pre-signed URL: HTTP {resp.status}: {raw[:300]!r}")
        return (resp.getheader("ETag") or "").strip('"')
    finally:
        conn.close()


def get_file(port: int, path_qs: str, dst: str) -> int:
    """Stream a GET's body into ``dst`` (1 MiB reads); returns the bytes written."""
    conn = http.client.HTTPConnection(HOST, port, timeout=300)
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    total = 0
    try:
        conn.request("GET", path_qs)
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"GET of the pre-signed URL: HTTP {resp.status}: {resp.read()[:300]!r}")
        with open(dst, "wb") as out:
            while n := resp.readinto(view):
                out.write(view[:n])
                total += n
        return total
    finally:
        conn.close()


def md5_file(path: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(4 * BLOCK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Transfer:
    """One round of the real flow; seconds for each step."""

    create: float = 0.0
    upload_action: float = 0.0
    put: float = 0.0
    ready: float = 0.0
    download_action: float = 0.0
    get: float = 0.0
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)  # "put"/"get": (server, client) CPU s

    @property
    def upload(self) -> float:
        return self.create + self.upload_action + self.put + self.ready

    @property
    def download(self) -> float:
        return self.download_action + self.get


def object_round(port: int, pid: int, user: User, src: str, size: int, md5: str, dst: str, n: int) -> Transfer:
    t = Transfer()
    clock = time.perf_counter
    cpu = time.process_time
    bucket, key = "bench-data", f"run-{uuid.uuid4().hex[:8]}/object-{n}.bin"
    content_type = "application/octet-stream"
    body = {"template": {"name": key, "description": key, "credential": LOCAL_CRED, "subtype": "generic",
                         "resource-type": "data-object-template", "content-type": content_type,
                         "object": key, "bucket": bucket, "bytes": size, "href": "data-object-template/generic"}}
    t0 = clock()
    status, reply, _ = call(port, "POST", "/api/data-object", body, user.cookie)
    t1 = clock()
    expect(status, 201, reply, "create data-object")
    oid = reply["resource-id"]
    status, reply, _ = call(port, "POST", f"/api/{oid}/upload", None, user.cookie)
    t2 = clock()
    expect(status, 200, reply, "upload action")
    srv0, cli0 = cpu_seconds(pid), cpu()
    etag = put_file(port, _local_path(reply["uri"]), src, size, content_type)
    t3 = clock()
    t.cpu["put"] = (cpu_seconds(pid) - srv0, cpu() - cli0)
    status, reply, _ = call(port, "POST", f"/api/{oid}/ready", None, user.cookie)
    t4 = clock()
    expect(status, 200, reply, "ready action")
    t.create, t.upload_action, t.put, t.ready = t1 - t0, t2 - t1, t3 - t2, t4 - t3
    if reply.get("state") != "READY" or reply.get("bytes") != size or reply.get("md5sum") != md5 or etag != md5:
        raise RuntimeError(f"the stored object is not the file sent: {reply} (ETag {etag})")
    os.sync()  # the upload's fsync and the copies' dirty pages must not land in the timed download
    t0 = clock()
    status, reply, _ = call(port, "POST", f"/api/{oid}/download", None, user.cookie)
    t1 = clock()
    expect(status, 303, reply, "download action")
    srv0, cli0 = cpu_seconds(pid), cpu()
    got = get_file(port, _local_path(reply["uri"]), dst)
    t2 = clock()
    t.cpu["get"] = (cpu_seconds(pid) - srv0, cpu() - cli0)
    t.download_action, t.get = t1 - t0, t2 - t1
    if got != size or md5_file(dst) != md5:
        raise RuntimeError("the downloaded file differs from the one uploaded")
    os.unlink(dst)
    status, reply, _ = call(port, "DELETE", f"/api/{oid}", None, user.cookie)
    expect(status, 200, reply, "delete data-object")
    return t


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def copy_fsync(src: str, dst: str) -> None:
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ObjectResults:
    size: int
    rounds: list[Transfer] = field(default_factory=list)
    copies: dict[str, list[float]] = field(default_factory=dict)


COPIES = ("copyfile", "cp", "copyfile+fsync")


def measure_objects(port: int, pid: int, user: User, work_dir: str, size: int, rounds: int) -> ObjectResults:
    """``rounds`` interleaved rounds of: the three plain copies and the API round trip, each from a clean
    page-cache write-back state (``sync`` before, outside the timing)."""
    src = os.path.join(work_dir, "source.bin")
    dst = os.path.join(work_dir, "copy.bin")
    with open(src, "wb") as f:
        for _ in range(0, size, 8 * MB):  # random, so that nothing compresses or dedups it
            f.write(os.urandom(min(8 * MB, size - f.tell())))
    md5 = md5_file(src)
    out = ObjectResults(size, copies={name: [] for name in COPIES})
    copy_fns: dict[str, Callable[[], Any]] = {
        "copyfile": lambda: shutil.copyfile(src, dst),
        "cp": lambda: subprocess.run(["cp", src, dst], check=True),
        "copyfile+fsync": lambda: copy_fsync(src, dst),
    }
    try:
        for n in range(rounds):
            for name in COPIES:
                os.sync()
                out.copies[name].append(timed(copy_fns[name]))
                os.unlink(dst)
            os.sync()
            t = object_round(port, pid, user, src, size, md5, dst, n)
            out.rounds.append(t)
            log(f"objects round {n + 1}/{rounds}: upload {size / MB / t.upload:6.0f} MB/s (PUT {t.put:.2f} s), "
                f"download {size / MB / t.download:6.0f} MB/s; copyfile "
                f"{size / MB / out.copies['copyfile'][-1]:6.0f}, cp {size / MB / out.copies['cp'][-1]:6.0f}, "
                f"copyfile+fsync {size / MB / out.copies['copyfile+fsync'][-1]:6.0f} MB/s")
    finally:
        for path in (src, dst):
            if os.path.exists(path):
                os.unlink(path)
    return out


# -- the table ---------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def report(searches: list[SearchResult], objects: ObjectResults | None, records: int) -> Table:
    table = Table(title=f"Dockyard data: search over {records:,} data-records, object bytes through the "
                        f"embedded store ({os.cpu_count()} CPUs)")
    table.add_column("row", overflow="fold")
    table.add_column("on")
    table.add_column("clients", justify="right")
    table.add_column("throughput", justify="right")
    table.add_column("p50", justify="right")
    table.add_column("p99", justify="right")
    table.add_column("CPU srv/cli", justify="right")
    table.add_column("target / ratio")
    keys = list(dict.fromkeys((s.row.key, s.backend) for s in searches))
    for row_key, backend in keys:
        group = [s for s in searches if s.row.key == row_key and s.backend == backend]
        for s in group:
            r = s.result
            p50 = r.percentile_ms(50)
            note = ""
            if s.clients == 1:
                note = f"p50 ≤ {SEARCH_P50_TARGET_MS:.0f} ms: {verdict(p50 <= SEARCH_P50_TARGET_MS)}"
            bad = r.count - r.statuses.get(200, 0) + len(r.errors)
            if bad:
                note += f" [red]{bad} failed[/red]"
            table.add_row(s.row.label if s is group[0] else "", backend if s is group[0] else "", str(s.clients),
                          f"{r.rps:,.1f} req/s", f"{p50:.2f} ms", f"{r.percentile_ms(99):.2f} ms",
                          f"{s.server_cpu:.0%} / {r.client_cpu:.0%}", note, end_section=s is group[-1])
    if objects is not None:
        size = objects.size

        def rate(seconds: list[float]) -> float:
            return size / MB / statistics.median(seconds)

        def spread(seconds: list[float]) -> str:
            rates = sorted(size / MB / s for s in seconds)
            return f"{rates[0]:,.0f}-{rates[-1]:,.0f}" if len(rates) > 1 else ""

        copy_rate = {name: rate(objects.copies[name]) for name in COPIES}

        def ratios(mbps: float) -> str:
            return ", ".join(f"{mbps / copy_rate[name]:.2f}× {name}" for name in COPIES)

        what = f"{size / MB:,.0f} MB"
        def cpu_share(step: str) -> str:
            wall = sum(getattr(t, step) for t in objects.rounds)
            srv = sum(t.cpu[step][0] for t in objects.rounds)
            cli = sum(t.cpu[step][1] for t in objects.rounds)
            return f"{srv / wall:.0%} / {cli / wall:.0%}" if wall else ""

        entries: list[tuple[str, list[float], str]] = [
            (f"upload {what}: create + upload action + PUT + ready", [t.upload for t in objects.rounds], ""),
            ("  of which the PUT of the bytes", [t.put for t in objects.rounds], cpu_share("put")),
            (f"download {what}: download action + GET", [t.download for t in objects.rounds], ""),
            ("  of which the GET of the bytes", [t.get for t in objects.rounds], cpu_share("get")),
        ]
        for label, seconds, cpu in entries:
            mbps = rate(seconds)
            table.add_row(label, "API, SQLite", "1", f"{mbps:,.0f} MB/s", f"{statistics.median(seconds):.3f} s",
                          f"max {max(seconds):.3f} s", cpu, ratios(mbps))
        table.add_section()
        for name in COPIES:
            seconds = objects.copies[name]
            table.add_row(f"plain copy {what}: {name}", "same disk", "1", f"{copy_rate[name]:,.0f} MB/s",
                          f"{statistics.median(seconds):.3f} s", f"max {max(seconds):.3f} s", "",
                          f"range {spread(seconds)} MB/s")
    return table


# -- main --------------------------------------------------------------------------------------------

def postgres_reachable(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": int(_CONNECT_TIMEOUT)})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except Exception:  # no server, no such role: SQLite only
        return False
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, a 20 MB object")
    parser.add_argument("--database", metavar="URL",
                        help="a PostgreSQL server URL (postgresql+psycopg://...) to run the searches on as "
                             "well; the benchmark creates and drops its own database there. Default: "
                             f"{DEFAULT_PG} when it answers")
    parser.add_argument("--no-postgresql", action="store_true", help="SQLite only")
    parser.add_argument("--records", type=int, default=100_000, help="data-records to seed [100000]")
    parser.add_argument("--object-mb", type=int, help="object size in MB [100; 20 with --quick]")
    args = parser.parse_args(argv)
    if args.records < 1000:
        parser.error("--records must be at least 1000")
    plan = QUICK_SEARCH if args.quick else FULL_SEARCH
    size = (args.object_mb or (20 if args.quick else 100)) * MB
    rounds = 2 if args.quick else 3
    pg_admin_url = None
    if args.database:
        if sa.engine.make_url(args.database).get_backend_name() != "postgresql":
            parser.error("--database must be a PostgreSQL URL")
        pg_admin_url = args.database
    elif not args.no_postgresql:
        if postgres_reachable(DEFAULT_PG):
            pg_admin_url = DEFAULT_PG
        else:
            log(f"[yellow]no PostgreSQL at {sa.engine.make_url(DEFAULT_PG).render_as_string()}: SQLite only"
                "[/yellow]")

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="dockyard-data-bench-")
    runner: _load.Runner | None = None
    searches: list[SearchResult] = []
    objects: list[ObjectResults] = []
    try:
        load = os.getloadavg()[0]
        if load > 0.5:
            log(f"[yellow]load average {load:.1f} before the run: other processes share the CPUs and the "
                "disk, so the figures will be lower and noisier[/yellow]")
        runner = _load.Runner()

        def object_benchmark(port: int, pid: int, user: User) -> None:
            log(f"objects: {rounds} rounds of {size / MB:,.0f} MB")
            objects.append(measure_objects(port, pid, user, tmp, size, rounds))

        sqlite_dir = os.path.join(tmp, "sqlite")
        searches += run_backend("SQLite", f"sqlite:///{os.path.join(sqlite_dir, 'dockyard.db')}", sqlite_dir,
                                args.records, plan, runner, after=object_benchmark)
        if pg_admin_url:
            pg = PgDatabase(pg_admin_url)
            database_url = pg.__enter__()
            try:
                searches += run_backend("PostgreSQL", database_url, os.path.join(tmp, "postgresql"),
                                        args.records, plan, runner)
            finally:
                pg.__exit__(None, None, None)
        console.print()
        console.print(report(searches, objects[0] if objects else None, args.records))
        console.print(f"[dim]Total time {time.monotonic() - started:.0f} s. Search latency is judged at 1 "
                      "client; at 8 clients p50 includes queueing (≈ 8 / throughput). MB = 10^6 bytes; "
                      "transfer figures are the median of the rounds.[/dim]")
        return 0
    finally:
        if runner is not None:
            runner.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
