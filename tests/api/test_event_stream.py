"""The event stream: ``GET /api/event-stream`` sends each committed change a subscriber may see, as it happens.

Over HTTP against live servers (SQLite and PostgreSQL), on the real engine for deployments; the tests that
need to look inside the server (its subscriptions, its feed across two processes' stores) run it in-process.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from dockyard.core import settings as config
from dockyard.core.authn import USER, for_identity
from dockyard.resources import crud
from dockyard.resources.base import Ctx
from dockyard.resources.changes import ChangeFeed, feed_of, matches
from dockyard.server.app import create_app
from dockyard.server.runtime import http_server, start
from dockyard.store import filter as cimi_filter
from dockyard.store.db import Store
from dockyard.store.query import Query

from ..conftest import ADMIN_PASSWORD, free_port, start_server, stop_server
from ..deployments.conftest import component, deploy, docker_client, images, start as start_deployment  # noqa: F401
from ..deployments.conftest import api_for, wait_state
from .helpers import COOKIE, DOC_TYPE, Caller, admin, error_of, make_user

WAIT = 10.0  # seconds any one expected event may take (they take milliseconds)


# -- a server-sent events client -----------------------------------------------------------------------

@dataclass
class Sse:
    event: str
    id: int | None
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def doc_id(self) -> str | None:
        return self.json.get("id") if self.event != "overflow" else None


class EventStream:
    """Reads a server-sent event stream on its own thread; the test waits for what it expects."""

    def __init__(self, url: str, *, cookie: str | None = None, params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        if cookie:
            self.client.cookies.set(COOKIE, cookie)
        self._context = self.client.stream("GET", url, params=params, headers=headers or {})
        self.response = self._context.__enter__()
        self.events: list[Sse] = []
        self.comments: list[str] = []
        self.ended = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.response.status_code == 200:
            self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                with self._cond:
                    if line == "":
                        if "data" in fields:
                            event_id = fields.get("id")
                            self.events.append(Sse(fields.get("event", "message"),
                                                   int(event_id) if event_id else None, fields["data"]))
                        fields = {}
                    elif line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        fields[name] = fields[name] + "\n" + value if name in fields else value
                    self._cond.notify_all()
        except (httpx.HTTPError, OSError):
            pass
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def wait_until(self, check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = check()
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout} s; events: "
                                         f"{[(e.event, e.data[:120]) for e in self.events]}")
                self._cond.wait(left)

    def wait_for(self, predicate: Callable[[Sse], bool], what: str = "matching event", timeout: float = WAIT) -> Sse:
        return self.wait_until(lambda: next((e for e in self.events if predicate(e)), None), what, timeout)

    def wait_ended(self, timeout: float = WAIT) -> None:
        self.wait_until(lambda: self.ended, "end of the stream", timeout)

    def of(self, doc_id: str) -> list[Sse]:
        with self._cond:
            return [e for e in self.events if e.doc_id == doc_id]

    def close(self) -> None:
        # shutting the socket down wakes the reading thread (closing it would not) and tells the server
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5) if self._thread.is_alive() else None
        self.response.close()
        self.client.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_of(caller: Caller, **params: str) -> EventStream:
    es = EventStream(caller.api + "/event-stream", cookie=caller.cookie, params=params)
    assert es.response.status_code == 200, es.response.read()
    assert es.response.headers["content-type"].startswith("text/event-stream")
    es.wait_until(lambda: "subscribed" in es.comments, "subscribed comment")
    return es


def is_change(change: str, doc_id: str, **fields: Any) -> Callable[[Sse], bool]:
    def check(e: Sse) -> bool:
        if e.event != change or e.doc_id != doc_id:
            return False
        data = e.json
        return all(data.get(k) == v for k, v in fields.items())
    return check


def as_get(caller: Caller, doc_id: str) -> dict[str, Any]:
    resp = caller.get(doc_id)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    doc.pop("operations")
    return doc


# -- plain documents, on both databases ------------------------------------------------------------------

def test_a_subscriber_sees_its_changes_as_its_get_would_and_others_see_nothing_until_shared(live_server):
    root = admin(live_server)
    alice, bob = make_user(live_server, root), make_user(live_server, root)
    with stream_of(alice, types=DOC_TYPE) as a_stream, stream_of(bob, types=DOC_TYPE) as b_stream:
        doc_id = alice.new_doc(name="first")
        added = a_stream.wait_for(is_change("add", doc_id), "alice's add")
        assert added.json == as_get(alice, doc_id)  # acl included: alice owns it; no operations
        # bob's stream is live (it sees his own document) and, events being in order, would have had alice's
        mine = bob.new_doc(name="bob's")
        b_stream.wait_for(is_change("add", mine), "bob's own add")
        assert b_stream.of(doc_id) == []

        acl = alice.get(doc_id).json()["acl"]
        shared = alice.put(doc_id, json={"acl": {**acl, "view-data": [bob.user_id]}})
        assert shared.status_code == 200, shared.text
        b_stream.wait_for(is_change("edit", doc_id), "the share")
        alice.put(doc_id, json={"name": "renamed"})
        seen = b_stream.wait_for(is_change("edit", doc_id, name="renamed"), "the edit after the share")
        assert seen.json == as_get(bob, doc_id)
        assert "acl" not in seen.json  # view-data without view-acl: as bob's GET

        assert alice.delete(doc_id).status_code == 200
        for es in (a_stream, b_stream):
            gone = es.wait_for(is_change("delete", doc_id), "the delete")
            assert gone.json == {"id": doc_id, "resource-type": DOC_TYPE}
        ids = [e.id for e in a_stream.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_the_filter_narrows_the_stream_with_the_search_grammar(live_server):
    alice = make_user(live_server, admin(live_server))
    with stream_of(alice, types=DOC_TYPE, filter="name='wanted' or description^='keep'") as es:
        skipped = alice.new_doc(name="unwanted", description="drop me")
        wanted = alice.new_doc(name="wanted")
        kept = alice.new_doc(name="other", description="keep me")
        es.wait_for(is_change("add", kept), "the add matching the second term")
        es.wait_for(is_change("add", wanted), "the add matching the first term")
        alice.put(skipped, json={"description": "keep it after all"})
        es.wait_for(is_change("edit", skipped), "an edit that now matches")
        assert [e.event for e in es.of(skipped)] == ["edit"]


def test_refusals_are_nuvla_errors_before_any_streaming(sqlite_server):
    anonymous = Caller(sqlite_server)
    assert error_of(anonymous.get("event-stream")) == (403, "credentials required")
    alice = make_user(sqlite_server, admin(sqlite_server))
    assert error_of(alice.get("event-stream", params={"types": "no-such-type"})) == \
        (400, "types: unknown resource type 'no-such-type'")
    status, message = error_of(alice.get("event-stream", params={"filter": "name="}))
    assert status == 400 and message.startswith("Invalid CIMI filter.")
    status, message = error_of(alice.get("event-stream", params={"filter": "location intersects 'x'"}))
    assert status == 400 and "geo-spatial" in message
    assert error_of(alice.post("event-stream", json={}))[0] == 405
    # a type anonymous may search: the stream opens, and shows only what anonymous may see
    root = admin(sqlite_server)
    with EventStream(sqlite_server.api + "/event-stream", params={"types": "session"}) as es, \
            stream_of(root, types="session") as witness:
        assert es.response.status_code == 200
        es.wait_until(lambda: "subscribed" in es.comments, "subscribed comment")
        Caller(sqlite_server).login_password("admin", ADMIN_PASSWORD)  # a new session: anonymous may not see it
        # then a change the witness sees (sessions show only the caller's own, to admins too)
        own = root.get(root.session_id).json()["user"]
        switched = root.post(f"{root.session_id}/switch-group", json={"claim": own})
        assert switched.status_code == 200, switched.text
        witness.wait_for(is_change("edit", root.session_id), "the witness's own session")
        time.sleep(0.1)  # the streams got the changes in the same passes: give the anonymous one its flush
        assert es.events == []


def test_logging_out_ends_the_stream(sqlite_server):
    alice = make_user(sqlite_server, admin(sqlite_server))
    with stream_of(alice, types=DOC_TYPE) as es:
        assert alice.logout().status_code == 200
        es.wait_ended()
        assert es.events == []


def test_idle_streams_get_keep_alives_and_shutdown_ends_them_at_once(tmp_path):
    server = start_server(tmp_path / "data", extra_env={"DOCKYARD_STREAM_HEARTBEAT": "0.3"})
    try:
        root = admin(server)
        es = stream_of(root)
        es.wait_until(lambda: "keep-alive" in es.comments, "keep-alive comment", timeout=2)
        began = time.monotonic()
        server.process.terminate()
        assert server.process.wait(timeout=5) == 0
        # uvicorn would otherwise wait its 10 s graceful timeout for the stream to finish
        assert time.monotonic() - began < 3
        es.wait_ended(timeout=1)
        es.close()
    finally:
        if server.process.poll() is None:
            stop_server(server)


# -- a deployment's life, on the real engine, on both databases -------------------------------------------

def states_of(es: EventStream, doc_id: str) -> list[str]:
    return [e.json["state"] for e in es.of(doc_id)]


def test_the_owner_follows_a_deployment_start_and_a_stranger_sees_it_only_once_shared(live_server, images):
    root = admin(live_server)
    alice, bob = make_user(live_server, root), make_user(live_server, root)
    api = api_for(live_server)
    api.login_password(alice.username, alice.password)
    with stream_of(alice) as a_stream, stream_of(bob) as b_stream:
        dep_id = deploy(api, component(api, images["app"], ports=[{"target-port": 80}]))
        job_id = start_deployment(api, dep_id)
        a_stream.wait_until(lambda: "STARTED" in states_of(a_stream, dep_id), "STARTED")
        states = states_of(a_stream, dep_id)
        assert states[:2] == ["CREATED", "STARTING"] and "STARTED" in states, states
        a_stream.wait_for(is_change("edit", job_id, state="SUCCESS"), "the job's success")
        job_states = states_of(a_stream, job_id)
        assert job_states[0] == "QUEUED" and "RUNNING" in job_states and job_states[-1] == "SUCCESS", job_states
        params = [e.json for e in a_stream.events if e.json.get("resource-type") == "deployment-parameter"
                  and e.json["parent"] == dep_id]
        assert {"hostname", "tcp.80"} <= {p["name"] for p in params}
        published = wait_state(api, dep_id, "STARTED")
        tcp80 = [p for p in params if p["name"] == "tcp.80" and p.get("value")]
        assert tcp80 and tcp80[-1]["value"].isdigit()
        assert published["state"] == "STARTED"
        for e in a_stream.events:
            assert "operations" not in e.json
            assert "api-secret" not in e.json.get("api-credentials", {})

        # bob saw nothing of it; once alice shares it, he sees what changes after the share
        before_share = max(e.id for e in a_stream.events)
        acl = alice.get(dep_id).json()["acl"]
        assert alice.put(dep_id, json={"acl": {**acl, "view-data": [*acl.get("view-data", []), bob.user_id]}}
                         ).status_code == 200
        b_stream.wait_for(is_change("edit", dep_id), "the share of the deployment")
        theirs = [e for e in b_stream.events if e.doc_id in (dep_id, job_id) or e.json.get("parent") == dep_id]
        assert all(e.id > before_share for e in theirs), "bob saw alice's deployment before the share"

        api.operation(api.get(dep_id), "stop")
        b_stream.wait_for(is_change("edit", dep_id, state="STOPPING"), "the stop, once shared")
        b_stream.wait_for(is_change("edit", dep_id, state="STOPPED"), "the end of the stop")
        assert all("acl" not in e.json for e in b_stream.of(dep_id))  # view-data only, as his GET
        # the stop job is alice's alone
        assert not [e for e in b_stream.events if e.json.get("resource-type") == "job"]


# -- inside the server: subscriptions, overflow, other processes ------------------------------------------

class InProcess:
    """``create_app`` under uvicorn on a thread, so that a test can look at the server's feed."""

    def __init__(self, data_dir: str, **settings: Any) -> None:
        values = {"data-dir": data_dir, "admin-password": config.Secret(ADMIN_PASSWORD), "port": free_port(),
                  "workers": 0, **settings}
        self.runtime = start(config.Settings(values))
        self.services = self.runtime.services
        self.endpoint = f"http://127.0.0.1:{values['port']}"
        self.server = http_server(uvicorn.Config(create_app(self.services), port=values["port"],
                                                 log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started

    @property
    def api(self) -> str:
        return self.endpoint + "/api"

    @property
    def feed(self) -> ChangeFeed:
        return feed_of(self.services)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.runtime.stop()


@pytest.fixture
def in_process(tmp_path):
    servers: list[InProcess] = []

    def make(**settings: Any) -> InProcess:
        server = InProcess(str(tmp_path / f"data{len(servers)}"), **settings)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def wait(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.01)


def test_a_disconnect_frees_the_subscription(in_process):
    server = in_process()
    alice = make_user(server, admin(server))
    first, second = stream_of(alice, types=DOC_TYPE), stream_of(alice)
    assert server.feed.subscribers == 2
    first.close()
    wait(lambda: server.feed.subscribers == 1, "one subscription left")
    doc_id = alice.new_doc()
    second.close()
    wait(lambda: server.feed.subscribers == 0, "no subscription left")
    assert first.of(doc_id) == []


def test_a_subscriber_that_falls_behind_is_dropped_with_an_overflow_event(in_process):
    server = in_process(**{"stream-queue": 2})
    alice = make_user(server, admin(server))
    with stream_of(alice, types=DOC_TYPE) as es:
        ctx = Ctx(server.services, for_identity(alice.user_id, [USER]))
        rtype = server.services.types[DOC_TYPE]
        with server.services.store.write() as tx:  # one transaction: its 50 changes are dispatched at once
            for i in range(50):
                crud.insert(ctx, tx, rtype, {"name": f"doc {i}"})
        overflow = es.wait_for(lambda e: e.event == "overflow", "the overflow event")
        assert "reconnect" in overflow.json["message"]
        es.wait_ended()
        assert len([e for e in es.events if e.event == "add"]) < 50
        assert server.feed.subscribers == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_changes_made_by_another_process_arrive_through_postgresql(db_url, tmp_path):
    def runtime():
        return start(config.Settings({"data-dir": str(tmp_path), "database-url": db_url,
                                      "admin-password": config.Secret(ADMIN_PASSWORD)}))

    api_process, worker_process = runtime(), runtime()  # two stores on one database, as two processes
    try:
        owner = for_identity("user/remote-test", [USER])
        feed = feed_of(api_process.services)
        sub = feed.subscribe(owner, [DOC_TYPE])
        stranger = feed.subscribe(for_identity("user/stranger", [USER]), [DOC_TYPE])
        remote = Ctx(worker_process.services, owner)
        rtype = worker_process.services.types[DOC_TYPE]

        def next_event():
            event = sub.get(timeout=WAIT)
            assert event is not None, "no event within the wait"
            return event

        doc_id = crud.add(remote, rtype, {"name": "made elsewhere"}).body["resource-id"]
        added = next_event()
        assert (added.change, added.data["id"], added.data["name"]) == ("add", doc_id, "made elsewhere")
        assert added.data["acl"]["owners"] == ["user/remote-test"]
        crud.edit(remote, rtype, doc_id, {"name": "edited elsewhere"})
        edited = next_event()
        assert (edited.change, edited.data["name"]) == ("edit", "edited elsewhere")
        crud.delete(remote, rtype, doc_id)
        deleted = next_event()
        assert (deleted.change, deleted.data) == ("delete", {"id": doc_id, "resource-type": DOC_TYPE})

        # this process's own change comes once, from PostgreSQL like the others, in commit order with them
        local_id = crud.add(Ctx(api_process.services, owner), rtype, {"name": "made here"}).body["resource-id"]
        marker = crud.add(remote, rtype, {"name": "marker"}).body["resource-id"]
        assert [(e.change, e.data["id"]) for e in (next_event(), next_event())] == [("add", local_id), ("add", marker)]

        # a document far beyond one notification's 8,000 bytes, with characters of several bytes, comes whole
        big = {"name": "big", "description": "é€😀 " * 6000}
        big_id = crud.add(remote, rtype, big).body["resource-id"]
        added = next_event()
        assert added.data["id"] == big_id and added.data["description"] == big["description"]
        # a transaction's many changes, in its order; a delete reaches whoever may see the document as it was
        late = feed.subscribe(owner, [DOC_TYPE])
        with worker_process.services.store.write() as tx:
            made = [crud.insert(remote, tx, rtype, {"name": f"batch {i}"})["id"] for i in range(40)]
        assert [(e.change, e.data["id"]) for e in (next_event() for _ in made)] == [("add", i) for i in made]
        crud.delete(remote, rtype, big_id)
        assert next_event().change == "delete"
        heard_late = [late.get(timeout=WAIT) for _ in range(len(made) + 1)]
        assert [(e.change, e.data["id"]) for e in heard_late] == [("add", i) for i in made] + [("delete", big_id)]
        assert stranger.drain() == []
    finally:
        worker_process.stop()
        api_process.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_every_change_reaches_every_process_once_in_commit_order(db_url, tmp_path):
    """Eight threads in two processes bump two counters (read, add one, write: the row lock orders them): the
    feed of each process carries every value of each counter once, in order, and both carry the same
    sequence, their own changes and the other's interleaved as they committed."""
    def runtime():
        return start(config.Settings({"data-dir": str(tmp_path), "database-url": db_url,
                                      "admin-password": config.Secret(ADMIN_PASSWORD)}))

    processes = [runtime(), runtime()]
    try:
        owner = for_identity("user/counter", [USER])
        rtype = processes[0].services.types[DOC_TYPE]
        subs = [feed_of(p.services).subscribe(owner, [DOC_TYPE]) for p in processes]
        counters = [crud.add(Ctx(processes[0].services, owner), rtype, {"name": "0"}).body["resource-id"]
                    for _ in range(2)]

        def bump(store: Store, times: int, offset: int) -> None:
            for n in range(times):
                with store.write() as tx:
                    doc = tx.get(counters[(n + offset) % 2], for_update=True)
                    doc["name"] = str(int(doc["name"]) + 1)
                    tx.replace(doc)

        threads = [threading.Thread(target=bump, args=(p.services.store, 30, i))
                   for i in range(4) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sequences = []
        for sub in subs:
            events: list[tuple[str, str]] = []
            while len(events) < 2 + 240:
                event = sub.get(timeout=WAIT)
                assert event is not None, f"{len(events)} events of 242 within the wait"
                events.append((event.data["id"], event.data["name"]))
            time.sleep(0.2)
            assert sub.drain() == []  # none twice
            for counter in counters:
                assert [int(name) for rid, name in events if rid == counter] == list(range(121))
            sequences.append(events)
        assert sequences[0] == sequences[1]
    finally:
        for process in processes:
            process.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_lost_listening_connection_ends_the_streams_that_may_have_missed_changes(db_url, in_process):
    server = in_process(**{"database-url": db_url})
    alice = make_user(server, admin(server))
    with stream_of(alice, types=DOC_TYPE) as es:
        first = alice.new_doc(name="before")
        es.wait_for(is_change("add", first), "the add before")
        # the database ends the listening session, as a restart or a cut connection would
        with server.services.store.engine.connect() as conn:
            ended = conn.execute(sa.text(
                # waits until the backend is gone, so no change after it can reach it
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query = 'LISTEN dockyard_changes'")).scalars().all()
        assert ended == [True]
        unheard = alice.new_doc(name="while nobody listened")
        lost = es.wait_for(lambda e: e.event == "overflow", "the overflow event once the feed listens again")
        assert "lost its connection" in lost.json["message"] and "read again" in lost.json["message"]
        es.wait_ended()
        assert es.of(unheard) == []
    with stream_of(alice, types=DOC_TYPE) as again:  # a new stream hears the next change
        later = alice.new_doc(name="after")
        again.wait_for(is_change("add", later), "the add after")


# -- the stream's filter agrees with the search's ----------------------------------------------------------

DOCS = [
    {"name": "alpha", "description": "First Doc", "tags": ["a", "b"], "n": 5, "flag": True,
     "nested": {"x": "1"}, "when": "2024-05-01T10:00:00.000Z"},
    {"name": "beta", "description": "second doc", "tags": [], "n": 12, "flag": False,
     "when": "2023-01-01T00:00:00.000Z"},
    {"name": "Gamma", "n": 5.5, "tags": ["c"], "nested": {"y": {"z": "deep"}}},
]
FILTERS = [
    "name='alpha'", "name!='alpha'", "tags='a'", "tags=['c' 'x']", "tags=null", "tags!=null", "n=5", "n>=6",
    "n<6", "flag=true", "flag=false", "nested=null", "nested!=null", "nested/y/z='deep'",
    "name^='Ga'", "name^=''", "description=='doc'", "fulltext=='first doc'", "fulltext=='gamma'",
    "when>'2024-01-01'", "when<'now-1d'", "when>=2023-01-01T00:00:00Z", "name>'beta'", "name='5' or n=5",
    "(name='alpha' or name='beta') and n<10", "tags=[]", "tags!=[]", "description=='*'", "missing!='x'",
]


def test_the_stream_filter_matches_what_the_search_finds(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'match.db'}")
    store.migrate()
    try:
        with store.write() as tx:
            for i, doc in enumerate(DOCS):
                tx.insert({**doc, "id": f"thing/{i}", "resource-type": "thing", "created": "2024-01-01T00:00:00.000Z",
                           "updated": "2024-01-01T00:00:00.000Z"})
        for text in FILTERS:
            node = cimi_filter.parse(text)
            with store.read() as tx:
                found = set(tx.ids(Query("thing", node)))
                stored = {d["id"]: d for d in tx.get_many([f"thing/{i}" for i in range(len(DOCS))])}
            assert {rid for rid, doc in stored.items() if matches(doc, node)} == found, text
    finally:
        store.close()


def test_events_of_a_document_come_in_commit_order_whichever_thread_commits(db_url):
    store = Store(db_url, pool_size=8)
    store.migrate()
    seen: list[int] = []
    store.observers.append(lambda changes: seen.extend(doc["n"] for change, _, doc in changes))
    try:
        with store.write() as tx:
            tx.insert({"id": "thing/1", "resource-type": "thing", "created": "2024-01-01T00:00:00.000Z",
                       "updated": "2024-01-01T00:00:00.000Z", "n": 0})

        def bump(times: int) -> None:
            for _ in range(times):
                with store.write() as tx:  # read-modify-write: commits are serialised on the row
                    doc = tx.get("thing/1", for_update=True)
                    doc["n"] += 1
                    tx.replace(doc)

        threads = [threading.Thread(target=bump, args=(40,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == list(range(0, 321))
    finally:
        store.close()
