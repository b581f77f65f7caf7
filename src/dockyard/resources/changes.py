"""The change feed: every committed change of a document, fanned out to the subscribers who may see it.

Every write transaction lists its changes, whatever made them: a request, a hook inside it, a job, the
reconciler. A :class:`ChangeFeed` hears those lists in commit order (on SQLite from the store's observers,
on PostgreSQL from the database: see below), puts them in an in-memory inbox, and one dispatcher thread
turns each change into an :class:`Event` for every :class:`Subscription` that wants it:

* the document's type is one of the subscription's ``types``;
* the subscriber's claims, taken when it subscribed, may view the document (``acl.rights_of`` /
  ``acl.can_view``, exactly as a GET would decide);
* the document matches the subscription's CIMI filter, with the semantics of a search (the comparison rules
  of ``store.filter_sql`` evaluated on the document's ``attrs`` rows, type restrictions such as "sessions:
  only your own" included).

``Event.data`` is the document as that subscriber's GET would return it, without ``operations`` (ACL hidden
without ``view-acl``, the type's hidden keys removed, its ``present`` hook applied). A delete carries only
``{"id", "resource-type"}``. Events get ids from one counter per feed: increasing for each subscriber, with
gaps (the changes it may not see).

Each subscription has a bounded, thread-safe queue. A subscriber that falls more than ``queue_size`` events
behind is dropped: its last event is ``overflow`` and it must read again what it shows, then subscribe
again. Logging out (deleting the session a subscription was opened with) ends the subscription: no change
committed after the logout reaches it.

Across processes (``dockyard serve --no-workers`` API processes and ``dockyard worker`` processes on one
PostgreSQL), the feed does not take the store's observer lists: every write transaction, whichever process
made it, stores its changes with their documents in the outbox inside the transaction, and an announcer
sends them on ``NOTIFY dockyard_changes`` once committed (``store/outbox.py``, ``store/announce.py``);
PostgreSQL delivers them to every process in one order, the changes of each document in the order they
committed. Once it has a subscriber, each process's feed LISTENs on that channel and dispatches every change
from there, its own included, so that the event stream through any process carries every change of every
document once, in the same order, with the version that change made (a delete goes to the subscriptions that
were sent the document before or may see it as it was). A change is dispatched a few milliseconds after its
commit. If the listening connection is lost, the changes committed until it listens again cannot be heard:
every subscription open then ends (``UNHEARD``; its stream ends with ``overflow``: read again and
reconnect). On SQLite (one process) the store's observers deliver everything, in commit order.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..core import acl as acls
from ..core.errors import BadRequest, Forbidden
from ..store import filter as cimi_filter
from ..store.attrs import flatten
from ..store.announce import Reassembly
from ..store.db import CHANGES_CHANNEL, Change
from ..store.filter import REL_OPS, And, Comp, Node, Or, Value, resolve_date_math
from ..store.filter_sql import FULLTEXT_PATHS, compile_filter
from ..store.schema import MAX_INDEXED_STRING
from . import crud
from .base import Ctx, Services
from .params import SearchParams

if TYPE_CHECKING:
    from ..core.authn import AuthInfo

log = logging.getLogger("dockyard.changes")

DEFAULT_TYPES = ("deployment", "deployment-parameter", "job")
MAX_TYPES = 32
OVERFLOW = "overflow"
UNHEARD = "unheard"  # why a subscription ended: the feed lost its database connection, changes went unheard
# why a subscription ended
CLOSED, SHUTDOWN, REVOKED = "closed", "shutdown", "revoked"
# ids a subscription remembers having been sent, for deletes made by other processes
SEEN_LIMIT = 10_000
LISTEN_READY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Event:
    id: int
    change: str  # add | edit | delete | overflow
    data: dict[str, Any]


class Subscription:
    """One subscriber: its caller, what it asked for, and the queue of its events (thread-safe)."""

    def __init__(self, ctx: Ctx, filters: dict[str, Node | None], size: int) -> None:
        self.ctx = ctx
        self.filters = filters  # type → the filter its documents must match (None: every document)
        self.queue: queue.Queue[Event] = queue.Queue(size)
        self.ended: str | None = None  # why it ended: overflow | unheard | closed | shutdown | revoked
        self._wakers: list[Callable[[], None]] = []
        self._seen: dict[str, None] = {}

    @property
    def authn(self) -> "AuthInfo":
        return self.ctx.authn

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self.filters)

    def on_ready(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from any thread) whenever an event is queued or the subscription ends."""
        self._wakers.append(wake)

    def drain(self) -> list[Event]:
        """Every queued event, without waiting."""
        return drain(self.queue)

    def get(self, timeout: float) -> Event | None:
        """The next event, waiting up to ``timeout`` s; None when there is none (or the subscription ended)."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    # -- used by the feed ----------------------------------------------------------------------------

    def _put(self, event: Event) -> bool:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            return False
        self._wake()
        return True

    def _end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._wake()

    def _wake(self) -> None:
        for wake in self._wakers:
            try:
                wake()
            except Exception:  # the consumer's loop is gone: it will not read again anyway
                pass

    def _remember(self, rid: str) -> None:
        self._seen.pop(rid, None)
        self._seen[rid] = None
        if len(self._seen) > SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]

    def _forget(self, rid: str) -> bool:
        return self._seen.pop(rid, False) is None


class ChangeFeed:
    """Fans committed changes out to subscriptions. Threads start with the first subscription."""

    def __init__(self, services: Services, *, queue_size: int = 1000) -> None:
        self.services = services
        self.queue_size = queue_size
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._inbox: queue.Queue[list[Change] | None] = queue.Queue()
        self._stop = threading.Event()
        self._started = False
        self._threads: list[threading.Thread] = []
        self._wanted: frozenset[str] = frozenset({"session"})  # the types whose changes someone wants

    # -- subscribers ---------------------------------------------------------------------------------

    def subscribe(self, authn: "AuthInfo", types: Iterable[str] = DEFAULT_TYPES,
                  filter: str | None = None) -> Subscription:
        """A subscription to the changes of ``types`` that ``authn`` may see and that match ``filter``.

        Raises BadRequest for an unknown type or a bad filter, Forbidden for a type the caller may not
        search; the caller's claims are fixed now.
        """
        ctx = Ctx(self.services, authn)
        node = cimi_filter.parse(filter) if filter and filter.strip() else None
        if node is not None:
            compile_filter(node, "sqlite")  # refuse here what a search would refuse (geo operators...)
        sub = Subscription(ctx, self._filters(ctx, types, node), self.queue_size)
        self._ensure_started()
        with self._lock:
            if self._stop.is_set():
                sub._end(SHUTDOWN)
            else:
                self._subs.append(sub)
                self._wanted = self._wanted.union(sub.filters)
        return sub

    def _filters(self, ctx: Ctx, types: Iterable[str], node: Node | None) -> dict[str, Node | None]:
        names = list(dict.fromkeys(types))
        if not names:
            raise BadRequest("types: name at least one resource type")
        if len(names) > MAX_TYPES:
            raise BadRequest(f"types: at most {MAX_TYPES} resource types")
        filters: dict[str, Node | None] = {}
        for name in names:
            rtype = self.services.type_of(name)
            if rtype is None:
                raise BadRequest(f"types: unknown resource type {name[:80]!r}")
            if not acls.collection_allows(rtype.collection_acl, ctx.authn, "query"):
                raise Forbidden.for_resource(None)
            # the type's own narrowing of searches (sessions: the caller's own) applies here too
            filters[name] = rtype.restrict_search(ctx, SearchParams(filter=node)).filter
        return filters

    def unsubscribe(self, sub: Subscription, reason: str = CLOSED) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
                self._wanted = frozenset({"session"}).union(*(s.filters for s in self._subs))
        sub._end(reason)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    # -- life cycle ----------------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        with self._lock:
            if self._started or self._stop.is_set():
                return
            self._started = True
        self._spawn(self._dispatch, "dockyard-changes")
        if self.services.store.dialect != "postgresql":
            self.services.store.observers.append(self.observe)
        else:
            # what a process that died had committed but not announced is announced by the others' sweeps
            self.services.store.announcer.start()
            ready = threading.Event()
            self._spawn(lambda: self._listen(ready), "dockyard-changes-listen")
            # a change committed after subscribe() returns must not be missed
            if not ready.wait(LISTEN_READY_TIMEOUT):
                log.warning("not listening for other processes' changes yet; retrying in the background")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """End every subscription (they see SHUTDOWN) and stop the threads. Idempotent."""
        self._stop.set()
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            sub._end(SHUTDOWN)
        if self.observe in self.services.store.observers:
            self.services.store.observers.remove(self.observe)
        self._inbox.put(None)
        for thread in self._threads:
            thread.join(timeout)

    # -- changes in ----------------------------------------------------------------------------------

    def observe(self, changes: list[Change]) -> None:
        """The store's observer (SQLite): runs in the writer's thread, so it only hands the changes over."""
        self._inbox.put(changes)

    def _dispatch(self) -> None:
        while True:
            changes = self._inbox.get()
            if changes is None:
                return
            for change, rid, doc in changes:
                try:
                    self._deliver(change, rid, doc)
                except Exception:  # one odd document must not stop the feed
                    log.exception("dispatching %s of %s failed", change, rid)

    def _deliver(self, change: str, rid: str, doc: dict[str, Any]) -> None:
        type_name = doc.get("resource-type") or rid.split("/", 1)[0]
        if change == "delete" and type_name == "session":
            self._revoke(rid)
        with self._lock:
            subs = [s for s in self._subs if type_name in s.filters]
        if not subs:
            return
        seq = next(self._seq)
        if change == "delete":
            event = Event(seq, change, {"id": rid, "resource-type": type_name})
            for sub in subs:
                if sub._forget(rid) or self._visible(sub, doc):
                    self._put(sub, event)
            return
        rtype = self.services.types[type_name]
        index: _Index | None = None
        for sub in subs:
            rights = acls.rights_of(doc.get("acl") or {}, sub.authn)
            if not acls.can_view(rights):
                continue
            node = sub.filters[type_name]
            if node is not None:
                index = index or _Index(doc, rtype.schema.unindexed)
                if not index.matches(node):
                    continue
            data = crud.present(sub.ctx, rtype, doc, rights, with_operations=False)
            if self._put(sub, Event(seq, change, data)):
                sub._remember(rid)

    def _visible(self, sub: Subscription, doc: dict[str, Any]) -> bool:
        if not acls.can_view(acls.rights_of(doc.get("acl") or {}, sub.authn)):
            return False
        node = sub.filters[doc["resource-type"]]
        rtype = self.services.types[doc["resource-type"]]
        return node is None or _Index(doc, rtype.schema.unindexed).matches(node)

    def _put(self, sub: Subscription, event: Event) -> bool:
        if sub._put(event):
            return True
        self.unsubscribe(sub, OVERFLOW)
        return False

    def _revoke(self, session_id: str) -> None:
        with self._lock:
            ended = [s for s in self._subs if s.authn.session_id == session_id]
        for sub in ended:
            self.unsubscribe(sub, REVOKED)

    # -- other processes (PostgreSQL) ----------------------------------------------------------------

    def _listen(self, ready: threading.Event) -> None:
        import psycopg

        dsn = self.services.store.dsn
        heard = Reassembly()
        lost = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                    if lost:
                        self._lost()
                    ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._heard(heard, note.payload)
            except Exception:
                log.exception("listening for the installation's changes failed; retrying")
                lost = ready.is_set()
                heard.reset()
                self._stop.wait(1.0)

    def _heard(self, heard: Reassembly, payload: str) -> None:
        wanted = self._wanted
        try:
            changes = heard.add(payload, wanted.__contains__)
        except ValueError:
            log.warning("a change notification could not be read: %.200r", payload)
            return
        if changes:
            self._inbox.put(changes)

    def _lost(self) -> None:
        """Listening again after the connection was lost: what committed meanwhile was not heard, so every
        open subscription ends as if it had fallen behind (its client reads again and subscribes again)."""
        with self._lock:
            subs = list(self._subs)
        log.warning("the change feed listens again; %d subscriptions end as they may have missed changes",
                    len(subs))
        for sub in subs:
            self.unsubscribe(sub, UNHEARD)


def feed_of(services: Services) -> ChangeFeed:
    """The process's change feed (one per Services), made on first use."""
    feed = services.extras.get("change-feed")
    if feed is None:
        feed = services.extras.setdefault(
            "change-feed", ChangeFeed(services, queue_size=services.settings["stream-queue"]))
    return feed


