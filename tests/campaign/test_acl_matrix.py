"""Who may do what to each kind of document: one table, checked case by case over HTTP against a live
server, on SQLite and on PostgreSQL.

The principals and documents are described in ``acl_world.py``. A row gives, for one operation on one
subject (a resource type, or ``type#variant``), what each principal gets:

* ``get``: ``acl`` (the whole document), ``data`` (without its ACL), ``meta`` (its metadata keys only), or an
  error status (an invisible document is 403, as Nuvla answers);
* ``search``: ``found`` (listed, and counted: filtered, count-only, aggregations), ``hidden`` (absent from
  all of these), or 403 (the collection may not be queried);
* ``edit``, ``delete`` and each action: the HTTP status.

Every registered type needs its rows, and every action of a type its row: adding either without saying
who may use it fails ``test_every_type_and_action_has_rows``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockyard.core.acl import METADATA_KEYS
from dockyard.resources.registry import all_types

from .acl_world import FACTORIES, PRINCIPALS, Doc, World

TABLE = """
                          owner  other  viewer editor admin  deployment anon
# a session is owned by itself; every search shows the caller's own session only, even an admin's
session
  get                     acl    403    403    403    acl    403    403
  search                  found  hidden hidden hidden hidden hidden hidden
  edit                    403    403    403    403    403    403    403
  delete                  200    403    403    403    200    403    403
  switch-group            200    403    403    403    200    403    403
  get-groups              200    403    403    403    200    403    403
user
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
# usernames: their user may see that they exist, only admins may list them
user-identifier
  get                     meta   403    403    403    acl    403    403
  search                  403    403    403    403    found  403    403
  edit                    403    403    403    403    403    403    403
  delete                  403    403    403    403    200    403    403
group
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
# group/nuvla-vpn: built-in groups are shown to users by name only, and cannot be deleted
group#builtin
  get                     acl    meta   meta   meta   acl    403    403
  search                  found  found  found  found  found  403    403
  edit                    200    403    403    403    200    403    403
  delete                  409    403    403    403    409    403    403
credential
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  check                   409    403    403    403    409    403    403
credential#engine
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  check                   202    403    403    403    202    403    403
# the started deployment's own key, as Nuvla makes it ({owners: admin, edit-acl: the deployment}), shown by
# name to the deployment's owner; a key may revoke itself, but has no credential searches (not a user)
credential#deployment-key
  get                     meta   403    data   data   acl    acl    403
  search                  found  hidden found  found  found  403    403
  edit                    403    403    403    200    200    200    403
  delete                  403    403    403    403    200    200    403
  check                   403    403    403    403    409    409    403
# the embedded object store's credential, shared with every user and deployment
credential#local-storage
  get                     acl    data   data   data   acl    data   403
  search                  found  found  found  found  found  403    403
  edit                    200    403    403    403    200    403    403
  delete                  200    403    403    403    200    403    403
  check                   409    403    403    403    409    403    403
infrastructure-service
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
infrastructure-service#local-engine
  get                     acl    data   data   data   acl    403    403
  search                  found  found  found  found  found  403    403
  edit                    200    403    403    403    200    403    403
  delete                  200    403    403    403    200    403    403
infrastructure-service-group
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
module
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  validate-docker-compose 409    403    403    403    409    403    403
# a compose application: its owner (and an admin) may have its file validated
module#application
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  validate-docker-compose 202    403    403    403    202    403    403
# an app's stored content: read through its module only
module-component
  get                     403    403    403    403    acl    403    403
  search                  403    403    403    403    found  403    403
  edit                    403    403    403    403    403    403    403
  delete                  403    403    403    403    200    403    403
module-application
  get                     403    403    403    403    acl    403    403
  search                  403    403    403    403    found  403    403
  edit                    403    403    403    403    403    403    403
  delete                  403    403    403    403    200    403    403
# created, not started (the deployment principal's key is another deployment's): manage is needed to act,
# the delete right to force-delete; edit-data alone gives no action
deployment
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  hidden 403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  start                   202    403    403    403    202    403    403
  stop                    409    403    403    403    409    403    403
  update                  409    403    403    403    409    403    403
  create-log              409    403    403    403    409    403    403
  clone                   201    403    403    403    201    403    403
  fetch-module            200    403    403    403    200    403    403
  force-delete            200    403    403    403    200    403    403
# the started deployment itself: its key reads it and nothing more
deployment#started
  get                     acl    403    data   data   acl    data   403
  search                  found  hidden found  found  found  found  403
  edit                    200    403    403    200    200    403    403
  delete                  409    403    403    403    409    403    403
  start                   409    403    403    403    409    403    403
  stop                    202    403    403    403    202    403    403
  update                  202    403    403    403    202    403    403
  create-log              201    403    403    403    201    403    403
  clone                   201    403    403    403    201    403    403
  fetch-module            200    403    403    403    200    403    403
  force-delete            200    403    403    403    200    403    403
# a parameter of the started deployment, whose key may set it (not delete it)
deployment-parameter
  get                     acl    403    data   data   acl    data   403
  search                  found  hidden found  found  found  found  403
  edit                    200    403    403    200    200    200    403
  delete                  200    403    403    403    200    403    403
