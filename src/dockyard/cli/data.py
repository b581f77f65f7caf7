"""``dockyard data upload|records|download``: objects in an object store, and records describing them.

An upload is Nuvla's sequence: a ``data-object`` from ``data-object-template/generic`` (state NEW), its
``upload`` action for a pre-signed PUT URL, the bytes sent there (streamed, with a progress bar), ``ready``
(the server reads size and md5 from the store), then a ``data-record`` pointing at the object
(``data:bucket``, ``data:object``) with any ``--meta`` keys, so the object can be searched and given to a
deployment (``dockyard deploy APP --data RECORD``). A download asks ``download`` for a pre-signed GET URL and
streams the bytes to a file.
"""

from __future__ import annotations

import mimetypes
import os
import sys
from collections.abc import Iterator
from typing import Any, Optional

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from . import profiles, resolve
from .client import FAILED, NOT_FOUND, ApiError, CliError, Client, quote
from .output import JSON_OPTION, age, err, print_json, short, table

app = typer.Typer(help="Data: objects in buckets, and the records that describe them.", no_args_is_help=True)

LOCAL_CREDENTIAL = "credential/local-storage"
DATA_PREFIX = {"prefix": "data", "uri": "https://docs.nuvla.io/data"}
CHUNK = 1024 * 1024


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err, transient=False, disable=not err.is_terminal)


