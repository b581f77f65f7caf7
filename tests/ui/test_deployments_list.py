"""The deployment list on the real Docker engine: bulk stop and bulk delete of several deployments, where
the one in a state that refuses the action is reported by name with the API's reason, and the state badges
follow the engine without a reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import (api_app, api_deploy, image_of, login, mark_page, screenshot, still_same_page, user_client,
                       wait_state)


def short(dep_id: str) -> str:
    return dep_id.split("/")[1][:8]


def test_bulk_stop_and_delete_report_each_refusal_and_badges_follow_live(page, new_user, ui_server,
                                                                          test_app_image):
    name, password = new_user()
    with user_client(ui_server, name, password) as api:
        module = api_app(api, image_of(test_app_image))
        first, second = (api_deploy(api, module, start=True, name=f"running {i}") for i in (1, 2))
        idle = api_deploy(api, module, name="never started")  # CREATED: nothing to stop
        for dep_id in (first, second):
            wait_state(api, dep_id, "STARTED")
    login(page, name, password)
    page.goto("/ui/deployments")
    mark_page(page)
    count = page.get_by_role("status").first
    expect(count).to_have_text("3 deployments")

    def badge(dep_id):
        return page.locator(f'tr[data-id="{dep_id}"] [data-state]')

    expect(badge(first)).to_have_text("started")
    expect(badge(second)).to_have_text("started")
    expect(badge(idle)).to_have_text("created")
    stop = page.get_by_role("button", name=re.compile("^Stop selected"))
    expect(stop).to_be_disabled()  # nothing chosen yet

    page.get_by_label(f"Select running 1 ({short(first)})").check()
    page.get_by_label(f"Select never started ({short(idle)})").check()
    page.get_by_role("button", name="Stop selected (2)").click()
    expect(page.locator("#bulk-status")).to_have_text("Asked 1 to stop.")
    expect(page.locator("#bulk-error")).to_have_text(
        f"1 could not be stopped:\nnever started ({short(idle)}): Action stop cannot be called on {idle} in state CREATED!")
    # the engine's progress arrives by itself: stopping, then stopped
    expect(badge(first)).to_have_attribute("data-state", "STOPPED", timeout=30_000)
    expect(badge(first)).to_have_text("stopped")
    expect(badge(second)).to_have_text("started")
    expect(badge(idle)).to_have_text("created")
    assert still_same_page(page)
    screenshot(page, "deployments-bulk-stop")

    # another client stops the second one: its badge follows too
    with user_client(ui_server, name, password) as api:
        assert api.post(f"{second}/stop", json={}).status_code == 202
        expect(badge(second)).to_have_attribute("data-state", "STOPPED", timeout=30_000)
        assert api.post(f"{second}/start", json={}).status_code == 202
        expect(badge(second)).to_have_attribute("data-state", "STARTED", timeout=30_000)
        assert still_same_page(page)

        # delete all three: the started one is refused and stays listed
        page.get_by_label("Select every deployment on this page").check()
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Delete selected (3)").click()
        expect(page.locator("#bulk-status")).to_have_text("Deleted 2.")
        expect(page.locator("#bulk-error")).to_have_text(
            f"1 could not be deleted:\nrunning 2 ({short(second)}): Action delete cannot be called on {second} in state STARTED!")
        expect(page.locator("tr[data-id]")).to_have_count(1)
        expect(badge(second)).to_have_text("started")
        expect(count).to_have_text("1 deployment")
        expect(page.get_by_role("button", name="Delete selected (1)")).to_be_enabled()  # the refused one, still chosen
        assert still_same_page(page)
        screenshot(page, "deployments-bulk-delete")
        assert api.get(first).status_code == 404
        assert api.get(idle).status_code == 404
        assert api.get(second).json()["state"] == "STARTED"
        assert api.post(f"{second}/stop", json={}).status_code == 202
        wait_state(api, second, "STOPPED")
