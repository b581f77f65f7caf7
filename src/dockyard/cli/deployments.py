"""``dockyard deploy``, ``ps``, ``show``, ``params``, ``logs``, ``stop``, ``start``, ``rm``, ``clone``.

A deployment is named by its id or any unique prefix of its uuid (as Docker's containers are). URLs are the
app's ``urls`` patterns with ``${name}`` filled in from the deployment's parameters (``hostname``,
``tcp.<port>``, output parameters); a URL whose placeholders are not all known yet is not shown.
"""

from __future__ import annotations

import re
import time
from typing import Any, Optional

import typer

from . import profiles, progress, resolve
from .client import FAILED, ApiError, CliError, Client, quote
from .events import ENDED, Follower
from .output import JSON_OPTION, age, fields, out, print_json, short, state_style, table

HIDDEN_BY_DEFAULT = frozenset({"STOPPED", "CREATED"})
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
BATCH = 50

DEP_ARG = typer.Argument(..., metavar="DEP", help="Deployment id or a unique prefix of its uuid.")


# -- what a deployment shows ---------------------------------------------------------------------------

def parameters_of(client: Client, dep_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """deployment id → parameter name → parameter document, in one search per :data:`BATCH` deployments."""
    found: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in dep_ids}
    for i in range(0, len(dep_ids), BATCH):
        part = dep_ids[i:i + BATCH]
        docs = client.search("deployment-parameter", filter=" or ".join(f"parent={quote(d)}" for d in part),
                             select="id,parent,name,value,description,updated").get("resources", [])
        for doc in docs:
            found.setdefault(doc.get("parent", ""), {})[doc.get("name", "")] = doc
    return found


def urls_of(dep: dict[str, Any], params: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The app's URL patterns whose every ``${name}`` has a value, filled in."""
    values = {name: doc.get("value") for name, doc in params.items() if doc.get("value") not in (None, "")}
    urls = []
    for pair in ((dep.get("module") or {}).get("content") or {}).get("urls") or []:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        label, pattern = pair
        names = PLACEHOLDER.findall(pattern)
        if all(n in values for n in names):
            urls.append({"label": label, "url": PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), pattern)})
    return urls


