"""The simulated engine (drivers/simulated.py): the whole driver interface, in one process and across two."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dockyard.drivers import engine_names, get_driver
from dockyard.drivers.base import EXITED, RUNNING, DriverError, PortSpec, StopSignal, TaskSpec
from dockyard.drivers.simulated import SimulatedDriver, endpoint_for

DEP = "deployment/00000000-0000-0000-0000-000000000001"


@pytest.fixture
def endpoint(tmp_path):
    return endpoint_for(str(tmp_path / "engine.db"))


@pytest.fixture
def sim(endpoint):
    return get_driver(endpoint, engine="simulated", instance="test-instance")


def spec(dep: str = DEP, *env: tuple[str, str], ports=(PortSpec(80), PortSpec(53, "udp"))) -> TaskSpec:
    return TaskSpec(deployment_id=dep, name="app-" + dep[-4:], image="example/app:1", env=tuple(env), ports=ports)


def collect(events, into: list, until: int) -> None:
    for event in events:
        into.append(event)
        if len(into) >= until:
            return


def test_registered_and_explicit_only(endpoint):
    assert "simulated" in engine_names()
    assert isinstance(get_driver(endpoint, engine="simulated"), SimulatedDriver)
    with pytest.raises(DriverError) as err:
        get_driver("unix:///var/run/docker.sock", engine="simulated")
    assert "simulated:///" in err.value.message


def test_check_start_inspect_stop_destroy(sim):
    assert sim.check().reachable and sim.check().version
    result = sim.start(spec())
    status = result.status
    assert status.state == RUNNING and status.image == "example/app:1"
    assert [k for k, _ in result.phases] == ["pulled", "created", "started"]
    ports = {(p.protocol, p.target): p.host_port for p in status.ports}
    assert set(ports) == {("tcp", 80), ("udp", 53)} and len(set(ports.values())) == 2
    assert all(32768 <= p <= 60999 for p in ports.values())
    assert sim.inspect(DEP) == [status]
    assert sim.managed() == {DEP: [status.task_id]}
    other = sim.start(spec(DEP[:-1] + "2")).status  # another deployment gets other ports
    assert not {p.host_port for p in other.ports} & set(ports.values())

    again = sim.start(spec()).status  # a start replaces the deployment's task
    assert again.task_id != status.task_id and len(sim.inspect(DEP)) == 1

    sim.stop(DEP)
    (stopped,) = sim.inspect(DEP)
    assert stopped.state == EXITED and stopped.exit_code == 0 and stopped.finished_at
    assert sim.destroy(DEP) is None
    assert sim.inspect(DEP) == [] and DEP not in sim.managed()
    sim.destroy(DEP)  # idempotent
    sim.stop(DEP)  # a missing task counts as stopped


def test_published_port_conflict(sim):
    sim.start(spec(ports=(PortSpec(80, published=40000),)))
    with pytest.raises(DriverError) as err:
        sim.start(spec(DEP[:-1] + "3", ports=(PortSpec(80, published=40000),)))
    assert err.value.reason == "port-conflict"
    sim.destroy(DEP)  # the port is free again
    sim.start(spec(DEP[:-1] + "3", ports=(PortSpec(80, published=40000),)))


def test_delays(endpoint):
    slow = get_driver(endpoint, engine="simulated", start_delay=0.3, stop_delay=0.2)
    t0 = time.monotonic()
    slow.start(spec())
    assert 0.3 <= time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    slow.stop(DEP)
    assert 0.2 <= time.monotonic() - t0 < 1.0
    # an app's own delays override the engine's; a stop that outlasts its timeout is a kill (137)
    slow.start(spec(DEP, ("SIMULATED_START_DELAY", "0"), ("SIMULATED_STOP_DELAY", "5")))
    t0 = time.monotonic()
    slow.stop(DEP, timeout=0.2)
    assert time.monotonic() - t0 < 1.0
    assert slow.inspect(DEP)[0].exit_code == 137


def test_exit_code_event_and_logs(sim):
    stop = StopSignal()
    events = sim.events(stop)  # opened before the start: its events are not missed
    seen: list = []
    reader = threading.Thread(target=collect, args=(events, seen, 3), daemon=True)
    reader.start()
    task = sim.start(spec(DEP, ("SIMULATED_EXIT_AFTER", "0.3"), ("SIMULATED_EXIT_CODE", "3"),
                          ("SIMULATED_LOG", "hello|world"))).status
    follower = sim.follow_logs(DEP, StopSignal(), tail=None)
    lines = list(follower)  # ends once the container has exited, after its last line
    reader.join(5)
    stop.set()
    assert [(e.action, e.exit_code) for e in seen] == [("create", None), ("start", None), ("die", 3)]
    assert {e.deployment_id for e in seen} == {DEP} and {e.task_id for e in seen} == {task.task_id}
    assert [line.split(" ", 1)[1] for line in lines][1:] == ["hello", "world", "exited with code 3"]
    (status,) = sim.inspect(DEP)
    assert status.state == EXITED and status.exit_code == 3
    assert sim.logs(DEP, timestamps=False)[-1] == "exited with code 3"
    assert sim.logs(DEP, tail=1, timestamps=False) == ["exited with code 3"]
    assert sim.logs(DEP, tail=0) == []


def test_start_failure(sim):
    with pytest.raises(DriverError) as err:
        sim.start(spec(DEP, ("SIMULATED_START_FAIL", "image-not-found")))
    assert err.value.reason == "image-not-found"
    assert sim.inspect(DEP) == []


def test_installations_see_only_their_own(endpoint):
    ours = get_driver(endpoint, engine="simulated", instance="a")
    theirs = get_driver(endpoint, engine="simulated", instance="b")
    theirs.start(spec(DEP[:-1] + "9"))
    ours.start(spec())
    assert set(ours.managed()) == {DEP}


_OTHER_PROCESS = textwrap.dedent("""
    import sys
    from dockyard.drivers import get_driver
    from dockyard.drivers.base import TaskSpec
    d = get_driver(sys.argv[1], engine="simulated", instance="shared")
    for i in range(50):
        d.start(TaskSpec(deployment_id=f"deployment/p{i}", name=f"p{i}", image="x",
                         env=(("SIMULATED_EXIT_AFTER", "0.2"),)))
