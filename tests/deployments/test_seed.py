"""The seed's script runs unchanged in a container and talks back with the injected key."""

from __future__ import annotations

from dockyard.core.ids import deployment_parameter_id

import httpx

from .conftest import component, deploy, new_user, parameters, start, wait_ready


def test_seed_script_sets_its_jupyter_token_with_the_injected_key(live_server, images):
    api, uid = new_user(live_server)
    module_id = component(api, images["seed"], ports=[{"target-port": 8888}],
                          **{"output-parameters": [{"name": "jupyter-token", "description": "the token"}],
                             "urls": [["notebook", "http://${hostname}:${tcp.8888}/?token=${jupyter-token}"]],
                             "readiness": {"output-parameters": ["jupyter-token"]}})
    dep_id = deploy(api, module_id)
    start(api, dep_id)
    doc = wait_ready(api, dep_id)  # its port accepts connections and the script has set its token
    uuid_part = dep_id.split("/")[1]
    token_param = deployment_parameter_id(dep_id, uuid_part, "jupyter-token")
    token = parameters(api, dep_id)["jupyter-token"]
    assert len(token) == 24 and token.isalnum()
    assert api.get(token_param).data["value"] == token  # the id the script computed
    port = parameters(api, dep_id)["tcp.8888"]
    listing = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert listing.status_code == 200 and "data/" in listing.text  # the script made /gssc/data/
    assert doc["phases"].keys() >= {"queued", "claimed", "pulled", "created", "started", "ready"}
