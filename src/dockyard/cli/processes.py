"""``dockyard serve --processes N``: N API processes on one port, for a single machine.

The serving process binds the listening sockets, then spawns N API processes that inherit them: the
kernel hands each new connection to one of them (as uvicorn's and gunicorn's workers share a socket).
Each is a whole ``serve --no-workers``: its own store connections, its own event stream, hearing the
others' changes through PostgreSQL's NOTIFY, so any request may land in any process. The serving process
itself answers no request: it runs the job workers, the reconciler and the readiness checks (none with
``--no-workers``), replaces an API process that died, and on SIGTERM or SIGINT stops them all gracefully.

The processes are spawned, not forked: a fork would copy the parent's threads' locks and its pooled
database connections mid-use. Each starts on the migrated, seeded store the parent left, with the
settings of the command line (passed as overrides over the inherited environment).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from typing import Any

log = logging.getLogger("dockyard")

RESPAWN_PAUSE = 1.0  # seconds before an API process that died is replaced (one that dies at once: no busy loop)
STOP_TIMEOUT = 15.0  # seconds an API process gets to finish its requests on a stop, before SIGKILL


def run(count: int, sockets: list[socket.socket], overrides: dict[str, Any], extras: dict[str, Any],
        stopping: threading.Event) -> None:
    """Keep ``count`` API processes serving ``sockets`` until ``stopping`` is set; then stop them."""
    context = multiprocessing.get_context("spawn")
    children: list[Any] = [None] * count

    def spawn(slot: int) -> None:
        child = context.Process(target=serve_api, args=(overrides, sockets, extras),
                                name=f"dockyard-api-{slot}", daemon=False)
        child.start()
        children[slot] = child
        log.info("API process %d started (pid %s)", slot, child.pid, extra={"pid": child.pid})

    for slot in range(count):
        spawn(slot)
    while not stopping.wait(RESPAWN_PAUSE):
        for slot, child in enumerate(children):
            if not child.is_alive() and not stopping.is_set():
                log.warning("API process %d (pid %s) ended with %s; starting another", slot, child.pid,
                            child.exitcode, extra={"pid": child.pid})
                spawn(slot)
    for child in children:
        if child.is_alive():
            child.terminate()
    for child in children:
        child.join(STOP_TIMEOUT)
        if child.is_alive():
            child.kill()
            child.join()


def serve_api(overrides: dict[str, Any], sockets: list[socket.socket], extras: dict[str, Any]) -> None:
    """One API process (spawned): the runtime on the shared store, the app, uvicorn on the inherited sockets."""
    import uvicorn

    from ..core import settings as config
    from ..server.app import create_app
    from ..server.runtime import http_server, start
    from . import logs

    settings = config.from_env().with_(**overrides)
    logs.configure(settings["log-level"], settings["log-format"])
    runtime = start(settings)
    runtime.services.extras.update(extras)
    application = create_app(runtime.services)
    for sig in (signal.SIGINT, signal.SIGTERM):  # see cli.main._quiet_signals: a clean stop exits 0
        signal.signal(sig, lambda *_: None)
    server = http_server(uvicorn.Config(application, log_level="warning", log_config=None, loop="uvloop",
                                        http="httptools", timeout_graceful_shutdown=10))
    try:
        server.run(sockets=sockets)
    finally:
        runtime.stop()
