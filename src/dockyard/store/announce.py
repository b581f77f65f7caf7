"""How a PostgreSQL write transaction's changes reach every process: ``NOTIFY dockyard_changes`` payloads.

Each write transaction stores every change it made, with the document as stored (a delete with the document
as it was), in the ``outbox`` table in the transaction itself, so that it is announced if and only if it
commits; the announcer (``store/outbox.py``) sends them on, in the order they were stored, so that a
listener needs no read to show a change. PostgreSQL delivers the notifications of one announcing transaction
when it commits, those of different ones in commit order across the whole installation, each one's
contiguous; and announcing transactions run one at a time. A listener therefore hears every change once, and
the changes of one document in the order they were committed.

A transaction's changes are one text, each change as ``<change> <len(id)> <len(doc)>\\n<id><doc>`` (lengths
in characters), cut into payloads under PostgreSQL's 8,000-byte limit, each cut on a UTF-8 character
boundary. Every payload starts with a line ``<origin> <transaction> <part> <parts>`` (``origin`` names the
announcing process, ``transaction`` counts the transactions it announced): identical payloads of one
transaction would be delivered once, and the line tells a listener when it has all the parts.
:class:`Reassembly` puts them back together, parsing only the documents of the types the listener wants.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

CHANNEL = "dockyard_changes"
LIMIT = 7900  # bytes of one payload: PostgreSQL refuses 8,000 or more
_HEAD_ROOM = 100  # bytes kept for a payload's first line (origin, transaction, part, parts)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_transactions = itertools.count(1)

# "add" | "edit" | "delete", the id, the document (as stored, or as it was)
Change = tuple[str, str, dict[str, Any]]


def body(changes: Iterable[tuple[str, str, Any]]) -> str:
    """A transaction's ``changes`` (each document as stored JSON text, or a dict) as one text, as it waits in
    the outbox (``store/outbox.py``)."""
    return "".join(_record(change, rid, doc) for change, rid, doc in changes)


def payloads(origin: str, text: str) -> list[str]:
    """The payloads that carry one transaction's changes, ``text`` as :func:`body` made it."""
    parts = _cut(text, LIMIT - _HEAD_ROOM)
    seq = next(_transactions)
    return [f"{origin} {seq} {i} {len(parts)}\n{part}" for i, part in enumerate(parts)]


def _record(change: str, rid: str, doc: Any) -> str:
    raw = doc if isinstance(doc, str) else _dumps(doc)
    return f"{change} {len(rid)} {len(raw)}\n{rid}{raw}"


def _cut(body: str, room: int) -> list[str]:
    """``body`` in pieces of at most ``room`` UTF-8 bytes, none splitting a character."""
    if len(body) * 4 <= room:  # no character takes more than 4 bytes
        return [body]
    data = body.encode()
    if len(data) <= room:
        return [body]
    parts, start = [], 0
    while start < len(data):
        end = min(start + room, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: the cut goes before its lead
            end -= 1
        parts.append(data[start:end].decode())
        start = end
    return parts


class Reassembly:
    """A listener's side: payloads in as delivered, each transaction's changes out once all its parts came.

    Not thread-safe: one listening thread feeds it. :meth:`reset` after the connection was lost (parts of a
    transaction heard before then will never be completed)."""

    def __init__(self) -> None:
        self._partial: dict[tuple[str, str], list[str | None]] = {}

    def add(self, payload: str, wanted: Callable[[str], bool] = lambda rtype: True) -> list[Change] | None:
        """The transaction's changes of the types ``wanted`` says yes to, once ``payload`` completes it
        (None until then); a malformed payload raises ValueError."""
        head, _, part = payload.partition("\n")
        origin, seq, index, count = head.split(" ")
        i, n = int(index), int(count)
        if n == 1:
            return _records(part, wanted)
        parts = self._partial.setdefault((origin, seq), [None] * n)
        parts[i] = part
        if any(p is None for p in parts):
            return None
        del self._partial[(origin, seq)]
        return _records("".join(parts), wanted)  # type: ignore[arg-type]

    def reset(self) -> None:
        self._partial.clear()


def _records(body: str, wanted: Callable[[str], bool]) -> list[Change]:
    changes: list[Change] = []
    pos = 0
    while pos < len(body):
        eol = body.index("\n", pos)
        change, id_len, doc_len = body[pos:eol].split(" ")
        start = eol + 1
        mid = start + int(id_len)
        end = mid + int(doc_len)
        rid = body[start:mid]
        if wanted(rid.split("/", 1)[0]):
            changes.append((change, rid, json.loads(body[mid:end])))
        pos = end
    return changes


__all__ = ["CHANNEL", "LIMIT", "Change", "Reassembly", "body", "payloads"]
