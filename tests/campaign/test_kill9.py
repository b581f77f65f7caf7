"""SIGKILL at random points of start, stop, update, force-delete and data staging, then a restart: every
deployment settles (STARTED, STOPPED or ERROR; never stuck in STARTING, STOPPING or UPDATING) and nothing
is leaked — no container or anonymous volume of a deployment that is stopped or gone, no API key of one,
no staged data of one — and what runs is whole: one running container and one key per STARTED deployment,
its staged objects byte for byte.

The choices (which deployment, which operation, when to kill) come from one seeded RNG; the seed is printed
and ``DOCKYARD_CAMPAIGN_SEED=<seed>`` replays a run. ``DOCKYARD_KILL9_RUNS`` sets the runs per database
(default 10: 20 in all). On SQLite one ``dockyard serve`` does everything; on PostgreSQL the API
(``serve --no-workers``) and a ``dockyard worker`` are separate processes, and both are killed.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..api.helpers import Caller, make_user
from ..data.conftest import moto_endpoint  # noqa: F401
from ..deployments.conftest import DEPLOYED, docker_client, images  # noqa: F401
from .crash_support import (Installation, action, app_module, campaign_seed, installations, ok,  # noqa: F401
                            put_object, remove_engine_objects, s3_store, state_of, wait_state)

RUNS = int(os.environ.get("DOCKYARD_KILL9_RUNS", "10"))
SETTLED = {"CREATED", "STARTED", "STOPPED", "ERROR"}
TRANSIENT = {"STARTING", "STOPPING", "UPDATING"}
HOLDS_ENGINE_OBJECTS = {"STARTING", "STARTED", "UPDATING", "STOPPING", "ERROR"}
SETTLE_WITHIN = 30.0  # seconds after a restart for every deployment and job to reach a final state
CLEAN_WITHIN = 15.0  # seconds after settling for the sweep to have removed what a crash left
STAGED_OBJECTS = 12
STAGED_BYTES = 256 * 1024


@dataclass
class Campaign:
    installation: Installation
    user: Caller
    admin: Caller
    docker: object
    rng: random.Random
    plain_module: str
    staged_module: str
    staged_data: dict
    staged_md5: dict[str, str]
    pool: list[str] = field(default_factory=list)
    staged: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    @property
    def every(self) -> set[str]:
        return set(self.pool) | self.gone

    def new_deployment(self, staged: bool) -> str:
        body = {"module": {"href": self.staged_module if staged else self.plain_module}}
        if staged:
            body["data"] = self.staged_data
        dep_id = self.user.add("deployment", body)
        DEPLOYED.add(dep_id)
        if staged:
            self.staged.add(dep_id)
        return dep_id

    def say(self, line: str) -> None:
        self.log.append(line)
        print(line, flush=True)

    def history(self) -> str:
        return "\n".join(self.log)


def test_kill_9_at_random_points_leaves_every_deployment_settled_and_nothing_leaked(
        db_url, tmp_path, images, docker_client, moto_endpoint, installations):
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    seed = campaign_seed()
    rng = random.Random(f"{seed}:{backend}")
    installation = Installation(tmp_path / "data", db_url if backend == "postgresql" else None,
                                separate_worker=backend == "postgresql")
    installations.append(installation)
    installation.start()
    campaign = None
    try:
        admin = installation.admin()
        user = make_user(installation, admin)
        infra, cred = s3_store(user, moto_endpoint)
        bucket = f"kill9-{os.urandom(4).hex()}"
        md5s, objects = {}, []
        for i in range(STAGED_OBJECTS):
            data = rng.randbytes(STAGED_BYTES)
            key = f"part-{i:02d}.bin"
            objects.append(put_object(user, cred, bucket, key, data))
            md5s[f"{bucket}/{key}"] = hashlib.md5(data).hexdigest()
        campaign = Campaign(
            installation, user, admin, docker_client, rng,
            plain_module=app_module(user, images["app"], mounts=[{"mount-type": "volume", "target": "/cache"}]),
            staged_module=app_module(user, images["app"]),
            staged_data={"objects": {"objects-ids": objects}}, staged_md5=md5s)
        campaign.pool = [campaign.new_deployment(False), campaign.new_deployment(False),
                         campaign.new_deployment(True)]
        campaign.say(f"kill -9 campaign on {backend}, seed {seed} (replay: DOCKYARD_CAMPAIGN_SEED={seed}), "
                     f"{RUNS} runs")
        started = time.monotonic()
        for run in range(RUNS):
            one_run(campaign, run)
        campaign.say(f"{RUNS} runs in {time.monotonic() - started:.0f} s")
        stop_everything(campaign)
    finally:
        installation.kill()
        if campaign is not None:
            remove_engine_objects(docker_client, campaign.every)


# -- one run -------------------------------------------------------------------------------------------

def one_run(c: Campaign, run: int) -> None:
    dep_id = c.rng.choice(c.pool)
    state = state_of(c.user, dep_id)
    staged = dep_id in c.staged
    if state in ("CREATED", "STOPPED"):
        op = c.rng.choice(["start", "start", "start+stop"])
    elif state == "STARTED":
        op = c.rng.choice(["stop", "update", "update", "force-delete"])
    else:  # ERROR
        op = c.rng.choice(["stop", "update"])
    modes = ["during-request", "after-delay", "job-running"]
    if staged and op.startswith("start"):
        modes.append("staging")
    mode = c.rng.choice(modes)
    delay = round(c.rng.uniform(0, 0.2 if mode == "during-request" else 1.2 if mode == "after-delay" else 0.3), 3)
    c.say(f"run {run}: {op} {dep_id} ({state}{', staged data' if staged else ''}), kill {mode} +{delay} s")

    t0 = time.monotonic()
    if mode == "during-request":
        failures: list[BaseException] = []

        def send() -> None:
            try:
                perform(c, op, dep_id, pause=0)
            except httpx.TransportError:
                pass  # the server died under the request: whether it was done is for the checks to see
            except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        time.sleep(delay)
    else:
        job = perform(c, op, dep_id)
        if mode == "job-running" and job:
            wait_job_running(c, job)
        elif mode == "staging":
            wait_staging(c, dep_id)
        time.sleep(delay)
    c.installation.kill()
    if mode == "during-request":
        thread.join(30)
        assert not thread.is_alive() and not failures, failures
    killed_after = time.monotonic() - t0
    t1 = time.monotonic()
    c.installation.start()
    t2 = time.monotonic()
    settle(c, run)
    t3 = time.monotonic()
    check_nothing_leaked(c, run)
    replace_gone(c)
    states = ", ".join(f"{d[-8:]}={state_of(c.user, d) or 'gone'}" for d in c.pool)
    c.say(f"run {run}: killed after {killed_after:.2f} s, restarted in {t2 - t1:.1f} s, settled in {t3 - t2:.1f} s, "
          f"clean after {time.monotonic() - t3:.1f} s ({states})")


def perform(c: Campaign, op: str, dep_id: str, pause: float | None = None) -> str | None:
    """Send the operation's request(s); the job id of the last one. ``start+stop`` pauses between its two
    requests (by default a random time: ``pause`` is for a thread that must leave the RNG alone)."""
    if op == "start+stop":
        accepted(action(c.user, dep_id, "start"))
        time.sleep(c.rng.uniform(0, 0.5) if pause is None else pause)
        return accepted(action(c.user, dep_id, "stop"))
    if op == "force-delete":
        resp = action(c.user, dep_id, "force-delete")
        assert resp.status_code == 200, resp.text
        return None
    return accepted(action(c.user, dep_id, op))


def accepted(resp: httpx.Response) -> str:
    assert resp.status_code == 202, f"{resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json()["location"]


def wait_job_running(c: Campaign, job_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok(c.admin.get(job_id))["state"] != "QUEUED":
            return
        time.sleep(0.01)


def wait_staging(c: Campaign, dep_id: str, timeout: float = 10.0) -> None:
    """Until the start has written a first staged file (or finished)."""
    where = staging_root(c) / dep_id.split("/", 1)[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if where.exists() and any(files for _, _, files in os.walk(where)):
            return
        if state_of(c.user, dep_id) != "STARTING":
            return
        time.sleep(0.005)


def replace_gone(c: Campaign) -> None:
    for i, dep_id in enumerate(list(c.pool)):
        if state_of(c.user, dep_id) is None:
            c.gone.add(dep_id)
            c.pool[i] = c.new_deployment(dep_id in c.staged)


# -- what must hold after a restart --------------------------------------------------------------------

def settle(c: Campaign, run: int) -> None:
    """Every deployment in a final state and no job left to do, within SETTLE_WITHIN seconds."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        states = {d: state_of(c.user, d) for d in c.pool}
        active = ok(c.admin.search("job", filter="state='QUEUED' or state='RUNNING'"))["resources"]
        if all(s is None or s in SETTLED for s in states.values()) and not active:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    stuck = {d: ok(c.user.get(d)) for d, s in states.items() if s is not None and s not in SETTLED}
    raise AssertionError(
        f"run {run}: not settled {SETTLE_WITHIN:.0f} s after the restart:\n"
        + "".join(f"  {d}: {doc['state']} ({doc.get('status-message')})\n" for d, doc in stuck.items())
        + "".join(f"  {j['id']} {j['action']} on {j['target-resource']['href']}: {j['state']}\n" for j in active)
        + f"history:\n{c.history()}\nserver log:\n{c.installation.log_tail()}")


