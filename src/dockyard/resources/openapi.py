"""The OpenAPI 3.0 description of the API (``GET /api/openapi.json``), generated from the type declarations.

Every registered type gets its collection path (search with ``GET`` or a form-encoded ``PUT``, add with
``POST``, bulk delete with ``DELETE`` and a ``bulk`` header), its item path (``GET``, ``PUT`` as a merge or a
JSON patch, ``DELETE``) and a ``POST`` path per action. A type's schemas are its ``Attr``s: the kinds give
the JSON types, ``server`` marks an attribute read-only, ``hidden`` ones are left out, and ``required``
makes the required list of ``<type>-create`` (a document as returned holds what the caller may see, so
only its ``id`` is sure). Templated types are created from ``{"template": {"href": ...}}`` with the
templates seeded for them. Every error is Nuvla's ``{status, message, resource-id}``.

Only what a type declares is described: a path exists when the type offers it (an ``add`` right in its
collection ACL, ``editable``, an action), so the document says what a client may call, nothing more.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from ..core.acl import COLLECTION_RIGHTS
from ..core.ids import UUID_PART_RE
from ..store.query import AGGREGATIONS
from .attributes import COMMON, acl_kind, json_schema
from .base import Action, ResourceType, TemplateType
from .session import COOKIE

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PATCH = "application/json-patch+json"
SSE = "text/event-stream"
# keys of a template document that describe the template rather than parameters of the new resource
TEMPLATE_META = frozenset({*COMMON.by_name, "method", "instance", "order", "group", "icon"})

Json = dict[str, Any]


def document(types: Mapping[str, ResourceType], templates: Iterable[Mapping[str, Any]] = ()) -> Json:
    """The whole OpenAPI document for these types; ``templates`` are the seeded template documents."""
    templates = list(templates)
    paths: Json = {"/api/cloud-entry-point": _entry_point(), "/api/openapi.json": _self_description()}
    if types:
        paths["/api/event-stream"] = _event_stream()
    schemas: Json = {}
    for name in sorted(types):
        rtype = types[name]
        schemas.update(_schemas_of(rtype, templates))
        paths.update(_paths_of(rtype))
    schemas = {"acl": ACL, **_COMMON_SCHEMAS, **_hoisted(schemas, ACL, _ref("acl"))}
    if "deployment" in types:
        paths["/api/deployment/{uuid}/log-stream"] = _log_stream()
        paths["/api/deployment/{uuid}/stats-stream"] = _stats_stream()
    return {
        "openapi": "3.0.3",
        "info": {"title": "Dockyard", "version": _version(),
                 "description": "A Nuvla-compatible API: CIMI collections of resources, searched with CIMI "
                                "filters, with ACLs and actions."},
        "security": [{}, {"session": []}],
        "tags": [{"name": name, "description": _summary(types[name])} for name in sorted(types)],
        "paths": paths,
        "components": {"schemas": schemas, "parameters": _PARAMETERS, "responses": _RESPONSES,
                       "securitySchemes": _SECURITY},
    }


def _hoisted(value: Any, schema: Json, ref: Json) -> Any:
    """``value`` with every copy of ``schema`` replaced by ``ref`` (the ACL, in every type)."""
    if value == schema:
        return ref
    if isinstance(value, dict):
        return {k: _hoisted(v, schema, ref) for k, v in value.items()}
    if isinstance(value, list):
        return [_hoisted(v, schema, ref) for v in value]
    return value


def _version() -> str:
    try:
        return metadata.version("dockyard")
    except metadata.PackageNotFoundError:
        return "0"


def _summary(rtype: ResourceType) -> str:
    doc = type(rtype).__doc__ if "__doc__" in vars(type(rtype)) else None
    doc = doc or sys.modules[type(rtype).__module__].__doc__ or rtype.name
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def _ref(name: str, kind: str = "schemas") -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


# -- schemas -----------------------------------------------------------------------------------------

def _schemas_of(rtype: ResourceType, templates: list[Mapping[str, Any]]) -> Json:
    """The document, what creates one (with the required attributes) and what edits one."""
    name = rtype.name
    declared = rtype.schema.to_json_schema()
    anyhow = {k: v for k, v in declared.items() if k != "required"}
    # what a caller gets back holds what its rights and ``select`` let it see: only the id for sure
    document = {**anyhow, "required": ["id"], "description": _summary(rtype)}
    create = _templated_create(rtype, templates) if rtype.templated else declared
    return {name: document, f"{name}-create": create, f"{name}-edit": anyhow,  # an edit merges
            f"{name}-collection": _collection_schema(name)}


def _collection_schema(name: str) -> Json:
    return {"type": "object", "properties": {
        "id": {"type": "string"}, "resource-type": {"type": "string"},
        "count": {"type": "integer", "minimum": 0},
        "acl": _ref("collection-acl"),
        "resources": {"type": "array", "items": _ref(name)},
        "operations": {"type": "array", "items": _ref("operation")},
        "aggregations": {"type": "object", "description": "'<algorithm>:<attribute>' → its result"},
    }, "required": ["id", "resource-type", "count", "resources"]}


def _templated_create(rtype: ResourceType, templates: list[Mapping[str, Any]]) -> Json:
    """``{"template": {"href": <template>, ...its parameters}}`` next to attributes of the new document."""
    schema = rtype.schema.to_json_schema()
    own = {k: v for k, v in schema["properties"].items() if not v.get("readOnly")}
    choices = [_template_schema(rtype, t) for t in templates
               if t.get("resource-type") == f"{rtype.name}-template"]
    template: Json = {"type": "object", "required": ["href"],
                      "properties": {"href": {"type": "string", "pattern": f"^{rtype.name}-template/"}}}
    if choices:
        template = choices[0] if len(choices) == 1 else {"anyOf": choices}
    return {"type": "object", "required": ["template"], "properties": {"template": template, **own},
            "additionalProperties": rtype.schema.open}


def _template_schema(rtype: ResourceType, template: Mapping[str, Any]) -> Json:
    props: Json = {"href": {"type": "string", "enum": [template["id"]]}}
    for key, default in template.items():
        if key in TEMPLATE_META:
            continue
        attr = rtype.schema.by_name.get(key)
        props[key] = json_schema(attr.kind) if attr and not attr.server else _type_of(default)
    return {"type": "object", "required": ["href"], "properties": props,
            "description": str(template.get("description", ""))}


def _type_of(value: Any) -> Json:
    for py, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                     (list, "array"), (dict, "object")):
        if isinstance(value, py):
            return {"type": name}
    return {}


_PRINCIPALS = {"type": "array", "items": {"type": "string"}}
_INDEX = {"type": "integer", "minimum": 0, "maximum": 999_999_999}
ACL = json_schema(acl_kind)

_COMMON_SCHEMAS: Json = {
    "error": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"}, "resource-id": {"type": "string"}}},
    "operation": {"type": "object", "required": ["rel", "href"],
                  "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}},
    "collection-acl": {"type": "object", "properties": {right: _PRINCIPALS for right in COLLECTION_RIGHTS}},
    "created": {"type": "object", "required": ["status", "message", "resource-id"], "properties": {
        "status": {"type": "integer", "enum": [201]}, "message": {"type": "string"},
        "resource-id": {"type": "string"},
        "secret-key": {"type": "string", "description": "an API key's secret, returned once"}}},
    "deleted": {"type": "object", "required": ["status", "message", "resource-id"], "properties": {
        "status": {"type": "integer", "enum": [200]}, "message": {"type": "string"},
        "resource-id": {"type": "string"}}},
    "bulk-deleted": {"type": "object", "required": ["status", "deleted", "total", "failures"], "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"},
        "deleted": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
        "failures": {"type": "array", "items": {"type": "object"}}}},
    "action-reply": {"type": "object", "description": "Nuvla's map response (202: 'location' names the job), "
                     "or what the action returns (a document, a pre-signed 'uri')", "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"}, "resource-id": {"type": "string"},
        "location": {"type": "string"}}},
    "search-form": {"type": "object", "properties": {
        "filter": {"type": "string"}, "orderby": {"type": "string"}, "select": {"type": "string"},
        "first": _INDEX, "last": _INDEX,
        "aggregation": {"type": "string"}}},
    "json-patch": {"type": "array", "items": {"type": "object", "required": ["op", "path"], "properties": {
        "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
        "path": {"type": "string"}, "from": {"type": "string"}, "value": {}}}},
}


# -- parameters, responses, security -----------------------------------------------------------------

def _query(name: str, description: str, schema: Json) -> Json:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_ATTR = r"[A-Za-z@][\w:@.-]*(/[A-Za-z@][\w:@.-]*)*"
_ORDER = rf"{_ATTR}(:(asc|desc))?"
_AGGREGATION = rf"({'|'.join(AGGREGATIONS)}):{_ATTR}"

_PARAMETERS: Json = {
    "uuid": {"name": "uuid", "in": "path", "required": True, "description": "the part of the id after the type",
             "schema": {"type": "string", "pattern": UUID_PART_RE.pattern}},
    "filter": _query("filter", "a CIMI filter, e.g. state='STARTED' and created>'2026-01-01'",
                     {"type": "string"}),
    "orderby": _query("orderby", "attr[:asc|:desc], comma separated",
                      {"type": "string", "pattern": f"^{_ORDER}(,{_ORDER})*$"}),
    "select": _query("select", "attributes to return, comma separated (id is always returned); on an edit, "
                     "selected attributes absent from the body are removed", {"type": "string"}),
    "first": _query("first", "1-based index of the first result", _INDEX),
    "last": _query("last", "1-based index of the last result (inclusive); 0 counts only", _INDEX),
    "aggregation": _query("aggregation", f"algorithm:attribute, comma separated ({', '.join(AGGREGATIONS)})",
                          {"type": "string", "pattern": f"^{_AGGREGATION}(,{_AGGREGATION})*$"}),
    "bulk": {"name": "bulk", "in": "header", "required": True, "description": "any value: confirms a bulk request",
             "schema": {"type": "string"}},
}
SEARCH_PARAMETERS = [_ref(p, "parameters") for p in ("filter", "orderby", "select", "first", "last", "aggregation")]

_RESPONSES: Json = {
    "error": {"description": "Nuvla's error body", "content": {JSON: {"schema": _ref("error")}}},
}
_SECURITY: Json = {
    "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                "description": "the cookie a login (POST /api/session) sets; without it the caller is anonymous"},
}


def _errors(*statuses: int) -> Json:
    return {str(s): _ref("error", "responses") for s in statuses}


def _json(description: str, schema: Json, **extra: Any) -> Json:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


# -- paths -------------------------------------------------------------------------------------------

def _paths_of(rtype: ResourceType) -> Json:
    name = rtype.name
    out = {f"/api/{name}": _collection_path(rtype), f"/api/{name}/{{uuid}}": _item_path(rtype)}
    for action in rtype.actions:
        out[f"/api/{name}/{{uuid}}/{action.name}"] = {"post": _action_op(rtype, action),
                                                      "parameters": [_ref("uuid", "parameters")]}
    return out


def _collection_path(rtype: ResourceType) -> Json:
    name, acl = rtype.name, rtype.collection_acl
    found = _json("the matching documents the caller may see", _ref(f"{name}-collection"))
    item: Json = {
        "get": {"tags": [name], "operationId": f"search-{name}", "summary": f"search {name}",
                "parameters": SEARCH_PARAMETERS, "responses": {"200": found, **_errors(400, 403)}},
        "put": {"tags": [name], "operationId": f"search-{name}-form",
                "summary": f"search {name} with the parameters in a form body",
                "requestBody": {"required": False, "content": {FORM: {"schema": _ref("search-form")}}},
                "responses": {"200": found, **_errors(400, 403)}},
    }
    if "add" in acl:
        create = f"{name}-create"
        item["post"] = {
            "tags": [name], "operationId": f"add-{name}", "summary": f"add a {name}",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(create)}}},
            "responses": {"201": _json("created", _ref("created"), headers={
                "Location": {"description": "the new id", "schema": {"type": "string"}}}),
                **_errors(400, 403, 404, 406, 409, 413)}}
    if "bulk-delete" in acl:
        item["delete"] = {
            "tags": [name], "operationId": f"bulk-delete-{name}",
            "summary": f"delete every {name} a filter matches that the caller may delete",
            "parameters": [_ref("bulk", "parameters"), {**_PARAMETERS["filter"], "required": True}],
            "responses": {"200": _json("what was deleted", _ref("bulk-deleted")), **_errors(400, 403)}}
    return item


def _item_path(rtype: ResourceType) -> Json:
    name = rtype.name
    found = _json(f"the {name} (the attributes the caller may see), with its operations", _ref(name))
    item: Json = {
        "parameters": [_ref("uuid", "parameters")],
        "get": {"tags": [name], "operationId": f"get-{name}", "summary": f"read a {name}",
                "parameters": [_ref("select", "parameters")], "responses": {"200": found, **_errors(403, 404)}},
    }
    if rtype.editable:
        item["put"] = {
            "tags": [name], "operationId": f"edit-{name}",
            "summary": f"edit a {name}: the body is merged in (or applied as a JSON patch)",
            "parameters": [_ref("select", "parameters")],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(f"{name}-edit")},
                                                          PATCH: {"schema": _ref("json-patch")}}},
            "responses": {"200": found, **_errors(400, 403, 404, 406, 409, 413)}}
    if not isinstance(rtype, TemplateType):
        item["delete"] = {
            "tags": [name], "operationId": f"delete-{name}", "summary": f"delete a {name}",
            "responses": {"200": _json("deleted", _ref("deleted")), **_errors(400, 403, 404, 409)}}
    return item


def _action_op(rtype: ResourceType, action: Action) -> Json:
    reply = _json("done", _ref("action-reply"))
    return {"tags": [rtype.name], "operationId": f"{rtype.name}-{action.name}",
            "summary": f"{action.name} a {rtype.name}",
            "description": f"Needs the '{action.right}' right. Offered in the document's operations when its "
                           "state allows; otherwise 409.",
            "requestBody": {"required": False, "content": {JSON: {"schema": {"type": "object"}}}},
            "responses": {"200": reply, "201": reply, "202": reply, "303": reply,
                          **_errors(400, 403, 404, 409, 502)}}


def _entry_point() -> Json:
    return {"get": {"tags": [], "operationId": "cloud-entry-point", "summary": "the base URI and every collection",
                    "responses": {"200": _json("the entry point", {"type": "object", "properties": {
                        "base-uri": {"type": "string"}, "collections": {"type": "object"}}})}}}


def _self_description() -> Json:
    return {"get": {"operationId": "openapi", "summary": "this document",
                    "responses": {"200": _json("OpenAPI 3.0", {"type": "object"})}}}


def _event_stream() -> Json:
    return {"get": {
        "operationId": "event-stream", "summary": "changes the caller may see, as server-sent events",
        "parameters": [_query("types", "resource types, comma separated", {"type": "string"}),
                       _PARAMETERS["filter"]],
        "responses": {"200": {"description": "one event per change, until the client leaves",
                              "content": {SSE: {"schema": {"type": "string"}}}}, **_errors(400, 403)}}}


def _log_stream() -> Json:
    return {"parameters": [_ref("uuid", "parameters")], "get": {
        "tags": ["deployment"], "operationId": "deployment-log-stream",
        "summary": "follow a deployment's container log (server-sent events with Accept: text/event-stream)",
        "parameters": [_query("tail", "lines of history to send first", {"type": "integer", "minimum": 0})],
        "responses": {"200": {"description": "log lines as they are written",
                              "content": {"text/plain": {"schema": {"type": "string"}},
                                          SSE: {"schema": {"type": "string"}}}}, **_errors(403, 404, 409)}}}


def _stats_stream() -> Json:
    return {"parameters": [_ref("uuid", "parameters")], "get": {
        "tags": ["deployment"], "operationId": "deployment-stats-stream",
        "summary": "follow the CPU and memory a deployment's running container uses (server-sent events, "
                   "one 'stats' event a second: time, cpu-percent, memory-bytes, memory-limit-bytes)",
        "responses": {"200": {"description": "samples as the engine reads them",
                              "content": {SSE: {"schema": {"type": "string"}}}}, **_errors(403, 404, 409)}}}


__all__ = ["document"]
