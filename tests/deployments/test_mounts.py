"""An app's mounts reach its container: volumes, tmpfs, read-only flags; and host paths on the machine
Dockyard runs on are an administrator's privilege, since they would expose the Docker socket and Dockyard's
own data dir to any user."""

from __future__ import annotations

import os
import uuid

import pytest
from nuvla.api import NuvlaError

from ..conftest import ADMIN_PASSWORD
from .conftest import api_for, component, container_of, deploy, new_user, sh, start, wait_state


def test_volumes_tmpfs_and_read_only_flags_reach_thecontainer_of(sqlite_server, images, docker_client):
    api, _ = new_user(sqlite_server)
    volume = f"dyt-vol-{uuid.uuid4().hex[:8]}"
    engine_name = None
    try:
        dep_id = deploy(api, component(api, images["app"], mounts=[
            {"mount-type": "volume", "source": volume, "target": "/work"},
            {"mount-type": "volume", "source": volume, "target": "/frozen", "read-only": True},
            {"mount-type": "tmpfs", "target": "/scratch"}]))
        start(api, dep_id)
        wait_state(api, dep_id, "STARTED")
        box = container_of(docker_client, dep_id)
        [engine_name] = {m["Name"] for m in box.attrs["Mounts"] if m["Type"] == "volume"}
        assert engine_name.endswith("-" + volume)  # the owner's own volume: see test_tenancy
        assert sh(box, "echo kept > /work/note && cat /frozen/note") == (0, "kept\n")
        assert sh(box, "echo no > /frozen/other")[0] != 0  # read-only
        code, mounts = sh(box, "cat /proc/mounts")
        assert code == 0 and any(line.split()[1:3] == ["/scratch", "tmpfs"] for line in mounts.splitlines())
        api.operation(api.get(dep_id), "stop")
        wait_state(api, dep_id, "STOPPED")
        # a named volume outlives its container, as with docker run
        assert docker_client.volumes.get(engine_name).name == engine_name
    finally:
        try:
            docker_client.volumes.get(engine_name or volume).remove(force=True)
        except Exception:  # noqa: BLE001 - the test may have failed before the volume existed
            pass


@pytest.mark.parametrize("mount", [
    {"mount-type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"},
    {"mount-type": "volume", "source": "sneaky", "target": "/host",
     "volume-options": {"type": "none", "o": "bind", "device": "/"}},
], ids=["bind", "bind-through-volume-options"])
def test_a_user_cannot_mount_host_paths_of_dockyards_own_machine(sqlite_server, images, mount):
    api, _ = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"], mounts=[mount]))
    with pytest.raises(NuvlaError) as err:
        start(api, dep_id)
    assert err.value.response.status_code == 403
    assert "only an administrator may mount host paths" in err.value.reason
    assert (mount.get("source") if mount["mount-type"] == "bind" else "'/'") in err.value.reason
    assert api.get(dep_id).data["state"] == "CREATED"
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0  # nothing was started


def test_an_administrator_may_bind_a_host_path_read_only(sqlite_server, images, docker_client, tmp_path):
    admin = api_for(sqlite_server)
    admin.login_password("admin", ADMIN_PASSWORD)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host")
    os.chmod(shared, 0o755)
    dep_id = deploy(admin, component(admin, images["app"], mounts=[
        {"mount-type": "bind", "source": str(shared), "target": "/host", "read-only": True}]))
    start(admin, dep_id)
    wait_state(admin, dep_id, "STARTED")
    box = container_of(docker_client, dep_id)
    assert sh(box, "cat /host/hello.txt") == (0, "from the host")
    assert sh(box, "touch /host/new")[0] != 0
    admin.operation(admin.get(dep_id), "stop")
    wait_state(admin, dep_id, "STOPPED")


def test_an_update_to_a_version_with_a_host_path_is_refused_too(sqlite_server, images, docker_client):
    api, _ = new_user(sqlite_server)
    module_id = component(api, images["app"])
    dep_id = deploy(api, module_id)
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    content = api.get(module_id).data["content"]
    api.edit(module_id, {"content": {**content, "mounts": [
        {"mount-type": "bind", "source": "/", "target": "/host"}], "commit": "now with the host"}})
    api.operation(api.get(dep_id), "fetch-module", {"module-href": f"{module_id}_1"})
    with pytest.raises(NuvlaError) as err:
        api.operation(api.get(dep_id), "update")
    assert err.value.response.status_code == 403 and "host path '/'" in err.value.reason
    assert api.get(dep_id).data["state"] == "STARTED"
    assert not any(m["Destination"] == "/host" for m in container_of(docker_client, dep_id).attrs["Mounts"])
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
