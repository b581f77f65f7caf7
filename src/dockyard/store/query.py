"""Searches compiled to SQL: filter, ACL restriction, ordering, paging, select, count and aggregations.

Everything here runs in the database; Python only decodes the rows it asked for.
"""

from __future__ import annotations

import re
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..core.errors import BadRequest
from .filter_sql import Estimate, compile_filter

if TYPE_CHECKING:
    from .db import Tx

VIEW_PATHS = ("acl/owners", "acl/view-meta")
COLUMN_KEYS = frozenset({"id", "created", "updated"})
SELECT_KEY_RE = re.compile(r"^[A-Za-z@][\w:@.-]*$")
MAX_SELECT = 60
TERMS_SIZE = 100
# index set sizes the planner counted, per database (engine): (when, size) by (type, set, parameters, cap)
SIZE_TTL = 30.0
SIZE_ENTRIES = 4096
_SIZES: "weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], tuple[float, int]]]" = weakref.WeakKeyDictionary()
AGGREGATIONS = ("min", "max", "sum", "avg", "stats", "value_count", "cardinality", "missing", "terms")


@dataclass(frozen=True)
class Query:
    type: str
    filter: Any = None  # a parsed filter (store.filter AST) or None
    claims: frozenset[str] | None = None  # None: no ACL restriction (admins, internal calls)
    acl_paths: tuple[str, ...] = VIEW_PATHS
    orderby: tuple[tuple[str, bool], ...] = ()  # (attribute path, descending)
    offset: int = 0
    limit: int | None = None
    select: tuple[str, ...] | None = None  # top-level keys; acl is always fetched for the rights check
    aggregations: tuple[tuple[str, str], ...] = ()  # (algorithm, attribute path)


@dataclass
class SearchResult:
    count: int
    docs: list[dict[str, Any]]
    aggregations: dict[str, Any] = field(default_factory=dict)


class _Params:
    def __init__(self, initial: dict[str, Any]) -> None:
        self.values = dict(initial)
        self._n = 0

    def add(self, value: Any, prefix: str = "q") -> str:
        name = f"{prefix}{self._n}"
        self._n += 1
        self.values[name] = value
        return f":{name}"


def _where(tx: "Tx", q: Query, params: _Params) -> str:
    # with a filter, the filter's index look-ups must drive the search, never a scan of the whole type:
    # on SQLite the unary + keeps the planner off the type index whatever its statistics say
    parts = ["+r.type = :type" if q.filter is not None and tx.dialect == "sqlite" else "r.type = :type"]
    if q.filter is not None:
        fsql, fparams = compile_filter(q.filter, tx.dialect, estimate=_estimator(tx, q.type))
        params.values.update(fparams)
        parts.append(f"({fsql})")
    if q.claims is not None:
        claims = ", ".join(params.add(c, "c") for c in sorted(q.claims))
        paths = ", ".join(params.add(p, "c") for p in q.acl_paths)
        if q.filter is None:
            # nothing else narrows the search: let the caller's grants drive it
            parts.append(f"r.key IN (SELECT a.key FROM attrs a WHERE a.type = :type AND a.path IN ({paths}) "
                         f"AND a.s IN ({claims}))")
        elif tx.dialect == "postgresql":
            # the filter drives and each candidate's row is read anyway: its ACL is checked in the row, which
            # costs less than a probe of attrs per candidate (PostgreSQL filters that probe on id alone)
            granted = params.add(sorted(q.claims), "c")
            checks = []
            for path in q.acl_paths:
                keys = " -> ".join(f"CAST({params.add(k, 'c')} AS text)" for k in path.split("/"))
                checks.append(f"(r.doc -> {keys}) ?| CAST({granted} AS text[])")
            parts.append("(" + " OR ".join(checks) + ")")
        else:
            # the filter drives; the grant is one index probe per candidate
            parts.append(f"EXISTS (SELECT 1 FROM attrs a WHERE a.key = r.key AND a.path IN ({paths}) "
                         f"AND a.s IN ({claims}))")
    return " AND ".join(parts)


