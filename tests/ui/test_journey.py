"""The whole journey in a browser on the real Docker engine: create an app in the editor, launch it, watch
it start, see its URL become a link, an output parameter appear and its log, without reloading; stop it (the
log stays readable) and delete it. And what a second user does not see."""

from __future__ import annotations

import re

import docker
import httpx
import pytest
from playwright.sync_api import expect

from ..deployments.conftest import DEPLOYED
from ..deployments.images import app_image
from .conftest import login, mark_page, screenshot, still_same_page, user_client


@pytest.fixture(scope="module")
def image():
    client = docker.from_env()
    try:
        yield app_image(client)
    finally:
        client.close()


def create_app_in_editor(page, project: str, image: str) -> str:
    page.goto("/ui/apps")
    page.get_by_role("link", name="New app").click()
    page.get_by_label("Project", exact=True).fill(project)
    page.get_by_label("App name in the project").fill("web")
    page.get_by_label("Title").fill("Web test app")
    page.get_by_label("Description").fill("Serves its environment on port 80.")
    page.get_by_label("Image", exact=True).fill(image)
    page.get_by_role("button", name="Add a port").click()
    page.get_by_label("Container port").fill("80")
    page.get_by_role("button", name="Add a variable").click()
    page.get_by_label("Variable name").fill("GREETING")
    page.get_by_label("Required").check()
    page.get_by_role("button", name="Add an output parameter").click()
    page.get_by_label("Parameter name").fill("token")
    page.locator('[data-section="output-parameters"] [data-key="description"]').fill("set by the container")
    page.get_by_role("button", name="Add a URL").click()
    page.get_by_label("Label").fill("web")
    page.get_by_label("URL pattern").fill("http://${hostname}:${tcp.80}/")
    page.get_by_label("Commit message").fill("first version")
    screenshot(page, "app-editor")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="Web test app")).to_be_visible()
    return page.url.rsplit("/", 1)[1]


def test_editor_shows_the_apis_message_at_the_field(page, new_user, ui_server):
    name, password = new_user()
    login(page, name, password)
    page.goto("/ui/apps/new")
    page.get_by_label("Project", exact=True).fill("proj")
    page.get_by_label("App name in the project").fill("bad")
    page.get_by_label("Image", exact=True).fill("busybox")
    page.get_by_role("button", name="Add a port").click()
    page.get_by_label("Container port").fill("70000")
    page.get_by_role("button", name="Add a variable").click()
    page.get_by_label("Variable name").fill("NUVLA_MINE")
    page.get_by_role("button", name="Create app").click()
    port_row = page.locator('[data-section="ports"] [data-row]')
    expect(port_row.get_by_role("alert")).to_have_text("target-port must be at most 65535")
    expect(page.get_by_label("Container port")).to_have_attribute("aria-invalid", "true")
    env_row = page.locator('[data-section="environmental-variables"] [data-row]')
    expect(env_row.get_by_role("alert")).to_contain_text("must not start with NUVLA_")
    screenshot(page, "app-editor-errors")
    with user_client(ui_server, name, password) as api:  # nothing was stored
        assert api.get("module", params={"filter": "path='proj/bad'"}).json()["count"] == 0


def container_env(port: str) -> dict[str, str]:
    """The test app serves its environment on port 80."""
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
    return dict(line.split("=", 1) for line in page.splitlines() if "=" in line)


def set_output_as_the_container(server, dep_id: str, port: str, name: str, value: str) -> None:
    """What the container does with its own key: one PUT of its output parameter."""
    env = container_env(port)
    with httpx.Client(base_url=server.endpoint + "/api/", timeout=30) as key:
        resp = key.post("session", json={"template": {"href": "session-template/api-key",
                                                      "key": env["NUVLA_API_KEY"], "secret": env["NUVLA_API_SECRET"]}})
        assert resp.status_code == 201, resp.text
        found = key.get("deployment-parameter", params={"filter": f"parent='{dep_id}' and name='{name}'"}).json()
        [param] = found["resources"]
        assert key.put(param["id"], json={"value": value}).status_code == 200


