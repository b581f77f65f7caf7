"""Secrets at rest: nothing a user hands Dockyard as a secret is stored or logged in clear.

Against a live ``dockyard serve`` (debug logging) on SQLite and on PostgreSQL: users with passwords, their
logins (session tokens), API keys, a Docker engine registered with a TLS client key (its check job connects
with it), an S3 store's secret key (an object goes through it), and a deployment started on the local engine
with its own key (read from the container's environment, then used to log in). Then the raw storage — the
SQLite file with its -wal and -shm, or every row of every PostgreSQL table as text, and every file under the
data dir, the server's log among them — is searched for each secret in clear, JSON-escaped, and in base64 at
any alignment (standard and URL-safe alphabets). The search runs while the server is up and again after it
stopped (SQLite then has checkpointed its log into the file).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import uuid

import pytest
import sqlalchemy as sa
from nuvla.api import Api
from nuvla.api.resources.data import DataObjectS3

from ..api.helpers import COOKIE, Caller, admin
from ..conftest import ADMIN_PASSWORD, start_server, stop_server
from ..data.conftest import moto_endpoint  # noqa: F401
from ..deployments.conftest import DEPLOYED, component, docker_client, wait_state  # noqa: F401
from ..deployments.images import app_image
from ..support import make_tls_pems, tls_engine


def random_password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


def token_of(cookie: str) -> str:
    """The secret part of a session cookie ``<session uuid>.<token>``."""
    return cookie.split(".", 1)[1]


class Secrets(dict):
    """name → secret text, as handed to or received from the server."""

    def add_pem(self, name: str, pem: str) -> None:
        self[name] = pem
        body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        for i, line in enumerate(body):  # JSON keeps newlines as \n: each line must be looked for alone
            if len(line) >= 16:
                self[f"{name} line {i}"] = line


def forms(secret: str) -> dict[str, bytes]:
    """The byte strings that would betray ``secret``: as is, JSON-escaped, and base64 of it starting at any
    offset of a longer encoded text (only the characters that depend on the secret alone)."""
    raw = secret.encode()
    found = {"clear": raw, "json": json.dumps(secret)[1:-1].encode()}
    for alphabet, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        for shift in range(3):
            text = encode(b"\0" * shift + raw).rstrip(b"=")
            front = (0, 2, 3)[shift]
            back = 1 if (shift + len(raw)) % 3 else 0
            found[f"{alphabet}+{shift}"] = text[front:len(text) - back]
    return found


def leaks(found: Secrets, blobs: dict[str, bytes]) -> list[str]:
    out = []
    for name, secret in found.items():
        for form, needle in forms(secret).items():
            for where, blob in blobs.items():
                if needle in blob:
                    out.append(f"{name} ({form}) in {where}")
    return out


# -- what is stored ---------------------------------------------------------------------------------------

def stored_bytes(data_dir: str, database_url: str) -> dict[str, bytes]:
    """Every file under the data dir, the SQLite database files, or every PostgreSQL row as text."""
    blobs = {}
    paths = [os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files]
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        paths += [url.database + suffix for suffix in ("", "-wal", "-shm")]
    for path in paths:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                blobs[path] = f.read()
    if url.get_backend_name() == "postgresql":
        blobs.update(postgres_rows(database_url))
    return blobs


def postgres_rows(database_url: str) -> dict[str, bytes]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")).scalars().all()
            assert {"resources", "attrs"} <= set(tables)
            out = {}
            for table in tables:  # each column as text (a whole row as text would escape quotes again)
                columns = conn.execute(sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = :t"), {"t": table}).scalars().all()
                cells = ", ".join(f'"{c}"::text' for c in columns)
                rows = conn.execute(sa.text(f'SELECT concat_ws(chr(10), {cells}) FROM "{table}"')).scalars()
                out[f"table {table}"] = "\n".join(rows).encode()
            return out
    finally:
        engine.dispose()


# -- using the secrets ------------------------------------------------------------------------------------

def new_user(root: Caller, found: Secrets, name: str) -> Caller:
    username, password = f"{name}-{uuid.uuid4().hex[:8]}", random_password()
    found[f"{name}'s password"] = password
    root.add("user", {"template": {"href": "user-template/username-password", "username": username,
                                   "password": password}})
    caller = Caller(root.server)
    assert caller.login_password(username, password).status_code == 201
    found[f"{name}'s session token"] = token_of(caller.cookie)
    caller.username, caller.password = username, password  # type: ignore[attr-defined]
    return caller


def api_keys(user: Caller, found: Secrets, name: str) -> None:
    key, secret = user.new_key()
    found[f"{name}'s API secret"] = secret
    keyed = Caller(user.server)
    assert keyed.login_key(key, secret).status_code == 201
    found[f"{name}'s API-key session token"] = token_of(keyed.cookie)


def tls_engine_credential(user: Caller, endpoint: str, pems, found: Secrets, public: Secrets) -> None:
    found.add_pem("TLS client key", pems.client_key)
    public.add_pem("TLS client certificate", pems.client_cert)
    infra = user.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm", "endpoint": endpoint},
        "name": "engine over TLS"})
    cred = user.add("credential", {"template": {
        "href": "credential-template/infrastructure-service-swarm", "parent": infra, "ca": pems.ca,
        "cert": pems.client_cert, "key": pems.client_key}, "name": "engine key"})
    # the check job the credential's creation queued connects with the key
    jobs = wait_for_jobs(user, cred)
    assert [j["state"] for j in jobs] == ["SUCCESS"], jobs
    assert user.get(cred).json()["status"] == "VALID"
    assert "key" not in user.get(cred).json()


def wait_for_jobs(user: Caller, target: str, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = user.search("job", filter=f"target-resource/href='{target}'").json()["resources"]
        if jobs and all(j["state"] in ("SUCCESS", "FAILED", "CANCELED") for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            return jobs
        time.sleep(0.1)


def s3_credential(user: Caller, moto: str, found: Secrets, public: Secrets) -> None:
    secret_key = "s3-" + secrets.token_urlsafe(24)
    found["S3 secret key"] = secret_key
    public["S3 access key"] = access_key = "access-" + uuid.uuid4().hex
    infra = user.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "s3", "endpoint": moto}, "name": "moto"})
    cred = user.add("credential", {"template": {
        "href": "credential-template/infrastructure-service-minio", "parent": infra,
        "access-key": access_key, "secret-key": secret_key}})
    assert "secret-key" not in user.get(cred).json()
    # an object through the store: the server signs with the secret key (the real client's helper)
    api = Api(endpoint=user.server.endpoint, insecure=True, persist_cookie=False)
    assert api.login_password(user.username, user.password).status_code == 201  # type: ignore[attr-defined]
    found["S3 user's client session token"] = token_of(api.session.cookies.get(COOKIE))
    helper = DataObjectS3(api)
    oid = helper.create(b"bytes behind the S3 secret", f"b-{uuid.uuid4().hex[:8]}", "o.txt", cred,
                        content_type="text/plain")
    assert helper.get_content(oid) == b"bytes behind the S3 secret"


def registry_credential(user: Caller, found: Secrets) -> None:
    """Nuvla's registry credential, when Dockyard has the type."""
    templates = {t["id"] for t in user.search("credential-template").json()["resources"]}
    href = "credential-template/infrastructure-service-registry"
    if href not in templates:
        return
    password = random_password()
    found["registry password"] = password
    infra = user.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "registry",
        "endpoint": "https://registry.example.org"}, "name": "registry"})
    user.add("credential", {"template": {"href": href, "parent": infra, "username": "someone",
                                         "password": password}})


