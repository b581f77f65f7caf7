"""Load: many clients at once on a mix of the hot paths, against one ``dockyard serve``; zero errors expected.

    python benchmarks/load.py                        # SQLite, 64 clients for 60 s: about 2 minutes
    python benchmarks/load.py --database postgresql  # the tests' PostgreSQL (DOCKYARD_TEST_PG_URL) or a URL
    python benchmarks/load.py --quick                # 64 clients for 15 s

It starts ``dockyard serve`` as ``api.py`` does (subprocess, free loopback port, temporary data dir), sets up
a user (password and API key), 10,000 ``infrastructure-service-group`` documents (``api.seed``) and a
deployment with output parameters and its own key, then runs one mixed list of requests (``MIX``) through
the load generator (``_load.py``): first with one client, then with 64, each for a bounded time. Every
answer must be 2xx and no connection may fail; the table gives each operation's throughput and latency at
1 and at 64 clients and their ratio, and the run ends by reading the server's log for errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa  # noqa: E402
from rich.table import Table  # noqa: E402

import _load  # noqa: E402
from api import (  # noqa: E402
    ADMIN_PASSWORD, COOKIE, HOST, TYPE, Fixture, PgDatabase, call, console, cpu_seconds, expect, log,
    login_password, seed, set_up, start_dockyard, stop,
)
from dockyard.core.ids import deployment_parameter_id  # noqa: E402

DOCUMENTS = 10_000
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:55432/postgres"  # the tests' server (scripts/test)
PARAMETERS = ("jupyter-token", "progress", "status", "url", "p4", "p5", "p6", "p7")
EDITED = 4  # documents the edits spread over (several clients edit the same one at once)
ANON = "group/nuvla-anon"
# operation → requests of it in every 80: roughly what a busy installation sees, with password logins
# (argon2id, ~100-250 ms of CPU each here) rare, as people log in once per session
MIX = {
    "login (password)": 1,
    "login (API key)": 3,
    "GET document": 24,
    "search name='doc-N' (1 match)": 8,
    "search tags='tK' and name^='doc-1', last=10": 8,
    "edit document (PUT)": 10,
    "container: login (deployment key)": 2,
    "container: GET its deployment": 8,
    "container: PUT parameter by computed id": 16,
}
ROUNDS = 4  # the mix is repeated with other values (documents, filters, parameter values) this many times


@dataclass
class Plan:
    clients: int
    single_s: float  # the one-client run
    loaded_s: float  # the many-client run
    warm_s: float


FULL = Plan(clients=64, single_s=20.0, loaded_s=60.0, warm_s=3.0)
QUICK = Plan(clients=64, single_s=5.0, loaded_s=15.0, warm_s=1.0)
ENDLESS = 10 ** 9  # runs are bounded by time, not count


# -- set-up through the API --------------------------------------------------------------------------

@dataclass
class Container:
    """What a deployment's container gets: its deployment's id and key, and the session it logs in with."""
    deployment: str
    key: str
    secret: str
    cookie: str


def new_deployment(fx: Fixture, admin: str) -> Container:
    """A deployment with output parameters, and a key with the claims Dockyard gives a deployment's own key.

    Nothing runs: the container is the load generator. The deployment stays CREATED, its parameters are
    created through the API with the ids Nuvla computes, and the admin issues the key (the claims a started
    deployment's key carries: ``[deployment/<uuid>, group/nuvla-deployment, group/nuvla-anon]``), because
    Dockyard returns a started deployment's secret only to its container.
    """
    port, cookie = fx.port, fx.cookie
    project = "load-" + os.urandom(4).hex()
    status, body, _ = call(port, "POST", "/api/module", {"path": project, "subtype": "project"}, cookie)
    expect(status, 201, body, "create project")
    status, body, _ = call(port, "POST", "/api/module", {
        "path": f"{project}/app", "subtype": "component", "content": {
            "image": {"repository": "dockyard-test", "image-name": "busybox", "tag": "1"},
            "author": "load", "output-parameters": [{"name": n, "description": n} for n in PARAMETERS]}}, cookie)
    expect(status, 201, body, "create component")
    status, body, _ = call(port, "POST", "/api/deployment", {"module": {"href": body["resource-id"]}}, cookie)
    expect(status, 201, body, "create deployment")
    dep = body["resource-id"]
    node = dep.split("/")[1]
    for name in PARAMETERS:
        status, body, _ = call(port, "POST", "/api/deployment-parameter",
                               {"parent": dep, "node-id": node, "name": name}, cookie)
        expect(status, 201, body, f"create parameter {name}")
        if body["resource-id"] != deployment_parameter_id(dep, node, name):
            raise RuntimeError(f"parameter {name} got {body['resource-id']}, not the computed id")
    status, body, _ = call(port, "POST", "/api/credential", {"template": {
        "href": "credential-template/generate-api-key", "ttl": 0, "identity": dep,
        "roles": [dep, "group/nuvla-deployment", ANON]}}, admin)
    expect(status, 201, body, "create the deployment's key")
    key, secret = body["resource-id"], body["secret-key"]
    status, body, dep_cookie = call(port, "POST", "/api/session", {"template": {
        "href": "session-template/api-key", "key": key, "secret": secret}})
    expect(status, 201, body, "login with the deployment's key")
    assert dep_cookie
    # what the seed's script does, once, checked: read the deployment, set a parameter by its computed id
    status, body, _ = call(port, "GET", f"/api/{dep}", cookie=dep_cookie)
    expect(status, 200, body, "the container reads its deployment")
    pid = deployment_parameter_id(dep, node, PARAMETERS[0])
    status, body, _ = call(port, "PUT", f"/api/{pid}", {"value": "set-up"}, dep_cookie)
    expect(status, 200, body, "the container sets a parameter")
    return Container(dep, key, secret, dep_cookie)


def edited_documents(fx: Fixture) -> list[str]:
    out = [fx.doc_id]
    for i in range(1, EDITED):
        status, body, _ = call(fx.port, "POST", f"/api/{TYPE}", {"name": f"edited-{i}", "tags": ["load"]},
                               fx.cookie)
        expect(status, 201, body, f"create {TYPE}")
        out.append(body["resource-id"])
    return out


# -- the mix -----------------------------------------------------------------------------------------

def mix(fx: Fixture, container: Container, docs: list[str]) -> tuple[list[bytes], list[str]]:
    """The requests, in an order shuffled once (fixed seed), and the operation each one is."""
    port = fx.port
    user = f"{COOKIE}={fx.cookie}"
    dep_cookie = f"{COOKIE}={container.cookie}"
    node = container.deployment.split("/")[1]

    def json_body(method: str, path: str, doc: dict[str, Any], cookie: str | None = None) -> bytes:
        return _load.request_bytes(method, path, port, cookie=cookie, content_type="application/json",
                                   body=json.dumps(doc).encode())

    def search(form: str) -> bytes:
        return _load.request_bytes("PUT", f"/api/{TYPE}", port, cookie=user, body=form.encode(),
                                   content_type="application/x-www-form-urlencoded")

    def make(op: str, n: int) -> bytes:
        if op == "login (password)":
            return json_body("POST", "/api/session", {"template": {
                "href": "session-template/password", "username": fx.username, "password": fx.password}})
        if op == "login (API key)":
            return json_body("POST", "/api/session", {"template": {
                "href": "session-template/api-key", "key": fx.key, "secret": fx.secret}})
        if op == "GET document":
            return _load.request_bytes("GET", f"/api/{docs[n % len(docs)]}", port, cookie=user)
        if op.startswith("search name="):
            return search("filter=" + quote(f"name='doc-{1234 + 97 * n}'"))
        if op.startswith("search tags="):
            return search("filter=" + quote(f"tags='t{n % 10}' and name^='doc-1'") + "&last=10")
        if op == "edit document (PUT)":
            return json_body("PUT", f"/api/{docs[n % len(docs)]}", {"description": f"edited {n}"}, user)
        if op == "container: login (deployment key)":
            return json_body("POST", "/api/session", {"template": {
                "href": "session-template/api-key", "key": container.key, "secret": container.secret}})
        if op == "container: GET its deployment":
            return _load.request_bytes("GET", f"/api/{container.deployment}", port, cookie=dep_cookie)
        if op == "container: PUT parameter by computed id":
            pid = deployment_parameter_id(container.deployment, node, PARAMETERS[n % len(PARAMETERS)])
            return json_body("PUT", f"/api/{pid}", {"value": f"value {n}"}, dep_cookie)
        raise ValueError(op)

    ops = [op for op, weight in MIX.items() for _ in range(weight)] * ROUNDS
    random.Random(8).shuffle(ops)
    seen: dict[str, int] = {}
    requests = []
    for op in ops:
        seen[op] = seen.get(op, -1) + 1
        requests.append(make(op, seen[op]))
    return requests, ops


# -- measuring ---------------------------------------------------------------------------------------

@dataclass
class Run:
    result: _load.Result
    server_cpu: float  # fraction of one core
    parts: dict[str, _load.Result]


def run(runner: _load.Runner, port: int, pid: int, requests: list[bytes], labels: list[str], clients: int,
        seconds: float) -> Run:
    cpu0 = cpu_seconds(pid)
    result = runner.run(HOST, port, requests, clients, ENDLESS, seconds)
    server_cpu = (cpu_seconds(pid) - cpu0) / result.elapsed_s if result.elapsed_s else 0.0
    log(f"{clients:>3} client(s): {result.rps:7.0f} req/s  p50 {result.percentile_ms(50):7.2f} ms  "
        f"p99 {result.percentile_ms(99):7.2f} ms  n={result.count}  non-2xx {result.count - result.ok}  "
        f"errors {len(result.errors)}  CPU server {server_cpu:.0%} client {result.client_cpu:.0%}")
    return Run(result, server_cpu, result.by_label(labels))


def failures(result: _load.Result) -> int:
    return result.count - result.ok + len(result.errors)


def server_log_problems(path: str) -> list[str]:
    """Lines of the server's log that say something failed (it logs at warning level in this run)."""
    words = ("Traceback", "ERROR", "Error", "locked", "timeout", "Timeout", "CRITICAL")
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip() for line in f if any(w in line for w in words)]


