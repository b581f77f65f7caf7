"""`dockyard deploy --wait` in a real terminal: tmux, 80 columns, as a user watching it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

from ..deployments.conftest import docker_client, images  # noqa: F401  (fixtures: the test app's image)
from ..deployments.conftest import DEPLOYED, parameters
from .client_support import DEP_ID, DOCKYARD, app_files, user_cli

SCREEN_FILE = "/tmp/cli-deploy-wait-screen.txt"
PHASE_LINE = re.compile(r"^  ✓ (queued|claimed|pulled|created|started|ready) +\d\d:\d\d:\d\d\.\d{3} +\+\d+\.\d\ds$")
ESCAPE_TEXT = re.compile(r"\x1b|\^\[|\[\??\d+(;\d+)*[A-Za-z]")


class Tmux:
    """One tmux server of our own (its own socket), so nothing else's sessions are touched."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"dockyard-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              env=self.env).stdout

    def start(self) -> None:
        self("new-session", "-d", "-x", "80", "-y", "24", "-s", "cli", "bash --norc --noprofile")
        self("send-keys", "-t", "cli", "PS1='$ '; clear", "Enter")

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "cli")

    def stop(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, env=self.env)


def _done(screen: str) -> bool:
    return any(line.startswith("EXIT=") for line in screen.splitlines())


@pytest.mark.usefixtures("images")
def test_deploy_wait_renders_its_progress_cleanly_in_80_columns(sqlite_server, tmp_path):
    assert shutil.which("tmux"), "tmux is needed (scripts/test installs it)"
    cli, api = user_cli(sqlite_server, tmp_path)
    path = app_files(cli, tmp_path)
    env = cli.env(PATH=f"{DOCKYARD.parent}:{os.environ['PATH']}", TERM="xterm-256color")
    env.pop("COLUMNS")
    tmux = Tmux(env)
    tmux.start()
    frames = []
    try:
        tmux("send-keys", "-t", "cli", f'dockyard deploy {path} --wait; echo "EXIT"=$?', "Enter")
        deadline = time.monotonic() + 120
        while not _done(screen := tmux.screen()) and time.monotonic() < deadline:
            frames.append(screen)
            time.sleep(0.05)
        final = screen
    finally:
        tmux.stop()
    with open(SCREEN_FILE, "w", encoding="utf-8") as handle:
        handle.write(final)

    lines = [line.rstrip() for line in final.splitlines()]
    assert "EXIT=0" in lines, final
    dep_id = DEP_ID.search(final).group(0)
    DEPLOYED.add(dep_id)
    start = lines.index(f"Starting {dep_id}")
    phases = lines[start + 1:start + 7]
    assert [PHASE_LINE.match(line).group(1) for line in phases] == \
        ["queued", "claimed", "pulled", "created", "started", "ready"], final
    port = parameters(api, dep_id)["tcp.80"]
    assert lines[start + 7:start + 11] == [f"{dep_id} is STARTED", f"  web: http://localhost:{port}/",
                                           "  token = (not set yet)", "EXIT=0"], final
    assert not ESCAPE_TEXT.search(final), final
    assert "waiting for" not in final  # the spinner is gone once it is done
    # while it ran: one spinner line at most, below the phases shown so far, never a line cut in two
    for frame in frames:
        shown = [line.rstrip() for line in frame.splitlines()]
        assert sum("waiting for" in line for line in shown) <= 1, frame
        assert not ESCAPE_TEXT.search(frame), frame
        for line in shown:
            assert len(line) <= 80
            if "✓" in line:
                assert PHASE_LINE.match(line), frame
    assert any("waiting for" in frame for frame in frames) or len(frames) < 3
