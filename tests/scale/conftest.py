"""Many processes on one PostgreSQL: `dockyard serve --no-workers` API processes and `dockyard worker`
processes that a test starts and SIGKILLs at will, each on its own port (API) and log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import ADMIN_PASSWORD, drop_pg_database, free_port, new_pg_database

FAST = {
    "DOCKYARD_JOB_LEASE": "3",
    "DOCKYARD_SWEEP_INTERVAL": "30",
    "DOCKYARD_LOG_LEVEL": "info",
}


class Process:
    def __init__(self, name: str, popen: subprocess.Popen, log: Path, port: int | None = None) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}" if port else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """API and worker processes of one installation (one data dir for the master key, one database)."""

    def __init__(self, data_dir: Path, database_url: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.env = dict(os.environ, DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD, DOCKYARD_DATA_DIR=str(data_dir),
                        DOCKYARD_DATABASE_URL=database_url, **FAST, **(env or {}))
        self.processes: list[Process] = []

    def _spawn(self, name: str, *args: str, port: int | None = None) -> Process:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", *args], env=self.env,
                                     stdout=out, stderr=subprocess.STDOUT)
        proc = Process(name, popen, log, port)
        self.processes.append(proc)
        return proc

    def api(self, name: str, *extra: str, timeout: float = 90.0) -> Process:
        port = free_port()
        proc = self._spawn(name, "serve", "--no-workers", "--port", str(port), *extra, port=port)
        deadline = time.monotonic() + timeout
        while True:
            assert proc.alive(), f"{name} exited with {proc.popen.returncode}:\n{proc.text()[-3000:]}"
            try:
                if httpx.get(proc.endpoint + "/api/cloud-entry-point", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} did not answer:\n{proc.text()[-3000:]}"
            time.sleep(0.05)

    def worker(self, name: str, timeout: float = 90.0) -> Process:
        proc = self._spawn(name, "worker")
        deadline = time.monotonic() + timeout
        while "worker running" not in proc.text():
            assert proc.alive(), f"{name} exited with {proc.popen.returncode}:\n{proc.text()[-3000:]}"
            assert time.monotonic() < deadline, f"{name} did not run:\n{proc.text()[-3000:]}"
            time.sleep(0.05)
        return proc

    def stop(self) -> None:
        for proc in self.processes:
            if proc.alive():
                proc.popen.terminate()
        for proc in self.processes:
            proc.stop()


@pytest.fixture
def cluster(pg_url, tmp_path):
    """A fresh database per test (advisory locks and queues of one test stay out of the next)."""
    url = new_pg_database(pg_url, "dockyard_s")
    made: list[Cluster] = []

    def make(**env: str) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(made)}", url, env)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
    drop_pg_database(url)
