"""The real nuvla-api 3.0.9 client (HATEOAS family) against a live server, on SQLite and PostgreSQL.

3.0.9 is what images with Python 3.7/3.8 get from a bare ``pip install nuvla-api``. It has its own venv
(pinned requests 2.27.1), so ``old_client_script.py`` runs in a subprocess with that interpreter, named by
``DOCKYARD_TEST_OLD_CLIENT_PYTHON`` (``scripts/test`` sets it up); it prints a JSON report, checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .helpers import DOC_TYPE, admin, create_user

SCRIPT = Path(__file__).with_name("old_client_script.py")


def old_client_python() -> str:
    python = os.environ.get("DOCKYARD_TEST_OLD_CLIENT_PYTHON")
    if not python:
        pytest.fail("DOCKYARD_TEST_OLD_CLIENT_PYTHON is not set: run the suite with scripts/test, or make a venv "
                    "with nuvla-api==3.0.9 and point the variable at its python", pytrace=False)
    if not os.access(python, os.X_OK):
        pytest.fail(f"DOCKYARD_TEST_OLD_CLIENT_PYTHON={python} is not an executable interpreter", pytrace=False)
    return python


@pytest.fixture(scope="module")
def report_and_user(live_server, tmp_path_factory):
    python = old_client_python()
    root = admin(live_server)
    uid, username, password = create_user(root)
    home = tmp_path_factory.mktemp("old-client-home")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "NUVLA_USERNAME": username, "NUVLA_PASSWORD": password}
    proc = subprocess.run([python, str(SCRIPT), live_server.endpoint], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.stdout.strip(), f"the script printed nothing; stderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert "crash" not in report, report["crash"]
    assert proc.returncode == 0, proc.stderr
    return report, uid, root


@pytest.fixture(scope="module")
def steps(report_and_user):
    return report_and_user[0]["steps"]


def test_it_is_the_old_client(report_and_user):
    report = report_and_user[0]
    assert report["client-version"] == "3.0.9"
    # the HATEOAS family reads the cloud entry point once per Api instance (two log here), for the collections
    assert report["requests"].count("GET /api/cloud-entry-point 200") == 2
    assert all(not r.endswith((" 500", " 204")) for r in report["requests"])


def test_login_password(steps):
    login = steps["login_password"]
    assert login["status"] == 201
    assert login["authenticated"] is True
    assert login["session"].startswith("session/")
    assert login["body"] == {"status": 201, "message": f"{login['session']} created",
                             "resource-id": login["session"]}
    assert login["requests"] == ["POST /api/session 201", "GET /api/cloud-entry-point 200",
                                 "PUT /api/session 200", "PUT /api/session 200"]


def test_add_follows_the_collections_add_operation(steps):
    add = steps["add"]
    rid = add["body"]["resource-id"]
    assert rid.startswith(DOC_TYPE + "/")
    assert add["body"] == {"status": 201, "message": f"{rid} created", "resource-id": rid}
    assert add["requests"] == [f"PUT /api/{DOC_TYPE} 200", f"POST /api/{DOC_TYPE} 201"]


def test_get(steps, report_and_user):
    uid = report_and_user[1]
    get, rid = steps["get"], steps["add"]["body"]["resource-id"]
    assert get["id"] == rid and get["resource-type"] == DOC_TYPE
    assert get["name"] == "first" and get["tags"] == [steps["add"]["tag"], "a"]
    assert get["operations"] == ["delete", "edit"]
    assert get["hrefs"] == {"edit": rid, "delete": rid}  # relative ids, as 3.x uses them verbatim
    assert get["owners"] == [uid]
    assert get["requests"] == [f"GET /api/{rid} 200"]
    assert steps["get_select"]["keys"] == ["id", "name", "operations"]


def test_edit_is_get_then_put_to_the_edit_href(steps):
    edit, rid = steps["edit"], steps["add"]["body"]["resource-id"]
    assert edit["id"] == rid
    assert edit["name"] == "renamed" and edit["description"] == "made by 3.0.9"
    assert edit["requests"] == [f"GET /api/{rid} 200", f"PUT /api/{rid} 200"]
    assert steps["edit_select_removal"] == {"has-description": False, "name": "renamed"}


def test_search_with_filter(steps):
    search = steps["search"]
    assert search["count"] == 3
    assert search["names"] == ["extra-0", "extra-1", "renamed"]
    assert search["ids-include-added"] is True
    assert search["keys"] == ["id", "name"]
    assert search["collection-operations"] == ["add", "bulk-delete"]
    assert search["requests"] == [f"PUT /api/{DOC_TYPE} 200"]
    counted = steps["search_filter_count"]
    assert counted["count"] == 2 and counted["resources"] == 0
    assert counted["buckets"]["b"] == 2 and len(counted["buckets"]) == 2
    assert steps["search_paging"] == {"names": ["extra-1", "extra-0"]}
    bad = steps["search_bad_filter"]
    assert bad["type"] == "NuvlaError" and bad["status"] == 400
    assert bad["reason"].startswith("Invalid CIMI filter.")


def test_operation_follows_the_action_href(steps):
    op, session = steps["operation"], steps["login_password"]["session"]
    assert op["session-operations"] == ["delete", "get-groups", "switch-group"]
    assert op["body"] == {"status": 200, "groups": []}
    assert op["requests"] == [f"GET /api/{session} 200", f"POST /api/{session}/get-groups 200"]
    # an action the resource does not offer is refused by the client itself, before any request
    assert steps["operation_unknown"] == {"type": "NuvlaResourceOperationNotAvailable",
                                          "operation": "no-such-action"}


def test_delete(steps, report_and_user):
    delete, rid = steps["delete"], steps["add"]["body"]["resource-id"]
    assert delete["body"] == {"status": 200, "message": f"{rid} deleted", "resource-id": rid}
    assert delete["requests"] == [f"GET /api/{rid} 200", f"DELETE /api/{rid} 200"]
    assert steps["get_deleted"] == {"type": "NuvlaError", "reason": f"{rid} not found", "status": 404}
    assert steps["delete_bulk"]["deleted"] == 2
    root = report_and_user[2]
    assert root.get(rid).status_code == 404


def test_api_key_made_through_the_credential_template_logs_in(steps, report_and_user):
    uid, root = report_and_user[1], report_and_user[2]
    made = steps["add_api_key"]
    assert made["status"] == 201 and made["has-secret"] is True
    assert made["requests"] == ["PUT /api/credential 200", "POST /api/credential 201"]
    assert root.get(made["key"]).json()["claims"]["identity"] == uid
    login = steps["login_apikey"]
    assert login["status"] == 201 and login["authenticated"] is True
    assert login["session"].startswith("session/") and login["session"] != steps["login_password"]["session"]
    assert login["user"] == uid
    assert login["requests"][0] == "POST /api/session 201"
    assert steps["login_apikey_wrong_secret"] == {"status": 403}


def test_logout(steps, report_and_user):
    root = report_and_user[2]
    key_session, password_session = steps["login_apikey"]["session"], steps["login_password"]["session"]
    assert steps["logout_apikey"]["authenticated"] is False
    assert steps["logout_apikey"]["requests"][:2] == ["PUT /api/session 200", f"DELETE /api/{key_session} 200"]
    assert steps["after_logout_add"] == {"type": "NuvlaError", "reason": "credentials required", "status": 403}
    assert steps["logout"]["authenticated"] is False
    assert steps["logout"]["requests"][:2] == ["PUT /api/session 200", f"DELETE /api/{password_session} 200"]
    for sid in (key_session, password_session):
        assert root.get(sid).status_code == 404
