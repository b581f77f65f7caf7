"""Failures end in a clear state, with a message a user understands, and nothing leaked."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from nuvla.api import NuvlaError

from ..conftest import ADMIN_PASSWORD, free_port, start_server, stop_server
from .conftest import component, deploy, new_user, start, wait_state

INTERNAL_ERROR = re.compile(r"^internal error in (\w+); reference (\w+) in the server log$")


def test_a_missing_image_ends_in_error_on_the_deployment_and_its_job(sqlite_server, images, docker_client):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, component(api, "dockyard-test/does-not-exist:1"))
    job_id = start(api, dep_id)
    doc = wait_state(api, dep_id, "ERROR")
    assert "dockyard-test/does-not-exist:1" in doc["status-message"]
    job = api.get(job_id).data
    assert job["state"] == "FAILED" and job["status-message"] == doc["status-message"]
    assert docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
    # from ERROR it can be stopped, which also removes its key
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0


def test_an_engine_that_does_not_answer_ends_in_error(sqlite_server, images):
    api, uid = new_user(sqlite_server)
    closed = free_port()
    infra = api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm",
        "endpoint": f"tcp://127.0.0.1:{closed}"}, "name": "gone"}).data["resource-id"]
    cred = api.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                               "parent": infra, "cert": "CERT", "key": "KEY", "ca": ""}})
    cred_id = cred.data["resource-id"]
    assert "key" not in api.get(cred_id).data  # the private key is never returned
    dep_id = deploy(api, component(api, images["app"]), parent=cred_id)
    start(api, dep_id)
    doc = wait_state(api, dep_id, "ERROR")
    assert str(closed) in doc["status-message"] or "engine" in doc["status-message"].lower()


class HangingRegistry:
    """Accepts connections and never answers: a pull from it hangs until the registry goes away."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_a_worker_killed_mid_job_is_replaced_and_nothing_leaks(tmp_path, images, docker_client):
    registry = HangingRegistry()
    server = start_server(tmp_path / "api", extra_env={"DOCKYARD_WORKERS": "0"})
    env = dict(os.environ, DOCKYARD_DATA_DIR=server.data_dir, DOCKYARD_JOB_LEASE="2",
               DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD)
    workers: list[subprocess.Popen] = []

    def worker() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "ab"))
        workers.append(proc)
        return proc

    try:
        api, uid = new_user(server)
        dep_id = deploy(api, component(api, f"127.0.0.1:{registry.port}/slow/app:1"))
        first = worker()
        job_id = start(api, dep_id)
        deadline = time.monotonic() + 30
        while api.get(job_id).data["state"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # dies while its pull hangs
        first.wait()
        assert api.get(dep_id).data["state"] == "STARTING"
        second = worker()
        registry.close()  # the retry's pull now fails at once
        doc = wait_state(api, dep_id, "ERROR", timeout=60)
        job = api.get(job_id).data
        assert job["state"] == "FAILED" and job["attempts"] == 2
        assert f"127.0.0.1:{registry.port}/slow/app:1" in doc["status-message"]
        assert docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
        api.operation(api.get(dep_id), "stop")
        wait_state(api, dep_id, "STOPPED", timeout=30)
        assert api.search("credential", filter=f"parent='{dep_id}'").count == 0
        second.terminate()
        assert second.wait(15) == 0
    finally:
        registry.close()
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
        stop_server(server)


def test_starting_twice_is_refused(sqlite_server, images):
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"]))
    start(api, dep_id)
    with pytest.raises(NuvlaError) as err:
        api.operation(api.get(dep_id), "start")
    assert err.value.response.status_code == 409
    wait_state(api, dep_id, "STARTED")
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


def test_a_published_port_that_is_taken_ends_in_error_naming_it(sqlite_server, images, docker_client):
    api, _ = new_user(sqlite_server)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        dep_id = deploy(api, component(api, images["app"], ports=[
            {"target-port": 80, "published-port": taken, "protocol": "tcp"}]))
        job_id = start(api, dep_id)
        doc = wait_state(api, dep_id, "ERROR")
    assert str(taken) in doc["status-message"] and "port" in doc["status-message"].lower()
    assert api.get(job_id).data["state"] == "FAILED"
    assert docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
    assert api.search("credential", filter=f"parent='{dep_id}'").count == 0


def containers_of(docker_client, dep_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"})


def test_a_start_whose_s3_staging_fails_ends_in_error_and_leaves_nothing(sqlite_server, images, docker_client):
    api, _ = new_user(sqlite_server)
    try:
        api.add("data-record-key-prefix", {"prefix": "data", "uri": "https://example.org/data"})
    except NuvlaError as err:
        assert err.response.status_code == 409
    closed = free_port()  # an S3 store nobody answers for: staging its bucket fails
    infra = api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "s3",
        "endpoint": f"http://127.0.0.1:{closed}"}, "name": "s3 away"}).data["resource-id"]
    api.add("credential", {"template": {"href": "credential-template/infrastructure-service-minio",
                                        "parent": infra, "access-key": "k", "secret-key": "s3-secret"}})
    bucket = f"away-{uuid.uuid4().hex[:8]}"
    record = api.add("data-record", {"infrastructure-service": infra, "data:bucket": bucket,
                                     "data:object": "a.txt"}).data["resource-id"]
    dep_id = deploy(api, component(api, images["app"]), **{"data-records": {record: {}}})
    job_id = start(api, dep_id)
    doc = wait_state(api, dep_id, "ERROR", timeout=60)
    assert doc["status-message"].startswith(f"cannot mount bucket '{bucket}': S3 endpoint")
    job = api.get(job_id).data
    assert job["state"] == "FAILED" and job["status-message"] == doc["status-message"]
    assert containers_of(docker_client, dep_id) == []
    # what the start staged for the container went with it
    assert not os.path.exists(os.path.join(sqlite_server.data_dir, "staging", dep_id.split("/", 1)[1]))
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


