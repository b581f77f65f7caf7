"""The local Docker engine behind another unix socket that relays every byte both ways and can hold one
request: the next one whose request line matches a pattern is held before the engine sees it until
:meth:`EngineProxy.let_through`, and the engine's answer to it is held until :meth:`EngineProxy.answer`.
A test decides so what the engine has become between a look's question and its answer, and when the answer
arrives: the slow engine of a loaded or distant host, at chosen moments. Put behind ``tls_engine``
(``engine_socket=proxy.path``), it is a remote engine as Dockyard reaches one."""

from __future__ import annotations

import re
import socket
import threading
from functools import partial

from .relay import Hook, Relay

ENGINE_SOCKET = "/var/run/docker.sock"
WAIT = 30.0  # seconds a held request or answer waits at most for the test (a test that failed lets go)


def _unix_listener(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    return listener


def _unix_connection(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


class EngineProxy(Relay):
    def __init__(self, path: str, engine_socket: str = ENGINE_SOCKET) -> None:
        self.path = path
        self._guard = threading.Lock()
        self._pattern: re.Pattern[bytes] | None = None
        self.held = threading.Event()  # the request is held, the engine has not seen it
        self.answered = threading.Event()  # the engine has answered it, the answer is held
        self._request_gate = threading.Event()
        self._answer_gate = threading.Event()
        super().__init__(_unix_listener(path), partial(_unix_connection, engine_socket))

    def hold_next(self, request_line: bytes) -> None:
        """Hold the next request whose request line (``GET /v1.41/containers/…/json HTTP/1.1``) matches."""
        for event in (self.held, self.answered, self._request_gate, self._answer_gate):
            event.clear()
        with self._guard:
            self._pattern = re.compile(request_line)

    def let_through(self) -> None:
        self._request_gate.set()

    def answer(self) -> None:
        self._answer_gate.set()

    def close(self) -> None:
        self._request_gate.set()
        self._answer_gate.set()
        super().close()

    def hooks(self) -> tuple[Hook, Hook]:
        holding = threading.Event()  # this connection's next answer is the held one
        return partial(self._asked, holding), partial(self._answered, holding)

    def _asked(self, holding: threading.Event, data: bytes) -> None:
        with self._guard:
            chosen = self._pattern is not None and bool(self._pattern.match(data.split(b"\r\n", 1)[0]))
            if chosen:
                self._pattern = None
        if chosen:
            holding.set()
            self.held.set()
            self._request_gate.wait(WAIT)

    def _answered(self, holding: threading.Event, data: bytes) -> None:
        if holding.is_set():
            holding.clear()
            self.answered.set()
            self._answer_gate.wait(WAIT)