def outputs_of(dep: dict[str, Any], params: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    declared = ((dep.get("module") or {}).get("content") or {}).get("output-parameters") or []
    return [{"name": o["name"], "value": (params.get(o["name"]) or {}).get("value"),
             "description": o.get("description")} for o in declared if isinstance(o, dict) and "name" in o]


def app_of(dep: dict[str, Any]) -> str:
    module = dep.get("module") or {}
    return module.get("path") or module.get("href") or module.get("id") or ""


def print_result(client: Client, dep: dict[str, Any]) -> None:
    params = parameters_of(client, [dep["id"]])[dep["id"]]
    urls = urls_of(dep, params)
    outputs = outputs_of(dep, params)
    out.print(f"{dep['id']} is {dep.get('state')}")
    for url in urls:
        out.print(f"  {url['label']}: {url['url']}", soft_wrap=True)
    for output in outputs:
        value = output["value"] if output["value"] not in (None, "") else "(not set yet)"
        out.print(f"  {output['name']} = {value}", soft_wrap=True)


# -- deploy ----------------------------------------------------------------------------------------------

def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{value!r} is not NAME=VALUE", param_hint=option)
        pairs.append((name, rest))
    return pairs


def _engine(client: Client, ref: str) -> str:
    """The credential a deployment runs with: given, or the first of an infrastructure service."""
    if ref.startswith("infrastructure-service/"):
        creds = client.search("credential", filter=f"parent={quote(ref)}", select="id", last=1)
        if not creds.get("resources"):
            raise CliError(f"no credential of {ref} that you can use", 3)
        return creds["resources"][0]["id"]
    return resolve.resource(client, "credential", ref)


def start_and_wait(client: Client, dep_id: str, wait: bool, timeout: float, created: bool = False) -> None:
    follower = progress.subscribe(client, dep_id) if wait else None
    try:
        try:
            answer = client.operation(dep_id, "start")
        except ApiError as exc:  # the start itself was refused (e.g. a mount): say what deploy left
            if not created:
                raise
            raise CliError(f"{exc.message} ({dep_id} is left CREATED: `dockyard rm {short(dep_id)}`)",
                           exc.exit_code) from exc
        if not wait:
            typer.echo(dep_id)
            return
        out.print(f"Starting {dep_id}")
        dep = progress.wait_started(client, dep_id, answer.get("location"), follower, timeout, out)
        print_result(client, dep)
    finally:
        if follower:
            follower.close()


def deploy(
    app_ref: str = typer.Argument(..., metavar="APP", help="App path (project/app), id, or uuid prefix."),
    env: list[str] = typer.Option([], "--env", "-e", help="NAME=VALUE: this deployment's value of one of the "
                                                          "app's variables (repeatable)."),
    data: list[str] = typer.Option([], "--data", help="A data record (id or uuid prefix) whose object the "
                                                      "deployment may read, its bucket mounted (repeatable)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="The engine's credential (or its "
                                         "infrastructure-service id) (default: the local Docker engine)."),
    name: Optional[str] = typer.Option(None, "--name", help="A name for the deployment."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Show the phases until it runs, then its URLs and "
                                                          "output parameters; exit 1 if it ends in ERROR."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds --wait waits at most."),
) -> None:
    """Launch an app: create a deployment, set its values, start it.

    Example: dockyard deploy demo/web --env GREETING=hi --wait

    Without --wait the deployment's id is printed as soon as its start is queued.
    """
    env_pairs = _pairs(env, "--env")
    client = profiles.connect()
    body: dict[str, Any] = {"module": {"href": resolve.app(client, app_ref)}}
    if data:
        body["data-records"] = {resolve.resource(client, "data-record", r): {} for r in data}
    if engine:
        body["parent"] = _engine(client, engine)
    if name:
        body["name"] = name
    dep_id = client.add("deployment", body)["resource-id"]
    try:
        if env_pairs:
            client.edit(dep_id, {"module": {"content": {"environmental-variables": [
                {"name": k, "value": v} for k, v in env_pairs]}}})
    except CliError:
        client.request("DELETE", dep_id, expect=(404, 409))  # nothing half-made is left behind
        raise
    start_and_wait(client, dep_id, wait, timeout, created=True)


# -- listing and showing ---------------------------------------------------------------------------------

def ps(all_: bool = typer.Option(False, "--all", "-a", help="Also stopped and never started deployments."),
       as_json: bool = JSON_OPTION) -> None:
    """List deployments: short id, app, state, age, URLs.

    Example: dockyard ps -a
    """
    client = profiles.connect()
    docs = client.search("deployment", orderby="created:desc",
                         select="id,name,module,state,created,updated,status-message").get("resources", [])
    if not all_:
        docs = [d for d in docs if d.get("state") not in HIDDEN_BY_DEFAULT]
    params = parameters_of(client, [d["id"] for d in docs])
    rows = [{"id": d["id"], "name": d.get("name"), "app": app_of(d), "state": d.get("state"),
             "created": d.get("created"), "updated": d.get("updated"), "status-message": d.get("status-message"),
             "urls": urls_of(d, params.get(d["id"], {}))} for d in docs]
    if as_json:
        print_json(rows)
        return
    table(["id", "app", "state", "age", "urls"],
          [[short(r["id"]), r["app"], r["state"], age(r["created"]), " ".join(u["url"] for u in r["urls"])]
           for r in rows], styles={"state": state_style})


def show(ref: str = DEP_ARG, as_json: bool = JSON_OPTION) -> None:
    """Show a deployment: state and reason, phases, URLs, parameters.

    Example: dockyard show 3f2a
    """
    client = profiles.connect()
    dep = client.get(resolve.deployment(client, ref))
    if as_json:
        print_json(dep)
        return
    params = parameters_of(client, [dep["id"]])[dep["id"]]
    phases = dep.get("phases") or {}
    task = dep.get("task") or {}
    fields([
        ("id", dep["id"]), ("name", dep.get("name")), ("app", app_of(dep)),
        ("version", (dep.get("module") or {}).get("id")), ("state", dep.get("state")),
        ("message", dep.get("status-message")),
        ("engine", dep.get("infrastructure-service-name") or dep.get("infrastructure-service")),
        ("credential", dep.get("parent")), ("created", f"{dep.get('created')} ({age(dep.get('created'))} ago)"),
        ("task", " ".join(f"{k}={v}" for k, v in task.items())),
        ("phases", " ".join(f"{k}={phases[k]}" for k in sorted(phases, key=lambda k: str(phases[k])))),
        *(("url", f"{url['label']} {url['url']}") for url in urls_of(dep, params)),
        *(("param", f"{name} = {'' if doc.get('value') is None else doc['value']}")
          for name, doc in sorted(params.items())),
    ])


def _param_rows(params: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": n, "value": d.get("value"), "description": d.get("description"), "updated": d.get("updated")}
            for n, d in sorted(params.items())]


def params(ref: str = DEP_ARG,
           watch: bool = typer.Option(False, "--watch", "-w", help="Keep showing changes until interrupted "
                                                                   "(Ctrl-C) or the deployment is gone."),
           as_json: bool = JSON_OPTION) -> None:
    """List a deployment's parameters (hostname, tcp.<port>, output parameters ...).

    Example: dockyard params 3f2a --watch
    """
    client = profiles.connect()
    dep_id = resolve.deployment(client, ref)
    follower = Follower(client, "deployment-parameter,deployment",
                        f"parent={quote(dep_id)} or id={quote(dep_id)}").open() if watch else None
    current = parameters_of(client, [dep_id])[dep_id]
    rows = _param_rows(current)
    if as_json and not watch:
        print_json(rows)
        return
    if not watch:
        table(["name", "value", "description"], [[r["name"], r["value"], r["description"]] for r in rows])
        return
    _watch_params(follower, dep_id, current, as_json)


def _watch_params(follower: Follower, dep_id: str, current: dict[str, dict[str, Any]], as_json: bool) -> None:
    """Each parameter once as it is, then each change as a line: ``name=value`` (or a JSON object)."""
    import json
    import sys

    def emit(doc: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(json.dumps({"name": doc.get("name"), "value": doc.get("value"),
                                         "updated": doc.get("updated")}, sort_keys=True) + "\n")
        else:
            value = doc.get("value")
            sys.stdout.write(f"{doc.get('name')}={'' if value is None else value}\n")
        sys.stdout.flush()

    for doc in current.values():
        emit(doc)
    try:
        while True:
            event = follower.next(1.0)
            if event is None:
                continue
            if event.kind == ENDED or (event.kind == "delete" and event.data.get("id") == dep_id):
                return
            doc = event.data
            if doc.get("resource-type") == "deployment-parameter" and doc.get("parent") == dep_id:
                if current.get(doc.get("name", ""), {}).get("value") != doc.get("value"):
                    current[doc.get("name", "")] = doc
                    emit(doc)
    except KeyboardInterrupt:
        return
    finally:
        follower.close()


# -- logs ------------------------------------------------------------------------------------------------

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_ts(value: str) -> str:
    """``10m``, ``2h``, ``30s``, ``1d`` ago, or an RFC 3339 time → Nuvla's UTC timestamp."""
    from datetime import datetime, timedelta, timezone

    match = DURATION.match(value.strip())
    if match:
        when = datetime.now(timezone.utc) - timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])
    else:
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter("give a duration (30s, 10m, 2h, 1d) or a time (2026-01-31T12:00:00Z)",
                                     param_hint="--since") from None
        if when.tzinfo is None:
            when = when.astimezone()
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _print_line(line: str, since: str | None, timestamps: bool) -> None:
    stamp, _, text = line.partition(" ")
    if not stamp[:1].isdigit():  # not the engine's "<timestamp> <text>": shown as it is
        stamp, text = "", line
    if since and stamp and stamp[:23] < since[:23]:
        return
    typer.echo(line if timestamps else text)


def logs(ref: str = DEP_ARG,
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing lines as they are written, "
                                                                   "until interrupted or the container is gone."),
         since: Optional[str] = typer.Option(None, "--since", help="Only lines since a duration ago (30s, 10m, "
                                                                   "2h, 1d) or a time (RFC 3339)."),
         tail: Optional[int] = typer.Option(None, "--tail", "-n", min=0,
                                            help="Only the last N lines (default: 100, all with --since)."),
         timestamps: bool = typer.Option(False, "--timestamps", "-t", help="Show each line's timestamp.")) -> None:
    """Print a deployment's log.

    Example: dockyard logs 3f2a -f --tail 20
    """
    client = profiles.connect()
    dep_id = resolve.deployment(client, ref)
    cutoff = since_ts(since) if since else None
    count = tail if tail is not None else (None if since else 100)
    if follow:
        _follow(client, dep_id, count, cutoff, timestamps)
    else:
        _fetch(client, dep_id, count, cutoff, timestamps)


