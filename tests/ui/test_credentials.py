"""The credentials page: an API key's secret shown once (and copied), revoked keys that no longer log in,
engine credentials added through the API's template with its messages at the field, checked and deleted,
and secrets that never come back in a page."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
from playwright.sync_api import expect

from .conftest import login, screenshot, user_client


def api_key_login(server, key: str, secret: str) -> int:
    resp = httpx.post(server.endpoint + "/api/session", json={"template": {
        "href": "session-template/api-key", "key": key, "secret": secret}})
    return resp.status_code


def test_api_key_secret_is_shown_once_copied_and_revoked_key_no_longer_logs_in(page, new_user, ui_server):
    name, password = new_user()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui_server.endpoint)
    login(page, name, password)
    page.get_by_role("link", name="Credentials").click()
    expect(page.get_by_role("heading", name="Credentials", level=1)).to_be_visible()
    expect(page.get_by_text("You have no API keys.")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("ci pipeline")
    page.get_by_label("Description (optional)").first.fill("builds the images")
    page.get_by_label("Expires after").fill("2")
    page.get_by_role("button", name="Create key").click()

    panel = page.get_by_role("region", name="Your new API key")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("you will not see it again")
    key = page.get_by_test_id("new-key-id").text_content()
    secret = page.get_by_test_id("new-key-secret").text_content()
    assert re.fullmatch(r"credential/[0-9a-f-]{36}", key), key
    assert len(secret) >= 20
    expect(page.get_by_test_id("api-key").filter(has_text="ci pipeline")).to_contain_text(key)

    page.get_by_role("button", name="Copy the secret").click()
    expect(panel.get_by_role("status")).to_have_text("The secret is in your clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert api_key_login(ui_server, key, secret) == 201  # the secret shown is the key's
    screenshot(page, "credentials-new-key")

    page.reload()
    assert secret not in page.content()
    expect(page.get_by_role("region", name="Your new API key")).to_be_hidden()
    row = page.get_by_test_id("api-key").filter(has_text="ci pipeline")
    expect(row).to_contain_text("builds the images")
    expiry = datetime.strptime(row.locator("td").nth(3).text_content().strip(), "%Y-%m-%d %H:%M:%S")
    expected = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=2)
    assert abs((expiry - expected).total_seconds()) < 120, expiry
    screenshot(page, "credentials")

    # revoking asks first; cancelling keeps the key
    page.get_by_role("button", name="Revoke ci pipeline").click()
    dialog = page.get_by_role("dialog", name="Revoke this API key?")
    expect(dialog).to_contain_text("can no longer log in")
    dialog.get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    assert api_key_login(ui_server, key, secret) == 201

    page.get_by_role("button", name="Revoke ci pipeline").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(row).to_have_count(0)
    expect(page.locator("#page-status")).to_have_text("Revoked “ci pipeline”: it can no longer log in.")
    expect(page.get_by_text("You have no API keys.")).to_be_visible()
    assert api_key_login(ui_server, key, secret) in (401, 403)
    with user_client(ui_server, name, password) as me:
        assert me.get(key).status_code == 404


def test_api_key_form_shows_mistakes_and_the_apis_refusal_at_the_field(page, new_user, ui_server):
    name, password = new_user()
    login(page, name, password)
    page.goto("/ui/credentials")
    page.get_by_role("button", name="Create key").click()
    name_field = page.get_by_label("Name", exact=True)
    expect(name_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#key-name-error")).to_have_text(re.compile("Give the key a name"))
    expect(name_field).to_be_focused()

    name_field.fill("forever")
    ttl = page.get_by_label("Expires after")
    ttl.fill("99999999999")  # days: the API refuses an expiry past year 9999
    page.keyboard.press("Enter")
    alert = page.locator("#key-ttl-error")
    expect(alert).to_have_text(re.compile(r"template attribute 'ttl' puts the expiry past year 9999"))
    expect(alert).to_have_attribute("role", "alert")
    expect(ttl).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("region", name="Your new API key")).to_be_hidden()
    with user_client(ui_server, name, password) as me:
        assert me.get("credential", params={"filter": "subtype='api-key'"}).json()["count"] == 0
    screenshot(page, "credentials-key-error")


def test_engine_credential_added_with_messages_at_the_field_checked_deleted_and_key_never_shown(
        page, new_user, ui_server):
    name, password = new_user()
    private_key = f"-----BEGIN PRIVATE KEY-----\nsecret-{uuid.uuid4().hex}\n-----END PRIVATE KEY-----"
    login(page, name, password)
    page.goto("/ui/credentials")
    local = page.get_by_test_id("engine-credential").filter(has_text="Local Docker engine")
    expect(local).to_contain_text("shared with you (read only)")
    expect(local.get_by_role("button")).to_have_count(0)

    page.get_by_text("Add an engine credential").click()
    page.get_by_label("Engine", exact=True).select_option(label="A new engine…")
    page.get_by_label("Engine name").fill("lab engine")
    page.locator("#engine-new-endpoint").fill("ftp://127.0.0.1:9")
    page.get_by_label("Credential name").first.fill("lab tls")
    page.get_by_label("Client key (PEM; stored encrypted, never shown again)").fill(private_key)
    page.get_by_role("button", name="Add engine credential").click()
    expect(page.locator("#engine-new-endpoint-error")).to_have_text(
        re.compile("attribute 'endpoint' of a Docker engine must be unix:///path, tcp://host:port"))

    page.locator("#engine-new-endpoint").fill("tcp://127.0.0.1:9")
    page.get_by_role("button", name="Add engine credential").click()
    cert_error = page.locator("#engine-cert-error")
    expect(cert_error).to_have_text(re.compile("template attribute 'cert' is required for a remote engine"))
    expect(page.get_by_label("Client certificate (PEM)")).to_have_attribute("aria-invalid", "true")
    with user_client(ui_server, name, password) as me:  # the refused attempt left no engine behind
        assert me.get("infrastructure-service", params={"filter": "name='lab engine'"}).json()["count"] == 0

    page.get_by_label("Client certificate (PEM)").fill("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----")
    page.get_by_role("button", name="Add engine credential").click()
    expect(page.get_by_test_id("flash")).to_have_text(re.compile("Added “lab tls”"))
    row = page.get_by_test_id("engine-credential").filter(has_text="lab tls")
    expect(row).to_contain_text("lab engine")
    expect(row).to_contain_text("tcp://127.0.0.1:9")
    assert private_key.splitlines()[1] not in page.content()
    screenshot(page, "credentials-engine")

    row.get_by_role("button", name="Check lab tls").click()
    expect(row.get_by_role("alert")).to_have_text(re.compile("The check failed: the engine does not answer"),
                                                  timeout=60_000)
    expect(row.locator("[data-status]")).not_to_have_attribute("data-status", "VALID")
    expect(row).to_contain_text("checked ")
    assert private_key.splitlines()[1] not in page.content()

    row.get_by_role("button", name="Delete lab tls").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete credential").click()
    expect(row).to_have_count(0)
    with user_client(ui_server, name, password) as me:
        creds = me.get("credential", params={"filter": "name='lab tls'"}).json()
        assert creds["count"] == 0


def test_registry_credential_added_at_the_field_checked_deleted_and_password_never_shown(page, new_user, ui_server):
    name, password = new_user()
    secret = f"registry-secret-{uuid.uuid4().hex}"
    login(page, name, password)
    page.goto("/ui/credentials")
    page.get_by_text("Add a registry credential").click()
    page.get_by_label("Registry", exact=True).select_option(label="A new registry…")
    page.get_by_label("Registry name").fill("lab registry")
    page.locator("#registry-new-endpoint").fill("ftp://127.0.0.1:9/v2")
    page.locator("#registry-name").fill("lab pusher")
    page.locator("#registry-username").fill("pusher")
    page.locator("#registry-password").fill(secret)
    page.get_by_role("button", name="Add registry credential").click()
    expect(page.locator("#registry-new-endpoint-error")).to_have_text(
        re.compile("attribute 'endpoint' of a registry must be https://host"))

    page.locator("#registry-new-endpoint").fill("http://127.0.0.1:9")
    page.get_by_role("button", name="Add registry credential").click()
    expect(page.get_by_test_id("flash")).to_have_text(re.compile("Added “lab pusher”"))
    row = page.get_by_test_id("registry-credential").filter(has_text="lab pusher")
    expect(row).to_contain_text("lab registry")
    expect(row).to_contain_text("http://127.0.0.1:9")
    assert secret not in page.content()
    with user_client(ui_server, name, password) as me:
        found = me.get("credential", params={"filter": "name='lab pusher'"}).json()["resources"]
        assert [c["username"] for c in found] == ["pusher"] and "password" not in found[0]

    row.get_by_role("button", name="Check lab pusher").click()  # nothing listens there: UNKNOWN
    expect(row.get_by_role("alert")).to_have_text(
        re.compile("The check failed: Cannot reach the registry 127.0.0.1:9"), timeout=60_000)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "UNKNOWN")
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()

    row.get_by_role("button", name="Delete lab pusher").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete credential").click()
    expect(row).to_have_count(0)
