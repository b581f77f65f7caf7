"""Readiness of compose applications on the real engine: an application is ready once every TCP port its
services publish accepts connections and its HTTP check (on the service it names) answers, not as soon as
its containers run; what its readiness names that its file does not publish is refused, naming it."""

from __future__ import annotations

import time

import pytest
from nuvla.api import NuvlaError

from ..deployments.conftest import DEPLOYED, deploy, new_user, start, wait_state
from ..deployments.test_readiness import late, seconds, wait_decided  # noqa: F401
from .app import application

# two services that listen late: front after 3 s, back after 1 s; both publish port 80
LATE_PAIR = """
services:
  front:
    image: %(image)s
    ports: ["80"]
    environment:
      START_AFTER: "3"
  back:
    image: %(image)s
    ports: ["80"]
    environment:
      START_AFTER: "1"
"""


def stop(api, dep_id: str) -> None:
    api.operation(api.get(dep_id), "stop", {"remove-volumes": True})
    wait_state(api, dep_id, "STOPPED", timeout=60)
    DEPLOYED.discard(dep_id)


def test_an_application_is_ready_once_every_service_port_accepts_and_its_http_check_answers(sqlite_server, late):
    api, _ = new_user(sqlite_server)
    readiness = {"http": {"service": "front", "port": 80, "path": "/", "status": 200}}
    dep_id = deploy(api, application(api, LATE_PAIR % {"image": late}, readiness=readiness))
    start(api, dep_id)
    started = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=60)
    assert started["state"] == "STARTED", started.get("status-message")
    assert "ready" not in started
    assert started["ready-message"].startswith(
        "waiting until back.tcp.80 accepts connections and GET / on front port 80 answers 200")
    doc = wait_decided(api, dep_id)
    assert doc["ready"] is True and "ready-message" not in doc
    late_by = seconds(doc["phases"]["ready"]) - seconds(doc["phases"]["started"])
    assert late_by >= 2.5, doc["phases"]  # front listens 3 s after it starts
    print(f"[compose readiness] ready {late_by:.2f} s after STARTED (front listens after 3 s)")
    stop(api, dep_id)


def test_an_application_whose_port_never_answers_ends_not_ready_naming_the_service(sqlite_server, late):
    api, _ = new_user(sqlite_server)
    text = LATE_PAIR.replace('"3"', '"600"') % {"image": late}
    dep_id = deploy(api, application(api, text, readiness={"timeout": 4}))
    start(api, dep_id)
    assert wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=60)["state"] == "STARTED"
    doc = wait_decided(api, dep_id)
    assert doc["state"] == "STARTED" and doc["ready"] is False
    assert doc["ready-message"] == "front.tcp.80 did not accept a connection within 4 s"
    stop(api, dep_id)


def test_what_an_applications_readiness_names_must_be_published_by_its_file(sqlite_server, late):
    api, _ = new_user(sqlite_server)
    text = LATE_PAIR % {"image": late}
    with pytest.raises(NuvlaError) as err:  # the module itself: an application's HTTP check names its service
        application(api, text, readiness={"http": {"port": 80}})
    assert err.value.response.status_code == 400 and "readiness.http.service" in err.value.reason
    for http, fault in ((
            {"service": "db", "port": 80}, "readiness.http.service: 'db' is not a service of the file that "
                                           "publishes a tcp port (front, back)"),
            ({"service": "back", "port": 8080}, "readiness.http.port: service 'back' publishes no tcp port 8080 (80)")):
        module = application(api, text, readiness={"http": http})
        dep_id = deploy(api, module)
        with pytest.raises(NuvlaError) as err:
            start(api, dep_id)
        assert err.value.response.status_code == 400 and fault in err.value.reason, err.value.reason
        assert api.get(dep_id).data["state"] == "CREATED"
        assert api.search("job", filter=f"target-resource/href='{dep_id}'").count == 0
        DEPLOYED.discard(dep_id)
        job = api.operation(api.get(module), "validate-docker-compose").data["location"]
        deadline = time.monotonic() + 60
        while api.get(job).data["state"] not in ("SUCCESS", "FAILED"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        checked = api.get(module).data
        assert checked["valid"] is False and fault in checked["validation-message"], checked


def test_an_application_that_publishes_nothing_is_ready_once_started(sqlite_server, late):
    api, _ = new_user(sqlite_server)
    text = f"services:\n  quiet:\n    image: {late}\n"
    dep_id = deploy(api, application(api, text))
    start(api, dep_id)
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=60)
    assert doc["state"] == "STARTED" and doc["ready"] is True
    stop(api, dep_id)
