"""What the crash tests of the campaign share: a Dockyard installation whose processes a test kills and
restarts at will, on a fixed port (so that clients and sessions carry over a restart), and helpers over HTTP.

An installation is ``dockyard serve`` alone (workers and reconciler in the same process), or ``dockyard serve
--no-workers`` plus one ``dockyard worker`` process, as the scale-out setup runs on PostgreSQL. Settings are
short (job lease 2 s, sweep every 2 s) so that what a dead process held is taken over within seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..api.helpers import Caller
from ..conftest import ADMIN_PASSWORD, free_port

FAST = {
    "DOCKYARD_JOB_LEASE": "2",
    "DOCKYARD_JOB_POLL": "0.2",
    "DOCKYARD_SWEEP_INTERVAL": "2",
    "DOCKYARD_STOP_TIMEOUT": "2",
    "DOCKYARD_LOG_LEVEL": "info",
}


def campaign_seed() -> int:
    """The seed of this run's random choices: ``DOCKYARD_CAMPAIGN_SEED`` replays a failed run."""
    configured = os.environ.get("DOCKYARD_CAMPAIGN_SEED")
    return int(configured) if configured else random.SystemRandom().randrange(2 ** 32)


class Installation:
    """One Dockyard installation: its data dir, its database and the processes serving it."""

    def __init__(self, data_dir: Path, database_url: str | None = None, *, separate_worker: bool = False,
                 env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir or data_dir)  # elsewhere when the data dir's disk is to fill up
        self.database_url = database_url
        self.separate_worker = separate_worker
        self.extra_env = {**FAST, **(env or {})}
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.serve: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.starts = 0

    # -- processes ---------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD, DOCKYARD_DATA_DIR=str(self.data_dir),
                   **self.extra_env)
        env.pop("DOCKYARD_DATABASE_URL", None)
        if self.database_url:
            env["DOCKYARD_DATABASE_URL"] = self.database_url
        return env

    def _spawn(self, *args: str, log_name: str) -> subprocess.Popen:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / log_name, "ab")
        try:
            return subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", *args], env=self._env(),
                                    stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def start(self, timeout: float = 60.0) -> None:
        """Start the processes and wait until the API answers (and the worker runs)."""
        first = self.starts == 0
        self.starts += 1
        args = ["serve", "--port", str(self.port)] + (["--no-workers"] if self.separate_worker else [])
        self.serve = self._spawn(*args, log_name="server.log")
        worker_log = self.log_dir / "worker.log"
        marker = worker_log.stat().st_size if worker_log.exists() else 0
        if self.separate_worker and not first:  # the master key and the schema exist: both start at once
            self.worker = self._spawn("worker", log_name="worker.log")
        deadline = time.monotonic() + timeout
        while True:
            if self.serve.poll() is not None:
                raise RuntimeError(f"dockyard serve exited with {self.serve.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.endpoint + "/api/cloud-entry-point", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockyard serve did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)
        if self.separate_worker:
            if first:  # after the server, which made the master key and migrated the database
                self.worker = self._spawn("worker", log_name="worker.log")
            while b"worker running" not in worker_log.read_bytes()[marker:]:
                if self.worker.poll() is not None:
                    raise RuntimeError(f"dockyard worker exited with {self.worker.returncode}:\n"
                                       f"{self.log_tail('worker.log')}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dockyard worker did not run within {timeout:.0f} s")
                time.sleep(0.05)

    def processes(self) -> list[subprocess.Popen]:
        return [p for p in (self.serve, self.worker) if p is not None and p.poll() is None]

    def kill(self) -> None:
        """SIGKILL every process of the installation, as a power cut would."""
        for proc in self.processes():
            proc.send_signal(signal.SIGKILL)
        for proc in (self.serve, self.worker):
            if proc is not None:
                proc.wait()

    def stop(self) -> None:
        for proc in self.processes():
            proc.terminate()
        for proc in (self.serve, self.worker):
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_tail(self, name: str = "server.log", size: int = 4000) -> str:
        path = self.log_dir / name
        return path.read_bytes()[-size:].decode("utf-8", errors="replace") if path.exists() else "(no log)"

    # -- clients -----------------------------------------------------------------------------------

    def admin(self) -> Caller:
        caller = Caller(self)
        resp = caller.login_password("admin", ADMIN_PASSWORD)
        assert resp.status_code == 201, resp.text
        return caller


@pytest.fixture
def installations():
    """Installations a test started; whatever still runs at the end is stopped."""
    started: list[Installation] = []
    yield started
    for installation in started:
        installation.stop()


# -- documents and deployments over HTTP --------------------------------------------------------------

def ok(resp: httpx.Response, *statuses: int) -> Any:
    assert resp.status_code in (statuses or (200,)), f"{resp.request.method} {resp.request.url}: " \
                                                     f"{resp.status_code} {resp.text}"
    return resp.json()


def app_module(caller: Caller, image: str, **content: Any) -> str:
    """A project and a component app in it; the module id."""
    project = f"camp-{os.urandom(4).hex()}"
    caller.add("module", {"path": project, "subtype": "project", "name": project})
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    repository, _, image_name = name.rpartition("/")
    img = {"image-name": image_name, **({"repository": repository} if repository else {}),
           **({"tag": tag} if tag else {})}
    return caller.add("module", {"path": f"{project}/app", "subtype": "component", "name": "app",
                                 "content": {"image": img, "author": "campaign", "architectures": ["amd64"],
                                             **content}})


def action(caller: Caller, rid: str, name: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return caller.post(f"{rid}/{name}", json=body or {})


def state_of(caller: Caller, rid: str) -> str | None:
    """The deployment's state; None when it is gone."""
    resp = caller.get(rid)
    if resp.status_code == 404:
        return None
    return ok(resp)["state"]


def wait_state(caller: Caller, rid: str, states: set[str] | str, timeout: float = 60.0) -> dict[str, Any]:
    states = {states} if isinstance(states, str) else states
    deadline = time.monotonic() + timeout
    while True:
        doc = ok(caller.get(rid))
        if doc["state"] in states or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert doc["state"] in states, f"{rid} is {doc['state']} after {timeout:.0f} s: {doc.get('status-message')}"
    return doc


def s3_store(caller: Caller, endpoint: str) -> tuple[str, str]:
    """An S3 infrastructure-service (moto) and its credential."""
    infra = caller.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "s3", "endpoint": endpoint}, "name": "moto"})
    cred = caller.add("credential", {"template": {"href": "credential-template/infrastructure-service-minio",
                                                  "parent": infra, "access-key": "testing",
                                                  "secret-key": "testing-secret"}})
    return infra, cred


def put_object(caller: Caller, credential: str, bucket: str, key: str, data: bytes,
               content_type: str = "application/octet-stream") -> str:
    """A data-object with its bytes, as Nuvla's clients make one: create, upload URL, PUT, ready."""
    oid = caller.add("data-object", {"template": {"href": "data-object-template/generic", "credential": credential,
                                                  "bucket": bucket, "object": key, "content-type": content_type}})
    uri = ok(action(caller, oid, "upload"))["uri"]
    put = httpx.put(uri, content=data, headers={"content-type": content_type}, timeout=60)
    assert put.status_code == 200, put.text
    doc = ok(action(caller, oid, "ready"))
    assert doc["md5sum"] == hashlib.md5(data).hexdigest()
    return oid


def remove_engine_objects(client: Any, deployment_ids: set[str]) -> None:
    """Containers and volumes labelled with these deployments, whatever a failed test left."""
    import docker.errors

    for dep_id in deployment_ids:
        label = f"dockyard.deployment-id={dep_id}"
        for container in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True, v=True)
        for volume in client.volumes.list(filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                volume.remove(force=True)
