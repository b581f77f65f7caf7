"""``GET /api/openapi.json``: an OpenAPI document that validators and schemathesis load, and that says what
the resource declarations say (every type, path, action, attribute and search parameter, the error body)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from openapi_spec_validator import validate

from dockyard.resources.attributes import COMMON, anything, json_schema
from dockyard.resources.base import TemplateType
from dockyard.resources.registry import all_types

TYPES = all_types()


@pytest.fixture(scope="module")
def spec(sqlite_server) -> dict:
    resp = httpx.get(sqlite_server.api + "/openapi.json", timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = spec["components"][kind][name]
    return node


def test_the_document_validates_and_schemathesis_loads_it(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.0")
    loaded = schemathesis.openapi.from_dict(spec)
    operations = [op.ok() for op in loaded.get_all_operations()]
    assert len(operations) > 100
    assert {"GET /api/deployment/{uuid}", "POST /api/deployment/{uuid}/start"} <= {op.label for op in operations}


def test_every_type_has_its_collection_item_and_action_paths(spec):
    paths = spec["paths"]
    for name, rtype in TYPES.items():
        collection, item = paths[f"/api/{name}"], paths[f"/api/{name}/{{uuid}}"]
        assert {"get", "put"} <= set(collection), name
        assert ("post" in collection) == ("add" in rtype.collection_acl), name
        assert ("delete" in collection) == ("bulk-delete" in rtype.collection_acl), name
        assert "get" in item
        assert ("put" in item) == rtype.editable, name
        assert ("delete" in item) == (not isinstance(rtype, TemplateType)), name
        for action in rtype.actions:
            assert set(paths[f"/api/{name}/{{uuid}}/{action.name}"]) >= {"post"}, (name, action.name)
    declared = {f"/api/{n}" for n in TYPES} | {f"/api/{n}/{{uuid}}" for n in TYPES} | {
        f"/api/{n}/{{uuid}}/{a.name}" for n, t in TYPES.items() for a in t.actions}
    streams = {"/api/cloud-entry-point", "/api/openapi.json", "/api/event-stream",
               "/api/deployment/{uuid}/log-stream", "/api/deployment/{uuid}/stats-stream"}
    assert set(paths) == declared | streams


def test_attributes_follow_their_declarations(spec):
    schemas = spec["components"]["schemas"]
    for name, rtype in TYPES.items():
        doc = schemas[name]
        visible = [a for a in rtype.schema.attrs if not a.hidden]
        assert set(doc["properties"]) == {a.name for a in visible}, name
        assert doc["required"] == ["id"]  # a caller may see only part of a document
        if not rtype.templated:
            create = schemas[f"{name}-create"]
            assert set(create.get("required", [])) == {a.name for a in visible if a.required}, name
            assert set(create["properties"]) == set(doc["properties"])
        for attr in visible:
            assert bool(resolve(spec, doc["properties"][attr.name]).get("readOnly")) == attr.server, (name, attr.name)
        assert doc["additionalProperties"] is rtype.schema.open
        assert "required" not in schemas[f"{name}-edit"]
    deployment = schemas["deployment"]["properties"]
    assert deployment["state"]["enum"][:3] == ["CREATED", "STARTING", "STARTED"]
    assert "digest" not in schemas["credential"]["properties"]  # hidden: never returned
    assert schemas["module"]["properties"]["path"]["pattern"].startswith("^")
    port = schemas["module-component"]["properties"]["ports"]["items"]["properties"]["target-port"]
    assert port == {"type": "integer", "minimum": 1, "maximum": 65535}
    acl = schemas["acl"]
    assert acl["required"] == ["owners"] and {"owners", "view-meta", "edit-acl", "manage"} <= set(acl["properties"])
    assert schemas["deployment"]["properties"]["acl"] == {"$ref": "#/components/schemas/acl"}
    assert set(COMMON.by_name) <= set(schemas["event"]["properties"])


def test_every_kind_says_what_it_accepts():
    """A kind of one's own needs ``@described``; only ``anything`` means any value."""
    undescribed = {(name, attr.name) for name, rtype in TYPES.items() for attr in rtype.schema.attrs
                   if not json_schema(attr.kind) and attr.kind is not anything and not attr.hidden}
    assert not undescribed


def test_templated_types_are_created_from_their_templates(spec):
    create = spec["paths"]["/api/session"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = resolve(spec, create)
    assert body["required"] == ["template"]
    hrefs = {c["properties"]["href"]["enum"][0] for c in body["properties"]["template"]["anyOf"]}
    assert hrefs == {"session-template/password", "session-template/api-key"}
    key = resolve(spec, spec["components"]["schemas"]["credential-create"])["properties"]["template"]["anyOf"][0]
    assert key["properties"]["href"]["enum"] == ["credential-template/generate-api-key"]
    assert key["properties"]["ttl"] == {"type": "integer"}


def test_search_parameters_actions_and_the_error_body(spec):
    search = spec["paths"]["/api/deployment"]["get"]
    names = {resolve(spec, p)["name"] for p in search["parameters"]}
    assert names == {"filter", "orderby", "select", "first", "last", "aggregation"}
    form = spec["paths"]["/api/deployment"]["put"]["requestBody"]["content"]
    assert set(resolve(spec, form["application/x-www-form-urlencoded"]["schema"])["properties"]) == names
    bulk = spec["paths"]["/api/deployment-parameter"]["delete"]["parameters"]
    assert {(resolve(spec, p)["name"], resolve(spec, p)["in"], resolve(spec, p)["required"]) for p in bulk} == {
        ("bulk", "header", True), ("filter", "query", True)}
    start = spec["paths"]["/api/deployment/{uuid}/start"]["post"]
    assert "'manage'" in start["description"] and "202" in start["responses"]
    error = spec["components"]["schemas"]["error"]
    assert error["required"] == ["status", "message"]
    assert set(error["properties"]) == {"status", "message", "resource-id"}
    assert resolve(spec, start["responses"]["404"])["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/error"}
    cookie = spec["components"]["securitySchemes"]["session"]
    assert (cookie["in"], cookie["name"]) == ("cookie", "com.sixsq.nuvla.cookie")


def test_only_get_is_served(sqlite_server):
    resp = httpx.post(sqlite_server.api + "/openapi.json", timeout=30)
    assert resp.status_code == 405
    assert resp.json() == {"status": 405, "message": "invalid method (post) for /api/openapi.json"}
