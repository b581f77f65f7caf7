"""Waiting for a deployment to start, showing its phases as they happen.

A start goes queued → claimed → pulled → created → started → ready (the service passed its app's
readiness checks). The deployment's ``phases`` map (phase → timestamp, written by the server) has
``queued`` at once, the engine's phases when the start is over and ``ready`` when the checks pass;
its job's ``phases`` has ``claimed`` as soon as a worker takes it. Both arrive on the event stream, so
each phase is printed once, in order, the moment it is known, with the time since ``queued``; on a
terminal a spinner below says what is awaited. Each printed line is short (under 60 columns) and final,
so the screen reads the same in any terminal width and in a log file.

If the stream ends early (an overflow, a server restart) the wait goes on by reading the deployment every
half second; the result is the same, only later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from .client import FAILED, CliError, Client, quote
from .events import ENDED, Follower
from .output import parse_ts, short

PHASES = ("queued", "claimed", "pulled", "created", "started", "ready")
POLL = 0.5
DONE, FAILED_STATES = "STARTED", ("ERROR", "STOPPING", "STOPPED")


@dataclass
class Watch:
    """What is known of one start: the deployment as last seen, and the phases shown so far."""

    deployment: dict[str, Any]
    job_id: str | None = None
    job: dict[str, Any] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)

    def phases(self) -> dict[str, str]:
        known = {k: v for k, v in (self.job.get("phases") or {}).items() if isinstance(v, str)}
        known.update({k: v for k, v in (self.deployment.get("phases") or {}).items() if isinstance(v, str)})
        return known

    def new_phases(self) -> list[tuple[str, str]]:
        known = self.phases()
        # a phase is shown once every phase before it is known, so the lines come in order
        fresh = []
        for phase in PHASES:
            if phase not in known:
                break
            if phase not in self.shown:
                fresh.append((phase, known[phase]))
                self.shown.append(phase)
        return fresh

    def awaited(self) -> str:
        for phase in PHASES:
            if phase not in self.shown:
                return phase
        return "ready"


def settled(deployment: dict[str, Any]) -> bool:
    """STARTED and its readiness checks over (a server without them never sets ``ready-message``)."""
    return deployment.get("state") == DONE and ("ready" in deployment or "ready-message" not in deployment)


def subscribe(client: Client, dep_id: str) -> Follower | None:
    """The event stream of a deployment and its jobs, opened before the start so nothing is missed."""
    try:
        return Follower(client, "deployment,job",
                        f"id={quote(dep_id)} or target-resource/href={quote(dep_id)}").open()
    except CliError:
        return None  # a server without the stream: the wait polls instead


def wait_started(client: Client, dep_id: str, job_id: str | None, follower: Follower | None,
                 timeout: float, console: Console) -> dict[str, Any]:
    """Show the phases until the deployment is STARTED and ready (returned) or fails (a :class:`CliError`);
    STARTED but not ready in its app's time is a failure too, with the reason."""
    watch = Watch(client.get(dep_id), job_id)
    started = time.monotonic()
    deadline = started + timeout
    last_poll = 0.0
    with console.status(_status(watch, 0.0), spinner="dots") as status:
        while True:
            _show(watch, console)
            state = watch.deployment.get("state")
            if settled(watch.deployment):
                if watch.deployment.get("ready") is False:
                    raise CliError(f"{dep_id} is STARTED but not ready: {watch.deployment.get('ready-message')}",
                                   FAILED)
                return watch.deployment
            if state in FAILED_STATES:
                reason = watch.deployment.get("status-message") or "no reason given"
                raise CliError(f"{dep_id} is {state}: {reason}", FAILED)
            now = time.monotonic()
            if now >= deadline:
                raise CliError(f"{dep_id} is still {state} after {timeout:g} s; it goes on "
                               f"(see `dockyard show {short(dep_id)}`)", FAILED)
            status.update(_status(watch, now - started))
            event = follower.next(min(0.2, deadline - now)) if follower else None
            if event is not None and event.kind == ENDED:
                follower = None
            elif event is not None:
                _apply(watch, event.kind, event.data)
            if follower is None and time.monotonic() - last_poll >= POLL:
                last_poll = time.monotonic()
                watch.deployment = client.get(dep_id)
                if watch.job_id:
                    watch.job = client.get(watch.job_id)
                time.sleep(0.0 if follower else 0.1)


def _apply(watch: Watch, kind: str, doc: dict[str, Any]) -> None:
    if kind == "delete" and doc.get("id") == watch.deployment["id"]:
        watch.deployment = {**watch.deployment, "state": "STOPPED", "status-message": "it was deleted"}
    elif doc.get("id") == watch.deployment["id"]:
        watch.deployment = doc
    elif doc.get("id") == watch.job_id or (watch.job_id is None and doc.get("resource-type") == "job"):
        watch.job_id = doc.get("id")
        watch.job = doc


def _show(watch: Watch, console: Console) -> None:
    fresh = watch.new_phases()
    if not fresh:
        return
    base = parse_ts(watch.phases().get("queued"))
    for phase, ts in fresh:
        when = parse_ts(ts)
        when = when.astimezone() if when else None  # the user's clock
        offset = f"+{(when - base).total_seconds():.2f}s" if when and base else ""
        clock = when.strftime("%H:%M:%S.%f")[:12] if when else ts
        console.print(f"  [green]✓[/green] {phase:<8} {clock}  {offset:>8}")


def _status(watch: Watch, elapsed: float) -> str:
    return f"waiting for {watch.awaited()} ({elapsed:.0f}s)"
