"""An action's change and its audit event are stored in one transaction: both, or neither.

The server runs in this process over a real store (SQLite and PostgreSQL), so that the test can read the
store's change journal: its observers see each committed write transaction's changes, in commit order.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dockyard.resources.bootstrap import register_local_engine

from ..support.inprocess import ADMIN_PASSWORD, in_process


@pytest.fixture
def server(db_url, tmp_path):
    """The app served in this process (so that the test sees its store), without workers: jobs stay queued."""
    with in_process(db_url, str(tmp_path)) as (runtime, endpoint):
        register_local_engine(runtime.services, "unix:///var/run/docker.sock", "test")
        yield runtime.services, endpoint


class Journal:
    """The changes of every committed write transaction, in commit order."""

    def __init__(self, store: Any) -> None:
        self.transactions: list[list[tuple[str, str, dict]]] = []
        store.observers.append(self.transactions.append)

    def events(self, name: str, target: str, success: bool = True) -> list[list[tuple[str, str, dict]]]:
        """The transactions that stored an event of action ``name`` on ``target``, one entry per event."""
        return [tx for tx in self.transactions for kind, _, doc in tx
                if kind == "add" and doc["resource-type"] == "event" and doc["name"] == name
                and doc["content"]["resource"]["href"] == target and doc["success"] is success]


class User:
    """A fresh user, logged in; the admin that made it."""

    def __init__(self, endpoint: str) -> None:
        self.admin = httpx.Client(base_url=endpoint, timeout=30)
        self.http = httpx.Client(base_url=endpoint, timeout=30)
        _login(self.admin, "admin", ADMIN_PASSWORD)
        name = f"u{uuid.uuid4().hex[:8]}"
        self.id = self.admin.post("/api/user", json={"template": {
            "href": "user-template/username-password", "username": name,
            "password": f"pw-{name}-long"}}).json()["resource-id"]
        self.session = _login(self.http, name, f"pw-{name}-long")

    def post(self, path: str, body: Any = None, status: int | None = None) -> dict[str, Any]:
        response = self.http.post(f"/api/{path}", json=body)
        assert status is None or response.status_code == status, response.text
        return response.json()

    def act(self, rid: str, action: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        response = self.http.post(f"/api/{rid}/{action}", json=body, follow_redirects=False)
        assert response.status_code == status, response.text
        return response.json()

    def get(self, rid: str) -> dict[str, Any]:
        return self.http.get(f"/api/{rid}").json()

    def close(self) -> None:
        self.admin.close()
        self.http.close()


@pytest.fixture
def user(server):
    caller = User(server[1])
    yield caller
    caller.close()


def _login(http: httpx.Client, username: str, password: str) -> str:
    response = http.post("/api/session", json={"template": {"href": "session-template/password",
                                                            "username": username, "password": password}})
    assert response.status_code == 201, response.text
    return response.json()["resource-id"]


def _app(user: User) -> str:
    project = f"p{uuid.uuid4().hex[:8]}"
    user.post("module", {"path": project, "subtype": "project"}, 201)
    return user.post("module", {"path": f"{project}/app", "subtype": "component", "content": {
        "image": {"image-name": "busybox"}, "author": "tests", "architectures": ["amd64"]}}, 201)["resource-id"]


def _every_action(user: User) -> list[tuple[str, str, int]]:
    """Each action of each type once, as a user calls them: (type/action, target, expected status)."""
    done: list[tuple[str, str, int]] = []

    def act(rid: str, action: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        out = user.act(rid, action, body, status)
        done.append((f"{rid.split('/', 1)[0]}/{action}", rid, status))
        return out

    module = _app(user)
    dep = user.post("deployment", {"module": {"href": module}}, 201)["resource-id"]
    job = act(dep, "start", status=202)["location"]
    act(job, "cancel")  # the deployment is in ERROR now
    log = act(dep, "create-log", status=201)["resource-id"]
    act(log, "fetch", status=202)
    act(dep, "fetch-module", {"module-href": f"{module}_0"})
    act(dep, "update", status=202)
    act(dep, "stop", status=202)
    clone = act(dep, "clone", status=201)["resource-id"]
    act(clone, "force-delete")
    act(user.session, "switch-group", {"claim": user.id})
    act(user.session, "get-groups")
    infra = user.post("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm",
        "endpoint": "tcp://127.0.0.1:9"}}, 201)["resource-id"]
    cred = user.post("credential", {"template": {"href": "credential-template/infrastructure-service-swarm",
                                                 "parent": infra, "cert": "C", "key": "K", "ca": ""}},
                     201)["resource-id"]
    act(cred, "check", status=202)
    project = f"p{uuid.uuid4().hex[:8]}"
    user.post("module", {"path": project, "subtype": "project"}, 201)
    app = user.post("module", {"path": f"{project}/pair", "subtype": "application",
                               "compatibility": "docker-compose", "content": {
                                   "author": "tests", "docker-compose": "services:\n  web:\n    image: busybox\n"}},
                    201)["resource-id"]
    act(app, "validate-docker-compose", status=202)
    obj = user.post("data-object", {"template": {
        "href": "data-object-template/generic", "bucket": f"b{uuid.uuid4().hex[:8]}", "object": "o.txt",
        "credential": "credential/local-storage", "content-type": "text/plain"}}, 201)["resource-id"]
    uri = act(obj, "upload")["uri"]
    assert user.http.put(uri, content=b"bytes", headers={"content-type": "text/plain"}).status_code == 200
    act(obj, "ready")
    act(obj, "download", status=303)
    return done


READ_ONLY = {"session/get-groups", "data-object/download"}


def test_every_action_commits_exactly_one_event_with_its_change(server, user):
    services = server[0]
    journal = Journal(services.store)
    done = _every_action(user)
    declared = {f"{t.name}/{a.name}" for t in services.types.values() for a in t.actions}
    assert {name for name, _, _ in done} == declared  # a new action needs its line in _every_action
    for name, target, _ in done:
        found = journal.events(name.split("/", 1)[1], target)
        assert len(found) == 1, (name, len(found))
        others = [(kind, rid) for kind, rid, doc in found[0] if doc["resource-type"] != "event"]
        if name in READ_ONLY:
            assert others == [], name  # nothing changed: the event stands alone
        else:
            assert others, f"{name}: its event was committed apart from its change"


def test_refused_actions_record_one_failure_and_no_success(server, user):
    journal = Journal(server[0].store)
    dep = user.post("deployment", {"module": {"href": _app(user)}}, 201)["resource-id"]
    user.act(dep, "stop", status=409)  # refused before it runs: the state
    user.act(user.session, "switch-group", {"claim": "group/nuvla-admin"}, status=403)  # refused inside its write
    for name, target in (("stop", dep), ("switch-group", user.session)):
        assert journal.events(name, target) == []
        assert len(journal.events(name, target, success=False)) == 1, name


REFUSE_EVENTS = {
    "sqlite": ["CREATE TRIGGER refuse_events BEFORE INSERT ON resources WHEN NEW.type = 'event' "
               "BEGIN SELECT RAISE(ABORT, 'events are down'); END"],
    "postgresql": ["CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'events are down'; END $$",
                   "CREATE TRIGGER refuse_events BEFORE INSERT ON resources FOR EACH ROW "
                   "WHEN (NEW.type = 'event') EXECUTE FUNCTION refuse_events()"],
}


def test_an_action_whose_event_cannot_be_written_changes_nothing(server, user):
    services = server[0]
    dep = user.post("deployment", {"module": {"href": _app(user)}}, 201)["resource-id"]
    with services.store.engine.begin() as conn:  # the database refuses every event from now on
        for statement in REFUSE_EVENTS[services.store.dialect]:
            conn.execute(sa.text(statement))
    response = user.http.post(f"/api/{dep}/start")
    assert response.status_code == 500
    assert user.get(dep)["state"] == "CREATED"
    with services.store.read() as tx:
        assert tx.find_all("job", "target-resource/href", dep) == []
        assert tx.find_all("credential", "parent", dep) == []
    before = user.get(user.session)
    response = user.http.post(f"/api/{user.session}/switch-group", json={"claim": user.id})
    assert response.status_code == 500
    assert user.get(user.session)["updated"] == before["updated"]
