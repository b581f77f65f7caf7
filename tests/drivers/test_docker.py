"""DockerDriver against the real local engine, with images built on this machine (tests/support/images.py)."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import tempfile
import threading
import time
import uuid

import docker.errors
import httpx
import pytest

from dockyard.core.time import now_ts
from dockyard.drivers import TlsMaterial, engine_names, get_driver
from dockyard.drivers.base import (
    EXITED, LABEL_DEPLOYMENT, LABEL_MANAGED, RUNNING, DriverError, MountSpec, PortSpec,
    RegistryAuth, RestartPolicy, StopSignal, TaskSpec,
)
from dockyard.drivers.docker import DockerDriver
from tests.support import make_tls_pems, registry_stub, tls_engine
from tests.support.images import python_image

NUVLA_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MIB = 1024 * 1024


@pytest.fixture
def name(request, docker_prefix) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{docker_prefix}-{slug}-{uuid.uuid4().hex[:4]}"


@pytest.fixture
def deployment_id() -> str:
    return f"deployment/{uuid.uuid4()}"


def labelled(docker_client, deployment_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={deployment_id}"})


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def get_text(port: int, path: str = "/") -> str:
    def attempt():
        try:
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None
    return wait_for(attempt, timeout=5)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a web server with env, labels, limits and mounts ------------------------------------------------------

HTTPD_SCRIPT = (
    "env > /www/index.html; "
    "cat /data/hello.txt > /www/bind.txt; "
    "(echo x > /data/new && echo writable || echo read-only) > /www/ro.txt; "
    "echo in-tmpfs > /scratch/t && grep ' /scratch ' /proc/mounts > /www/tmpfs.txt; "
    "exec httpd -f -p 80 -h /www"
)


@pytest.fixture(scope="module")
def web(driver, busybox, docker_prefix, tmp_path_factory):
    """One httpd deployment shared by the read-only checks below."""
    host_dir = tmp_path_factory.mktemp("bind")
    (host_dir / "hello.txt").write_text("from the host\n")
    spec = TaskSpec(
        deployment_id=f"deployment/{uuid.uuid4()}", name=f"{docker_prefix}-web", image=busybox,
        env=(("GREETING", "hello world"), ("NUVLA_DEPLOYMENT_ID", "deployment/x")),
        ports=(PortSpec(80),), publish_ip="127.0.0.1",
        mounts=(MountSpec("bind", "/data", source=str(host_dir), read_only=True), MountSpec("tmpfs", "/scratch")),
        cpus=0.5, memory_mib=64, restart=RestartPolicy("on-failure", 2),
        labels=(("app", "web"), (LABEL_DEPLOYMENT, "not-this-one")),
        command=("sh", "-c", HTTPD_SCRIPT))
    result = driver.start(spec)
    yield spec, result, host_dir
    driver.destroy(spec.deployment_id)


def test_start_reports_running_task_with_ephemeral_port_and_phases(web):
    spec, result, _ = web
    status = result.status
    assert (status.state, status.name, status.image, status.deployment_id) == (
        RUNNING, spec.name, spec.image, spec.deployment_id)
    assert len(status.ports) == 1
    port = status.ports[0]
    assert (port.protocol, port.target, port.host_ip) == ("tcp", 80, "127.0.0.1")
    assert port.host_port > 0
    assert [phase for phase, _ in result.phases] == ["pulled", "created", "started"]
    assert all(NUVLA_TS.match(ts) for _, ts in result.phases)
    assert NUVLA_TS.match(status.started_at)


def test_published_port_serves_the_env_of_the_spec(web):
    _, result, _ = web
    body = get_text(result.status.ports[0].host_port)
    assert "GREETING=hello world" in body.splitlines()
    assert "NUVLA_DEPLOYMENT_ID=deployment/x" in body.splitlines()


def test_bind_mount_is_readable_and_not_writable_and_tmpfs_works(web):
    _, result, host_dir = web
    port = result.status.ports[0].host_port
    assert get_text(port, "/bind.txt") == "from the host\n"
    assert get_text(port, "/ro.txt") == "read-only\n"
    assert get_text(port, "/tmpfs.txt").startswith("tmpfs /scratch tmpfs")
    assert not (host_dir / "new").exists()


def test_container_carries_labels_limits_and_restart_policy(web, docker_client):
    spec, result, _ = web
    attrs = docker_client.containers.get(result.status.task_id).attrs
    labels = attrs["Config"]["Labels"]
    assert labels["app"] == "web"
    assert labels[LABEL_DEPLOYMENT] == spec.deployment_id  # ours win over the spec's
    assert labels[LABEL_MANAGED] == "true"
    host = attrs["HostConfig"]
    assert host["NanoCpus"] == 550_000_000  # 0.5 CPU + Nuvla's 10 % tolerance
    assert host["Memory"] == 64 * MIB * 11 // 10
    assert host["MemoryReservation"] == 64 * MIB
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert attrs["Name"] == "/" + spec.name


def test_inspect_and_managed_see_the_running_task(web, driver):
    spec, result, _ = web
    [status] = driver.inspect(spec.deployment_id)
    assert status.state == RUNNING and status.task_id == result.status.task_id
    assert status.ports == result.status.ports
    assert driver.managed()[spec.deployment_id] == [result.status.task_id]


# -- lifecycle --------------------------------------------------------------------------------------------

def test_stop_then_destroy_leaves_nothing_and_both_are_idempotent(driver, busybox, name, deployment_id,
                                                                  docker_client):
    spec = TaskSpec(deployment_id, name, busybox, command=("sleep", "600"))
    driver.start(spec)
    began = time.monotonic()
    driver.stop(deployment_id, timeout=10)
    # sleep has no SIGTERM handler, but it is not PID 1: the init process hands it the signal at once
    assert time.monotonic() - began < 3
    [status] = driver.inspect(deployment_id)
    assert status.state == EXITED
    assert status.exit_code == 143
    assert NUVLA_TS.match(status.finished_at)
    driver.destroy(deployment_id)
    assert labelled(docker_client, deployment_id) == []
    driver.destroy(deployment_id)
    driver.stop(deployment_id)
    assert driver.inspect(deployment_id) == []
    assert deployment_id not in driver.managed()


def test_start_replaces_the_deployments_previous_container(driver, busybox, name, deployment_id, docker_client):
    spec = TaskSpec(deployment_id, name, busybox, command=("sleep", "600"))
    first = driver.start(spec).status.task_id
    second = driver.start(spec).status.task_id
    assert first != second
    assert [c.id for c in labelled(docker_client, deployment_id)] == [second]
    driver.destroy(deployment_id)


def test_on_failure_restarts_up_to_max_attempts(driver, busybox, name, deployment_id):
    spec = TaskSpec(deployment_id, name, busybox, command=("sh", "-c", "exit 1"),
                    restart=RestartPolicy("on-failure", 2))
    driver.start(spec)

    def settled():
        [status] = driver.inspect(deployment_id)
        return status if status.state == EXITED and status.restart_count == 2 else None
    status = wait_for(settled, timeout=15)
    assert status.exit_code == 1
    driver.destroy(deployment_id)


@pytest.mark.parametrize("condition, engine_name", [("none", "no"), ("any", "unless-stopped")])
def test_restart_condition_maps_to_docker_policy(driver, busybox, name, deployment_id, docker_client,
                                                  condition, engine_name):
    spec = TaskSpec(deployment_id, name, busybox, command=("sleep", "600"), restart=RestartPolicy(condition))
    result = driver.start(spec)
    policy = docker_client.containers.get(result.status.task_id).attrs["HostConfig"]["RestartPolicy"]
    assert policy["Name"] == engine_name
    driver.destroy(deployment_id)


def test_volumes_named_with_options_and_anonymous_removed_with_the_container(driver, busybox, name, deployment_id,
                                                                             docker_client):
    volume = f"{name}-vol"
    spec = TaskSpec(deployment_id, name, busybox, command=("sleep", "600"), mounts=(
        MountSpec("volume", "/named", source=volume, options=(("type", "tmpfs"), ("device", "tmpfs"))),
        MountSpec("volume", "/anonymous")))
    result = driver.start(spec)
    mounts = docker_client.containers.get(result.status.task_id).attrs["Mounts"]
    anonymous = next(m["Name"] for m in mounts if m["Destination"] == "/anonymous")
    named = docker_client.volumes.get(volume).attrs
    assert named["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    assert named["Labels"][LABEL_DEPLOYMENT] == deployment_id
    driver.destroy(deployment_id)  # a plain stop: nothing could ever mount the anonymous volume again
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(anonymous)
    docker_client.volumes.get(volume).remove()  # named volumes are the user's data: destroy keeps them


# -- failures ---------------------------------------------------------------------------------------------

def test_missing_image_is_image_not_found_and_leaves_nothing(driver, name, deployment_id, docker_client):
    with registry_stub() as registry:
        image = f"{registry}/dockyard/no-such-app:1.0"
        with pytest.raises(DriverError) as caught:
            driver.start(TaskSpec(deployment_id, name, image))
    assert caught.value.reason == "image-not-found"
    assert not caught.value.recoverable
    assert f"Image '{image}' was not found" in caught.value.message
    assert labelled(docker_client, deployment_id) == []


def test_rejected_registry_credentials_are_registry_auth(driver, name, deployment_id, docker_client):
    with registry_stub(require_auth=True) as registry:
        image = f"{registry}/dockyard/private:1.0"
        auth = RegistryAuth("someone", "wrong-password", f"http://{registry}")
        with pytest.raises(DriverError) as caught:
            driver.start(TaskSpec(deployment_id, name, image, registry_auth=auth))
    assert caught.value.reason == "registry-auth"
    assert image in caught.value.message
    assert labelled(docker_client, deployment_id) == []


def test_published_port_in_use_is_port_conflict_and_leaves_nothing(driver, busybox, name, deployment_id,
                                                                   docker_client):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        spec = TaskSpec(deployment_id, name, busybox, command=("sleep", "600"),
                        ports=(PortSpec(80, published=taken),), publish_ip="127.0.0.1")
        with pytest.raises(DriverError) as caught:
            driver.start(spec)
    assert caught.value.reason == "port-conflict"
    assert f"127.0.0.1:{taken}" in caught.value.message
    assert labelled(docker_client, deployment_id) == []


def test_unreachable_engine_is_recoverable_and_check_does_not_raise(busybox, name, deployment_id):
    endpoint = f"tcp://127.0.0.1:{closed_port()}"
    with DockerDriver(endpoint, timeout=5) as gone:
        with pytest.raises(DriverError) as caught:
            gone.start(TaskSpec(deployment_id, name, busybox))
        assert caught.value.reason == "engine-unavailable"
        assert caught.value.recoverable
        assert endpoint in caught.value.message
        info = gone.check()
    assert not info.reachable
    assert "Connection refused" in info.message


def test_invalid_name_is_refused_before_the_engine_is_asked(driver, busybox, deployment_id):
    with pytest.raises(DriverError) as caught:
        driver.start(TaskSpec(deployment_id, "no spaces/here", busybox))
    assert caught.value.reason == "invalid-spec"


def test_check_reports_the_local_engine(driver):
    info = driver.check()
    assert info.reachable and info.version.startswith("20.10")
    assert not info.swarm and info.message == ""


class QuietHello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


def test_containers_reach_the_host_at_host_address(driver, busybox, name, deployment_id):
    gateway = driver.host_address()
    assert gateway
    server = http.server.ThreadingHTTPServer((gateway, 0), QuietHello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{gateway}:{server.server_address[1]}/"
        driver.start(TaskSpec(deployment_id, name, busybox, command=("sh", "-c", f"wget -q -O /dev/null {url}")))
        status = wait_for(lambda: next((s for s in driver.inspect(deployment_id) if s.state == EXITED), None))
    finally:
        server.shutdown()
        server.server_close()
        driver.destroy(deployment_id)
    assert status.exit_code == 0


# -- events and logs --------------------------------------------------------------------------------------

def test_events_report_the_exit_code_of_a_dying_container(driver, busybox, name, deployment_id):
    stop = StopSignal()
    events = driver.events(stop)
    timer = threading.Timer(15, stop.set)  # bounds the test if the event never comes
    timer.start()
    started = time.monotonic()
    driver.start(TaskSpec(deployment_id, name, busybox, command=("sh", "-c", "sleep 0.3; exit 3")))
    try:
        died = next(e for e in events if e.deployment_id == deployment_id and e.action == "die")
        elapsed = time.monotonic() - started
        stopped_at = time.monotonic()
        stop.set()
        list(events)  # the rest, if any, then the end
        assert time.monotonic() - stopped_at < 1
    finally:
        timer.cancel()
        driver.destroy(deployment_id)
    assert died.exit_code == 3 and elapsed < 2.5
    assert NUVLA_TS.match(died.time)


def test_events_since_a_past_time_replay_what_happened(driver, busybox, name, deployment_id):
    before = now_ts()
    driver.start(TaskSpec(deployment_id, name, busybox, command=("sh", "-c", "exit 4")))
    wait_for(lambda: driver.inspect(deployment_id)[0].state == EXITED)
    stop = StopSignal()
    timer = threading.Timer(10, stop.set)
    timer.start()
    try:
        mine = (e for e in driver.events(stop, since=before) if e.deployment_id == deployment_id)
        actions = [next(mine).action, next(mine).action, next(mine)]
    finally:
        stop.set()
        timer.cancel()
        driver.destroy(deployment_id)
    assert actions[:2] == ["create", "start"]
    assert (actions[2].action, actions[2].exit_code) == ("die", 4)


def test_events_iterator_ends_promptly_when_stopped(driver):
    stop = StopSignal()
    ended = threading.Event()

    def consume():
        for _ in driver.events(stop):
            pass
        ended.set()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.2)
    stopped_at = time.monotonic()
    stop.set()
    assert ended.wait(2), "events() did not end after stop"
    assert time.monotonic() - stopped_at < 1


def test_logs_return_stdout_and_stderr_in_order(driver, busybox, name, deployment_id):
    driver.start(TaskSpec(deployment_id, name, busybox,
                          command=("sh", "-c", "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three")))
    wait_for(lambda: driver.inspect(deployment_id)[0].state == EXITED)
    assert driver.logs(deployment_id, timestamps=False) == ["one", "two", "three"]
    assert driver.logs(deployment_id, timestamps=False, tail=1) == ["three"]
    stamped = driver.logs(deployment_id)
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two", "three"]
    assert all(re.match(r"^\d{4}-\d{2}-\d{2}T\S+Z ", line) for line in stamped)
    driver.destroy(deployment_id)
    assert driver.logs(deployment_id) == []


def test_follow_logs_yields_new_lines_and_ends_when_stopped(driver, busybox, name, deployment_id):
    driver.start(TaskSpec(deployment_id, name, busybox,
                          command=("sh", "-c", "echo first; sleep 0.3; echo second; exec sleep 600")))
    stop = StopSignal()
    lines = driver.follow_logs(deployment_id, stop, tail=None)
    seen = []
    timer = threading.Timer(10, stop.set)
    timer.start()
    try:
        for line in lines:
            seen.append(line.split(" ", 1)[1])
            if seen[-1] == "second":
                break
        stopped_at = time.monotonic()
        stop.set()
        assert list(lines) == []
        assert time.monotonic() - stopped_at < 1
    finally:
        timer.cancel()
        driver.destroy(deployment_id)
    assert seen == ["first", "second"]


def test_follow_logs_ends_when_the_container_exits(driver, busybox, name, deployment_id):
    driver.start(TaskSpec(deployment_id, name, busybox, command=("sh", "-c", "echo a; sleep 0.3; echo b")))
    stop = StopSignal()
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.extend(driver.follow_logs(deployment_id, stop, tail=None)),
                              daemon=True)
    thread.start()
    thread.join(5)
    stop.set()
    driver.destroy(deployment_id)
    assert not thread.is_alive()
    assert [line.split(" ", 1)[1] for line in seen] == ["a", "b"]


# -- the factory ------------------------------------------------------------------------------------------

def test_get_driver_picks_engines_by_name():
    assert "docker" in engine_names()
    with get_driver(None) as local:
        assert isinstance(local, DockerDriver) and local.endpoint == "unix:///var/run/docker.sock"
    with pytest.raises(DriverError) as caught:
        get_driver(None, engine="kubernetes")
    assert caught.value.reason == "unknown-engine"


def test_tls_material_hides_the_key():
    assert "secret-key" not in repr(TlsMaterial(cert="CERT", key="secret-key"))


# -- a port published on every address -----------------------------------------------------------------------

@contextlib.contextmanager
def ipv6_ports_taken_ahead(docker_client, image: str, count: int = 5):
    """Hold the engine's next few IPv6 candidate host ports (IPv6-only listeners), so that its IPv6
    ephemeral-port allocator runs ahead of the IPv4 one, as it can come to on its own."""
    probe = docker_client.containers.run(image, ["sleep", "30"], ports={"80/tcp": None}, detach=True)
    try:
        probe.reload()
        bindings = probe.attrs["NetworkSettings"]["Ports"]["80/tcp"] or []
    finally:
        probe.remove(force=True)
    ipv6 = [int(b["HostPort"]) for b in bindings if ":" in b["HostIp"]]
    held = []
    for port in range(ipv6[0] + 1, ipv6[0] + 1 + count) if ipv6 else ():
        listener = socket.socket(socket.AF_INET6)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            listener.bind(("::", port))
            listener.listen()
            held.append(listener)
        except OSError:
            listener.close()
    try:
        yield
    finally:
        for listener in held:
            listener.close()


def test_a_port_published_on_every_address_is_reported_where_ipv4_reaches_it(driver, busybox, name,
                                                                             deployment_id, docker_client):
    """Published on every address, a port is bound on 0.0.0.0 and on ::, and Docker 20.10 allocates the two
    ephemeral host ports independently (moby/moby#42442). When they differed, the higher one was reported,
    and when that was the IPv6 one, 127.0.0.1 was refused: the seed test's tcp.8888 on a fresh engine."""
    with ipv6_ports_taken_ahead(docker_client, busybox):
        result = driver.start(TaskSpec(deployment_id, name, busybox, ports=(PortSpec(80),),
                                       command=("sh", "-c", "echo reached > /www/index.html; "
                                                "exec httpd -f -p 80 -h /www")))
    try:
        bindings = docker_client.api.inspect_container(result.status.task_id)["NetworkSettings"]["Ports"]["80/tcp"]
        ipv4 = [int(b["HostPort"]) for b in bindings if ":" not in b["HostIp"]]
        assert [(p.target, p.host_port) for p in result.status.ports] == [(80, ipv4[0])]
        assert get_text(result.status.ports[0].host_port) == "reached\n"
    finally:
        driver.destroy(deployment_id)


# -- the seed script's image ------------------------------------------------------------------------------

def test_python_image_runs_the_nuvla_client(driver, docker_client, name, deployment_id, request):
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        image = python_image(docker_client)
    driver.start(TaskSpec(deployment_id, name, image,
                          command=("python3", "-c", "import nuvla.api; print('ok')")))
    status = wait_for(lambda: next((s for s in driver.inspect(deployment_id) if s.state == EXITED), None), 30)
    logs = driver.logs(deployment_id, timestamps=False)
    driver.destroy(deployment_id)
    assert (status.exit_code, logs) == (0, ["ok"])


# -- a remote engine over TLS (the local one behind a TLS listener that demands a client certificate) -----

@pytest.fixture(scope="module")
def tls_pems():
    return make_tls_pems()


@pytest.fixture(scope="module")
def tls_endpoint(tls_pems):
    with tls_engine(tls_pems) as endpoint:
        yield endpoint


def files_holding(text: str, root: str) -> list[str]:
    """Files under ``root`` (small ones: a PEM key is a few KiB) whose bytes contain ``text``."""
    needle = text.encode()
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) < 1 << 20:
                    with open(path, "rb") as handle:
                        if needle in handle.read():
                            found.append(path)
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


