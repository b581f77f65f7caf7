"""Declaring a resource's attributes once: their types, whether they are required, who may set them.

A kind validates and normalises one value and raises :class:`Invalid` with a short reason. A
:class:`Schema` checks a whole document and gathers every problem into one explanation, which the API
returns as Nuvla does: ``resource <id> does not satisfy defined schema:\\n<explanation>``.

Each kind also carries the JSON Schema of the values it accepts (:func:`described`, read back with
:func:`json_schema`), from which ``GET /api/openapi.json`` describes every type. A kind without one is
described as "any value".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core import ids
from ..core.acl import COLLECTION_RIGHTS, RIGHTS
from ..core.time import normalise_ts


class Invalid(Exception):
    pass


Kind = Callable[[Any], Any]


def described(schema: dict[str, Any]) -> Callable[[Kind], Kind]:
    """Attach the JSON Schema (OpenAPI 3.0 dialect) of the values a kind accepts."""

    def attach(kind: Kind) -> Kind:
        kind.json_schema = schema  # type: ignore[attr-defined]
        return kind

    return attach


def json_schema(kind: Kind) -> dict[str, Any]:
    """What a kind accepts, as JSON Schema; ``{}`` (any value) for a kind that does not say."""
    return dict(getattr(kind, "json_schema", {}))


def _string_schema(pattern: str | None, nonblank: bool, max_len: int) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "maxLength": max_len}
    if nonblank:
        out["minLength"] = 1
    if pattern:
        out["pattern"] = pattern
    elif nonblank:
        out["pattern"] = r"\S"
    return out


def string(*, pattern: str | None = None, nonblank: bool = True, max_len: int = 65536) -> Kind:
    rx = re.compile(pattern) if pattern else None

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if nonblank and not value.strip():
            raise Invalid("must not be blank")
        if len(value) > max_len:
            raise Invalid(f"must be at most {max_len} characters")
        if rx and not rx.match(value):
            raise Invalid(f"must match {pattern}")
        return value

    return described(_string_schema(pattern, nonblank, max_len))(check)


def text(max_len: int = 1 << 20) -> Kind:
    return string(nonblank=False, max_len=max_len)


def integer(minimum: int | None = None, maximum: int | None = None) -> Kind:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("must be an integer")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be at most {maximum}")
        return value

    bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
    return described({"type": "integer", **bounds})(check)


def number(exclusive_minimum: float | None = None) -> Kind:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid("must be a number")
        if exclusive_minimum is not None and value <= exclusive_minimum:
            raise Invalid(f"must be greater than {exclusive_minimum}")
        return value

    bound = {} if exclusive_minimum is None else {"minimum": exclusive_minimum, "exclusiveMinimum": True}
    return described({"type": "number", **bound})(check)


@described({"type": "boolean"})
def boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


@described({"type": "string", "format": "date-time", "example": "2026-01-31T12:00:00.000Z",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"})
def timestamp(value: Any) -> Any:
    try:
        return normalise_ts(value)
    except ValueError:
        raise Invalid("must be a timestamp like 2026-01-31T12:00:00.000Z") from None


def one_of(*values: str) -> Kind:
    allowed = frozenset(values)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise Invalid(f"must be one of {', '.join(values)}")
        return value

    return described({"type": "string", "enum": list(values)})(check)


def href(*types: str) -> Kind:
    """A resource id, optionally restricted to some types."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not ids.ID_RE.match(value) or "/" not in value:
            raise Invalid("must be a resource id like type/uuid")
        if types and value.split("/", 1)[0] not in types:
            raise Invalid(f"must be the id of a {' or '.join(types)}")
        return value

    prefix = f"({'|'.join(types)})" if types else r"[a-z]([a-z-]*[a-z])?"
    return described({"type": "string", "pattern": f"^{prefix}/{ids.UUID_PART_RE.pattern[1:]}"})(check)


def list_of(kind: Kind, *, min_len: int = 0, max_len: int = 10000, distinct: bool = False) -> Kind:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid("must be a list")
        if len(value) < min_len:
            raise Invalid(f"must have at least {min_len} element{'s' if min_len > 1 else ''}")
        if len(value) > max_len:
            raise Invalid(f"must have at most {max_len} elements")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(kind(item))
            except Invalid as exc:
                raise Invalid(f"element {i} {exc}") from None
        if distinct and len({repr(x) for x in out}) != len(out):
            raise Invalid("must not repeat elements")
        return out

    schema: dict[str, Any] = {"type": "array", "items": json_schema(kind), "maxItems": max_len}
    if min_len:
        schema["minItems"] = min_len
    if distinct:
        schema["uniqueItems"] = True
    return described(schema)(check)


