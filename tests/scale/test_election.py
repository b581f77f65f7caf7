"""Elections on the test PostgreSQL: one holder per role across sessions and processes, taken over within
seconds of the holder's SIGKILL (its session ends, PostgreSQL releases its advisory locks)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from functools import partial

import sqlalchemy as sa

from dockyard.jobs.election import RETRY, Election
from dockyard.store.db import Store

from ..support.relay import Hook, Relay, pass_on

HOLDER = """
import sys, time
from dockyard.jobs.election import Election
from dockyard.store.db import Store
election = Election(Store(sys.argv[1]))
assert election.holds("engine:credential/x")
print("held", flush=True)
time.sleep(600)
"""


def test_one_holder_per_role_and_release_on_close(pg_url):
    a, b = Election(Store(pg_url)), Election(Store(pg_url))
    try:
        assert a.holds("engine:credential/one")
        assert a.holds("engine:credential/one")  # again: still ours
        assert not b.holds("engine:credential/one")
        assert b.holds("engine:credential/two")  # another role is free
        assert not a.holds("engine:credential/two")
        a.release("engine:credential/one")
        assert b.holds("engine:credential/one")
        assert b.held() == {"engine:credential/one", "engine:credential/two"}
        b.close()
        assert not b.holds("engine:credential/two")  # closed: holds nothing, takes nothing
        assert a.holds("engine:credential/one") and a.holds("engine:credential/two")
    finally:
        a.close()
        b.close()


class LateGoodbyes(Relay):
    """PostgreSQL behind a loopback relay that delays each client's Terminate message by ``delay`` seconds:
    the backend of a closed connection then exits, and releases its session's locks, that much later, as a
    busy database server's does (the client has long moved on)."""

    TERMINATE = b"X\x00\x00\x00\x04"

    def __init__(self, url: str, delay: float = 3.0) -> None:
        target = sa.engine.make_url(url)
        server = (target.host or "127.0.0.1", target.port or 5432)
        self._delay = delay
        listener = socket.create_server(("127.0.0.1", 0))
        self.url = target.set(host="127.0.0.1", port=listener.getsockname()[1]).render_as_string(
            hide_password=False)
        super().__init__(listener, partial(socket.create_connection, server))

    def hooks(self) -> tuple[Hook, Hook]:
        return self._asked, pass_on

    def _asked(self, data: bytes) -> None:
        if data.startswith(self.TERMINATE):
            time.sleep(self._delay)


def test_a_clean_stop_frees_its_roles_before_it_returns(pg_url):
    """A closed connection's backend releases its advisory locks only as it exits, after the client has moved
    on (CI once saw the role still held right after close). Close releases them first, so the role is free
    the moment close returns, however late the old backend goes."""
    relay = LateGoodbyes(pg_url)
    role = f"engine:credential/{uuid.uuid4().hex[:8]}"
    leaving, staying = Election(Store(relay.url)), Election(Store(pg_url))
    try:
        assert leaving.holds(role)
        assert not staying.holds(role)
        leaving.close()
        assert staying.holds(role)
    finally:
        leaving.close()
        staying.close()
        relay.close()


def test_a_killed_holder_is_taken_over_within_a_retry(pg_url):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, pg_url], stdout=subprocess.PIPE, text=True)
    mine = Election(Store(pg_url))
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not mine.holds("engine:credential/x")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        while not mine.holds("engine:credential/x"):  # the callers' loops try every RETRY s
            assert time.monotonic() - killed < 5.0, "the lock of a killed process was not released"
            time.sleep(RETRY)
        assert time.monotonic() - killed <= RETRY + 1.0
    finally:
        holder.kill()
        holder.wait()
        mine.close()


def test_a_session_ended_under_the_holder_loses_its_roles(pg_url):
    """A held role is only trusted while the session answers: a terminated backend means another may hold
    it now, so this process stops acting on it and competes again with a new session. The role's name is this
    test's own: the session's database is shared with servers other tests start, whose processes hold the
    installation's roles ("readiness") while they run (one did, once, when this test took "readiness")."""
    role = f"readiness-{uuid.uuid4().hex[:8]}"
    a, b = Election(Store(pg_url)), Election(Store(pg_url))
    try:
        assert a.holds(role)
        pid = a._conn.info.backend_pid
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p, 10000)"), {"p": pid})  # returns once it is gone
        admin.dispose()
        assert b.holds(role)
        assert not a.holds(role)  # the dead session found, a new one does not win
        assert a.held() == set()
    finally:
        a.close()
        b.close()


def test_sqlite_has_one_process_holding_everything(tmp_path):
    election = Election(Store(f"sqlite:///{tmp_path / 'store.db'}"))
    assert election.holds("engine:credential/one") and election.holds("readiness")
    election.close()
    assert not election.holds("readiness")
