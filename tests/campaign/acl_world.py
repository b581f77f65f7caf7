"""The people and documents the ACL matrix (``test_acl_matrix.py``) works with, on one live server.

Principals: ``owner`` (a user who creates the documents), ``other`` (a user nobody shares with),
``viewer`` and ``editor`` (members of groups each document is shared with: view-data and edit-data),
``admin``, ``deployment`` (the API key of a deployment the owner started on the local engine, read from
its container's environment as the app itself gets it) and ``anon``.

A *subject* is a resource type, or ``type#variant`` where one document cannot show every rule (an API
key, an engine credential, the shared local store; a deployment created and one started). Each subject
has a factory that creates one document as its owner. A few documents have a principal of their own
(``Doc.acting``): a session is owned by itself, a user account by its user, a deployment's key is used by
that deployment. Documents are then shared with the two groups by whoever may change their ACL (the
owner, else an admin), except those of types that cannot be edited and the server's own.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import httpx

from dockyard.core.ids import name_uuid

from ..api.helpers import Caller, admin, anonymous, create_user, new_group, unique
from ..deployments.conftest import DEPLOYED
from ..deployments.images import app_image

PRINCIPALS = ("owner", "other", "viewer", "editor", "admin", "deployment", "anon")
LOCAL_STORAGE = "infrastructure-service/local-storage"
LOCAL_STORAGE_CREDENTIAL = "credential/local-storage"
LOCAL_ENGINE = "infrastructure-service/local-docker"
LABEL = "dockyard.deployment-id"
ADMIN = "group/nuvla-admin"


@dataclass
class Doc:
    id: str
    # principals this document has a caller of its own for, made when first needed
    acting: dict[str, Callable[[], Caller]] = field(default_factory=dict)


class World:
    """Everything the cases of one backend share: callers, groups, an app, a started deployment."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.admin = admin(server)
        self.anon = anonymous(server)
        self.deployments: list[str] = []
        self._shared: dict[str, Doc] = {}
        self._callers: dict[tuple[str, str], Caller] = {}
        self._snapshots: dict[str, dict[str, Any]] = {}
        # passwords are slow to hash and check on purpose: the four users are made side by side
        with ThreadPoolExecutor(4) as pool:
            users = dict(zip(("owner", "other", "viewer", "editor"),
                             pool.map(lambda _: create_user(self.admin), range(4))))
            self.owner = self.login(*users["owner"])
            self.owner_key = self.owner.new_key()
            self.viewer_group = new_group(self.owner, [users["viewer"][0]])
            self.editor_group = new_group(self.owner, [users["editor"][0]])
            # group claims are taken at login, so the members log in once their groups exist
            self.other, self.viewer, self.editor = pool.map(lambda n: self.login(*users[n]),
                                                            ("other", "viewer", "editor"))
        self.infra = self.owner.add("infrastructure-service", {"template": {
            "href": "infrastructure-service-template/generic", "subtype": "swarm",
            "endpoint": "unix:///var/run/docker.sock"}, "name": "the owner's engine"})
        self.module = self._app()
        self.bucket = unique("acl").lower()
        self.other_deployment = self.deploy()
        # the started deployment is given a record of the owner's, and through it an object
        self.given_object = self.ready_object()
        self.given_record = self.record(**{"data:bucket": self.bucket,
                                           "data:object": self.stored(self.given_object)["object"]})
        for shared in (self.owner.user_id, self.given_record, self.given_object):
            self.share(Doc(shared))
        self.started = self.deploy(**{"data-records": {self.given_record: {}}})
        self.start(self.started)
        self.deployment, self.started_key = self.deployment_key(self.started)
        self.share(Doc(self.started_key))

    # -- callers -------------------------------------------------------------------------------------

    def login(self, uid: str, username: str, password: str) -> Caller:
        caller = Caller(self.server)
        resp = caller.login_password(username, password)
        assert resp.status_code == 201, resp.text
        caller.user_id = uid
        caller.username, caller.password = username, password  # type: ignore[attr-defined]
        return caller

    def caller(self, principal: str, doc: Doc) -> Caller:
        if principal not in doc.acting:
            return getattr(self, principal)
        key = (principal, doc.id)
        if key not in self._callers:
            self._callers[key] = doc.acting[principal]()
        return self._callers[key]

    # -- documents -----------------------------------------------------------------------------------

    def shared(self, subject: str) -> Doc:
        """The subject's document for every case that leaves it as it is."""
        if subject not in self._shared:
            own = WORLD_DOCS.get(subject)
            self._shared[subject] = own(self) if own else self.fresh(subject)
        return self._shared[subject]

    def fresh(self, subject: str) -> Doc:
        """A new document of the subject, shared with the two groups where it can be."""
        factory, shareable = FACTORIES[subject]
        doc = factory(self)
        if shareable:
            self.share(doc)
        return doc

    def share(self, doc: Doc) -> None:
        acl = self.stored(doc.id)["acl"]
        wanted = {**acl, "view-data": sorted(set(acl.get("view-data", [])) | {self.viewer_group}),
                  "edit-data": sorted(set(acl.get("edit-data", [])) | {self.editor_group})}
        for sharer in (self.caller("owner", doc), self.admin):
            resp = sharer.put(doc.id, json={"acl": wanted})
            if resp.status_code == 200 and "acl" in resp.json():
                return
        raise AssertionError(f"nobody could share {doc.id}: {resp.text}")

    def stored(self, rid: str) -> dict[str, Any]:
        resp = self.admin.get(rid)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def snapshot(self, rid: str) -> dict[str, Any]:
        """The document as last seen by an admin (read again after each change a case made)."""
        if rid not in self._snapshots:
            self._snapshots[rid] = self.stored(rid)
        return self._snapshots[rid]

    def changed(self, rid: str, doc: dict[str, Any] | None) -> None:
        if doc is None:
            self._snapshots.pop(rid, None)
        else:
            self._snapshots[rid] = doc

    # -- building blocks -----------------------------------------------------------------------------

    def _app(self) -> str:
        client = docker.from_env()
        try:
            image = app_image(client)
        finally:
            client.close()
        repository, name = image.split(":")[0].rsplit("/", 1)
        self.image = {"image-name": name, "repository": repository, "tag": image.split(":")[1]}
        self.project = unique("acl")
        self.owner.add("module", {"path": self.project, "subtype": "project"})
        return self.component()

    def component(self) -> str:
        return self.owner.add("module", {"path": f"{self.project}/{unique('app')}", "subtype": "component",
                                         "content": {"image": self.image, "author": "acl matrix",
                                                     "architectures": ["amd64"]}})

    def application(self) -> str:
        return self.owner.add("module", {"path": f"{self.project}/{unique('app')}", "subtype": "application",
                                         "compatibility": "docker-compose",
                                         "content": {"docker-compose": "services:\n  web:\n    image: x\n",
                                                     "author": "acl matrix"}})

    def deploy(self, **extra: Any) -> str:
        dep = self.owner.add("deployment", {"module": {"href": self.module}, **extra})
        self.deployments.append(dep)
        DEPLOYED.add(dep)
        return dep

    def start(self, dep: str, wait: bool = True) -> None:
        """Start as the owner, sharing it first so that its parameters are shared too."""
        self.share(Doc(dep))
        resp = self.owner.post(f"{dep}/start")
        assert resp.status_code == 202, resp.text
        if wait:
            self.wait_state(dep, "STARTED")

    def wait_state(self, dep: str, state: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (doc := self.stored(dep))["state"] != state:
            assert doc["state"] != "ERROR" and time.monotonic() < deadline, \
                f"{dep} is {doc['state']}: {doc.get('status-message')}"
            time.sleep(0.05)

    def deployment_key(self, dep: str) -> tuple[Caller, str]:
        """A caller logged in with the deployment's key as its container got it, and the key's id."""
        env = container_env(dep)
        caller = Caller(self.server)
        resp = caller.login_key(env["NUVLA_API_KEY"], env["NUVLA_API_SECRET"])
        assert resp.status_code == 201, resp.text
        caller.user_id = dep
        return caller, env["NUVLA_API_KEY"]

    def record(self, **fields: Any) -> str:
        if any(":" in k for k in fields):
            ensure_prefix(self.owner, "data")
        return self.owner.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "name": "a record",
                                              **fields})

    def new_object(self) -> str:
        return self.owner.add("data-object", {"template": {
            "href": "data-object-template/generic", "bucket": self.bucket, "object": unique("obj") + ".txt",
            "credential": LOCAL_STORAGE_CREDENTIAL}, "name": "an object"})

    def ready_object(self) -> str:
        rid = self.new_object()
        resp = self.owner.post(f"{rid}/upload")
        assert resp.status_code == 200, resp.text
        put = httpx.put(resp.json()["uri"], content=b"some bytes", timeout=30)
        assert put.status_code in (200, 204), put.text
        resp = self.owner.post(f"{rid}/ready")
        assert resp.status_code == 200, resp.text
        return rid

    def close(self) -> None:
        """Remove what the cases deployed: an admin's force-delete destroys the containers too."""
        for dep in self.deployments:
            resp = self.admin.post(f"{dep}/force-delete")
            assert resp.status_code in (200, 404), resp.text


