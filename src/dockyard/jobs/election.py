"""Who does what must run once across the installation: elections with PostgreSQL advisory locks.

Several ``dockyard serve`` and ``dockyard worker`` processes may share one PostgreSQL. Some work must run
in one of them only: following an engine's event stream and sweeping it (one reconciler per engine), the
readiness checks. Each such role has a name (``engine:<credential id>``, ``readiness``); the process that
holds the session-level advisory lock of the name's key on its own dedicated connection does the work.

* A lock belongs to a database session, not to a transaction: it is held for as long as the connection
  lives, without a transaction left open, and nothing else on that connection can release it by mistake.
* A process that dies, SIGKILL included, loses its connection and PostgreSQL releases its locks at once;
  the others try again every ``RETRY`` seconds (the callers' loops), so a role is taken over within
  seconds.
* Each look (:meth:`Election.holds`) first asks the connection whether it is still alive: a process
  whose session was ended (a restarted database, a killed backend) stops acting on locks it no longer
  holds, and competes again with a new session.

On SQLite there is one process per installation: every role is this process's, with no election.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from ..store.db import Store

log = logging.getLogger("dockyard.election")

RETRY = 1.0  # seconds between two tries for a role another process holds (the callers' loops wait this)


def lock_key(name: str) -> int:
    """The advisory lock key (a signed 64-bit integer) of a role: the same in every process."""
    return int.from_bytes(hashlib.sha256(f"dockyard:{name}".encode()).digest()[:8], "big", signed=True)


class Election:
    """The roles this process holds, on one dedicated connection; thread-safe."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Any = None
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def shared(self) -> bool:
        """Whether other processes may compete (PostgreSQL): otherwise every role is ours."""
        return self.store.dialect == "postgresql"

    def holds(self, name: str) -> bool:
        """Whether this process holds ``name`` now, taking it if it is free."""
        if not self.shared:
            return not self._closed
        with self._lock:
            if self._closed:
                return False
            try:
                conn = self._connection()
                if name in self._held:
                    return True
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
            except Exception as exc:  # the database went away: nothing is held until a new session wins
                self._drop(exc)
                return False
            if row and row[0]:
                self._held.add(name)
                log.info("this process now holds %s", name, extra={"role": name})
                return True
            return False

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def release(self, name: str) -> None:
        """Give ``name`` up (its work ended here), so that another process may take it at once."""
        if not self.shared:
            return
        with self._lock:
            if name not in self._held:
                return
            self._held.discard(name)
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))
            except Exception as exc:
                self._drop(exc)

    def close(self) -> None:
        """Give every role up (a clean stop: the others take over at their next try).

        The locks are released by a statement before the connection closes: a closed connection's
        backend releases its locks only as it exits, after the client has moved on, so another
        process's try right after a clean stop could still find them held.
        """
        with self._lock:
            self._closed = True
            if self._held and self._conn is not None:
                try:
                    self._conn.execute("SELECT pg_advisory_unlock_all()")
                except Exception:  # the session is gone, and its locks with it
                    pass
            self._held.clear()
            self._close_connection()

    def _connection(self) -> Any:
        """The live dedicated connection; a held lock is only trusted once the session answers."""
        import psycopg

        if self._conn is not None:
            self._conn.execute("SELECT 1")
            return self._conn
        self._conn = psycopg.connect(self.store.dsn, autocommit=True,
                                     application_name="dockyard-election")
        return self._conn

    def _drop(self, exc: Exception) -> None:
        if self._held:
            log.warning("lost the database session holding %s: %s", ", ".join(sorted(self._held)), exc)
        self._held.clear()
        self._close_connection()

    def _close_connection(self) -> None:
        """Close the dedicated connection (its session's advisory locks go with it), whatever state it is in."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None
