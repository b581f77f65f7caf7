"""The engine goes away and comes back: deployments follow it, a start in flight ends, and nothing is lost.

The shared dockerd must never stop, so the test runs its own: a second ``dockerd`` with its own data root,
exec root, pid file and socket, in a network namespace of its own, without bridge or iptables (its apps
publish no ports; a dockerd without a bridge deletes docker0 where it runs), registered as an
``infrastructure-service`` with its ``infrastructure-service-swarm`` credential. Deployments run on it; it
is stopped (SIGTERM, then SIGKILL, the latter leaving its containers' shims behind) while they run and
while one starts, and started again on the same data root. While it is away the running deployments are
in ERROR, saying the engine cannot be reached; a start in flight ends in STARTED or ERROR, never stuck;
once it is back each deployment is STARTED if its container runs and ERROR if not, as the engine reports;
parameters are intact and no container is left without its deployment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from ..api.helpers import make_user
from ..deployments.conftest import DEPLOYED, docker_client, images  # noqa: F401
from .crash_support import Installation, action, app_module, installations, ok, wait_state  # noqa: F401

LABEL = "dockyard.deployment-id"
SETTLE = 30.0  # seconds for the deployments to follow the engine


class SecondEngine:
    """A dockerd of the test's own, beside the shared one; see the module's docstring. Its containerd runs
    apart (as under systemd), started and waited for here: a dockerd that spawns its own gives it a fixed
    time to answer, which a busy machine can exceed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.endpoint = f"unix://{self.socket}"
        self.pidfile = root / "docker.pid"
        self.containerd_socket = root / "containerd" / "containerd.sock"
        self.proc: subprocess.Popen | None = None
        self.containerd: subprocess.Popen | None = None

    def args(self) -> list[str]:
        # its own network namespace: a dockerd started with --bridge=none deletes the interface docker0 of
        # the namespace it runs in, which would cut the shared engine's containers off for the whole suite
        return ["unshare", "--net", "--", "dockerd", "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"), "--pidfile", str(self.pidfile), "-H", self.endpoint,
                "--containerd", str(self.containerd_socket), "--bridge=none", "--iptables=false",
                "--ip6tables=false", "--ip-masq=false", "--storage-driver=vfs"]

    def _start_containerd(self, deadline: float) -> None:
        base = self.root / "containerd"
        base.mkdir(exist_ok=True)
        config = base / "config.toml"
        config.write_text(f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{self.containerd_socket}.ttrpc"
[debug]
  address = "{base / 'debug.sock'}"
""")
        with open(self.root / "containerd.log", "ab") as log:
            self.containerd = subprocess.Popen(["containerd", "--config", str(config)], stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            if self.containerd.poll() is not None:
                raise RuntimeError(f"containerd exited with {self.containerd.returncode}")
            with contextlib.closing(socket.socket(socket.AF_UNIX)) as probe:
                try:
                    probe.connect(str(self.containerd_socket))
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("containerd did not answer in time")
            time.sleep(0.1)

    def start(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        if self.containerd is None or self.containerd.poll() is not None:
            self._start_containerd(deadline)
        self.pidfile.unlink(missing_ok=True)  # left by a SIGKILL; the process it names is gone (waited for)
        with open(self.root / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with contextlib.closing(self.client(timeout=2)) as client:
                    client.ping()
                return
            except (docker.errors.DockerException, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dockerd did not answer within {timeout:.0f} s: {self.log_tail()}")
                time.sleep(0.1)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self, timeout: int = 30) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.endpoint, version="auto", timeout=timeout)

    def containers(self, dep_id: str | None = None) -> list:
        with contextlib.closing(self.client()) as client:
            filters = {"label": f"{LABEL}={dep_id}" if dep_id else LABEL}
            return client.containers.list(all=True, filters=filters, ignore_removed=True)

    def log_tail(self) -> str:
        return (self.root / "dockerd.log").read_bytes()[-3000:].decode("utf-8", errors="replace")

    # -- the end, whatever happened ------------------------------------------------------------------

    def remove(self) -> None:
        """Stop the engine with nothing running on it, stop every process it made, unmount, delete."""
        try:
            if not self.running():
                self.start()  # it stops what its last life left running as it starts
            with contextlib.closing(self.client()) as client:
                for container in client.containers.list(all=True):
                    container.remove(force=True, v=True)
            self.stop(signal.SIGTERM)
        except Exception:  # noqa: BLE001 - whatever failed, the processes go below
            if self.running():
                self.stop(signal.SIGKILL)
        if self.containerd is not None and self.containerd.poll() is None:
            self.containerd.terminate()
            try:
                self.containerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.containerd.kill()
                self.containerd.wait()
        for pid in self._leftover_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        with open("/proc/mounts", encoding="utf-8") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(self.root))]
        for point in sorted(points, key=len, reverse=True):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _leftover_processes(self) -> list[int]:
        """This engine's containerd and shims (their command lines name its root) and its containers'
        processes (their cgroups name its containers)."""
        containers = self.root / "data" / "containers"
        ids = set(os.listdir(containers)) if containers.exists() else set()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                cgroup = Path(f"/proc/{entry}/cgroup").read_text(errors="replace")
            except OSError:
                continue
            if str(self.root) in cmdline or any(cid in cgroup for cid in ids):
                found.append(int(entry))
        return found


@pytest.fixture
def second_engine(docker_client, images):
    root = Path(tempfile.mkdtemp(prefix="dyeng-", dir="/tmp"))  # short: a unix socket path has 107 bytes
    engine = SecondEngine(root)
    try:
        engine.start()
        image = b"".join(docker_client.images.get(images["app"]).save(named=images["app"]))
        with contextlib.closing(engine.client()) as client:
            client.images.load(image)
        yield engine
    finally:
        engine.remove()


def test_deployments_follow_an_engine_that_goes_away_and_comes_back(second_engine, tmp_path, images,
                                                                     installations):
    installation = Installation(tmp_path / "data")
    installations.append(installation)
    installation.start()
    admin = installation.admin()
    user = make_user(installation, admin)
    infra = user.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm", "endpoint": second_engine.endpoint},
        "name": "second engine"})
    cred = user.add("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                                "parent": infra}, "name": "second engine"})
    outputs = {"output-parameters": [{"name": "answer", "description": "set by the test"}]}
    plain = app_module(user, images["app"], **outputs)
    restarting = app_module(user, images["app"], **{**outputs, "restart-policy": {"condition": "any"}})

    def deploy(module: str) -> str:
        dep_id = user.add("deployment", {"module": {"href": module}, "parent": cred})
        DEPLOYED.add(dep_id)
        return dep_id

    every = [deploy(plain), deploy(restarting)]
    for dep_id in every:
        assert action(user, dep_id, "start").status_code == 202
    for dep_id in every:
        wait_state(user, dep_id, "STARTED")
        set_answer(user, dep_id, f"answer of {dep_id}")
    answers = {dep_id: f"answer of {dep_id}" for dep_id in every}

    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGKILL, "SIGKILL")):
        for dep_id in every:  # what the last loss left in ERROR runs again
            if ok(user.get(dep_id))["state"] == "ERROR":
                assert action(user, dep_id, "update").status_code == 202
        for dep_id in every:
            wait_state(user, dep_id, "STARTED")
        running = list(every)
        # a start in flight as the engine goes
        late = deploy(plain)
        every.append(late)
        job = ok(action(user, late, "start"), 202)["location"]
        if sig == signal.SIGKILL:  # once its job works on it; the SIGTERM goes while the job is queued
            deadline = time.monotonic() + 10
            while ok(admin.get(job))["state"] == "QUEUED" and time.monotonic() < deadline:
                time.sleep(0.01)
        second_engine.stop(sig)

        for dep_id in running:  # the engine cannot be reached, or (SIGTERM) stopped the container as it went
            doc = wait_state(user, dep_id, "ERROR", timeout=SETTLE)
            assert "cannot reach" in doc["status-message"].lower() or "exited" in doc["status-message"], \
                (name, doc["status-message"])
        doc = wait_state(user, late, {"STARTED", "ERROR"}, timeout=SETTLE)  # never stuck in STARTING
        if doc["state"] == "ERROR":
            assert "engine" in doc["status-message"].lower(), (name, doc["status-message"])

        second_engine.start()
        follow_the_engine(user, second_engine, every, name)
        for dep_id in running:
            if dep_id in answers:
                assert answer(user, dep_id) == answers[dep_id], name

    # everything stops, and nothing stays on the engine
    for dep_id in every:
        if ok(user.get(dep_id))["state"] in ("STARTED", "ERROR"):
            assert action(user, dep_id, "stop").status_code == 202
    for dep_id in every:
        wait_state(user, dep_id, "STOPPED", timeout=SETTLE)
        assert ok(admin.search("credential", filter=f"parent='{dep_id}'"))["count"] == 0
    assert second_engine.containers() == []


def follow_the_engine(user, engine: SecondEngine, deployments: list[str], when: str) -> None:
    """Each deployment STARTED when its container runs, ERROR when not, once the engine answers again; and
    no container on the engine without an active deployment (or with several)."""
    deadline = time.monotonic() + SETTLE
    while True:
        seen = {}
        for dep_id in deployments:
            containers = engine.containers(dep_id)
            runs = any(c.status == "running" for c in containers)
            seen[dep_id] = (ok(user.get(dep_id))["state"], "STARTED" if runs else "ERROR", len(containers))
        if all(state == expected and count <= 1 for state, expected, count in seen.values()):
            break
        assert time.monotonic() < deadline, f"after {when}, (state, what the engine says, containers): {seen}"
        time.sleep(0.2)
    labelled = {c.labels[LABEL] for c in engine.containers()}
    assert labelled <= set(deployments), f"containers of unknown deployments: {labelled - set(deployments)}"


def parameter(user, dep_id: str, name: str) -> dict:
    found = ok(user.search("deployment-parameter", filter=f"parent='{dep_id}' and name='{name}'"))["resources"]
    assert len(found) == 1, found
    return found[0]


def set_answer(user, dep_id: str, value: str) -> None:
    ok(user.put(parameter(user, dep_id, "answer")["id"], json={"value": value}))


def answer(user, dep_id: str) -> str:
    return parameter(user, dep_id, "answer").get("value")