def report(single: Run, loaded: Run, backend: str, clients: int) -> Table:
    table = Table(title=f"Dockyard under load on {backend}: a mix of {len(MIX)} operations, 1 client vs "
                        f"{clients} ({os.cpu_count()} CPUs, keep-alive HTTP/1.1 clients, loopback)")
    table.add_column("operation")
    table.add_column("share", justify="right")
    for c in (1, clients):
        table.add_column(f"{c} cl. req/s", justify="right")
        table.add_column("p50 ms", justify="right")
        table.add_column("p99 ms", justify="right")
    table.add_column("req/s ×", justify="right")
    table.add_column("p50 ×", justify="right")
    table.add_column("failed", justify="right")
    total = sum(MIX.values())
    rows = [(op, f"{MIX[op] / total:.0%}", single.parts[op], loaded.parts[op]) for op in MIX]
    rows.append(("all", "100%", single.result, loaded.result))
    for op, share, one, many in rows:
        bad = failures(one) + failures(many)
        table.add_row(op, share,
                      f"{one.rps:,.0f}", f"{one.percentile_ms(50):.2f}", f"{one.percentile_ms(99):.2f}",
                      f"{many.rps:,.0f}", f"{many.percentile_ms(50):.2f}", f"{many.percentile_ms(99):.2f}",
                      f"{many.rps / one.rps:.2f}" if one.rps else "—",
                      f"{many.percentile_ms(50) / one.percentile_ms(50):.1f}" if one.count else "—",
                      f"[red]{bad}[/red]" if bad else "0", end_section=op == list(MIX)[-1])
    table.add_row("server CPU (of one core)", "", f"{single.server_cpu:.0%}", "", "", f"{loaded.server_cpu:.0%}")
    return table


