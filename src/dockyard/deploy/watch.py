"""A deployment's log and resource use as they happen: who may see them, and the engine's stream opened.

The HTTP side (server-sent events, chunked text, heartbeats, the pump between the engine's thread and the
client) is ``server/stream.py``; this module answers, as the caller, the questions before it streams:
may they read the deployment's data (403/404), does it have a container in its state (409; a stopped one
serves the lines its stop kept), and it opens the engine's iterator with the :class:`StopSignal` that ends it.
Both run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..core.errors import Conflict, DockyardError, Forbidden
from ..drivers.base import DriverError, StopSignal, TaskStats
from ..drivers.engines import driver_for
from ..resources import crud
from ..resources.base import Ctx
from ..resources.resource_log import archived_lines
from .lifecycle import LOGGABLE, STARTED, UPDATING

__all__ = ["follow", "open_stats"]


def follow(ctx: Ctx, rid: str, tail: int | None) -> tuple[Iterator[str], StopSignal]:
    """Check the caller may read the deployment's log, and open it on its engine (in a worker thread)."""
    rtype = ctx.services.types["deployment"]
    with ctx.store.read() as tx:
        doc, rights = crud.load_visible(ctx, tx, rtype, rid)
    if "view-data" not in rights:
        raise Forbidden.for_resource(rid)
    if doc["state"] not in LOGGABLE:
        with ctx.store.read() as tx:
            kept = archived_lines(tx, rid)
        if kept is None:
            raise Conflict(f"{rid} has no container to follow in state {doc['state']}", rid)
        return _Archived(kept[-tail:] if tail else ([] if tail == 0 else kept)), StopSignal()
    stop = StopSignal()
    try:
        lines = driver_for(ctx.services, doc["parent"]).follow_logs(rid, stop, tail=tail)
    except DriverError as exc:
        raise DockyardError(exc.message, rid) from exc
    return lines, stop


class _Archived:
    """The lines a stop kept, as a log iterator that says at its end that they are the archive."""

    ending = "the container was removed when the deployment stopped: these are the lines it kept"

    def __init__(self, lines: list[str]) -> None:
        self._lines = iter(lines)

    def __iter__(self) -> "_Archived":
        return self

    def __next__(self) -> str:
        return next(self._lines)


def open_stats(ctx: Ctx, rid: str) -> tuple[Iterator[TaskStats], StopSignal]:
    """Check the caller may see the deployment's use, and open its engine's stats (in a worker thread)."""
    rtype = ctx.services.types["deployment"]
    with ctx.store.read() as tx:
        doc, rights = crud.load_visible(ctx, tx, rtype, rid)
    if "view-data" not in rights:
        raise Forbidden.for_resource(rid)
    if doc["state"] not in (STARTED, UPDATING):
        raise Conflict(f"{rid} has no running container in state {doc['state']}", rid)
    driver = driver_for(ctx.services, doc["parent"])
    if not driver.capabilities.stats:
        raise Conflict(f"the engine of {rid} cannot report what its containers use", rid)
    stop = StopSignal()
    try:
        return driver.follow_stats(rid, stop), stop
    except DriverError as exc:
        raise DockyardError(exc.message, rid) from exc