def _estimator(tx: "Tx", rtype: str) -> Estimate:
    """How the filter's planner sizes an index set: its entries counted up to a cap, on the covering
    ``(type, path, s|n, ...)`` index (an index-only range scan that stops at the cap), and remembered for
    ``SIZE_TTL`` seconds per database (``_SIZES``).

    Neither database's statistics can size one: ``sqlite_stat1`` averages rows per value over every path of
    every type, and PostgreSQL's ``pg_stats`` describes the ``s`` column across all paths at once, so that
    ``tags='t7'`` (10,000 rows) and ``name='doc-7'`` (1 row) look alike. The bounded count is exact where the
    choice matters and reads at most what the probing it decides against would. A size only chooses the
    plan, never what a search finds, so one a few seconds old is as good: repeated searches (a list a UI
    refreshes) skip the counts, which cost a tenth of a broad search (10,000-20,000 index entries read)."""
    sizes = _SIZES.setdefault(tx.conn.engine, {})

    def estimate(where: str, params: dict[str, Any], cap: int) -> int:
        key = (rtype, where, tuple(sorted(params.items())), cap)
        now = time.monotonic()
        known = sizes.get(key)
        if known is not None and now - known[0] < SIZE_TTL:
            return known[1]
        sql = f"SELECT count(*) FROM (SELECT 1 FROM attrs a WHERE a.type = :type AND {where} LIMIT {int(cap)}) e"
        size = tx.conn.execute(sa.text(sql), {**params, "type": rtype}).scalar_one()
        if len(sizes) >= SIZE_ENTRIES:
            sizes.clear()  # a bounded memory; the next searches count again
        sizes[key] = (now, size)
        return size
    return estimate


def _columns_only(q: Query) -> bool:
    """Whether the order is by columns of ``resources`` alone (the default order is)."""
    return all(path in COLUMN_KEYS for path, _ in q.orderby)


def _order(q: Query, params: _Params, alias: str = "r") -> str:
    keys: list[str] = []
    for path, desc in q.orderby:
        direction = "DESC" if desc else "ASC"
        if path in COLUMN_KEYS:
            keys.append(f"{alias}.{path} {direction}")
            continue
        # as Elasticsearch: an array sorts by its smallest element ascending, its largest descending
        fn = "max" if desc else "min"
        p = params.add(path, "o")
        keys.append(f"(SELECT {fn}(a.n) FROM attrs a WHERE a.key = r.key AND a.path = {p}) {direction} NULLS LAST")
        keys.append(f"(SELECT {fn}(a.s) FROM attrs a WHERE a.key = r.key AND a.path = {p}) {direction} NULLS LAST")
    if not q.orderby:
        keys.append(f"{alias}.created ASC")
    keys.append(f"{alias}.id ASC")
    return ", ".join(keys)


def _projection(tx: "Tx", q: Query, params: _Params) -> str:
    if q.select is None:
        return "r.doc"
    keys = ["id", "acl", *[k for k in q.select if k not in ("id", "acl")]]
    if len(keys) > MAX_SELECT:
        raise BadRequest(f"select names {len(keys)} attributes; at most {MAX_SELECT} are allowed")
    args: list[str] = []
    for key in keys:
        if not SELECT_KEY_RE.match(key):
            raise BadRequest(f"invalid attribute name in select: {key!r}")
        k = params.add(key, "s")
        if tx.dialect == "postgresql":
            args.append(f"CAST({k} AS text), r.doc -> CAST({k} AS text)")
        else:
            path = params.add('$."' + key + '"', "s")
            args.append(f"{k}, json(r.doc -> {path})")
    fn = "jsonb_build_object" if tx.dialect == "postgresql" else "json_object"
    return f"{fn}({', '.join(args)})"


def _page(q: Query) -> str:
    if q.limit is None:
        return f" OFFSET {int(q.offset)}" if q.offset else ""
    return f" LIMIT {int(q.limit)} OFFSET {int(q.offset)}"