def container_env(dep: str, timeout: float = 60) -> dict[str, str]:
    """The environment of the deployment's container, as soon as it exists (the start may still run).

    The low-level list, then one inspect: the SDK's ``containers.list`` inspects every container it listed, and a
    container being removed meanwhile (CI saw one, once, on PostgreSQL: cause not found) made that a docker 404
    rather than a container of the deployment. A container gone between the two is said on the output and looked
    for again; a start that failed (and removed its container) still fails the case: no container comes back."""
    client = docker.from_env()
    try:
        deadline = time.monotonic() + timeout
        while True:
            for found in client.api.containers(all=True, filters={"label": f"{LABEL}={dep}"}):
                try:
                    return dict(e.split("=", 1) for e in client.api.inspect_container(found["Id"])["Config"]["Env"])
                except docker.errors.NotFound:
                    print(f"[acl world] container {found['Id'][:12]} of {dep} was removed as it was read")
            assert time.monotonic() < deadline, f"no container for {dep}"
            time.sleep(0.05)
    finally:
        client.close()


def ensure_prefix(caller: Caller, prefix: str) -> None:
    resp = caller.post("data-record-key-prefix", json={"prefix": prefix, "uri": f"https://example.org/{prefix}"})
    assert resp.status_code in (201, 409), resp.text


