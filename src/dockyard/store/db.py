"""The document store: SQLite (embedded default) or PostgreSQL behind one interface.

All SQL lives in this package. Values are always bound; identifiers come from fixed text. On SQLite every
write transaction is ``BEGIN IMMEDIATE`` behind one in-process writer lock (so writers queue instead of
spinning in SQLite's busy handler), with WAL and ``synchronous=FULL`` so a write is durable before the API
answers. Writes on SQLite commit in groups: writers that queue while one commits run their bodies, each in a
savepoint of its own, in one transaction on the store's write connection, and the last of them commits for
all; each is answered only after that COMMIT (one fsync for the group). On PostgreSQL an edit reads its
document ``FOR UPDATE``, and concurrent transactions share WAL flushes on their own: a write stores its
changes in the outbox instead of sending a NOTIFY, which would make every commit wait for the one before
(``store/outbox.py``).
"""

from __future__ import annotations

import collections
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..core.errors import Conflict, InsufficientStorage
from . import announce, migrate, outbox
from .attrs import flatten
from .query import Query, SearchResult, run_search, run_ids

log = logging.getLogger("dockyard.store")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# PostgreSQL channel on which each committed write transaction's changes reach every process (store/outbox.py)
CHANGES_CHANNEL = announce.CHANNEL

# a committed change of a document: "add" | "edit" | "delete", the id, the document (as stored, or as it was)
Change = tuple[str, str, dict[str, Any]]


