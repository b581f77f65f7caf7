"""Nuvla's ``restart.*`` parameters of a Swarm service: the tasks the swarm had to replace, counted and described.

A service whose task exits with code 3 two seconds after it starts, with restart condition ``any``: the swarm
replaces each failed task, and the deployment's parameters say how many failed and how the newest one ended
(as Nuvla's job engine reads them from the service's tasks, reference §2.7).
"""

from __future__ import annotations

import time

import pytest

from tests.deployments.conftest import DEPLOYED, component, deploy, parameters, start, wait_state
from tests.support.images import BUSYBOX_TAG

from .helpers import node_image

CRASH_TAG = "dockyard-test/swarm-crash:1"
CRASH_DOCKERFILE = f'FROM {BUSYBOX_TAG}\nCMD ["sh", "-c", "sleep 2; exit 3"]\n'.encode()


@pytest.fixture(scope="module")
def crash_image(swarm, docker_client):
    return node_image(swarm, docker_client, CRASH_TAG, CRASH_DOCKERFILE)


def test_the_tasks_a_swarm_replaced_are_counted_and_the_newest_failure_described(manager, crash_image):
    api, cred, *_ = manager
    module = component(api, crash_image, **{"restart-policy": {"condition": "any"}})
    dep_id = deploy(api, module, parent=cred)
    try:
        start(api, dep_id)
        wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)
        deadline = time.monotonic() + 60
        while (params := parameters(api, dep_id)).get("restart.exit.code") != "3" \
                or int(params.get("restart.number") or 0) < 1:
            assert time.monotonic() < deadline, params
            time.sleep(0.3)
        assert params["restart.error.message"] == "task: non-zero exit (3)"
        assert params["restart.timestamp"].endswith("Z") and params["restart.timestamp"][:2] == "20"
        assert params["current.error.message"]  # the current task's error, or "no error" while it runs
        first = int(params["restart.number"])
        while int(parameters(api, dep_id)["restart.number"]) <= first:  # the next failure is counted too
            assert time.monotonic() < deadline + 30, parameters(api, dep_id)
            time.sleep(0.3)
    finally:
        api.operation(api.get(dep_id), "force-delete")
        DEPLOYED.discard(dep_id)
