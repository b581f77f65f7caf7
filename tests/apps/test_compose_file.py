"""The compose file's rules and rewrite (``deploy/compose.py``) and the CLI's private directory
(``drivers/cli.py``), without an engine."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from dockyard.deploy import compose
from dockyard.drivers import TlsMaterial, cli
from dockyard.drivers.base import DriverError, MountSpec, RegistryAuth
from dockyard.drivers.stack import for_swarm

FILE = """
version: "3.3"
services:
  web:
    image: example/web:1
    ports: ["8080:80", "443"]
    environment:
      - TITLE=${NUVLA_DEPLOYMENT_ID}
      - NUVLA_API_KEY=from-the-file
    labels: ["team=a"]
  db:
    image: example/db:1
    environment:
      LEVEL: "1"
    volumes: ["data:/var/lib/db"]
volumes:
  data: {}
  theirs:
    external: true
"""
LABELS = {"dockyard.deployment-id": "deployment/x", "dockyard.managed": "true", "dockyard.job-id": "job/y",
          "dockyard.instance": "i"}


def test_the_rewrite_puts_names_labels_mounts_and_init_in_every_service_and_no_value():
    names = ["NUVLA_API_KEY", "NUVLA_API_SECRET"]
    out = yaml.safe_load(compose.rewrite(FILE, env_names=names, labels=LABELS,
                                         mounts=(MountSpec("bind", "/mnt/b", "/srv/b", read_only=True),)))
    web, db = out["services"]["web"], out["services"]["db"]
    assert out["version"] == "3.8"  # labels on declared objects and init need it
    assert web["environment"] == ["TITLE=${NUVLA_DEPLOYMENT_ID}", "NUVLA_API_KEY", "NUVLA_API_SECRET"]
    assert db["environment"] == {"LEVEL": "1", "NUVLA_API_KEY": None, "NUVLA_API_SECRET": None}
    assert web["labels"] == {"team": "a", **LABELS, "dockyard.service": "web"}
    assert db["deploy"]["labels"]["dockyard.service"] == "db" and web["init"] is True
    assert db["volumes"] == ["data:/var/lib/db", "/srv/b:/mnt/b:ro"]
    scope = {k: LABELS[k] for k in ("dockyard.deployment-id", "dockyard.managed", "dockyard.instance")}
    assert out["volumes"]["data"]["labels"] == scope and out["networks"]["default"]["labels"] == scope
    assert out["volumes"]["theirs"] == {"external": True}  # the user's own, left alone


def test_a_swarm_gets_host_mode_ports_and_dnsrr_where_the_mesh_does_not_answer():
    doc = for_swarm(yaml.safe_load(FILE), mesh=False)
    assert doc["services"]["web"]["ports"] == [{"target": 80, "mode": "host", "published": 8080},
                                               {"target": 443, "mode": "host"}]
    assert {s["deploy"]["endpoint_mode"] for s in doc["services"].values()} == {"dnsrr"}
    assert for_swarm(yaml.safe_load(FILE), mesh=True)["services"]["web"]["ports"] == ["8080:80", "443"]
    with pytest.raises(DriverError, match="version 3, not '2.4'"):
        for_swarm({"version": "2.4", "services": {"a": {"image": "x"}}}, mesh=False)


@pytest.mark.parametrize("text, problem", [
    ("a: [", "the file is not YAML"),
    ("- a\n", "the file must be a map with 'services'"),
    ("services:\n  web:\n    image: x\n    environment: 3\n", "service 'web': 'environment' must be a map or a list"),
    ("services:\n  'we b':\n    image: x\n", "service 'we b': a service's name is made of"),
    ("services:\n  web: x\n", "service 'web' must be a map"),
])
def test_what_cannot_run_is_named(text, problem):
    assert any(problem in p for p in compose.blocking(text)), compose.blocking(text)


@pytest.mark.parametrize("service, reach", [
    ({"volumes": ["./here:/x"]}, "uses the host path './here'"),
    ({"volumes": [{"type": "bind", "source": "/", "target": "/x"}]}, "is of type 'bind'"),
    ({"pid": "host"}, "sets 'pid: host'"),
    ({"network_mode": "container:other"}, "sets 'network_mode: container:other'"),
    ({"cap_add": ["SYS_ADMIN"]}, "sets 'cap_add'"),
    ({"devices": ["/dev/sda"]}, "sets 'devices'"),
    ({"env_file": "/etc/shadow"}, "'env_file' reads '/etc/shadow'"),
    ({"volumes": ["data:/x", {"type": "tmpfs", "target": "/t"}]}, None),
])
def test_what_reaches_the_host_is_named(service, reach):
    text = yaml.safe_dump({"services": {"web": {"image": "x", **service}}, "volumes": {"data": {}}})
    found = compose.host_reach(text)
    assert (reach in found) if reach else found is None, found


def test_the_cli_directory_is_private_and_gone_after_the_call():
    tls = TlsMaterial(cert="CERT", key="KEY", ca="CA")
    auth = RegistryAuth("u", "p", "registry.example:5000")
    with cli.workdir("https://engine.example:2376", tls, compose="services: {}", files=(("a.conf", "x"),),
                     env=(("NUVLA_API_SECRET", "s3cret"),), registry_auths=(auth,)) as wd:
        seen = {wd.path, wd.secrets}
        for directory in seen:
            assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert sorted(os.listdir(wd.path)) == ["a.conf", "docker-compose.yaml"]
        assert sorted(os.listdir(wd.secrets)) == ["ca.pem", "cert.pem", "config.json", "key.pem"]
        assert all(stat.S_IMODE(os.stat(os.path.join(wd.secrets, n)).st_mode) == 0o600 for n in os.listdir(wd.secrets))
        assert wd.engine_args[:3] == ["-H", "tcp://engine.example:2376", "--tlsverify"]
        assert wd.env["NUVLA_API_SECRET"] == "s3cret" and wd.env["DOCKER_CONFIG"] == wd.secrets
        assert not any("s3cret" in open(os.path.join(wd.path, n)).read() for n in os.listdir(wd.path))
    assert not any(os.path.exists(d) for d in seen)
    with pytest.raises(DriverError, match="'docker-compose.yaml' cannot name a file of the app"):
        with cli.workdir("unix:///x", None, files=(("docker-compose.yaml", "x"),)):
            pass


def test_readiness_checks_each_tcp_port_the_file_publishes_where_its_service_publishes_it():
    from dockyard.deploy.readiness import host_of, spec_of

    text = """
