"""A no-op container engine for measuring and testing the control plane at scale (as nomad's mock driver).

Nothing runs: a "container" is a row. It starts after ``start_delay`` seconds, stops after ``stop_delay``,
gets ephemeral host ports for its published ports (numbers only: nothing listens), writes log lines, and
raises engine events (create, start, die, stop, destroy) on its own event stream, so the reconciler and the
log streams work on it as on Docker. It is chosen only by explicit setting (``DOCKYARD_ENGINE=simulated``
registers it as the local engine; see ``server/runtime.attach_engine``), never as a fallback.

An app steers its own container through its environment (module content ``environmental-variables``):

* ``SIMULATED_START_DELAY`` / ``SIMULATED_STOP_DELAY``: seconds, instead of the engine's delays;
* ``SIMULATED_EXIT_AFTER`` and ``SIMULATED_EXIT_CODE`` (default 1): the container exits with that code so
  many seconds after it started (a ``die`` event; the reconciler's ERROR rules then apply);
* ``SIMULATED_LOG``: lines (separated by ``\\n`` or ``|``) the container writes when it starts;
* ``SIMULATED_START_FAIL``: the start fails with that reason (``image-not-found``, ``port-conflict`` ...).

**Shared by processes.** The engine's state lives in one SQLite file named by the endpoint
(``simulated:///abs/path/engine.db``), in WAL mode: every process that opens a driver on that endpoint (two
API processes and two workers on one PostgreSQL, say) sees the same containers, ports, logs and events, as
processes sharing one Docker engine do. A process that dies leaves its containers where they are, and the
next sweep of any reconciler sees them. Timed transitions (an exit after N seconds) are not a background
thread's: whoever reads the engine first after the moment (an events stream polls every ``poll`` s, an
inspect) applies them in a write transaction, so each happens once and its ``die`` event is raised once.
The file's writes are not synced (``synchronous=OFF``): a simulated engine has nothing to keep across a
power cut, and its state survives any process's death.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from ..core.time import now_ts
from .base import (
    EXITED, RUNNING, Capabilities, Driver, DriverError, EngineEvent, EngineInfo, PublishedPort, StartResult,
    StopSignal, TaskSpec, TaskStatus,
)

SCHEME = "simulated"
VERSION = "simulated-1"
PORT_RANGE = (32768, 60999)  # Linux's ephemeral range, as Docker allocates from it
KILLED = 137  # the exit code of a container killed after its stop timeout
ENV_START_DELAY = "SIMULATED_START_DELAY"
ENV_STOP_DELAY = "SIMULATED_STOP_DELAY"
ENV_EXIT_AFTER = "SIMULATED_EXIT_AFTER"
ENV_EXIT_CODE = "SIMULATED_EXIT_CODE"
ENV_LOG = "SIMULATED_LOG"
ENV_START_FAIL = "SIMULATED_START_FAIL"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, deployment TEXT NOT NULL, instance TEXT NOT NULL, name TEXT NOT NULL,
    image TEXT NOT NULL, state TEXT NOT NULL, exit_code INTEGER, started_at TEXT, finished_at TEXT,
    ports TEXT NOT NULL, exit_at REAL, exit_with INTEGER, stop_delay REAL);
CREATE INDEX IF NOT EXISTS tasks_deployment ON tasks (deployment);
CREATE INDEX IF NOT EXISTS tasks_exit ON tasks (exit_at) WHERE exit_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ports (port INTEGER PRIMARY KEY, task TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment TEXT NOT NULL, instance TEXT NOT NULL, task TEXT NOT NULL,
    action TEXT NOT NULL, time TEXT NOT NULL, exit_code INTEGER);
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, deployment TEXT NOT NULL, time TEXT NOT NULL,
    line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_deployment ON logs (deployment, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def state_path(endpoint: str | None) -> str:
    """The state file an endpoint ``simulated:///abs/path`` names; DriverError if it names none."""
    parsed = urlparse(endpoint or "")
    if parsed.scheme != SCHEME or not parsed.path.startswith("/"):
        raise DriverError(f"a simulated engine's endpoint is simulated:///absolute/path, not {endpoint!r}",
                          reason="engine-unavailable")
    return parsed.path


def endpoint_for(path: str) -> str:
    return f"{SCHEME}://{os.path.abspath(path)}"


