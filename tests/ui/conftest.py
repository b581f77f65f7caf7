"""The web UI in a real browser: Playwright for Python driving Debian's Chromium, headless, against a live
``dockyard serve`` on SQLite with the real Docker engine.

Fixtures: ``ui_server`` (one server for the module's tests), ``browser`` (one Chromium for the session),
``page`` (a fresh browser context per test, 1366×768, its base URL the server's), ``new_user`` (makes a
user through the API and returns its name and password). Helpers: ``login(page, name, password)``,
``screenshot(page, name)`` (the page at 1366×768 and 390×844 into ``.artifacts/screenshots/``),
``mark_page``/``still_same_page`` (proof that something appeared without a reload).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ..conftest import ADMIN_PASSWORD, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("live-ui"))
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, ui_server) -> Iterator[Page]:
    context = browser.new_context(base_url=ui_server.endpoint, viewport=LAPTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def admin_client(server) -> contextlib.AbstractContextManager[httpx.Client]:
    return user_client(server, "admin", ADMIN_PASSWORD)


def make_user(server, prefix: str = "ui") -> tuple[str, str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    password = "pw-" + uuid.uuid4().hex
    with admin_client(server) as admin:
        resp = admin.post("user", json={"template": {"href": "user-template/username-password",
                                                     "username": name, "password": password}})
        assert resp.status_code == 201, resp.text
    return name, password


@contextlib.contextmanager
def user_client(server, name: str, password: str) -> Iterator[httpx.Client]:
    """The same user through the API (to check what the UI did, or set what a container would)."""
    with httpx.Client(base_url=server.endpoint + "/api/", timeout=30) as client:
        resp = client.post("session", json={"template": {"href": "session-template/password", "username": name,
                                                         "password": password}})
        assert resp.status_code == 201, resp.text
        yield client


@pytest.fixture
def new_user(ui_server):
    return lambda prefix="ui": make_user(ui_server, prefix)


def login(page: Page, name: str, password: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(name)


def screenshot(page: Page, name: str) -> None:
    """The page as a user sees it on a laptop and on a phone (full height), for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in (("1366x768", LAPTOP), ("390x844", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)  # let the layout settle
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    if before:
        page.set_viewport_size(before)


def mark_page(page: Page) -> None:
    """Tag this document: a reload or a navigation loses the tag (see still_same_page)."""
    page.evaluate("window.__dockyardMarker = 'not reloaded'")


def still_same_page(page: Page) -> bool:
    return page.evaluate("window.__dockyardMarker === 'not reloaded'")


# -- what several tests set up through the API --------------------------------------------------------

@pytest.fixture(scope="session")
def test_app_image() -> Iterator[str]:
    """The deployment tests' app (busybox: prints a line, serves its environment on port 80), built locally."""
    import docker

    from ..deployments.images import app_image

    client = docker.from_env()
    try:
        yield app_image(client)
    finally:
        client.close()


def api_app(api: httpx.Client, image: dict, name: str = "Test app", **content) -> str:
    """An app (a component in a project of its own) made through the API; returns its module id."""
    project = f"p-{uuid.uuid4().hex[:8]}"
    resp = api.post("module", json={"path": project, "subtype": "project"})
    assert resp.status_code == 201, resp.text
    resp = api.post("module", json={"path": f"{project}/app", "subtype": "component", "name": name,
                                    "content": {"image": image, "architectures": ["amd64"], **content}})
    assert resp.status_code == 201, resp.text
    return resp.json()["resource-id"]


def image_of(tag: str) -> dict:
    """``repository/name:tag`` as a module's image."""
    ref, _, version = tag.rpartition(":")
    repository, _, name = ref.rpartition("/")
    return {"image-name": name, "tag": version, **({"repository": repository} if repository else {})}


def api_deploy(api: httpx.Client, module: str, start: bool = False, **body) -> str:
    """A deployment of ``module`` (started when asked), remembered for the session's container clean-up."""
    from ..deployments.conftest import DEPLOYED

    resp = api.post("deployment", json={"module": {"href": module}, **body})
    assert resp.status_code == 201, resp.text
    dep_id = resp.json()["resource-id"]
    DEPLOYED.add(dep_id)
    if start:
        resp = api.post(f"{dep_id}/start", json={})
        assert resp.status_code == 202, resp.text
    return dep_id


def wait_state(api: httpx.Client, dep_id: str, state: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    doc = api.get(dep_id).json()
    while doc.get("state") != state and time.monotonic() < deadline:
        time.sleep(0.05)
        doc = api.get(dep_id).json()
    assert doc.get("state") == state, f"{dep_id} is {doc.get('state')}: {doc.get('status-message')}"
    return doc
