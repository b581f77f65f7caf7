"""The same data story on an S3 store (moto's S3 server on loopback): objects through the real client's
helper at boto3's pre-signed URLs, and the Jupyter example with its buckets staged into the container."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3

from ..deployments.conftest import (component, deploy, http_get, new_user, parameters, start, wait_parameter,
                                   wait_ready, wait_state)
from .test_data_api import prefix


def s3_store(api, endpoint):
    infra = api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "s3", "endpoint": endpoint},
        "name": "moto"}).data["resource-id"]
    cred = api.add("credential", {"template": {"href": "credential-template/infrastructure-service-minio",
                                               "parent": infra, "access-key": "testing",
                                               "secret-key": "testing-secret"}}).data["resource-id"]
    return infra, cred


def test_objects_on_s3_round_trip_with_the_real_helper(sqlite_server, moto_endpoint):
    api, _ = new_user(sqlite_server)
    infra, cred = s3_store(api, moto_endpoint)
    assert "secret-key" not in api.get(cred).data
    helper = DataObjectS3(api)
    content = b"s3 bytes " * 1000
    oid = helper.create(content, f"s3b-{uuid.uuid4().hex[:8]}", "x/y.bin", cred,
                        content_type="application/octet-stream")
    doc = api.get(oid).data
    assert doc["state"] == "READY" and doc["bytes"] == len(content)
    assert doc["md5sum"] == hashlib.md5(content).hexdigest()
    assert helper.get_content(oid) == content
    helper.delete(oid)


def test_jupyter_example_on_s3(sqlite_server, moto_endpoint, images):
    api, _ = new_user(sqlite_server)
    prefix(api, "data")
    prefix(api, "gnss")
    infra, cred = s3_store(api, moto_endpoint)
    helper = DataObjectS3(api)
    bucket, mission = f"s3j-{uuid.uuid4().hex[:8]}", f"m{uuid.uuid4().hex[:6]}"
    selected = []
    for obj, text in (("a.txt", "alpha on s3"), ("b.txt", "bravo on s3")):
        helper.create(text, bucket, obj, cred)
        selected.append(api.add("data-record", {"infrastructure-service": infra, "data:bucket": bucket,
                                                "data:object": obj, "gnss:mission": mission}).data["resource-id"])
    module_id = component(api, images["seed"], ports=[{"target-port": 8888}],
                          **{"output-parameters": [{"name": "jupyter-token", "description": "the token"}]})
    dep_id = deploy(api, module_id, **{"data-records": {rid: {} for rid in selected}})
    start(api, dep_id)
    wait_ready(api, dep_id)
    wait_parameter(api, dep_id, "jupyter-token")
    port = parameters(api, dep_id)["tcp.8888"]
    for obj, text in (("a.txt", "alpha on s3"), ("b.txt", "bravo on s3")):
        got = http_get(f"http://127.0.0.1:{port}/data/{mission}/{bucket}__{obj}")
        assert got.status_code == 200 and got.text == text
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


def test_a_record_on_someone_elses_s3_store_cannot_be_staged_with_their_keys(sqlite_server, moto_endpoint,
                                                                            images):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    prefix(bob, "data")
    infra, cred = s3_store(alice, moto_endpoint)
    bucket = f"s3p-{uuid.uuid4().hex[:8]}"
    DataObjectS3(alice).create(b"alice's s3 bytes", bucket, "p.txt", cred)
    crafted = bob.add("data-record", {"infrastructure-service": infra, "data:bucket": bucket,
                                      "data:object": "p.txt"}).data["resource-id"]
    dep_id = deploy(bob, component(bob, images["app"]), **{"data-records": {crafted: {}}})
    with pytest.raises(NuvlaError) as err:
        start(bob, dep_id)
    assert err.value.response.status_code == 403
    assert "no S3 credential" in err.value.reason and bucket in err.value.reason
    assert bob.get(dep_id).data["state"] == "CREATED"


def test_force_deleting_a_started_deployment_removes_its_staged_data(sqlite_server, moto_endpoint, images,
                                                                     docker_client):
    api, _ = new_user(sqlite_server)
    infra, cred = s3_store(api, moto_endpoint)
    bucket = f"s3f-{uuid.uuid4().hex[:8]}"
    oid = DataObjectS3(api).create(b"staged bytes", bucket, "f.txt", cred)
    dep_id = deploy(api, component(api, images["app"]), data={"objects": {"objects-ids": [oid]}})
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    staged = os.path.join(sqlite_server.data_dir, "staging", dep_id.split("/", 1)[1])
    with open(os.path.join(staged, bucket, "f.txt"), "rb") as f:
        assert f.read() == b"staged bytes"
    api.operation(api.get(dep_id), "force-delete")
    label = {"label": f"dockyard.deployment-id={dep_id}"}
    deadline = time.monotonic() + 30
    while (os.path.exists(staged) or docker_client.containers.list(all=True, filters=label, ignore_removed=True)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(staged), "the deleted deployment's staged data outlived it"
    assert docker_client.containers.list(all=True, filters=label, ignore_removed=True) == []