services:
  web:
    image: x
    ports: [80, "8080:81", "127.0.0.1:9000:82/tcp", "53:53/udp", "7000-7001", {target: 83}, {target: 84, protocol: udp}]
  db:
    image: y
    expose: ["5432"]
  cache:
    image: z
    ports: ["6379"]
"""
    assert compose.published_tcp(text) == {"web": [80, 81, 82, 7000, 7001, 83], "cache": [6379]}
    assert compose.published_tcp("services: [") == {}
    dep = {"module": {"subtype": "application", "content": {"docker-compose": text, "readiness": {
        "http": {"service": "web", "port": 81, "path": "/health"}, "timeout": 9}}}}
    spec = spec_of(dep, 120)
    assert spec.tcp_ports == ("web.tcp.80", "web.tcp.82", "web.tcp.7000", "web.tcp.7001", "web.tcp.83",
                              "cache.tcp.6379") and spec.http.key == "web.tcp.81" and spec.timeout == 9
    assert "GET /health on web port 81 answers 200" in spec.waiting()
    # a swarm publishes each service's host-mode port on the node its task runs on
    params = {"hostname": "10.0.0.1", "web.hostname": "10.0.0.2"}
    assert [host_of(params, key) for key in ("web.tcp.80", "cache.tcp.6379", "tcp.80")] == \
        ["10.0.0.2", "10.0.0.1", "10.0.0.1"]
    assert compose.readiness_problems(text, {"http": {"service": "db", "port": 5432}}) == [
        "readiness.http.service: 'db' is not a service of the file that publishes a tcp port (web, cache)"]
