"""Signed, expiring URLs for the embedded object store.

A signature is an HMAC-SHA256, under the server's URL-signing key (``Keys.signing``), of the method, the
bucket, the key and the expiry time. The four values are encoded as a JSON array before signing, so that no
choice of key can make two different requests sign the same text.

The URL carries only ``expires`` and ``signature``: the method, bucket and key come from the request itself,
so a signature for one of them refuses every other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from urllib.parse import quote

from .base import StorageError

METHODS = ("GET", "PUT")
_EPOCH = re.compile(r"[0-9]{1,12}")


def signature(signing_key: bytes, method: str, bucket: str, key: str, expires: int) -> str:
    text = json.dumps([method.upper(), bucket, key, int(expires)], ensure_ascii=False, separators=(",", ":"))
    return hmac.new(signing_key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_url(signing_key: bytes, public_base: str, method: str, bucket: str, key: str, ttl: int,
               now: Callable[[], float] = time.time) -> str:
    """``<public_base>/data/<bucket>/<key>?expires=<epoch>&signature=<hex>``, valid for ``ttl`` seconds."""
    if method.upper() not in METHODS:
        raise ValueError(f"cannot sign a URL for {method}")
    if ttl <= 0:
        raise ValueError("a signed URL needs a positive lifetime")
    expires = int(now()) + int(ttl)
    sig = signature(signing_key, method, bucket, key, expires)
    return f"{public_base.rstrip('/')}/data/{bucket}/{quote(key, safe='/')}?expires={expires}&signature={sig}"


def verify(signing_key: bytes, method: str, bucket: str, key: str, expires: str | None, sig: str | None,
           now: Callable[[], float] = time.time) -> None:
    """Return when the signature covers exactly this request and has not expired; StorageError ``denied``
    otherwise. The message does not tell a forged signature from a tampered one."""
    if not expires or not sig or not _EPOCH.fullmatch(expires) or method.upper() not in METHODS:
        raise StorageError("the URL is not signed", reason="denied")
    expected = signature(signing_key, method, bucket, key, int(expires))
    # compare_digest takes only ASCII text; anything else is no signature of ours anyway
    if not hmac.compare_digest(expected.encode("ascii"), sig.lower().encode("utf-8")):
        raise StorageError("the URL signature does not match", reason="denied")
    if int(expires) < now():
        raise StorageError("the URL has expired", reason="denied")
