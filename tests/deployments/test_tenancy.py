"""Users sharing Dockyard's own engine stay apart: named volumes are their owner's, mounts cannot reach the
host through any volume option, and a deployment uses the engine credential it names, nobody else's."""

from __future__ import annotations

import time
import uuid

import docker
import pytest
from nuvla.api import NuvlaError

from tests.support import make_tls_pems, tls_engine

from ..conftest import start_server, stop_server
from .conftest import DEPLOYED, component, container_of, deploy, new_user, sh, start, wait_state


def _volumes_of(docker_client, dep_id) -> set[str]:
    return {m["Name"] for m in container_of(docker_client, dep_id).attrs["Mounts"] if m["Type"] == "volume"}


def _stop(api, dep_id):
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


# -- named volumes ---------------------------------------------------------------------------------------

def test_a_volume_name_reaches_only_its_owners_volume(sqlite_server, images, docker_client):
    alice, _ = new_user(sqlite_server)
    bob, _ = new_user(sqlite_server)
    name = f"dyt-shared-{uuid.uuid4().hex[:8]}"
    mounts = [{"mount-type": "volume", "source": name, "target": "/work"}]
    created: set[str] = set()
    try:
        first = deploy(alice, component(alice, images["app"], mounts=mounts))
        start(alice, first)
        wait_state(alice, first, "STARTED")
        created |= _volumes_of(docker_client, first)
        assert sh(container_of(docker_client, first), "echo alice-secret > /work/key")[0] == 0
        _stop(alice, first)

        # bob names the same volume: he gets a volume of his own, empty
        second = deploy(bob, component(bob, images["app"], mounts=mounts))
        start(bob, second)
        wait_state(bob, second, "STARTED")
        created |= _volumes_of(docker_client, second)
        assert sh(container_of(docker_client, second), "ls -A /work") == (0, "")
        assert len(created) == 2 and all(v.endswith("-" + name) for v in created)
        _stop(bob, second)

        # naming alice's volume as the engine knows it is refused, naming it
        [alices] = {v for v in created if docker_client.volumes.get(v).attrs["Labels"].get(
            "dockyard.deployment-id") == first}
        third = deploy(bob, component(bob, images["app"], mounts=[
            {"mount-type": "volume", "source": alices, "target": "/work"}]))
        with pytest.raises(NuvlaError) as err:
            start(bob, third)
        assert err.value.response.status_code == 403 and alices in err.value.reason
        assert bob.get(third).data["state"] == "CREATED"

        # alice finds her own data again
        again = deploy(alice, component(alice, images["app"], mounts=mounts))
        start(alice, again)
        wait_state(alice, again, "STARTED")
        assert sh(container_of(docker_client, again), "cat /work/key") == (0, "alice-secret\n")
        _stop(alice, again)
    finally:
        for volume in created:
            try:
                docker_client.volumes.get(volume).remove(force=True)
            except docker.errors.NotFound:
                pass


# -- host paths: an allow-list ---------------------------------------------------------------------------

ESCAPES = {
    "rbind": {"type": "none", "o": "rbind", "device": "/etc"},
    "bind-relative-device": {"type": "none", "o": "bind", "device": "etc"},
    "overlay-lowerdir": {"type": "overlay", "device": "overlay",
                         "o": "lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"},
    "nfs": {"type": "nfs", "o": "addr=127.0.0.1,rw", "device": ":/exports"},
    "tmpfs-with-an-unknown-option": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,context=x"},
    "unknown-key": {"type": "tmpfs", "device": "tmpfs", "copy": "/etc"},
}


