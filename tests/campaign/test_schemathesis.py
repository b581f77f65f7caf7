"""Schemathesis against a live ``dockyard serve``, on SQLite and on PostgreSQL, as an ordinary user.

Every operation of ``GET /api/openapi.json`` is sent a bounded, derandomized number of requests that fit the
document (positive) and that break it (negative), with the user's session cookie. What must hold:

* no answer is a 5xx, and the server stays up;
* an answer in 4xx changed nothing: the database rows (every document but ``event``s, which record refusals
  by design; the job queue; the installation's facts in ``meta``), the files of the embedded object store
  and the containers of this installation are the same after the request as before it;
* every answer follows the document: a documented status, with a body of the documented shape.

``DOCKYARD_CAMPAIGN_EXAMPLES`` sets the requests per operation (a deeper run: 50, about six minutes per
database); ``DOCKYARD_CAMPAIGN_STATUSES=1`` prints what each operation answered.

Item paths take their uuid from documents that exist — the user's own, some the user may only see and some
the user may not see — so that requests reach the hooks and actions instead of stopping at 404. Deployments
may really start: their containers run the locally built test app, and whatever this installation created
on the engine is removed at the end.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx
import pytest
import requests
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from dockyard.data import objects_root

from ..api.helpers import COOKIE, Caller, admin, make_user, unique
from ..conftest import start_server, stop_server
from ..deployments.images import app_image

# requests per operation, some fitting the document and some breaking it; more for a deeper run
EXAMPLES = int(os.environ.get("DOCKYARD_CAMPAIGN_EXAMPLES", "10"))
# Long-lived answers: the event stream and a deployment's log stream hold the connection open until the
# client leaves (that is their contract), so a request never completes for a fuzzer to judge. Their
# subscription and authorisation code is shared with search and retrieve, which are fuzzed.
EXCLUDED = {"GET /api/event-stream", "GET /api/deployment/{uuid}/log-stream"}
SETTLE_TIMEOUT = 60.0
SMALL = 3


# -- what the store holds ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    docs: dict[str, Any]
    jobs: dict[str, str]
    meta: dict[str, str]
    files: frozenset[tuple[str, int]]
    containers: frozenset[str]

    def changes(self, after: "Snapshot") -> list[str]:
        out = []
        for name in ("docs", "jobs", "meta"):
            old, new = getattr(self, name), getattr(after, name)
            out += [f"{name}: added {k}" for k in sorted(set(new) - set(old))]
            out += [f"{name}: removed {k}" for k in sorted(set(old) - set(new))]
            out += [f"{name}: changed {k}: {_delta(old[k], new[k])}" for k in sorted(set(old) & set(new))
                    if old[k] != new[k]]
        for name in ("files", "containers"):
            old, new = getattr(self, name), getattr(after, name)
            out += [f"{name}: added {x}" for x in sorted(new - old)] + [f"{name}: removed {x}" for x in sorted(old - new)]
        return out


def _delta(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return ", ".join(f"{k}: {json.dumps(old.get(k))[:80]} -> {json.dumps(new.get(k))[:80]}" for k in keys)
    return f"{old!r:.80} -> {new!r:.80}"


class Store:
    """Reads what a request may have changed, straight from the database, the data dir and the engine."""

    def __init__(self, database_url: str, data_dir: str, engine: docker.DockerClient) -> None:
        self.db = sa.create_engine(database_url)
        self.objects = objects_root(data_dir)
        self.engine = engine
        with self.db.connect() as conn:
            self.instance = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'instance-id'")).scalar_one()

    def snapshot(self) -> Snapshot:
        with self.db.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, doc FROM resources WHERE type <> 'event'")).all()
            jobs = dict(conn.execute(sa.text("SELECT job_id, state FROM job_queue")).all())
            meta = dict(conn.execute(sa.text("SELECT key, value FROM meta")).all())
        docs = {rid: json.loads(doc) if isinstance(doc, str) else doc for rid, doc in rows}
        return Snapshot(docs, jobs, meta, self._files(), self.containers())

    def _files(self) -> frozenset[tuple[str, int]]:
        found = set()
        for root, dirs, files in os.walk(self.objects):
            found.add((os.path.relpath(root, self.objects) + "/", 0))
            for name in files:
                path = os.path.join(root, name)
                found.add((os.path.relpath(path, self.objects), os.path.getsize(path)))
        return frozenset(found)

    def containers(self) -> frozenset[str]:
        listed = self.engine.containers.list(all=True, filters={"label": f"dockyard.instance={self.instance}"})
        return frozenset(c.id for c in listed)

    def busy(self) -> bool:
        with self.db.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM job_queue")).scalar_one() > 0

    def settle(self) -> None:
        """Wait until every queued job is done and what the workers and reconcilers write has landed."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while self.busy():
            assert time.monotonic() < deadline, "jobs still queued after a minute"
            time.sleep(0.05)
        last = self.snapshot()
        while True:
            time.sleep(0.3)
            now = self.snapshot()
            if now == last or time.monotonic() > deadline:
                return
            last = now

    def close(self) -> None:
        self.db.dispose()