# -- one factory per subject: (make a document as its owner, whether it is shared with the groups) --------

def _session(w: World) -> Doc:
    """The owner's own session: logged in with the owner's API key (a password login is slow on purpose)."""
    caller = Caller(w.server)
    resp = caller.login_key(*w.owner_key)
    assert resp.status_code == 201, resp.text
    return Doc(caller.session_id, {"owner": lambda: caller})


def _user(w: World) -> Doc:
    """A user account, owned by its user (who logs in only for the cases that need them)."""
    uid, username, password = create_user(w.admin)
    return Doc(uid, {"owner": lambda: w.login(uid, username, password)})


def _user_identifier(w: World) -> Doc:
    uid, username, password = create_user(w.admin)
    return Doc("user-identifier/" + name_uuid(username), {"owner": lambda: w.login(uid, username, password)})


def _engine_credential(w: World) -> Doc:
    return Doc(w.owner.add("credential", {"template": {
        "href": "credential-template/infrastructure-service-swarm", "parent": w.infra}, "name": "engine"}))


def _deployment_key(w: World) -> Doc:
    dep = w.deploy()
    w.start(dep, wait=False)
    key, key_id = w.deployment_key(dep)
    return Doc(key_id, {"deployment": lambda: key})


def _started(w: World) -> Doc:
    """Started, and maybe still starting: cases that need it STARTED wait for it (see ``READY_FOR``)."""
    dep = w.deploy()
    w.start(dep, wait=False)
    return Doc(dep)


def _parameter(parent: Callable[[World], str]) -> Callable[[World], Doc]:
    def make(w: World) -> Doc:
        return Doc(w.owner.add("deployment-parameter", {"parent": parent(w), "name": unique("p"), "value": "v"}))
    return make


def _resource_log(w: World) -> Doc:
    resp = w.owner.post(f"{w.started}/create-log", json={"components": ["app"]})
    assert resp.status_code == 201, resp.text
    return Doc(resp.json()["resource-id"])


def _job(w: World) -> Doc:
    """A job with the ACL of a deployment's jobs (admins own it; who asked may read and cancel it). An admin
    adds it, so it has no place in the queue: no worker takes it and it stays QUEUED."""
    return Doc(w.admin.add("job", {
        "action": "acl-matrix-probe", "state": "QUEUED", "progress": 0, "execution-mode": "push", "version": 2,
        "target-resource": {"href": w.other_deployment},
        "acl": {"owners": [ADMIN], "view-data": [w.owner.user_id], "manage": [w.owner.user_id]}}))


def _event(w: World) -> Doc:
    rid = w.owner.new_doc()
    found = w.owner.search("event", filter=f"content/resource/href='{rid}'").json()["resources"]
    assert len(found) == 1, found
    return Doc(found[0]["id"])


def _as_admin(w: World) -> dict[str, Callable[[], Caller]]:
    return {"owner": lambda: w.admin}


