"""The ``dockyard`` command."""

from __future__ import annotations

import enum
import logging
import signal
import socket
import sys
import threading
from typing import Optional

import typer

from ..core import settings as config
from . import logs

log = logging.getLogger("dockyard")

class Cli(typer.Typer):
    """The typer app, showing a client command's failure as one line with its exit code (client.CliError)."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        from .client import CliError

        try:
            return super().__call__(*args, **kwargs)
        except CliError as exc:
            exc.show()
            sys.exit(exc.exit_code)


# locals stay out of tracebacks: they may hold a password or a session cookie
app = Cli(help="Dockyard: launch customised containers, Nuvla-compatible.", no_args_is_help=True,
                  add_completion=True, pretty_exceptions_show_locals=False)


@app.callback()
def main() -> None:
    """Dockyard: launch customised containers, Nuvla-compatible."""


def _settings(**overrides: object) -> config.Settings:
    try:
        settings = config.from_env().with_(**overrides)
        logs.configure(settings["log-level"], settings["log-format"])
    except ValueError as exc:  # a bad DOCKYARD_* value: one line, not a traceback
        raise typer.BadParameter(str(exc)) from exc
    return settings


LogFormat = enum.Enum("LogFormat", {name: name for name in config.LOG_FORMATS}, type=str)  # type: ignore[misc]
LOG_FORMAT = typer.Option(None, "--log-format", help="Server log format: text (the default), or json: one "
                          "object per line.", envvar="DOCKYARD_LOG_FORMAT")


def _value(choice: Optional[enum.Enum]) -> Optional[str]:
    return None if choice is None else str(choice.value)


def _runtime(settings: config.Settings):  # noqa: ANN202
    from ..server.runtime import start

    try:
        return start(settings)
    except Exception as exc:  # a clear line, not a traceback, for a bad database URL or data dir
        raise typer.BadParameter(str(exc)) from exc


def _quiet_signals() -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with these no-op
    # handlers in place that re-raise does nothing, so a clean stop exits 0 instead of dying by SIGTERM
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Address to listen on [default: 127.0.0.1].",
                                       envvar="DOCKYARD_HOST"),
    port: Optional[int] = typer.Option(None, help="Port to listen on [default: 8200].", envvar="DOCKYARD_PORT"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data directory [default: ./.dockyard].",
                                           envvar="DOCKYARD_DATA_DIR"),
    database: Optional[str] = typer.Option(None, "--database",
                                           help="SQLAlchemy URL of the store [default: SQLite in the data dir].",
                                           envvar="DOCKYARD_DATABASE_URL"),
    no_workers: bool = typer.Option(False, "--no-workers",
                                    help="Serve the API only; run `dockyard worker` processes for jobs."),
    processes: int = typer.Option(1, "--processes", min=1,
                                  help="API processes sharing the port (PostgreSQL only); with more than 1, this "
                                  "process runs the workers and the reconciler, and the API processes serve.",
                                  envvar="DOCKYARD_PROCESSES"),
    log_format: Optional[LogFormat] = LOG_FORMAT,
) -> None:
    """Run the API, the job workers and the reconciler in one process (or the API in --processes N)."""
    import uvicorn

    from ..server.app import create_app
    from ..server.runtime import attach_engine, http_server, start_background

    overrides = dict(host=host, port=port, data_dir=data_dir, database_url=database, log_format=_value(log_format))
    settings = _settings(**overrides)
    if processes > 1 and not settings.database_url.startswith("postgresql"):
        # the event stream and job wake-ups reach other processes through PostgreSQL's NOTIFY only
        raise typer.BadParameter("--processes above 1 needs a PostgreSQL store (--database postgresql+psycopg://…)",
                                 param_hint="--processes")
    runtime = _runtime(settings)
    if runtime.generated_admin_password:
        typer.echo(f"Created user 'admin' with password: {runtime.generated_admin_password}\n"
                   "(shown once; set DOCKYARD_ADMIN_PASSWORD to choose it)", err=True)
    attach_engine(runtime)
    sockets = [_bind(settings["host"], settings["port"])]
    for extra in runtime.extra_hosts:
        if extra != settings["host"] and settings["host"] not in ("0.0.0.0", "::"):
            try:
                sockets.append(_bind(extra, settings["port"]))
            except OSError as exc:
                log.warning("cannot listen on %s for containers: %s", extra, exc)
    start_background(runtime, workers=not no_workers)
    if processes > 1:
        _serve_processes(runtime, processes, sockets, overrides)
        return
    application = create_app(runtime.services)
    log.info("Dockyard listening on http://%s:%s/api/cloud-entry-point", settings["host"], settings["port"])
    _quiet_signals()
    # log_config=None: uvicorn's own records go through the handler configured above, in the same format
    server = http_server(uvicorn.Config(application, log_level="warning", log_config=None, loop="uvloop",
                                        http="httptools", timeout_graceful_shutdown=10))
    try:
        server.run(sockets=sockets)
    finally:
        runtime.stop()


def _serve_processes(runtime, count: int, sockets: list[socket.socket], overrides: dict) -> None:  # noqa: ANN001
    from . import processes

    settings = runtime.services.settings
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    extras = {k: v for k, v in runtime.services.extras.items() if k == "api-endpoint"}
    log.info("Dockyard listening on http://%s:%s/api/cloud-entry-point with %d API processes", settings["host"],
             settings["port"], count)
    try:
        processes.run(count, sockets, overrides, extras, stopping)
    finally:
        runtime.stop()


@app.command()
def worker(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data directory (for the master key).",
                                           envvar="DOCKYARD_DATA_DIR"),
    database: Optional[str] = typer.Option(None, "--database", help="SQLAlchemy URL of the shared store.",
                                           envvar="DOCKYARD_DATABASE_URL"),
    log_format: Optional[LogFormat] = LOG_FORMAT,
) -> None:
    """Run job workers and the reconciler only, against a store shared with `dockyard serve --no-workers`."""
    from ..server.runtime import start_background

    settings = _settings(data_dir=data_dir, database_url=database, log_format=_value(log_format))
    runtime = _runtime(settings)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    start_background(runtime, workers=True)
    log.info("Dockyard worker running (%s to %s threads)", settings["workers"], settings["workers-max"])
    done.wait()
    runtime.stop()


def _register_client_commands() -> None:
    """The client side (README "Command line"): each talks HTTP to a Dockyard, as any client does."""
    from . import apps, auth, data, deployments, keys, search

    for command in (auth.login, auth.logout, auth.whoami, deployments.deploy, deployments.ps, deployments.show,
                    deployments.params, deployments.logs, deployments.stop, deployments.start, deployments.rm,
                    deployments.clone, search.search):
        app.command()(command)
    app.add_typer(apps.app, name="app")
    app.add_typer(keys.app, name="key")
    app.add_typer(data.app, name="data")


_register_client_commands()

if __name__ == "__main__":
    app()