def _meta(values: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--meta")
        meta[key] = rest
    return meta


def _ensure_data_prefix(client: Client) -> None:
    """Records name their object with ``data:`` keys, which need the ``data`` key prefix to exist."""
    if not client.search("data-record-key-prefix", filter="prefix='data'", last=1).get("resources"):
        client.request("POST", "data-record-key-prefix", json=DATA_PREFIX, expect=(409,))


def _send(uri: str, path: str, content_type: str) -> None:
    size = os.path.getsize(path)
    with _progress() as bar:
        task = bar.add_task(os.path.basename(path)[:30], total=size)

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as handle:
                while block := handle.read(CHUNK):
                    bar.advance(task, len(block))
                    yield block

        try:
            response = httpx.put(uri, content=chunks(), headers={"Content-Type": content_type,
                                                                 "Content-Length": str(size)},
                                 timeout=httpx.Timeout(300.0, connect=10.0))
        except httpx.TransportError as exc:
            raise CliError(f"the upload failed: {exc}", FAILED) from exc
    if response.status_code >= 400:
        raise ApiError(response)


@app.command()
def upload(file: str = typer.Argument(..., metavar="FILE", help="The file to upload."),
           bucket: str = typer.Option(..., "--bucket", "-b", help="Bucket to put it in (created if missing)."),
           object_name: Optional[str] = typer.Option(None, "--object", help="Object name (default: the file's "
                                                                            "name)."),
           meta: list[str] = typer.Option([], "--meta", "-m", help="KEY=VALUE metadata on the record "
                                                                   "(repeatable; a 'prefix:' key needs its prefix)."),
           credential: str = typer.Option(LOCAL_CREDENTIAL, "--credential",
                                          help="Object-store credential (default: Dockyard's own store)."),
           as_json: bool = JSON_OPTION) -> None:
    """Upload a file as a data object, and describe it with a data record.

    Example: dockyard data upload run1.csv --bucket my-data --meta mission=galileo
    """
    if not os.path.isfile(file):
        raise CliError(f"{file}: no such file", 2)
    fields = _meta(meta)
    client = profiles.connect()
    name = object_name or os.path.basename(file)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    obj_id = client.add("data-object", {"template": {
        "href": "data-object-template/generic", "bucket": bucket, "object": name, "credential": credential,
        "content-type": content_type}})["resource-id"]
    try:
        uri = client.operation(obj_id, "upload")["uri"]
        _send(uri, file, content_type)
        obj = client.operation(obj_id, "ready")
    except BaseException:
        client.request("DELETE", obj_id, expect=(403, 404, 409))  # no NEW object left behind
        raise
    infra = client.get(credential, select="parent").get("parent")
    _ensure_data_prefix(client)
    record = {"infrastructure-service": infra, "name": name, "data:bucket": bucket, "data:object": name,
              "content-type": content_type, "bytes": obj.get("bytes"), "md5sum": obj.get("md5sum"), **fields}
    record_id = client.add("data-record", {k: v for k, v in record.items() if v is not None})["resource-id"]
    if as_json:
        print_json({"object": obj_id, "record": record_id, "bucket": bucket, "name": name,
                    "bytes": obj.get("bytes"), "md5sum": obj.get("md5sum")})
        return
    typer.echo(f"object: {obj_id} ({obj.get('bytes')} bytes, md5 {obj.get('md5sum')})\nrecord: {record_id}")


@app.command()
def records(filter_: Optional[str] = typer.Option(None, "--filter", help="A CIMI filter, e.g. "
                                                                         "\"data:bucket='my-data'\"."),
            as_json: bool = JSON_OPTION) -> None:
    """List data records.

    Example: dockyard data records --filter "mission='galileo'"
    """
    docs = profiles.connect().search("data-record", filter=filter_, orderby="created:desc").get("resources", [])
    if as_json:
        print_json(docs)
        return
    table(["id", "name", "bucket", "object", "bytes", "age"],
          [[short(d["id"]), d.get("name"), d.get("data:bucket"), d.get("data:object"), d.get("bytes"),
            age(d.get("created"))] for d in docs])


def _object_of(client: Client, ref: str) -> str:
    """A data object named directly, or through a record that names its bucket and object."""
    if ref.startswith("data-record/"):
        record = client.get(resolve.resource(client, "data-record", ref))
        bucket, name = record.get("data:bucket"), record.get("data:object")
        if not bucket or not name:
            raise CliError(f"{record['id']} names no data:bucket and data:object", NOT_FOUND)
        found = client.search("data-object", filter=f"bucket={quote(bucket)} and object={quote(name)}", last=1)
        if not found.get("resources"):
            raise CliError(f"no data object {bucket}/{name} (named by {record['id']})", NOT_FOUND)
        return found["resources"][0]["id"]
    return resolve.resource(client, "data-object", ref, describe="object")


@app.command()
def download(ref: str = typer.Argument(..., metavar="OBJECT", help="Data object (id or uuid prefix), or a "
                                                                   "data-record/<uuid> naming one."),
             output: Optional[str] = typer.Option(None, "--output", "-o", help="File to write ('-': standard "
                                                                               "output) (default: the object's "
                                                                               "name)."),
             ) -> None:
    """Download a data object's bytes.

    Example: dockyard data download 3f2a -o run1.csv
    """
    client = profiles.connect()
    obj_id = _object_of(client, ref)
    obj = client.get(obj_id)
    uri = client.operation(obj_id, "download", expect=(303,)).get("uri")
    if not uri:
        raise CliError(f"{obj_id}: the server gave no download URL", 5)
    target = output or os.path.basename(obj.get("object") or short(obj_id))
    _receive(uri, target, obj.get("bytes"))
    if target != "-":
        typer.echo(f"{obj_id} -> {target}", err=True)


def _receive(uri: str, target: str, size: int | None) -> None:
    """Stream to ``<target>.part``, renamed to ``target`` once whole: a failed download leaves no file."""
    tmp = None if target == "-" else f"{target}.part"
    try:
        with httpx.stream("GET", uri, timeout=httpx.Timeout(300.0, connect=10.0)) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response)
            with (open(tmp, "wb") if tmp else _Stdout()) as sink, _progress() as bar:
                task = bar.add_task(os.path.basename(target)[:30], total=size)
                for block in response.iter_bytes(CHUNK):
                    sink.write(block)
                    bar.advance(task, len(block))
        if tmp:
            os.replace(tmp, target)
    except BaseException as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, httpx.TransportError):
            raise CliError(f"the download failed: {exc}", FAILED) from exc
        raise


class _Stdout:
    def __enter__(self) -> Any:
        return sys.stdout.buffer

    def __exit__(self, *exc: object) -> None:
        sys.stdout.buffer.flush()
