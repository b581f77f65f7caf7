"""``dockyard search TYPE``: the CIMI query on any collection, as a table or JSON."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from . import profiles
from .output import JSON_OPTION, age, print_json, short, table

DEFAULT_COLUMNS = ("id", "name", "created")


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "id" and isinstance(value, str):
        return short(value)
    if column in ("created", "updated") and isinstance(value, str):
        return age(value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def search(
    rtype: str = typer.Argument(..., metavar="TYPE", help="Collection: deployment, module, data-record, event ..."),
    filter_: Optional[str] = typer.Option(None, "--filter", help="CIMI filter, e.g. \"state='STARTED'\"."),
    orderby: Optional[str] = typer.Option(None, "--orderby", help="e.g. created:desc,name"),
    select: Optional[str] = typer.Option(None, "--select", help="Attributes to return (and show), e.g. id,state."),
    first: Optional[int] = typer.Option(None, "--first", min=1, help="First result, from 1."),
    last: Optional[int] = typer.Option(None, "--last", min=0, help="Last result (inclusive)."),
    aggregation: Optional[str] = typer.Option(None, "--aggregation", help="e.g. terms:state (shown as JSON)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search any collection with CIMI filters, ordering and paging.

    Example: dockyard search event --filter "category='add'" --orderby created:desc --last 10
    """
    found = profiles.connect().search(rtype, filter=filter_, orderby=orderby, select=select, first=first,
                                      last=last, aggregation=aggregation)
    docs = found.get("resources", [])
    if as_json:
        print_json(found if aggregation else docs)
        return
    columns = [c.strip() for c in select.split(",") if c.strip()] if select else list(DEFAULT_COLUMNS)
    table(columns, [[_cell(c, d.get(c)) for c in columns] for d in docs])
    if aggregation:
        typer.echo(json.dumps(found.get("aggregations"), indent=2, sort_keys=True))
    if found.get("count", len(docs)) > len(docs):
        typer.echo(f"({len(docs)} of {found['count']} shown; page with --first/--last)", err=True)
