"""A throw-away PostgreSQL cluster with PostgreSQL's default durable settings (fsync, synchronous_commit and
full_page_writes on), for what the suite's own cluster (fsync=off, ``scripts/test-postgres.sh``) cannot show:
how commits share WAL flushes. ``benchmarks/control_plane.py`` measures on one too."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


def pg_bin() -> str:
    """The newest installed PostgreSQL's programs (Debian's layout)."""
    found = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".")])
    return f"/usr/lib/postgresql/{found[-1]}/bin"


def _as_postgres(command: list[str]) -> None:
    if os.getuid() == 0:
        subprocess.run(["su", "postgres", "-s", "/bin/bash", "-c", " ".join(command)], check=True,
                       stdout=subprocess.DEVNULL)
    else:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def durable_postgres() -> Iterator[str]:
    """A cluster with PostgreSQL's defaults on a free loopback port, in a temporary directory removed at the
    end; its admin URL."""
    base = tempfile.mkdtemp(prefix="dockyard-pg-")
    os.chmod(base, 0o755)
    port = _free_port()
    if os.getuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    bindir = pg_bin()
    try:
        _as_postgres([f"{bindir}/initdb", "-D", f"{base}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8"])
        _as_postgres([f"{bindir}/pg_ctl", "-D", f"{base}/data", "-l", f"{base}/log", "-w", "-o",
                      f"'-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=300'", "start"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _as_postgres([f"{bindir}/pg_ctl", "-D", f"{base}/data", "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)