deployment-parameter#other
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  hidden 403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
# a log of the started deployment: readable by its key, which may not search logs (not a user)
resource-log
  get                     acl    403    data   data   acl    data   403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  fetch                   202    403    403    403    202    403    403
# as a deployment's jobs: owned by admins, the user who asked may read and cancel it; QUEUED, so not deletable
job
  get                     data   403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    403    403    403    200    200    403    403
  delete                  403    403    403    403    409    403    403
  cancel                  200    403    403    403    200    403    403
# the audit event of the owner's add: shown to the owner, changed by nobody, deleted by admins
event
  get                     data   403    403    403    acl    403    403
  search                  found  hidden hidden hidden found  403    403
  edit                    403    403    403    403    403    403    403
  delete                  403    403    403    403    200    403    403
data-record
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  hidden 403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
# a record the started deployment was launched with: its key may read it
data-record#given
  get                     acl    403    data   data   acl    data   403
  search                  found  hidden found  found  found  found  403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
# key prefixes are a shared vocabulary, readable by every user and deployment
data-record-key-prefix
  get                     acl    data   data   data   acl    data   403
  search                  found  found  found  found  found  found  403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
data-set
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  403    403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
# NEW: only upload may be called yet
data-object
  get                     acl    403    data   data   acl    403    403
  search                  found  hidden found  found  found  hidden 403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  upload                  200    403    403    403    200    403    403
  ready                   409    403    403    403    409    403    403
  download                409    403    409    409    409    403    403
# READY, and given to the started deployment (through its record): everyone who reads it may download it
data-object#ready
  get                     acl    403    data   data   acl    data   403
  search                  found  hidden found  found  found  found  403
  edit                    200    403    403    200    200    403    403
  delete                  200    403    403    403    200    403    403
  upload                  409    403    403    403    409    403    403
  ready                   409    403    403    403    409    403    403
  download                303    403    303    303    303    303    403
"""

# templates are read by everyone and changed by nobody; their owner is the admin
TEMPLATE_ROWS = """
  get                     acl    data   data   data   acl    data   data
  search                  found  found  found  found  found  found  found
  edit                    403    403    403    403    403    403    403
  delete                  409    403    403    403    409    403    403
