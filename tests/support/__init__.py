"""Support for tests that run real containers.

Every container and volume a test run creates is named with one session prefix (``dyt-<hex>``), so that a
session fixture can remove exactly what this run made, even after a crash, without touching anything else
on the engine; and when a test fails, the logs of this run's containers are printed (STYLE.md: real-Docker
tests are marked and isolated by name prefix; compare dockerspawner's ``docker``/``debug_docker`` fixtures).

A conftest uses it with::

    from tests.support import debug_docker, docker_client, docker_prefix, pytest_runtest_makereport  # noqa: F401
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import docker.errors
import pytest

from dockyard.drivers.base import LABEL_MANAGED

PREFIX_ROOT = "dyt"
LOCAL_ENGINE = "unix:///var/run/docker.sock"


def unique_prefix() -> str:
    """A DNS-safe prefix for the names of one test session's containers."""
    return f"{PREFIX_ROOT}-{uuid.uuid4().hex[:8]}"


def session_containers(client: docker.DockerClient, prefix: str) -> list:
    """Managed containers whose name starts with ``prefix``."""
    found = client.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=true", "name": prefix})
    return [c for c in found if c.name.startswith(prefix)]


def remove_test_objects(client: docker.DockerClient, prefix: str) -> None:
    """Remove this session's containers (with their anonymous volumes) and its named volumes."""
    for container in session_containers(client, prefix):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(v=True, force=True)
    for volume in client.volumes.list(filters={"name": prefix}):
        if volume.name.startswith(prefix):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                volume.remove(force=True)


def print_container_logs(client: docker.DockerClient, prefix: str, tail: int = 50) -> None:
    for container in session_containers(client, prefix):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            text = container.logs(tail=tail).decode("utf-8", errors="replace")
            print(f"--- {container.name} ({container.status}) ---\n{text}")


# -- fixtures and the hook they need --------------------------------------------------------------------

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=LOCAL_ENGINE, version="auto", timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_prefix(docker_client) -> Iterator[str]:
    """This session's name prefix; everything carrying it is removed when the session ends."""
    prefix = unique_prefix()
    yield prefix
    remove_test_objects(docker_client, prefix)


@pytest.fixture(autouse=True)
def debug_docker(request, docker_client, docker_prefix) -> Iterator[None]:
    """Print the logs of this session's containers when a test fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print_container_logs(docker_client, docker_prefix)


# -- a registry stub on 127.0.0.1 ---------------------------------------------------------------------

class _RegistryHandler(BaseHTTPRequestHandler):
    """Speaks just enough of the registry v2 API to say "no such manifest" or "wrong credentials"."""

    require_auth = False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.require_auth:
            self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                         {"WWW-Authenticate": 'Basic realm="dockyard-test"'})
        elif self.path.rstrip("/") == "/v2":
            self._answer(200, {})
        else:
            self._answer(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})

    do_HEAD = do_GET

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def registry_stub(*, require_auth: bool = False) -> Iterator[str]:
    """A registry on 127.0.0.1 that holds no image (or refuses every credential); yields ``host:port``.

    The engine treats 127.0.0.0/8 registries as insecure, so it talks plain HTTP to it.
    """
    handler = type("Handler", (_RegistryHandler,), {"require_auth": require_auth})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- the local engine behind TLS on 127.0.0.1 -------------------------------------------------------------

@dataclass(frozen=True)
class TlsPems:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _certificate(subject: str, key, issuer_name, issuer_key, *, ca: bool = False, ip: str | None = None,
                 client: bool = False):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    if not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def make_tls_pems(ip: str = "127.0.0.1") -> TlsPems:
    """A fresh CA with a server certificate for ``ip`` and a client certificate, as PEM text."""
    from cryptography.hazmat.primitives import serialization

    def pem(cert) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _certificate("dockyard test CA", ca_key, None, None, ca=True)
    server = _certificate("engine", server_key, ca.subject, ca_key, ip=ip)
    client = _certificate("dockyard", client_key, ca.subject, ca_key, client=True)
    return TlsPems(pem(ca), pem(server), _pem_key(server_key), pem(client), _pem_key(client_key))


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _relay(client: ssl.SSLSocket, engine_socket: str) -> None:
    try:
        client.do_handshake()
    except (ssl.SSLError, OSError):
        client.close()
        return
    engine = socket.socket(socket.AF_UNIX)
    engine.connect(engine_socket)
    back = threading.Thread(target=_pipe, args=(engine, client), daemon=True)
    back.start()
    _pipe(client, engine)
    back.join(10)
    client.close()
    engine.close()


@contextlib.contextmanager
def tls_engine(pems: TlsPems, engine_socket: str = "/var/run/docker.sock") -> Iterator[str]:
    """The local engine behind a TLS listener on 127.0.0.1 that demands a client certificate signed by
    ``pems.ca``, as a remote engine with ``--tlsverify`` does; yields ``tcp://127.0.0.1:<port>``."""
    with tempfile.TemporaryDirectory() as work:
        files = {}
        for name in ("ca", "server_cert", "server_key"):
            files[name] = os.path.join(work, name)
            with open(files[name], "w", encoding="utf-8") as handle:
                handle.write(getattr(pems, name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files["server_cert"], files["server_key"])
        context.load_verify_locations(files["ca"])
        context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so that the accept loop sees `closing`
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            tls = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            threading.Thread(target=_relay, args=(tls, engine_socket), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        closing.set()
        thread.join(5)
        listener.close()