def run_search(tx: "Tx", q: Query) -> SearchResult:
    params = _Params({"type": q.type})
    where = _where(tx, q, params)
    count_sql = f"SELECT count(*) FROM resources r WHERE {where}"
    docs: list[dict[str, Any]] = []
    count: int | None = None
    if q.limit == 0:
        count = tx.conn.execute(sa.text(count_sql), params.values).scalar_one()
    elif q.filter is not None:
        # a filter drives the search, so the page must sort every match anyway: find the matches once and
        # take both the count and the page from them (two passes doubled the cost of broad filters)
        proj = _projection(tx, q, params)
        if _columns_only(q):
            # the page is chosen among the matches' ids and dates: only its documents are read
            sql = (f"WITH m AS MATERIALIZED (SELECT r.key, r.id, r.created, r.updated FROM resources r "
                   f"WHERE {where}) SELECT {proj}, (SELECT count(*) FROM m) FROM resources r WHERE r.key IN "
                   f"(SELECT m.key FROM m ORDER BY {_order(q, params, 'm')}{_page(q)}) ORDER BY {_order(q, params)}")
        else:
            sql = (f"WITH m AS MATERIALIZED (SELECT r.key FROM resources r WHERE {where}) "
                   f"SELECT {proj}, (SELECT count(*) FROM m) FROM resources r WHERE r.key IN (SELECT key FROM m) "
                   f"ORDER BY {_order(q, params)}{_page(q)}")
        for raw, total in tx.conn.execute(sa.text(sql), params.values):
            docs.append(_decoded(tx, q, raw))
            count = total
    else:
        # no filter: the page can stop early on the (type, created) index, so it is cheaper on its own
        count = tx.conn.execute(sa.text(count_sql), params.values).scalar_one()
        if count:
            proj = _projection(tx, q, params)
            sql = f"SELECT {proj} FROM resources r WHERE {where} ORDER BY {_order(q, params)}{_page(q)}"
            docs = [_decoded(tx, q, raw) for (raw,) in tx.conn.execute(sa.text(sql), params.values)]
    if count is None:  # the page came back empty (no match, or an offset past the end)
        count = tx.conn.execute(sa.text(count_sql), params.values).scalar_one() if q.offset else 0
    aggs = {f"{algo}:{path}": _aggregate(tx, q, where, params, algo, path) for algo, path in q.aggregations}
    return SearchResult(count, docs, aggs)


def run_ids(tx: "Tx", q: Query) -> list[str]:
    params = _Params({"type": q.type})
    where = _where(tx, q, params)
    sql = f"SELECT r.id FROM resources r WHERE {where} ORDER BY {_order(q, params)}{_page(q)}"
    return [row[0] for row in tx.conn.execute(sa.text(sql), params.values)]


def _aggregate(tx: "Tx", q: Query, where: str, params: _Params, algo: str, path: str) -> dict[str, Any]:
    p = params.add(path, "g")
    rows_of = (f"FROM attrs a WHERE a.type = :type AND a.path = {p} "
               f"AND a.key IN (SELECT r.key FROM resources r WHERE {where})")
    run = lambda sql: tx.conn.execute(sa.text(sql), params.values)  # noqa: E731
    if algo == "terms":
        rows = run(f"SELECT a.k, a.s, a.n, count(*) AS c {rows_of} GROUP BY a.k, a.s, a.n "
                   f"ORDER BY c DESC, a.s, a.n").all()
        buckets = [{"key": _term_key(k, s, n), "doc_count": c} for k, s, n, c in rows[:TERMS_SIZE]]
        other = sum(c for *_, c in rows[TERMS_SIZE:])
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}
    if algo == "value_count":
        return {"value": run(f"SELECT count(*) {rows_of}").scalar_one()}
    if algo == "cardinality":
        return {"value": run(f"SELECT count(DISTINCT a.k || ':' || COALESCE(a.s, CAST(a.n AS TEXT))) "
                             f"{rows_of}").scalar_one()}
    if algo == "missing":
        sql = (f"SELECT count(*) FROM resources r WHERE {where} AND r.key NOT IN "
               f"(SELECT a.key FROM attrs a WHERE a.type = :type AND a.path = {p})")
        return {"doc_count": run(sql).scalar_one()}
    count, low, high, total, mean, slow, shigh = run(
        f"SELECT count(a.n), min(a.n), max(a.n), sum(a.n), avg(a.n), min(a.s), max(a.s) {rows_of}").one()
    if algo == "stats":
        return {"count": count, "min": low, "max": high, "avg": mean, "sum": total or 0.0}
    if algo in ("min", "max"):
        value, text = (low, slow) if algo == "min" else (high, shigh)
        if value is None and text is not None:
            return {"value": None, "value_as_string": text}
        return {"value": value}
    if algo == "sum":
        return {"value": total or 0.0}
    if algo == "avg":
        return {"value": mean}
    raise BadRequest(f"unsupported aggregation {algo!r}; use one of {', '.join(AGGREGATIONS)}")


def _term_key(k: str, s: str | None, n: float | None) -> Any:
    if k == "n":
        return int(n) if n is not None and float(n).is_integer() else n
    if k == "b":
        return 1 if s == "true" else 0
    return s


def _decoded(tx: "Tx", q: Query, raw: Any) -> dict[str, Any]:
    doc = tx.load(raw)
    if q.select is not None:
        doc = {k: v for k, v in doc.items() if v is not None}
    return doc
