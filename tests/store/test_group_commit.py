"""Group commit keeps durability: every acknowledged write survives a SIGKILL of the server.

64 writers edit documents concurrently over HTTP against a `dockyard serve` subprocess (on SQLite their
writes share commits); the server is killed with SIGKILL as soon as the last acknowledgement arrives, then
restarted on the same database, and every acknowledged edit must be there. A SIGKILL loses the process, not
the kernel's page cache, and on PostgreSQL it kills Dockyard, not the database server, so this holds with the
test cluster's fsync=off and synchronous_commit=off too: what it checks is that no write is answered before
its COMMIT has returned. Surviving a power cut needs the durable settings, which Dockyard keeps (SQLite's
synchronous=FULL; PostgreSQL's defaults, fsync and synchronous_commit on).
"""

from __future__ import annotations

import signal
import threading

import httpx
import pytest

from ..conftest import ADMIN_PASSWORD, start_server, stop_server

WRITERS = 64
ROUNDS = 5
DOC_TYPE = "infrastructure-service-group"


def _login(endpoint: str) -> httpx.Client:
    client = httpx.Client(base_url=endpoint + "/api/", timeout=60)
    resp = client.post("session", json={"template": {"href": "session-template/password", "username": "admin",
                                                      "password": ADMIN_PASSWORD}})
    assert resp.status_code == 201, resp.text
    return client


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_writes_survive_sigkill(backend, request, tmp_path):
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    server = start_server(tmp_path / "data", url)
    try:
        admin = _login(server.endpoint)
        ids = []
        for i in range(WRITERS):
            resp = admin.post(DOC_TYPE, json={"name": f"gc-{i}", "description": "created"})
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["resource-id"])
        cookies = dict(admin.cookies)
        acked: dict[str, str] = {}
        errors: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(WRITERS)

        def writer(i: int) -> None:
            with httpx.Client(base_url=server.endpoint + "/api/", timeout=60, cookies=cookies) as http:
                start.wait()
                for r in range(ROUNDS):
                    # each writer adds a new document and edits its own: inserts and updates both group
                    value = f"w{i}-r{r}"
                    resp = http.put(ids[i], json={"description": value})
                    made = http.post(DOC_TYPE, json={"name": f"gc-{i}-{r}", "description": value})
                    with lock:
                        if resp.status_code == 200:
                            acked[ids[i]] = value
                        else:
                            errors.append(f"edit {resp.status_code} {resp.text}")
                        if made.status_code == 201:
                            acked[made.json()["resource-id"]] = value
                        else:
                            errors.append(f"add {made.status_code} {made.text}")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        server.process.send_signal(signal.SIGKILL)  # right after the last acknowledgement
        server.process.wait()
        assert not errors, errors[:5]
        assert len(acked) == WRITERS * (ROUNDS + 1)

        server = start_server(tmp_path / "data", url)
        admin = _login(server.endpoint)
        missing = []
        for rid, value in acked.items():
            resp = admin.get(rid)
            if resp.status_code != 200 or resp.json().get("description") != value:
                missing.append((rid, value, resp.status_code, resp.json().get("description")))
        assert not missing, f"{len(missing)} acknowledged writes lost after SIGKILL: {missing[:5]}"
    finally:
        if server.process.poll() is None:
            stop_server(server)


def test_group_members_commit_alone_or_fail_alone(db_url):
    """In process: 32 writers at once, every fourth failing after its insert. A failing writer's insert is
    rolled back alone; each other one is in the store, seen by the observers once and in commit order, and its
    after-commit callback runs only once a fresh connection can read it. On SQLite they share commits."""
    import sqlalchemy as sa

    from dockyard.store.db import Store

    store = Store(db_url)
    store.migrate()
    commits: list[int] = []
    # write commits only (on SQLite the write connection begins with BEGIN IMMEDIATE; reads commit too)
    sa.event.listen(store.engine, "commit",
                    lambda conn: commits.append(1) if conn.info.get("begin") == "BEGIN IMMEDIATE" else None)
    seen: list[str] = []
    store.observers.append(lambda changes: seen.extend(rid for _, rid, _ in changes))
    visible: dict[str, bool] = {}
    start = threading.Barrier(32)
    rounds = 10

    def doc(i: int, r: int) -> dict:
        return {"id": f"thing/{i}-{r}", "resource-type": "thing", "created": "2026-01-01T00:00:00.000Z",
                "updated": "2026-01-01T00:00:00.000Z", "name": f"n{i}"}

    def check_visible(rid: str) -> None:
        with store.read() as tx:
            visible[rid] = tx.get(rid) is not None

    def writer(i: int) -> None:
        start.wait()
        for r in range(rounds):
            try:
                with store.write() as tx:
                    tx.insert(doc(i, r))
                    tx.after_commit.append(lambda rid=f"thing/{i}-{r}": check_visible(rid))
                    if i % 4 == 0:
                        raise ValueError("this writer fails")
            except ValueError:
                pass

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        wanted = {f"thing/{i}-{r}" for i in range(32) if i % 4 for r in range(rounds)}
        with store.read() as tx:
            stored = {d["id"] for d in tx.get_many([doc(i, r)["id"] for i in range(32) for r in range(rounds)])}
        assert stored == wanted
        assert sorted(seen) == sorted(wanted)  # each once, no failed one
        for i in range(1, 32, 4):  # one writer's own writes reach the observers in its order
            mine = [rid for rid in seen if rid.startswith(f"thing/{i}-")]
            assert mine == [f"thing/{i}-{r}" for r in range(rounds)]
        assert set(visible) == wanted and all(visible.values())
        if store.dialect == "sqlite":
            assert len(commits) < len(wanted), "no writes shared a commit"
    finally:
        store.close()
