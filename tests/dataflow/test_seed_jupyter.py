"""The seed's customised Jupyter example end to end: selected records, their buckets mounted, linked by
mission, the token published, the server reachable — and the deployment's key confined to its records."""

from __future__ import annotations

import uuid

import pytest
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3

from ..deployments.conftest import (component, deploy, deployment_key, http_get, new_user, parameters, start,
    wait_parameter, wait_ready, wait_state)
from .test_data_api import LOCAL_CRED, LOCAL_STORAGE, prefix


def records(api, objects):
    """objects: (bucket, object, mission, bytes) → data-object + data-record; returns the record ids."""
    helper = DataObjectS3(api)
    ids = []
    for bucket, obj, mission, content in objects:
        helper.create(content, bucket, obj, LOCAL_CRED, content_type="text/plain")
        ids.append(api.add("data-record", {
            "infrastructure-service": LOCAL_STORAGE, "name": obj, "data:bucket": bucket, "data:object": obj,
            "gnss:mission": mission, "timestamp": "2026-03-01T00:00:00Z"}).data["resource-id"])
    return ids


@pytest.mark.parametrize("shape", ["data-records", "data"])
def test_jupyter_example_links_every_selected_object_by_mission(sqlite_server, images, shape):
    api, _ = new_user(sqlite_server)
    prefix(api, "data")
    prefix(api, "gnss")
    tag = uuid.uuid4().hex[:6]
    b1, b2, m1, m2 = f"one-{tag}", f"two-{tag}", f"galileo{tag}", f"gps{tag}"
    selected = records(api, [(b1, "a.txt", m1, "alpha"), (b1, "b.txt", m2, "bravo"), (b2, "c.txt", m1, "charlie")])
    [unselected] = records(api, [(b2, "secret.txt", m2, "not for the notebook")])
    module_id = component(api, images["seed"], ports=[{"target-port": 8888}],
                          **{"output-parameters": [{"name": "jupyter-token", "description": "the token"}]})
    if shape == "data-records":
        dep_id = deploy(api, module_id, **{"data-records": {rid: {} for rid in selected}})
    else:
        dep_id = deploy(api, module_id, data={"records": {"records-ids": selected[:2], "filters": [
            {"filter": f"data:object='c.txt' and gnss:mission='{m1}'", "data-type": "data-record",
             "time-start": "2026-01-01T00:00:00Z", "time-end": "2027-01-01T00:00:00Z"}]}})
    start(api, dep_id)
    doc = wait_ready(api, dep_id)
    assert set(doc["data-records"]) == set(selected)
    token = wait_parameter(api, dep_id, "jupyter-token")
    assert len(token) == 24
    port = parameters(api, dep_id)["tcp.8888"]
    for bucket, obj, mission, content in [(b1, "a.txt", m1, "alpha"), (b1, "b.txt", m2, "bravo"),
                                          (b2, "c.txt", m1, "charlie")]:
        got = http_get(f"http://127.0.0.1:{port}/data/{mission}/{bucket}__{obj}")
        assert got.status_code == 200 and got.text == content
    assert http_get(f"http://127.0.0.1:{port}/data/{m2}/{b2}__secret.txt").status_code == 404

    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    assert unselected not in doc["data-records"]


def test_the_deployment_key_cannot_read_records_it_was_not_given(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    prefix(api, "data")
    tag = uuid.uuid4().hex[:6]
    helper = DataObjectS3(api)
    helper.create("x", f"k-{tag}", "given.txt", LOCAL_CRED)
    given = api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "data:bucket": f"k-{tag}",
                                    "data:object": "given.txt"}).data["resource-id"]
    withheld = api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "data:bucket": f"k-{tag}",
                                       "data:object": "other.txt"}).data["resource-id"]
    module_id = component(api, images["app"], ports=[{"target-port": 80}])
    dep_id = deploy(api, module_id, **{"data-records": {given: {}}})
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    key = deployment_key(sqlite_server, api, dep_id)
    assert key.get(given).id == given
    with pytest.raises(NuvlaError) as err:
        key.get(withheld)
    assert err.value.response.status_code == 403
    assert key.search("data-record").count == 1
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    # stopped: the grant is gone with the key
    assert dep_id not in api.get(given).data["acl"].get("view-data", [])