@pytest.mark.parametrize("options", ESCAPES.values(), ids=ESCAPES.keys())
def test_volume_options_outside_the_allow_list_are_refused_before_anything_starts(sqlite_server, images,
                                                                                 options):
    api, _ = new_user(sqlite_server)
    target = f"/t{uuid.uuid4().hex[:6]}"
    dep_id = deploy(api, component(api, images["app"], mounts=[
        {"mount-type": "volume", "source": f"v{uuid.uuid4().hex[:6]}", "target": target,
         "volume-options": options}]))
    with pytest.raises(NuvlaError) as err:
        start(api, dep_id)
    assert err.value.response.status_code == 403
    assert target in err.value.reason and "only an administrator" in err.value.reason
    assert api.get(dep_id).data["state"] == "CREATED"
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0


def test_a_sized_tmpfs_volume_is_allowed(sqlite_server, images, docker_client):
    api, _ = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"], mounts=[
        {"mount-type": "volume", "target": "/fast",
         "volume-options": {"type": "tmpfs", "device": "tmpfs", "o": "size=4m,mode=1777"}}]))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    code, mounts = sh(container_of(docker_client, dep_id), "cat /proc/mounts")
    assert code == 0 and any(line.split()[1:3] == ["/fast", "tmpfs"] for line in mounts.splitlines())
    _stop(api, dep_id)


# -- engine credentials ----------------------------------------------------------------------------------

def _engine(api, endpoint: str) -> str:
    return api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm", "endpoint": endpoint},
        "name": "shared engine"}).data["resource-id"]


def _credential(api, infra: str, ca: str, cert: str, key: str) -> str:
    return api.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                               "parent": infra, "ca": ca, "cert": cert, "key": key}}
                   ).data["resource-id"]


def _final_job(api, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    job = api.get(job_id).data
    while job["state"] not in ("SUCCESS", "FAILED", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.get(job_id).data
    return job


def test_a_deployment_and_a_check_use_the_credential_they_name_not_another_users(sqlite_server, images):
    """An engine shared with bob carries alice's working credentials and bob's, whose certificate the
    engine's CA never signed: bob's check and bob's deployment fail with his own, and never borrow hers."""
    pems, stranger = make_tls_pems(), make_tls_pems()
    alice, _ = new_user(sqlite_server)
    bob, bob_id = new_user(sqlite_server)
    with tls_engine(pems) as endpoint:
        infra = _engine(alice, endpoint)
        alice.edit(infra, {"acl": {**alice.get(infra).data["acl"], "view-data": [bob_id]}})
        for _ in range(4):  # several of hers: whichever came first was taken before
            _credential(alice, infra, pems.ca, pems.client_cert, pems.client_key)
        bobs = _credential(bob, infra, pems.ca, stranger.client_cert, stranger.client_key)
        check = bob.operation(bob.get(bobs), "check").data["location"]
        assert _final_job(bob, check)["state"] == "FAILED"
        assert bob.get(bobs).data["status"] == "INVALID"

        dep_id = deploy(bob, component(bob, images["app"]), parent=bobs)
        start(bob, dep_id)
        doc = wait_state(bob, dep_id, "ERROR")
        assert "TLS" in doc["status-message"] and endpoint in doc["status-message"]
        DEPLOYED.add(dep_id)


def test_the_sweep_through_another_registration_of_the_same_engine_leaves_others_containers(
        tmp_path, images, docker_client):
    """Alice registers Dockyard's own engine again, as a service of hers: sweeping through her key sees every
    container on that engine, and must not take bob's (on the built-in service) for orphans."""
    server = start_server(tmp_path / "sweeping", extra_env={"DOCKYARD_SWEEP_INTERVAL": "0.3"})
    try:
        alice, _ = new_user(server)
        bob, _ = new_user(server)
        infra = _engine(alice, "unix:///var/run/docker.sock")
        _credential(alice, infra, "", "", "")
        dep_id = deploy(bob, component(bob, images["app"]))
        start(bob, dep_id)
        wait_state(bob, dep_id, "STARTED")
        time.sleep(3)  # ten sweeps
        assert bob.get(dep_id).data["state"] == "STARTED"
        assert container_of(docker_client, dep_id).status == "running"
        _stop(bob, dep_id)
    finally:
        stop_server(server)