""")


def test_shared_by_processes(endpoint):
    """Another process's containers, exits and events are seen here, each event once."""
    here = get_driver(endpoint, engine="simulated", instance="shared")
    stop = StopSignal()
    seen: list = []
    reader = threading.Thread(target=collect, args=(here.events(stop), seen, 150), daemon=True)
    reader.start()
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, endpoint], check=True, timeout=60)
    assert len(here.managed()) == 50
    reader.join(10)
    stop.set()
    actions = [(e.deployment_id, e.action) for e in seen]
    assert len(actions) == 150 and len(set(actions)) == 150  # create, start, die of each, once
    assert all(t.state == EXITED and t.exit_code == 1 for i in range(50) for t in here.inspect(f"deployment/p{i}"))


def test_only_an_explicit_setting_registers_and_opens_it(tmp_path):
    """``engine=simulated`` registers it as the local engine; a process without the setting will not open it."""
    import dataclasses

    from dockyard.core.settings import Secret, Settings
    from dockyard.drivers.engines import driver_for
    from dockyard.resources.bootstrap import LOCAL_CREDENTIAL, LOCAL_INFRA
    from dockyard.server.runtime import attach_engine, start

    settings = Settings().with_(data_dir=str(tmp_path), admin_password=Secret("admin-password-x"), engine="simulated")
    runtime = start(settings)
    try:
        attach_engine(runtime)
        with runtime.services.store.read() as tx:
            infra = tx.get(LOCAL_INFRA)
        assert infra["endpoint"] == endpoint_for(str(tmp_path / "simulated-engine.db"))
        assert isinstance(driver_for(runtime.services, LOCAL_CREDENTIAL), SimulatedDriver)
        assert runtime.services.extras["api-endpoint"].startswith("http://127.0.0.1:")
        plain = dataclasses.replace(runtime.services, settings=settings.with_(engine="docker"))
        with pytest.raises(DriverError) as err:
            driver_for(plain, LOCAL_CREDENTIAL)
        assert err.value.reason == "engine-unavailable" and "DOCKYARD_ENGINE=simulated" in err.value.message
    finally:
        runtime.stop()
    with pytest.raises(ValueError):
        from dockyard.core.settings import from_env
        from_env({"DOCKYARD_ENGINE": "mock"})
