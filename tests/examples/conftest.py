"""The examples under ``examples/``, built with their own build scripts and launched with the command, as the
examples' README tells a user to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..cli.client_support import DEP_ID, Cli, user_cli
from ..deployments.conftest import docker_client, parameters, wait_ready  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NAMES = ("notebook", "data-web", "rstudio")


@pytest.fixture(scope="session")
def example_images():
    """Each example's image, built by its build.sh (a no-op once its tag holds the same files)."""
    for name in NAMES:
        result = subprocess.run([str(EXAMPLES / name / "build.sh")], capture_output=True, text=True,
                                env=dict(os.environ, PYTHON=sys.executable), timeout=1200)
        assert result.returncode == 0, (name, result.stdout, result.stderr)
    return NAMES


@dataclass
class Launcher:
    """One user's command, and a project of their own holding the examples' apps."""

    cli: Cli
    api: object
    project: str
    tmp: Path

    def create_app(self, name: str) -> str:
        """``dockyard app create -f examples/<name>/app.yaml``, in this user's project instead of
        ``examples`` (module paths are global); returns the app's path."""
        text = (EXAMPLES / name / "app.yaml").read_text()
        assert "path: examples/" in text
        app_file = self.tmp / f"{name}.yaml"
        app_file.write_text(text.replace("path: examples/", f"path: {self.project}/"))
        self.cli.ok("app", "create", "-f", str(app_file))
        return f"{self.project}/{name}"

    def deploy(self, app: str, *args: str) -> tuple[str, str]:
        """``dockyard deploy APP ... --wait``, then until the deployment is ready (its app's readiness
        checks passed): the deployment's id and what the command printed."""
        output = self.cli.ok("deploy", app, *args, "--wait")
        dep_id = DEP_ID.findall(output)[0]
        wait_ready(self.api, dep_id)
        return dep_id, output

    def output(self, dep_id: str, name: str) -> str | None:
        return parameters(self.api, dep_id).get(name)

    def urls(self, dep_id: str) -> dict[str, str]:
        """The deployment's URLs as ``dockyard ps`` shows them, addressed to 127.0.0.1."""
        for row in json.loads(self.cli.ok("ps", "--json")):
            if row["id"] == dep_id:
                return {u["label"]: u["url"].replace("//localhost:", "//127.0.0.1:") for u in row["urls"]}
        raise AssertionError(f"{dep_id} is not listed by dockyard ps")


@pytest.fixture
def launcher(sqlite_server, tmp_path, example_images):
    cli, api = user_cli(sqlite_server, tmp_path)
    project_file = tmp_path / "project.yaml"
    project = f"examples-{uuid.uuid4().hex[:8]}"
    project_file.write_text((EXAMPLES / "project.yaml").read_text().replace("path: examples", f"path: {project}"))
    cli.ok("app", "create", "-f", str(project_file))
    launched = Launcher(cli, api, project, tmp_path)
    yield launched
    deployments = [row["id"] for row in json.loads(cli.ok("ps", "--all", "--json"))]
    if deployments:
        cli.run("rm", "--force", *deployments)
