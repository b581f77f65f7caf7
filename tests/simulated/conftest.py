"""A live `dockyard serve` on the simulated engine (DOCKYARD_ENGINE=simulated): the control plane without Docker."""

from __future__ import annotations

import pytest

from ..conftest import drop_pg_database, new_pg_database, start_server, stop_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def simulated_server(request, tmp_path_factory):
    """On a database of its own: the local engine is registered once per installation, and the session's
    shared PostgreSQL database already has the Docker one that other tests' servers registered."""
    data_dir = tmp_path_factory.mktemp(f"simulated-{request.param}")
    url = new_pg_database(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    server = start_server(data_dir, url, {"DOCKYARD_ENGINE": "simulated"})
    yield server
    stop_server(server)
    if url:
        drop_pg_database(url)
