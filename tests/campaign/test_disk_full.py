"""A full disk under the data dir: a small file system (tmpfs of a few MB, mounted for the test) holds the
SQLite database and the embedded object store. Once it is full, API writes and uploads to the store's
pre-signed URLs are refused with 507 Insufficient Storage and a message that names the lack of space —
not a 500 — and the server keeps answering; nothing half-written is left behind; the database and the
objects stored before are intact, byte for byte; and writes work again once space is freed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from ..api.helpers import make_user
from .crash_support import Installation, action, installations, ok, put_object  # noqa: F401

DISK_SIZE = "24m"
LOCAL_STORAGE_CREDENTIAL = "credential/local-storage"
GROUP = "infrastructure-service-group"


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of DISK_SIZE mounted for this test; unmounted at the end, whatever happened."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "dockyard-disk-full", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Write until the file system has no byte left; the filler file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1024 * 1024, 4096, 1):
            chunk = b"\0" * size
            while True:
                try:
                    f.write(chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return filler


def is_out_of_space(resp: httpx.Response) -> bool:
    if resp.status_code != 507:
        return False
    body = resp.json()
    assert body["status"] == 507, body
    assert any(word in body["message"].lower() for word in ("space", "disk", "full")), body
    return True


def test_a_full_disk_refuses_writes_clearly_keeps_what_was_stored_and_recovers(small_disk, tmp_path, installations):
    data_dir = small_disk / "dockyard"
    installation = Installation(data_dir, log_dir=tmp_path / "logs")
    installations.append(installation)
    installation.start()
    admin = installation.admin()
    user = make_user(installation, admin)

    # what exists before the disk fills: documents, an object, and an upload URL handed out for later
    bucket = f"full-{uuid.uuid4().hex[:8]}"
    kept = os.urandom(300 * 1024)
    kept_id = put_object(user, LOCAL_STORAGE_CREDENTIAL, bucket, "kept.bin", kept)
    before = {user.new_doc(name=f"before-{i}", description="x" * 2000) for i in range(20)}
    late = os.urandom(200 * 1024)
    late_id = user.add("data-object", {"template": {
        "href": "data-object-template/generic", "credential": LOCAL_STORAGE_CREDENTIAL, "bucket": bucket,
        "object": "late.bin", "content-type": "application/octet-stream"}})
    late_uri = ok(action(user, late_id, "upload"))["uri"]
    kept_uri = download_uri(user, kept_id)  # a download is an audited action, which needs room: fetched now
    stored_before = {rid: ok(user.get(rid)) for rid in before}

    # the WAL is emptied so that the next write must grow it, then every byte of the disk is taken
    with sqlite3.connect(data_dir / "dockyard.db") as db:
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    filler = fill(small_disk)

    # writes are refused, clearly, and leave nothing behind
    refused = user.post(GROUP, json={"name": "refused", "description": "y" * 20000})
    assert is_out_of_space(refused), refused.text
    resp = httpx.put(late_uri, content=late, headers={"content-type": "application/octet-stream"}, timeout=30)
    assert is_out_of_space(resp), resp.text
    objects = data_dir / "objects"
    assert not (objects / bucket / "late.bin").exists()
    assert os.listdir(objects / ".tmp") == [], "a refused upload left its partial file"
    resp = user.post("data-object", json={"template": {
        "href": "data-object-template/generic", "credential": LOCAL_STORAGE_CREDENTIAL, "bucket": f"{bucket}-2",
        "object": "x.bin"}})
    assert is_out_of_space(resp), resp.text
    resp = action(user, late_id, "ready")  # no bytes arrived: a conflict, as ever, not a storage failure
    assert resp.status_code == 409, resp.text

    # the server still answers, and what was stored is intact
    assert installation.serve.poll() is None
    for rid, doc in stored_before.items():
        assert ok(user.get(rid)) == doc
    assert ok(user.search(GROUP, filter="name='refused'"))["count"] == 0
    got = httpx.get(kept_uri, timeout=30)
    assert got.status_code == 200 and got.content == kept

    # space comes back: so do writes, uploads included
    filler.unlink()
    created = user.new_doc(name="after", description="z" * 20000)
    assert ok(user.get(created))["name"] == "after"
    resp = httpx.put(late_uri, content=late, headers={"content-type": "application/octet-stream"}, timeout=30)
    assert resp.status_code == 200, resp.text
    doc = ok(action(user, late_id, "ready"))
    assert doc["state"] == "READY" and doc["md5sum"] == hashlib.md5(late).hexdigest()
    assert read_object(user, late_id) == late
    assert read_object(user, kept_id) == kept

    installation.stop()
    with sqlite3.connect(data_dir / "dockyard.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def download_uri(caller, object_id: str) -> str:
    resp = action(caller, object_id, "download")
    assert resp.status_code == 303, resp.text
    return resp.json()["uri"]


def read_object(caller, object_id: str) -> bytes:
    doc = ok(caller.get(object_id))
    got = httpx.get(download_uri(caller, object_id), timeout=30)
    assert got.status_code == 200, got.text
    assert hashlib.md5(got.content).hexdigest() == doc["md5sum"]
    return got.content


# -- PostgreSQL: the database's own files on a full disk ---------------------------------------------------

@pytest.fixture
def pg_on_small_disk(pg_url):
    """A database whose tables live in a tablespace on a tmpfs of DISK_SIZE (the test cluster runs on this
    machine, as the postgres user); dropped, and the tmpfs unmounted, at the end."""
    import pwd

    import sqlalchemy as sa

    mount = Path(tempfile.mkdtemp(prefix="dyt-pgdisk-"))  # pytest's tmp_path is not the postgres user's to reach
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "dockyard-pg-full", str(mount)],
                   check=True)
    postgres = pwd.getpwnam("postgres")
    os.chown(mount, postgres.pw_uid, postgres.pw_gid)
    tag = uuid.uuid4().hex[:8]
    space, name = f"dyt_full_{tag}", f"dockyard_full_{tag}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE TABLESPACE {space} LOCATION '{mount}'"))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TABLESPACE {space}'))
        yield mount, sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP TABLESPACE IF EXISTS {space}"))
        admin.dispose()
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)
        mount.rmdir()


def test_postgresql_out_of_space_is_a_507_and_writes_come_back(pg_on_small_disk, tmp_path, installations):
    disk, url = pg_on_small_disk
    installation = Installation(tmp_path / "dockyard", url, log_dir=tmp_path / "logs")
    installations.append(installation)
    installation.start()
    user = make_user(installation, installation.admin())
    before = {user.new_doc(name=f"before-{i}", description="x" * 2000) for i in range(10)}
    stored_before = {rid: ok(user.get(rid)) for rid in before}

    filler = fill(disk)
    refused = None
    for i in range(400):  # the tables' last pages fill up first; then a write needs a page the disk lacks
        resp = user.post(GROUP, json={"name": f"fill-{i}", "description": "y" * 8000})
        if resp.status_code != 201:
            refused = resp
            break
    assert refused is not None and is_out_of_space(refused), refused.text if refused else "never refused"
    assert installation.serve.poll() is None
    for rid, doc in stored_before.items():
        assert ok(user.get(rid)) == doc

    filler.unlink()
    created = user.new_doc(name="after", description="z" * 8000)
    assert ok(user.get(created))["name"] == "after"
    installation.stop()
