"""Running an engine's own command-line tools (``docker-compose``, ``docker stack``) against a driver's engine.

A compose application is handed to the real implementations rather than re-implemented over the Engine API:
:mod:`.compose` runs ``docker-compose`` and :mod:`.stack` runs ``docker stack``. Both need, for one call, a
directory holding the compose file and the app's ``files`` next to it, the engine's TLS client identity as
files (the CLIs read a key only from a path) and, for private registries, a ``config.json`` with the
registry credentials. :func:`workdir` makes that directory (mode 0700, files 0600) and removes it as soon as
the call is over, whatever happens: the decrypted TLS key and the registry passwords exist on disk only for
the duration of one CLI call. Values of the deployment's environment (its API secret) are never written
there: the CLI process gets them in its environment (:attr:`StackSpec.env`).

The CLIs are Debian bookworm's: ``docker-compose`` 1.29.2 (package ``docker-compose``; bookworm has no compose
v2 plugin) and the ``docker`` client of ``docker.io`` at ``/usr/bin/docker`` (another ``docker`` earlier on
``PATH`` is not the one Dockyard is tested with).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

from dockyard.drivers import TlsMaterial
from dockyard.drivers.base import DriverError, RegistryAuth

log = logging.getLogger(__name__)

DEBIAN_DOCKER = "/usr/bin/docker"
DOCKER_CLI = DEBIAN_DOCKER if os.path.exists(DEBIAN_DOCKER) else (shutil.which("docker") or "docker")
COMPOSE_CLI = "docker-compose"
COMPOSE_FILE = "docker-compose.yaml"
RESERVED_FILES = frozenset({COMPOSE_FILE})
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ")

# reasons (DriverError.reason), as the Docker driver's
IMAGE_NOT_FOUND = "image-not-found"
REGISTRY_AUTH = "registry-auth"
PORT_CONFLICT = "port-conflict"
ENGINE_UNAVAILABLE = "engine-unavailable"
ENGINE_TLS = "engine-tls"
START_FAILED = "start-failed"
INVALID_SPEC = "invalid-spec"
_REASONS = (  # the first pattern found in the CLI's words decides
    (re.compile(r"port is already allocated|address already in use", re.I), PORT_CONFLICT, False),
    (re.compile(r"unauthorized|authentication required|incorrect username or password", re.I), REGISTRY_AUTH, False),
    (re.compile(r"pull access denied|manifest unknown|not found: manifest|No such image|repository does not exist",
                re.I), IMAGE_NOT_FOUND, False),
    (re.compile(r"certificate|tls:|x509", re.I), ENGINE_TLS, False),
    (re.compile(r"Cannot connect to the Docker daemon|error during connect|Couldn't connect to Docker daemon|"
                r"connection refused", re.I), ENGINE_UNAVAILABLE, True),
)


@dataclass
class Workdir:
    """One CLI call's private directory: ``compose_file`` inside it, ``engine_args`` (``-H`` and TLS flags, the
    same for ``docker`` and ``docker-compose``) and ``env`` for the process. The TLS identity and the registry
    config are in a directory of their own (``secrets``), so that no name of the app's files can meet them."""

    path: str
    compose_file: str
    secrets: str = ""
    engine_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def workdir(endpoint: str, tls: TlsMaterial | None, *, compose: str = "", files: tuple[tuple[str, str], ...] = (),
            env: tuple[tuple[str, str], ...] = (), registry_auths: tuple[RegistryAuth, ...] = ()) -> Iterator[Workdir]:
    """A 0700 directory with the compose file, the app's files, the TLS identity and the registry config; gone
    when the block ends."""
    path = tempfile.mkdtemp(prefix="dockyard-cli-")  # mode 0700
    secrets = tempfile.mkdtemp(prefix="dockyard-cli-secrets-")
    try:
        wd = Workdir(path, os.path.join(path, COMPOSE_FILE), secrets)
        _write(wd.compose_file, compose)
        for name, content in files:
            _write(os.path.join(path, _file_name(name)), content)
        wd.engine_args = ["-H", _host(endpoint)] + (_tls_args(secrets, tls) if tls is not None else [])
        if registry_auths:
            _write(os.path.join(secrets, "config.json"), json.dumps({"auths": {
                a.serveraddress: {"auth": base64.b64encode(f"{a.username}:{a.password}".encode()).decode()}
                for a in registry_auths}}))
        # the CLI's own environment only: the caller's DOCKER_HOST, DOCKER_CONFIG or proxies must not steer it
        wd.env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        wd.env.update(HOME=secrets, DOCKER_CONFIG=secrets, **dict(env))
        yield wd
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(secrets, ignore_errors=True)


