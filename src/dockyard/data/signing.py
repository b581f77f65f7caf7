"""Signed, expiring URLs for the embedded object store.

A signature is an HMAC-SHA256, under the server's URL-signing key (``Keys.signing``), of the method, the
bucket, the key, the expiry time and, for an upload that declares one, the content type. The values are
encoded as a JSON array before signing, so that no choice of key can make two different requests sign the
same text.

The URL carries only ``expires`` and ``signature``: the method, bucket, key and content type come from the
request itself, so a signature for one of them refuses every other. As with S3, an upload URL signed with a
content type needs a PUT with exactly that ``Content-Type``; one signed without accepts any.
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


def signature(signing_key: bytes, method: str, bucket: str, key: str, expires: int, content_type: str = "") -> str:
    values: list[object] = [method.upper(), bucket, key, int(expires)]
    if content_type:
        values.append(content_type)
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(signing_key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_url(signing_key: bytes, public_base: str, method: str, bucket: str, key: str, ttl: int,
               now: Callable[[], float] = time.time, *, content_type: str = "") -> str:
    """``<public_base>/data/<bucket>/<key>?expires=<epoch>&signature=<hex>``, valid for ``ttl`` seconds."""
    if method.upper() not in METHODS:
        raise ValueError(f"cannot sign a URL for {method}")
    if ttl <= 0:
        raise ValueError("a signed URL needs a positive lifetime")
    expires = int(now()) + int(ttl)
    sig = signature(signing_key, method, bucket, key, expires, content_type if method.upper() == "PUT" else "")
    return f"{public_base.rstrip('/')}/data/{bucket}/{quote(key, safe='/')}?expires={expires}&signature={sig}"


def verify(signing_key: bytes, method: str, bucket: str, key: str, expires: str | None, sig: str | None,
           now: Callable[[], float] = time.time, *, content_type: str = "") -> None:
    """Return when the signature covers exactly this request and has not expired; StorageError ``denied``
    otherwise. ``content_type``: the PUT's own header, which a URL signed with a type must carry. The
    message does not tell a forged signature from a tampered one."""
    if not expires or not sig or not _EPOCH.fullmatch(expires) or method.upper() not in METHODS:
        raise StorageError("the URL is not signed", reason="denied")
    # compare_digest takes only ASCII text; anything else is no signature of ours anyway
    given = sig.lower().encode("utf-8")
    types = ("",) if method.upper() != "PUT" or not content_type else (content_type, "")
    if not any(hmac.compare_digest(signature(signing_key, method, bucket, key, int(expires), t).encode("ascii"),
                                   given) for t in types):
        raise StorageError("the URL signature does not match", reason="denied")
    if int(expires) < now():
        raise StorageError("the URL has expired", reason="denied")
