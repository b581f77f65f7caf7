"""The deployment follows the engine: a container that exits shows at once, from Docker's events (how soon is
measured in benchmarks/deploy.py, not asserted here)."""

from __future__ import annotations

import time

import pytest

from ..conftest import start_server, stop_server
from .conftest import component, deploy, new_user, parameters, start, wait_state


@pytest.fixture
def sweepless_server(tmp_path):
    """A server whose periodic sweep never comes during a test: what it sees, it saw from the events."""
    server = start_server(tmp_path / "sweepless", extra_env={"DOCKYARD_SWEEP_INTERVAL": "3600"})
    yield server
    stop_server(server)


def test_an_exiting_container_turns_the_deployment_to_error_from_the_engines_events(sweepless_server, images):
    api, _ = new_user(sweepless_server)
    env = [{"name": "EXIT_AFTER", "value": "2"}, {"name": "EXIT_CODE", "value": "3"}]
    dep_id = deploy(api, component(api, images["app"], **{"environmental-variables": env}))
    start(api, dep_id)
    wait_state(api, dep_id, "STARTED")
    doc = wait_state(api, dep_id, "ERROR", timeout=60)
    assert doc["status-message"] == "the container exited with code 3"
    assert doc["task"]["state"] == "exited" and doc["task"]["exit-code"] == 3
    params = parameters(api, dep_id)
    assert params["current.state"] == "exited" and params["restart.exit.code"] == "3"
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")


def test_restarts_are_counted(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    env = [{"name": "EXIT_AFTER", "value": "0.3"}, {"name": "EXIT_CODE", "value": "1"}]
    dep_id = deploy(api, component(api, images["app"], **{"environmental-variables": env,
                                                            "restart-policy": {"condition": "any"}}))
    start(api, dep_id)
    wait_state(api, dep_id, ("STARTED", "ERROR"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        restarts = api.get(dep_id).data.get("task", {}).get("restarts", 0)
        if restarts >= 2:
            break
        time.sleep(0.1)
    assert restarts >= 2
    assert int(parameters(api, dep_id)["restart.number"]) >= 1
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED")
