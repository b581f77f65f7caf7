"""A byte relay for tests: each connection to its listener gets a new connection upstream, and every chunk is
passed to the connection's two hooks (the question on its way up, the answer on its way back) before it is
sent on. Subclasses give the hooks: hold a request, delay a message, as a slow or distant peer would."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import suppress

Hook = Callable[[bytes], None]


def pass_on(data: bytes) -> None:
    """The hook that lets every chunk through at once."""


class Relay:
    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
        self._listener = listener
        self._connect = connect
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hooks(self) -> tuple[Hook, Hook]:
        """One connection's hooks: (on a chunk going upstream, on a chunk coming back). Called per connection."""
        return pass_on, pass_on

    def close(self) -> None:
        for sock in [self._listener, *self._sockets]:
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect()
            self._sockets += [client, upstream]
            asked, answered = self.hooks()
            threading.Thread(target=self._pipe, args=(client, upstream, asked), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, answered), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, before: Hook) -> None:
        """Relay ``source`` to ``sink``, each chunk once ``before`` it has returned."""
        with suppress(OSError):
            while data := source.recv(65536):
                before(data)
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