def _follow(client: Client, dep_id: str, count: int | None, since: str | None, timestamps: bool) -> None:
    path = f"deployment/{dep_id.split('/', 1)[1]}/log-stream"
    try:
        with client.stream(path, params={"tail": "all" if count is None else str(count)},
                           headers={"Accept": "text/plain"}) as response:
            for line in response.iter_lines():
                _print_line(line, since, timestamps)
    except KeyboardInterrupt:
        return


def _fetch(client: Client, dep_id: str, count: int | None, since: str | None, timestamps: bool) -> None:
    """Nuvla's way: ``create-log``, then ``fetch`` (a job fills the resource-log), then read it."""
    body: dict[str, Any] = {"lines": 100_000 if count is None else max(count, 1)}
    if since:
        body["since"] = since
    log_id = client.operation(dep_id, "create-log", body)["resource-id"]
    try:
        job_id = client.operation(log_id, "fetch").get("location")
        _wait_job(client, job_id)
        lines = [line for component in (client.get(log_id).get("log") or {}).values() for line in component]
    finally:
        client.request("DELETE", log_id, expect=(403, 404, 409))
    for line in lines[-count:] if count else ([] if count == 0 else lines):
        _print_line(line, since, timestamps)


def _wait_job(client: Client, job_id: str | None, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job_id:
        job = client.get(job_id)
        if job.get("state") in ("SUCCESS", "FAILED", "CANCELED"):
            if job["state"] != "SUCCESS":
                raise CliError(job.get("status-message") or f"{job_id} {job['state'].lower()}", FAILED)
            return job
        if time.monotonic() > deadline:
            raise CliError(f"{job_id} did not finish within {timeout:g} s", FAILED)
        time.sleep(0.2)
    return {}


# -- lifecycle -------------------------------------------------------------------------------------------

def _wait_state(client: Client, dep_id: str, states: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            dep = client.get(dep_id)
        except ApiError as exc:
            if exc.status == 404 and "GONE" in states:
                return {"id": dep_id, "state": "GONE"}
            raise
        if dep.get("state") in states:
            return dep
        if dep.get("state") == "ERROR":
            raise CliError(f"{dep_id} is ERROR: {dep.get('status-message') or 'no reason given'}", FAILED)
        if time.monotonic() > deadline:
            raise CliError(f"{dep_id} is still {dep.get('state')} after {timeout:g} s", FAILED)
        time.sleep(0.25)


WAIT = typer.Option(False, "--wait", "-w", help="Return once it is done.")
TIMEOUT = typer.Option(120.0, "--timeout", help="Seconds --wait waits at most.")


def stop(refs: list[str] = typer.Argument(..., metavar="DEP...", help="Deployments (ids or uuid prefixes)."),
         wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
    """Stop deployments: their containers are removed, their keys revoked.

    Example: dockyard stop 3f2a --wait
    """
    client = profiles.connect()
    for dep_id in [resolve.deployment(client, r) for r in refs]:
        client.operation(dep_id, "stop")
        if wait:
            _wait_state(client, dep_id, {"STOPPED"}, timeout)
        typer.echo(f"{dep_id} {'stopped' if wait else 'stopping'}")


def start(ref: str = DEP_ARG,
          wait: bool = typer.Option(False, "--wait", "-w", help="Show the phases until it runs (as deploy)."),
          timeout: float = typer.Option(300.0, "--timeout", help="Seconds --wait waits at most.")) -> None:
    """Start a created or stopped deployment again.

    Example: dockyard start 3f2a --wait
    """
    client = profiles.connect()
    start_and_wait(client, resolve.deployment(client, ref), wait, timeout)


def rm(refs: list[str] = typer.Argument(..., metavar="DEP...", help="Deployments (ids or uuid prefixes)."),
       force: bool = typer.Option(False, "--force", help="Also when it runs: its container is removed too.")
       ) -> None:
    """Delete stopped deployments (with --force, in any state).

    Example: dockyard rm 3f2a
    """
    client = profiles.connect()
    for dep_id in [resolve.deployment(client, r) for r in refs]:
        if force:
            client.operation(dep_id, "force-delete")
        else:
            try:
                client.delete(dep_id)
            except ApiError as exc:
                if exc.status == 409:
                    raise CliError(f"{exc.message} (stop it first, or use --force)", FAILED) from exc
                raise
        typer.echo(f"{dep_id} deleted")


def clone(ref: str = DEP_ARG) -> None:
    """Create a new deployment of the same app version with the same values and data (not started).

    Example: dockyard clone 3f2a && dockyard start <new id>
    """
    client = profiles.connect()
    created = client.operation(resolve.deployment(client, ref), "clone")
    typer.echo(created.get("resource-id", ""))


__all__ = ["clone", "deploy", "logs", "params", "ps", "rm", "show", "start", "stop"]
