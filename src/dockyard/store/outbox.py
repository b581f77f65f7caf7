"""PostgreSQL: the announcer, which moves committed changes from ``outbox`` to ``NOTIFY dockyard_changes``.

Every write transaction stores its changes in ``outbox`` (``announce.body``) and commits without a NOTIFY of
its own: a notifying transaction holds PostgreSQL's notify lock from its pre-commit until its commit record
is flushed, which made every write of the installation commit alone. Without it, concurrent writers share WAL
flushes (PostgreSQL's own group commit: a commit that arrives while a flush is in flight is made durable by
the next one) and each is still answered only once its commit is durable.

Each process's :class:`Announcer` then, in one transaction at a time across the installation (an advisory
transaction lock), deletes the oldest waiting rows and sends their payloads (``announce.payloads``) in
the order they were stored, and commits: the rows and the notifications go together or not at all, so each
change is announced once. A writer pokes its own process's announcer after its commit; every announcer also
looks every ``SWEEP`` seconds, so that the changes a process committed but had not announced when it died are
announced by another. A row is stored while its transaction holds the row locks of the documents it
changed, so a later change of the same document is stored after it and announced after it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from . import announce

log = logging.getLogger("dockyard.store.outbox")

SWEEP = 0.5  # s between two looks at the outbox when no write of this process pokes
BATCH = 500  # rows announced per transaction
NOTIFY_BATCH = 100  # payloads (780 KB) per statement
RETRY = 1.0  # s before connecting again after an error
STAGE = "INSERT INTO outbox (body) VALUES (%s)"
# the advisory lock of announcing transactions: one at a time across the installation
LOCK_KEY = int.from_bytes(hashlib.sha256(b"dockyard:outbox").digest()[:8], "big", signed=True)
_TAKE = ("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT %s) RETURNING id, body")


class Announcer:
    """One process's announcer, on a connection and a thread of its own, both made on first use."""

    def __init__(self, dsn: str, origin: str) -> None:
        self.dsn = dsn
        self.origin = origin
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: Any = None

    def start(self) -> None:
        """Look at the outbox from now on (idempotent); a poke starts it too."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="dockyard-announcer", daemon=True)
                self._thread.start()

    def poke(self) -> None:
        """A write of this process committed changes: announce them now."""
        self._wake.set()
        if self._thread is None:
            self.start()

    def close(self, timeout: float = 5.0) -> None:
        """Announce what waits, then stop."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(SWEEP)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                while self.announce_once() == BATCH:
                    pass
            except Exception:
                log.exception("announcing committed changes failed; they wait in the outbox, trying again")
                self._disconnect()
                if not stopping:
                    self._stop.wait(RETRY)
            if stopping:
                self._disconnect()
                return

    def announce_once(self) -> int:
        """Announce up to ``BATCH`` of the oldest waiting changes in one transaction; how many there were."""
        conn = self._connection()
        with conn.pipeline():
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            taken = conn.execute(_TAKE, (BATCH,))
        rows = sorted(taken.fetchall())
        if not rows:
            conn.execute("COMMIT")
            return 0
        payloads = [p for _, body in rows for p in announce.payloads(self.origin, body)]
        with conn.pipeline():
            for start in range(0, len(payloads), NOTIFY_BATCH):
                batch = payloads[start:start + NOTIFY_BATCH]
                calls = ", ".join(["pg_notify(%s, %s)"] * len(batch))
                conn.execute(f"SELECT {calls}", [v for p in batch for v in (announce.CHANNEL, p)])
            conn.execute("COMMIT")
        return len(rows)

    def _connection(self) -> Any:
        if self._conn is None:
            import psycopg

            self._conn = psycopg.connect(self.dsn, autocommit=True)
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # an open transaction rolls back: its rows wait for the next one
            except Exception:
                pass


__all__ = ["Announcer", "LOCK_KEY", "STAGE", "SWEEP"]
