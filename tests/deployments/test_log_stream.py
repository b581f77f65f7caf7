"""``GET /api/deployment/<uuid>/log-stream``: the container's log as it is written, on the real engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from ..api.helpers import COOKIE, error_of, forbidden
from ..api.test_event_stream import EventStream
from .conftest import component, deploy, new_user, parameters, start, wait_ready

WAIT = 10.0


class LogLines:
    """Reads a text/plain log stream on its own thread, line by line."""

    def __init__(self, url: str, cookie: str, **params: str) -> None:
        self.client = httpx.Client(timeout=httpx.Timeout(10.0, read=None), cookies={COOKIE: cookie})
        self._context = self.client.stream("GET", url, params=params)
        self.response = self._context.__enter__()
        self.lines: list[str] = []
        self.ended = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        except (httpx.HTTPError, OSError):
            pass
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"no {what} within {timeout} s; lines: {self.lines}"
                self._cond.wait(left)

    def count(self, text: str) -> int:
        with self._cond:
            return sum(text in line for line in self.lines)

    def close(self) -> None:
        self.response.close()
        self.client.close()


@pytest.fixture
def running(sqlite_server, images, docker_client):
    """A user's started app (httpd on port 80, logging each request) and its published port."""
    api, uid = new_user(sqlite_server)
    dep_id = deploy(api, component(api, images["app"], ports=[{"target-port": 80}]))
    start(api, dep_id)
    wait_ready(api, dep_id)
    port = parameters(api, dep_id)["tcp.80"]
    httpx.get(f"http://127.0.0.1:{port}/", timeout=5)  # httpd answers: its log has a request line already
    yield api, dep_id, port
    if dep_id in {d.id for d in api.search("deployment").resources}:
        api.operation(api.get(dep_id), "force-delete")  # removes the container without stop's wait
    # gone before the session's own clean-up looks (it cannot remove a container being removed); the low-level
    # list, because containers.list() inspects each container and so races the removal
    label = {"label": f"dockyard.deployment-id={dep_id}"}
    deadline = time.monotonic() + WAIT
    while docker_client.api.containers(all=True, filters=label):
        assert time.monotonic() < deadline, f"the container of {dep_id} is still there"
        time.sleep(0.05)


def cookie_of(api) -> str:
    return api.session.cookies.get(COOKIE)


def test_lines_arrive_as_the_container_writes_them_and_the_stream_ends_with_the_container(sqlite_server, running):
    api, dep_id, port = running
    logs = LogLines(f"{sqlite_server.api}/{dep_id}/log-stream", cookie_of(api), tail="all")
    try:
        assert logs.response.status_code == 200
        assert logs.response.headers["content-type"] == "text/plain; charset=utf-8"
        logs.wait_until(lambda: logs.count(f"app of {dep_id} starting") == 1, "the app's first line")
        logs.wait_until(lambda: logs.count("response:200") == 1, "the earlier request's line")
        stamp = logs.lines[0].split(" ", 1)[0]
        assert stamp[:4].isdigit() and stamp.endswith("Z"), logs.lines[0]  # the engine's RFC 3339 time

        asked = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        logs.wait_until(lambda: logs.count("response:200") == 2, "the new request's line")
        assert time.monotonic() - asked < 1.0

        api.operation(api.get(dep_id), "force-delete")
        logs.wait_until(lambda: logs.ended, "the end of the log once the container is gone")
    finally:
        logs.close()


def test_event_stream_clients_get_one_event_per_line_from_the_tail_on(sqlite_server, running):
    api, dep_id, port = running
    with EventStream(f"{sqlite_server.api}/{dep_id}/log-stream", cookie=cookie_of(api), params={"tail": "0"},
                     headers={"Accept": "text/event-stream"}) as es:
        assert es.response.status_code == 200
        assert es.response.headers["content-type"].startswith("text/event-stream")
        es.wait_until(lambda: "following" in es.comments, "the stream's start")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        line = es.wait_for(lambda e: e.event == "message" and "response:200" in e.data, "the request's line")
        assert es.events == [line]  # tail=0: nothing written before


def test_only_callers_with_view_data_may_follow_and_refusals_come_before_streaming(sqlite_server, images, running):
    api, dep_id, _ = running
    url = f"{sqlite_server.api}/{dep_id}/log-stream"
    stranger, stranger_id = new_user(sqlite_server)
    assert error_of(httpx.get(url, cookies={COOKIE: cookie_of(stranger)})) == forbidden(dep_id)
    assert error_of(httpx.get(url)) == forbidden(dep_id)  # anonymous

    # view-meta shows the deployment, not its log
    acl = api.get(dep_id).data["acl"]
    api.edit(dep_id, {"acl": {**acl, "view-meta": [*acl.get("view-meta", []), stranger_id]}})
    assert stranger.get(dep_id).data["id"] == dep_id
    assert error_of(httpx.get(url, cookies={COOKIE: cookie_of(stranger)})) == forbidden(dep_id)

    owner = {COOKIE: cookie_of(api)}
    missing = "deployment/00000000-0000-0000-0000-000000000000"
    assert error_of(httpx.get(f"{sqlite_server.api}/{missing}/log-stream", cookies=owner)) == \
        (404, f"{missing} not found")
    status, message = error_of(httpx.get(url, params={"tail": "-1"}, cookies=owner))
    assert status == 400 and "tail" in message
    assert error_of(httpx.post(url, cookies=owner))[0] == 405
    created = deploy(api, component(api, images["app"]))
    assert error_of(httpx.get(f"{sqlite_server.api}/{created}/log-stream", cookies=owner)) == \
        (409, f"{created} has no container to follow in state CREATED")
    api.delete(created)
