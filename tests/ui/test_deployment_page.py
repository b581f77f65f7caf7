"""A deployment's page on the real Docker engine: Clone opens a new deployment of the same app with the same
values; data records found by metadata in the launch dialog are attached and their bucket is readable in the
container; and a start that the engine refuses says the engine's reason on the page."""

from __future__ import annotations

import re
import uuid

import docker
import httpx
import pytest
from playwright.sync_api import expect

from ..conftest import free_port
from .conftest import (LAPTOP, PHONE, api_app, api_deploy, image_of, login, mark_page, screenshot, still_same_page, user_client,
                       wait_state)

DEPLOYMENT_URL = re.compile(r"/ui/deployments/([0-9a-f-]{36})$")


@pytest.fixture
def docker_client():
    client = docker.from_env()
    yield client
    client.close()


def container_of(client, dep_id: str):
    [container] = client.containers.list(filters={"label": f"dockyard.deployment-id={dep_id}"})
    return container


def test_clone_opens_a_new_deployment_of_the_same_app_with_the_same_values(page, new_user, ui_server,
                                                                           test_app_image, docker_client):
    name, password = new_user()
    with user_client(ui_server, name, password) as api:
        module = api_app(api, image_of(test_app_image), **{"environmental-variables": [
            {"name": "GREETING", "required": True}, {"name": "TARGET", "value": "world"}]})
        original = api_deploy(api, module, name="greeter", description="says hello")
        resp = api.put(original, json={"module": {"content": {"environmental-variables": [
            {"name": "GREETING", "value": "hello from the original"}]}}})
        assert resp.status_code == 200, resp.text
    login(page, name, password)
    page.goto(f"/ui/deployments/{original.split('/')[1]}")
    env = page.locator("#env")
    expect(env.locator('[data-env="GREETING"] .value')).to_have_text("hello from the original")

    page.get_by_role("button", name="Clone").click()
    page.wait_for_url(lambda url: DEPLOYMENT_URL.search(url) and original.split("/")[1] not in url)
    clone = "deployment/" + DEPLOYMENT_URL.search(page.url).group(1)
    assert clone != original
    # the new one is opened: created, not started, with the original's values
    expect(page.get_by_role("heading", name="greeter", level=1)).to_be_visible()
    expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "CREATED")
    expect(page.get_by_text(clone)).to_be_visible()
    expect(env.locator('[data-env="GREETING"] .value')).to_have_text("hello from the original")
    expect(env.locator('[data-env="TARGET"] .value')).to_have_text("world")
    screenshot(page, "deployment-cloned")
    with user_client(ui_server, name, password) as api:
        docs = {d["id"]: d for d in api.get("deployment").json()["resources"]}
        assert set(docs) == {original, clone}
        assert docs[clone]["module"]["href"] == docs[original]["module"]["href"] == module
        assert docs[clone]["module"]["content"] == docs[original]["module"]["content"]
        assert (docs[clone]["state"], docs[original]["state"]) == ("CREATED", "CREATED")

    # started, the clone's container gets those values
    mark_page(page)
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "STARTED", timeout=60_000)
    assert still_same_page(page)
    box = container_of(docker_client, clone)
    assert box.exec_run(["sh", "-c", 'echo "$GREETING"; echo "$TARGET"']).output == b"hello from the original\nworld\n"
    with user_client(ui_server, name, password) as api:
        assert api.post(f"{clone}/stop", json={}).status_code == 202
        wait_state(api, clone, "STOPPED")


def upload_object(api: httpx.Client, bucket: str, key: str, content: bytes) -> str:
    resp = api.post("data-object", json={"template": {
        "href": "data-object-template/generic", "bucket": bucket, "object": key,
        "credential": "credential/local-storage", "content-type": "text/plain"}})
    assert resp.status_code == 201, resp.text
    oid = resp.json()["resource-id"]
    uri = api.post(f"{oid}/upload", json={}).json()["uri"]
    assert httpx.put(uri, content=content, headers={"Content-Type": "text/plain"}).status_code in (200, 204)
    assert api.post(f"{oid}/ready", json={}).status_code == 200
    return oid


def register_prefix(api: httpx.Client, prefix: str) -> None:
    resp = api.post("data-record-key-prefix", json={"prefix": prefix, "uri": f"https://example.org/{prefix}"})
    assert resp.status_code in (201, 409), resp.text  # 'data' may be registered already: prefixes are global


