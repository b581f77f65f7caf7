"""The client side of `dockyard`, run as installed, against a live server and the real Docker engine."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import time
import uuid

import httpx
import pytest

from ..deployments.conftest import docker_client, images  # noqa: F401  (fixtures: the test app's image)
from ..deployments.conftest import DEPLOYED, http_get, parameters
from .client_support import DEP_ID, DOCKYARD, Cli, app_files, user_cli


def test_login_whoami_logout_keep_the_session_in_a_private_profile(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    profile = cli.profile_file
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert stat.S_IMODE(profile.parent.stat().st_mode) == 0o700
    assert cli.password not in profile.read_text()
    who = json.loads(cli.ok("whoami", "--json"))
    assert who["username"] == cli.username and who["endpoint"] == sqlite_server.endpoint
    assert who["profile"] == "default" and who["method"] == "password"

    assert "Logged out" in cli.ok("logout")
    result = cli.run("whoami")
    assert result.returncode == 4 and result.stderr.startswith("Error: not logged in")
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600  # rewritten, still private


def test_a_wrong_password_is_refused_with_the_servers_message(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path, login=False)
    result = cli.run("login", "--endpoint", cli.endpoint, "--username", cli.username, "--password-stdin",
                     input="not-the-password\n")
    assert result.returncode == 4
    assert result.stderr == f"Error: invalid credentials for '{cli.username}'\n"
    assert not cli.profile_file.exists()


def test_an_unreachable_endpoint_and_no_login_are_one_line_errors(sqlite_server, tmp_path):
    cli = Cli(tmp_path / "home", sqlite_server.endpoint)
    result = cli.run("ps")
    assert result.returncode == 4 and result.stderr == "Error: not logged in: run `dockyard login`\n"
    result = cli.run("login", "--endpoint", "http://127.0.0.1:9", "--username", "x", "--password-stdin",
                     input="x\n")
    assert result.returncode == 1 and result.stderr.startswith("Error: cannot reach http://127.0.0.1:9")
    assert len(result.stderr.splitlines()) == 1


def test_a_bad_app_file_names_the_line_and_the_field_and_sends_nothing(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    project = f"p{uuid.uuid4().hex[:8]}"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"""\
path: {project}/bad
subtype: component
content:
  image:
    tag: "1"
  ports:
    - target-port: http
  urls: [[web]]
  colour: blue
