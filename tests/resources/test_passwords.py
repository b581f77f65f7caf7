"""Passwords are hashed and checked outside the write transaction.

On SQLite a write transaction holds the process's one writer lock, so an argon2id hash or check (~100-250 ms
of CPU) inside it stopped every other write of the server for that long: under a load mixing 1 password
login in 80 requests with 63 other clients, every write waited in line behind them (benchmarks/load.py).
"""

from __future__ import annotations

import threading
import uuid

import pytest

from dockyard.core import crypto
from dockyard.core.authn import ANONYMOUS, INTERNAL
from dockyard.core.errors import Forbidden
from dockyard.resources import crud
from dockyard.resources.base import Ctx


@pytest.fixture
def writable_during(services, monkeypatch):
    """Records, each time a password is hashed or checked, whether another thread could open a write
    transaction meanwhile (it waits up to 5 s for one)."""
    seen: list[tuple[str, bool]] = []

    def other_thread_writes() -> bool:
        done = threading.Event()

        def write() -> None:
            with services.store.write():
                done.set()

        threading.Thread(target=write, daemon=True).start()
        return done.wait(5)

    def probe(name):
        real = getattr(crypto, name)

        def wrapper(*args):
            seen.append((name, other_thread_writes()))
            return real(*args)
        monkeypatch.setattr(crypto, name, wrapper)

    probe("hash_password")
    probe("verify_password")
    return seen


def login(services, username: str, password: str):
    return crud.add(Ctx(services, ANONYMOUS), services.types["session"], {"template": {
        "href": "session-template/password", "username": username, "password": password}})


def test_hash_and_check_leave_the_store_writable(services, writable_during):
    username = f"u{uuid.uuid4().hex[:8]}"
    reply = crud.add(Ctx(services, INTERNAL), services.types["user"], {"template": {
        "href": "user-template/username-password", "username": username, "password": "a-long-password"}})
    assert reply.status == 201
    assert login(services, username, "a-long-password").status == 201
    with pytest.raises(Forbidden, match=f"invalid credentials for '{username}'"):
        login(services, username, "not-the-password")
    assert writable_during == [("hash_password", True), ("verify_password", True), ("verify_password", True)]
    # the stored hash is the one computed outside: the login with it worked, and only it is stored
    with services.store.read() as tx:
        user = tx.get(reply.body["resource-id"])
        cred = tx.get(user["credential-password"])
    assert crypto.verify_password(cred["hash"], "a-long-password")
