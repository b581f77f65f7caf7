"""The directory backend on its own: names, atomic writes, metadata kept apart, and files a container wrote."""

from __future__ import annotations

import hashlib
import os

import pytest

from dockyard.data.base import ObjectInfo, StorageError
from dockyard.data.directory import check_bucket, check_key


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def files_under(path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


# -- names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["abc", "my-bucket", "a.b.c", "0-9", "b" * 63, "bucket-2024.logs"])
def test_valid_bucket_names(name):
    assert check_bucket(name) == name


@pytest.mark.parametrize("name", [
    "", "ab", "b" * 64, "Upper", "under_score", "-start", "end-", ".dot", "dot.", "two..dots", "192.168.1.1",
    "xn--punycode", "sthree-x", "amzn-s3-demo-x", "name-s3alias", "name--ol-s3", "name--x-s3", "a b", "a/b",
    ".meta", ".tmp", "ab\x00", "abc\n",
])
def test_invalid_bucket_names(name):
    with pytest.raises(StorageError) as err:
        check_bucket(name)
    assert err.value.reason == "invalid-name"


@pytest.mark.parametrize("key", ["a", "a/b/c.txt", "with space", "ünïcødé/ключ", "a..b", "...", ".hidden", "a\\b"])
def test_valid_keys(key):
    assert check_key(key) == key.split("/")


@pytest.mark.parametrize("key", [
    "", "..", "../x", "a/../../x", "a/..", "./a", "a/./b", "/etc/passwd", "a//b", "a/", "a\x00b", "a\nb",
    "a\rb", "x" * 1025, ("y" * 256) + "/z",
])
def test_keys_that_would_not_name_one_file_in_the_bucket_are_refused(key):
    with pytest.raises(StorageError) as err:
        check_key(key)
    assert err.value.reason == "invalid-name"


def test_traversal_is_refused_by_every_operation_and_nothing_lands_outside(store, tmp_path):
    store.ensure_bucket("bkt")
    for key in ["../escape", "../../escape", "/tmp/escape", "a/../../escape"]:
        for call in (lambda: store.put("bkt", key, b"x"), lambda: store.stat("bkt", key),
                     lambda: store.get("bkt", key), lambda: store.delete("bkt", key),
                     lambda: store.presign_put("bkt", key, 60), lambda: store.presign_get("bkt", key, 60),
                     lambda: store.upload("bkt", key)):
            with pytest.raises(StorageError) as err:
                call()
            assert err.value.reason == "invalid-name"
    assert files_under(tmp_path) == []
    assert list(store.keys("bkt", "../")) == []


# -- round trips -------------------------------------------------------------------------------------

def test_put_stat_get_keys_delete(store):
    store.ensure_bucket("bkt")
    store.ensure_bucket("bkt")  # idempotent
    info = store.put("bkt", "dir/sub/file.txt", b"hello", "text/plain")
    assert info == ObjectInfo("bkt", "dir/sub/file.txt", 5, md5(b"hello"), "text/plain")
    assert store.stat("bkt", "dir/sub/file.txt") == info
    assert b"".join(store.get("bkt", "dir/sub/file.txt")) == b"hello"
    assert list(store.keys("bkt")) == ["dir/sub/file.txt"]
    # the bucket directory holds the objects and nothing else
    assert files_under(store.local_path("bkt")) == ["dir/sub/file.txt"]
    store.delete("bkt", "dir/sub/file.txt")
    with pytest.raises(StorageError) as err:
        store.stat("bkt", "dir/sub/file.txt")
    assert err.value.reason == "no-such-object"
    # no empty "folders" are left behind, as in S3
    assert os.listdir(store.local_path("bkt")) == []


def test_missing_bucket_and_object(store):
    for call in (lambda: store.put("nobucket", "k", b""), lambda: store.stat("nobucket", "k"),
                 lambda: list(store.keys("nobucket"))):
        with pytest.raises(StorageError) as err:
            call()
        assert err.value.reason == "no-such-bucket"
    store.ensure_bucket("bkt")
    with pytest.raises(StorageError) as err:
        store.get("bkt", "missing")
    assert err.value.reason == "no-such-object"
    store.delete("bkt", "missing")  # a missing object counts as removed
    store.delete("nobucket", "missing")


def test_empty_object(store):
    store.ensure_bucket("bkt")
    assert store.put("bkt", "empty", b"").md5 == md5(b"")
    assert b"".join(store.get("bkt", "empty")) == b""
    assert store.stat("bkt", "empty").bytes == 0


def test_keys_in_s3_order_and_by_prefix(store):
    store.ensure_bucket("bkt")
    for key in ["b", "a/2", "a/1", "a-b", "a/sub/x", "ab", "é"]:
        store.put("bkt", key, key.encode())
    assert list(store.keys("bkt")) == ["a-b", "a/1", "a/2", "a/sub/x", "ab", "b", "é"]
    assert list(store.keys("bkt", "a/")) == ["a/1", "a/2", "a/sub/x"]
    assert list(store.keys("bkt", "a/s")) == ["a/sub/x"]
    assert list(store.keys("bkt", "a")) == ["a-b", "a/1", "a/2", "a/sub/x", "ab"]
    assert list(store.keys("bkt", "zz/")) == []
    assert list(store.keys("bkt", "a//")) == []


def test_a_key_cannot_be_both_an_object_and_a_prefix(store):
    store.ensure_bucket("bkt")
    store.put("bkt", "a", b"1")
    with pytest.raises(StorageError) as err:
        store.put("bkt", "a/b", b"2")
    assert err.value.reason == "invalid-name"
    store.put("bkt", "c/d", b"3")
    with pytest.raises(StorageError) as err:
        store.put("bkt", "c", b"4")
    assert err.value.reason == "invalid-name"
    assert list(store.keys("bkt")) == ["a", "c/d"]
    assert os.listdir(os.path.join(store.root, ".tmp")) == []


def test_remove_bucket_if_empty(store):
    assert store.remove_bucket_if_empty("bkt") is False  # missing
    store.ensure_bucket("bkt")
    store.put("bkt", "x/y", b"1")
    assert store.remove_bucket_if_empty("bkt") is False
    os.makedirs(os.path.join(store.local_path("bkt"), "left", "over"))  # empty directories are no content
    store.delete("bkt", "x/y")
    assert store.remove_bucket_if_empty("bkt") is True
    assert not os.path.exists(store.bucket_dir("bkt"))
    assert not os.path.exists(os.path.join(store.root, ".meta", "bkt"))


def test_local_path_is_the_bucket_directory_and_exists(store):
    path = store.local_path("fresh")
    assert path == os.path.join(store.root, "fresh") and os.path.isdir(path)


# -- atomicity ---------------------------------------------------------------------------------------

def test_an_upload_is_invisible_until_committed(store):
    store.ensure_bucket("bkt")
    with store.upload("bkt", "big", "application/x-test") as upload:
        upload.write(b"half of it")
        assert list(store.keys("bkt")) == []
        with pytest.raises(StorageError):
            store.stat("bkt", "big")
        assert os.listdir(store.local_path("bkt")) == []
        upload.write(b" and the rest")
        info = upload.commit()
    assert info == ObjectInfo("bkt", "big", 23, md5(b"half of it and the rest"), "application/x-test")
    assert store.stat("bkt", "big") == info


def test_an_abandoned_upload_leaves_nothing(store):
    store.ensure_bucket("bkt")
    store.put("bkt", "obj", b"old")
    with pytest.raises(RuntimeError):
        with store.upload("bkt", "obj") as upload:
            upload.write(b"new but never finished")
            raise RuntimeError("client went away")
    assert b"".join(store.get("bkt", "obj")) == b"old"
    assert os.listdir(os.path.join(store.root, ".tmp")) == []


def test_a_reader_keeps_the_version_it_opened(store):
    store.ensure_bucket("bkt")
    store.put("bkt", "obj", b"A" * 3000)
    file, size, _ = store.open("bkt", "obj")
    with file:
        store.put("bkt", "obj", b"B" * 10)
        assert size == 3000 and file.read() == b"A" * 3000
    assert b"".join(store.get("bkt", "obj")) == b"B" * 10


def test_chunked_writes_hash_the_whole(store):
    store.ensure_bucket("bkt")
    chunks = [os.urandom(n) for n in (1, 70000, 0, 3 * 1024 * 1024 + 7, 5)]
    with store.upload("bkt", "obj") as upload:
        upload.write_all(chunks[:2])
        upload.digest(chunks[2:])  # the two halves, as the HTTP handler runs them in two threads
        upload.store_bytes(chunks[2:])
        info = upload.commit()
    whole = b"".join(chunks)
    assert (info.bytes, info.md5) == (len(whole), md5(whole))
    assert b"".join(store.get("bkt", "obj")) == whole


# -- files written by containers through a mount -----------------------------------------------------

def test_a_file_written_in_the_mount_is_an_object(store):
    path = store.local_path("bkt")
    os.makedirs(os.path.join(path, "out"))
    with open(os.path.join(path, "out", "result.csv"), "wb") as f:
        f.write(b"a,b\n")
    assert list(store.keys("bkt")) == ["out/result.csv"]
    assert store.stat("bkt", "out/result.csv") == ObjectInfo("bkt", "out/result.csv", 4, md5(b"a,b\n"), "")


def test_a_file_rewritten_in_the_mount_gets_a_fresh_md5_and_keeps_its_type(store):
    store.ensure_bucket("bkt")
    store.put("bkt", "data.json", b"{}", "application/json")
    with open(os.path.join(store.local_path("bkt"), "data.json"), "wb") as f:
        f.write(b'{"changed": true}')
    info = store.stat("bkt", "data.json")
    assert (info.bytes, info.md5, info.content_type) == (17, md5(b'{"changed": true}'), "application/json")


def test_symlinks_planted_in_the_mount_are_never_followed(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not yours")
    outside = tmp_path / "outside"
    outside.mkdir()
    path = store.local_path("bkt")
    os.symlink(secret, os.path.join(path, "link"))
    os.symlink(outside, os.path.join(path, "dirlink"))
    for key in ("link", "dirlink/x"):
        with pytest.raises(StorageError) as err:
            store.stat("bkt", key)
        assert err.value.reason == "no-such-object"
    with pytest.raises(StorageError) as err:
        store.put("bkt", "dirlink/planted", b"x")
    assert err.value.reason == "invalid-name"
    assert list(outside.iterdir()) == []
    assert list(store.keys("bkt")) == []
    assert list(store.keys("bkt", "dirlink/")) == []
    store.delete("bkt", "link")  # removes the link, never the target
    assert secret.read_bytes() == b"not yours"
    assert store.remove_bucket_if_empty("bkt") is False  # a symlinked directory is content


def test_stale_uploads_left_by_a_crash_are_discarded(store):
    store.ensure_bucket("bkt")
    tmp = os.path.join(store.root, ".tmp")
    old, fresh = os.path.join(tmp, "upload-old"), os.path.join(tmp, "upload-fresh")
    for path in (old, fresh):
        with open(path, "wb") as f:
            f.write(b"partial")
    os.utime(old, (1, 1))
    with store.upload("bkt", "live") as upload:  # one in progress, written just now
        upload.write(b"x")
        assert store.discard_stale_uploads() == 1
        upload.commit()
    assert sorted(os.listdir(tmp)) == ["upload-fresh"]
    assert b"".join(store.get("bkt", "live")) == b"x"
