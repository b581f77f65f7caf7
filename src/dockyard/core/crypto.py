"""Digests, password hashes, random secrets and encryption at rest. Keys are handed in; nothing is read here.

- API secrets and session tokens are long random strings, so a fast keyed digest (HMAC-SHA256) is the
  right store: nothing can brute-force 170 random bits, and a login costs microseconds.
- Passwords are chosen by people, so they get argon2id.
- Credential fields that the engine must read back (TLS keys, registry passwords) are encrypted with
  Fernet under a key derived from the server's master key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Nuvla's API-secret alphabet (no 0, 1, l, o, O, I): five groups of six joined by dots
SECRET_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
_password_hasher = PasswordHasher()
ENCRYPTED_PREFIX = "***ENCRYPTED***"


def new_api_secret() -> str:
    groups = ["".join(secrets.choice(SECRET_ALPHABET) for _ in range(6)) for _ in range(5)]
    return ".".join(groups)


def clean_api_secret(secret: str) -> str:
    """As Nuvla: characters outside the alphabet are dropped before hashing or checking."""
    return "".join(ch for ch in secret if ch in SECRET_ALPHABET)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master)


def keyed_digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def digest_matches(key: bytes, text: str, digest: str) -> bool:
    return hmac.compare_digest(keyed_digest(key, text), digest)


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Cipher:
    """Encrypts string fields at rest; the stored form is ``***ENCRYPTED***<fernet token>``."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plain: str) -> str:
        return ENCRYPTED_PREFIX + self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(ENCRYPTED_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(ENCRYPTED_PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("a stored secret cannot be decrypted with this server's key") from exc


class Keys:
    """The purposes the master key serves, each under its own derived key."""

    def __init__(self, master: bytes) -> None:
        self.digest = derive(master, "dockyard api-secret digest")
        self.cipher = Cipher(derive(master, "dockyard credential encryption"))
        self.signing = derive(master, "dockyard url signing")
