"""Declaring a resource's attributes once: their types, whether they are required, who may set them.

A kind validates and normalises one value and raises :class:`Invalid` with a short reason. A
:class:`Schema` checks a whole document and gathers every problem into one explanation, which the API
returns as Nuvla does: ``resource <id> does not satisfy defined schema:\\n<explanation>``.
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

    return check


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

    return check


def number(exclusive_minimum: float | None = None) -> Kind:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid("must be a number")
        if exclusive_minimum is not None and value <= exclusive_minimum:
            raise Invalid(f"must be greater than {exclusive_minimum}")
        return value

    return check


def boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


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

    return check


def href(*types: str) -> Kind:
    """A resource id, optionally restricted to some types."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not ids.ID_RE.match(value) or "/" not in value:
            raise Invalid("must be a resource id like type/uuid")
        if types and value.split("/", 1)[0] not in types:
            raise Invalid(f"must be the id of a {' or '.join(types)}")
        return value

    return check


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

    return check


def any_map(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Invalid("must be a map")
    return value


def anything(value: Any) -> Any:
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


def nested(schema: Schema) -> Kind:
    """A map checked against its own schema."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Invalid("must be a map")
        out, problems = schema.problems(value)
        if problems:
            raise Invalid("is invalid: " + "; ".join(problems))
        return out

    return check


def _principals(value: Any) -> Any:
    return list_of(string(pattern=ids.PRINCIPAL_RE.pattern), distinct=False)(value)


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
    Attr("operations", anything, server=True, indexed=False),
    Attr("acl", acl_kind),
    Attr("name", string(max_len=1000)),
    Attr("description", text(100000)),
    Attr("tags", list_of(string(max_len=1000), distinct=True)),
    Attr("parent", href()),
    Attr("resource-metadata", href()),
))
