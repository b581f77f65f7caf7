"""Shared fixtures.

Databases: every store test runs on SQLite and on PostgreSQL. The PostgreSQL server is started by
``scripts/test`` (which exports ``DOCKYARD_TEST_PG_URL``); a missing server is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa


def _pg_admin_url() -> str:
    url = os.environ.get("DOCKYARD_TEST_PG_URL")
    if not url:
        raise RuntimeError(
            "DOCKYARD_TEST_PG_URL is not set: run the suite with scripts/test, which starts PostgreSQL"
        )
    return url


@pytest.fixture(scope="session")
def pg_url():
    """A throw-away PostgreSQL database for this test session, dropped at the end."""
    admin_url = _pg_admin_url()
    name = f"dockyard_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A SQLAlchemy URL of an empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    base = request.getfixturevalue("pg_url")
    url = new_pg_database(base)  # each test gets a fresh database for isolation
    request.addfinalizer(lambda: drop_pg_database(url))
    return url


@pytest.fixture
def services(db_url, tmp_path):
    """The services of a started runtime (store migrated and seeded, admin made) on each database, no HTTP."""
    from dockyard.core.settings import Secret, Settings
    from dockyard.server.runtime import start

    settings = Settings().with_(data_dir=str(tmp_path), database_url=db_url,
                                admin_password=Secret("admin-password-x"))
    runtime = start(settings)
    yield runtime.services
    runtime.services.store.close()


def new_pg_database(base: str, prefix: str = "dockyard_t") -> str:
    """A new empty database on the session's PostgreSQL server; its URL (drop it with drop_pg_database)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drop a database made by new_pg_database, closing what is still connected to it."""
    made = sa.engine.make_url(url)
    admin = sa.create_engine(made.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{made.database}" WITH (FORCE)'))
    admin.dispose()


# -- a live `dockyard serve`, as users run it ---------------------------------------------------------

import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

ADMIN_PASSWORD = "admin-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    endpoint: str
    process: subprocess.Popen
    data_dir: str
    database_url: str

    @property
    def api(self) -> str:
        return self.endpoint + "/api"


# the ports of the servers this session started: what their containers call back (NUVLA_ENDPOINT) names them
SERVER_PORTS: set[int] = set()


def start_server(data_dir, database_url: str | None = None, extra_env: dict | None = None) -> LiveServer:
    port = free_port()
    SERVER_PORTS.add(port)
    env = dict(os.environ, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD, DOCKYARD_DATA_DIR=str(data_dir))
    env.pop("DOCKYARD_DATABASE_URL", None)
    if database_url:
        env["DOCKYARD_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    os.makedirs(str(data_dir), exist_ok=True)
    log = open(os.path.join(str(data_dir), "server.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dockyard serve exited with {proc.returncode}; see {data_dir}/server.log")
        try:
            if httpx.get(endpoint + "/api/cloud-entry-point", timeout=1).status_code == 200:
                return LiveServer(endpoint, proc, str(data_dir), database_url or "")
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("dockyard serve did not become ready within 60 s")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live_server(request, tmp_path_factory):
    """`dockyard serve` in a subprocess, once on SQLite and once on PostgreSQL."""
    data_dir = tmp_path_factory.mktemp(f"live-{request.param}")
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    server = start_server(data_dir, url)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory):
    """One `dockyard serve` on SQLite, for tests where the backend does not matter."""
    server = start_server(tmp_path_factory.mktemp("live-sqlite-only"))
    yield server
    stop_server(server)


def pytest_sessionfinish(session, exitstatus):
    """Once every server has stopped, remove what the tests started and might have left: a start a failed
    test left running can create its container after the fixtures' own clean-up, and a test that failed
    before its own clean-up leaves its deployments' containers to a server that is gone. Only containers of
    this session's servers are touched (their test image, and a NUVLA_ENDPOINT on one of their ports)."""
    from .deployments.conftest import DEPLOYED, remove_deployed

    if not DEPLOYED and not SERVER_PORTS:
        return
    import docker

    client = docker.from_env()
    try:
        remove_deployed(client)
        for container in client.containers.list(all=True, filters={"label": ["dockyard.managed=true",
                                                                             "dockyard.test-image=true"]}):
            if _callback_port(container) in SERVER_PORTS:
                try:
                    container.remove(force=True)
                except docker.errors.NotFound:
                    pass  # removed meanwhile (a stop job of a server still shutting down)
    finally:
        client.close()


def _callback_port(container) -> int | None:
    for item in container.attrs.get("Config", {}).get("Env") or []:
        if item.startswith("NUVLA_ENDPOINT="):
            port = item.rsplit(":", 1)[-1].strip("/")
            return int(port) if port.isdigit() else None
    return None


# the loopback registry: one per session, for every directory that needs it (tests/registry, tests/examples)
from .support.registry import private_registry  # noqa: E402,F401  (after free_port, which it imports)


# -- running in several workers (scripts/test: pytest-xdist) ------------------------------------------------

# directories whose tests share one costly session fixture: each runs in a single worker (one 3-node swarm,
# one browser and UI server), instead of one copy per worker
ONE_WORKER_DIRECTORIES = {"swarm", "ui"}


def pytest_xdist_make_scheduler(config, log):
    """The work units handed to the workers: a module's tests go together (its module-scoped servers are made
    once), and so do all the tests of each directory of ONE_WORKER_DIRECTORIES. (xdist's own ``loadgroup``
    marks do not group on pytest 9, whose node ids no longer come from the attribute xdist rewrites.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            parts = path.split("/")
            return parts[1] if len(parts) > 2 and parts[1] in ONE_WORKER_DIRECTORIES else path

    return ByModule(config, log)
