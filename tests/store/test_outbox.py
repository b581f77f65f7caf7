"""PostgreSQL: changes wait in the outbox until an announcer sends them (``store/outbox.py``).

* Concurrent writers share WAL flushes, on a cluster with PostgreSQL's durable defaults: a write no longer
  sends its own NOTIFY, which held the notify lock through its commit's flush and made every commit of the
  installation flush alone.
* The changes a process committed but had not announced when it was killed are announced by another
  process's announcer, each once, in the order they were written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from dockyard.store import announce, outbox
from dockyard.store.db import Store

from ..conftest import drop_pg_database, new_pg_database
from ..support.postgres import durable_postgres

WRITERS = 32
ROUNDS = 20


def _doc(rid: str, value: str) -> dict:
    return {"id": rid, "resource-type": "thing", "created": "2026-01-01T00:00:00.000Z",
            "updated": "2026-01-01T00:00:00.000Z", "name": value}


def _wal_syncs(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0]


def test_concurrent_writers_share_wal_flushes():
    """32 writers, 640 durable commits: fewer WAL flushes than commits. With a NOTIFY in each transaction
    the same run flushed once per commit or more."""
    with durable_postgres() as url:
        store = Store(url)
        store.migrate()
        with store.write() as tx:
            for i in range(WRITERS):
                tx.insert(_doc(f"thing/{i}", "v0"))
        store.close()
        before = _wal_syncs(store.dsn)
        store = Store(url)
        start = threading.Barrier(WRITERS)

        def writer(i: int) -> None:
            start.wait()
            for r in range(ROUNDS):
                with store.write() as tx:
                    doc = tx.get(f"thing/{i}", for_update=True)
                    tx.replace({**doc, "name": f"v{r + 1}"})

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        store.close()  # its backends end, and so report their statistics
        time.sleep(0.5)
        syncs = _wal_syncs(store.dsn) - before
        commits = WRITERS * ROUNDS
        store = Store(url)
        with store.read() as tx:
            assert all(d["name"] == f"v{ROUNDS}" for d in tx.get_many([f"thing/{i}" for i in range(WRITERS)]))
        store.close()
        print(f"{syncs} WAL flushes for {commits} commits")
        assert 0 < syncs < commits * 0.75, f"{syncs} WAL flushes for {commits} commits"


DEAD_WRITER = """
import sys, time
from dockyard.store.db import Store
store = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    with store.write() as tx:
        tx.insert({"id": f"thing/dead-{i}", "resource-type": "thing", "created": "2026-01-01T00:00:00.000Z",
                   "updated": "2026-01-01T00:00:00.000Z", "name": str(i)})
    if i == 0:
        with store.write() as tx:
            doc = tx.get("thing/dead-0", for_update=True)
            tx.replace({**doc, "name": "edited"})
print("written", flush=True)
time.sleep(600)
"""


def test_changes_of_a_killed_process_are_announced_by_another(own_pg):
    """A process writes 21 changes while every announcer is held back (the test holds their lock), and is
    killed with SIGKILL: its changes wait in the outbox. Once the lock is free, another process's announcer
    sends each once, in the order written."""
    count, pg_url = 20, own_pg
    made = Store(pg_url)
    made.migrate()
    made.close()
    dsn = made.dsn
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn, autocommit=True) as holder:
        listener.execute(f"LISTEN {announce.CHANNEL}")
        holder.execute("SELECT pg_advisory_lock(%s)", (outbox.LOCK_KEY,))
        waiting_before = holder.execute("SELECT count(*) FROM outbox").fetchone()[0]
        child = subprocess.Popen([sys.executable, "-c", DEAD_WRITER, pg_url, str(count)], stdout=subprocess.PIPE,
                                 text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        try:
            assert child.stdout.readline().strip() == "written"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert holder.execute("SELECT count(*) FROM outbox").fetchone()[0] == waiting_before + count + 1
        other = Store(pg_url)
        other.announcer.start()  # as a change feed that listens does
        try:
            holder.execute("SELECT pg_advisory_unlock(%s)", (outbox.LOCK_KEY,))
            heard = Reassembled()
            deadline = time.monotonic() + 10
            while len(heard.ids) < count + 1 and time.monotonic() < deadline:
                for note in listener.notifies(timeout=0.5, stop_after=1):
                    heard.add(note.payload)
            time.sleep(2 * outbox.SWEEP)  # a second announcement would arrive by now
            for note in listener.notifies(timeout=0.1):
                heard.add(note.payload)
        finally:
            other.close()
    expected = ["thing/dead-0", "thing/dead-0", *[f"thing/dead-{i}" for i in range(1, count)]]
    assert heard.ids == expected
    assert heard.names[:2] == ["0", "edited"]


class Reassembled:
    """What a listener heard of the dead writer's documents, in order."""

    def __init__(self) -> None:
        self.parts = announce.Reassembly()
        self.ids: list[str] = []
        self.names: list[str] = []

    def add(self, payload: str) -> None:
        for _, rid, doc in self.parts.add(payload) or []:
            if rid.startswith("thing/dead-"):
                self.ids.append(rid)
                self.names.append(doc["name"])


@pytest.fixture
def own_pg(pg_url):
    """A database of this test's own on the suite's PostgreSQL: its outbox and its announcers' lock are its own."""
    url = new_pg_database(pg_url)
    yield url
    drop_pg_database(url)