""")
    result = cli.run("app", "create", "-f", str(bad))
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: bad.yaml:4: content.image.image-name: is required".replace("bad.yaml", str(bad))
    assert f"{bad}:7: content.ports[0].target-port: must be an integer, not 'http'" in lines
    assert f"{bad}:8: content.urls[0]: must have at least 2 item(s)" in lines
    assert any(line.startswith(f"{bad}:9: content.colour: unknown attribute") for line in lines)
    assert api.search("module", filter=f"path^='{project}'").count == 0

    broken = tmp_path / "broken.yaml"
    broken.write_text("path: x\ncontent: [unclosed\n")
    result = cli.run("app", "create", "-f", str(broken))
    assert result.returncode == 1 and result.stderr.startswith(f"Error: {broken}:3:1: not valid YAML")


def test_apps_from_files_list_show_edit_and_versions(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    listed = json.loads(cli.ok("app", "list", "--json"))
    assert [a["path"] for a in listed] == [path.split("/")[0], path]
    app_id = listed[1]["id"]
    assert listed[1]["versions"] == 1 and listed[1]["subtype"] == "component"

    shown = cli.ok("app", "show", path)
    assert "image:     dockyard-test/app:2" in shown and "urls:      web http://${hostname}:${tcp.80}/" in shown
    edited = tmp_path / "app.yaml"
    edited.write_text(edited.read_text().replace("value: hello", "value: bonjour"))
    assert cli.ok("app", "edit", app_id.split("/")[1][:8], "-f", str(edited), "-m", "in French").strip() == \
        f"Edited {app_id} (version 1)"
    versions = json.loads(cli.ok("app", "versions", path, "--json"))
    assert [(v["version"], v["commit"]) for v in versions] == [(0, None), (1, "in French")]
    assert json.loads(cli.ok("app", "show", f"{app_id}_0", "--json"))["content"]["environmental-variables"] == \
        [{"name": "GREETING", "value": "hello"}]
    assert api.get(app_id).data["content"]["environmental-variables"] == [{"name": "GREETING", "value": "bonjour"}]
    result = cli.run("app", "show", "no-such/app")
    assert result.returncode == 3 and "no app 'no-such/app'" in result.stderr


@pytest.mark.usefixtures("images")
def test_deploy_wait_then_params_logs_stop_and_rm(live_server, tmp_path):
    cli, api = user_cli(live_server, tmp_path)
    path = app_files(cli, tmp_path)
    result = cli.run("deploy", path, "--env", "GREETING=hi", "--wait", "--timeout", "120")
    assert result.returncode == 0, result
    dep_id = DEP_ID.search(result.stdout).group(0)
    port = parameters(api, dep_id)["tcp.80"]
    assert f"  web: http://localhost:{port}/" in result.stdout.splitlines()
    assert "  token = (not set yet)" in result.stdout
    shown = [line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("✓")]
    assert shown == ["queued", "claimed", "pulled", "created", "started", "ready"]  # --wait ends at ready
    assert "GREETING=hi" in http_get(f"http://127.0.0.1:{port}/").text  # the deployment's own value

    params = {p["name"]: p["value"] for p in json.loads(cli.ok("params", dep_id[11:19], "--json"))}
    assert params["tcp.80"] == port and params["hostname"] == "localhost" and params["token"] is None
    [row] = [r for r in json.loads(cli.ok("ps", "--json")) if r["id"] == dep_id]
    assert row["state"] == "STARTED" and row["app"] == path
    assert row["urls"] == [{"label": "web", "url": f"http://localhost:{port}/"}]
    assert dep_id[11:19] in cli.ok("ps").splitlines()[1]  # the table shows short ids

    known = f"app of {dep_id} starting"
    assert known in cli.ok("logs", dep_id).splitlines()
    follow_until(cli, ["logs", "-f", dep_id[11:17]], known)

    result = cli.run("rm", dep_id)
    assert result.returncode == 1 and "stop it first, or use --force" in result.stderr
    assert cli.ok("stop", dep_id, "--wait").strip() == f"{dep_id} stopped"
    assert cli.ok("rm", dep_id).strip() == f"{dep_id} deleted"
    result = cli.run("show", dep_id)
    assert result.returncode == 3 and result.stderr == f"Error: no deployment matches '{dep_id[11:]}'\n"


def follow_until(cli: Cli, args: list[str], line: str, timeout: float = 30) -> None:
    """Run a following command until it prints ``line``, then interrupt it as Ctrl-C does: exit 0."""
    proc = cli.follow(*args)
    deadline = time.monotonic() + timeout
    try:
        for got in proc.stdout:
            if got.rstrip("\n") == line or time.monotonic() > deadline:
                break
        assert got.rstrip("\n") == line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.usefixtures("images")
def test_deploy_wait_exits_1_with_the_engines_reason(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    missing = tmp_path / "app.yaml"
    missing.write_text(missing.read_text().replace("image-name: app", "image-name: does-not-exist")
                       .replace(f"path: {path}", f"path: {path}-missing"))
    cli.ok("app", "create", "-f", str(missing))
    result = cli.run("deploy", f"{path}-missing", "--wait", "--timeout", "120")
    assert result.returncode == 1
    dep_id = DEP_ID.search(result.stdout).group(0)
    doc = api.get(dep_id).data
    assert doc["state"] == "ERROR" and "dockyard-test/does-not-exist:2" in doc["status-message"]
    assert result.stderr == f"Error: {dep_id} is ERROR: {doc['status-message']}\n"
    # the one deployment in ERROR shows in ps, and goes with rm --force
    assert [r["state"] for r in json.loads(cli.ok("ps", "--json"))] == ["ERROR"]
    cli.ok("rm", "--force", dep_id[11:19])
    assert json.loads(cli.ok("ps", "-a", "--json")) == []


@pytest.mark.usefixtures("images")
def test_ids_abbreviate_to_a_unique_prefix_and_an_ambiguous_one_is_refused(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    app_id = api.search("module", filter=f"path='{path}'").resources[0].id
    # 17 deployments: two of them share a first hex digit (not started: nothing runs)
    deps = [api.add("deployment", {"module": {"href": app_id}}).data["resource-id"] for _ in range(17)]
    DEPLOYED.update(deps)
    by_first: dict[str, list[str]] = {}
    for dep in deps:
        by_first.setdefault(dep[11], []).append(dep)
    digit, shared = next((d, ids) for d, ids in by_first.items() if len(ids) > 1)
    result = cli.run("show", digit)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: '{digit}' is ambiguous: {len(shared)} deployments match")
    for dep in shared:
        assert f"  {dep[11:19]}  {dep}" in result.stderr
    for dep in shared:
        assert json.loads(cli.ok("show", dep[11:23], "--json"))["id"] == dep
    assert len(json.loads(cli.ok("ps", "-a", "--json"))) == 17
    assert json.loads(cli.ok("ps", "--json")) == []  # none started
    result = cli.run("stop", "zz-not-an-id")
    assert result.returncode == 3 and "no deployment 'zz-not-an-id'" in result.stderr


def test_keys_create_list_revoke_and_log_in_with_one(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    created = json.loads(cli.ok("key", "create", "--name", "ci", "--json"))
    key, secret = created["key"], created["secret"]
    assert [(k["id"], k["name"]) for k in json.loads(cli.ok("key", "list", "--json"))] == [(key, "ci")]

    ci = Cli(tmp_path / "ci-home", cli.endpoint)
    ci.ok("login", "--endpoint", cli.endpoint, "--api-key", key, "--profile", "ci", DOCKYARD_API_SECRET=secret)
    assert json.loads(ci.ok("whoami", "--json"))["method"] == "api-key"
    assert secret not in ci.profile_file.read_text()
    assert stat.S_IMODE(ci.profile_file.stat().st_mode) == 0o600

    assert cli.ok("key", "revoke", key.split("/")[1][:8]).strip() == f"{key} revoked"
    assert json.loads(cli.ok("key", "list", "--json")) == []
    result = ci.run("whoami")  # the session made with the key ended with it
    assert result.returncode == 4 and "has ended" in result.stderr


def test_data_upload_records_download_round_trip(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "run1.bin"
    source.write_bytes(payload)
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    up = json.loads(cli.ok("data", "upload", str(source), "--bucket", bucket, "--meta", "mission=galileo",
                           "--json"))
    assert up["bytes"] == len(payload) and up["bucket"] == bucket
    [record] = json.loads(cli.ok("data", "records", "--filter", f"data:bucket='{bucket}'", "--json"))
    assert record["id"] == up["record"] and record["mission"] == "galileo"
    assert record["data:object"] == "run1.bin" and record["bytes"] == len(payload)
    assert json.loads(cli.ok("data", "records", "--filter", "mission='apollo'", "--json")) == []

    target = tmp_path / "back.bin"
    cli.ok("data", "download", up["object"].split("/")[1][:8], "-o", str(target))
    assert target.read_bytes() == payload
    via_record = tmp_path / "via-record.bin"
    cli.ok("data", "download", up["record"], "-o", str(via_record))
    assert via_record.read_bytes() == payload
    assert not list(tmp_path.glob("*.part"))


def test_search_any_collection(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    found = json.loads(cli.ok("search", "module", "--filter", f"path='{path}'", "--select", "id,path", "--json"))
    assert [d["path"] for d in found] == [path]
    table = cli.ok("search", "module", "--orderby", "path:desc", "--select", "path,subtype").splitlines()
    assert table[0].split() == ["PATH", "SUBTYPE"]
    assert [line.split() for line in table[1:]] == [[path, "component"], [path.split("/")[0], "project"]]
    paged = json.loads(cli.ok("search", "module", "--orderby", "path:asc", "--first", "2", "--last", "2", "--json"))
    assert [d["path"] for d in paged] == [path]
    result = cli.run("search", "module", "--filter", "path=")
    assert result.returncode == 1 and result.stderr.startswith("Error: Invalid CIMI filter")
    result = cli.run("search", "no-such-type")
    assert result.returncode == 3


def test_every_command_has_help_with_an_example():
    cli = Cli(DOCKYARD.parent, "http://127.0.0.1:9")
    commands = ["login", "logout", "whoami", "deploy", "ps", "show", "params", "logs", "stop", "start", "rm",
                "clone", "search", "app create", "app list", "app show", "app edit", "app versions",
                "key create", "key list", "key revoke", "data upload", "data records", "data download"]
    for command in commands:
        out = cli.ok(*command.split(), "--help")
        assert "Example: dockyard " + command.split()[0] in out, command
    assert "--show-completion" in cli.ok("--help")
    result = cli.run("deploy")
    assert result.returncode == 2


@pytest.mark.usefixtures("images")
def test_clone_and_start(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    dep_id = cli.ok("deploy", path, "--env", "GREETING=salut").strip()
    assert DEP_ID.fullmatch(dep_id)
    cli.ok("stop", dep_id, "--wait")
    clone_id = cli.ok("clone", dep_id).strip()
    assert DEP_ID.fullmatch(clone_id) and clone_id != dep_id
    result = cli.run("start", clone_id, "--wait")
    assert result.returncode == 0, result
    port = parameters(api, clone_id)["tcp.80"]
    assert f"web: http://localhost:{port}/" in result.stdout
    assert "GREETING=salut" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
    cli.ok("rm", "--force", clone_id, dep_id)


@pytest.mark.usefixtures("images")
def test_params_watch_prints_each_change_until_interrupted(sqlite_server, tmp_path):
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    dep_id = cli.ok("deploy", path, "--wait").splitlines()[0].split()[1]
    proc = cli.follow("params", dep_id[11:19], "--watch")
    try:
        first = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        assert sorted(first) == sorted(["hostname=localhost", f"tcp.80={parameters(api, dep_id)['tcp.80']}",
                                        "token="])
        [token] = api.search("deployment-parameter", filter=f"parent='{dep_id}' and name='token'").resources
        api.edit(token.id, {"value": "s3cret-token"})
        assert proc.stdout.readline().rstrip("\n") == "token=s3cret-token"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # and the deployment shows the output parameter's value now
    assert "param:      token = s3cret-token" in cli.ok("show", dep_id).splitlines()
    cli.ok("rm", "--force", dep_id)


@pytest.mark.usefixtures("images")
def test_an_admin_sets_a_deployments_values_by_name_too(sqlite_server, tmp_path):
    from ..conftest import ADMIN_PASSWORD

    admin = Cli(tmp_path / "admin-home", sqlite_server.endpoint, "admin", ADMIN_PASSWORD)
    admin.login()
    path = app_files(admin, tmp_path)
    result = admin.run("deploy", path, "--env", "GREETING=from-admin", "--wait")
    assert result.returncode == 0, result
    dep_id = DEP_ID.search(result.stdout).group(0)
    port = re.search(r"web: http://localhost:(\d+)/", result.stdout).group(1)
    page = http_get(f"http://127.0.0.1:{port}/").text
    assert "GREETING=from-admin" in page.splitlines()
    admin.ok("rm", "--force", dep_id)