def print_failures(name: str, r: Run) -> None:
    for op, part in r.parts.items():
        other = {s: n for s, n in part.statuses.items() if not 200 <= s < 300}
        if other or part.errors:
            console.print(f"[red]{name}: {op}: statuses {other}, errors {part.errors[:5]}[/red]")
    unlabelled = [e for e, i in zip(r.result.errors, r.result.error_indices) if i < 0]
    if unlabelled:
        console.print(f"[red]{name}: connections: {unlabelled[:5]}[/red]")


# -- main --------------------------------------------------------------------------------------------

def database_url(arg: str | None, tmp: str) -> tuple[str, PgDatabase | None]:
    if not arg:
        return f"sqlite:///{os.path.join(tmp, 'dockyard.db')}", None
    server = os.environ.get("DOCKYARD_TEST_PG_URL", DEFAULT_PG) if arg == "postgresql" else arg
    if sa.engine.make_url(server).get_backend_name() != "postgresql":
        raise SystemExit("--database must be 'postgresql' or a PostgreSQL URL")
    pg = PgDatabase(server)
    return pg.__enter__(), pg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", metavar="URL|postgresql",
                        help="PostgreSQL: 'postgresql' for the tests' server (DOCKYARD_TEST_PG_URL, else "
                             f"{DEFAULT_PG}) or a server URL; the benchmark creates and drops its own "
                             "database there. Default: SQLite in a temporary directory.")
    parser.add_argument("--quick", action="store_true", help="15 s under load instead of 60")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients [64]")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    clients = args.clients or plan.clients
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="dockyard-load-")
    server = runner = pg = None
    try:
        url, pg = database_url(args.database, tmp)
        backend = "PostgreSQL" if pg else "SQLite"
        load = os.getloadavg()[0]
        if load > 0.5:
            log(f"[yellow]load average {load:.1f} before the run: other processes share the CPUs, "
                "so the figures will be lower and noisier[/yellow]")
        runner = _load.Runner()
        server, port = start_dockyard(tmp, url)
        log(f"dockyard serve (pid {server.pid}) on {HOST}:{port}, {backend}")
        fx = set_up(port)
        seconds = seed(url, fx.user_id, DOCUMENTS)
        log(f"seeded {DOCUMENTS:,} documents in {seconds:.1f} s")
        admin = login_password(port, "admin", ADMIN_PASSWORD)
        container = new_deployment(fx, admin)
        requests, labels = mix(fx, container, edited_documents(fx))
        log(f"deployment {container.deployment} with {len(PARAMETERS)} parameters; "
            f"{len(requests)} requests in the mix")
        runner.run(HOST, port, requests, 8, ENDLESS, plan.warm_s)  # warm-up
        single = run(runner, port, server.pid, requests, labels, 1, plan.single_s)
        loaded = run(runner, port, server.pid, requests, labels, clients, plan.loaded_s)
        problems = server_log_problems(os.path.join(tmp, "server.log"))
        console.print()
        console.print(report(single, loaded, backend, clients))
        print_failures("1 client", single)
        print_failures(f"{clients} clients", loaded)
        bad = failures(single.result) + failures(loaded.result)
        if problems:
            console.print(f"[red]the server logged {len(problems)} problem line(s):[/red]")
            for line in problems[:20]:
                console.print("  " + line, markup=False, highlight=False)
        console.print(f"{bad} failed requests, {len(problems)} problem lines in the server's log. "
                      f"[dim]Total time {time.monotonic() - started:.0f} s; load average "
                      f"{os.getloadavg()[0]:.1f} at the end. 'req/s ×' is the throughput at {clients} clients "
                      f"over that at 1, 'p50 ×' the latency's.[/dim]")
        return 1 if bad or problems else 0
    finally:
        if runner is not None:
            runner.close()
        stop(server)
        if pg is not None:
            pg.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