def test_tls_engine_runs_containers_with_a_client_certificate(tls_pems, tls_endpoint, busybox, name,
                                                             deployment_id):
    # as Nuvla credentials store them: PEM text, here with literal "\n" sequences
    material = TlsMaterial(cert=tls_pems.client_cert.replace("\n", "\\n"), key=tls_pems.client_key, ca=tls_pems.ca)
    key_line = tls_pems.client_key.splitlines()[1]  # a line of the key's base64, found in no other text
    with DockerDriver(tls_endpoint, material, timeout=10) as remote:
        assert remote.check().reachable
        result = remote.start(TaskSpec(deployment_id, name, busybox, command=("sh", "-c", "echo over tls")))
        wait_for(lambda: remote.inspect(deployment_id)[0].state == EXITED)
        assert remote.logs(deployment_id, timestamps=False) == ["over tls"]
        # connected, with several connections made: the key in clear is in no file, in /tmp or elsewhere
        assert files_holding(key_line, tempfile.gettempdir()) == []
        stop = StopSignal()
        events = remote.events(stop)
        stop.set()
        assert list(events) == []
        remote.destroy(deployment_id)
        assert remote.inspect(deployment_id) == []
    assert result.status.task_id
    assert files_holding(key_line, tempfile.gettempdir()) == []
    with DockerDriver(tls_endpoint, material, timeout=10) as again:  # closed, it connects again when used
        again.close()
        assert again.check().reachable


