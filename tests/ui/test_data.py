"""The data pages: records found by metadata (key = value rows and a CIMI filter, with mistakes shown at the
field), a record's details, and a file uploaded with a progress bar and downloaded back byte for byte."""

from __future__ import annotations

import hashlib
import os
import re
import uuid

from playwright.sync_api import expect

from .conftest import login, screenshot, user_client


def make_records(server, name: str, password: str) -> str:
    """Three records under a prefix of their own: mission alpha (orbit 3), beta (orbit 7), alpha (orbit 7)."""
    prefix = "t" + uuid.uuid4().hex[:10]
    with user_client(server, name, password) as me:
        resp = me.post("data-record-key-prefix", json={"prefix": prefix, "uri": f"https://example.org/{prefix}"})
        assert resp.status_code == 201, resp.text
        for rec, mission, orbit in (("rec-a1", "alpha", 3), ("rec-b", "beta", 7), ("rec-a2", "alpha", 7)):
            resp = me.post("data-record", json={
                "name": rec, "description": f"pass {rec}", "infrastructure-service": "infrastructure-service/local-storage",
                f"{prefix}:mission": mission, f"{prefix}:orbit": orbit, f"{prefix}:site": {"station": "kiruna"}})
            assert resp.status_code == 201, resp.text
    return prefix


def names_listed(page) -> list[str]:
    return sorted(page.get_by_test_id("record").locator("td:first-child a").all_text_contents())


def test_records_filters_narrow_the_list_and_mistakes_show_at_the_field(page, new_user, ui_server):
    name, password = new_user()
    prefix = make_records(ui_server, name, password)
    other, other_pw = new_user()
    make_records(ui_server, other, other_pw)  # not shared: never listed
    login(page, name, password)
    page.get_by_role("link", name="Data").click()
    expect(page.get_by_test_id("records-count")).to_have_text("3 records found")
    assert names_listed(page) == ["rec-a1", "rec-a2", "rec-b"]

    page.get_by_label("Metadata key").fill(f"{prefix}:mission")
    page.get_by_label("Value").fill("alpha")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("records-count")).to_have_text("2 records found")
    assert names_listed(page) == ["rec-a1", "rec-a2"]

    page.get_by_role("button", name="Add a key").click()
    second = page.locator("[data-pair]").nth(1)
    expect(second.get_by_label("Metadata key")).to_be_focused()
    second.get_by_label("Metadata key").fill(f"{prefix}:orbit")
    second.get_by_label("Value").fill("7")  # a number in the record: matched as one
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("records-count")).to_have_text("1 record found")
    assert names_listed(page) == ["rec-a2"]
    screenshot(page, "data")

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Filter (CIMI, optional)").fill(f"{prefix}:mission='beta' or {prefix}:orbit<5")
    page.get_by_role("button", name="Search").click()
    assert names_listed(page) == ["rec-a1", "rec-b"]

    page.get_by_label("Filter (CIMI, optional)").fill(f"{prefix}:mission=")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#filter-error")).to_have_text(re.compile("^This filter cannot be read: unexpected end of filter; expected one of"))
    expect(page.get_by_label("Filter (CIMI, optional)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("record")).to_have_count(0)
    screenshot(page, "data-filter-error")

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Metadata key").fill("no such key!")
    page.get_by_label("Value").fill("x")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#key-0-error")).to_have_text(re.compile("is not a metadata key"))
    expect(page.get_by_label("Metadata key")).to_have_attribute("aria-invalid", "true")

    page.goto("/ui/data")
    page.get_by_role("link", name="rec-b").click()
    expect(page.get_by_role("heading", name="rec-b", level=1)).to_be_visible()
    facts = page.get_by_test_id("record-metadata")
    expect(facts).to_contain_text(f"{prefix}:mission")
    expect(facts).to_contain_text("beta")
    expect(facts).to_contain_text('{"station": "kiruna"}')
    screenshot(page, "data-record")


def test_upload_shows_progress_to_100_and_download_gives_the_same_bytes(page, new_user, ui_server, tmp_path):
    name, password = new_user()
    other, other_pw = new_user()
    taken = "taken-" + uuid.uuid4().hex[:8]
    with user_client(ui_server, other, other_pw) as them:  # their object makes the bucket theirs
        resp = them.post("data-object", json={"template": {"href": "data-object-template/generic", "bucket": taken,
                                                           "object": "x", "credential": "credential/local-storage"}})
        assert resp.status_code == 201, resp.text
    content = os.urandom(6 * 1024 * 1024 + 123)
    source = tmp_path / "survey 2024.bin"
    source.write_bytes(content)

    login(page, name, password)
    page.goto("/ui/data/objects")
    expect(page.get_by_text("No files yet.")).to_be_visible()
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#up-file-error")).to_have_text("Choose the file to upload.")

    page.get_by_label("File to upload").set_input_files(str(source))
    bucket = page.get_by_label("Bucket")
    default_bucket = bucket.input_value()
    bucket.fill(taken)
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#up-bucket-error")).to_have_text(re.compile(f"bucket '{taken}' .* belongs to another account"))
    expect(bucket).to_have_attribute("aria-invalid", "true")

    # slow the upload down so that the bar has time to move, and watch it move
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 3 * 1024 * 1024})
    page.evaluate("""() => { window.__seen = []; const bar = document.getElementById('up-progress');
                             setInterval(() => window.__seen.push(bar.value), 25); }""")
    bucket.fill(default_bucket)
    page.get_by_label("Description (optional)").fill("raw survey")
    page.get_by_role("button", name="Upload", exact=True).click()
    bar = page.get_by_role("progressbar", name="Upload progress")
    expect(bar).to_be_visible()
    expect(page.locator("#upload-done")).to_have_text(re.compile(r"Uploaded “survey 2024.bin”: 6.0 MiB, MD5 [0-9a-f]{32}"),
                                                       timeout=60_000)
    expect(bar).to_have_js_property("value", 100)
    expect(page.locator("#up-progress-text")).to_have_text("100% (6.0 MiB of 6.0 MiB)")
    seen = page.evaluate("window.__seen")
    assert any(0 < v < 100 for v in seen), seen  # it moved through the upload, not just jumped to the end
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    row = page.get_by_test_id("data-object").filter(has_text="survey 2024.bin")
    expect(row).to_contain_text("ready")
    expect(page.get_by_test_id("objects-count")).to_have_text("1 file")
    md5 = hashlib.md5(content).hexdigest()
    expect(page.locator("#upload-done")).to_contain_text(md5)
    screenshot(page, "data-objects-uploaded")

    with page.expect_download() as waiting:
        row.get_by_role("link", name="Download survey 2024.bin").click()
    download = waiting.value
    assert download.suggested_filename == "survey 2024.bin"
    assert pathlib_bytes(download.path()) == content

    page.reload()  # the list as the server renders it
    row = page.get_by_test_id("data-object").filter(has_text="survey 2024.bin")
    expect(row).to_contain_text("raw survey")
    expect(row).to_contain_text(f"{default_bucket}/survey 2024.bin")
    expect(row).to_contain_text("6.0 MiB")
    expect(page.get_by_role("progressbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel the upload")).to_be_hidden()
    with page.expect_download() as waiting:
        row.get_by_role("link", name="Download survey 2024.bin").click()
    assert pathlib_bytes(waiting.value.path()) == content
    with user_client(ui_server, name, password) as me:
        [doc] = me.get("data-object").json()["resources"]
        assert (doc["state"], doc["bytes"], doc["md5sum"]) == ("READY", len(content), md5)
    screenshot(page, "data-objects")


def pathlib_bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()
