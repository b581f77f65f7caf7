"""Running the readiness checks of started deployments (the rules: ``deploy.readiness``).

Who probes: a :class:`Prober` in each process that runs workers, beside the reconciler, and not the start job;
of several such processes on one PostgreSQL, the one holding the ``readiness`` election (``jobs.election``)
probes, and another takes over within seconds of its death, finding every pending deployment again as at a
start. A job would hold a worker thread (and its lease) for as long as the service takes to come up, up to the
app's timeout, so a few slow apps would stall every other start; a job of its own would cost a claim and an
outcome write per start. The prober needs neither: the durable mark of a deployment to probe is the deployment
itself (STARTED with no ``ready``), so

* it learns of a new one from the change feed, at the commit that moved it to STARTED (no polling delay,
  no extra write);
* it finds every one still waiting when it starts (a worker or server restart loses nothing), and again
  whenever its subscription to the feed was dropped;
* the timeout counts from the start recorded on the deployment, so resumed checks keep their deadline;
* the outcome is written once, under the deployment's row lock, only while the deployment is still
  STARTED, undecided and the same run of the service: a stop, an ERROR, an update or a delete ends the
  checks (the feed says so at once), and two processes probing the same deployment write one outcome.

A probe is one thread per deployment being checked. Its rounds follow each other quickly at first, then
every ``readiness-interval`` seconds; an output parameter set in any process wakes it through the feed.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import threading
import time
from typing import Any

from ..core.authn import INTERNAL
from ..core.time import now_ts
from ..deploy import lifecycle
from ..resources.base import Services
from ..resources.changes import Subscription, feed_of
from ..resources.deployment_parameter import of_deployment
from ..deploy.readiness import STARTED, Spec, generation, host_of, pending, since, spec_of
from ..store import filter as cimi_filter
from ..store.query import Query
from .election import RETRY, Election

log = logging.getLogger("dockyard.readiness")
FIRST_PAUSE = 0.01  # seconds between the first two rounds; each pause is 1.5× the last, up to the interval
CONNECT_TIMEOUT = 2.0
HTTP_TIMEOUT = 5.0


class Prober:
    def __init__(self, services: Services, *, election: Election | None = None) -> None:
        self.services = services
        self.election = election or Election(services.store)
        self.leader = False  # whether this process probes now (holds the election)
        self.interval: float = services.settings["readiness-interval"]
        self.grace: float = services.settings["readiness-grace"]
        self.default_timeout: int = services.settings["readiness-timeout"]
        self._probes: dict[str, Probe] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sub: Subscription | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._subscribe()
        self._thread = threading.Thread(target=self._follow, name="dockyard-readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sub is not None:
            feed_of(self.services).unsubscribe(self._sub)
        with self._lock:
            probes, self._probes = list(self._probes.values()), {}
        for probe in probes:
            probe.cancel()
        if self._thread:
            self._thread.join(5)
        self.election.close()

    @property
    def probing(self) -> list[str]:
        with self._lock:
            return sorted(self._probes)

    # -- following the feed ------------------------------------------------------------------------

    def _subscribe(self) -> None:
        self._sub = feed_of(self.services).subscribe(INTERNAL, types=("deployment", "deployment-parameter"))

    def _follow(self) -> None:
        next_try = 0.0
        while not self._stop.is_set():
            sub = self._sub
            assert sub is not None
            try:
                if time.monotonic() >= next_try:
                    next_try = time.monotonic() + RETRY
                    self._elect()
                if sub.ended is not None:  # overflow: subscribe again and look at everything once more
                    if self._stop.is_set():
                        return
                    log.info("readiness: the change feed dropped its subscription (%s); looking again",
                             sub.ended)
                    self._subscribe()
                    if self.leader:
                        self._rescan()
                    continue
                event = sub.get(0.5)
                if event is not None and self.leader:
                    self._on(event.change, event.data)
            except Exception:
                log.exception("readiness: following the change feed failed")
                self._stop.wait(1.0)

    def _elect(self) -> None:
        """Probe while this process holds the election: when won, find every pending deployment; when
        lost (the database session ended), leave the checks to the process that holds it now."""
        leader = self.election.holds("readiness")
        if leader and not self.leader:
            self.leader = True
            self._rescan()
        elif not leader and self.leader:
            self.leader = False
            log.info("readiness: another process probes now")
            with self._lock:
                probes, self._probes = list(self._probes.values()), {}
            for probe in probes:
                probe.cancel()

    def _rescan(self) -> None:
        """Every deployment waiting for its checks (at start: those a stopped process was checking)."""
        with self.services.store.read() as tx:
            found = tx.search(Query("deployment", cimi_filter.parse("state='STARTED' and ready=null"))).docs
        for dep in found:
            self.consider(dep)
        for dep_id in set(self.probing) - {d["id"] for d in found}:  # stopped or deleted while unheard
            self._cancel(dep_id)

    def _on(self, change: str, data: dict[str, Any]) -> None:
        kind = data.get("resource-type") or data["id"].split("/", 1)[0]
        if kind == "deployment":
            if change == "delete":
                self._cancel(data["id"])
            else:
                self.consider(data)
        elif change != "delete":
            with self._lock:
                probe = self._probes.get(data.get("parent", ""))
            if probe is not None:
                probe.parameter_set(data.get("name", ""), data.get("value"))

    def consider(self, dep: dict[str, Any]) -> None:
        """Start, keep or end the checks of ``dep`` as it is now."""
        key = generation(dep) if pending(dep) else None
        with self._lock:
            probe = self._probes.get(dep["id"])
            if probe is not None and probe.key == key and not probe.done.is_set():
                return
            if probe is not None:
                probe.cancel()
                del self._probes[dep["id"]]
            if key is None or self._stop.is_set():
                return
            probe = Probe(self, dep, key)
            self._probes[dep["id"]] = probe
        probe.start()

    def _cancel(self, dep_id: str) -> None:
        with self._lock:
            probe = self._probes.pop(dep_id, None)
        if probe is not None:
            probe.cancel()

    def _done(self, probe: Probe) -> None:
        with self._lock:
            if self._probes.get(probe.dep_id) is probe:
                del self._probes[probe.dep_id]


class Probe:
    """The checks of one run of one deployment's service, in a thread of their own."""

    def __init__(self, prober: Prober, dep: dict[str, Any], key: str) -> None:
        self.prober = prober
        self.dep_id = dep["id"]
        self.key = key
        self.spec: Spec = spec_of(dep, prober.default_timeout)
        self.deadline = since(dep) + self.spec.timeout
        self.done = threading.Event()
        self._wake = threading.Event()
        self._outputs: dict[str, str] = {}
        self._outputs_lock = threading.Lock()
        self.accepted: set[str] = set()  # port keys (``tcp.80``, ``web.tcp.80``) whose port accepted
        self.http_ok = False
        self.http_answer: int | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"dockyard-ready-{self.dep_id[11:19]}", daemon=True).start()

    def cancel(self) -> None:
        self.done.set()
        self._wake.set()

    def parameter_set(self, name: str, value: Any) -> None:
        if name in self.spec.outputs:
            with self._outputs_lock:
                self._outputs[name] = value or ""
            self._wake.set()

    # -- the loop ----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._check_until_decided()
        except Exception:
            log.exception("readiness checks of %s failed", self.dep_id)
        finally:
            self.done.set()
            self.prober._done(self)

    def _check_until_decided(self) -> None:
        params = self._parameters()
        targets = {key: (host_of(params, key), int(params[key])) for key in self._port_keys()
                   if (params.get(key) or "").isdigit()}
        pause = FIRST_PAUSE
        while not self.done.is_set():
            self._round(targets)
            missing = self._missing()
            if not missing:
                self._decide(True)
                return
            left = self.deadline - time.time()
            if left <= 0:
                self._decide(False, "; ".join(missing))
                return
            self._wake.wait(min(pause, left))
            self._wake.clear()
            pause = min(pause * 1.5, self.prober.interval)

    def _port_keys(self) -> list[str]:
        return [*self.spec.tcp_ports, *([self.spec.http.key] if self.spec.http else [])]

    def _parameters(self) -> dict[str, str]:
        with self.prober.services.store.read() as tx:
            params = {p["name"]: p.get("value") or "" for p in of_deployment(tx, self.dep_id)}
        with self._outputs_lock:
            for name in self.spec.outputs:  # what the feed said since wins over this read
                self._outputs.setdefault(name, params.get(name, ""))
        return params

    def _round(self, targets: dict[str, tuple[str, int]]) -> None:
        tcp = [key for key in self.spec.tcp_ports if key not in self.accepted and key in targets]
        if tcp:
            self.accepted |= accepting({key: targets[key] for key in tcp}, self.prober.grace)
        http = self.spec.http
        if http and not self.http_ok and http.key in targets:
            self.http_answer = http_status(*targets[http.key], http.path)
            self.http_ok = self.http_answer == http.status

    def _missing(self) -> list[str]:
        """Why it is not ready yet, in the words of the outcome (empty: ready)."""
        out = [f"{key} did not accept a connection within {self.spec.timeout} s"
               for key in self.spec.tcp_ports if key not in self.accepted]
        http = self.spec.http
        if http and not self.http_ok:
            out.append(f"GET {http.path} answered {self.http_answer}, expected {http.status}"
                       if self.http_answer else
                       f"GET {http.path} on {http.key} got no answer within {self.spec.timeout} s")
        with self._outputs_lock:
            out += [f"output parameter {name} was not set" for name in self.spec.outputs
                    if not self._outputs.get(name)]
        return out

    def _decide(self, ready: bool, why: str = "") -> None:
        fields: dict[str, Any] = {"ready": ready}
        if ready:
            fields["phases"] = {"ready": now_ts()}
        else:
            fields["ready_message"] = why
        stored = lifecycle.set_fields(
            self.prober.services, self.dep_id, only_in=frozenset({STARTED}),
            when=lambda cur: pending(cur) and generation(cur) == self.key and not self.done.is_set(), **fields)
        if stored is not None:
            log.info("deployment %s is %s%s", self.dep_id, "ready" if ready else "not ready",
                     f": {why}" if why else "", extra={"deployment": self.dep_id, "ready": ready})