# -- the campaign --------------------------------------------------------------------------------------

@dataclass
class Campaign:
    server: Any
    store: Store
    cookie: str
    http: requests.Session = field(default_factory=requests.Session)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    known: Snapshot | None = None

    def call(self, case: schemathesis.Case) -> None:
        case.cookies = {COOKIE: self.cookie}
        before = self.known or self.store.snapshot()
        self.http.cookies.clear()  # a login answered by the server must not change who fuzzes
        response = case.call(base_url=self.server.endpoint, session=self.http, timeout=60)
        label = f"{case.method} {case.path}"
        self.statuses[(label, response.status_code)] += 1
        self.known = None
        if response.status_code >= 500 or self.server.process.poll() is not None:
            self._fail(case, response, "server error")
            return
        self._conforms(case, response)
        if response.status_code >= 400:
            after = self.store.snapshot()
            self.known = after
            changes = before.changes(after)
            if changes:
                self._fail(case, response, "a refused request changed the store:\n    " + "\n    ".join(changes[:10]))
        if self.store.busy():
            self.store.settle()
            self.known = None

    def _conforms(self, case: schemathesis.Case, response: requests.Response) -> None:
        """The answer is what the document says: a documented status with a body of the documented shape."""
        try:
            case.validate_response(response, checks=[status_code_conformance, response_schema_conformance])
        except (AssertionError, FailureGroup) as exc:
            self._fail(case, response, f"the answer does not follow the document: {str(exc)[:1500]}")

    def _fail(self, case: schemathesis.Case, response: requests.Response, what: str) -> None:
        self.failures.append(f"{what}\n  {case.method} {case.formatted_path} -> {response.status_code} "
                             f"{response.text[:300]}\n  {case.as_curl_command()[:1500]}")

    def fuzz(self, operation: Any, examples: int, uuids: list[str]) -> None:
        """``uuids``: what an item path's ``{uuid}`` is, in requests that fit the document (in this order, so
        that the same run picks the same documents although their ids are new each time)."""
        fitting = [operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"uuid": u}) for u in uuids]
        cases = st.one_of(st.one_of(fitting or [operation.as_strategy(GenerationMode.POSITIVE)]),
                          operation.as_strategy(GenerationMode.NEGATIVE))

        # one run per operation for both kinds of requests: hypothesis' start-up costs more than a request
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=False,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def run(case: schemathesis.Case) -> None:
            self.call(case)

        try:
            run()
        except Exception as exc:  # generation itself failed: the document is one a tool cannot use
            self.failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:500]}")


# -- documents to aim at ---------------------------------------------------------------------------------

