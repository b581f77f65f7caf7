"""The embedded object store is shared by every user through one credential, so Dockyard itself keeps
users' buckets apart: a bucket belongs to the account that first stored an object in it, and nobody else
can put objects in it, read them under their own data-object, or mount it into a deployment."""

from __future__ import annotations

import uuid

import pytest
import requests
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3

from ..conftest import ADMIN_PASSWORD
from ..deployments.conftest import api_for, component, deploy, new_user, start
from .test_data_api import LOCAL_CRED, LOCAL_STORAGE, prefix


def _object(api, bucket, key):
    return api.add("data-object", {"template": {
        "href": "data-object-template/generic", "bucket": bucket, "object": key, "credential": LOCAL_CRED,
        "content-type": "text/plain"}})


def test_another_user_can_neither_read_nor_overwrite_objects_through_a_bucket_name(sqlite_server):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    bucket = f"private-{uuid.uuid4().hex[:8]}"
    mine = DataObjectS3(alice).create(b"alice's bytes", bucket, "notes.txt", LOCAL_CRED, content_type="text/plain")
    with pytest.raises(NuvlaError) as err:  # the same key under bob's own data-object: ready/download would leak
        _object(bob, bucket, "notes.txt")
    assert err.value.response.status_code == 403
    assert bucket in err.value.reason and "another account" in err.value.reason
    with pytest.raises(NuvlaError) as err:  # a new key in alice's bucket: refused too
        _object(bob, bucket, "planted.txt")
    assert err.value.response.status_code == 403
    assert bob.search("data-object", filter=f"bucket='{bucket}'").count == 0
    url = alice.operation(alice.get(mine), "download").data["uri"]
    assert requests.get(url).content == b"alice's bytes"
    # alice herself keeps using her bucket
    DataObjectS3(alice).create(b"more", bucket, "more.txt", LOCAL_CRED, content_type="text/plain")
    assert alice.search("data-object", filter=f"bucket='{bucket}'").count == 2


def test_a_record_naming_another_users_bucket_cannot_mount_it(sqlite_server, images):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    prefix(bob, "data")
    bucket = f"private-{uuid.uuid4().hex[:8]}"
    DataObjectS3(alice).create(b"alice's bytes", bucket, "notes.txt", LOCAL_CRED, content_type="text/plain")
    crafted = bob.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "data:bucket": bucket,
                                      "data:object": "notes.txt"}).data["resource-id"]
    dep_id = deploy(bob, component(bob, images["app"]), **{"data-records": {crafted: {}}})
    with pytest.raises(NuvlaError) as err:
        start(bob, dep_id)
    assert err.value.response.status_code == 403
    assert bucket in err.value.reason
    assert bob.get(dep_id).data["state"] == "CREATED"
    assert bob.search("credential", filter=f"parent='{dep_id}'").count == 0  # nothing half-done


def test_a_bucket_an_administrator_made_is_not_anyone_elses_to_claim(sqlite_server):
    admin = api_for(sqlite_server)
    admin.login_password("admin", ADMIN_PASSWORD)
    alice, _ = new_user(sqlite_server)
    bucket = f"admins-{uuid.uuid4().hex[:8]}"
    DataObjectS3(admin).create(b"admin's bytes", bucket, "config.txt", LOCAL_CRED, content_type="text/plain")
    with pytest.raises(NuvlaError) as err:
        _object(alice, bucket, "config.txt")
    assert err.value.response.status_code == 403
