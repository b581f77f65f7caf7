"""Between users, data stays apart whichever way a store or an object is named.

- The embedded store is ``infrastructure-service/local-storage`` and nothing else: a service a user
  registers at an address that spells Dockyard's own ``/data`` (as the request names this server, or through
  a proxy header) is an S3 endpoint like any other, and never opens the embedded store around its bucket
  ownership.
- A deployment may read exactly the objects selected for it, by id: a record naming a bucket and key in the
  user's own store lends the deployment nothing of a stranger's object with the same names elsewhere.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from nuvla.api import NuvlaError
from nuvla.api.resources.data import DataObjectS3

from ..conftest import free_port
from ..deployments.conftest import component, deploy, deployment_key, new_user, start, wait_state
from .test_data_api import LOCAL_CRED, prefix
from .test_s3_backend import s3_store


@pytest.mark.parametrize("spelling", ["{base}/data", "{base}/data/", "http://localhost:{port}/data",
                                      "HTTP://127.0.0.1:{port}/data"])
def test_registering_dockyards_own_store_again_is_refused_with_a_clear_message(sqlite_server, spelling):
    bob, uid = new_user(sqlite_server)
    port = sqlite_server.endpoint.rsplit(":", 1)[1]
    endpoint = spelling.format(base=sqlite_server.endpoint, port=port)
    with pytest.raises(NuvlaError) as err:
        s3_store(bob, endpoint)
    assert err.value.response.status_code == 400
    assert "Dockyard's own object store" in err.value.reason and "local-storage" in err.value.reason
    assert bob.search("infrastructure-service", filter=f"subtype='s3' and created-by='{uid}'").count == 0


def test_a_service_spelled_like_this_server_never_opens_the_embedded_store(sqlite_server):
    """The old hole: the store was chosen by comparing the service's endpoint with the request's own origin,
    which a client sets (Host, X-Forwarded-Host). A service at 127.0.0.1:<closed port>/data, used in requests
    that claim to arrive at 127.0.0.1:<closed port>, opened the embedded store with no bucket ownership."""
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    bucket = f"private-{uuid.uuid4().hex[:8]}"
    mine = DataObjectS3(alice).create(b"alice's bytes", bucket, "notes.txt", LOCAL_CRED, content_type="text/plain")
    alias = f"127.0.0.1:{free_port()}"  # nothing listens there
    infra, cred = s3_store(bob, f"http://{alias}/data")  # not this server's origin as bob's request names it
    spoofed = requests.Session()
    spoofed.cookies.update(bob.session.cookies)
    spoofed.headers.update({"X-Forwarded-Host": alias, "X-Forwarded-Proto": "http"})
    resp = spoofed.post(f"{sqlite_server.api}/data-object", json={"template": {
        "href": "data-object-template/generic", "bucket": bucket, "object": "notes.txt", "credential": cred}})
    assert resp.status_code == 502, resp.text  # an S3 endpoint that does not answer, not alice's directory
    assert "object store" in resp.json()["message"]
    assert bob.search("data-object", filter=f"bucket='{bucket}'").count == 0
    url = alice.operation(alice.get(mine), "download").data["uri"]
    assert requests.get(url).content == b"alice's bytes"


def test_a_record_lends_a_deployment_only_the_objects_selected_not_a_strangers_with_the_same_names(
        sqlite_server, moto_endpoint, images):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    prefix(bob, "data")
    bucket = f"shared-name-{uuid.uuid4().hex[:8]}"
    alices = DataObjectS3(alice).create(b"alice's own", bucket, "k.txt", LOCAL_CRED, content_type="text/plain")
    # bob's own S3 store holds the same bucket and key; his record describes that object
    infra, cred = s3_store(bob, moto_endpoint)
    bobs = DataObjectS3(bob).create(b"bob's own", bucket, "k.txt", cred, content_type="text/plain")
    record = bob.add("data-record", {"infrastructure-service": infra, "data:bucket": bucket,
                                     "data:object": "k.txt"}).data["resource-id"]
    dep_id = deploy(bob, component(bob, images["app"], ports=[{"target-port": 80}]),
                    **{"data-records": {record: {}}})
    start(bob, dep_id)
    wait_state(bob, dep_id, "STARTED")
    key = deployment_key(sqlite_server, bob, dep_id)
    assert key.get(bobs).id == bobs  # what the record describes, in bob's store
    with pytest.raises(NuvlaError) as err:
        key.get(alices)
    assert err.value.response.status_code == 403
    assert dep_id not in alice.get(alices).data["acl"].get("view-data", [])
    bob.operation(bob.get(dep_id), "stop")
    wait_state(bob, dep_id, "STOPPED")
