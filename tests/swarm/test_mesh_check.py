"""The routing-mesh probe belongs to the engine's check (issue 12): the ``check`` of the manager's credential
asks the swarm whether service virtual IPs answer and stores the answer on its infrastructure-service
(``swarm-routing-mesh``, beside ``swarm-nodes``); a start then uses it and creates no probe service."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from tests.deployments.conftest import component, deploy, start, wait_state

PROBE = "dockyard-mesh-probe-"


def services_created(swarm, since: str, until: str) -> list[str]:
    """The names of the services the manager created between two RFC 3339 instants (its event log)."""
    out = swarm.docker(0, "events", "--since", since, "--until", until, "--filter", "type=service",
                       "--filter", "event=create", "--format", "{{.Actor.Attributes.name}}")
    return out.split()


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_check_stores_the_mesh_answer_and_a_start_probes_nothing(manager, swarm, web_image):
    api, cred, infra, check_job = manager
    doc = api.get(infra).data
    assert doc["swarm-routing-mesh"] is swarm.ipvs  # no IPVS in this kernel: False
    assert doc["swarm-nodes"] == 3
    mesh = "answers" if swarm.ipvs else "does not answer (host-mode ports)"
    assert check_job["status-message"].endswith(f"; routing mesh {mesh}"), check_job["status-message"]
    # the check paid for the probe (its services: a web one and a client that fetches it by its VIP)
    took = (parse(check_job["updated"]) - parse(check_job["created"])).total_seconds()

    module = component(api, web_image, ports=[{"target-port": 8080}])
    dep_id = deploy(api, module, parent=cred)
    since = now()
    t0 = time.monotonic()
    start(api, dep_id)
    doc = wait_state(api, dep_id, {"STARTED", "ERROR"}, timeout=120)
    elapsed = time.monotonic() - t0
    time.sleep(1)  # the event log's last second
    created = services_created(swarm, since, now())
    print(f"[swarm mesh] check with the probe took {took:.1f} s ({check_job['status-message']!r}); a start after it took "
          f"{elapsed:.2f} s and created {created}")
    assert doc["state"] == "STARTED", doc.get("status-message")
    assert [n for n in created if n.startswith(PROBE)] == [] and len(created) == 1
    assert doc["status-message"].endswith("this swarm's routing mesh does not answer")
    api.operation(api.get(dep_id), "stop")
    wait_state(api, dep_id, "STOPPED", timeout=120)
