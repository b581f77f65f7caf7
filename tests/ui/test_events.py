"""The events page: the user's own actions (and not another user's), newest first, narrowed by category,
resource, outcome and time, a page at a time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from .conftest import login, screenshot, user_client


def record(client, name: str) -> str:
    resp = client.post("data-record", json={"name": name, "infrastructure-service": "infrastructure-service/local-storage"})
    assert resp.status_code == 201, resp.text
    return resp.json()["resource-id"]


def test_events_show_own_actions_newest_first_and_filters_narrow_them(page, new_user, ui_server):
    name, password = new_user()
    other, other_pw = new_user()
    with user_client(ui_server, other, other_pw) as them:
        theirs = record(them, "their record")
    with user_client(ui_server, name, password) as me:
        mine = [record(me, f"mine {i}") for i in range(52)]
        key = me.post("credential", json={"template": {"href": "credential-template/generate-api-key"}}).json()
        assert me.delete(key["resource-id"]).status_code == 200
        refused = me.delete("credential/local-docker")  # shared with them, not theirs to delete
        assert refused.status_code == 403
        last = record(me, "the last one")

    login(page, name, password)
    page.get_by_role("link", name="Events").click()
    events = page.get_by_test_id("event")
    expect(page.get_by_test_id("events-count")).to_contain_text(re.compile(r"^\d+ events, page 1 of 2$"))
    expect(events).to_have_count(50)
    # newest first: logging in to this page, then the last record
    expect(events.first).to_contain_text(re.compile(r"Created\s*session/.*logging in", re.DOTALL))
    expect(events.nth(1)).to_contain_text(last)
    expect(events.nth(1)).to_contain_text("Created")
    expect(events.nth(1)).to_contain_text("you")
    expect(events.nth(1).get_by_role("link", name=last)).to_have_attribute(
        "href", "/ui/data/records/" + last.split("/")[1])
    assert theirs not in page.content()
    times = events.locator("td:first-child").all_text_contents()
    assert times == sorted(times, reverse=True)
    screenshot(page, "events")

    page.get_by_role("link", name="Older").click()
    expect(page.get_by_test_id("events-count")).to_contain_text("page 2 of 2")
    expect(events.filter(has_text=mine[0])).to_have_count(1)  # the oldest of them, on the second page
    assert theirs not in page.content()

    page.goto("/ui/events")
    page.get_by_label("Category").select_option(label="Deleted")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("events-count")).to_have_text("2 events")
    expect(events.filter(has_text=key["resource-id"])).to_contain_text("done")
    expect(events.filter(has_text="credential/local-docker")).to_contain_text("refused")

    page.get_by_label("Outcome").select_option(label="Refused or failed")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("events-count")).to_have_text("1 event")
    expect(events.first).to_contain_text("credential/local-docker")
    expect(events.first).to_contain_text("refused")

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Resource").fill("credential")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("events-count")).to_have_text("3 events")
    expect(events.filter(has_text="Created")).to_have_count(1)
    expect(events.filter(has_text="Deleted")).to_have_count(2)
    screenshot(page, "events-filtered")

    page.get_by_label("Resource").fill(last)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("events-count")).to_have_text("1 event")

    # time: the period after everything above has nothing; one that ends before it neither
    later = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    earlier = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("From (UTC)").fill(later)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("events-count")).to_have_text("0 events")
    expect(page.get_by_text("No events match.")).to_be_visible()
    page.get_by_label("From (UTC)").fill(earlier)
    page.get_by_label("To (UTC)").fill(later)
    page.get_by_role("button", name="Apply").click()
    expect(events).to_have_count(50)
    page.get_by_label("From (UTC)").fill(later)
    page.get_by_label("To (UTC)").fill(earlier)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#until-error")).to_have_text(re.compile("must come after"))
    expect(page.get_by_label("To (UTC)")).to_have_attribute("aria-invalid", "true")
    expect(events).to_have_count(0)
