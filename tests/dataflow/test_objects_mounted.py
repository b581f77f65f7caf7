"""Data objects chosen directly (Nuvla's ``data.objects``, as the real python-library writes it) are
mounted like records' objects: their buckets read-only under /mnt, readable by the deployment's key, and
nothing else of the user's."""

from __future__ import annotations

import uuid

import pytest
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3
from nuvla.api.resources.deployment import Deployment

from ..deployments.conftest import DEPLOYED, component, deployment_key, new_user, wait_state
from .test_data_api import LOCAL_CRED


def test_objects_chosen_by_id_and_by_filter_are_mounted_and_readable_by_the_key(sqlite_server, images,
                                                                               docker_client):
    api, _ = new_user(sqlite_server)
    helper = DataObjectS3(api)
    tag = uuid.uuid4().hex[:6]
    b1, b2 = f"obj-one-{tag}", f"obj-two-{tag}"
    by_id = helper.create(b"first object", b1, "one.txt", LOCAL_CRED, content_type="text/plain")
    by_filter = helper.create(b"second object", b2, "two.txt", LOCAL_CRED, content_type="text/plain")
    withheld = helper.create(b"not chosen", f"obj-three-{tag}", "three.txt", LOCAL_CRED, content_type="text/plain")
    deployments = Deployment(api)
    dep = deployments.create(component(api, images["app"], ports=[{"target-port": 80}]), data_objects=[by_id],
                             data_sets=[{"filter": f"bucket='{b2}'", "data-type": "data-object"}])
    DEPLOYED.add(dep.id)
    deployments.start(dep.id)
    started = wait_state(api, dep.id, "STARTED")
    assert sorted(started["data-objects"]) == sorted([by_id, by_filter])
    assert {(m["bucket"], m["target"]) for m in started["data-mounts"]} == {(b1, f"/mnt/{b1}"), (b2, f"/mnt/{b2}")}
    [container] = docker_client.containers.list(filters={"label": f"dockyard.deployment-id={dep.id}"})
    assert container.exec_run(["cat", f"/mnt/{b1}/one.txt"]).output == b"first object"
    assert container.exec_run(["cat", f"/mnt/{b2}/two.txt"]).output == b"second object"
    assert container.exec_run(["ls", f"/mnt/obj-three-{tag}"]).exit_code != 0
    written = container.exec_run(["sh", "-c", f"echo x > /mnt/{b1}/new.txt"])
    assert written.exit_code != 0  # read-only

    key = deployment_key(sqlite_server, api, dep.id)
    assert {key.get(by_id).id, key.get(by_filter).id} == {by_id, by_filter}
    with pytest.raises(NuvlaError) as err:
        key.get(withheld)
    assert err.value.response.status_code == 403

    deployments.stop(dep.id)
    wait_state(api, dep.id, "STOPPED")
    assert dep.id not in api.get(by_id).data["acl"].get("view-data", [])


def test_an_object_the_user_cannot_read_refuses_the_start(sqlite_server, images):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    secret = DataObjectS3(alice).create(b"alice only", f"obj-a-{uuid.uuid4().hex[:6]}", "s.txt", LOCAL_CRED,
                                        content_type="text/plain")
    dep = Deployment(bob).create(component(bob, images["app"]), data_objects=[secret])
    DEPLOYED.add(dep.id)
    with pytest.raises(NuvlaError) as err:
        bob.operation(bob.get(dep.id), "start")
    assert err.value.response.status_code == 403
    assert bob.get(dep.id).data["state"] == "CREATED"