@described({"type": "object"})
def any_map(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Invalid("must be a map")
    return value


def anything(value: Any) -> Any:
    return value


@described({"type": "array", "items": {"type": "object", "required": ["rel", "href"],
                                       "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}}})
def operations(value: Any) -> Any:
    """What the caller may do with a document: set by the server on the way out, never stored."""
    return value


@dataclass(frozen=True)
class Attr:
    """One attribute.

    ``server``: set by the server only, stripped from input. ``immutable``: settable on create, ignored on
    edit (except for admins). ``hidden``: never returned. ``indexed``: searchable (large or secret values
    are not).
    """

    name: str
    kind: Kind = anything
    required: bool = False
    server: bool = False
    immutable: bool = False
    hidden: bool = False
    indexed: bool = True


@dataclass(frozen=True)
class Schema:
    attrs: tuple[Attr, ...]
    open: bool = False  # open schemas accept undeclared keys (data-record)
    by_name: dict[str, Attr] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {a.name: a for a in self.attrs})

    def extend(self, *attrs: Attr, open: bool | None = None) -> "Schema":
        merged = {a.name: a for a in self.attrs}
        merged.update({a.name: a for a in attrs})
        return Schema(tuple(merged.values()), self.open if open is None else open)

    @property
    def server_keys(self) -> frozenset[str]:
        return frozenset(a.name for a in self.attrs if a.server)

    @property
    def immutable_keys(self) -> frozenset[str]:
        return frozenset(a.name for a in self.attrs if a.immutable)

    @property
    def hidden_keys(self) -> frozenset[str]:
        return frozenset(a.name for a in self.attrs if a.hidden)

    @property
    def unindexed(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attrs if not a.indexed or a.hidden)

    def problems(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The normalised document and the list of what is wrong with it."""
        out: dict[str, Any] = {}
        problems: list[str] = []
        for key, value in doc.items():
            attr = self.by_name.get(key)
            if attr is None:
                if self.open:
                    out[key] = value
                else:
                    problems.append(f"unknown attribute '{key}'")
                continue
            try:
                out[key] = attr.kind(value)
            except Invalid as exc:
                problems.append(f"attribute '{key}' {exc}")
        for attr in self.attrs:
            if attr.required and doc.get(attr.name) is None:
                problems.append(f"missing required attribute '{attr.name}'")
        return out, problems

    def to_json_schema(self) -> dict[str, Any]:
        """The document as JSON Schema: server-set attributes are read-only, hidden ones absent."""
        props = {}
        for attr in self.attrs:
            if attr.hidden:
                continue
            prop = json_schema(attr.kind)
            if attr.server:
                prop["readOnly"] = True
            props[attr.name] = prop
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": self.open}
        required = [a.name for a in self.attrs if a.required and not a.hidden]
        if required:
            out["required"] = required
        return out


def nested(schema: Schema) -> Kind:
    """A map checked against its own schema."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid("must be a map")
        out, problems = schema.problems(value)
        if problems:
            raise Invalid("is invalid: " + "; ".join(problems))
        return out

    return described(schema.to_json_schema())(check)


def _principals(value: Any) -> Any:
    return list_of(string(pattern=ids.PRINCIPAL_RE.pattern), distinct=False)(value)


_PRINCIPALS = {"type": "array", "items": {"type": "string", "pattern": ids.PRINCIPAL_RE.pattern}}


@described({"type": "object", "required": ["owners"], "additionalProperties": False,
            "properties": {"owners": {**_PRINCIPALS, "minItems": 1}, **{r: _PRINCIPALS for r in RIGHTS}}})
def acl_kind(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Invalid("must be a map of rights to principals")
    unknown = set(value) - {"owners", *RIGHTS}
    if unknown:
        raise Invalid(f"has unknown rights: {', '.join(sorted(unknown))}")
    owners = value.get("owners")
    if not owners:
        raise Invalid("must name at least one owner")
    return {right: _principals(principals) for right, principals in value.items()}


def collection_acl(**rights: Iterable[str]) -> dict[str, list[str]]:
    acl = {k.replace("_", "-"): list(v) for k, v in rights.items()}
    assert set(acl) <= set(COLLECTION_RIGHTS), acl
    return acl


COMMON = Schema((
    Attr("id", href(), server=True),
    Attr("resource-type", string(), server=True),
    Attr("created", timestamp, server=True),
    Attr("updated", timestamp, server=True),
    Attr("created-by", string(), server=True),
    Attr("updated-by", string(), server=True),
    Attr("operations", operations, server=True, indexed=False),
    Attr("acl", acl_kind),
    Attr("name", string(max_len=1000)),
    Attr("description", text(100000)),
    Attr("tags", list_of(string(max_len=1000), distinct=True)),
    Attr("parent", href()),
    Attr("resource-metadata", href()),
))
