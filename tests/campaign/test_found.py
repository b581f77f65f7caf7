"""Bugs the schemathesis campaign (test_schemathesis.py) found, each pinned by the request that showed it."""

from __future__ import annotations

import pytest

from ..api.helpers import admin, error_of, make_user


@pytest.fixture(scope="module")
def root(sqlite_server):
    return admin(sqlite_server)


@pytest.fixture(scope="module")
def user(sqlite_server, root):
    return make_user(sqlite_server, root)


@pytest.mark.parametrize("body, missing", [
    ({"parent": "deployment/8c7f58f9-e-7b0", "value": None}, "name"),
    ({"name": "token", "value": "x"}, "parent"),
])
def test_a_parameter_without_the_attributes_its_id_is_made_of_is_refused(user, body, missing):
    resp = user.post("deployment-parameter", json=body)
    status, message = error_of(resp)
    assert status == 400
    assert f"missing required attribute '{missing}'" in message
    assert user.count("deployment-parameter") == 0


def test_a_user_identifier_without_its_identifier_is_refused(root):
    resp = root.post("user-identifier", json={"name": "x"})
    status, message = error_of(resp)
    assert status == 400
    assert "missing required attribute 'identifier'" in message
