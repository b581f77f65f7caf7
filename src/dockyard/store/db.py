"""The document store: SQLite (embedded default) or PostgreSQL behind one interface.

All SQL lives in this package. Values are always bound; identifiers come from fixed text. On SQLite every
write transaction is ``BEGIN IMMEDIATE`` behind one in-process writer lock (so writers queue instead of
spinning in SQLite's busy handler), with WAL and ``synchronous=FULL`` so a write is durable before the API
answers. On PostgreSQL an edit reads its document ``FOR UPDATE``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..core.errors import Conflict
from . import migrate
from .attrs import flatten
from .query import Query, SearchResult, run_search, run_ids

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Store:
    def __init__(self, url: str, *, pool_size: int = 16, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2)
            _configure_sqlite(self.engine, busy_timeout)
        elif self.dialect == "postgresql":
            self.engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                           pool_pre_ping=True)
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator["Tx"]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield Tx(conn, self.dialect)

    @contextmanager
    def write(self) -> Iterator["Tx"]:
        if self._write_lock is None:
            with self.engine.connect() as conn:
                with conn.begin():
                    yield Tx(conn, self.dialect)
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.info["begin"] = "BEGIN IMMEDIATE"
            try:
                with conn.begin():
                    yield Tx(conn, self.dialect)
            finally:
                conn.info["begin"] = "BEGIN"


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # we issue BEGIN ourselves (below), so that writers can take the lock up front
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.get("begin", "BEGIN"))


class Tx:
    """One transaction: document reads and writes plus searches, all consistent with each other."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    # -- documents ---------------------------------------------------------------------------------

    def get(self, resource_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        sql = "SELECT doc FROM resources WHERE id = :id"
        if for_update and self.dialect == "postgresql":
            sql += " FOR UPDATE"
        row = self.conn.execute(sa.text(sql), {"id": resource_id}).first()
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
        rid = doc["id"]
        params = {"id": rid, "type": doc["resource-type"], "created": doc["created"],
                  "updated": doc["updated"], "doc": _dumps(doc)}
        if self.dialect == "postgresql":
            sql = ("INSERT INTO resources (id, type, created, updated, doc) "
                   "VALUES (:id, :type, :created, :updated, CAST(:doc AS jsonb)) ON CONFLICT (id) DO NOTHING")
        else:
            sql = ("INSERT OR IGNORE INTO resources (id, type, created, updated, doc) "
                   "VALUES (:id, :type, :created, :updated, :doc)")
        if self.conn.execute(sa.text(sql), params).rowcount != 1:
            raise Conflict.for_resource(rid)
        self._index(rid, doc["resource-type"], doc, exclude)

    def replace(self, doc: dict[str, Any], *, exclude: Collection[str] = ()) -> None:
        rid = doc["id"]
        cast = "CAST(:doc AS jsonb)" if self.dialect == "postgresql" else ":doc"
        self.conn.execute(
            sa.text(f"UPDATE resources SET doc = {cast}, updated = :updated WHERE id = :id"),
            {"id": rid, "doc": _dumps(doc), "updated": doc["updated"]},
        )
        self.conn.execute(sa.text("DELETE FROM attrs WHERE id = :id"), {"id": rid})
        self._index(rid, doc["resource-type"], doc, exclude)

    def delete(self, resource_id: str) -> bool:
        self.conn.execute(sa.text("DELETE FROM attrs WHERE id = :id"), {"id": resource_id})
        res = self.conn.execute(sa.text("DELETE FROM resources WHERE id = :id"), {"id": resource_id})
        return res.rowcount == 1

    def _index(self, rid: str, rtype: str, doc: dict[str, Any], exclude: Collection[str]) -> None:
        rows = [{"id": rid, "type": rtype, "path": p, "k": k, "s": s, "n": n}
                for p, k, s, n in flatten(doc, exclude)]
        if rows:
            self.conn.execute(
                sa.text("INSERT INTO attrs (id, type, path, k, s, n) VALUES (:id, :type, :path, :k, :s, :n)"),
                rows,
            )

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
            sa.text("SELECT r.doc FROM resources r WHERE r.id IN (SELECT a.id FROM attrs a WHERE "
                    "a.type = :type AND a.path = :path AND a.k = 's' AND a.s = :value) LIMIT 1"),
            {"type": rtype, "path": path, "value": value},
        ).first()
        return None if row is None else self.load(row[0])

    def find_all(self, rtype: str, path: str, value: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            sa.text("SELECT r.doc FROM resources r WHERE r.id IN (SELECT a.id FROM attrs a WHERE "
                    "a.type = :type AND a.path = :path AND a.k = 's' AND a.s = :value)"),
            {"type": rtype, "path": path, "value": value},
        )
        return [self.load(row[0]) for row in rows]
