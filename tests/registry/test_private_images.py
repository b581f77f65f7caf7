"""Apps whose image is in a private registry (a real docker-registry with htpasswd on loopback).

The owner's app names the registry and credential (``private-registries``, ``registries-credentials``): it
pulls and starts. A start whose credential is wrong or missing is refused at once (400 naming the image and
the registry); one that reaches the worker with such a credential ends in ERROR naming them. Once the image
is on the engine, a second user's app naming it still cannot run it without a credential that opens it (the
manifest is checked at every start), while a user the owner shares the app with can deploy it with the
owner's credential without ever seeing the password. The password is in no answer, event, job message,
container environment or line of the server's log.
"""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from nuvla.api import Api, NuvlaError

from ..deployments.conftest import DEPLOYED, api_for, deploy, new_user, parameters, wait_ready, wait_state
from .conftest import server_log
from .helpers import add_credential, add_registry


def app(api: Api, image: str, registries: list[str] | None = None, credentials: list[str] | None = None,
        acl: dict | None = None) -> str:
    """A project and a component app running ``image`` (port 80), naming the registries and credentials."""
    project = f"p{uuid.uuid4().hex[:8]}"
    api.add("module", {"path": project, "subtype": "project"})
    name, tag = image.rsplit(":", 1)
    registry, _, rest = name.partition("/")
    repository, _, image_name = rest.rpartition("/")
    content = {"image": {"registry": registry, "repository": repository, "image-name": image_name, "tag": tag},
               "author": "tests", "architectures": ["amd64"], "ports": [{"target-port": 80}]}
    if registries:
        content["private-registries"] = registries
    if credentials:
        content["registries-credentials"] = credentials
    body = {"path": f"{project}/app", "subtype": "component", "content": content, **({"acl": acl} if acl else {})}
    return api.add("module", body).data["resource-id"]


def refused_start(api: Api, dep_id: str) -> tuple[int, str]:
    with pytest.raises(NuvlaError) as err:
        api.operation(api.get(dep_id), "start")
    return err.value.response.status_code, err.value.response.json()["message"]


