"""Data through the real client: key prefixes, records, objects moved at pre-signed URLs, data sets."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
import requests
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3

from dockyard.data import objects_root

from ..deployments.conftest import new_user

LOCAL_STORAGE = "infrastructure-service/local-storage"
LOCAL_CRED = "credential/local-storage"


def prefix(api, name):
    try:
        api.add("data-record-key-prefix", {"prefix": name, "uri": f"https://example.org/{name}"})
    except NuvlaError as err:
        assert err.response.status_code == 409


def test_records_need_registered_prefixes_and_are_searchable(live_server):
    api, _ = new_user(live_server)
    with pytest.raises(NuvlaError) as err:
        api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "zz:unknown": 1})
    assert err.value.response.status_code == 406
    assert err.value.reason == "resource uses keys with undefined prefixes"
    with pytest.raises(NuvlaError) as err:
        api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "nested": {"zz:deep": 1}})
    assert err.value.response.status_code == 406
    prefix(api, "data")
    prefix(api, "gnss")
    mission = f"m-{uuid.uuid4().hex[:6]}"
    ids = [api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "data:bucket": "b1",
                                   "data:object": f"o{i}", "gnss:mission": mission,
                                   "timestamp": f"2026-01-0{i + 1}T00:00:00Z"}).data["resource-id"]
           for i in range(3)]
    found = api.search("data-record", filter=f"gnss:mission='{mission}' and timestamp>'2026-01-01T12:00:00Z'")
    assert {r.id for r in found.resources} == set(ids[1:])
    assert api.get(ids[0]).data["timestamp"] == "2026-01-01T00:00:00.000Z"
    other, _ = new_user(live_server)
    assert other.search("data-record", filter=f"gnss:mission='{mission}'").count == 0


def test_objects_round_trip_through_presigned_urls_with_the_real_helper(live_server):
    api, _ = new_user(live_server)
    helper = DataObjectS3(api)
    content = os.urandom(300_000)
    bucket = f"bk-{uuid.uuid4().hex[:8]}"
    oid = helper.create(content, bucket, "dir/blob.bin", LOCAL_CRED, content_type="application/octet-stream")
    doc = api.get(oid).data
    assert doc["state"] == "READY" and doc["bytes"] == len(content)
    assert doc["md5sum"] == hashlib.md5(content).hexdigest()
    assert helper.get_content(oid) == content
    url = api.operation(api.get(oid), "download").data["uri"]
    assert requests.get(url).content == content
    assert requests.get(url.replace("signature=", "signature=0")).status_code == 403
    assert requests.get(url.replace(bucket, bucket + "x")).status_code == 403
    other, _ = new_user(live_server)
    with pytest.raises(NuvlaError) as err:
        other.operation(api.get(oid), "download")
    assert err.value.response.status_code == 403
    helper.delete(oid)
    assert requests.get(url).status_code == 404


def test_data_sets_keep_valid_filters(live_server):
    api, _ = new_user(live_server)
    sid = api.add("data-set", {"name": "s", "data-record-filter": "gnss:mission='x'"}).data["resource-id"]
    assert api.get(sid).data["data-record-filter"] == "gnss:mission='x'"
    with pytest.raises(NuvlaError) as err:
        api.add("data-set", {"name": "bad", "data-record-filter": "gnss:mission="})
    assert err.value.response.status_code == 400


def test_delete_keeps_the_stored_object_or_its_bucket_when_asked_as_nuvla(live_server):
    api, _ = new_user(live_server)
    helper = DataObjectS3(api)
    bucket = f"bk-{uuid.uuid4().hex[:8]}"
    bucket_dir = os.path.join(objects_root(live_server.data_dir), bucket)
    kept = helper.create(b"kept bytes", bucket, "kept.bin", LOCAL_CRED, content_type="text/plain")
    url = api.operation(api.get(kept), "download").data["uri"]
    headers = {"content-type": "application/json"}
    resp = api.session.delete(f"{api.endpoint}/api/{kept}", json={"keep-s3-object": True}, headers=headers)
    assert resp.status_code == 200, resp.text
    with pytest.raises(NuvlaError):
        api.get(kept)
    assert requests.get(url).content == b"kept bytes"  # the record went, the bytes stayed
    # keep-s3-bucket: the object goes, its emptied bucket stays
    other = helper.create(b"gone", f"{bucket}-2", "gone.bin", LOCAL_CRED, content_type="text/plain")
    resp = api.session.delete(f"{api.endpoint}/api/{other}", json={"keep-s3-bucket": True}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert os.path.isdir(bucket_dir + "-2") and os.listdir(bucket_dir + "-2") == []
    # a body that is not an object is refused, and nothing is deleted
    third = helper.create(b"third", bucket, "third.bin", LOCAL_CRED, content_type="text/plain")
    resp = api.session.delete(f"{api.endpoint}/api/{third}", data=b"[1]", headers=headers)
    assert resp.status_code == 400 and "body of a delete" in resp.json()["message"]
    assert api.get(third).data["state"] == "READY"
    helper.delete(third)  # no body: as before, bytes and the then-empty bucket go
    assert not os.path.exists(os.path.join(bucket_dir, "third.bin"))