def seed(server: Any, root: Caller, user: Caller, other: Caller, image: str) -> dict[str, list[str]]:
    """Documents of every kind, by type: the user's own, some the user only sees, some of others."""
    ids: dict[str, list[str]] = {}

    def keep(rid: str) -> str:
        kind, _, uuid = rid.partition("/")
        ids.setdefault(kind, []).append(uuid)
        return rid

    project = unique("p")
    user.add("module", {"path": project, "subtype": "project"})
    repository, _, name = image.rpartition("/")
    name, _, tag = name.partition(":")
    app = user.add("module", {"path": f"{project}/app", "subtype": "component", "content": {
        "image": {"image-name": name, "repository": repository, "tag": tag}, "author": "campaign",
        "architectures": ["amd64"], "ports": [{"target-port": 80}],
        "output-parameters": [{"name": "token", "description": "set by the app"}]}})
    # the deployed app is not in the pool: an edit could make a start pull an image from anywhere
    deployed = [keep(user.add("deployment", {"module": {"href": app}})) for _ in range(2)]
    keep(user.add("module", {"path": f"{project}/other", "subtype": "component", "content": {
        "image": {"image-name": name, "repository": repository, "tag": tag}, "author": "campaign",
        "architectures": ["amd64"]}}))
    keep(user.add("module", {"path": unique("q"), "subtype": "project"}))
    versions = user.get(app).json()["versions"]
    keep(versions[-1]["href"])
    keep(user.add("deployment-parameter", {"parent": deployed[0], "name": "campaign-param", "value": "v"}))
    keep(user.new_doc())
    keep(other.new_doc())
    keep(root.new_doc())
    prefix = unique("k").replace("-", "")
    keep(user.add("data-record-key-prefix", {"prefix": prefix, "uri": "https://example.org/" + prefix}))
    keep(user.add("data-record", {"infrastructure-service": "infrastructure-service/local-storage",
                                  f"{prefix}:mission": "m1", "timestamp": "2026-01-01T00:00:00Z"}))
    keep(user.add("data-set", {"name": "set", "data-record-filter": f"{prefix}:mission='m1'"}))
    for state in ("new", "ready"):
        obj = keep(user.add("data-object", {"template": {
            "href": "data-object-template/generic", "bucket": unique("b"), "object": f"{state}.txt",
            "credential": "credential/local-storage", "content-type": "text/plain"}}))
        if state == "ready":
            uri = user.post(f"{obj}/upload", json={}).json()["uri"]
            assert httpx.put(uri, content=b"campaign", headers={"content-type": "text/plain"}).status_code == 200
            assert user.post(f"{obj}/ready", json={}).status_code == 200
    key, _ = user.new_key()
    keep(key)
    keep(other.new_key()[0])
    keep(user.add("group", {"template": {"href": "group-template/generic",
                                                 "group-identifier": unique("g")}, "users": [user.user_id]}))
    spare = Caller(server)  # a second session of the user: the fuzzer may end this one, not its own
    assert spare.login_password(user.username, user.password).status_code == 201
    keep(spare.session_id)
    keep(root.session_id)
    keep(other.user_id)
    keep(root.current_session()["resources"][0]["user"])
    for rid in ("credential/local-docker", "credential/local-storage", "infrastructure-service/local-docker",
                "infrastructure-service/local-storage"):
        keep(rid)
    events = user.search("event", last=3).json()["resources"]
    for event in events:
        keep(event["id"])
    ident = root.search("user-identifier", filter=f"parent='{user.user_id}'").json()["resources"]
    keep(ident[0]["id"])
    for tpl in ("session-template/password", "user-template/username-password", "group-template/generic",
                "credential-template/generate-api-key", "infrastructure-service-template/generic",
                "data-object-template/generic"):
        keep(tpl)
    # a job: the second deployment starts (the fuzzer may stop, update or force-delete it)
    started = user.post(f"{deployed[1]}/start", json={})
    assert started.status_code == 202, started.text
    keep(started.json()["location"])
    return ids


# CIMI filters, as a regular expression: most generated filters parse, so that searches reach the SQL
_ATTR = r"(name|state|created|updated|id|parent|value|tags|acl/owners|module/href|data:bucket|[a-z]{1,5}(/[a-z]{1,3})?)"
_VALUE = (r"('[^'\\]{0,8}'|\"[a-zA-Z0-9 ]{0,6}\"|[0-9]{1,22}|null|true|false|"
          r"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,3})?Z|"
          r"'now[-+][0-9]{1,4}[smhdwMy](/[dhM])?'|\['[a-z]{0,3}'( '[a-z]{0,3}'){0,2}\])")
_COMPARISON = rf"{_ATTR}(=|!=|<|<=|>|>=|\^=|==){_VALUE}"
FILTER = rf"^{_COMPARISON}( (and|or) ({_COMPARISON}|\({_COMPARISON} or {_COMPARISON}\))){{0,3}}$"
SELECT = rf"^{_ATTR}(,{_ATTR}){{0,3}}$"
# timestamps at the edges of the calendar, where conversions to UTC and formatting break first
TIMESTAMP = r"^(0001-01-01T00:00:00|0225-04-23T16:24:31|2026-02-28T23:59:59|9999-12-31T23:59:59)(\.[0-9]{1,6})?(Z|[+-](14:00|0030))$"


def aimed(spec: dict[str, Any]) -> dict[str, Any]:
    """The document with filters and selects that mostly parse, and small request bodies."""
    spec = copy.deepcopy(spec)
    params = spec["components"]["parameters"]
    params["filter"]["schema"]["pattern"] = FILTER
    params["select"]["schema"]["pattern"] = SELECT
    form = spec["components"]["schemas"]["search-form"]["properties"]
    form["filter"]["pattern"], form["select"]["pattern"] = FILTER, SELECT
    for index in (params["first"]["schema"], params["last"]["schema"], form["first"], form["last"]):
        index["maximum"] = 30  # pages within the search window, mostly
    return _small_requests(spec)


