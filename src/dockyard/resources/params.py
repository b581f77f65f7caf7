"""CIMI query parameters: ``filter``, ``orderby``, ``select``, ``first``, ``last``, ``aggregation``.

They arrive in the query string (GET) or a form body (PUT), repeated or comma-separated. Nuvla renamed
them without the ``$`` prefix in 2019; the old names are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import BadRequest
from ..store import filter as cimi_filter
from ..store.query import AGGREGATIONS

ATTR_RE = re.compile(r"^[A-Za-z@][\w:@.-]*(/[A-Za-z@][\w:@.-]*)*$")


@dataclass
class SearchParams:
    filter: Any = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    select: list[str] | None = None
    first: int = 1
    last: int | None = None
    aggregations: list[tuple[str, str]] = field(default_factory=list)

    def paging(self, window: int) -> tuple[int, int | None]:
        """(offset, limit) as Nuvla computes them from the 1-based inclusive first/last."""
        offset = self.first - 1
        if self.last is None:
            size = max(window - offset, 0)
        elif self.last == 0 or self.last < self.first:
            size = 0
        else:
            size = self.last - self.first + 1
        if offset + size > window:
            raise BadRequest(f"first and last ask for results beyond {window}; narrow the filter or page")
        return offset, size


def _values(items: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in items if k == name or k == "$" + name]


def _split(values: list[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _int(values: list[str], name: str) -> int | None:
    if not values:
        return None
    raw = values[-1].strip()
    if not re.fullmatch(r"\d{1,9}", raw):
        raise BadRequest(f"parameter '{name}' must be a non-negative integer, not {raw[:40]!r}")
    return int(raw)


def _attr(name: str, param: str) -> str:
    if not ATTR_RE.match(name):
        raise BadRequest(f"parameter '{param}' names an invalid attribute: {name[:80]!r}")
    return name


def parse(items: list[tuple[str, str]]) -> SearchParams:
    params = SearchParams()
    filters = [f for f in _values(items, "filter") if f.strip()]
    params.filter = cimi_filter.parse_all(filters) if filters else None
    for spec in _split(_values(items, "orderby")):
        attr, _, direction = spec.partition(":")
        if direction not in ("", "asc", "desc"):
            raise BadRequest(f"parameter 'orderby' direction must be asc or desc, not {direction[:20]!r}")
        params.orderby.append((_attr(attr, "orderby"), direction == "desc"))
    selects = _values(items, "select")
    if selects:
        chosen = _split(selects)
        params.select = None if "*" in chosen else [_attr(s, "select") for s in chosen]
    first = _int(_values(items, "first"), "first")
    if first is not None:
        params.first = max(first, 1)
    params.last = _int(_values(items, "last"), "last")
    for spec in _split(_values(items, "aggregation")):
        algo, _, attr = spec.partition(":")
        if algo not in AGGREGATIONS:
            raise BadRequest(f"parameter 'aggregation': unsupported algorithm {algo[:30]!r}; "
                             f"use one of {', '.join(AGGREGATIONS)}")
        params.aggregations.append((algo, _attr(attr, "aggregation")))
    return params


def select_of(items: list[tuple[str, str]]) -> list[str] | None:
    selects = _values(items, "select")
    return _split(selects) if selects else None