def test_an_unusable_tls_credential_is_refused_with_a_clear_error(tls_endpoint):
    with DockerDriver(tls_endpoint, TlsMaterial(cert="CERT", key="KEY"), timeout=5) as remote:
        info = remote.check()
        with pytest.raises(DriverError) as caught:
            remote.inspect("deployment/none")
    assert not info.reachable
    assert info.message == caught.value.message == (
        f"TLS with the Docker engine at {tls_endpoint} failed: the client certificate and key cannot be "
        "loaded (not PEM text of a certificate and its private key)")
    assert caught.value.reason == "engine-tls"


def test_tls_files_go_when_the_engine_does_not_answer(tls_pems, tmp_path, monkeypatch):
    """The key is written to disk for the SDK only while a client uses it: a connection that failed before
    a client existed left one more copy of the key in /tmp per attempt (hundreds, with a reconciler
    retrying an unreachable engine)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp puts the TLS directory
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    with DockerDriver(endpoint, TlsMaterial(tls_pems.client_cert, tls_pems.client_key), timeout=5) as remote:
        assert not remote.check().reachable
        with pytest.raises(DriverError) as caught:
            remote.inspect("deployment/none")
        assert caught.value.reason == "engine-unavailable"
        assert os.listdir(tmp_path) == []


UNVERIFIED = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@UNVERIFIED
def test_tls_engine_refuses_a_client_certificate_of_another_ca(tls_endpoint, busybox, name, deployment_id):
    stranger = make_tls_pems()
    with DockerDriver(tls_endpoint, TlsMaterial(stranger.client_cert, stranger.client_key), timeout=5) as remote:
        info = remote.check()
        assert not info.reachable and tls_endpoint in info.message
        with pytest.raises(DriverError) as caught:
            remote.start(TaskSpec(deployment_id, name, busybox))
    assert caught.value.reason in ("engine-tls", "engine-unavailable")


@UNVERIFIED
def test_tls_engine_certificate_is_checked_against_the_ca(tls_pems, tls_endpoint):
    other_ca = make_tls_pems().ca
    material = TlsMaterial(tls_pems.client_cert, tls_pems.client_key, ca=other_ca)
    with DockerDriver(tls_endpoint, material, timeout=5) as remote:
        info = remote.check()
    assert not info.reachable
    assert info.message.startswith(
        f"TLS with the Docker engine at {tls_endpoint} failed: [SSL: CERTIFICATE_VERIFY_FAILED]")
    unchecked = TlsMaterial(tls_pems.client_cert, tls_pems.client_key, ca=other_ca, verify=False)
    with DockerDriver(tls_endpoint, unchecked, timeout=5) as remote:
        assert remote.check().reachable  # Nuvla's behaviour: the engine's certificate is not verified


# -- instances sharing one engine -------------------------------------------------------------------------

def test_an_instance_sees_and_removes_only_its_own_containers(busybox, name, deployment_id, docker_client):
    with DockerDriver(instance="one") as one, DockerDriver(instance="two") as two:
        one.start(TaskSpec(deployment_id, name, busybox, command=("sleep", "600")))
        assert deployment_id in one.managed()
        assert deployment_id not in two.managed()
        assert two.inspect(deployment_id) == []
        two.destroy(deployment_id)
        assert len(labelled(docker_client, deployment_id)) == 1
        one.destroy(deployment_id)
    assert labelled(docker_client, deployment_id) == []
