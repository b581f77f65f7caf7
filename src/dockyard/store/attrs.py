"""A document -> its rows of the ``attrs`` index table (see ``schema``).

``flatten`` runs on every write, so it is a single tight recursive walk with no per-leaf allocation beyond
the row tuple.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from dockyard.store.schema import MAX_INDEXED_STRING

__all__ = ["Row", "flatten"]

Row = tuple[str, str, "str | None", "float | None"]

def flatten(doc: dict, exclude: Collection[str] = ()) -> list[Row]:
    """``(path, k, s, n)`` rows for every scalar leaf of ``doc``.

    * Nested objects join their keys with ``/`` (``acl/owners``; ``data:bucket`` is one key).
    * Every element of an array is a row at the array's own path; arrays of objects recurse, nested arrays
      are flattened into the same path.
    * ``None`` is skipped; booleans are ``('b', 'true'|'false', None)``; numbers ``('n', None, float)``;
      strings ``('s', value, None)``, skipped when longer than ``MAX_INDEXED_STRING`` (as ES ``ignore_above``).
      Numbers that are not finite floats (NaN, infinities, integers beyond the float range) are skipped, and
      so is any other type (a document is JSON, so there should be none).
    * A path in ``exclude``, and everything under it, is skipped.
    """
    out: list[Row] = []
    append = out.append
    skip = frozenset(exclude) if exclude else None
    limit = MAX_INDEXED_STRING

    def walk(path: str, v: object) -> None:
        t = type(v)
        if t is str:
            if len(v) <= limit:  # type: ignore[arg-type]
                append((path, "s", v, None))  # type: ignore[arg-type]
        elif t is dict:
            prefix = path + "/"
            for key, child in v.items():  # type: ignore[union-attr]
                if child is None:
                    continue
                p = prefix + key
                if skip is None or p not in skip:
                    walk(p, child)
        elif t is list or t is tuple:
            for child in v:  # type: ignore[union-attr]
                if child is not None:
                    walk(path, child)
        elif t is bool:
            append((path, "b", "true" if v else "false", None))
        elif t is int or t is float:
            try:
                n = float(v)  # type: ignore[arg-type]
            except OverflowError:
                return
            if math.isfinite(n):
                append((path, "n", None, n))
        elif isinstance(v, str):  # str subclasses (enum.StrEnum, ...)
            walk(path, str(v))
        elif isinstance(v, int):  # IntEnum, ... (bool cannot be subclassed)
            walk(path, int(v))
        elif isinstance(v, float):
            walk(path, float(v))
        elif isinstance(v, dict):
            walk(path, dict(v))
        elif isinstance(v, (list, tuple)):
            walk(path, list(v))

    for key, value in doc.items():
        if value is None or (skip is not None and key in skip):
            continue
        walk(key, value)
    return out
