"""Buckets are mounted from Dockyard's own disk, which an engine on another machine (a swarm's nodes) does not
see: a start that would mount one there is a 400 naming the field and the engine, and changes nothing, instead
of a start that fails on the nodes. The same app without data starts there."""

from __future__ import annotations

import uuid

import pytest
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3

from ..conftest import free_port
from ..deployments.conftest import component, deploy, new_user, start
from .test_data_api import LOCAL_CRED, LOCAL_STORAGE, prefix


def remote_engine(api) -> tuple[str, str]:
    """A swarm manager registered at a loopback port nothing answers on: (infrastructure-service, credential)."""
    infra = api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm",
        "endpoint": f"tcp://127.0.0.1:{free_port()}"}, "name": "far-away"}).data["resource-id"]
    cred = api.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                               "parent": infra, "cert": "CERT", "key": "KEY", "ca": ""}})
    return infra, cred.data["resource-id"]


@pytest.mark.parametrize("shape", ["data-records", "data"])
def test_a_start_that_would_mount_a_bucket_on_an_engine_of_another_machine_is_refused(sqlite_server, images, shape):
    api, _ = new_user(sqlite_server)
    prefix(api, "data")
    bucket = f"far-{uuid.uuid4().hex[:8]}"
    DataObjectS3(api).create(b"bytes", bucket, "notes.txt", LOCAL_CRED, content_type="text/plain")
    record = api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "data:bucket": bucket,
                                     "data:object": "notes.txt"}).data["resource-id"]
    infra, cred = remote_engine(api)
    chosen = {"data-records": {record: {}}} if shape == "data-records" else \
        {"data": {"records": {"records-ids": [record]}}}
    dep_id = deploy(api, component(api, images["app"]), parent=cred, **chosen)

    with pytest.raises(NuvlaError) as err:
        start(api, dep_id)
    assert err.value.response.status_code == 400
    reason = err.value.reason
    assert reason.startswith(f"{shape}: the bucket '{bucket}' cannot be mounted on far-away (tcp://127.0.0.1:")
    assert "another machine" in reason
    assert api.get(dep_id).data["state"] == "CREATED"
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0
    assert api.search("job", filter=f"target-resource/href='{dep_id}'").count == 0
    assert api.search("deployment-parameter", filter=f"parent='{dep_id}'").count == 0

    # without data the same app is accepted there (and then fails on the engine nothing answers for)
    plain = deploy(api, component(api, images["app"]), parent=cred)
    assert start(api, plain).startswith("job/")
