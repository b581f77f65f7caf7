"""``update`` of a deployment whose Swarm service runs rolls it over in place, one task at a time (issue 12).

A 2-replica component publishes a fixed port in host mode (this kernel has no routing mesh), so its two
tasks run on two nodes. Its module gets a new version (another GREETING) and the deployment fetches it and
updates: a client polls the port on every node each 50 ms throughout, and some replica always answers; the
new value answers afterwards, on the same service, and the node parameters name where the tasks now run. A
version whose tasks fail is rolled back by the swarm: the update fails with the engine's message, and the
previous version answers throughout.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.deployments.conftest import component, deploy, parameters, start, wait_state
from tests.support.images import BUSYBOX_TAG

from .helpers import node_image, wait_job, wait_nothing_on_nodes

GREETING_TAG = "dockyard-test/swarm-greeting:1"
# answers "<GREETING> <its host name>" on 8080; a GREETING of "fail" makes the task exit at once
GREETING_DOCKERFILE = f"""FROM {BUSYBOX_TAG}
CMD ["sh", "-c", "[ \\"$GREETING\\" != fail ] || exit 3; mkdir -p /tmp/w && echo \\"$GREETING $(hostname)\\" > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"]
""".encode()
PORT = 18282


@pytest.fixture(scope="module")
def greeting_image(swarm, docker_client):
    return node_image(swarm, docker_client, GREETING_TAG, GREETING_DOCKERFILE)


class Poller(threading.Thread):
    """GETs the port on every node each ``interval`` s; a round in which no node answered is downtime."""

    def __init__(self, addresses: list[str], port: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.urls = [f"http://{a}:{port}/" for a in addresses]
        self.interval = interval
        self.done = threading.Event()
        self.rounds: list[tuple[float, list[str]]] = []  # (when, the bodies that answered)

    def run(self) -> None:
        with httpx.Client(timeout=0.5) as client:
            while not self.done.is_set():
                answers = []
                for url in self.urls:
                    try:
                        answers.append(client.get(url).text.strip())
                    except httpx.HTTPError:
                        pass
                self.rounds.append((time.monotonic(), answers))
                self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join(5)

    def silent(self) -> list[float]:
        return [when for when, answers in self.rounds if not answers]

    def greetings(self) -> set[str]:
        return {answer.split(" ", 1)[0] for _, answers in self.rounds for answer in answers}


def new_version(api, module_id: str, greeting: str) -> int:
    """A new version of the app with another GREETING; its index."""
    content = api.get(module_id).data["content"]
    api.edit(module_id, {"content": {**content, "environmental-variables": [{"name": "GREETING", "value": greeting}]}})
    return len(api.get(module_id).data["versions"]) - 1


def update_to(api, dep_id: str, module_id: str, version: int) -> dict:
    """fetch-module of the app's version ``version``, then update; the update job once it ended."""
    api.operation(api.get(dep_id), "fetch-module", {"module-href": f"{module_id}_{version}"})
    return wait_job(api, api.operation(api.get(dep_id), "update").data["location"], timeout=120)


def placement(swarm, dep_id: str) -> list[str]:
    """The nodes of the service's running tasks, as the manager says."""
    [service] = swarm.docker(0, "service", "ls", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").split()
    lines = swarm.docker(0, "service", "ps", service, "--filter", "desired-state=running",
                         "--format", "{{.Node}} {{.CurrentState}}").splitlines()
    return sorted(line.split()[0] for line in lines if " Running" in line)


def test_an_update_rolls_two_replicas_over_without_a_moment_unanswered_and_a_failing_one_rolls_back(
        manager, swarm, greeting_image):
    api, cred, *_ = manager
    module_id = component(api, greeting_image, replicas=2, ports=[{"target-port": 8080, "published-port": PORT}],
                          **{"restart-policy": {"condition": "any"},
                             "environmental-variables": [{"name": "GREETING", "value": "one"}]})
    dep_id = deploy(api, module_id, parent=cred)
    start(api, dep_id)
    assert wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)["state"] == "STARTED"
    [service_before] = swarm.docker(0, "service", "ls", "-q", "--filter",
                                    f"label=dockyard.deployment-id={dep_id}").split()
    spec = json.loads(swarm.docker(0, "service", "inspect", service_before))[0]["Spec"]
    assert spec["UpdateConfig"]["Order"] == "stop-first" and spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert len(placement(swarm, dep_id)) == 2

    poller = Poller(swarm.addresses, PORT)
    poller.start()
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        job = update_to(api, dep_id, module_id, new_version(api, module_id, "two"))
        elapsed = time.monotonic() - t0
        time.sleep(0.5)
    finally:
        poller.stop()
    assert job["state"] == "SUCCESS", job.get("status-message")
    doc = wait_state(api, dep_id, "STARTED")
    assert doc["status-message"].startswith("updated "), doc["status-message"]
    rounds = len(poller.rounds)
    print(f"[swarm update] 2 replicas rolled over in {elapsed:.2f} s (job); {rounds} polling rounds, "
          f"{len(poller.silent())} without an answer; greetings seen {sorted(poller.greetings())}")
    assert rounds > 50 and poller.silent() == [], f"no replica answered at {len(poller.silent())} rounds"
    assert poller.greetings() == {"one", "two"}
    # the same service, now answering with the new value from every task
    assert swarm.docker(0, "service", "ls", "-q", "--filter", f"label=dockyard.deployment-id={dep_id}").split() \
        == [service_before]
    nodes = placement(swarm, dep_id)
    assert len(nodes) == 2
    answers = {httpx.get(f"http://{swarm.addresses[int(n[-1]) - 1]}:{PORT}/", timeout=5).text.split()[0]
               for n in nodes}
    assert answers == {"two"}
    params = parameters(api, dep_id)
    assert (params["replicas.desired"], params["replicas.running"]) == ("2", "2")
    assert params["node-id"] == nodes[0] and params["hostname"] == swarm.addresses[int(nodes[0][-1]) - 1]
    assert params["tcp.8080"] == str(PORT)

    # a version whose tasks exit at once: the swarm rolls back, the job fails saying so, "two" answers on
    poller = Poller(swarm.addresses, PORT)
    poller.start()
    try:
        job = update_to(api, dep_id, module_id, new_version(api, module_id, "fail"))
    finally:
        poller.stop()
    assert job["state"] == "FAILED"
    print(f"[swarm update] failing version: {job['status-message']}")
    assert job["status-message"].startswith("Service 'app-"), job["status-message"]
    # the engine's own words ("update rolled back due to failure or early termination of task <id>") when a
    # look caught them while it rolled back
    assert "was not updated: update rolled back" in job["status-message"]
    assert job["status-message"].endswith("(task: non-zero exit (3)); its previous version runs again")
    assert wait_state(api, dep_id, "ERROR")["status-message"] == job["status-message"]
    assert poller.silent() == [] and poller.greetings() == {"two"}

    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED", timeout=120)
    wait_nothing_on_nodes(swarm, dep_id)