class Store:
    def __init__(self, url: str, *, pool_size: int = 16, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2)
            _configure_sqlite(self.engine, busy_timeout)
        elif self.dialect == "postgresql":
            # no pre-ping: it would cost a round trip per request; a dropped connection is replaced on error
            self.engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size)
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        # SQLite group commit: the write connection, the open group, writers queued for the lock
        self._group_conn: Connection | None = None
        self._group: _Group | None = None
        self._queued = 0
        self._queued_lock = threading.Lock()
        # called with each write transaction's changes once it has committed, outside the write lock: the
        # event stream follows every change here, including those made inside hooks and jobs
        self.observers: list[Callable[[list[Change]], None]] = []
        # names this process in its change notifications, so that it can skip its own
        self.origin = uuid.uuid4().hex[:12]
        self._order = threading.Lock()
        self._line: collections.deque[list[Any]] = collections.deque()
        # SQLite file: each thread keeps one plain sqlite3 connection for keyed one-statement reads
        database = sa.engine.make_url(url).database if self.dialect == "sqlite" else None
        self._quick_path = database if database and database != ":memory:" and not database.startswith("file:") \
            else None
        self._quick_local = threading.local()
        # PostgreSQL: the one-statement read transaction of this thread's request, while ``prefetched`` runs
        self._ambient = threading.local()
        self._quick_all: weakref.WeakSet[Any] = weakref.WeakSet()
        self._busy_ms = int(busy_timeout * 1000)
        # PostgreSQL: moves committed changes from the outbox to NOTIFY (store/outbox.py)
        self.announcer = outbox.Announcer(self.dsn, self.origin) if self.dialect == "postgresql" else None

    @property
    def dsn(self) -> str:
        """PostgreSQL: the database as psycopg's connection string, for the connections of its own that
        listeners, elections and the announcer hold outside the pool."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def optimize(self) -> None:
        """Refresh the planner's statistics (SQLite has none until asked; PostgreSQL's autovacuum keeps
        its own), so that searches start from their most selective index.

        SQLite keeps no statistics of ``resources``: every search reaches it through a set of keys or ids,
        or through the type index, and the counts of a store analysed while small (a server started on a
        new installation keeps them) made a rowid look-up per match look dearer than a scan of every
        document (name='doc-N' over 100,000: 0.4 ms -> 600 ms)."""
        if self.dialect != "sqlite":
            return
        with self.write() as tx:
            tx.conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            tx.conn.exec_driver_sql("ANALYZE attrs")
            tx.conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'resources'")

    def close(self) -> None:
        if self.announcer is not None:
            self.announcer.close()
        if self._write_lock is not None:
            with self._write_lock:
                if self._group_conn is not None:
                    self._group_conn.close()
                    self._group_conn = None
        for holder in list(self._quick_all):
            holder.conn.close()
        self.engine.dispose()

    @contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator["Tx"]:
        """A read transaction; ``snapshot=False`` for one-statement reads, which need no BEGIN/COMMIT."""
        if not snapshot and self._quick_path is not None:
            quick = _QuickTx(self)
            try:
                yield quick
            finally:
                quick.close()
            return
        if snapshot:
            with self.engine.connect() as conn:
                with conn.begin():
                    tx = Tx(conn, self.dialect)
                    yield tx
                    tx.flush()
            return
        ambient = getattr(self._ambient, "tx", None)
        if ambient is not None:
            yield ambient
            return
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.info["begin"] = ""  # autocommit: each statement is its own transaction
            else:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                tx = Tx(conn, self.dialect)
                yield tx
                tx.flush()
            finally:
                conn.info["begin"] = "BEGIN"
                conn.rollback()

    @contextmanager
    def prefetched(self, ids: Collection[str]) -> Iterator[None]:
        """PostgreSQL: read these documents in one statement, then let this thread's one-statement reads
        (``read(snapshot=False)``) run on that connection until the block ends, their first keyed get of each
        answered from what it read. A GET reads its session and its document so: one round trip and one
        connection instead of two. Elsewhere a no-op (SQLite's keyed reads cost no round trip)."""
        if self.dialect != "postgresql" or getattr(self._ambient, "tx", None) is not None:
            yield
            return
        with self.read(snapshot=False) as tx:
            tx.prefetch(ids)
            self._ambient.tx = tx
            try:
                yield
            finally:
                self._ambient.tx = None

    def _quick_conn(self) -> sqlite3.Connection:
        """This thread's own connection to the SQLite file, in autocommit mode (each statement sees the
        latest commit: a revoked session is refused on the very next request)."""
        holder = getattr(self._quick_local, "holder", None)
        if holder is None:
            conn = sqlite3.connect(self._quick_path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            conn.execute("PRAGMA mmap_size=268435456")
            holder = self._quick_local.holder = _Held(conn)
            self._quick_all.add(holder)
        return holder.conn

    @contextmanager
    def write(self) -> Iterator["Tx"]:
        if self._write_lock is not None:
            with self._write_grouped() as tx:
                yield tx
            return
        slot: list[Any] | None = None
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    tx = Tx(conn, self.dialect)
                    yield tx
                    if tx.changes:  # announced once committed (store/outbox.py)
                        tx._pending.append((outbox.STAGE, (announce.body(tx.changes),), None))
                    if self.observers and tx.changes:
                        # a place in line once the writes hold their row locks, before COMMIT (see _reserve)
                        tx.flush()
                        slot = self._reserve(tx)
                    else:  # the writes not sent yet, the outbox row and COMMIT: one round trip
                        tx.flush(commit=True)
        except BaseException as exc:
            self._release(slot, None)
            _raise_storage(exc)
            raise
        if tx.changes:
            self.announcer.poke()  # type: ignore[union-attr]
        self._committed_tx(slot, tx)

    def _committed_tx(self, slot: list[Any] | None, tx: "Tx") -> None:
        self._release(slot, tx)
        for done in tx.after_commit:
            try:
                done()
            except Exception:  # the write has committed: what follows it must not undo the answer
                log.exception("an after-commit callback failed")

    # SQLite group commit. A writer takes the write lock, opens the group's transaction if none is open
    # (BEGIN IMMEDIATE), runs its body in a savepoint (a failing body rolls back alone), and takes its place
    # in the change journal in body order, which is commit order. It then commits the group itself when no
    # other writer is queued for the lock (or the group is full or old); otherwise it leaves the commit to the
    # next one and waits. Every member is answered after the group's COMMIT, or gets its error: durability is
    # that of one transaction per write, and one COMMIT (one fsync) serves all the writers that queued
    # meanwhile. Its body sees the uncommitted writes of earlier members, which commit or fail with its own.

    @contextmanager
    def _write_grouped(self) -> Iterator["Tx"]:
        assert self._write_lock is not None
        with self._queued_lock:
            self._queued += 1
        self._write_lock.acquire()
        slot: list[Any] | None = None
        group: _Group | None = None
        try:
            with self._queued_lock:
                self._queued -= 1
            try:
                group = self._open_group()
                savepoint = self._group_conn.begin_nested()  # type: ignore[union-attr]
                tx = Tx(self._group_conn, self.dialect)  # type: ignore[arg-type]
                try:
                    yield tx
                    savepoint.commit()
                except BaseException:
                    self._roll_back_body(savepoint, group)
                    raise
                slot = self._reserve(tx)
                group.members += 1
            finally:
                self._maybe_commit()
        except BaseException as exc:
            self._write_lock.release()
            self._release(slot, None)
            _raise_storage(exc)
            raise
        self._write_lock.release()
        group.done.wait()
        if group.error is not None:
            self._release(slot, None)
            _raise_storage(group.error)
            raise group.error
        self._committed_tx(slot, tx)

    def _open_group(self) -> "_Group":
        if self._group is not None:
            return self._group
        if self._group_conn is None:
            conn = self.engine.connect()
            conn.info["begin"] = "BEGIN IMMEDIATE"
            self._group_conn = conn
        try:
            self._group_conn.begin()
        except BaseException:
            self._end_group(None)  # nothing of the group was written: roll back, or replace the connection
            raise
        self._group = _Group()
        return self._group

    def _roll_back_body(self, savepoint: Any, group: "_Group") -> None:
        try:
            savepoint.rollback()
        except BaseException as exc:  # the connection is unusable: the whole group fails, unanswered
            log.warning("rolling back a write's savepoint failed, failing its group: %s", exc)
            self._end_group(exc)

    def _maybe_commit(self) -> None:
        """Commit the open group unless another writer is about to join it (called under the write lock)."""
        group = self._group
        if group is None:
            return
        with self._queued_lock:
            queued = self._queued
        if queued and group.members < GROUP_MAX and time.monotonic() - group.opened < GROUP_AGE:
            return
        if group.members == 0:
            self._end_group(None, commit=False)
            return
        try:
            self._group_conn.commit()  # type: ignore[union-attr]
        except BaseException as exc:
            self._end_group(exc)
            return
        self._end_group(None, commit=None)

    def _end_group(self, error: BaseException | None, *, commit: bool | None = False) -> None:
        group, self._group = self._group, None
        conn = self._group_conn
        if commit is False and conn is not None:
            try:
                conn.rollback()
            except BaseException:
                log.exception("rolling back a write group failed: its connection is replaced")
                self._group_conn = None
                try:
                    conn.invalidate()
                    conn.close()
                except BaseException:
                    pass
        if group is not None:
            group.error = error
            group.done.set()

    # Observers see transactions in commit order. Each writer learns of its commit on its own thread, so a
    # writer that is slow to report (its thread descheduled after COMMIT) could otherwise be overtaken by the
    # next writer of the same document: a place in line is taken just before COMMIT (row locks, or SQLite's
    # write lock, order conflicting commits by then), and the changes are handed over from the head of the line.

    def _reserve(self, tx: "Tx") -> list[Any] | None:
        if not tx.changes or not self.observers:
            return None
        slot: list[Any] = [None, False]  # [changes, settled]
        with self._order:
            self._line.append(slot)
        return slot

    def _release(self, slot: list[Any] | None, tx: "Tx | None") -> None:
        """Settle a place in line (``tx`` None: it rolled back) and hand over every settled head."""
        if slot is None:
            return
        changes = None if tx is None else [(change, rid, tx.load(doc)) for change, rid, doc in tx.changes]
        with self._order:
            slot[0], slot[1] = changes, True
            while self._line and self._line[0][1]:
                ready = self._line.popleft()[0]
                if ready:
                    self._committed(ready)

    def _committed(self, changes: list[Change]) -> None:
        for observe in list(self.observers):
            try:
                observe(changes)  # under the order lock: observers only hand the changes on
            except Exception:  # the write has committed: an observer's failure must not undo the answer
                log.exception("a change observer failed")


GROUP_MAX = 256  # writers in one group commit at most
GROUP_AGE = 0.05  # s: a group older than this commits even if more writers queue


class _Group:
    """One group commit on SQLite: its members wait for ``done``; ``error`` is set if it did not commit."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.members = 0
        self.opened = time.monotonic()


# PostgreSQL: a document's index rows in one statement, as four arrays (``_columns``) after its key's CTE ``r``
_PG_INDEX = "INSERT INTO attrs (key, type, path, k, s, n) SELECT r.key, %s, u.p, u.k, u.s, u.n"
_PG_ROWS = "unnest(CAST(%s AS text[]), CAST(%s AS text[]), CAST(%s AS text[]), CAST(%s AS float8[])) AS u(p, k, s, n)"
_DUPLICATE_ID = re.compile(r"Key \(id\)=\((.*)\) already exists")


def _duplicate(exc: BaseException, added: list[str]) -> Conflict | None:
    """The 409 of an INSERT that failed on PostgreSQL because a document with its id exists."""
    exc = getattr(exc, "orig", None) or exc  # raised by a statement of SQLAlchemy's in the same pipeline
    diag = getattr(exc, "diag", None)
    if getattr(exc, "sqlstate", None) != "23505" or diag is None or diag.table_name != "resources":
        return None
    found = _DUPLICATE_ID.search(diag.message_detail or "")
    return Conflict.for_resource(found.group(1) if found else (added[0] if added else "resource"))


def _columns(rows: list[Any]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    return ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def _raise_storage(exc: BaseException) -> None:
    if isinstance(exc, sa.exc.OperationalError) and _disk_full(exc):
        raise InsufficientStorage(f"the database's disk is full: nothing was written; free space "
                                  f"and try again ({exc.orig})") from exc


SQLITE_FULL = 13
PG_DISK_FULL = "53100"


def _disk_full(exc: sa.exc.OperationalError) -> bool:
    """SQLite's "database or disk is full", PostgreSQL's disk_full: a write the database had no room for."""
    orig = exc.orig
    return getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL or getattr(orig, "sqlstate", None) == PG_DISK_FULL


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # we issue BEGIN ourselves (below), so that writers can take the lock up front
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # broad filters build temporary id sets: keep them in memory, with room in the page cache
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA mmap_size=268435456")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        statement = conn.info.get("begin", "BEGIN")
        if statement:
            conn.exec_driver_sql(statement)


class Tx:
    """One transaction: document reads and writes plus searches, all consistent with each other."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect
        # what this transaction wrote, in order, each document as its stored JSON (later edits of the same
        # dict do not rewrite history); the store's observers get it after the commit
        self.changes: list[tuple[str, str, Any]] = []
        # called once the transaction has committed, never if it rolls back (log lines of what it did)
        self.after_commit: list[Callable[[], None]] = []
        # PostgreSQL: document writes not sent yet, (statement, parameters, id of an added document)
        self._pending: list[tuple[str, Any, str | None]] = []
        # documents read ahead (``prefetch``), None for those missing; each answers one keyed get
        self._ahead: dict[str, dict[str, Any] | None] = {}

    @property
    def conn(self) -> Connection:
        """The transaction's connection. On PostgreSQL the document writes not sent yet go first, so that
        whatever runs on it sees them."""
        if self._pending:
            self.flush()
        return self._conn

    def flush(self, *, commit: bool = False) -> None:
        """PostgreSQL: send the document writes not sent yet, then COMMIT if asked, in one pipeline: one round
        trip. An added document whose id exists fails the transaction with a 409 here (its INSERT fails, the
        rest is not run)."""
        pending, self._pending = self._pending, []
        if not pending and not commit:
            return
        pg = self._conn.connection.dbapi_connection
        try:
            with pg.pipeline():  # type: ignore[union-attr]
                cursor = pg.cursor()  # type: ignore[union-attr]
                for sql, params, _ in pending:
                    cursor.execute(sql, params)
                if commit:  # as a statement: Connection.commit() would wait for it, then the exit again
                    cursor.execute("COMMIT")
        except Exception as exc:
            conflict = _duplicate(exc, [rid for _, _, rid in pending if rid])
            if conflict is not None:
                raise conflict from None
            self._conn._handle_dbapi_exception(exc, None, None, None, None)

    # -- documents ---------------------------------------------------------------------------------

    # The statements of every write (and a document's keyed read) go to the transaction's own DBAPI connection
    # with plain parameters: SQLAlchemy's statement machinery (cache keys, parameters processed per row, result
    # wrapping) was half of an edit's CPU. On PostgreSQL a document and its index rows are one statement each.

    def _execute(self, sql: str, params: Any = (), *, many: bool = False) -> Any:
        """Run ``sql`` (``?`` placeholders) on the DBAPI connection; its errors as SQLAlchemy raises them (a lost
        connection is invalidated, a full disk recognised)."""
        if self.dialect != "sqlite":
            sql = sql.replace("?", "%s")
        dbapi = self.conn.connection.dbapi_connection
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        # psycopg sends BEGIN on its own before a transaction's first statement, one round trip; in a pipeline
        # the two travel together
        together = dbapi.pipeline() if self.dialect == "postgresql" and _opens_transaction(dbapi) else nullcontext()
        try:
            with together:
                (cursor.executemany if many else cursor.execute)(sql, params)
        except Exception as exc:
            self.conn._handle_dbapi_exception(exc, sql, params, cursor, None)
        return cursor

    def prefetch(self, ids: Collection[str]) -> None:
        """Read these documents in one statement: the next keyed get of each (not ``for_update``) takes it."""
        self._ahead = dict.fromkeys(ids)
        for rid, raw in self._execute("SELECT id, doc FROM resources WHERE id IN (SELECT unnest(CAST(? AS text[])))",
                                      (list(self._ahead),)):
            self._ahead[rid] = self.load(raw)

    def get(self, resource_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        if self._ahead and not for_update and resource_id in self._ahead:
            return self._ahead.pop(resource_id)
        sql = "SELECT doc FROM resources WHERE id = ?"
        if for_update and self.dialect == "postgresql":
            sql += " FOR UPDATE"
        row = self._execute(sql, (resource_id,)).fetchone()
        return None if row is None else self.load(row[0])

    def get_many(self, ids: Collection[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        stmt = sa.text("SELECT doc FROM resources WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True))
        return [self.load(row[0]) for row in self.conn.execute(stmt, {"ids": list(ids)})]

    def exists(self, resource_id: str) -> bool:
        row = self.conn.execute(sa.text("SELECT 1 FROM resources WHERE id = :id"), {"id": resource_id})
        return row.first() is not None

    def insert(self, doc: dict[str, Any], *, exclude: Collection[str] = ()) -> None:
        rid, rtype = doc["id"], doc["resource-type"]
        raw = _dumps(doc)
        row = (rid, rtype, doc["created"], doc["updated"], raw)
        rows = flatten(doc, exclude)
        if self.dialect == "postgresql":  # sent with the next read or the COMMIT
            self._pending.append((
                "WITH r AS (INSERT INTO resources (id, type, created, updated, doc) VALUES (%s, %s, %s, %s, "
                f"CAST(%s AS jsonb)) RETURNING key) {_PG_INDEX} FROM r, {_PG_ROWS}",
                (*row, rtype, *_columns(rows)), rid))
        else:
            key = self._execute("INSERT OR IGNORE INTO resources (id, type, created, updated, doc) "
                                "VALUES (?, ?, ?, ?, ?) RETURNING key", row).fetchone()
            if key is None:
                raise Conflict.for_resource(rid)
            self._index(key[0], rtype, rows)
        self.changes.append(("add", rid, raw))

    def replace(self, doc: dict[str, Any], *, exclude: Collection[str] = ()) -> None:
        rid, rtype = doc["id"], doc["resource-type"]
        raw = _dumps(doc)
        rows = flatten(doc, exclude)
        if self.dialect == "postgresql":
            # one snapshot: the DELETE removes the old rows only, the INSERT adds the new ones; sent with the
            # next read or the COMMIT
            self._pending.append((
                "WITH r AS (UPDATE resources SET doc = CAST(%s AS jsonb), updated = %s WHERE id = %s RETURNING key), "
                "d AS (DELETE FROM attrs WHERE key IN (SELECT key FROM r)) "
                f"{_PG_INDEX} FROM r, {_PG_ROWS}",
                (raw, doc["updated"], rid, rtype, *_columns(rows)), None))
        else:
            key = self._execute("UPDATE resources SET doc = ?, updated = ? WHERE id = ? RETURNING key",
                                (raw, doc["updated"], rid)).fetchone()
            if key is not None:
                self._reindex(key[0], rtype, rows)
        self.changes.append(("edit", rid, raw))

    def _reindex(self, key: int, rtype: str, rows: list[Any]) -> None:
        """SQLite: replace the index rows of the document ``key`` by ``rows``, rewriting only the paths whose
        rows changed: each row is four b-tree entries, and an edit mostly changes two or three of a
        document's twenty paths."""
        stored = collections.Counter(self._execute("SELECT path, k, s, n FROM attrs WHERE key = ?", (key,)))
        wanted = collections.Counter(tuple(r) for r in rows)
        changed = {r[0] for r in (stored - wanted) + (wanted - stored)}
        if not changed:
            return
        self._execute("DELETE FROM attrs WHERE key = ? AND path = ?", [(key, p) for p in changed], many=True)
        self._index(key, rtype, [r for r in rows if r[0] in changed])

    def delete(self, resource_id: str) -> bool:
        if self.dialect == "postgresql":
            row = self._execute("WITH r AS (DELETE FROM resources WHERE id = ? RETURNING key, doc), "
                                "a AS (DELETE FROM attrs WHERE key IN (SELECT key FROM r)) SELECT doc FROM r",
                                (resource_id,)).fetchone()
        else:
            row = self._execute("DELETE FROM resources WHERE id = ? RETURNING key, doc", (resource_id,)).fetchone()
            if row is not None:
                self._execute("DELETE FROM attrs WHERE key = ?", (row[0],))
                row = row[1:]
        if row is None:
            return False
        self.changes.append(("delete", resource_id, row[0]))
        return True

    def _index(self, key: int, rtype: str, rows: list[Any]) -> None:
        """SQLite: the index rows of the document ``key``."""
        if rows:
            self._execute("INSERT INTO attrs (key, type, path, k, s, n) VALUES (?, ?, ?, ?, ?, ?)",
                          [(key, rtype, *r) for r in rows], many=True)

    def load(self, raw: Any) -> dict[str, Any]:
        return raw if isinstance(raw, dict) else json.loads(raw)

    # -- installation facts ----------------------------------------------------------------------------

    def meta(self, key: str, default: str) -> str:
        """The stored value of ``key``; ``default`` is stored first when there is none (first writer wins)."""
        row = self.conn.execute(sa.text("SELECT value FROM meta WHERE key = :k"), {"k": key}).first()
        if row is not None:
            return row[0]
        conflict = "ON CONFLICT (key) DO NOTHING"
        self.conn.execute(sa.text(f"INSERT INTO meta (key, value) VALUES (:k, :v) {conflict}"),
                          {"k": key, "v": default})
        return self.conn.execute(sa.text("SELECT value FROM meta WHERE key = :k"), {"k": key}).scalar_one()

    # -- searches ------------------------------------------------------------------------------------

    def search(self, query: Query) -> SearchResult:
        return run_search(self, query)

    def ids(self, query: Query) -> list[str]:
        """Ids of every document the query matches (its paging applies)."""
        return run_ids(self, query)

    def find_one(self, rtype: str, path: str, value: str) -> dict[str, Any] | None:
        """The first document of a type whose attribute ``path`` has the string ``value``."""
        row = self.conn.execute(
            sa.text("SELECT r.doc FROM resources r WHERE r.key IN (SELECT a.key FROM attrs a WHERE "
                    "a.type = :type AND a.path = :path AND a.k = 's' AND a.s = :value) LIMIT 1"),
            {"type": rtype, "path": path, "value": value},
        ).first()
        return None if row is None else self.load(row[0])

    def find_all(self, rtype: str, path: str, value: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            sa.text("SELECT r.doc FROM resources r WHERE r.key IN (SELECT a.key FROM attrs a WHERE "
                    "a.type = :type AND a.path = :path AND a.k = 's' AND a.s = :value)"),
            {"type": rtype, "path": path, "value": value},
        )
        return [self.load(row[0]) for row in rows]


def _opens_transaction(dbapi: Any) -> bool:
    """Whether a statement on this psycopg connection would begin its transaction (psycopg sends BEGIN first)."""
    from psycopg.pq import TransactionStatus

    return not dbapi.autocommit and dbapi.info.transaction_status == TransactionStatus.IDLE


class _Held:
    """A thread's quick-read connection, closed when the thread ends (its thread-local goes away)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        self.conn.close()


class _QuickTx(Tx):
    """A one-statement read on a SQLite file. Keyed gets, the hot path of every request (its session, then
    the document), use the thread's own sqlite3 connection: no pool checkout and no statement machinery,
    which were two thirds of a GET's time. Anything else opens a pooled connection on first use."""

    def __init__(self, store: Store) -> None:  # noqa: D107 - no call to Tx.__init__: conn is lazy here
        self.dialect = store.dialect
        self.changes = []
        self.after_commit = []
        self._pending = []
        self._ahead = {}
        self._store = store
        self._pooled: Connection | None = None

    @property  # type: ignore[override]
    def conn(self) -> Connection:
        if self._pooled is None:
            conn = self._store.engine.connect()
            conn.info["begin"] = ""  # autocommit, as Store.read(snapshot=False)
            self._pooled = conn
        return self._pooled

    def get(self, resource_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        row = self._store._quick_conn().execute("SELECT doc FROM resources WHERE id = ?", (resource_id,)).fetchone()
        return None if row is None else self.load(row[0])

    def close(self) -> None:
        if self._pooled is not None:
            conn, self._pooled = self._pooled, None
            conn.info["begin"] = "BEGIN"
            try:
                conn.rollback()
            finally:
                conn.close()
