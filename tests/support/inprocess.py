"""The app served in the test's own process (uvicorn on a thread), over a real store, so that a test can read
what only the process sees: the store's change journal (its observers get each committed write transaction's
changes, in commit order)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from dockyard.core.settings import Secret, Settings
from dockyard.server.app import create_app
from dockyard.server.runtime import Runtime, attach_engine, start, start_background

from ..conftest import free_port

ADMIN_PASSWORD = "admin-password-x"


@contextmanager
def in_process(db_url: str, data_dir: str, *, background: bool = False, **settings: Any) -> Iterator[tuple[Runtime, str]]:
    """The runtime and the endpoint of a server on a free loopback port; ``background``: with its engine, job
    workers and reconciler (else jobs stay queued). ``settings`` as ``Settings.with_`` takes them."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    runtime = start(Settings().with_(data_dir=data_dir, database_url=db_url, public_url=endpoint,
                                     admin_password=Secret(ADMIN_PASSWORD), **settings))
    if background:
        attach_engine(runtime)
        start_background(runtime)
    http = uvicorn.Server(uvicorn.Config(create_app(runtime.services), host="127.0.0.1", port=port,
                                         log_level="warning"))
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not http.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
            time.sleep(0.01)
        yield runtime, endpoint
    finally:
        http.should_exit = True
        thread.join(15)
        for part in runtime.background:
            part.stop()
        runtime.services.store.close()
