"""Live-state benchmark: how soon after a container exits its deployment says ERROR, next to how soon the engine
itself tells a listener.

    python benchmarks/live_state.py            # 10 rounds, about 1 minute
    python benchmarks/live_state.py --rounds 3

It starts ``dockyard serve`` (SQLite, temporary data dir, loopback, a sweep interval of an hour so that only
the engine's events can move a deployment), and a component of the tests' ``app_image`` that exits with code
3 one second after it starts. Round by round:

* Dockyard: start a deployment, see it STARTED, then see it ERROR on ``GET /api/event-stream`` (the client
  a browser or the CLI would use); the figure is that moment minus the container's own ``FinishedAt``.
* Engine: ``docker run -d`` of the same image and exit, with the SDK's event stream open for its ``die``;
  the figure is that event's arrival minus the same ``FinishedAt``: what any listener of the engine gets.

Both are wall-clock differences on one machine. Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time

import docker
from rich.table import Table

from deploy import (BENCH_LABEL, RUN_ID, Client, StreamWatcher, cleanup, console, log, ms, new_deployment, p90,
                    path_of, set_up, start_server, stop_server)
from dockyard.core.time import parse_ts
from tests.deployments.images import app_image

EXIT_ENV = [{"name": "EXIT_AFTER", "value": "1"}, {"name": "EXIT_CODE", "value": "3"}]


def exiting_module(client: Client, module_id: str) -> str:
    """The set-up component, now exiting one second after it starts (a second version of it)."""
    content = client.call("GET", path_of(module_id))["content"]
    client.call("PUT", path_of(module_id), {"content": {**content, "environmental-variables": EXIT_ENV,
                                                        "commit": "exits"}})
    return module_id


def finished_at(dclient: docker.DockerClient, labels: dict[str, str]) -> float:
    [container] = dclient.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]})
    return parse_ts(container.attrs["State"]["FinishedAt"]).timestamp()


def measure_dockyard(client: Client, watcher: StreamWatcher, dclient: docker.DockerClient, module_id: str,
                     deployed: list[str]) -> float:
    dep = new_deployment(client, module_id, f"live-{RUN_ID}", deployed)
    client.call("POST", path_of(dep) + "/start", {}, want=202)
    watcher.wait(dep, "STARTED")
    seen = watcher.wait(dep, "ERROR")
    wall = time.time() - (time.perf_counter() - seen)
    latency = wall - finished_at(dclient, {"dockyard.deployment-id": dep})
    client.call("POST", path_of(dep) + "/force-delete", {})  # its container goes with a job of its own
    return latency


def measure_engine(dclient: docker.DockerClient, image: str) -> float:
    mark = f"{RUN_ID}-{time.monotonic_ns()}"
    labels = {BENCH_LABEL: RUN_ID, "dockyard-bench-run": mark}
    arrived: list[float] = []
    events = dclient.events(decode=True, filters={"type": "container", "event": "die",
                                                  "label": f"dockyard-bench-run={mark}"})
    reader = threading.Thread(target=lambda: arrived.extend(time.time() for _ in events), daemon=True)
    reader.start()
    container = dclient.containers.run(image, detach=True, labels=labels,
                                       environment={"EXIT_AFTER": "1", "EXIT_CODE": "3"})
    deadline = time.monotonic() + 30
    while not arrived and time.monotonic() < deadline:
        time.sleep(0.005)
    events.close()
    if not arrived:
        raise RuntimeError("the engine sent no die event within 30 s")
    latency = arrived[0] - finished_at(dclient, {"dockyard-bench-run": mark})
    container.remove(force=True)
    return latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each measurement (default 10)")
    args = parser.parse_args()
    dclient = docker.from_env()
    image = app_image(dclient)
    data_dir = tempfile.mkdtemp(prefix="dockyard-bench-live-")
    server, client, watcher, deployed = None, None, None, []
    try:
        server = start_server(data_dir, extra_env={"DOCKYARD_PUBLISH_IP": "127.0.0.1",
                                                   "DOCKYARD_SWEEP_INTERVAL": "3600"})
        client, module_id = set_up(server.endpoint, image)
        module_id = exiting_module(client, module_id)
        watcher = StreamWatcher(server.endpoint, client.http.cookies)
        log(f"dockyard serve at {server.endpoint}; {args.rounds} rounds, one warm-up of each not counted")
        measure_dockyard(client, watcher, dclient, module_id, deployed)
        measure_engine(dclient, image)
        ours, engine = [], []
        for _ in range(args.rounds):
            ours.append(measure_dockyard(client, watcher, dclient, module_id, deployed))
            engine.append(measure_engine(dclient, image))
        table = Table(title="Container exit → seen (ms after the container's FinishedAt)", title_justify="left")
        for col in ("what", "n", "median", "p90", "min", "max"):
            table.add_column(col, justify="left" if col == "what" else "right")
        for name, values in (("Dockyard: deployment ERROR on the event stream", ours),
                             ("engine: die event on the SDK's event stream", engine)):
            table.add_row(name, str(len(values)), ms(statistics.median(values)), ms(p90(values)),
                          ms(min(values)), ms(max(values)))
        console.print(table)
        ratio = statistics.median(ours) / statistics.median(engine)
        console.print(f"Dockyard adds {ms(statistics.median(ours) - statistics.median(engine))} ms (median) "
                      f"to the engine's own notice: {ratio:.1f}× its latency.")
        return 0
    finally:
        if watcher is not None:
            watcher.close()
        if client is not None:
            client.close()
        if server is not None:
            stop_server(server)
        cleanup(dclient, deployed)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
