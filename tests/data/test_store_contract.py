"""One suite for every backend: the directory store served over HTTP by uvicorn, and S3 (moto's server).

Pre-signed URLs are used as the real client uses them: ``requests.put(uri, data=..., headers=...)`` and
``requests.get(uri)``, no cookie, no other header.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

from dockyard.data.base import ObjectInfo, ObjectStore, StorageError

from .conftest import new_bucket


@pytest.fixture(params=["directory", "s3"])
def backend(request) -> ObjectStore:
    if request.param == "directory":
        return request.getfixturevalue("served").store
    return request.getfixturevalue("s3")


@pytest.fixture
def bucket(backend) -> str:
    name = new_bucket()
    backend.ensure_bucket(name)
    return name


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_presigned_put_then_ready_then_download(backend, bucket):
    """The data-object flow: upload URL, PUT, then `ready` reads size and MD5, then a download URL."""
    content = b'{"hello": "world"}'
    url = backend.presign_put(bucket, "objects/doc.json", 15 * 60, "application/json")
    r = requests.put(url, data=content, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert backend.stat(bucket, "objects/doc.json") == \
        ObjectInfo(bucket, "objects/doc.json", len(content), md5(content), "application/json")
    r = requests.get(backend.presign_get(bucket, "objects/doc.json", 15 * 60))
    assert (r.status_code, r.content) == (200, content)
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("header, status, body", [
    ("bytes=0-3", 206, b"0123"),
    ("bytes=4-", 206, b"456789"),
    ("bytes=-3", 206, b"789"),
    ("bytes=8-100", 206, b"89"),  # an end past the object is cut at its last byte
    ("bytes=10-12", 416, None),  # starts past the end
    ("bytes=0-1,4-5", None, None),  # several ranges: servers differ (S3 sends all), both send data
    ("pages=1", 200, b"0123456789"),  # not a byte range: the whole object
    ("bytes=5-2", 200, b"0123456789"),  # an invalid range is ignored
])
def test_a_download_can_ask_for_a_byte_range_as_from_s3(backend, bucket, header, status, body):
    """Resuming a download is a Range request on the same pre-signed URL, on either backend alike."""
    assert requests.put(backend.presign_put(bucket, "digits.txt", 60), data=b"0123456789").status_code == 200
    r = requests.get(backend.presign_get(bucket, "digits.txt", 60), headers={"Range": header})
    if status is None:
        assert r.status_code in (200, 206) and r.content
        return
    assert r.status_code == status
    if body is not None:
        assert r.content == body
        if status == 206:
            first = 10 - len(body) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
            assert r.headers["content-range"] == f"bytes {first}-{first + len(body) - 1}/10"


def test_a_20_mb_object_through_presigned_urls(backend, bucket):
    data = os.urandom(20 * 1024 * 1024)
    r = requests.put(backend.presign_put(bucket, "big.bin", 60), data=data)
    assert r.status_code == 200
    info = backend.stat(bucket, "big.bin")
    assert (info.bytes, info.md5) == (len(data), md5(data))
    r = requests.get(backend.presign_get(bucket, "big.bin", 60))
    assert md5(r.content) == md5(data)


def test_direct_put_get_keys_delete(backend, bucket):
    assert backend.put(bucket, "a/1", b"one", "text/plain") == ObjectInfo(bucket, "a/1", 3, md5(b"one"), "text/plain")
    backend.put(bucket, "a/2", b"two")
    backend.put(bucket, "b", b"three")
    assert b"".join(backend.get(bucket, "a/1")) == b"one"
    assert list(backend.keys(bucket)) == ["a/1", "a/2", "b"]
    assert list(backend.keys(bucket, "a/")) == ["a/1", "a/2"]
    backend.delete(bucket, "a/1")
    backend.delete(bucket, "a/1")  # again: a missing object counts as removed
    assert list(backend.keys(bucket)) == ["a/2", "b"]


def test_missing_object_and_bucket(backend, bucket):
    with pytest.raises(StorageError) as err:
        backend.stat(bucket, "missing")
    assert err.value.reason == "no-such-object"
    with pytest.raises(StorageError) as err:
        backend.get(bucket, "missing")
    assert err.value.reason == "no-such-object"
    with pytest.raises(StorageError) as err:
        backend.put(new_bucket(), "k", b"x")
    assert err.value.reason == "no-such-bucket"
    with pytest.raises(StorageError) as err:
        list(backend.keys(new_bucket()))
    assert err.value.reason == "no-such-bucket"


def test_remove_bucket_only_when_empty(backend, bucket):
    backend.put(bucket, "k", b"x")
    assert backend.remove_bucket_if_empty(bucket) is False
    backend.delete(bucket, "k")
    assert backend.remove_bucket_if_empty(bucket) is True
    assert backend.remove_bucket_if_empty(bucket) is False  # already gone
    backend.ensure_bucket(bucket)  # and it can come back
    backend.ensure_bucket(bucket)


def test_invalid_bucket_names_are_refused_before_any_request(backend):
    for call in (lambda: backend.ensure_bucket("Bad_Name"), lambda: backend.presign_put("ab", "k", 60),
                 lambda: backend.stat("-x-", "k")):
        with pytest.raises(StorageError) as err:
            call()
        assert err.value.reason == "invalid-name"
