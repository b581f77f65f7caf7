"""Web UI benchmark: how soon an output parameter the container sets shows in an open deployment page, and how
long the deployment list takes to load with 1,000 deployments; each next to a baseline of the same run.

    python benchmarks/ui.py                # 20 samples each, about 1 minute
    python benchmarks/ui.py --samples 50 --deployments 2000

It starts ``dockyard serve`` (SQLite, temporary data dir, loopback), a user, and the tests' ``app_image`` as
an app with one output parameter; starts one deployment and logs in with the key its container received (as
the container would). Debian's Chromium (headless, through Playwright) keeps the deployment's page open.

* Output parameter → page: the key PUTs a new value; the figure is the moment a MutationObserver in the page
  sees it in the parameters table minus the moment before the PUT (one wall clock, one machine). Baseline: the
  same PUT's event arriving at a plain client of ``/api/event-stream`` (what any page can at best show).
  Target: p50 ≤ 100 ms.
* Deployment list: ``N`` deployments created without starting them (CREATED, as ``POST /api/deployment``
  leaves them), then ``/ui/deployments`` loaded afresh; the figure is the navigation's ``loadEventEnd`` (HTML,
  CSS, script, live badges subscribed). Baseline: ``GET /api/deployment`` of the same first page as JSON.
  Target: p50 ≤ 300 ms.

Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import docker
import httpx
from playwright.sync_api import sync_playwright
from rich.table import Table

from deploy import (Client, cleanup, console, log, path_of, set_up, start_server, stop_server, tcp80)
from tests.deployments.images import app_image

CHROMIUM = "/usr/bin/chromium"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def app_with_output(client: Client, module_id: str) -> str:
    content = client.call("GET", path_of(module_id))["content"]
    client.call("PUT", path_of(module_id), {"content": {
        **content, "output-parameters": [{"name": "token", "description": "set by the container"}],
        "commit": "an output parameter"}})
    return module_id


def started_deployment(client: Client, module_id: str, deployed: list[str]) -> str:
    dep = client.call("POST", "/deployment", {"module": {"href": module_id}}, want=201)["resource-id"]
    deployed.append(dep)
    client.call("POST", path_of(dep) + "/start", {}, want=202)
    deadline = time.monotonic() + 60
    while client.call("GET", path_of(dep))["state"] != "STARTED":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dep} did not start within 60 s")
        time.sleep(0.05)
    return dep


def container_key(endpoint: str, client: Client, dep: str) -> httpx.Client:
    """Logged in with the key the container received (the app serves its environment on port 80)."""
    port = tcp80(client, dep)
    env = dict(line.split("=", 1) for line in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text.splitlines()
               if "=" in line)
    key = httpx.Client(base_url=endpoint + "/api", timeout=30)
    resp = key.post("/session", json={"template": {"href": "session-template/api-key", "key": env["NUVLA_API_KEY"],
                                                   "secret": env["NUVLA_API_SECRET"]}})
    resp.raise_for_status()
    return key


class EventArrivals:
    """A plain event-stream client: when each value of the parameter arrived."""

    def __init__(self, endpoint: str, cookies: httpx.Cookies, dep: str) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.client = httpx.Client(base_url=endpoint + "/api", cookies=cookies, timeout=httpx.Timeout(10, read=None))
        self.ctx = self.client.stream("GET", "/event-stream", params={"types": "deployment-parameter",
                                                                       "filter": f"parent='{dep}'"})
        self.resp = self.ctx.__enter__()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.resp.iter_lines():
                if line.startswith("data: "):
                    value = json.loads(line[6:]).get("value")
                    with self.cond:
                        self.seen.setdefault(value, time.time())
                        self.cond.notify_all()
        except httpx.HTTPError:
            pass

    def wait(self, value: str) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: value in self.seen, timeout=10):
                raise RuntimeError(f"the event stream never showed {value}")
            return self.seen[value]

    def close(self) -> None:
        self.resp.close()
        self.client.close()


WATCH = """value => { window.__seen = new Promise(resolve => {
  const cell = () => document.querySelector('[data-param="token"] .value');
  const done = () => { if (cell() && cell().textContent === value) { observer.disconnect(); resolve(Date.now()); return true; } };
  const observer = new MutationObserver(done);
  observer.observe(document.getElementById('params'), {childList: true, subtree: true, characterData: true});
  window.__armed = true;
  done();
}); }"""


def measure_parameter(page, key: httpx.Client, param_id: str, arrivals: EventArrivals, n: int,
                      ) -> tuple[list[float], list[float]]:
    shown, streamed = [], []
    for i in range(n + 1):
        value = f"v{i}-{uuid.uuid4().hex[:6]}"
        page.evaluate("window.__armed = false")
        page.evaluate(WATCH, value)  # the observer is armed before the PUT
        page.wait_for_function("window.__armed === true")
        t0 = time.time()
        resp = key.put(path_of(param_id), json={"value": value})
        resp.raise_for_status()
        seen_ms = page.evaluate("window.__seen")
        if i == 0:
            continue  # warm-up
        shown.append(seen_ms / 1000 - t0)
        streamed.append(arrivals.wait(value) - t0)
        time.sleep(0.05)
    return shown, streamed


def measure_list(page, client: Client, n: int) -> tuple[list[float], list[float]]:
    loads, api = [], []
    for i in range(n + 1):
        page.goto("/ui/deployments")
        timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        t0 = time.perf_counter()
        client.call("GET", "/deployment", orderby="created:desc", last=50)
        elapsed = time.perf_counter() - t0
        if i == 0:
            continue
        loads.append(json.loads(timing)["loadEventEnd"] / 1000)
        api.append(elapsed)
    return loads, api


def create_many(client: Client, module_id: str, n: int, deployed: list[str]) -> None:
    def one(_: int) -> str:
        return client.call("POST", "/deployment", {"module": {"href": module_id}}, want=201)["resource-id"]
    with ThreadPoolExecutor(8) as pool:
        deployed.extend(pool.map(one, range(n)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="samples of each measurement (default 20)")
    parser.add_argument("--deployments", type=int, default=1000, help="deployments in the list (default 1000)")
    args = parser.parse_args()
    dclient = docker.from_env()
    image = app_image(dclient)
    data_dir = tempfile.mkdtemp(prefix="dockyard-bench-ui-")
    server, client, key, arrivals, deployed = None, None, None, None, []
    try:
        server = start_server(data_dir, extra_env={"DOCKYARD_PUBLISH_IP": "127.0.0.1"})
        client, module_id = set_up(server.endpoint, image)
        module_id = app_with_output(client, module_id)
        dep = started_deployment(client, module_id, deployed)
        key = container_key(server.endpoint, client, dep)
        [param] = key.get("/deployment-parameter", params={"filter": f"parent='{dep}' and name='token'"}).json()["resources"]
        arrivals = EventArrivals(server.endpoint, client.http.cookies, dep)
        log(f"dockyard serve at {server.endpoint}; {args.samples} samples each, one warm-up not counted")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            context = browser.new_context(base_url=server.endpoint, viewport={"width": 1366, "height": 768})
            context.add_cookies([{"name": c.name, "value": c.value, "url": server.endpoint} for c in client.http.cookies.jar])
            page = context.new_page()
            page.goto(f"/ui/deployments/{dep.split('/')[1]}")
            page.wait_for_function("document.getElementById('live-text').textContent === 'live'")
            shown, streamed = measure_parameter(page, key, param["id"], arrivals, args.samples)
            log(f"creating {args.deployments} deployments (not started)")
            create_many(client, module_id, args.deployments, deployed)
            loads, api = measure_list(page, client, args.samples)
            browser.close()
        table = Table(title="Web UI (ms)", title_justify="left")
        for col in ("what", "n", "p50", "p99", "min", "max", "target"):
            table.add_column(col, justify="left" if col == "what" else "right")
        rows = [("output parameter PUT → shown in the open deployment page", shown, "≤ 100 (p50)"),
                ("  baseline: the same PUT's event at a plain event-stream client", streamed, ""),
                (f"deployment list page load, {args.deployments + 1} deployments", loads, "≤ 300 (p50)"),
                ("  baseline: GET /api/deployment of the same first page (JSON)", api, "")]
        for name, values, target in rows:
            table.add_row(name, str(len(values)), fmt(statistics.median(values)), fmt(pct(values, 0.99)),
                          fmt(min(values)), fmt(max(values)), target)
        console.print(table)
        console.print(f"The page shows a value {fmt(statistics.median(shown) - statistics.median(streamed))} ms "
                      "(median) after a bare client of the event stream gets it.")
        return 0
    finally:
        if arrivals is not None:
            arrivals.close()
        if key is not None:
            key.close()
        if client is not None:
            client.close()
        if server is not None:
            stop_server(server)
        cleanup(dclient, deployed)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
