"""The ``dockyard`` command."""

from __future__ import annotations

import logging
import signal
from typing import Optional

import typer

from ..core import settings as config

app = typer.Typer(help="Dockyard: launch customised containers, Nuvla-compatible.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def main() -> None:
    """Dockyard: launch customised containers, Nuvla-compatible."""


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
) -> None:
    """Run the API server (and, in later versions, the UI and the workers) in one process."""
    import uvicorn

    from ..server.app import create_app
    from ..server.runtime import start

    settings = config.from_env().with_(host=host, port=port, data_dir=data_dir, database_url=database)
    logging.basicConfig(level=settings["log-level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        runtime = start(settings)
    except Exception as exc:  # a clear line, not a traceback, for a bad database URL or data dir
        raise typer.BadParameter(str(exc)) from exc
    if runtime.generated_admin_password:
        typer.echo(f"Created user 'admin' with password: {runtime.generated_admin_password}\n"
                   "(shown once; set DOCKYARD_ADMIN_PASSWORD to choose it)", err=True)
    application = create_app(runtime.services)
    typer.echo(f"Dockyard listening on http://{settings['host']}:{settings['port']}/api/cloud-entry-point", err=True)
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with these no-op
    # handlers in place that re-raise does nothing, so a clean stop exits 0 instead of dying by SIGTERM
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(application, host=settings["host"], port=settings["port"], log_level="warning",
                loop="uvloop", http="httptools", timeout_graceful_shutdown=10)
    runtime.services.store.close()


if __name__ == "__main__":
    app()
