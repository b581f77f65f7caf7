"""Keeping deployments true to their engines: live from the engine's event stream, plus a slow sweep.

The threads are here; the rules that turn what an engine says into a deployment's state are
``deploy.observe``.

An event of a managed container (it died, restarted, came back) updates its deployment within moments:
the ``task`` summary, the parameters ``current.state``, ``restart.number`` and ``restart.exit.code``,
and the state (a STARTED deployment whose container is gone or exited is in ERROR, with the reason; one
whose container runs again is STARTED). Deployments being started or stopped belong to their jobs and
are left alone. The sweep does the same for every running deployment, catches what events missed (a
restart of Dockyard, an engine that was away) and removes orphans: containers labelled with a
deployment that no longer exists or is stopped.

An engine registered between two sweeps has its event stream followed within seconds. A Swarm service's
tasks start and move without an event on the manager: after a node event (a node down or
back) and while a service's replicas do not all run, its deployment is looked at again every second, for
at most two minutes, so a lost node's tasks show on their new node within moments, not at the next sweep.

An engine that does not answer (the sweep cannot list its containers, its event stream cannot be opened)
puts its STARTED deployments in ERROR with the reason and the task state ``unreachable``: nobody can tell
whether they run. When it answers again, its event stream reopens and every deployment is reconciled at
once: STARTED if its container runs, ERROR saying why if not.

Many processes on one PostgreSQL: each engine (credential) is followed and swept by one reconciler across
the installation, the one whose process holds the engine's election (``jobs.election``). The others try
every ``ENGINE_POLL`` s and take over within seconds of the holder's death; the new holder opens the event
stream and reconciles every deployment of the engine at once, as after an engine that was away. On SQLite
the one process holds every engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..deploy import observe
from ..deploy.observe import WATCHED
from ..drivers.base import DriverError, StopSignal
from ..drivers.engines import ENGINE_CREDENTIAL, driver_for
from ..deploy import lifecycle
from ..resources.base import Services
from ..store import filter as cimi_filter
from ..store.query import Query
from .election import Election

log = logging.getLogger("dockyard.reconciler")

SETTLE_POLL = 1.0  # seconds between looks at a Swarm service whose tasks are starting or moving
SETTLE_FOR = 120.0  # seconds such a service is followed at most; after that, the sweep alone looks again
# seconds between looks for engines registered since the last sweep (to follow their events), and between two
# tries for an engine another process follows: its takeover after that process died takes about this long
ENGINE_POLL = 1.0
NODE_SETTLE = 5.0  # seconds a node event's services are followed at least: the manager moves tasks just after


class Reconciler:
    def __init__(self, services: Services, *, interval: float = 30.0, election: Election | None = None) -> None:
        self.services = services
        self.interval = interval
        self.election = election or Election(services.store)
        self._stop = StopSignal()
        # credential → its event stream's thread and the signal that ends it (this process lost the engine)
        self._watchers: dict[str, tuple[threading.Thread, StopSignal]] = {}
        self._thread: threading.Thread | None = None
        # deployment → (followed at least until, at most until, a look is scheduled): see _follow
        self._settling: dict[str, tuple[float, float, bool]] = {}
        self._settling_lock = threading.Lock()
        self._looking = KeyedLocks()  # one look at a deployment at a time: see reconcile

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sweep_loop, name="dockyard-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for _, signal in list(self._watchers.values()):
            signal.set()
        if self._thread:
            self._thread.join(5)
        self.election.close()  # the others take the engines over at their next try

    def followed(self) -> list[str]:
        """The engine credentials whose event streams this process follows now."""
        return sorted(cred for cred, (thread, signal) in self._watchers.items()
                      if thread.is_alive() and not signal.is_set())

    # -- the sweep ---------------------------------------------------------------------------------

    def _sweep_loop(self) -> None:
        """A sweep every ``interval`` s; between two, every ``ENGINE_POLL`` s, a look for engines registered
        since, whose event streams are then followed at once (not at the next sweep, minutes away)."""
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.interval
                    self.sweep()
                else:
                    for cred_id, _ in self.elected():
                        self._watch(cred_id, swept=False)
            except Exception:
                log.exception("sweep failed")
            self._stop.event.wait(min(self.interval, ENGINE_POLL))

    def engines(self) -> list[tuple[str, str]]:
        """Each engine credential as (credential, its engine): an engine is seen through every key to it."""
        with self.services.store.read() as tx:
            creds = tx.search(Query("credential", cimi_filter.parse(f"subtype='{ENGINE_CREDENTIAL}'"))).docs
        return [(cred["id"], cred["parent"]) for cred in creds if cred.get("parent")]

    def elected(self) -> list[tuple[str, str]]:
        """The engines this process reconciles: those whose election it holds (taking free ones). The
        event stream of one it no longer holds is ended: another process follows it now."""
        mine = [(cred_id, infra_id) for cred_id, infra_id in self.engines()
                if self.election.holds(f"engine:{cred_id}")]
        ours = {cred_id for cred_id, _ in mine}
        for cred_id, (_, signal) in list(self._watchers.items()):
            if cred_id not in ours and not signal.is_set():
                log.info("no longer following the engine of %s: another process holds it", cred_id)
                signal.set()
        return mine

    def sweep(self) -> None:
        for cred_id, infra_id in self.elected():
            self._watch(cred_id)
            try:
                held = driver_for(self.services, cred_id).managed()
            except DriverError as exc:
                log.info("engine %s unavailable for the sweep with %s: %s", infra_id, cred_id, exc.message)
                self._unreachable(cred_id, exc)
                continue
            active = self._active()  # read after the engine: a container just made has its deployment active
            # an orphan belongs to no active deployment at all: one engine may be registered under several
            # services (and keys), so "not a deployment of this service" would take others' containers
            for dep_id in set(held) - {d["id"] for d in active}:
                log.info("removing orphaned containers of %s", dep_id)
                try:
                    driver_for(self.services, cred_id).destroy(dep_id)
                except DriverError as exc:
                    log.warning("could not remove orphans of %s: %s", dep_id, exc.message)
            for dep in active:
                if dep["state"] in WATCHED and dep.get("parent") == cred_id:
                    self.reconcile(dep["id"])

    def _active(self) -> list[dict[str, Any]]:
        with self.services.store.read() as tx:
            return tx.search(Query("deployment", cimi_filter.parse(
                "state='STARTED' or state='ERROR' or state='STARTING' or state='STOPPING' "
                "or state='UPDATING'"))).docs

    # -- events ------------------------------------------------------------------------------------

    def _watch(self, cred_id: str, *, swept: bool = True) -> None:
        """Follow the engine's events through ``cred_id`` (``swept``: a sweep has just looked at everything)."""
        watcher = self._watchers.get(cred_id)
        if watcher is not None and watcher[0].is_alive() and not watcher[1].is_set():
            return
        signal = StopSignal()
        if self._stop.is_set():
            return
        thread = threading.Thread(target=self._events, args=(cred_id, signal, swept),
                                  name=f"dockyard-events-{cred_id}", daemon=True)
        self._watchers[cred_id] = (thread, signal)
        thread.start()

    def _events(self, cred_id: str, stop: StopSignal, swept: bool = True) -> None:
        """Follow the stream until ``stop`` (this reconciler stops, or another process took the engine)."""
        missed = not swept  # unless a sweep started this watcher, what it finds has not been looked at yet
        refused = ""  # said once, not every 2 s while an engine stays away
        while not stop.is_set():
            try:
                try:
                    events = driver_for(self.services, cred_id).events(stop)
                except DriverError as exc:
                    (log.debug if exc.message == refused else log.info)(
                        "event stream through %s cannot open: %s", cred_id, exc.message)
                    refused = exc.message
                    self._unreachable(cred_id, exc)
                    missed = True
                else:
                    if refused:
                        log.info("event stream through %s open again", cred_id)
                        refused = ""
                    if missed:  # what happened while the stream was closed (the engine was away)
                        self._reconcile_all(cred_id)
                    missed = True  # from here on, a closed stream misses what follows
                    for event in events:
                        if stop.is_set():
                            break
                        # a node that changed (down, up) moves its tasks a moment after the event
                        self.reconcile(event.deployment_id,
                                       settle=NODE_SETTLE if event.action.startswith("node-") else 0.0)
            except DriverError as exc:
                log.info("event stream through %s ended: %s", cred_id, exc.message)
            except Exception:
                log.exception("event stream through %s failed", cred_id)
            stop.event.wait(2.0)

    def _deployments_of(self, cred_id: str, state: str) -> list[str]:
        where = cimi_filter.And((cimi_filter.Comp(("parent",), "=", cimi_filter.Value("string", cred_id)),
                                 cimi_filter.Comp(("state",), "=", cimi_filter.Value("string", state))))
        with self.services.store.read() as tx:
            return [d["id"] for d in tx.search(Query("deployment", where)).docs]

    def _reconcile_all(self, cred_id: str) -> None:
        for state in sorted(WATCHED):
            for dep_id in self._deployments_of(cred_id, state):
                self.reconcile(dep_id)

    def _unreachable(self, cred_id: str, exc: DriverError) -> None:
        """The engine behind ``cred_id`` does not answer: its running deployments may or may not run."""
        for dep_id in self._deployments_of(cred_id, lifecycle.STARTED):
            lifecycle.set_fields(self.services, dep_id, only_in=frozenset({lifecycle.STARTED}),
                                   **observe.unreachable(exc.message))

    # -- one deployment ----------------------------------------------------------------------------

    def reconcile(self, deployment_id: str, *, settle: float = 0.0) -> None:
        """Bring the deployment's state and parameters to what its engine says; ``settle``: look again every
        ``SETTLE_POLL`` s for at least that long (see :meth:`_follow`). The engine is opened afresh, not taken
        from the event stream that asked: a swarm driver's stream holds its client, and inspecting through it
        never saw a lost node's task move (tests/swarm/test_node_lost.py).

        One look at a deployment at a time in this process (the sweep, its engine's events, a settling
        service's timer, the same engine's events through another key): a look is read, inspected and written
        before the next begins, so a look taken before a change never overwrites one taken after it."""
        with self._looking.held(deployment_id):
            settling = self._look(deployment_id)
        if settling is not None:
            self._follow(deployment_id, settling, settle)

    def _look(self, deployment_id: str) -> bool | None:
        """One look (see :meth:`reconcile`): whether the deployment's tasks are settling, None if not looked at."""
        with self.services.store.read(snapshot=False) as tx:  # one statement (a start's own events end here)
            dep = tx.get(deployment_id)
        if dep is None or dep["state"] not in WATCHED:
            with self._settling_lock:
                self._settling.pop(deployment_id, None)
            return None
        try:
            driver = driver_for(self.services, dep["parent"])
            tasks = driver.inspect(deployment_id)
        except DriverError as exc:
            log.info("cannot inspect %s: %s", deployment_id, exc.message)
            return None
        fields = observe.observed(dep, tasks)
        if fields is not None:
            lifecycle.set_fields(self.services, deployment_id, only_in=WATCHED,
                                   also=lambda ctx, tx, dep: observe.parameters(ctx, tx, dep, tasks), **fields)
        return observe.settling(tasks)

    def _follow(self, deployment_id: str, settling: bool, settle: float) -> None:
        """Look again in ``SETTLE_POLL`` s at a Swarm service whose tasks are settling (``observe.settling``)
        or that was just told a node changed: its tasks start or move without an event, and the sweep may be
        minutes away. Followed for ``SETTLE_FOR`` s at most; one that never settles is left to the sweep."""
        now = time.monotonic()
        with self._settling_lock:
            least, most, scheduled = self._settling.get(deployment_id, (now, now + SETTLE_FOR, False))
            least = max(least, now + settle)
            if (not settling and now >= least) or now > most:
                if not settling:  # settled: a later change opens a new window
                    self._settling.pop(deployment_id, None)
                return
            self._settling[deployment_id] = (least, most, True)
            if scheduled:
                return
        timer = threading.Timer(SETTLE_POLL, self._look_again, args=(deployment_id,))
        timer.daemon = True
        timer.start()

    def _look_again(self, deployment_id: str) -> None:
        with self._settling_lock:
            if deployment_id in self._settling:
                least, most, _ = self._settling[deployment_id]
                self._settling[deployment_id] = (least, most, False)
        if self._stop.is_set():
            return
        try:
            self.reconcile(deployment_id)
        except Exception:
            log.exception("looking again at %s failed", deployment_id)


class KeyedLocks:
    """A lock per key, kept only while someone holds or waits for it (deployments come and go)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # key → its lock, and how many hold or wait

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[key][1] - 1
                if users:
                    self._locks[key] = (lock, users)
                else:
                    del self._locks[key]
