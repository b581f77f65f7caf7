"""Fixtures of the object-store tests: a directory store, that store served over real HTTP by uvicorn (as
``dockyard serve`` runs it), and moto's standalone S3 server in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from dockyard.data.directory import DirectoryStore
from dockyard.data.s3 import S3Store
from dockyard.server.objects import store_routes

from ..conftest import free_port

SIGNING_KEY = b"s" * 32
SMALL_LIMIT = 64 * 1024  # bytes accepted under /small/data/...


@dataclass
class Served:
    base: str  # http://127.0.0.1:<port>
    store: DirectoryStore  # presigns URLs on ``base``
    small: DirectoryStore  # the same buckets, presigning URLs under ``base/small`` (limit SMALL_LIMIT)


class ThreadedServer:
    """uvicorn with the server's own loop and parser, on a free port, in a thread of the test process."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", loop="uvloop",
                                http="httptools")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def store(tmp_path) -> DirectoryStore:
    return DirectoryStore(str(tmp_path / "objects"), SIGNING_KEY, "http://127.0.0.1:1")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    root = str(tmp_path_factory.mktemp("served") / "objects")
    handler_store = DirectoryStore(root, SIGNING_KEY, "")
    app = Starlette(routes=[Mount("/small", routes=store_routes(handler_store, max_bytes=SMALL_LIMIT)),
                            *store_routes(handler_store)])
    with ThreadedServer(app) as server:
        base = f"http://127.0.0.1:{server.port}"
        yield Served(base, DirectoryStore(root, SIGNING_KEY, base), DirectoryStore(root, SIGNING_KEY, base + "/small"))


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server as a separate process on 127.0.0.1 (it checks neither signatures nor expiry)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto exited with {proc.returncode}: {log_path.read_text()}")
            try:
                requests.get(endpoint, timeout=5)
                break
            except requests.RequestException:  # not listening yet, or too busy to answer (a loaded host)
                if time.monotonic() > deadline:
                    raise RuntimeError("moto did not start within 30 s") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3(moto_endpoint) -> S3Store:
    return S3Store(moto_endpoint, "test-access", "test-secret")


def new_bucket() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"
