"""`dockyard serve` as a user starts it: first-start admin password, readiness, clean shutdown, options."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from dockyard.cli.main import app

from ..conftest import free_port


@pytest.fixture(autouse=True)
def root_logger_put_back():
    """`serve` run in this process (CliRunner) sends the root logger to the runner's own stderr, which closes
    when the command returns: any later log call in this test process, from another test's server, would
    write to a closed stream ("--- Logging error ---" in a suite's output). The root logger is put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_serve(data_dir, *args, env_extra=None):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", "serve", "--port", str(port),
                             "--data-dir", str(data_dir), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(url + "/api/cloud-entry-point", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("not ready")


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, err


def login(url, username, password):
    return httpx.post(url + "/api/session", json={"template": {"href": "session-template/password",
                                                               "username": username, "password": password}})


def test_first_start_prints_a_generated_admin_password_once(tmp_path):
    proc, url = run_serve(tmp_path)
    code, err = stop(proc)
    assert code == 0
    match = re.search(r"Created user 'admin' with password: (\S+)", err)
    assert match, err
    password = match.group(1)
    proc, url = run_serve(tmp_path)
    try:
        assert login(url, "admin", password).status_code == 201
        assert login(url, "admin", "wrong").status_code == 403
    finally:
        code, err = stop(proc, signal.SIGINT)
    assert code == 0
    assert "Created user 'admin'" not in err


def test_admin_password_from_the_environment_and_database_option(tmp_path):
    db = tmp_path / "elsewhere.db"
    proc, url = run_serve(tmp_path / "data", "--database", f"sqlite:///{db}",
                          env_extra={"DOCKYARD_ADMIN_PASSWORD": "chosen-password"})
    try:
        assert login(url, "admin", "chosen-password").status_code == 201
        groups = {g for g in ("group/nuvla-admin", "group/nuvla-user", "group/nuvla-anon")}
        cookies = login(url, "admin", "chosen-password").cookies
        for gid in groups:
            assert httpx.get(f"{url}/api/{gid}", cookies=cookies).json()["id"] == gid
    finally:
        code, err = stop(proc)
    assert code == 0 and "Created user 'admin'" not in err
    assert db.exists()


def test_a_bad_database_url_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--database", "mysql://x/y"])
    assert result.exit_code == 2
    assert "unsupported database" in result.output


def test_a_bad_log_format_is_a_one_line_error(tmp_path):
    for args, env in ((["--log-format", "xml"], {}), ([], {"DOCKYARD_LOG_FORMAT": "xml"})):
        result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), *args], env=env)
        assert result.exit_code == 2
        assert "'xml' is not one of 'text', 'json'" in result.output
