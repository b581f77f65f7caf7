"""Logging in and out, the header (who, which group), and the root URL."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from .conftest import LAPTOP, PHONE, admin_client, login, screenshot, user_client

COOKIE = "com.sixsq.nuvla.cookie"
# a select's width as laid out, and the width it takes when nothing narrows it (its longest option, whole)
NATURAL_WIDTH = """s => { const free = s.cloneNode(true);
    free.removeAttribute("id");
    free.style.cssText = "position: absolute; visibility: hidden; max-width: none; width: auto; flex: none";
    s.parentElement.append(free);
    const widths = [s.getBoundingClientRect().width, free.getBoundingClientRect().width];
    free.remove();
    return widths; }"""


def test_root_sends_a_browser_to_the_login_page(page, ui_server):
    page.goto("/")
    expect(page).to_have_url(f"{ui_server.endpoint}/ui/login?next=/ui/apps")
    expect(page.get_by_role("heading", name="Log in to Dockyard")).to_be_visible()
    screenshot(page, "login")


def test_other_paths_keep_nuvlas_redirect(ui_server):
    """Only / and /ui/... are the UI's: anything else outside /api still redirects as Nuvla does."""
    for method, path in (("GET", "/elsewhere"), ("POST", "/"), ("GET", "/api")):
        resp = httpx.request(method, ui_server.endpoint + path)
        assert (resp.status_code, resp.headers["location"]) == (302, "/api/cloud-entry-point"), (method, path)


def test_wrong_password_shows_an_error_and_sets_no_session(page, new_user):
    name, password = new_user()
    page.goto("/ui/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password + "-wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    assert [c for c in page.context.cookies() if c["name"] == COOKIE] == []
    expect(page.get_by_label("Username")).to_have_value(name)  # kept for the next try
    screenshot(page, "login-error")  # while the error shows
    page.goto("/ui/deployments")
    assert "/ui/login" in page.url


def test_login_shows_who_and_logout_ends_the_session(page, new_user, ui_server):
    name, password = new_user()
    page.goto("/ui/deployments")
    assert "/ui/login?next=/ui/deployments" in page.url
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{ui_server.endpoint}/ui/deployments")  # back where they were going
    expect(page.get_by_test_id("current-user")).to_have_text(f"Signed in as {name}")
    [cookie] = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"]
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Dockyard")).to_be_visible()
    # the session is gone on the server too: the old cookie no longer works
    resp = httpx.get(ui_server.endpoint + "/api/session", cookies={COOKIE: cookie["value"]})
    assert resp.json()["count"] == 0


def test_group_switcher_changes_the_active_group(page, new_user, ui_server):
    name, password = new_user()
    with user_client(ui_server, name, password) as me:
        uid = me.get("session").json()["resources"][0]["user"]
    with admin_client(ui_server) as admin:
        group = f"team-{name}"
        resp = admin.post("group", json={"template": {"href": "group-template/generic", "group-identifier": group},
                                        "name": f"Team {name}"})
        assert resp.status_code == 201, resp.text
        gid = resp.json()["resource-id"]
        assert admin.put(gid, json={"users": [uid]}).status_code == 200
    login(page, name, password)
    switcher = page.get_by_label("Acting as")
    expect(switcher).to_have_value(uid)
    switcher.select_option(label=f"Team {name}")
    page.get_by_role("button", name="Switch").click()
    switcher = page.get_by_label("Acting as")
    expect(switcher).to_have_value(gid)
    # acting as the group, the switcher still names it and still offers the way back
    expect(switcher.locator("option:checked")).to_have_text(f"Team {name}")
    expect(switcher.locator("option")).to_have_text([f"{name} (personal)", f"Team {name}"])
    # and the names show whole, on a laptop and on a phone: the select is as wide as its longest option
    for size in (LAPTOP, PHONE):
        page.set_viewport_size(size)
        shown, needed = switcher.evaluate(NATURAL_WIDTH)
        assert shown >= needed - 0.5, f"the switcher is {shown:.0f} px wide at {size}, its names need {needed:.0f}"
        chosen = page.get_by_role("button", name="Switch").bounding_box()
        assert chosen["x"] + chosen["width"] <= size["width"]
    screenshot(page, "header-group")