def uuids_for(path: str, pool: dict[str, list[str]]) -> list[str]:
    """The uuids an item path of the document is aimed at: those of the documents of its type."""
    parts = path.split("/")
    if len(parts) < 4 or parts[3] != "{uuid}":
        return []
    return pool.get(parts[2]) or ["00000000-0000-4000-8000-000000000000"]


def _small_requests(spec: dict[str, Any]) -> dict[str, Any]:
    """Request schemas made tractable (answers are still checked against the document as served)."""
    schemas = spec["components"]["schemas"]
    acl = _tractable(schemas["acl"], {})
    for name in list(schemas):
        if name.endswith(("-create", "-edit")) or name in ("json-patch", "search-form"):
            schemas[name] = _tractable(schemas[name], acl)
    spec["components"]["parameters"] = _tractable(spec["components"]["parameters"], acl)
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"] = _tractable(operation["requestBody"], acl)
    return spec


def _tractable(node: Any, acl: dict[str, Any]) -> Any:
    """Small values: without the generous length limits (64 KiB names, 1 MiB texts), which
    hypothesis-jsonschema takes seconds to canonicalise with a pattern, and with few elements per list and
    map, which cost more to draw than to send. The limits themselves are checked by
    tests/api/test_bad_input.py."""
    if isinstance(node, list):
        return [_tractable(v, acl) for v in node]
    if not isinstance(node, dict):
        return node
    if node == {"$ref": "#/components/schemas/acl"}:
        return acl
    if node.get("format") == "date-time":
        return {"type": "string", "pattern": TIMESTAMP}
    out = {k: _tractable(v, acl) for k, v in node.items() if not (k == "maxLength" and v > 2000)}
    if out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", SMALL), SMALL)
    if out.get("type") == "object" and "properties" not in out:
        out["maxProperties"] = SMALL
    return out


# -- fixtures and the test -----------------------------------------------------------------------------

@pytest.fixture
def campaign(db_url, tmp_path):
    engine = docker.from_env()
    image = app_image(engine)
    data_dir = tmp_path / "data"
    server = start_server(data_dir, db_url, {"DOCKYARD_SWEEP_INTERVAL": "3600", "DOCKYARD_WORKERS": "2"})
    store = None
    try:
        store = Store(db_url, str(data_dir), engine)
        root = admin(server)
        user, other = make_user(server, root), make_user(server, root)
        pool = seed(server, root, user, other, image)
        store.settle()
        spec = httpx.get(server.api + "/openapi.json", timeout=30).json()
        yield Campaign(server, store, user.cookie), aimed(spec), pool, user
    finally:
        stop_server(server)
        if store is not None:
            for container in engine.containers.list(all=True, filters={"label": f"dockyard.instance={store.instance}"}):
                container.remove(force=True)
            assert not store.containers(), "containers of the campaign outlived it"
            store.close()
        engine.close()


def test_no_server_error_and_no_refused_request_changes_anything(campaign):
    run, spec, pool, user = campaign
    before = run.store.snapshot()  # the comparison sees a change when there is one
    user.new_doc()
    assert any(change.startswith("docs: added infrastructure-service-group/")
               for change in before.changes(run.store.snapshot()))
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    started = time.monotonic()
    for operation in operations:
        if operation.label in EXCLUDED:
            continue
        run.fuzz(operation, EXAMPLES, uuids_for(operation.path, pool))
    elapsed = time.monotonic() - started
    if os.environ.get("DOCKYARD_CAMPAIGN_STATUSES"):
        for (label, status), n in sorted(run.statuses.items()):
            print(f"{label:55} {status} {n}")
    print(f"\n{sum(run.statuses.values())} requests in {elapsed:.0f} s; "
          f"statuses: {dict(Counter(s for _, s in run.statuses.elements()))}")
    assert not run.failures, f"{len(run.failures)} failures:\n\n" + "\n\n".join(run.failures[:30])
    # the campaign reached past the front door: many operations succeeded, and the user is still logged in
    succeeded = {label for (label, status) in run.statuses if status < 300}
    assert len(succeeded) > 60, sorted(succeeded)
    assert user.current_session()["resources"][0]["user"] == user.user_id
