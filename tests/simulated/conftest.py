"""A live `dockyard serve` on the simulated engine (DOCKYARD_ENGINE=simulated): the control plane without Docker."""

from __future__ import annotations

import pytest

from ..conftest import start_server, stop_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def simulated_server(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"simulated-{request.param}")
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    server = start_server(data_dir, url, {"DOCKYARD_ENGINE": "simulated"})
    yield server
    stop_server(server)
