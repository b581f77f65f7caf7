"""Following changes live: the server's event stream (``GET /api/event-stream``), read in a thread.

The stream is server-sent events: ``event: add|edit|delete``, ``data: <document>``, comments for
keep-alives. A :class:`Follower` opens it with the session cookie (which is how the stream authenticates),
waits for the server's ``: subscribed`` so that nothing committed after :meth:`Follower.open` returns is
missed, and hands each event to the caller through a queue, so the caller can wait with a deadline and keep
its display moving. If the stream ends (overflow, a restart, a dropped connection) the caller is told with
an ``ended`` event and reads the documents again itself.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .client import CliError, Client

ENDED = "ended"
SUBSCRIBE_TIMEOUT = 15.0


@dataclass(frozen=True)
class Event:
    kind: str  # add, edit, delete, overflow, or ENDED when the stream is gone
    data: dict[str, Any]


def parse(lines: Iterator[str]) -> Iterator[Event | None]:
    """Server-sent events from text lines; ``None`` for the ``: subscribed`` comment."""
    kind, data = "message", []
    for line in lines:
        if line.startswith(":"):
            if line.startswith(": subscribed"):
                yield None
            continue
        if not line:
            if data:
                try:
                    doc = json.loads("\n".join(data))
                except ValueError:
                    doc = {"raw": "\n".join(data)}
                yield Event(kind, doc if isinstance(doc, dict) else {"value": doc})
            kind, data = "message", []
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)


class Follower:
    """A background reader of the event stream for some types and a CIMI filter."""

    def __init__(self, client: Client, types: str, filter: str) -> None:
        self.client = client
        self.params = {"types": types, "filter": filter}
        self.events: queue.Queue[Event] = queue.Queue()
        self._subscribed = threading.Event()
        self._error: BaseException | None = None
        self._stop = threading.Event()

    def open(self) -> Follower:
        threading.Thread(target=self._run, name="dockyard-events", daemon=True).start()
        if not self._subscribed.wait(SUBSCRIBE_TIMEOUT) and self._error is None:
            raise CliError("the event stream did not open in time")
        if self._error is not None:
            raise self._error
        return self

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            with self.client.stream("event-stream", params=self.params,
                                    headers={"Accept": "text/event-stream"}) as response:
                for event in parse(response.iter_lines()):
                    if self._stop.is_set():
                        return
                    if event is None:
                        self._subscribed.set()
                    else:
                        self.events.put(event)
        except BaseException as exc:  # told to the caller: before subscribing as an error, after as the end
            if not self._subscribed.is_set():
                self._error = exc
        finally:
            self._subscribed.set()
            self.events.put(Event(ENDED, {}))

    def next(self, timeout: float) -> Event | None:
        try:
            return self.events.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