def test_a_crash_in_start_or_stop_ends_in_error_with_a_reference_to_the_log(tmp_path, images, docker_client):
    """A worker that shares the database but not the master key (a misconfiguration) cannot decrypt an
    engine's TLS key: every start and stop on that engine crashes inside the action."""
    server = start_server(tmp_path / "api", extra_env={"DOCKYARD_WORKERS": "0"})
    env = dict(os.environ, DOCKYARD_DATA_DIR=server.data_dir, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
               DOCKYARD_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))
    try:
        api, _ = new_user(server)
        infra = api.add("infrastructure-service", {"template": {
            "href": "infrastructure-service-template/generic", "subtype": "swarm",
            "endpoint": f"tcp://127.0.0.1:{free_port()}"}, "name": "tls"}).data["resource-id"]
        cred = api.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                                   "parent": infra, "cert": "CERT", "key": "KEY", "ca": ""}})
        dep_id = deploy(api, component(api, images["app"]), parent=cred.data["resource-id"])
        outcomes = []
        for operation, action in (("start", "start_deployment"), ("stop", "stop_deployment")):
            job_id = api.operation(api.get(dep_id), operation).data["location"]
            doc = wait_state(api, dep_id, "ERROR", timeout=30)
            job = api.get(job_id).data
            assert job["state"] == "FAILED" and job["status-message"] == doc["status-message"]
            found = INTERNAL_ERROR.match(doc["status-message"])
            assert found and found.group(1) == action, doc["status-message"]
            outcomes.append(found.group(2))
        assert containers_of(docker_client, dep_id) == []
        worker.terminate()
        worker.wait(15)
        log = log_path.read_text()
        for reference in outcomes:  # the traceback is in the log, under the reference the user was given
            assert re.search(rf"reference {reference}\b.*\nTraceback", log), log
    finally:
        if worker.poll() is None:
            worker.kill()
        stop_server(server)