def run(argv: list[str], wd: Workdir, *, timeout: float, what: str, stdin: str | None = None) -> str:
    """Run one CLI command in ``wd``; its output, or :class:`DriverError` with the CLI's own words."""
    log.debug("running %s", " ".join(argv))
    try:
        done = subprocess.run(argv, cwd=wd.path, env=wd.env, input=stdin, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError as exc:
        raise DriverError(f"{what}: '{argv[0]}' is not installed here (Debian: apt-get install "
                          f"{'docker-compose' if argv[0] == COMPOSE_CLI else 'docker.io'})",
                          reason="engine-error") from exc
    except subprocess.TimeoutExpired as exc:
        raise DriverError(f"{what}: no answer within {timeout:g} s", reason=START_FAILED,
                          recoverable=True) from exc
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        raise error(what, output)
    return output


def error(what: str, output: str) -> DriverError:
    """A CLI's failure, its words kept (without the temporary directory's paths) and a reason read from them."""
    text = clean(output)
    for pattern, reason, recoverable in _REASONS:
        if pattern.search(text):
            return DriverError(f"{what}: {text}", reason=reason, recoverable=recoverable)
    return DriverError(f"{what}: {text}", reason=START_FAILED)


def clean(output: str) -> str:
    """The CLI's lines that say something: no progress lines, no temporary paths, at most 4000 characters."""
    lines = [line.strip() for line in output.splitlines()]
    lines = [re.sub(r"(\.?/[\w./-]*dockyard-cli-[\w-]+/?)", "", line) for line in lines
             if line and not re.match(r"^(Creating|Starting|Removing|Pulling|Recreating|Stopping|Updating)\b.*"
                                      r"(\.\.\. ?(done)?|)$", line)]
    text = "\n".join(lines).replace("ERROR: ", "")
    return text[-4000:] or "(no output)"


def _write(path: str, text: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
        out.write(text)


def _file_name(name: str) -> str:
    """The app's ``files`` are checked when the module is stored; checked again here, where they are written."""
    if not re.match(r"^[\w.-]+$", name) or set(name) == {"."} or name in RESERVED_FILES:
        raise DriverError(f"'{name}' cannot name a file of the app", reason=INVALID_SPEC)
    return name


def _host(endpoint: str) -> str:
    if endpoint.startswith("unix://"):
        return endpoint
    parsed = urlparse(endpoint)
    return f"tcp://{parsed.hostname}:{parsed.port or 2376}"


def _tls_args(path: str, tls: TlsMaterial) -> list[str]:
    args = []
    if tls.verify and tls.ca:
        _write(os.path.join(path, "ca.pem"), _pem(tls.ca))
        args += ["--tlsverify", "--tlscacert", os.path.join(path, "ca.pem")]
    else:  # as Nuvla, which never checks the engine's certificate
        args += ["--tls"]
    if tls.cert and tls.key:
        _write(os.path.join(path, "cert.pem"), _pem(tls.cert))
        _write(os.path.join(path, "key.pem"), _pem(tls.key))
        args += ["--tlscert", os.path.join(path, "cert.pem"), "--tlskey", os.path.join(path, "key.pem")]
    return args


def _pem(text: str) -> str:
    """Nuvla credentials may hold literal ``\\n`` sequences instead of newlines."""
    text = text.replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"
