"""Running the installed ``dockyard`` command as a user does: a subprocess with its own config directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..conftest import ADMIN_PASSWORD
from ..deployments.conftest import DEPLOYED, api_for

DOCKYARD = Path(sys.executable).parent / "dockyard"
DEP_ID = re.compile(r"deployment/[0-9a-f-]{36}")

APP_FILE = """\
path: {project}/app
subtype: component
name: app
content:
  image: {{image-name: app, repository: dockyard-test, tag: "2"}}
  ports:
    - target-port: 80
  environmental-variables:
    - {{name: GREETING, value: hello}}
  output-parameters:
    - {{name: token, description: set by the container}}
  urls: [[web, "http://${{hostname}}:${{tcp.80}}/"]]
"""


@dataclass
class Cli:
    """The command for one user, with its profiles in ``home``."""

    home: Path
    endpoint: str
    username: str = ""
    password: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(XDG_CONFIG_HOME=str(self.home), COLUMNS="200", **extra)
        return env

    def run(self, *args: str, input: str | None = None, timeout: float = 120, **env: str
            ) -> subprocess.CompletedProcess:
        assert DOCKYARD.exists(), f"the dockyard command is not installed at {DOCKYARD}"
        result = subprocess.run([str(DOCKYARD), *args], input=input, capture_output=True, text=True,
                                env=self.env(**env), timeout=timeout)
        for dep_id in DEP_ID.findall(result.stdout + result.stderr):
            DEPLOYED.add(dep_id)  # whatever it started is removed at the end of the session
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def follow(self, *args: str) -> subprocess.Popen:
        """A following command (``logs -f``, ``params --watch``), to be stopped with SIGINT as Ctrl-C stops it in
        a terminal. Its SIGINT is at its default even where the suite's own is ignored (a background job of a
        shell without job control ignores SIGINT, and its children inherit that), so that Python turns it into
        KeyboardInterrupt as in a terminal."""
        return subprocess.Popen([str(DOCKYARD), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def ok(self, *args: str, **kwargs) -> str:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result.stdout

    def login(self) -> None:
        self.ok("login", "--endpoint", self.endpoint, "--username", self.username, "--password-stdin",
                input=self.password + "\n")

    @property
    def profile_file(self) -> Path:
        return self.home / "dockyard" / "profiles.json"


def user_cli(server, tmp_path: Path, login: bool = True) -> tuple[Cli, object]:
    """A new user on the server, and the command for them (logged in unless told otherwise)."""
    username = f"cli-{uuid.uuid4().hex[:8]}"
    admin = api_for(server)
    admin.login_password("admin", ADMIN_PASSWORD)
    admin.add("user", {"template": {"href": "user-template/username-password", "username": username,
                                    "password": "pw-" + username}})
    api = api_for(server)
    assert api.login_password(username, "pw-" + username).status_code == 201
    cli = Cli(tmp_path / f"home-{uuid.uuid4().hex[:6]}", server.endpoint, username, "pw-" + username)
    if login:
        cli.login()
    return cli, api


def app_files(cli: Cli, tmp_path: Path) -> str:
    """A project and an app in it, created from files with the command; returns the app's path."""
    project = f"p{uuid.uuid4().hex[:8]}"
    (tmp_path / "project.yaml").write_text(f"path: {project}\nsubtype: project\n")
    (tmp_path / "app.yaml").write_text(APP_FILE.format(project=project))
    cli.ok("app", "create", "-f", str(tmp_path / "project.yaml"))
    cli.ok("app", "create", "-f", str(tmp_path / "app.yaml"))
    return f"{project}/app"