# -- the checks themselves -----------------------------------------------------------------------------

def accepting(targets: dict[str, tuple[str, int]], grace: float) -> set[str]:
    """The keys whose published port (``targets``: key → (host, host port)) accepts a connection that stays
    open ``grace`` seconds. Docker's port proxy accepts at once whatever listens behind it, then closes
    within milliseconds when nothing does: a connection the far end closes is not accepted."""
    opened: dict[socket.socket, str] = {}
    try:
        for key, address in targets.items():
            try:
                opened[socket.create_connection(address, timeout=CONNECT_TIMEOUT)] = key
            except OSError:
                continue
        if not opened:
            return set()
        closed: set[str] = set()
        spoke: set[str] = set()  # it wrote first (a banner): a server is there
        deadline = time.monotonic() + grace
        while len(closed) + len(spoke) < len(opened) and (left := deadline - time.monotonic()) > 0:
            waiting = [s for s, t in opened.items() if t not in closed and t not in spoke]
            readable, _, _ = select.select(waiting, [], [], left)
            if not readable:
                break
            for sock in readable:
                try:
                    (closed if sock.recv(1, socket.MSG_PEEK) == b"" else spoke).add(opened[sock])
                except OSError:
                    closed.add(opened[sock])
        return set(opened.values()) - closed
    finally:
        for sock in opened:
            sock.close()


def http_status(host: str, port: int, path: str) -> int | None:
    """The status a ``GET path`` gets, or None when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path, headers={"User-Agent": "dockyard-readiness", "Connection": "close"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