def staging_root(c: Campaign) -> Path:
    return c.installation.data_dir / "staging"


def leaks(c: Campaign) -> list[str]:
    found = []
    for dep_id in sorted(c.every):
        state = state_of(c.user, dep_id)
        label = f"dockyard.deployment-id={dep_id}"
        containers = c.docker.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        volumes = c.docker.volumes.list(filters={"label": label})
        keys = ok(c.admin.search("credential", filter=f"parent='{dep_id}'"))["resources"]
        name = f"{dep_id} ({state or 'gone'})"
        if state not in HOLDS_ENGINE_OBJECTS and containers:
            found.append(f"{name} has containers {[x.name for x in containers]}")
        if state not in HOLDS_ENGINE_OBJECTS and keys:
            found.append(f"{name} has API keys {[k['id'] for k in keys]}")
        used = {m.get("Name") for x in containers for m in x.attrs.get("Mounts", []) if m.get("Type") == "volume"}
        unused = [v.name for v in volumes if v.name not in used]
        if unused:
            found.append(f"{name} has volumes no container of it uses: {unused}")
        if state == "STARTED":
            running = [x for x in containers if x.status == "running"]
            if len(containers) != 1 or len(running) != 1:
                found.append(f"{name} has containers {[(x.name, x.status) for x in containers]}, "
                             f"not one running")
            if len(keys) != 1:
                found.append(f"{name} has {len(keys)} API keys")
    root = staging_root(c)
    for entry in sorted(os.listdir(root)) if root.exists() else []:
        dep_id = f"deployment/{entry}"
        state = state_of(c.user, dep_id)
        if state not in HOLDS_ENGINE_OBJECTS:
            found.append(f"{dep_id} ({state or 'gone'}) has staged data in {root / entry}")
        elif state == "STARTED":
            visible = {str(Path(d, f).relative_to(root / entry)) for d, _, files in os.walk(root / entry)
                       for f in files if ".incoming" not in Path(d).relative_to(root / entry).parts}
            if visible - set(c.staged_md5):  # what the container sees in its bucket, beyond the objects
                found.append(f"{dep_id} (STARTED): stray files in its staged buckets: "
                             f"{sorted(visible - set(c.staged_md5))}")
            for name, md5 in c.staged_md5.items():
                path = root / entry / name
                got = hashlib.md5(path.read_bytes()).hexdigest() if path.exists() else "missing"
                if got != md5:
                    found.append(f"{dep_id} (STARTED): staged {name} is {got}, not {md5}")
    for dep_id in c.pool:
        if state_of(c.user, dep_id) == "STARTED" and dep_id in c.staged \
                and not (root / dep_id.split("/", 1)[1]).exists():
            found.append(f"{dep_id} (STARTED) has no staged data")
    return found


def check_nothing_leaked(c: Campaign, run: int) -> None:
    deadline = time.monotonic() + CLEAN_WITHIN
    while (found := leaks(c)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not found, (f"run {run}: still there {CLEAN_WITHIN:.0f} s after settling:\n  " + "\n  ".join(found)
                       + f"\nhistory:\n{c.history()}")


def stop_everything(c: Campaign) -> None:
    for dep_id in c.pool:
        if state_of(c.user, dep_id) in ("STARTED", "ERROR"):
            accepted(action(c.user, dep_id, "stop"))
    for dep_id in c.pool:
        wait_state(c.user, dep_id, {"CREATED", "STOPPED"}, timeout=SETTLE_WITHIN)
    check_nothing_leaked(c, RUNS)
    for dep_id in c.every:
        assert c.docker.containers.list(all=True, filters={"label": f"dockyard.deployment-id={dep_id}"}) == []
        assert ok(c.admin.search("credential", filter=f"parent='{dep_id}'"))["count"] == 0
    assert not staging_root(c).exists() or os.listdir(staging_root(c)) == []