def _like_local_storage(w: World) -> Doc:
    """An admin's credential shared as the embedded store's is: every user and deployment may use it."""
    storage = w.admin.get(LOCAL_STORAGE_CREDENTIAL).json()
    return Doc(w.admin.add("credential", {
        "template": {"href": "credential-template/infrastructure-service-minio", "parent": LOCAL_STORAGE,
                     "access-key": "k", "secret-key": "s"},
        "acl": {"owners": [ADMIN], "view-data": storage["acl"]["view-data"]}}), _as_admin(w))


def _like_local_engine(w: World) -> Doc:
    engine = w.admin.get(LOCAL_ENGINE).json()
    return Doc(w.admin.add("infrastructure-service", {
        "template": {"href": "infrastructure-service-template/generic", "subtype": "swarm",
                     "endpoint": "tcp://192.0.2.1:2376"},
        "acl": {"owners": [ADMIN], "view-data": engine["acl"]["view-data"]}}), _as_admin(w))


def _template(rid: str) -> Callable[[World], Doc]:
    return lambda w: Doc(rid, _as_admin(w))


FACTORIES: dict[str, tuple[Callable[[World], Doc], bool]] = {
    "session": (_session, False),
    "user": (_user, True),
    "user-identifier": (_user_identifier, False),
    "group": (lambda w: Doc(new_group(w.owner, [])), True),
    "group#builtin": (lambda w: Doc("group/nuvla-vpn", _as_admin(w)), False),
    "credential": (lambda w: Doc(w.owner.new_key()[0]), True),
    "credential#engine": (_engine_credential, True),
    "credential#deployment-key": (_deployment_key, True),
    "credential#local-storage": (_like_local_storage, False),
    "infrastructure-service": (lambda w: Doc(w.owner.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "swarm",
        "endpoint": "tcp://192.0.2.1:2376"}})), True),
    "infrastructure-service#local-engine": (_like_local_engine, False),
    "infrastructure-service-group": (lambda w: Doc(w.owner.new_doc()), True),
    "module": (lambda w: Doc(w.owner.add("module", {"path": unique("acl"), "subtype": "project"})), True),
    "module#application": (lambda w: Doc(w.application()), True),
    "module-component": (lambda w: Doc(w.stored(w.component())["versions"][0]["href"]), False),
    "module-application": (lambda w: Doc(w.stored(w.application())["versions"][0]["href"]), False),
    "deployment": (lambda w: Doc(w.deploy()), True),
    "deployment#started": (_started, True),
    "deployment-parameter": (_parameter(lambda w: w.started), True),
    "deployment-parameter#other": (_parameter(lambda w: w.other_deployment), True),
    "resource-log": (_resource_log, True),
    "job": (_job, True),
    "event": (_event, False),
    "data-record": (lambda w: Doc(w.record()), True),
    "data-record#given": (lambda w: Doc(w.record()), True),
    "data-record-key-prefix": (lambda w: Doc(w.owner.add("data-record-key-prefix", {
        "prefix": "p" + uuid.uuid4().hex[:10], "uri": "https://example.org/p"})), True),
    "data-set": (lambda w: Doc(w.owner.add("data-set", {"name": "a set", "data-record-filter": "bytes>0"})),
                 True),
    "data-object": (lambda w: Doc(w.new_object()), True),
    "data-object#ready": (lambda w: Doc(w.ready_object()), True),
    **{f"{t}-template": (_template(rid), False) for t, rid in (
        ("session", "session-template/password"), ("user", "user-template/username-password"),
        ("credential", "credential-template/generate-api-key"), ("group", "group-template/generic"),
        ("infrastructure-service", "infrastructure-service-template/generic"),
        ("data-object", "data-object-template/generic"))},
}

# shared documents that are the world's own (already shared with the groups where they should be): the
# started deployment, whose key is the ``deployment`` principal, what it was given, the owner's account,
# the server's own documents. Their factories make look-alikes for the cases that change or delete them.
WORLD_DOCS: dict[str, Callable[[World], Doc]] = {
    "deployment#started": lambda w: Doc(w.started),
    "credential#deployment-key": lambda w: Doc(w.started_key),
    # the owner's own account and username: new users are slow to make (their passwords are hashed)
    "user": lambda w: Doc(w.owner.user_id),
    "user-identifier": lambda w: Doc("user-identifier/" + name_uuid(w.owner.username)),  # type: ignore[attr-defined]
    "data-record#given": lambda w: Doc(w.given_record),
    "data-object#ready": lambda w: Doc(w.given_object),
    "credential#local-storage": lambda w: Doc(LOCAL_STORAGE_CREDENTIAL, _as_admin(w)),
    "infrastructure-service#local-engine": lambda w: Doc(LOCAL_ENGINE, _as_admin(w)),
}
