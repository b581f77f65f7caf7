"""Signed URLs of the embedded store: what is signed, and every way a URL is refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from dockyard.data.base import StorageError
from dockyard.data.signing import signature, signed_url, verify

KEY = b"k" * 32
NOW = 1_700_000_000


def clock(at: float = NOW):
    return lambda: at


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path, query["expires"][0], query["signature"][0]


def test_url_names_bucket_and_key_and_carries_expiry_and_signature():
    url = signed_url(KEY, "https://dock.example/", "PUT", "my-bucket", "dir/a b?.txt", 900, now=clock())
    path, expires, sig = parts(url)
    assert url.startswith("https://dock.example/data/my-bucket/dir/a%20b%3F.txt?expires=")
    assert path == "/data/my-bucket/dir/a%20b%3F.txt"
    assert expires == str(NOW + 900)
    assert sig == signature(KEY, "PUT", "my-bucket", "dir/a b?.txt", NOW + 900)
    assert len(sig) == 64 and int(sig, 16) >= 0


def test_a_valid_signature_is_accepted_until_it_expires():
    sig = signature(KEY, "GET", "b-1", "k", NOW + 10)
    verify(KEY, "GET", "b-1", "k", str(NOW + 10), sig, now=clock(NOW + 10))
    with pytest.raises(StorageError) as err:
        verify(KEY, "GET", "b-1", "k", str(NOW + 10), sig, now=clock(NOW + 11))
    assert (err.value.reason, err.value.message) == ("denied", "the URL has expired")


@pytest.mark.parametrize("method, bucket, key, expires", [
    ("PUT", "b-1", "k", NOW + 10),        # a GET URL used to PUT
    ("GET", "b-2", "k", NOW + 10),        # another bucket
    ("GET", "b-1", "k2", NOW + 10),       # another key
    ("GET", "b-1", "K", NOW + 10),        # keys are case-sensitive
    ("GET", "b-1", "k", NOW + 3600),      # a later expiry
])
def test_a_signature_covers_method_bucket_key_and_expiry(method, bucket, key, expires):
    sig = signature(KEY, "GET", "b-1", "k", NOW + 10)
    with pytest.raises(StorageError) as err:
        verify(KEY, method, bucket, key, str(expires), sig, now=clock())
    assert (err.value.reason, err.value.message) == ("denied", "the URL signature does not match")


def test_another_servers_key_is_refused():
    sig = signature(b"x" * 32, "GET", "b-1", "k", NOW + 10)
    with pytest.raises(StorageError, match="does not match"):
        verify(KEY, "GET", "b-1", "k", str(NOW + 10), sig, now=clock())


@pytest.mark.parametrize("expires, sig", [
    (None, "ab"), ("", "ab"), (str(NOW + 10), None), (str(NOW + 10), ""), ("-5", "ab"), ("1e9", "ab"),
    (f"{NOW + 10}\n", "ab"), ("9" * 40, "ab"),
])
def test_missing_or_malformed_parameters_are_refused(expires, sig):
    with pytest.raises(StorageError) as err:
        verify(KEY, "GET", "b-1", "k", expires, sig, now=clock())
    assert err.value.reason == "denied"


@pytest.mark.parametrize("sig", ["é" * 64, "zz", "0" * 64, "\x00" * 64])
def test_garbage_signatures_are_refused_not_crashing(sig):
    with pytest.raises(StorageError) as err:
        verify(KEY, "GET", "b-1", "k", str(NOW + 10), sig, now=clock())
    assert err.value.reason == "denied"


def test_upper_case_hex_is_the_same_signature():
    sig = signature(KEY, "GET", "b-1", "k", NOW + 10).upper()
    verify(KEY, "GET", "b-1", "k", str(NOW + 10), sig, now=clock())


def test_only_get_and_put_are_signed():
    with pytest.raises(ValueError):
        signed_url(KEY, "http://h", "DELETE", "b-1", "k", 10)
    with pytest.raises(ValueError):
        signed_url(KEY, "http://h", "GET", "b-1", "k", 0)
    with pytest.raises(StorageError):
        verify(KEY, "DELETE", "b-1", "k", str(NOW + 10), signature(KEY, "DELETE", "b-1", "k", NOW + 10), now=clock())
