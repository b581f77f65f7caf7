"""``dockyard app create|list|show|edit|versions``: apps (Nuvla's ``module``) from YAML files."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from . import appfile, profiles, resolve
from .client import CliError, Client
from .output import JSON_OPTION, age, fields, print_json, short, table

app = typer.Typer(help="Apps: an image with its ports, variables, output parameters and URLs.",
                  no_args_is_help=True)

FILE_OPTION = typer.Option(..., "--file", "-f", help="The app file: the module document in YAML or JSON "
                                                     "('-' for standard input).")


def _read(path: str) -> appfile.AppFile:
    if path == "-":
        return appfile.load("<stdin>", sys.stdin.read())
    try:
        with open(path, encoding="utf-8") as handle:
            return appfile.load(path, handle.read())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", 2) from exc


def image_name(content: dict[str, Any]) -> str:
    image = content.get("image") or {}
    name = "/".join(p for p in (image.get("registry"), image.get("repository"), image.get("image-name")) if p)
    return name + (f":{image['tag']}" if image.get("tag") else "")


@app.command()
def create(file: str = FILE_OPTION) -> None:
    """Create an app (or a project) from a file, checked before it is sent.

    Example: dockyard app create -f app.yaml

    A minimal app.yaml (its project 'demo' must exist: path: demo, subtype: project):

      path: demo/web
      subtype: component
      content:
        image: {image-name: nginx, tag: stable}
        ports: [{target-port: 80}]
        urls: [[web, "http://${hostname}:${tcp.80}/"]]
    """
    client = profiles.connect()
    parsed = _read(file)
    appfile.check(parsed, appfile.server_schemas(client))
    created = client.add("module", parsed.doc)
    typer.echo(f"Created {created['resource-id']} ({parsed.doc.get('path')})")


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List the apps and projects you can see.

    Example: dockyard app list --json
    """
    found = profiles.connect().search("module", orderby="path:asc",
                                      select="id,path,name,subtype,versions,created,updated")
    docs = found.get("resources", [])
    rows = [{"id": d["id"], "path": d.get("path"), "name": d.get("name"), "subtype": d.get("subtype"),
             "versions": len([v for v in d.get("versions") or [] if v]), "created": d.get("created"),
             "updated": d.get("updated")} for d in docs]
    if as_json:
        print_json(rows)
        return
    table(["id", "path", "subtype", "versions", "updated"],
          [[short(r["id"]), r["path"], r["subtype"], r["versions"] or "", age(r["updated"])] for r in rows])


def _module(client: Client, ref: str) -> dict[str, Any]:
    return client.get(resolve.app(client, ref))


@app.command()
def show(ref: str = typer.Argument(..., metavar="APP", help="Path (project/app), id, or uuid prefix."),
         as_json: bool = JSON_OPTION) -> None:
    """Show an app: its image, ports, variables, output parameters and URLs.

    Example: dockyard app show demo/web
    """
    doc = _module(profiles.connect(), ref)
    if as_json:
        print_json(doc)
        return
    content = doc.get("content") or {}
    versions = [v for v in doc.get("versions") or [] if v]
    fields([
        ("id", doc["id"]), ("path", doc.get("path")), ("name", doc.get("name")), ("subtype", doc.get("subtype")),
        ("description", doc.get("description")), ("versions", str(len(versions)) if versions else None),
        ("image", image_name(content)),
        ("ports", ", ".join(f"{p.get('protocol', 'tcp')}/{p['target-port']}" for p in content.get("ports", []))),
        ("variables", ", ".join(f"{e['name']}={e.get('value', '')}"
                                for e in content.get("environmental-variables", []))),
        ("outputs", ", ".join(o["name"] for o in content.get("output-parameters", []))),
        ("urls", ", ".join(f"{label} {url}" for label, url in content.get("urls", []))),
        ("commit", content.get("commit")), ("updated", doc.get("updated")),
    ])


@app.command()
def edit(ref: str = typer.Argument(..., metavar="APP", help="Path (project/app), id, or uuid prefix."),
         file: str = FILE_OPTION,
         message: Optional[str] = typer.Option(None, "--message", "-m",
                                               help="Commit message of the new version.")) -> None:
    """Change an app from a file; new content makes a new version.

    Example: dockyard app edit demo/web -f app.yaml -m "serve on 8080"
    """
    client = profiles.connect()
    module_id = resolve.app(client, ref)
    parsed = _read(file)
    current = client.get(module_id)
    appfile.check(parsed, appfile.server_schemas(client), edit=True, subtype=current.get("subtype"))
    body = dict(parsed.doc)
    if message is not None:
        if "content" not in body:  # as Nuvla: saving the same content with a new message is a version
            body["content"] = current.get("content") or {}
        body["content"] = {**body["content"], "commit": message}
    edited = client.edit(module_id, body)
    versions = [v for v in edited.get("versions") or [] if v]
    typer.echo(f"Edited {module_id}" + (f" (version {len(versions) - 1})" if "content" in body else ""))


@app.command()
def versions(ref: str = typer.Argument(..., metavar="APP", help="Path (project/app), id, or uuid prefix."),
             as_json: bool = JSON_OPTION) -> None:
    """List an app's versions, the latest last; `app show module/<uuid>_<n>` reads one.

    Example: dockyard app versions demo/web
    """
    doc = _module(profiles.connect(), ref)
    rows = [{"version": i, "id": f"{doc['id']}_{i}", "content": v.get("href"), "author": v.get("author"),
             "commit": v.get("commit")} for i, v in enumerate(doc.get("versions") or []) if v]
    if as_json:
        print_json(rows)
        return
    table(["version", "author", "commit", "id"], [[r["version"], r["author"], r["commit"], r["id"]] for r in rows])
