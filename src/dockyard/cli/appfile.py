"""App files: the module document in YAML (so a JSON body is a valid file), checked before it is sent.

The file holds the very attributes ``POST /api/module`` takes (``path``, ``subtype``, ``name``, ``content``
with ``image``, ``ports``, ``environmental-variables``, ``output-parameters``, ``urls`` ...). It is checked
against the server's own description of them (``GET /api/openapi.json``: ``module-create`` or
``module-edit``, and ``module-component-create`` for ``content``), so the CLI knows no attribute the server
does not declare and never lags behind it. Each problem names the file, the line and the field::

    app.yaml:9: content.ports[0].target-port: must be an integer, not 'http'

Attributes the server sets itself (read-only in the description: ``id``, ``created``, ``versions`` ...)
are not checked: the server ignores them, so a document printed by ``dockyard app show --json`` can be
edited and sent back as it is. In ``content`` the server fills ``author`` and ``architectures`` when they
are missing, so they are not required here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from .client import CliError, Client

Path = tuple[str | int, ...]
FILLED_BY_SERVER = frozenset({"author", "architectures"})
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


@dataclass(frozen=True)
class AppFile:
    name: str
    doc: dict[str, Any]
    lines: dict[Path, int]

    def line(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that is in the file (a missing attribute)."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


def load(name: str, text: str) -> AppFile:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise CliError(f"{where}: not valid YAML: {problem}") from exc
    if not isinstance(doc, dict):
        raise CliError(f"{name}:1: the file must hold one module document (a mapping of attributes), "
                       f"not {type(doc).__name__}")
    lines: dict[Path, int] = {}
    _index(node, (), lines)
    return AppFile(name, doc, lines)


def _index(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            lines[path + (k,)] = key.start_mark.line + 1
            _index(value, path + (k,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, path + (i,), lines)


# -- checking against the server's schemas --------------------------------------------------------

def server_schemas(client: Client) -> dict[str, Any]:
    described = client.json("GET", "openapi.json")
    return described.get("components", {}).get("schemas", {})


def check(app: AppFile, schemas: dict[str, Any], *, edit: bool = False, subtype: str | None = None) -> None:
    """Raise a :class:`CliError` listing every problem of the file, each with its line; else return."""
    top = schemas.get("module-edit" if edit else "module-create")
    if top is None:
        raise CliError("the server does not describe modules (GET /api/openapi.json): is it a Dockyard?")
    problems = list(Validator(schemas).problems(app.doc, top, ()))
    subtype = app.doc.get("subtype", subtype)
    content = app.doc.get("content")
    if subtype == "project" and content is not None:
        problems.append((("content",), "a project has no content"))
    elif isinstance(content, dict) and "module-component-create" in schemas:
        component = dict(schemas["module-component-create"])
        component["required"] = [r for r in component.get("required", []) if r not in FILLED_BY_SERVER]
        problems += Validator(schemas).problems(content, component, ("content",))
    elif not edit and subtype not in (None, "project") and content is None:
        problems.append(((), f"a {subtype} needs 'content' (its image, ports, variables ...)"))
    if problems:
        raise CliError("\n".join(f"{app.name}:{app.line(p)}: {field(p) or '(document)'}: {m}"
                                 for p, m in sorted(problems, key=lambda pm: app.line(pm[0]))))


def field(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Validator:
    """The part of JSON Schema (OpenAPI 3.0 flavour) that the server's description uses."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas

    def _deref(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return schema

    def problems(self, value: Any, schema: dict[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
        schema = self._deref(schema)
        kind = schema.get("type")
        if kind and not _is(value, kind):
            article = "an" if kind[0] in "aeiou" else "a"
            yield path, f"must be {article} {kind}, not {_show(value)}"
            return
        if "enum" in schema and value not in schema["enum"]:
            yield path, f"must be one of {', '.join(map(str, schema['enum']))}, not {_show(value)}"
        if isinstance(value, str):
            yield from self._string(value, schema, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield from self._number(value, schema, path)
        elif isinstance(value, list):
            yield from self._array(value, schema, path)
        elif isinstance(value, dict):
            yield from self._object(value, schema, path)

    def _string(self, value: str, schema: dict[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
        if len(value) < schema.get("minLength", 0):
            yield path, "must not be empty" if schema["minLength"] == 1 else \
                f"must be at least {schema['minLength']} characters"
        elif len(value) > schema.get("maxLength", len(value)):
            yield path, f"must be at most {schema['maxLength']} characters"
        elif "pattern" in schema and not re.search(schema["pattern"], value):
            what = schema.get("description") or f"match {schema['pattern']}"
            yield path, f"must {what}, not {_show(value)}" if "description" not in schema else \
                f"{_show(value)} is not {what}"

    def _number(self, value: float, schema: dict[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and (value < low or (schema.get("exclusiveMinimum") is True and value == low)):
            yield path, f"must be {'more than' if schema.get('exclusiveMinimum') is True else 'at least'} " \
                        f"{low}, not {value}"
        if high is not None and value > high:
            yield path, f"must be at most {high}, not {value}"

    def _array(self, value: list[Any], schema: dict[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
        if len(value) < schema.get("minItems", 0):
            yield path, f"must have at least {schema['minItems']} item(s)"
        if len(value) > schema.get("maxItems", len(value)):
            yield path, f"must have at most {schema['maxItems']} items"
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
            yield path, "must not repeat an item"
        if "items" in schema:
            for i, item in enumerate(value):
                yield from self.problems(item, schema["items"], path + (i,))

    def _object(self, value: dict[str, Any], schema: dict[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                yield path + (name,), "is required"
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                if not self._deref(props[key]).get("readOnly"):
                    yield from self.problems(item, props[key], path + (key,))
            elif extra is False:
                known = ", ".join(k for k, v in props.items() if not self._deref(v).get("readOnly"))
                yield path + (key,), f"unknown attribute (known: {known})"
            elif isinstance(extra, dict):
                yield from self.problems(item, extra, path + (key,))


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = TYPES.get(kind)
    return expected is None or (isinstance(value, expected) and not (expected is not bool and
                                                                       isinstance(value, bool)))
