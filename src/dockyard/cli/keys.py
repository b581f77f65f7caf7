"""``dockyard key create|list|revoke``: API keys for scripts (``credential`` of subtype ``api-key``)."""

from __future__ import annotations

from typing import Optional

import typer

from . import profiles, resolve
from .output import JSON_OPTION, age, print_json, short, table

app = typer.Typer(help="API keys, for scripts and `dockyard login --api-key`.", no_args_is_help=True)


@app.command()
def create(name: Optional[str] = typer.Option(None, "--name", help="A name to recognise the key by."),
           ttl: int = typer.Option(0, "--ttl", min=0, help="Seconds until it expires (0: never)."),
           as_json: bool = JSON_OPTION) -> None:
    """Create an API key; its secret is printed this once and never again.

    Example: dockyard key create --name ci --ttl 86400
    """
    template = {"href": "credential-template/generate-api-key", "ttl": ttl}
    body: dict = {"template": template}
    if name:
        body["name"] = name
    created = profiles.connect().add("credential", body)
    key, secret = created["resource-id"], created.get("secret-key")
    if as_json:
        print_json({"key": key, "secret": secret, "name": name})
        return
    typer.echo(f"key:    {key}\nsecret: {secret}")
    typer.echo("Keep the secret now: it is not shown again. Log in with `dockyard login --api-key "
               f"{key}` (the secret from DOCKYARD_API_SECRET or a prompt).", err=True)


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", "-a", help="Also the keys Dockyard made for deployments."),
          as_json: bool = JSON_OPTION) -> None:
    """List your API keys (never their secrets).

    Example: dockyard key list --json
    """
    query = "subtype='api-key'" if all_ else "subtype='api-key' and parent=null"
    docs = profiles.connect().search("credential", filter=query, orderby="created:desc",
                                     select="id,name,description,created,expiry,parent").get("resources", [])
    rows = [{"id": d["id"], "name": d.get("name"), "created": d.get("created"), "expiry": d.get("expiry"),
             "parent": d.get("parent")} for d in docs]
    if as_json:
        print_json(rows)
        return
    table(["id", "name", "age", "expiry", "for"],
          [[short(r["id"]), r["name"], age(r["created"]), r["expiry"] or "never", r["parent"]] for r in rows])


@app.command()
def revoke(refs: list[str] = typer.Argument(..., metavar="KEY...", help="Key ids or uuid prefixes.")) -> None:
    """Delete API keys; sessions opened with them end at once.

    Example: dockyard key revoke 3f2a
    """
    client = profiles.connect()
    for key in [resolve.resource(client, "credential", r) for r in refs]:
        client.delete(key)
        typer.echo(f"{key} revoked")
