"""How the CLI shows things: tables for people, plain columns for pipes, JSON for scripts.

On a terminal a listing is a rich table; piped, it is the same columns as plain text, aligned, with a
header line and no colour or box characters, so that ``awk``/``cut`` see a stable layout. ``--json`` gives
the rows with stable keys (full ids, timestamps as the server wrote them). Short ids are the first
:data:`SHORT` characters of the uuid, as ``docker ps`` shortens its ids; ages are ``kubectl``'s ``5m``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

SHORT = 8
STATE_COLOURS = {"STARTED": "green", "ERROR": "red", "STOPPED": "bright_black", "CREATED": "bright_black",
                 "READY": "green", "VALID": "green", "INVALID": "red"}

JSON_OPTION = typer.Option(False, "--json", help="Print JSON (stable keys) instead of a table.")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def is_tty() -> bool:
    return sys.stdout.isatty()


def uuid_of(rid: str) -> str:
    return rid.split("/", 1)[-1]


def short(rid: str | None) -> str:
    return uuid_of(rid)[:SHORT] if rid else ""


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: str | None, now: datetime | None = None) -> str:
    """``45s``, ``12m``, ``3h``, ``5d``: how long ago a timestamp was."""
    when = parse_ts(value)
    if when is None:
        return ""
    seconds = max(int(((now or datetime.now(timezone.utc)) - when).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], styles: dict[str, Any] | None = None) -> None:
    """Rows under upper-case column headers; ``styles`` maps a column to a function value → rich style."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    if not is_tty():
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        lines = [[c.upper() for c in columns], *rows]
        for line in lines:
            sys.stdout.write("   ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() + "\n")
        return
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column.upper(), overflow="fold")
    for row in rows:
        cells = []
        for column, value in zip(columns, row):
            style = (styles or {}).get(column)
            cells.append(Text(value, style=style(value) if style else ""))
        grid.add_row(*cells)
    out.print(grid)


def state_style(value: str) -> str:
    return STATE_COLOURS.get(value, "blue" if value.endswith("ING") else "")


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """``key: value`` lines, keys aligned, empty values left out (``show`` commands)."""
    pairs = [(k, v) for k, v in pairs if v not in (None, "", [], {})]
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        sys.stdout.write(f"{key + ':':<{width + 1}} {text}\n")