def started_deployment(user: Caller, image: str, docker, found: Secrets) -> tuple[Api, str]:
    api = Api(endpoint=user.server.endpoint, insecure=True, persist_cookie=False)
    assert api.login_password(user.username, user.password).status_code == 201  # type: ignore[attr-defined]
    module_id = component(api, image, ports=[{"target-port": 80}])
    dep_id = api.add("deployment", {"module": {"href": module_id}}).data["resource-id"]
    DEPLOYED.add(dep_id)
    api.operation(api.get(dep_id), "start")
    wait_state(api, dep_id, "STARTED")
    [container] = docker.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    found["deployment's API secret"] = env["NUVLA_API_SECRET"]
    assert "api-secret" not in json.dumps(api.get(dep_id).data)
    as_deployment = Caller(user.server)
    assert as_deployment.login_key(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"]).status_code == 201
    found["deployment's session token"] = token_of(as_deployment.cookie)
    assert as_deployment.get(dep_id).status_code == 200
    return api, dep_id


# -- the test ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine_over_tls():
    """The local engine behind a TLS listener that demands a client certificate: (endpoint, its PEMs)."""
    pems = make_tls_pems()
    with tls_engine(pems) as endpoint:
        yield endpoint, pems


def test_no_secret_is_stored_or_logged_in_clear(db_url, tmp_path, moto_endpoint, docker_client,  # noqa: F811
                                                engine_over_tls):
    data_dir = str(tmp_path / "data")
    server = start_server(data_dir, db_url, extra_env={"DOCKYARD_LOG_LEVEL": "debug"})
    found = Secrets({"admin password": ADMIN_PASSWORD})
    public = Secrets()  # stored in clear by design: proof that the search reads what is stored
    try:
        root = admin(server)
        found["admin session token"] = token_of(root.cookie)
        alice, bob = new_user(root, found, "alice"), new_user(root, found, "bob")
        api_keys(alice, found, "alice")
        api_keys(bob, found, "bob")
        tls_engine_credential(alice, *engine_over_tls, found, public)
        s3_credential(bob, moto_endpoint, found, public)
        registry_credential(alice, found)
        api, dep_id = started_deployment(alice, app_image(docker_client), docker_client, found)
        while_running = stored_bytes(data_dir, db_url)
        api.operation(api.get(dep_id), "stop")
        wait_state(api, dep_id, "STOPPED")
    finally:
        stop_server(server)
    after_stop = stored_bytes(data_dir, db_url)
    assert os.path.join(data_dir, "server.log") in after_stop
    assert len(after_stop[os.path.join(data_dir, "server.log")]) > 1000  # debug logging did log
    assert leaks(found, while_running) + leaks(found, after_stop) == []
    for name, value in public.items():
        wanted = forms(value)["clear"], forms(value)["json"]
        database = [where for where, blob in after_stop.items()
                    if "server.log" not in where and any(w in blob for w in wanted)]
        assert database, f"{name} is not where the search looks: the search would miss secrets too"
