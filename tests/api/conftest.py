"""Callers shared by the HTTP-level API tests: the admin and two fresh users per test."""

from __future__ import annotations

import pytest

from .helpers import Caller, admin, make_user


@pytest.fixture(scope="module")
def root(live_server) -> Caller:
    return admin(live_server)


@pytest.fixture
def alice(live_server, root) -> Caller:
    return make_user(live_server, root)


@pytest.fixture
def bob(live_server, root) -> Caller:
    return make_user(live_server, root)
