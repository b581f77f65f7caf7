"""Deployments are private to their owners; a deployment's key reaches its own deployment only."""

from __future__ import annotations

import httpx
import pytest
from nuvla.api import NuvlaError

from dockyard.core.ids import deployment_parameter_id

from .conftest import (api_for, component, deploy, deployment_key, new_user, parameters, start, wait_ready,
                       wait_state)


def test_another_user_cannot_read_start_stop_or_see_parameters(sqlite_server, images):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    dep_id = deploy(alice, component(alice, images["app"], ports=[{"target-port": 80}]))
    for call in (lambda: bob.get(dep_id),
                 lambda: bob.operation(alice.get(dep_id), "start"),
                 lambda: bob.edit(dep_id, {"name": "mine"})):
        with pytest.raises(NuvlaError) as err:
            call()
        assert err.value.response.status_code == 403
    start(alice, dep_id)
    wait_state(alice, dep_id, "STARTED")
    with pytest.raises(NuvlaError):
        bob.operation(alice.get(dep_id), "stop")
    assert bob.search("deployment", filter=f"id='{dep_id}'").count == 0
    assert bob.search("deployment-parameter", filter=f"parent='{dep_id}'").count == 0
    assert alice.search("deployment-parameter", filter=f"parent='{dep_id}'").count >= 2
    alice.operation(alice.get(dep_id), "stop")
    wait_state(alice, dep_id, "STOPPED")


def test_the_deployment_key_reads_its_deployment_only_and_cannot_create_credentials(sqlite_server, images):
    alice, _ = new_user(sqlite_server)
    module_id = component(alice, images["app"], ports=[{"target-port": 80}],
                          **{"output-parameters": [{"name": "out", "description": "an output"}]})
    mine = deploy(alice, module_id)
    other = deploy(alice, module_id)
    start(alice, mine)
    wait_ready(alice, mine)
    port = parameters(alice, mine)["tcp.80"]
    env = dict(line.split("=", 1) for line in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text.splitlines()
               if "=" in line)
    key = api_for(sqlite_server)
    assert key.login_apikey(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"]).status_code == 201
    assert key.get(mine).id == mine
    with pytest.raises(NuvlaError) as err:
        key.get(other)
    assert err.value.response.status_code == 403
    assert key.search("deployment").count == 1
    with pytest.raises(NuvlaError) as err:
        key.add("credential", {"template": {"href": "credential-template/generate-api-key"}})
    assert err.value.response.status_code == 403
    # it can set its own output parameter, and nothing else of the deployment
    uuid_part = mine.split("/")[1]
    out = deployment_parameter_id(mine, uuid_part, "out")
    assert key.edit(out, {"value": "42"}).data["value"] == "42"
    with pytest.raises(NuvlaError):
        key.edit(mine, {"name": "renamed"})
    alice.operation(alice.get(mine), "stop")
    wait_state(alice, mine, "STOPPED")


def test_requires_user_rights_gives_the_key_the_starting_users_claims(sqlite_server, images):
    alice, uid = new_user(sqlite_server)
    other = deploy(alice, component(alice, images["app"]))
    mine = deploy(alice, component(alice, images["app"], ports=[{"target-port": 80}],
                                   **{"requires-user-rights": True}))
    start(alice, mine)
    wait_state(alice, mine, "STARTED")
    key = deployment_key(sqlite_server, alice, mine)
    assert key.get(other).id == other  # the user's own rights, not only the deployment's
    assert key.search("deployment").count == 2
    alice.operation(alice.get(mine), "stop")
    wait_state(alice, mine, "STOPPED")


def test_stop_with_delete_needs_the_delete_right(sqlite_server, images):
    alice, _ = new_user(sqlite_server)
    bob, bob_id = new_user(sqlite_server)
    dep_id = deploy(alice, component(alice, images["app"]))
    acl = alice.get(dep_id).data["acl"]
    alice.edit(dep_id, {"acl": {**acl, "manage": sorted(set(acl.get("manage", [])) | {bob_id}),
                                "view-data": sorted(set(acl.get("view-data", [])) | {bob_id})}})
    start(alice, dep_id)
    wait_state(alice, dep_id, "STARTED")
    with pytest.raises(NuvlaError) as err:
        bob.operation(bob.get(dep_id), "stop", {"delete": True})
    assert err.value.response.status_code == 403
    assert alice.get(dep_id).data["state"] == "STARTED"
    bob.operation(bob.get(dep_id), "stop")  # manage is enough for a plain stop
    wait_state(alice, dep_id, "STOPPED")
