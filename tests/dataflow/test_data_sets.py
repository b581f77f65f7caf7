"""A data set is resolved when a deployment that uses it starts: the real python-library puts its record
filter into the deployment's ``data``, and Dockyard resolves the filter (as the user) at start."""

from __future__ import annotations

import uuid

from nuvla.api.resources.deployment import Deployment

from ..deployments.conftest import DEPLOYED, component, new_user, wait_state
from .test_data_api import LOCAL_STORAGE, prefix


def test_a_data_set_selects_the_records_of_a_deployment(sqlite_server, images):
    api, _ = new_user(sqlite_server)
    prefix(api, "gnss")
    mission = f"m{uuid.uuid4().hex[:6]}"
    wanted = [api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "gnss:mission": mission,
                                      "timestamp": f"2026-05-0{i}T00:00:00Z"}).data["resource-id"]
              for i in (1, 2)]
    api.add("data-record", {"infrastructure-service": LOCAL_STORAGE, "gnss:mission": mission,
                            "timestamp": "2025-05-01T00:00:00Z"})  # outside the time window
    set_id = api.add("data-set", {"name": "may", "data-record-filter": f"gnss:mission='{mission}'"}).data["resource-id"]
    helper = Deployment(api)
    dep = helper.create(component(api, images["app"]), data_sets=[
        {"id": set_id, "time-start": "2026-01-01T00:00:00Z", "time-end": "2027-01-01T00:00:00Z"}])
    DEPLOYED.add(dep.id)
    assert dep.data["data"]["records"]["filters"][0]["filter"] == f"gnss:mission='{mission}'"
    helper.start(dep.id)
    started = wait_state(api, dep.id, "STARTED")
    assert set(started["data-records"]) == set(wanted)
    helper.stop(dep.id)
    wait_state(api, dep.id, "STOPPED")