class SimulatedDriver(Driver):
    capabilities = Capabilities(swarm=False, logs_follow=True, events=True, stats=False, stacks=False)

    def __init__(self, endpoint: str | None = None, tls: Any = None, *, instance: str = "",
                 start_delay: float = 0.0, stop_delay: float = 0.0, poll: float = 0.02, **_: Any) -> None:
        """``instance``: this installation's id; it sees only the containers it created (as the Docker
        driver's label). ``poll``: seconds between two looks of an event or log stream at the state file."""
        self.endpoint = endpoint or ""
        self.path = state_path(endpoint)
        self.instance = instance
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.poll = poll
        self._local = threading.local()
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._db().executescript(_SCHEMA)

    # -- the state file ---------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")
            except sqlite3.Error as exc:
                raise DriverError(f"the simulated engine's state {self.path} cannot be opened: {exc}",
                                  reason="engine-unavailable", recoverable=True) from exc
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the state file. Writers take turns on a lock before SQLite's: this process's
        threads on a thread lock, the processes on an exclusive ``flock`` of ``<state file>.lock`` (released by
        the kernel if its holder dies). Left to SQLite's busy handler, dozens of threads starting containers at
        once back off in sleeps of up to 100 ms each, and a burst of starts spent most of its time there."""
        db = self._db()
        with _writer_turn(self.path):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _event(self, db: sqlite3.Connection, deployment: str, task: str, action: str,
               exit_code: int | None = None) -> None:
        db.execute("INSERT INTO events (deployment, instance, task, action, time, exit_code) VALUES (?,?,?,?,?,?)",
                   (deployment, self.instance, task, action, now_ts(), exit_code))

    def _log(self, db: sqlite3.Connection, deployment: str, task: str, line: str) -> None:
        db.execute("INSERT INTO logs (task, deployment, time, line) VALUES (?,?,?,?)",
                   (task, deployment, _rfc3339(), line))

    def _advance(self) -> None:
        """Apply the exits whose time has come (once, whoever looks first)."""
        now = time.time()
        db = self._db()
        if db.execute("SELECT 1 FROM tasks WHERE exit_at IS NOT NULL AND exit_at <= ? LIMIT 1", (now,)).fetchone() \
                is None:
            return
        with self._write() as db:
            due = db.execute("SELECT id, deployment, exit_with FROM tasks WHERE exit_at IS NOT NULL AND exit_at <= ? "
                             "AND state = ?", (now, RUNNING)).fetchall()
            for task_id, deployment, code in due:
                self._exit(db, task_id, deployment, code, f"exited with code {code}")
            db.execute("UPDATE tasks SET exit_at = NULL WHERE exit_at IS NOT NULL AND exit_at <= ?", (now,))

    def _exit(self, db: sqlite3.Connection, task_id: str, deployment: str, code: int, line: str) -> None:
        db.execute("UPDATE tasks SET state = ?, exit_code = ?, finished_at = ?, exit_at = NULL WHERE id = ?",
                   (EXITED, code, now_ts(), task_id))
        self._log(db, deployment, task_id, line)
        self._event(db, deployment, task_id, "die", code)

    def _scope(self) -> tuple[str, tuple[Any, ...]]:
        return ("instance = ?", (self.instance,)) if self.instance else ("1 = 1", ())

    # -- the interface ----------------------------------------------------------------------------------

    def check(self) -> EngineInfo:
        try:
            self._db().execute("SELECT 1 FROM tasks LIMIT 1").fetchall()
        except (sqlite3.Error, DriverError) as exc:
            return EngineInfo(reachable=False, message=f"the simulated engine's state cannot be read: {exc}")
        return EngineInfo(reachable=True, version=VERSION)

    def start(self, spec: TaskSpec) -> StartResult:
        env = dict(spec.env)
        if env.get(ENV_START_FAIL):
            raise DriverError(f"simulated start failure of {spec.image}: {env[ENV_START_FAIL]}",
                              reason=env[ENV_START_FAIL])
        pulled = now_ts()
        delay = _number(env, ENV_START_DELAY, self.start_delay)
        if delay > 0:
            time.sleep(delay)
        exit_after = env.get(ENV_EXIT_AFTER)
        task_id = secrets.token_hex(32)
        with self._write() as db:
            self._remove(db, spec.deployment_id)
            created = now_ts()
            ports = self._allocate(db, task_id, spec)
            db.execute("INSERT INTO tasks (id, deployment, instance, name, image, state, started_at, ports, exit_at, "
                       "exit_with, stop_delay) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (task_id, spec.deployment_id, self.instance, spec.name, spec.image, RUNNING, created,
                        json.dumps([[p.protocol, p.target, p.host_port] for p in ports]),
                        time.time() + float(exit_after) if exit_after else None,
                        int(env.get(ENV_EXIT_CODE) or 1), _number(env, ENV_STOP_DELAY, self.stop_delay)))
            self._event(db, spec.deployment_id, task_id, "create")
            self._event(db, spec.deployment_id, task_id, "start")
            self._log(db, spec.deployment_id, task_id, f"simulated container {spec.name} running {spec.image}")
            for line in (env.get(ENV_LOG) or "").replace("|", "\n").splitlines():
                self._log(db, spec.deployment_id, task_id, line)
        status = TaskStatus(deployment_id=spec.deployment_id, task_id=task_id, name=spec.name, state=RUNNING,
                            started_at=created, ports=ports, image=spec.image)
        return StartResult(status, phases=(("pulled", pulled), ("created", created), ("started", created)))

    def _allocate(self, db: sqlite3.Connection, task_id: str, spec: TaskSpec) -> tuple[PublishedPort, ...]:
        low, high = PORT_RANGE
        found = []
        row = db.execute("SELECT value FROM counters WHERE name = 'port'").fetchone()
        cursor = row[0] if row else low - 1
        for port in spec.ports:
            number = port.published
            if number is not None:
                if db.execute("SELECT 1 FROM ports WHERE port = ?", (number,)).fetchone():
                    raise DriverError(f"port {number} is already allocated", reason="port-conflict")
            else:
                for _ in range(high - low + 1):
                    cursor = low if cursor >= high else cursor + 1
                    if not db.execute("SELECT 1 FROM ports WHERE port = ?", (cursor,)).fetchone():
                        break
                else:
                    raise DriverError("no ephemeral host port is left", reason="port-conflict")
                number = cursor
            db.execute("INSERT INTO ports (port, task) VALUES (?, ?)", (number, task_id))
            found.append(PublishedPort(port.protocol, port.target, number, spec.publish_ip))
        db.execute("INSERT INTO counters (name, value) VALUES ('port', ?) "
                   "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (cursor,))
        return tuple(sorted(found, key=lambda p: (p.target, p.protocol)))

    def stop(self, deployment_id: str, timeout: float = 10.0) -> None:
        rows = self._db().execute("SELECT stop_delay FROM tasks WHERE deployment = ? AND state = ?",
                                  (deployment_id, RUNNING)).fetchall()
        if not rows:
            return
        delay = max(r[0] or 0.0 for r in rows)
        if delay > 0:
            time.sleep(min(delay, timeout))
        killed = delay > timeout
        with self._write() as db:
            for task_id, in db.execute("SELECT id FROM tasks WHERE deployment = ? AND state = ?",
                                       (deployment_id, RUNNING)).fetchall():
                self._exit(db, task_id, deployment_id, KILLED if killed else 0,
                           "killed after the stop timeout" if killed else "stopped")
                self._event(db, deployment_id, task_id, "stop")

    def destroy(self, deployment_id: str, *, remove_volumes: bool = False) -> str | None:
        with self._write() as db:
            self._remove(db, deployment_id)
        return None

    def _remove(self, db: sqlite3.Connection, deployment_id: str) -> None:
        for task_id, state in db.execute("SELECT id, state FROM tasks WHERE deployment = ?",
                                         (deployment_id,)).fetchall():
            if state == RUNNING:
                self._exit(db, task_id, deployment_id, KILLED, "killed")
            db.execute("DELETE FROM ports WHERE task = ?", (task_id,))
            db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            self._event(db, deployment_id, task_id, "destroy")

    def inspect(self, deployment_id: str) -> list[TaskStatus]:
        self._advance()
        rows = self._db().execute("SELECT id, name, image, state, exit_code, started_at, finished_at, ports "
                                  "FROM tasks WHERE deployment = ? ORDER BY rowid", (deployment_id,)).fetchall()
        return [TaskStatus(deployment_id=deployment_id, task_id=r[0], name=r[1], image=r[2], state=r[3],
                           exit_code=r[4] if r[3] == EXITED else None, started_at=r[5], finished_at=r[6],
                           ports=tuple(PublishedPort(p, t, h) for p, t, h in json.loads(r[7])))
                for r in rows]

    def logs(self, deployment_id: str, *, since: str | None = None, tail: int | None = None,
             timestamps: bool = True) -> list[str]:
        self._advance()
        rows = self._db().execute("SELECT time, line FROM logs WHERE deployment = ? AND time >= ? ORDER BY seq",
                                  (deployment_id, _rfc3339_of(since) if since else "")).fetchall()
        if tail is not None:
            rows = rows[-tail:] if tail > 0 else []
        return [f"{t} {line}" if timestamps else line for t, line in rows]

    def follow_logs(self, deployment_id: str, stop: StopSignal, *, tail: int | None = 0) -> Iterator[str]:
        """Lines with their timestamps as written; ends when ``stop`` is set or the container is removed or
        has exited (after its last lines)."""
        db = self._db()
        (last,) = db.execute("SELECT coalesce(max(seq), 0) FROM logs WHERE deployment = ?",
                             (deployment_id,)).fetchone()
        if tail is None or tail > 0:
            rows = db.execute("SELECT seq FROM logs WHERE deployment = ? ORDER BY seq DESC LIMIT ?",
                              (deployment_id, -1 if tail is None else tail)).fetchall()
            last = rows[-1][0] - 1 if rows else last
        return self._follow(deployment_id, stop, last)

    def _follow(self, deployment_id: str, stop: StopSignal, last: int) -> Iterator[str]:
        while not stop.is_set():
            self._advance()
            db = self._db()
            done = db.execute("SELECT count(*) FROM tasks WHERE deployment = ? AND state = ?",
                              (deployment_id, RUNNING)).fetchone()[0] == 0
            for seq, at, line in db.execute("SELECT seq, time, line FROM logs WHERE deployment = ? AND seq > ? "
                                            "ORDER BY seq", (deployment_id, last)).fetchall():
                last = seq
                yield f"{at} {line}"
            if done:
                return
            stop.event.wait(self.poll)

    def events(self, stop: StopSignal, since: str | None = None) -> Iterator[EngineEvent]:
        """Events of this installation's containers from now (or from ``since``, a timestamp): the position is
        taken before this returns, so an event that happens after the call is never missed."""
        db = self._db()
        if since:
            row = db.execute("SELECT coalesce(min(seq), 0) - 1 FROM events WHERE time >= ?", (since,)).fetchone()
            last = row[0] if row[0] >= 0 else db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        else:
            (last,) = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return self._events(stop, last)

    def _events(self, stop: StopSignal, last: int) -> Iterator[EngineEvent]:
        scope, params = self._scope()
        while not stop.is_set():
            try:
                self._advance()
                rows = self._db().execute(f"SELECT seq, deployment, task, action, time, exit_code FROM events "
                                          f"WHERE seq > ? AND {scope} ORDER BY seq", (last, *params)).fetchall()
            except sqlite3.Error as exc:
                raise DriverError(f"the simulated engine's events cannot be read: {exc}",
                                  reason="engine-unavailable", recoverable=True) from exc
            for seq, deployment, task, action, at, code in rows:
                last = seq
                yield EngineEvent(deployment_id=deployment, task_id=task, action=action, time=at, exit_code=code)
            if not rows:
                stop.event.wait(self.poll)

    def managed(self) -> dict[str, list[str]]:
        self._advance()
        scope, params = self._scope()
        found: dict[str, list[str]] = {}
        for deployment, task_id in self._db().execute(f"SELECT deployment, id FROM tasks WHERE {scope}", params):
            found.setdefault(deployment, []).append(task_id)
        return found


_writers: dict[str, tuple[threading.Lock, int]] = {}  # state file -> this process's writer lock, lock file
_writers_guard = threading.Lock()


@contextmanager
def _writer_turn(path: str) -> Iterator[None]:
    """The state file ``path``'s writer turn: this process's lock, then the lock file's across processes."""
    with _writers_guard:
        if path not in _writers:
            _writers[path] = (threading.Lock(), os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        lock, fd = _writers[path]
    with lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _number(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def _rfc3339() -> str:
    """Now, as Docker timestamps a log line (RFC 3339 with nanoseconds)."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def _rfc3339_of(ts: str) -> str:
    """A Nuvla timestamp (or an RFC 3339 one) as the log lines' form, for comparisons."""
    if ts.endswith("Z") and "." in ts:
        head, frac = ts[:-1].split(".", 1)
        return f"{head}.{frac.ljust(9, '0')}Z"
    return ts


__all__ = ["SimulatedDriver", "endpoint_for", "state_path"]
