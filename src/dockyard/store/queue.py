"""The job queue in SQL: enqueue, claim with a lease, renew, release, finish.

A claim is one atomic statement inside a write transaction: on SQLite the transaction already holds the
write lock (``BEGIN IMMEDIATE``); on PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP
LOCKED`` so concurrent workers never take the same job. A RUNNING job whose lease has passed is claimable
again: its worker died.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from .db import Tx

NOTIFY_CHANNEL = "dockyard_jobs"


def enqueue(tx: "Tx", job_id: str, priority: int, created: str) -> None:
    tx.conn.execute(
        sa.text("INSERT INTO job_queue (job_id, priority, created, state, attempts) "
                "VALUES (:id, :p, :c, 'QUEUED', 0)"),
        {"id": job_id, "p": priority, "c": created},
    )
    if tx.dialect == "postgresql":
        tx.conn.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))


_CLAIMABLE = "state = 'QUEUED' OR (state = 'RUNNING' AND lease_until < :now)"
_FIRST = "ORDER BY priority, created LIMIT 1"


def claim(tx: "Tx", worker: str, now: float, lease: float) -> tuple[str, int] | None:
    """Take the most urgent claimable job: (job id, attempt number), or None."""
    params = {"now": now, "until": now + lease, "w": worker}
    if tx.dialect == "postgresql":
        row = tx.conn.execute(sa.text(
            "UPDATE job_queue SET state = 'RUNNING', worker = :w, lease_until = :until, attempts = attempts + 1 "
            f"WHERE job_id = (SELECT job_id FROM job_queue WHERE {_CLAIMABLE} {_FIRST} FOR UPDATE SKIP LOCKED) "
            "RETURNING job_id, attempts"), params).first()
    else:
        found = tx.conn.execute(sa.text(f"SELECT job_id FROM job_queue WHERE {_CLAIMABLE} {_FIRST}"),
                                params).first()
        if found is None:
            return None
        params["id"] = found[0]
        row = tx.conn.execute(sa.text(
            "UPDATE job_queue SET state = 'RUNNING', worker = :w, lease_until = :until, attempts = attempts + 1 "
            "WHERE job_id = :id RETURNING job_id, attempts"), params).first()
    return None if row is None else (row[0], row[1])


def renew(tx: "Tx", job_id: str, worker: str, until: float) -> bool:
    """Extend a lease; False when the job is no longer this worker's (taken again, or finished)."""
    res = tx.conn.execute(sa.text(
        "UPDATE job_queue SET lease_until = :until WHERE job_id = :id AND worker = :w AND state = 'RUNNING'"),
        {"id": job_id, "w": worker, "until": until})
    return res.rowcount == 1


def finish(tx: "Tx", job_id: str) -> None:
    tx.conn.execute(sa.text("DELETE FROM job_queue WHERE job_id = :id"), {"id": job_id})


def holder(tx: "Tx", job_id: str) -> str | None:
    row = tx.conn.execute(sa.text("SELECT worker FROM job_queue WHERE job_id = :id AND state = 'RUNNING'"),
                          {"id": job_id}).first()
    return None if row is None else row[0]


def pending(tx: "Tx") -> int:
    return tx.conn.execute(sa.text("SELECT count(*) FROM job_queue")).scalar_one()