"""
TEMPLATES = [name for name in FACTORIES if name.endswith("-template")]

SUCCESS = frozenset({"200", "201", "202", "303"})
# operations that leave their document as it was, so the cases where they succeed can share it
KEEPS_DOCUMENT = frozenset({"edit", "get-groups", "check", "create-log", "clone", "fetch-module", "fetch",
                            "download"})
# what no answer may show, whoever asks (templates hold placeholders of these names, not secrets)
SECRETS = frozenset({"digest", "hash", "token-digest", "secret-key", "key", "password", "secret"})

ACTION_BODIES: dict[str, Callable[[World, Doc], Any]] = {
    "switch-group": lambda w, doc: {"claim": w.snapshot(doc.id)["user"]},
    "fetch-module": lambda w, doc: {"module-href": f"{w.module}_0"},
    "create-log": lambda w, doc: {"components": ["app"]},
}

# what an action needs of its (fresh) document before it can succeed
READY_FOR: dict[str, Callable[[World, Doc], Any]] = {
    "update": lambda w, doc: w.wait_state(doc.id, "STARTED"),
}


def parse(text: str) -> dict[str, dict[str, dict[str, str]]]:
    table: dict[str, dict[str, dict[str, str]]] = {}
    subject = None
    for line in text.strip("\n").splitlines()[1:]:
        if line.lstrip().startswith("# "):
            continue
        if not line.startswith(" "):
            subject = line.strip()
            table[subject] = {}
            continue
        op, *cells = line.split()
        assert subject and len(cells) == len(PRINCIPALS), line
        table[subject][op] = dict(zip(PRINCIPALS, cells))
    return table


ROWS = parse(TABLE)
ROWS.update({name: parse("header\n" + name + TEMPLATE_ROWS)[name] for name in TEMPLATES})
CASES = [(subject, op, principal, expected)
         for subject, ops in ROWS.items() for op, cells in ops.items() for principal, expected in cells.items()]


def test_every_type_and_action_has_rows():
    types = all_types()
    assert {s.split("#")[0] for s in ROWS} == set(types), "each registered type needs rows in TABLE"
    assert set(ROWS) == set(FACTORIES), "each subject needs a factory in acl_world.FACTORIES"
    for subject, ops in ROWS.items():
        rtype = types[subject.split("#")[0]]
        assert set(ops) == {"get", "search", "edit", "delete", *rtype.action_map}, subject


@pytest.fixture(scope="session")
def world(live_server):
    w = World(live_server)
    yield w
    w.close()


@pytest.mark.parametrize("subject,op,principal,expected", CASES,
                         ids=[f"{s}-{o}-{p}" for s, o, p, _ in CASES])
def test_acl(world: World, subject: str, op: str, principal: str, expected: str) -> None:
    fresh = expected in SUCCESS and op not in KEEPS_DOCUMENT
    doc = world.fresh(subject) if fresh else world.shared(subject)
    caller = world.caller(principal, doc)
    if op == "get":
        check_get(caller, subject, principal, doc, expected)
    elif op == "search":
        check_search(caller, subject, principal, doc, expected)
    else:
        check_change(world, caller, doc, op, int(expected), principal)


def _status(resp: Any, expected: int) -> None:
    assert resp.status_code == expected, resp.text
    if expected >= 400:
        assert resp.json()["status"] == expected, resp.text


def check_shown(body: dict[str, Any], subject: str, principal: str) -> None:
    """A document as a principal is shown it: the part its rights allow, the operations it may use."""
    level = ROWS[subject]["get"][principal]
    shown = set(body) - {"operations"}
    if level == "acl":
        assert "acl" in body, body
    elif level == "data":
        assert "acl" not in body and shown - METADATA_KEYS, body
    else:
        assert shown <= METADATA_KEYS, body
    if subject not in TEMPLATES:
        assert not shown & SECRETS, body
        assert "api-secret" not in body.get("api-credentials", {}), body
    offered = {o["rel"] for o in body["operations"]}
    allowed = {op for op, cells in ROWS[subject].items() if op not in ("get", "search") and cells[principal] in SUCCESS}
    assert offered == allowed, f"operations offered {sorted(offered)}, allowed {sorted(allowed)}"


def check_get(caller: Any, subject: str, principal: str, doc: Doc, expected: str) -> None:
    resp = caller.get(doc.id)
    if expected.isdigit():
        _status(resp, int(expected))
        return
    _status(resp, 200)
    assert resp.json()["id"] == doc.id
    check_shown(resp.json(), subject, principal)


def check_search(caller: Any, subject: str, principal: str, doc: Doc, expected: str) -> None:
    rtype = subject.split("#")[0]
    by_id = f"id='{doc.id}'"
    searches = [caller.search(rtype, filter=by_id, aggregation=["value_count:id", "terms:id"]),
                caller.put(rtype, data={"filter": by_id, "last": "0", "aggregation": "cardinality:id"})]
    if expected == "hidden":  # and not in the whole list either, nor in its count
        searches.append(caller.search(rtype, select="id", orderby="name:desc", aggregation="value_count:id"))
    if expected.isdigit():
        for resp in searches:
            _status(resp, int(expected))
        return
    for resp in searches:
        _status(resp, 200)
    n = 1 if expected == "found" else 0
    filtered, counted, *everything = (r.json() for r in searches)
    assert filtered["count"] == n and [r["id"] for r in filtered["resources"]] == [doc.id] * n
    assert filtered["aggregations"]["value_count:id"] == {"value": n}
    assert [b["key"] for b in filtered["aggregations"]["terms:id"]["buckets"]] == [doc.id] * n
    if n:
        check_shown(filtered["resources"][0], subject, principal)
    assert counted["count"] == n and counted["resources"] == []
    assert counted["aggregations"]["cardinality:id"] == {"value": n}
    for page in everything:
        listed = [r["id"] for r in page["resources"]]
        assert doc.id not in listed
        assert page["count"] == len(listed) == page["aggregations"]["value_count:id"]["value"]


WATCHED = ("name", "description", "state", "acl", "value")


def check_change(world: World, caller: Any, doc: Doc, op: str, expected: int, principal: str) -> None:
    if op in READY_FOR and expected < 400:
        READY_FOR[op](world, doc)
    before = world.snapshot(doc.id)
    if op == "edit":
        resp = caller.put(doc.id, json={"description": f"edited by {principal}"})
    elif op == "delete":
        resp = caller.delete(doc.id)
    else:
        resp = caller.post(f"{doc.id}/{op}", json=ACTION_BODIES[op](world, doc) if op in ACTION_BODIES else None)
    _status(resp, expected)
    after = world.admin.get(doc.id)
    if op in ("delete", "force-delete") and expected == 200:
        _status(after, 404)
        world.changed(doc.id, None)
        return
    _status(after, 200)
    if op == "edit" and expected == 200:
        assert after.json()["description"] == f"edited by {principal}"
    elif expected >= 400:  # refused: nothing changed
        assert {k: after.json().get(k) for k in WATCHED} == {k: before.get(k) for k in WATCHED}
    world.changed(doc.id, after.json())


def test_deleting_a_module_version_deletes_nothing(world: World) -> None:
    """``module/<uuid>_<n>`` reads one version; deleting it answered 200 after deleting the content of every
    version, leaving a module whose versions all pointed at nothing. It is refused, as an edit of it is."""
    module = world.component()
    edited = world.owner.put(module, json={"content": {**world.snapshot(module)["content"], "commit": "second"}})
    assert edited.status_code == 200, edited.text
    version = f"{module}_0"
    resp = world.owner.delete(version)
    _status(resp, 400)
    assert resp.json()["message"] == "delete the module itself, not one of its versions"
    for rid in (version, f"{module}_1", module):
        assert "image" in world.stored(rid)["content"], rid
    assert world.owner.delete(module).status_code == 200
