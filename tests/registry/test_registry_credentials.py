"""Registry credentials: Nuvla's template, the password encrypted and never returned, and the ``check`` action
that logs in to a real registry (htpasswd on loopback) and sets ``status`` and ``last-check``."""

from __future__ import annotations

import uuid

import httpx
import pytest
from nuvla.api import NuvlaError

from ..deployments.conftest import api_for, new_user
from .conftest import server_log
from .helpers import REGISTRY_TEMPLATE, add_credential, add_registry, check


def test_check_gives_valid_invalid_and_unknown_and_the_password_is_never_returned(server, private_registry):
    api, _ = new_user(server)
    templates = [t.id for t in api.search("credential-template").resources]
    assert REGISTRY_TEMPLATE in templates
    reg = add_registry(api, private_registry.endpoint)
    good = add_credential(api, reg, private_registry.username, private_registry.password, name="good")
    wrong_password = "wrong-" + uuid.uuid4().hex
    bad = add_credential(api, reg, private_registry.username, wrong_password, name="bad")

    doc = api.get(good).data
    assert doc["subtype"] == doc["method"] == "infrastructure-service-registry"
    assert doc["parent"] == reg and doc["username"] == private_registry.username
    assert "password" not in doc and "status" not in doc
    assert {op["rel"] for op in doc["operations"]} >= {"check", "delete"}

    job = check(api, good)
    assert job["state"] == "SUCCESS", job
    assert private_registry.address in job["status-message"]
    doc = api.get(good).data
    assert doc["status"] == "VALID" and doc["last-check"]

    job = check(api, bad)
    assert job["state"] == "FAILED"
    assert f"The registry {private_registry.address} refused the credential" in job["status-message"]
    assert api.get(bad).data["status"] == "INVALID"

    # a registry that does not answer: UNKNOWN, the job says so
    gone = add_registry(api, "http://127.0.0.1:9", name="nothing there")
    unknown = add_credential(api, gone, "someone", "whatever-" + uuid.uuid4().hex)
    job = check(api, unknown)
    assert job["state"] == "FAILED" and "Cannot reach the registry 127.0.0.1:9" in job["status-message"]
    assert api.get(unknown).data["status"] == "UNKNOWN"

    # the password is in no answer: reads, searches (even selecting it), the jobs, the events
    raw = httpx.Client(base_url=server.api + "/", cookies=api.session.cookies, timeout=30)
    answers = [raw.get(good).text, raw.get("credential").text,
               raw.put("credential", data={"select": "password,username"}).text,
               raw.get("job").text, raw.get("event").text]
    answers.append(server_log(server).decode(errors="replace"))  # at debug level, with the check jobs' lines
    for text in answers:
        assert private_registry.password not in text and wrong_password not in text
    assert private_registry.username in answers[2]


def test_template_is_checked_and_the_parent_must_be_a_visible_registry(server, private_registry):
    api, _ = new_user(server)
    other, _ = new_user(server)
    reg = add_registry(api, private_registry.endpoint)
    engine = api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm",
        "endpoint": "tcp://127.0.0.1:9"}}).data["resource-id"]

    def refused(caller, **params) -> tuple[int, str]:
        with pytest.raises(NuvlaError) as err:
            caller.add("credential", {"template": {"href": REGISTRY_TEMPLATE, **params}})
        return err.value.response.status_code, err.value.response.json()["message"]

    assert refused(api, parent=reg, username="u") == (
        400, "template attribute 'password' is required (a non-blank string)")
    assert refused(api, parent=reg, password="p")[0] == 400
    assert refused(api, parent=engine, username="u", password="p") == (
        400, "template attribute 'parent' must be an infrastructure-service of subtype registry, not swarm")
    assert refused(other, parent=reg, username="u", password="p")[0] == 403  # not theirs to see
    with pytest.raises(NuvlaError) as err:
        api.add("infrastructure-service", {"template": {"href": "infrastructure-service-template/generic",
                                                        "subtype": "registry", "endpoint": "ftp://x/y"}})
    assert err.value.response.status_code == 400
    assert "attribute 'endpoint' of a registry must be" in err.value.response.json()["message"]


def test_another_user_cannot_check_or_read_the_credential(server, private_registry):
    api, _ = new_user(server)
    stranger = api_for(server)
    stranger_api, _ = new_user(server)
    cred = add_credential(api, add_registry(api, private_registry.endpoint), "u", "p-" + uuid.uuid4().hex)
    for caller in (stranger, stranger_api):
        with pytest.raises(NuvlaError) as err:
            caller.get(cred)
        assert err.value.response.status_code in (401, 403)
