"""Each example of ``examples/``, built by its build script, created from its app.yaml and launched with
``dockyard deploy --wait`` on the real engine, then checked from outside as its README promises."""

from __future__ import annotations

import json
import os
import re

import httpx
from httpx import get



def test_notebook_answers_with_the_token_it_published_and_refuses_without_it(launcher, tmp_path):
    bucket = f"ex-{os.urandom(4).hex()}"
    (tmp_path / "orbit.txt").write_bytes(b"E14 orbit 1\n")
    record = json.loads(launcher.cli.ok("data", "upload", str(tmp_path / "orbit.txt"), "--bucket", bucket,
                                        "--json"))["record"]
    app = launcher.create_app("notebook")
    dep_id, printed = launcher.deploy(app, "--data", record)
    assert f"{dep_id} is STARTED" in printed
    token = launcher.output(dep_id, "jupyter-token")  # set before it was ready
    assert re.fullmatch(r"[a-z0-9]{24}", token)  # the seed's token: 24 of a-z0-9

    url = launcher.urls(dep_id)["notebook"]  # the app's pattern, filled in with the port and the token
    assert url.endswith(f"/?token={token}")
    opened = get(url)
    assert opened.status_code == 200 and 'href="data/"' in opened.text
    assert opened.cookies.get("notebook-token") == token  # links work without the token from then on
    base = url.split("?")[0]
    assert get(base).status_code == 403
    assert get(base + "?token=" + "x" * 24).status_code == 403
    data = get(base + "data/", headers={"Authorization": f"token {token}"})
    assert data.status_code == 200 and f"{bucket}__orbit.txt" in data.text  # the seed's link per record
    linked = get(f"{base}data/{bucket}__orbit.txt", headers={"Cookie": f"notebook-token={token}"})
    assert linked.content == b"E14 orbit 1\n"


def test_data_web_serves_the_bytes_of_the_records_selected_at_launch(launcher, tmp_path):
    bucket = f"ex-{os.urandom(4).hex()}"
    objects = {"run1/table.csv": b"t,value\n1,2.5\n", "images/blob.bin": os.urandom(70_000)}
    records = []
    for name, data in objects.items():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(data)
        made = json.loads(launcher.cli.ok("data", "upload", str(path), "--bucket", bucket, "--object", name,
                                          "--meta", "mission=example", "--json"))
        records.append(made["record"])
    app = launcher.create_app("data-web")
    dep_id, _ = launcher.deploy(app, *[arg for record in records for arg in ("--data", record)])

    root = launcher.urls(dep_id)["data"]
    for name, data in objects.items():
        served = get(f"{root}{bucket}/{name}")
        assert served.status_code == 200 and served.content == data, name
    index = get(root).text
    assert all(f'href="/{bucket}/{name}"' in index for name in objects)


def test_data_web_with_no_data_serves_an_empty_index(launcher):
    dep_id, _ = launcher.deploy(launcher.create_app("data-web"))
    index = get(launcher.urls(dep_id)["data"])
    assert index.status_code == 200 and "<li>" not in index.text


def test_rstudio_requires_the_password_it_published(launcher):
    app = launcher.create_app("rstudio")
    dep_id, _ = launcher.deploy(app)
    password = launcher.output(dep_id, "password")  # set before it was ready
    assert len(password) >= 20
    url = launcher.urls(dep_id)["rstudio"]

    unsigned = get(url, follow_redirects=False)
    assert unsigned.status_code == 302 and unsigned.headers["location"] == "/auth-sign-in"
    with httpx.Client(base_url=url, timeout=5) as browser:
        refused = browser.post("/auth-do-sign-in", data={"username": "rstudio", "password": password + "x"})
        assert refused.status_code == 401 and "Incorrect" in refused.text
        assert browser.get("/").status_code == 302
        signed = browser.post("/auth-do-sign-in", data={"username": "rstudio", "password": password})
        assert signed.status_code == 302 and "rstudio-session" in browser.cookies
        assert browser.get("/").status_code == 200 and "session of rstudio" in browser.get("/").text
    assert get(url, auth=("rstudio", password)).status_code == 200
    assert get(url, auth=("rstudio", "not-" + password), follow_redirects=False).status_code == 302