# -- filters on one document, with the semantics of a search (store/filter_sql.py) -------------------

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_Row = tuple[str, "str | None", "float | None"]


class _Index:
    """A document's ``attrs`` rows by path, and whether a filter matches them as the SQL would."""

    def __init__(self, doc: dict[str, Any], unindexed: Iterable[str] = ()) -> None:
        self.rows: dict[str, list[_Row]] = {}
        for path, k, s, n in flatten(doc, tuple(unindexed)):
            self.rows.setdefault(path, []).append((k, s, n))
        self.now = datetime.now(timezone.utc)

    def matches(self, node: Node) -> bool:
        if type(node) is And:
            return all(self.matches(i) for i in node.items)
        if type(node) is Or:
            return any(self.matches(i) for i in node.items)
        return self._comp(node)  # type: ignore[arg-type]

    def _comp(self, c: Comp) -> bool:
        op, value, path = c.op, c.value, c.attr
        rows = self.rows.get(path, ())
        if op in ("=", "!="):
            negate = op == "!="
            if value.kind == "list" and not value.v:
                return negate
            if value.kind == "null":
                under = path + "/"
                present = bool(rows) or any(p.startswith(under) for p in self.rows)
                return present if negate else not present
            return any(_equals(value, row) for row in rows) != negate
        if op in REL_OPS:
            return any(self._relation(op, value, row) for row in rows)
        if op == "^=":
            prefix = value.v
            return any(k == "s" and s.startswith(prefix) for k, s, _ in rows)  # type: ignore[union-attr,arg-type]
        if op == "==":
            return self._fulltext(path, value.v)  # type: ignore[arg-type]
        return False  # geo operators were refused when subscribing

    def _relation(self, op: str, value: Value, row: _Row) -> bool:
        k, s, n = row
        if value.kind == "int":
            return n is not None and _CMP[op](n, float(value.v))  # type: ignore[arg-type]
        bound = value.v
        if value.kind == "datemath":
            bound = resolve_date_math(value.v, op, self.now)  # type: ignore[arg-type]
        return k == "s" and _CMP[op](s, bound)

    def _fulltext(self, path: str, text: str) -> bool:
        paths = FULLTEXT_PATHS if path == "fulltext" else (path,)
        strings = [s.translate(_ASCII_LOWER) for p in paths for k, s, _ in self.rows.get(p, ()) if k == "s"]
        words = list(dict.fromkeys(w for w in (w.rstrip("*") for w in text.split()) if w))
        if not words:
            return bool(strings)
        if any(len(w) > MAX_INDEXED_STRING for w in words):
            return False
        return all(any(w.translate(_ASCII_LOWER) in s for s in strings) for w in words)  # type: ignore[operator]


def _equals(value: Value, row: _Row) -> bool:
    k, s, n = row
    kind = value.kind
    if kind in ("string", "date"):
        return k == "s" and s == value.v
    if kind == "int":
        return n is not None and n == float(value.v)  # type: ignore[arg-type]
    if kind == "bool":
        return k == "b" and s == ("true" if value.v else "false")
    if kind == "list":
        return any(_equals(item, row) for item in value.v)  # type: ignore[union-attr]
    return False


def matches(doc: dict[str, Any], node: Node, unindexed: Iterable[str] = ()) -> bool:
    """Whether a search with filter ``node`` would find ``doc`` (ACL aside)."""
    return _Index(doc, unindexed).matches(node)


__all__ = ["DEFAULT_TYPES", "OVERFLOW", "UNHEARD", "ChangeFeed", "Event", "Subscription", "feed_of", "matches"]


def drain(q: "queue.Queue[Any]") -> list[Any]:
    """Everything queued in ``q`` now, without waiting (a stream sends it in one write)."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
