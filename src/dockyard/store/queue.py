"""The job queue in SQL: enqueue, claim with a lease, renew, release, finish.

A claim is one atomic statement inside a write transaction: on SQLite the transaction already holds the
write lock (``BEGIN IMMEDIATE``); on PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP
LOCKED`` so concurrent workers never take the same job. A RUNNING job whose lease has passed is claimable
again: its worker died.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from .db import Tx

NOTIFY_CHANNEL = "dockyard_jobs"


def enqueue(tx: "Tx", job_id: str, priority: int, created: str) -> None:
    """The job's queue row; on PostgreSQL the same statement tells every process's workers (a NOTIFY sent when
    the transaction commits)."""
    insert = ("INSERT INTO job_queue (job_id, priority, created, state, attempts) "
              "VALUES (:id, :p, :c, 'QUEUED', 0)")
    if tx.dialect == "postgresql":
        insert = f"WITH q AS ({insert} RETURNING 1) SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM q"
    tx.conn.execute(sa.text(insert), {"id": job_id, "p": priority, "c": created})


_CLAIMABLE = "state = 'QUEUED' OR (state = 'RUNNING' AND lease_until < :now)"
_FIRST = "ORDER BY priority, created LIMIT :n"


def claim(tx: "Tx", worker: str, now: float, lease: float) -> tuple[str, int] | None:
    """Take the most urgent claimable job: (job id, attempt number), or None."""
    taken = claim_many(tx, worker, now, lease, 1)
    return taken[0] if taken else None


def claim_many(tx: "Tx", worker: str, now: float, lease: float, n: int,
               running: Collection[str] = ()) -> list[tuple[str, int]]:
    """Take up to ``n`` of the most urgent claimable jobs in one statement, most urgent first: (job id, attempt
    number) each. On PostgreSQL rows another claimer holds are skipped, not waited for. ``running``: the jobs
    the claimer still runs, never taken again by it even when their lease has passed (a stall longer than the
    lease): its renewal extends them at its next turn, unless another worker took them first."""
    params: dict[str, Any] = {"now": now, "until": now + lease, "w": worker, "n": n}
    mine = ""
    if running:
        mine = " AND job_id NOT IN :running"
        params["running"] = list(running)
    lock = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
    stmt = sa.text(
        "UPDATE job_queue SET state = 'RUNNING', worker = :w, lease_until = :until, attempts = attempts + 1 "
        f"WHERE job_id IN (SELECT job_id FROM job_queue WHERE ({_CLAIMABLE}){mine} {_FIRST}{lock}) "
        "RETURNING job_id, attempts, priority, created")
    if running:
        stmt = stmt.bindparams(sa.bindparam("running", expanding=True))
    rows = tx.conn.execute(stmt, params).all()
    return [(row[0], row[1]) for row in sorted(rows, key=lambda r: (r[2], r[3]))]


def attempt_of(tx: "Tx", job_id: str) -> int | None:
    """The number of the attempt that holds ``job_id`` now (None when no worker runs it): an older attempt,
    whose lease passed to another, must not act for the job any more."""
    row = tx.conn.execute(sa.text("SELECT attempts FROM job_queue WHERE job_id = :id AND state = 'RUNNING'"),
                          {"id": job_id}).first()
    return None if row is None else int(row[0])


def lock_jobs(tx: "Tx", job_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The job documents of ``job_ids``, read in one statement and (PostgreSQL) locked for this transaction, as
    a claim reads the jobs it took; a missing one is absent."""
    if not job_ids:
        return {}
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    stmt = sa.text(f"SELECT id, doc FROM resources WHERE id IN :ids{lock}").bindparams(
        sa.bindparam("ids", expanding=True))
    return {row[0]: tx.load(row[1]) for row in tx.conn.execute(stmt, {"ids": list(job_ids)})}


def renew_many(tx: "Tx", job_ids: Collection[str], worker: str, until: float) -> set[str]:
    """Extend the leases of ``job_ids`` in one statement; returns those still this worker's."""
    if not job_ids:
        return set()
    stmt = sa.text("UPDATE job_queue SET lease_until = :until WHERE job_id IN :ids AND worker = :w "
                   "AND state = 'RUNNING' RETURNING job_id").bindparams(sa.bindparam("ids", expanding=True))
    return {row[0] for row in tx.conn.execute(stmt, {"ids": list(job_ids), "w": worker, "until": until})}


def finish(tx: "Tx", job_id: str) -> None:
    tx.conn.execute(sa.text("DELETE FROM job_queue WHERE job_id = :id"), {"id": job_id})


def pending(tx: "Tx") -> int:
    return tx.conn.execute(sa.text("SELECT count(*) FROM job_queue")).scalar_one()
