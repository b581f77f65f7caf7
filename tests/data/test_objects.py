"""The embedded store's signed URLs over real HTTP (uvicorn, as `dockyard serve` runs it), used the way the
real client's DataObjectS3 uses them: a plain ``requests.put`` of the bytes and a plain ``requests.get``."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from dockyard.core.crypto import Keys
from dockyard.core.settings import Settings
from dockyard.data import embedded_store
from dockyard.data.base import StorageError
from dockyard.data.signing import signature
from dockyard.resources.base import Services
from dockyard.server.objects import routes
from starlette.applications import Starlette

from .conftest import SIGNING_KEY, SMALL_LIMIT, ThreadedServer, new_bucket


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def error_of(response: requests.Response) -> tuple[int, dict]:
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


@pytest.fixture
def bucket(served) -> str:
    name = new_bucket()
    served.store.ensure_bucket(name)
    return name


def test_put_then_get_as_the_nuvla_client_does(served, bucket):
    content = b"a,b\n1,2\n"
    put_url = served.store.presign_put(bucket, "reports/2024 q1.csv", 900, "text/csv")
    r = requests.put(put_url, data=content, headers={"content-type": "text/csv"})
    assert (r.status_code, r.content, r.headers["etag"]) == (200, b"", f'"{md5(content)}"')
    assert served.store.stat(bucket, "reports/2024 q1.csv").content_type == "text/csv"

    r = requests.get(served.store.presign_get(bucket, "reports/2024 q1.csv", 900))
    assert r.status_code == 200
    assert r.content == b"a,b\n1,2\n"
    assert r.headers["content-type"] == "text/csv"
    assert r.headers["content-length"] == "8"


def test_without_a_content_type_the_bytes_come_back_as_octet_stream(served, bucket):
    assert requests.put(served.store.presign_put(bucket, "raw", 60), data=b"\x00\x01").status_code == 200
    r = requests.get(served.store.presign_get(bucket, "raw", 60))
    assert (r.content, r.headers["content-type"]) == (b"\x00\x01", "application/octet-stream")


def test_an_empty_object(served, bucket):
    assert requests.put(served.store.presign_put(bucket, "empty", 60), data=b"").status_code == 200
    r = requests.get(served.store.presign_get(bucket, "empty", 60))
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "0")


def test_a_20_mb_object_round_trips_with_its_md5(served, bucket):
    data = os.urandom(20 * 1024 * 1024 + 13)
    r = requests.put(served.store.presign_put(bucket, "big.bin", 60), data=data,
                     headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200 and r.headers["etag"] == f'"{md5(data)}"'
    assert served.store.stat(bucket, "big.bin").md5 == md5(data)
    r = requests.get(served.store.presign_get(bucket, "big.bin", 60), stream=True)
    assert r.headers["content-length"] == str(len(data))
    digest = hashlib.md5()
    for chunk in r.iter_content(1024 * 1024):
        digest.update(chunk)
    assert digest.hexdigest() == md5(data)


def test_a_chunked_upload_is_stored_whole(served, bucket):
    parts = [os.urandom(100_000) for _ in range(60)]
    r = requests.put(served.store.presign_put(bucket, "streamed", 60), data=iter(parts))
    assert r.status_code == 200
    assert served.store.stat(bucket, "streamed").md5 == md5(b"".join(parts))


def test_an_upload_replaces_the_object(served, bucket):
    url = served.store.presign_put(bucket, "obj", 60)
    requests.put(url, data=b"first version")
    requests.put(url, data=b"second")  # a signed URL serves until it expires, as S3's
    assert requests.get(served.store.presign_get(bucket, "obj", 60)).content == b"second"


# -- refusals ----------------------------------------------------------------------------------------

def test_an_upload_url_signed_with_a_content_type_needs_that_type(served, bucket):
    """As S3, whose pre-signed PUT signs the content type (see test_s3.py): the real client sends the type
    it declared, and a different one is refused."""
    url = served.store.presign_put(bucket, "table.csv", 60, "text/csv")
    assert error_of(requests.put(url, data=b"a,b", headers={"content-type": "text/plain"}))[0] == 403
    assert error_of(requests.put(url, data=b"a,b"))[0] == 403
    with pytest.raises(StorageError):
        served.store.stat(bucket, "table.csv")  # nothing was stored by the refused uploads
    assert requests.put(url, data=b"a,b", headers={"content-type": "text/csv"}).status_code == 200
    assert served.store.stat(bucket, "table.csv").content_type == "text/csv"
    untyped = served.store.presign_put(bucket, "any.bin", 60)  # signed without a type: any type goes
    assert requests.put(untyped, data=b"x", headers={"content-type": "image/png"}).status_code == 200


def test_an_expired_url_is_refused(served, bucket):
    served.store.put(bucket, "obj", b"x")
    url = served.store.presign_get(bucket, "obj", 1)
    time.sleep(2.1)
    assert error_of(requests.get(url)) == (403, {"status": 403, "message": "the URL has expired"})


def tamper(url: str, **changes: str) -> str:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    path = changes.pop("path", split.path)
    query.update(changes)
    return f"{split.scheme}://{split.netloc}{path}?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.mark.parametrize("change", ["expires", "signature", "bucket", "key", "no-query"])
def test_a_tampered_url_is_refused(served, bucket, change):
    served.store.put(bucket, "obj", b"x")
    served.store.put(bucket, "other", b"y")
    url = served.store.presign_get(bucket, "obj", 600)
    expires = parse_qs(urlsplit(url).query)["expires"][0]
    bad = {
        "expires": tamper(url, expires=str(int(expires) + 3600)),
        "signature": tamper(url, signature="0" * 64),
        "bucket": url.replace(f"/data/{bucket}/", "/data/other-bucket/"),
        "key": tamper(url, path=f"/data/{bucket}/other"),
        "no-query": url.split("?")[0],
    }[change]
    status, body = error_of(requests.get(bad))
    assert status == 403 and body["status"] == 403 and body["message"]


def test_a_get_url_does_not_upload_and_a_put_url_does_not_download(served, bucket):
    served.store.put(bucket, "obj", b"kept")
    status, _ = error_of(requests.put(served.store.presign_get(bucket, "obj", 60), data=b"overwritten"))
    assert status == 403
    status, _ = error_of(requests.get(served.store.presign_put(bucket, "obj", 60)))
    assert status == 403
    assert b"".join(served.store.get(bucket, "obj")) == b"kept"


def test_a_missing_object_is_404(served, bucket):
    assert error_of(requests.get(served.store.presign_get(bucket, "nothing/here", 60))) == \
        (404, {"status": 404, "message": f"object nothing/here does not exist in bucket {bucket}"})
    assert error_of(requests.get(served.store.presign_get("no-such-bucket-x", "k", 60)))[0] == 404


@pytest.mark.parametrize("method", ["DELETE", "POST", "PATCH", "HEAD"])
def test_other_methods_are_405(served, bucket, method):
    r = requests.request(method, served.store.presign_get(bucket, "obj", 60))
    assert r.status_code == 405
    if method != "HEAD":
        assert r.json()["status"] == 405


def raw_request(base: str, head: str, body: bytes = b"") -> bytes:
    """Bytes on the wire as given: no client library normalises the path."""
    split = urlsplit(base)
    with socket.create_connection((split.hostname, split.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize("path", ["%2e%2e/escape", "..%2Fescape", "a/%2e%2e/%2e%2e/escape", "%2Fetc%2Fpasswd"])
def test_path_traversal_is_refused_even_when_signed(served, bucket, path):
    key = path.replace("%2e", ".").replace("%2F", "/")
    expires = int(time.time()) + 60
    sig = signature(SIGNING_KEY, "PUT", bucket, key, expires)  # as if this server had signed it
    head = (f"PUT /data/{bucket}/{path}?expires={expires}&signature={sig} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: 6\r\nConnection: close\r\n")
    answer = raw_request(served.base, head, b"pwned!")
    assert answer.startswith(b"HTTP/1.1 400 ") and b'"status":400' in answer
    root = os.path.dirname(served.store.root)
    assert [f for _, _, fs in os.walk(root) for f in fs if "escape" in f or "passwd" in f] == []
    # and unsigned, the signature is what refuses it first
    head = f"GET /data/{bucket}/{path}?expires={expires}&signature={'0' * 64} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    assert raw_request(served.base, head).startswith(b"HTTP/1.1 403 ")


# -- limits and broken uploads -----------------------------------------------------------------------

def test_a_declared_length_over_the_limit_is_413_before_reading(served, bucket):
    r = requests.put(served.small.presign_put(bucket, "too-big", 60), data=b"x" * (SMALL_LIMIT + 1))
    assert error_of(r) == (413, {"status": 413, "message": f"object exceeds the limit of {SMALL_LIMIT} bytes"})
    assert list(served.store.keys(bucket)) == []


def test_a_chunked_body_over_the_limit_is_413_and_leaves_nothing(served, bucket):
    r = requests.put(served.small.presign_put(bucket, "too-big", 60), data=iter([b"x" * 40_000] * 3))
    assert error_of(r)[0] == 413
    assert list(served.store.keys(bucket)) == []
    assert os.listdir(os.path.join(served.store.root, ".tmp")) == []


def test_at_the_limit_is_accepted(served, bucket):
    r = requests.put(served.small.presign_put(bucket, "just-fits", 60), data=b"x" * SMALL_LIMIT)
    assert r.status_code == 200


def test_an_upload_cut_short_never_appears(served, bucket):
    served.store.put(bucket, "obj", b"previous")
    url = urlsplit(served.store.presign_put(bucket, "obj", 60))
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".encode())
        sock.sendall(b"y" * 6_000_000)  # more than one write batch reaches the disk
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while os.listdir(os.path.join(served.store.root, ".tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(os.path.join(served.store.root, ".tmp")) == []
    assert b"".join(served.store.get(bucket, "obj")) == b"previous"


def test_a_download_cut_short_releases_the_file(served, bucket):
    served.store.put(bucket, "big", os.urandom(30 * 1024 * 1024))
    r = requests.get(served.store.presign_get(bucket, "big", 60), stream=True)
    next(r.iter_content(65536))
    path = os.path.join(served.store.local_path(bucket), "big")
    assert path in open_files()  # the server (in this process) is sending it
    r.close()  # the client leaves after 64 KiB
    deadline = time.monotonic() + 5
    while path in open_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path not in open_files()
    assert requests.get(served.store.presign_get(bucket, "big", 60)).status_code == 200


def open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return found


# -- mounted as the server mounts it -----------------------------------------------------------------

def test_routes_of_a_server_serve_the_urls_its_factory_signs(tmp_path):
    keys = Keys(b"m" * 32)
    settings = Settings().with_(data_dir=str(tmp_path))
    services = Services(store=None, settings=settings, keys=keys)  # type: ignore[arg-type]
    with ThreadedServer(Starlette(routes=routes(services))) as server:
        base = f"http://127.0.0.1:{server.port}"
        store = embedded_store(str(tmp_path), keys.signing, base)
        store.ensure_bucket("data-bucket")
        assert requests.put(store.presign_put("data-bucket", "a/b", 60, "text/plain"), data=b"hi",
                            headers={"content-type": "text/plain"}).status_code == 200
        assert requests.get(store.presign_get("data-bucket", "a/b", 60)).content == b"hi"
        assert os.path.isfile(tmp_path / "objects" / "data-bucket" / "a" / "b")
        # a URL signed by another server's key is refused
        other = embedded_store(str(tmp_path), Keys(b"o" * 32).signing, base)
        assert requests.get(other.presign_get("data-bucket", "a/b", 60)).status_code == 403


def test_keys_with_url_special_characters(served, bucket):
    key = "dir/a b+c%d?e#f&g=h;é"
    url = served.store.presign_put(bucket, key, 60)
    assert f"/data/{bucket}/{quote(key, safe='/')}?" in url
    assert requests.put(url, data=b"special").status_code == 200
    assert list(served.store.keys(bucket)) == [key]
    assert requests.get(served.store.presign_get(bucket, key, 60)).content == b"special"