def test_create_launch_watch_stop_delete(page, new_user, ui_server, image):
    name, password = new_user()
    login(page, name, password)
    create_app_in_editor(page, f"proj-{name}", image)
    expect(page.get_by_test_id("app-image")).to_have_text(image)
    expect(page.get_by_role("row", name=re.compile("first version"))).to_be_visible()
    screenshot(page, "app")

    page.get_by_role("button", name="Launch").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Target engine")).to_have_value("credential/local-docker")
    dialog.get_by_role("button", name="Launch").click()
    expect(dialog.get_by_text("GREETING is required: give it a value.")).to_be_visible()  # enforced
    dialog.get_by_label("GREETING (required)").fill("hello from the dialog")
    screenshot(page, "launch-dialog")
    dialog.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(r"/ui/deployments/[0-9a-f-]{36}$"))
    dep_id = "deployment/" + page.url.rsplit("/", 1)[1]
    DEPLOYED.add(dep_id)
    mark_page(page)

    # state, URL, output parameter and log: all without reloading
    expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "STARTED", timeout=60_000)
    link = page.locator("#urls").get_by_role("link")
    expect(link).to_have_attribute("href", re.compile(r"^http://localhost:\d+/$"))
    port = page.locator('[data-param="tcp.80"] .value').text_content()
    assert link.get_attribute("href") == f"http://localhost:{port}/"
    expect(page.locator('[data-param="token"] .value')).to_have_text("not set yet")
    assert container_env(port)["GREETING"] == "hello from the dialog"  # the value given at launch
    set_output_as_the_container(ui_server, dep_id, port, "token", "s3cr3t-token-42")
    expect(page.locator('[data-param="token"] .value')).to_have_text("s3cr3t-token-42")
    expect(page.locator("#log")).to_contain_text(f"app of {dep_id} starting")
    expect(page.locator("#timeline [data-phase=started]")).not_to_contain_text("not yet")
    expect(page.locator("#jobs")).to_contain_text("start deployment")
    expect(page.locator("#cpu-now")).to_have_text(re.compile(r"^\d+\.\d %$"), timeout=10_000)
    assert still_same_page(page)
    screenshot(page, "deployment-started")

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "STOPPED", timeout=60_000)
    # the container is gone, its log is not
    expect(page.locator("#log-note")).to_contain_text("the container was removed", timeout=10_000)
    expect(page.locator("#log")).to_contain_text(f"app of {dep_id} starting")
    expect(page.locator("#urls").get_by_role("link")).to_have_count(0)
    expect(page.locator("#cpu-now")).to_have_text("–")  # no stale figures once it stopped
    assert still_same_page(page)
    screenshot(page, "deployment-stopped")

    page.goto("/ui/deployments")
    expect(page.locator(f'tr[data-id="{dep_id}"] [data-state]')).to_have_text("stopped")
    screenshot(page, "deployments")
    page.goto(f"/ui/deployments/{dep_id.split('/')[1]}")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"/ui/deployments$"))
    expect(page.locator(f'tr[data-id="{dep_id}"]')).to_have_count(0)
    with user_client(ui_server, name, password) as api:
        assert api.get(dep_id).status_code == 404


def test_a_second_user_sees_none_of_the_first_users_apps_or_deployments(page, new_user, ui_server, image):
    first, first_pw = new_user("first")
    with user_client(ui_server, first, first_pw) as api:
        api.post("module", json={"path": f"own-{first}", "subtype": "project"})
        module = api.post("module", json={"path": f"own-{first}/secret-app", "subtype": "component", "name": "Secret app",
                                          "content": {"image": {"image-name": "app"}}}).json()["resource-id"]
        dep = api.post("deployment", json={"module": {"href": module}}).json()["resource-id"]
    second, second_pw = new_user("second")
    login(page, second, second_pw)
    page.goto("/ui/apps?kind=all")
    expect(page.get_by_role("status")).to_have_text("0 found")
    page.goto("/ui/deployments")
    expect(page.get_by_role("status")).to_have_text("0 deployments")
    expect(page.locator(f'tr[data-id="{dep}"]')).to_have_count(0)
    page.goto(f"/ui/deployments/{dep.split('/')[1]}")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.goto(f"/ui/apps/{module.split('/')[1]}")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("Secret app")).to_have_count(0)
    # and the first user does see them
    login(page, first, first_pw)
    page.goto("/ui/apps")
    expect(page.get_by_role("link", name="Secret app")).to_be_visible()
    screenshot(page, "apps")