def test_launch_attaches_records_found_by_metadata_and_their_bucket_is_in_the_container(
        page, new_user, ui_server, test_app_image, docker_client):
    name, password = new_user()
    tag = uuid.uuid4().hex[:8]
    prefix, bucket = f"m{tag}", f"survey-{tag}"
    content = f"orbit 7 of mission alpha ({tag})\n".encode()
    with user_client(ui_server, name, password) as api:
        register_prefix(api, "data")
        register_prefix(api, prefix)
        upload_object(api, bucket, "pass-7.txt", content)
        records = {}
        for mission in ("alpha", "beta"):
            resp = api.post("data-record", json={
                "name": f"pass of {mission}", "infrastructure-service": "infrastructure-service/local-storage",
                "data:bucket": bucket, "data:object": "pass-7.txt", "content-type": "text/plain",
                f"{prefix}:mission": mission})
            assert resp.status_code == 201, resp.text
            records[mission] = resp.json()["resource-id"]
        module = api_app(api, image_of(test_app_image), name="Reader")
    login(page, name, password)
    page.goto(f"/ui/apps/{module.split('/')[1]}")
    page.get_by_role("button", name="Launch").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Find records by metadata").fill(f"{prefix}:mission='alpha'")
    dialog.get_by_label("Find records by metadata").press("Enter")
    expect(dialog.get_by_text("1 found; tick those to attach.")).to_be_visible()
    found = dialog.get_by_role("list", name="Records found")
    expect(found.get_by_role("checkbox")).to_have_count(1)
    found.get_by_label("pass of alpha · text/plain").check()
    screenshot(page, "launch-dialog-data")
    dialog.get_by_role("button", name="Launch").click()
    page.wait_for_url(DEPLOYMENT_URL)
    dep_id = "deployment/" + DEPLOYMENT_URL.search(page.url).group(1)
    expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "STARTED", timeout=60_000)

    with user_client(ui_server, name, password) as api:
        doc = api.get(dep_id).json()
        assert list(doc["data-records"]) == [records["alpha"]]
        assert [(m["bucket"], m["target"]) for m in doc["data-mounts"]] == [(bucket, f"/mnt/{bucket}")]
    box = container_of(docker_client, dep_id)
    read = box.exec_run(["cat", f"/mnt/{bucket}/pass-7.txt"])
    assert (read.exit_code, read.output) == (0, content)
    with user_client(ui_server, name, password) as api:
        assert api.post(f"{dep_id}/stop", json={}).status_code == 202
        wait_state(api, dep_id, "STOPPED")


def test_a_start_the_engine_refuses_shows_the_engines_reason_on_the_page(page, new_user, ui_server):
    name, password = new_user()
    registry = f"127.0.0.1:{free_port()}"  # nothing listens there: the pull is refused at once
    with user_client(ui_server, name, password) as api:
        module = api_app(api, {"registry": registry, "repository": "team", "image-name": "missing", "tag": "1"},
                         name="Unpullable")
    login(page, name, password)
    page.goto(f"/ui/apps/{module.split('/')[1]}")
    page.get_by_role("button", name="Launch").click()
    page.get_by_role("dialog").get_by_role("button", name="Launch").click()
    page.wait_for_url(DEPLOYMENT_URL)
    dep_id = "deployment/" + DEPLOYMENT_URL.search(page.url).group(1)
    mark_page(page)

    expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "ERROR", timeout=60_000)
    banner = page.locator("#failure")
    expect(banner).to_be_visible()
    image = f"{registry}/team/missing:1"
    # the engine's own words, after ours: where it failed and why
    expect(banner).to_have_text(re.compile(
        rf"^The deployment failed: The registry of image '{re.escape(image)}' cannot be reached; try again later\. "
        rf"\(.*{re.escape(registry)}.*connection refused\)"))
    expect(banner).to_contain_text("Stop it to clean up")
    expect(page.locator("#jobs [data-job]").first).to_contain_text("connection refused")
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(page.locator("#log-note")).to_have_text("No log: the container never started.")
    assert still_same_page(page)
    # on a phone the message wraps in its column instead of running out of sight
    page.set_viewport_size(PHONE)
    jobs = page.locator(".table-wrap").filter(has=page.locator("#jobs"))
    assert jobs.evaluate("w => w.scrollWidth <= w.clientWidth"), "the job's message runs out of its table"
    page.set_viewport_size(LAPTOP)
    screenshot(page, "deployment-failed")
    with user_client(ui_server, name, password) as api:
        doc = api.get(dep_id).json()
        assert doc["state"] == "ERROR" and "connection refused" in doc["status-message"]


def test_a_change_streamed_while_the_page_reads_again_is_not_undone_by_the_older_read(page, new_user, ui_server,
                                                                                       test_app_image):
    """Once subscribed, the page reads the deployment again (to catch what changed before it subscribed).
    A change the stream delivers while that read is on its way must win over the read's older copy."""
    name, password = new_user()
    with user_client(ui_server, name, password) as api:
        module = api_app(api, image_of(test_app_image), **{"environmental-variables": [{"name": "GREETING"}]})
        dep_id = api_deploy(api, module)
        assert api.put(dep_id, json={"module": {"content": {"environmental-variables": [
            {"name": "GREETING", "value": "before"}]}}}).status_code == 200
    held = []  # the page's second read of the deployment, answered with what it read, but only when we say
    page.route(f"**/api/{dep_id}", lambda route: held.append((route, route.fetch())))
    login(page, name, password)
    page.goto(f"/ui/deployments/{dep_id.split('/')[1]}")
    value = page.locator('#env [data-env="GREETING"] .value')
    expect(value).to_have_text("before")
    page.wait_for_function("() => document.getElementById('live-text').textContent === 'live'")
    for _ in range(100):  # the read goes out as the stream opens; its handler runs while we wait here
        if held:
            break
        page.wait_for_timeout(20)
    assert len(held) == 1 and held[0][1].json()["module"]["content"]["environmental-variables"][0]["value"] == "before"
    with user_client(ui_server, name, password) as api:
        assert api.put(dep_id, json={"module": {"content": {"environmental-variables": [
            {"name": "GREETING", "value": "after"}]}}}).status_code == 200
    expect(value).to_have_text("after")  # from the stream
    rows = page.evaluate_handle("() => document.getElementById('env').firstElementChild")
    route, response = held[0]
    route.fulfill(response=response)
    # the read's answer is applied (the rows are drawn again), and the streamed value stays
    page.wait_for_function("row => !row.isConnected", arg=rows)
    expect(value).to_have_text("after")
