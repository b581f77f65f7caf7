"""The README's walkthrough, run as written: its shell and Python blocks, in order, against a registry on
loopback. Only the placeholders change: the registry's address and user, the server's endpoint, the
passwords (the README asks for them), and the deployment's id."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..cli.client_support import DEP_ID, Cli
from ..conftest import ADMIN_PASSWORD, start_server, stop_server
from ..deployments.conftest import DEPLOYED, api_for, parameters, wait_ready
from .conftest import EXAMPLES, ROOT

HEADING = "## Walkthrough: your own image, from a private registry"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
README_REGISTRY = "registry.example.org:5000"
README_ENDPOINT = "http://127.0.0.1:8200"
JANE_PASSWORD = "a-long-password"


def walkthrough() -> list[tuple[str, str]]:
    """The section's code blocks, as (language, text)."""
    text = (ROOT / "README.md").read_text()
    assert HEADING in text, "the README has no walkthrough section"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return BLOCK.findall(section)


def credential_status(api, cred_id: str, timeout: float = 30.0) -> str | None:
    deadline = time.monotonic() + timeout
    while not api.get(cred_id).data.get("status") and time.monotonic() < deadline:
        time.sleep(0.1)
    return api.get(cred_id).data.get("status")


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """A server of its own: the walkthrough creates the 'examples' project, and module paths are global."""
    server = start_server(tmp_path_factory.mktemp("walkthrough-server"))
    yield server
    stop_server(server)


def test_the_readme_walkthrough_runs_as_written(fresh_server, private_registry, example_images, tmp_path,
                                                monkeypatch, docker_client):
    registry = private_registry
    admin = api_for(fresh_server)
    admin.login_password("admin", ADMIN_PASSWORD)
    admin.add("user", {"template": {"href": "user-template/username-password", "username": "jane",
                                    "password": JANE_PASSWORD}})
    cli = Cli(tmp_path / "home", fresh_server.endpoint, "jane", JANE_PASSWORD)
    cli.login()  # as the README's "Command line" section
    work = tmp_path / "work"  # a checkout's root, where my-rstudio.yaml is written
    work.mkdir()
    (work / "examples").symlink_to(EXAMPLES)
    env = cli.env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHON=sys.executable,
                  DOCKER_CONFIG=str(tmp_path / "docker"))  # `docker login` keeps its secret there
    pushed = f"{registry.address}/jane/rstudio:1"

    def sh(block: str, found: dict[str, str]) -> list[str]:
        outputs = []
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if not command:
                continue
            command = command.replace(README_REGISTRY, registry.address).replace("<id>", found.get("id", "<id>"))
            stdin = None
            if command.startswith("docker login"):
                command = command.replace("--username jane", f"--username {registry.username} --password-stdin")
                stdin = registry.password
            result = subprocess.run(command, shell=True, cwd=work, env=env, input=stdin, capture_output=True,
                                    text=True, timeout=600)
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            DEPLOYED.update(DEP_ID.findall(result.stdout))
            found.update({"id": m for m in DEP_ID.findall(result.stdout)[:1]})
            outputs.append(result.stdout)
        return outputs

    def python(block: str, namespace: dict) -> None:
        code = (block.replace(f"https://{README_REGISTRY}", registry.endpoint)
                .replace(README_REGISTRY, registry.address)
                .replace(README_ENDPOINT, fresh_server.endpoint)
                .replace('getpass("Dockyard password: ")', repr(JANE_PASSWORD))
                .replace('getpass("registry password: ")', repr(registry.password))
                .replace('"username": "jane"', f'"username": {registry.username!r}'))
        exec(compile(code, "README.md walkthrough", "exec"), namespace)

    blocks = walkthrough()
    assert [lang for lang, _ in blocks] == ["sh", "python", "sh"]
    monkeypatch.chdir(work)
    found: dict[str, str] = {}
    namespace: dict = {}
    try:
        sh(blocks[0][1], found)  # build, docker login, tag, push
        docker_client.images.remove(pushed)  # only that tag: the start must pull from the registry
        python(blocks[1][1], namespace)
        jane = namespace["jane"]
        assert credential_status(jane, namespace["credential"]) == "VALID"  # its check's job ran
        outputs = sh(blocks[2][1], found)

        dep_id = found["id"]
        doc = wait_ready(jane, dep_id)
        assert "pulled" in doc["phases"]
        password = parameters(jane, dep_id)["password"]
        assert f"password  {password}" in re.sub(r" +", "  ", outputs[-1])  # dockyard params shows it
        url = f"http://127.0.0.1:{parameters(jane, dep_id)['tcp.8787']}/"
        assert httpx.get(url, auth=("rstudio", password)).status_code == 200
        assert httpx.get(url, auth=("rstudio", password + "x")).status_code == 302
        assert docker_client.images.get(pushed)  # the engine pulled it with jane's credential
    finally:
        for dep_id in found.values():
            cli.run("rm", "--force", dep_id)
        try:
            docker_client.images.remove(pushed)
        except Exception:  # never pulled, or still used by a container being removed
            pass
