"""What is particular to the S3 backend, against moto's standalone server.

moto checks neither signatures nor expiry of pre-signed URLs, so refusing a tampered or expired URL is S3's
part and is tested for the directory backend only; here we check what we sign.
"""

from __future__ import annotations

import hashlib
import io
import os
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from dockyard.data.base import StorageError
from dockyard.data.s3 import S3Store, _translate

from .conftest import new_bucket


def test_presigned_urls_are_path_style_and_signature_v4(s3, moto_endpoint):
    bucket = new_bucket()
    url = s3.presign_put(bucket, "dir/file name.txt", 900, "text/plain")
    split = urlsplit(url)
    query = parse_qs(split.query)
    assert f"{split.scheme}://{split.netloc}" == moto_endpoint
    assert split.path == f"/{bucket}/dir/file%20name.txt"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Credential"][0].startswith("test-access/")
    # the content type is signed: S3 takes the PUT only with that same header
    assert "content-type" in query["X-Amz-SignedHeaders"][0].split(";")
    get = parse_qs(urlsplit(s3.presign_get(bucket, "k", 60)).query)
    assert get["X-Amz-Expires"] == ["60"] and "content-type" not in get["X-Amz-SignedHeaders"][0]


def test_local_path_is_none(s3):
    assert s3.local_path("any-bucket") is None


def test_md5_of_a_multipart_upload_is_computed_from_the_bytes(s3, moto_endpoint):
    """A multipart ETag is no MD5 (it ends in -<parts>): ``stat`` hashes the content instead."""
    bucket = new_bucket()
    s3.ensure_bucket(bucket)
    client = boto3.session.Session().client(
        "s3", endpoint_url=moto_endpoint, aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}))
    data = os.urandom(12 * 1024 * 1024)
    client.upload_fileobj(io.BytesIO(data), bucket, "parts.bin",
                          Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    assert "-" in client.head_object(Bucket=bucket, Key="parts.bin")["ETag"]
    info = s3.stat(bucket, "parts.bin")
    assert (info.bytes, info.md5) == (len(data), hashlib.md5(data).hexdigest())


def test_an_unreachable_endpoint_is_unavailable():
    store = S3Store("http://127.0.0.1:9", "a", "b")
    with pytest.raises(StorageError) as err:
        store.stat("some-bucket", "k")
    assert err.value.reason == "unavailable"
    assert "127.0.0.1:9" in err.value.message
    with pytest.raises(StorageError) as err:
        list(store.keys("some-bucket"))
    assert err.value.reason == "unavailable"


def test_signing_needs_no_endpoint():
    url = S3Store("http://127.0.0.1:9", "a", "b").presign_get("some-bucket", "k", 60)
    assert url.startswith("http://127.0.0.1:9/some-bucket/k?")


def test_an_invalid_endpoint_is_a_storage_error():
    with pytest.raises(StorageError) as err:
        S3Store("not a url", "a", "b")
    assert err.value.reason == "unavailable"


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize("code, status, what, reason", [
    ("AccessDenied", 403, "object k", "denied"),
    ("InvalidAccessKeyId", 403, "object k", "denied"),
    ("SignatureDoesNotMatch", 403, "object k", "denied"),
    ("403", 403, "object k", "denied"),              # HEAD: no body, the status only
    ("404", 404, "object k", "no-such-object"),
    ("404", 404, "bucket b", "no-such-bucket"),
    ("NoSuchBucket", 404, "object k", "no-such-bucket"),
    ("SlowDown", 503, "object k", "unavailable"),
    ("WhoKnows", 502, "object k", "unavailable"),
    ("InvalidBucketName", 400, "bucket b", "invalid-name"),
    ("BucketAlreadyExists", 409, "create bucket b", "denied"),  # someone else's name
    ("Strange", 400, "object k", "storage-error"),
])
def test_s3_errors_get_reasons(code, status, what, reason):
    error = _translate(client_error(code, status, "detail"), what)
    assert error.reason == reason
    assert what in error.message


def test_a_presigned_put_with_a_content_type_keeps_it(s3):
    bucket = new_bucket()
    s3.ensure_bucket(bucket)
    url = s3.presign_put(bucket, "typed", 60, "image/png")
    assert requests.put(url, data=b"\x89PNG", headers={"content-type": "image/png"}).status_code == 200
    assert s3.stat(bucket, "typed").content_type == "image/png"
