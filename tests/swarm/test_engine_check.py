"""The ``check`` of a swarm manager registered as Nuvla has it: an ``infrastructure-service`` of subtype
``swarm`` at ``tcp://…`` with its ``infrastructure-service-swarm`` credential (the client certificate and key
of the test swarm). The check goes over TCP + TLS to the real manager and reports ``online``,
``swarm-enabled``, ``swarm-manager`` and (Dockyard's addition) ``swarm-nodes``; a client certificate the
swarm's CA never signed makes the credential INVALID, and the job says why."""

from __future__ import annotations

import pytest

from tests.api.helpers import admin, make_user
from tests.api.test_infrastructure import check, engine, get, swarm_credential
from tests.support import make_tls_pems


@pytest.fixture(scope="module")
def alice(sqlite_server):
    return make_user(sqlite_server, admin(sqlite_server))


def test_check_of_the_swarm_manager_reports_a_manager_of_three_nodes(alice, swarm):
    infra = engine(alice, swarm.endpoint)
    cred = swarm_credential(alice, infra, swarm.ca, swarm.cert, swarm.key)
    job = check(alice, cred)
    assert job["state"] == "SUCCESS", job
    assert "swarm manager of 3 node(s)" in job["status-message"]
    assert get(alice, cred)["status"] == "VALID"
    doc = get(alice, infra)
    assert (doc["online"], doc["swarm-enabled"], doc["swarm-manager"], doc["swarm-nodes"]) == (True, True, True, 3)


def test_check_with_a_client_certificate_from_another_ca_is_invalid_and_says_tls(alice, swarm):
    stranger = make_tls_pems()
    infra = engine(alice, swarm.endpoint)
    cred = swarm_credential(alice, infra, swarm.ca, stranger.client_cert, stranger.client_key)
    job = check(alice, cred)
    assert job["state"] == "FAILED"
    assert f"TLS with the Docker engine at {swarm.endpoint} failed" in job["status-message"], job["status-message"]
    assert get(alice, cred)["status"] == "INVALID"
    doc = get(alice, infra)
    assert doc["online"] is False and doc["swarm-enabled"] is False and doc["swarm-nodes"] == 0
