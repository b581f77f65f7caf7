"""Any S3-compatible store (AWS, MinIO, Ceph ...) through boto3: path-style addressing, signature v4.

Every botocore error is translated here into a StorageError with a reason label; none leaves this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from .base import ObjectInfo, ObjectStore, StorageError
from .directory import check_bucket

CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 5.0  # seconds to reach the endpoint; an unreachable store should fail a request, not hang it
READ_TIMEOUT = 60.0
RETRIES = 3

_MD5 = re.compile(r"[0-9a-f]{32}")
_REASONS = {
    "NoSuchBucket": "no-such-bucket",
    "NoSuchKey": "no-such-object",
    "AccessDenied": "denied",
    "InvalidAccessKeyId": "denied",
    "SignatureDoesNotMatch": "denied",
    "InvalidBucketName": "invalid-name",
    "KeyTooLongError": "invalid-name",
    "SlowDown": "unavailable",
    "ServiceUnavailable": "unavailable",
    "InternalError": "unavailable",
}
T = TypeVar("T")


class S3Store(ObjectStore):
    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self.endpoint = endpoint
        self.region = region
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, region_name=region,
                        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"max_attempts": RETRIES, "mode": "standard"})
        try:
            # a session of our own: the default one would read AWS_* variables and ~/.aws of the server
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                region_name=region, config=config)
        except (BotoCoreError, ValueError) as exc:
            raise StorageError(f"invalid S3 endpoint {endpoint}: {exc}", reason="unavailable") from exc

    def _call(self, what: str, method: Callable[..., T], **params: Any) -> T:
        try:
            return method(**params)
        except ClientError as exc:
            raise _translate(exc, what) from exc
        except (EndpointConnectionError, NoCredentialsError, BotoCoreError) as exc:
            raise StorageError(f"S3 endpoint {self.endpoint} unavailable ({what}): {exc}",
                               reason="unavailable") from exc

    # -- buckets -----------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        check_bucket(bucket)
        try:
            self._call(f"bucket {bucket}", self._client.head_bucket, Bucket=bucket)
            return
        except StorageError as exc:
            if exc.reason != "no-such-bucket":
                raise
        params: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(f"create bucket {bucket}", self._client.create_bucket, **params)
        except StorageError as exc:
            if exc.reason != "exists":  # created by someone else meanwhile: what we wanted
                raise

    def remove_bucket_if_empty(self, bucket: str) -> bool:
        check_bucket(bucket)
        try:
            listing = self._call(f"bucket {bucket}", self._client.list_objects_v2, Bucket=bucket, MaxKeys=1)
            if listing.get("KeyCount", 0):
                return False
            self._call(f"remove bucket {bucket}", self._client.delete_bucket, Bucket=bucket)
        except StorageError as exc:
            if exc.reason in ("no-such-bucket", "not-empty"):
                return False
            raise
        return True

    # -- objects -----------------------------------------------------------------------------------

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        check_bucket(bucket)
        head = self._call(f"object {key}", self._client.head_object, Bucket=bucket, Key=key)
        etag = str(head.get("ETag", "")).strip('"').lower()
        md5 = etag if _MD5.fullmatch(etag) else str(head.get("Metadata", {}).get("md5", ""))
        if not _MD5.fullmatch(md5):
            # a multipart upload's ETag is no MD5 of the content: hash the bytes themselves
            md5 = _md5_of(self.get(bucket, key))
        return ObjectInfo(bucket, key, int(head.get("ContentLength", 0)), md5, str(head.get("ContentType", "")))

    def delete(self, bucket: str, key: str) -> None:
        check_bucket(bucket)
        try:
            self._call(f"object {key}", self._client.delete_object, Bucket=bucket, Key=key)
        except StorageError as exc:
            if exc.reason not in ("no-such-bucket", "no-such-object"):
                raise

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "") -> ObjectInfo:
        check_bucket(bucket)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": data, "Metadata": {"md5": md5}}
        if content_type:
            params["ContentType"] = content_type
        self._call(f"object {key}", self._client.put_object, **params)
        return ObjectInfo(bucket, key, len(data), md5, content_type)

    def get(self, bucket: str, key: str) -> Iterator[bytes]:
        check_bucket(bucket)
        answer = self._call(f"object {key}", self._client.get_object, Bucket=bucket, Key=key)
        return self._chunks(answer["Body"], key)

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        except BotoCoreError as exc:
            raise StorageError(f"S3 endpoint {self.endpoint} unavailable (reading {key}): {exc}",
                               reason="unavailable") from exc
        finally:
            body.close()

    def keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        check_bucket(bucket)
        return self._keys(bucket, prefix)

    def _keys(self, bucket: str, prefix: str) -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]
        except ClientError as exc:
            raise _translate(exc, f"bucket {bucket}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 endpoint {self.endpoint} unavailable (listing {bucket}): {exc}",
                               reason="unavailable") from exc

    # -- pre-signed URLs ---------------------------------------------------------------------------

    def presign_put(self, bucket: str, key: str, ttl: int, content_type: str = "") -> str:
        """With a content type, S3 accepts the PUT only with that same Content-Type header."""
        params: dict[str, Any] = {"Bucket": check_bucket(bucket), "Key": key}
        if content_type:
            params["ContentType"] = content_type
        return self._presign("put_object", params, ttl)

    def presign_get(self, bucket: str, key: str, ttl: int) -> str:
        return self._presign("get_object", {"Bucket": check_bucket(bucket), "Key": key}, ttl)

    def _presign(self, operation: str, params: dict[str, Any], ttl: int) -> str:
        # signing is local: no request reaches the endpoint, so only a bad argument can fail here
        try:
            return str(self._client.generate_presigned_url(operation, Params=params, ExpiresIn=int(ttl)))
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise StorageError(f"cannot sign a URL for {params['Key']}: {exc}", reason="invalid-name") from exc


def _translate(exc: ClientError, what: str) -> StorageError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(error.get("Message", "")) or code
    if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        reason = "exists" if code == "BucketAlreadyOwnedByYou" else "denied"
    elif code == "BucketNotEmpty":
        reason = "not-empty"
    elif code in _REASONS:
        reason = _REASONS[code]
    elif status == 404 or code == "404":  # HEAD answers carry no error body, only the status
        reason = "no-such-object" if what.startswith("object") else "no-such-bucket"
    elif status == 403 or code == "403":
        reason = "denied"
    elif isinstance(status, int) and status >= 500:
        reason = "unavailable"
    else:
        reason = "storage-error"
    return StorageError(f"S3 refused ({what}): {message}", reason=reason)


def _md5_of(chunks: Iterator[bytes]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        md5.update(chunk)
    return md5.hexdigest()