def containers(docker_client, dep_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"})


@pytest.fixture(scope="module")
def owner(server, private_registry):
    """A user who registered the registry with a right and a wrong credential."""
    api, uid = new_user(server)
    reg = add_registry(api, private_registry.endpoint)
    right = add_credential(api, reg, private_registry.username, private_registry.password, name="right")
    wrong = add_credential(api, reg, private_registry.username, "wrong-" + uuid.uuid4().hex, name="wrong")
    return api, uid, reg, right, wrong


def test_private_image_starts_with_the_right_credential_and_is_refused_without_it(
        server, private_registry, owner, docker_client):
    api, _, reg, right, wrong = owner
    image, where = private_registry.image, private_registry.address
    assert not docker_client.images.list(name=image.rsplit(":", 1)[0])  # the start must pull it

    dep = deploy(api, app(api, image, [reg], [right]))
    api.operation(api.get(dep), "start")
    doc = wait_ready(api, dep)
    assert doc["state"] == "STARTED"
    assert docker_client.images.get(image)  # pulled with the credential
    page = httpx.get(f"http://127.0.0.1:{parameters(api, dep)['tcp.80']}/", timeout=10).text
    assert "NUVLA_DEPLOYMENT_ID" in page and private_registry.password not in page  # the container's environment

    # a wrong credential: refused at once, naming the image and the registry; nothing queued, nothing run
    dep_wrong = deploy(api, app(api, image, [reg], [wrong]))
    status, message = refused_start(api, dep_wrong)
    assert status == 400
    assert message.startswith(f"The registry {where} refused the credential given for image '{image}' "
                              f"(401 Unauthorized"), message
    assert api.get(dep_wrong).data["state"] == "CREATED"
    assert api.search("job", filter=f"target-resource/href='{dep_wrong}'").count == 0

    # no credential at all for a registered registry's image: the same
    dep_none = deploy(api, app(api, image))
    status, message = refused_start(api, dep_none)
    assert status == 400
    assert message == (f"Image '{image}' is in the private registry {where}, and the deployment gives no "
                       f"credential for it (registries-credentials).")
    assert not containers(docker_client, dep_wrong) and not containers(docker_client, dep_none)


def test_a_wrong_or_missing_credential_at_the_worker_ends_in_error_naming_registry_and_image(
        server, private_registry, owner, docker_client):
    """An update has no pre-flight: the worker's own manifest check refuses, although the image is local."""
    api, _, reg, right, wrong = owner
    image, where = private_registry.image, private_registry.address
    dep = deploy(api, app(api, image, [reg], [right]))
    api.operation(api.get(dep), "start")
    wait_state(api, dep, "STARTED")

    api.edit(dep, {"registries-credentials": [wrong]})
    api.operation(api.get(dep), "update")
    doc = wait_state(api, dep, "ERROR")
    assert doc["status-message"].startswith(
        f"The registry {where} refused the credential given for image '{image}' (401 Unauthorized"), doc
    job = api.search("job", filter=f"target-resource/href='{dep}' and action='update_deployment'").resources[0]
    assert job.data["state"] == "FAILED" and job.data["status-message"] == doc["status-message"]

    api.edit(dep, {"registries-credentials": [""]})
    api.operation(api.get(dep), "update")
    doc = wait_state(api, dep, "ERROR")
    assert doc["status-message"] == (f"Image '{image}' is in the private registry {where}, and the deployment "
                                     f"gives no credential for it (registries-credentials).")
    api.operation(api.get(dep), "stop")
    wait_state(api, dep, "STOPPED")


def test_an_image_on_the_engine_does_not_run_for_a_user_without_access_but_the_vendor_rule_holds(
        server, private_registry, owner, docker_client):
    api, owner_id, reg, right, _ = owner
    image, where = private_registry.image, private_registry.address
    first = deploy(api, app(api, image, [reg], [right]))
    api.operation(api.get(first), "start")
    wait_state(api, first, "STARTED")
    assert docker_client.images.get(image)  # on the shared engine now

    other, other_id = new_user(server)
    # their own app naming the image: no credential of theirs opens it
    dep = deploy(other, app(other, image))
    status, message = refused_start(other, dep)
    assert status == 400 and image in message and where in message
    assert not containers(docker_client, dep)
    # the owner's credential is not theirs to name, in an app or in a deployment (Nuvla's 403s)
    with pytest.raises(NuvlaError) as err:
        app(other, image, [reg], [right])
    assert err.value.response.status_code == 403
    assert err.value.response.json()["message"] == "Private registries can't be resolved!"
    with pytest.raises(NuvlaError) as err:
        deploy(other, app(other, image), **{"registries-credentials": [right]})
    assert (err.value.response.status_code, err.value.response.json()["message"]) == (
        403, "Registries credentials can't be resolved!")
    # a registry of their own at the same address, with a wrong password: refused by the registry itself
    their_reg = add_registry(other, private_registry.endpoint, name="mine too")
    guess = add_credential(other, their_reg, private_registry.username, "guess-" + uuid.uuid4().hex)
    dep_guess = deploy(other, app(other, image, [their_reg], [guess]))
    status, message = refused_start(other, dep_guess)
    assert status == 400 and message.startswith(f"The registry {where} refused the credential given for image")

    # the vendor rule: the owner shares the app (not the credential); the other user deploys it with the
    # owner's credential, which they still cannot read
    shared = app(api, image, [reg], [right], acl={"owners": [owner_id], "view-data": [other_id]})
    dep_shared = deploy(other, shared)
    other.operation(other.get(dep_shared), "start")
    doc = wait_ready(other, dep_shared)
    assert doc["state"] == "STARTED"
    for hidden in (right, reg):
        with pytest.raises(NuvlaError) as err:
            other.get(hidden)
        assert err.value.response.status_code == 403


def test_the_password_is_in_no_answer_event_job_or_log_line(server, private_registry, owner):
    """Run last in this module: everything the tests above did is searched."""
    api, *_ = owner
    admin = api_for(server)
    from ..conftest import ADMIN_PASSWORD
    admin.login_password("admin", ADMIN_PASSWORD)
    raw = httpx.Client(base_url=server.api + "/", cookies=admin.session.cookies, timeout=30)
    answers = {name: raw.put(name, data={"last": 10000}).text
               for name in ("credential", "job", "event", "deployment", "module", "infrastructure-service")}
    answers["server log"] = server_log(server).decode(errors="replace")
    secret = private_registry.password
    basic = base64.b64encode(f"{private_registry.username}:{secret}".encode()).decode()
    for where, text in answers.items():
        for form in (secret, json.dumps(secret)[1:-1], basic):
            assert form not in text, f"the registry password ({form[:6]}…) is in {where}"
    assert "credential_check" in answers["job"] or "start_deployment" in answers["job"]
    assert DEPLOYED
