"""Drive the real nuvla-api 3.0.9 client (the HATEOAS family) against a server and print a JSON report.

Run by tests/api/test_old_client.py with the interpreter of a venv that has nuvla-api==3.0.9 installed
(not dockyard, not pytest): ``python old_client_script.py <endpoint>`` with ``NUVLA_USERNAME`` and
``NUVLA_PASSWORD`` in the environment. Version 3.0.9 reads the cloud-entry-point's collections, and
follows the ``operations`` hrefs of resources and collections for add, edit, delete and actions.

Each step records what the client returned; ``requests`` records every HTTP exchange, in order, as
``"<METHOD> <path> <status>"``, so the test can check the client's own request sequence.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from importlib.metadata import version
from urllib.parse import urlparse

from nuvla.api import Api, NuvlaError, NuvlaResourceOperationNotAvailable

DOC_TYPE = "infrastructure-service-group"


def logged_api(endpoint: str, log: list[str]) -> Api:
    api = Api(endpoint=endpoint, insecure=True, persist_cookie=False)
    send = api.session._request

    def recording(method, url, *args, **kwargs):
        response = send(method, url, *args, **kwargs)
        log.append(f"{method} {urlparse(url).path} {response.status_code}")
        return response

    api.session._request = recording
    return api


def error_of(call) -> dict:
    try:
        call()
    except NuvlaError as exc:
        return {"type": "NuvlaError", "reason": exc.reason,
                "status": exc.response.status_code if exc.response is not None else None}
    except NuvlaResourceOperationNotAvailable as exc:
        return {"type": "NuvlaResourceOperationNotAvailable", "operation": exc.operation}
    return {"type": None}


def mark(log: list[str]) -> int:
    return len(log)


def run(endpoint: str, username: str, password: str) -> dict:
    log: list[str] = []
    report: dict = {"client-version": version("nuvla-api"), "requests": log, "steps": {}}
    steps = report["steps"]
    api = logged_api(endpoint, log)

    start = mark(log)
    login = api.login_password(username, password)
    session_id = api.current_session()
    steps["login_password"] = {"status": login.status_code, "body": login.json(),
                               "authenticated": api.is_authenticated(), "session": session_id,
                               "requests": log[start:]}

    start = mark(log)
    tag = "old-client-" + os.urandom(4).hex()
    added = api.add(DOC_TYPE, {"name": "first", "description": "made by 3.0.9", "tags": [tag, "a"]})
    rid = added.data["resource-id"]
    steps["add"] = {"body": added.data, "tag": tag, "requests": log[start:]}

    start = mark(log)
    got = api.get(rid)
    steps["get"] = {"id": got.id, "resource-type": got.resource_type, "name": got.data.get("name"),
                    "tags": got.data.get("tags"), "operations": sorted(got.operations),
                    "hrefs": {rel: op["href"] for rel, op in got.operations.items()},
                    "owners": got.data.get("acl", {}).get("owners"), "requests": log[start:]}
    selected = api.get(rid, select="name")
    steps["get_select"] = {"keys": sorted(selected.data)}

    start = mark(log)
    edited = api.edit(rid, {"name": "renamed", "id": "ignored/x", "operations": []})
    steps["edit"] = {"id": edited.id, "name": edited.data.get("name"),
                     "description": edited.data.get("description"), "requests": log[start:]}
    removed = api.edit(rid, {}, select="description")
    steps["edit_select_removal"] = {"has-description": "description" in removed.data,
                                    "name": removed.data.get("name")}

    for i in range(2):
        api.add(DOC_TYPE, {"name": f"extra-{i}", "tags": [tag, "b"]})
    start = mark(log)
    found = api.search(DOC_TYPE, filter=f"tags='{tag}'", orderby="name:asc", select="id,name")
    steps["search"] = {"count": found.count, "names": [r.data.get("name") for r in found.resources],
                       "ids-include-added": rid in [r.id for r in found.resources],
                       "keys": sorted({k for r in found.resources for k in r.data}),
                       "collection-operations": sorted(found.operations), "requests": log[start:]}
    filtered = api.search(DOC_TYPE, filter=f"tags='{tag}' and tags='b'", last=0,
                          aggregation="terms:tags")
    steps["search_filter_count"] = {
        "count": filtered.count, "resources": len(filtered.resources),
        "buckets": {b["key"]: b["doc_count"] for b in filtered.data["aggregations"]["terms:tags"]["buckets"]}}
    steps["search_paging"] = {"names": [r.data["name"] for r in api.search(
        DOC_TYPE, filter=f"tags='{tag}'", orderby="name:desc", first=2, last=3).resources]}
    steps["search_bad_filter"] = error_of(lambda: api.search(DOC_TYPE, filter="name='x' and"))

    start = mark(log)
    session = api.get(session_id)
    groups = api.operation(session, "get-groups")
    steps["operation"] = {"session-operations": sorted(session.operations), "body": groups.data,
                          "requests": log[start:]}
    steps["operation_unknown"] = error_of(lambda: api.operation(session, "no-such-action"))

    start = mark(log)
    deleted = api.delete(rid)
    steps["delete"] = {"body": deleted.data, "requests": log[start:]}
    steps["get_deleted"] = error_of(lambda: api.get(rid))
    steps["delete_bulk"] = api.delete_bulk(DOC_TYPE, f"tags='{tag}'").data

    start = mark(log)
    created = api.add("credential", {"template": {"href": "credential-template/generate-api-key", "ttl": 0},
                                     "name": "old client key"})
    key, secret = created.data["resource-id"], created.data["secret-key"]
    steps["add_api_key"] = {"status": created.data["status"], "key": key,
                            "has-secret": isinstance(secret, str) and len(secret) > 0, "requests": log[start:]}

    keyed = logged_api(endpoint, log)
    start = mark(log)
    key_login = keyed.login_apikey(key, secret)
    key_session = keyed.current_session()
    steps["login_apikey"] = {"status": key_login.status_code, "authenticated": keyed.is_authenticated(),
                             "session": key_session, "user": keyed.get(key_session).data.get("user"),
                             "requests": log[start:]}
    steps["login_apikey_wrong_secret"] = {
        "status": logged_api(endpoint, []).login_apikey(key, secret + "x").status_code}

    start = mark(log)
    keyed.logout()
    steps["logout_apikey"] = {"authenticated": keyed.is_authenticated(), "requests": log[start:]}
    steps["after_logout_add"] = error_of(lambda: keyed.add(DOC_TYPE, {"name": "anonymous"}))

    start = mark(log)
    api.logout()
    steps["logout"] = {"authenticated": api.is_authenticated(), "requests": log[start:]}
    return report


def main() -> int:
    endpoint = sys.argv[1]
    try:
        report = run(endpoint, os.environ["NUVLA_USERNAME"], os.environ["NUVLA_PASSWORD"])
    except Exception:  # the test shows what broke, with the client's own traceback
        print(json.dumps({"crash": traceback.format_exc()}))
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
