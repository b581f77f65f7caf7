"""Bugs the schemathesis campaign (test_schemathesis.py) found, and those found while aiming it, each pinned by
the request that showed it (on both databases where the store is involved)."""

from __future__ import annotations

import pytest

from ..api.helpers import admin, error_of, make_user


@pytest.fixture(scope="module")
def root(sqlite_server):
    return admin(sqlite_server)


@pytest.fixture(scope="module")
def user(sqlite_server, root):
    return make_user(sqlite_server, root)


@pytest.fixture
def someone(live_server):
    return make_user(live_server, admin(live_server))


def post_raw(caller, path: str, body: bytes):
    return caller.post(path, content=body, headers={"content-type": "application/json"})


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


@pytest.mark.parametrize("text", [r"\ud800", r"x\udfffy", r"\uDC00\ud83d"])
def test_a_lone_surrogate_in_a_json_string_is_malformed_json(someone, text):
    resp = post_raw(someone, "infrastructure-service-group", b'{"name": "' + text.encode() + b'"}')
    status, message = error_of(resp)
    assert status == 400
    assert "malformed JSON in request body" in message and "surrogate" in message
    assert someone.count("infrastructure-service-group") == 0
    # a pair is one character, and fine
    assert post_raw(someone, "infrastructure-service-group", b'{"name": "\\ud83d\\ude00"}').status_code == 201


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_json_numbers_are_malformed_json(someone, constant):
    body = b'{"infrastructure-service": "infrastructure-service/local-storage", "x": ' + constant + b"}"
    resp = post_raw(someone, "data-record", body)
    status, message = error_of(resp)
    assert status == 400
    assert "malformed JSON in request body" in message and constant.decode() in message
    assert someone.count("data-record") == 0


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00"])
def test_a_timestamp_that_leaves_the_calendar_in_utc_is_refused(user, ts):
    resp = user.post("data-record", json={"infrastructure-service": "infrastructure-service/local-storage",
                                          "timestamp": ts})
    status, message = error_of(resp)
    assert status == 400
    assert "attribute 'timestamp' must be a timestamp" in message
    # the last instant UTC can hold is still fine
    assert user.post("data-record", json={"infrastructure-service": "infrastructure-service/local-storage",
                                          "timestamp": "9999-12-31T23:59:59Z"}).status_code == 201


def test_an_api_key_ttl_beyond_the_calendar_is_refused(user):
    before = user.count("credential")
    resp = user.post("credential", json={"template": {"href": "credential-template/generate-api-key",
                                                      "ttl": 10 ** 12}})
    status, message = error_of(resp)
    assert status == 400
    assert "template attribute 'ttl'" in message
    assert user.count("credential") == before


def test_a_timestamp_before_year_1000_keeps_its_four_digit_year(someone):
    rid = someone.add("data-record", {"infrastructure-service": "infrastructure-service/local-storage",
                                      "timestamp": "0225-04-23T16:24:31Z"})
    assert someone.get(rid).json()["timestamp"] == "0225-04-23T16:24:31.000Z"
    # stored as written, the document stays valid: it can be edited and found by its time
    assert someone.put(rid, json={"description": "still valid"}).status_code == 200
    assert someone.ids("data-record", "timestamp<'1000-01-01T00:00:00Z'") == {rid}
