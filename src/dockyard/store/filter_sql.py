"""CIMI filter AST (``store.filter``) -> a SQL boolean expression over ``resources r``.

Each comparison becomes ``r.key [NOT] IN (SELECT a.key FROM attrs a WHERE a.type = :type AND a.path = ... AND
<value condition>)``: an uncorrelated look-up on the ``attrs`` indexes ``(type, path, s, k, key)`` and
``(type, path, n, key)``. The caller binds ``:type``; every other value is a bound parameter ``f0, f1, ...``.
The SQL text itself is made only of fixed fragments, so nothing from the filter is ever interpolated.

Semantics, for a comparison on path P (as Nuvla's Elasticsearch translation, on the ``attrs`` rows):

* ``P='x'`` some ``s`` row equals ``'x'``; ``P=5`` some ``n`` row equals 5; ``P=true`` some ``b`` row is
  ``'true'``; ``P=['x', 5]`` any of them. As there is one row per array element, an array matches when any
  element does. Numbers and strings never compare equal (``P=5`` does not match ``"5"``).
* ``P!=v`` is ``NOT`` the above, so documents without P match (Elasticsearch ``must_not``).
* ``P=null``: no row at P or under it (``P/...``): missing, null, empty array or object, or a string too
  long to be indexed. ``P!=null``: some row at P or under it (so ``module!=null`` holds when ``module/href``
  is set, as Elasticsearch's ``exists`` on an object).
* ``< <= > >=``: integers on ``n``; strings and dates (canonical UTC timestamps) on ``s``, in byte order on
  both databases (``s`` has collation "C" on PostgreSQL). Date math is resolved here, against ``now``.
* ``P^='x'``: some ``s`` row starts with ``'x'``, as the range ``'x' <= s < successor('x')`` (exact for any
  character; LIKE is not used because SQLite's is case-insensitive).
* ``P=='w1 w2'`` (full text): every whitespace-separated word occurs in some ``s`` row at P, case-insensitively
  for ASCII letters (both databases fold ASCII only). A trailing ``*`` on a word is dropped: matching is by
  substring anyway, and Nuvla's UI sends ``fulltext=='text*'``. No words: some string at P. The virtual
  attribute ``fulltext`` (Elasticsearch's copy_to field) searches the paths ``fulltext_paths``.
* geo operators raise ``FilterError``.

Planning an ``and`` (when the caller passes ``estimate``): its comparisons that are sets of ids on the
``(type, path, s|n, id)`` indexes (equalities, ranges, prefixes) are either *probed* or *intersected*. When
its smallest equality has few candidates (``PROBE_MAX``), the search starts from it and each other comparison
is one index probe per candidate. When every equality is broad (``tags='t7'``: 10,000 of 100,000), probing
costs per candidate, not per match: the sets are then intersected (one index range scan each: joined on
their keys on PostgreSQL, see ``joined``; on SQLite the largest set is read once and each of its keys tested
against the others, see ``streamed``) and only the matches are looked up, except a
sibling far larger than the smallest equality (more than ``INTERSECT_RATIO`` times), which stays a probe per
match of the others. Sizes come from ``estimate``: a count of the set's index entries bounded by a cap, which
reads no more entries than the probing it may save (see ``query._estimator``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timezone

from dockyard.core.errors import FilterError
from dockyard.store.filter import GEO_OPS, REL_OPS, And, Comp, Node, Or, Value, resolve_date_math
from dockyard.store.schema import MAX_INDEXED_STRING

__all__ = ["DIALECTS", "FULLTEXT_PATHS", "Estimate", "compile_filter", "prefix_successor"]

DIALECTS = ("sqlite", "postgresql")

# What Elasticsearch's `fulltext` field holds for most Nuvla resources: the fields marked full-text in the specs
FULLTEXT_PATHS: tuple[str, ...] = ("name", "description")

# and/or levels nested as plain SQL on SQLite; deeper filters are compiled to CTEs (see _Compiler.flat)
SQLITE_MAX_NESTING = 16

_SUB = "SELECT a.key FROM attrs a WHERE a.type = :type AND "
_FALSE = "1 = 0"
_TRUE = "1 = 1"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LIKE_ESCAPE = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
_GEO = ", ".join(sorted(GEO_OPS))


def prefix_successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix`` (in code point order, which is
    UTF-8 byte order); ``None`` when there is none (the prefix is all U+10FFFF)."""
    chars = list(prefix)
    while chars:
        c = ord(chars[-1]) + 1
        if 0xD800 <= c <= 0xDFFF:  # surrogates are not characters: skip to the next one
            c = 0xE000
        if c <= 0x10FFFF:
            chars[-1] = chr(c)
            return "".join(chars)
        chars.pop()
    return None


def _depth(n: Node) -> int:
    """How many and/or levels nest in ``n`` (0 for a comparison)."""
    if type(n) is Comp:
        return 0
    return 1 + max((_depth(i) for i in n.items), default=0)  # type: ignore[union-attr]


class _Compiler:
    __slots__ = ("params", "now", "fulltext_paths", "alias", "ctes", "probe", "estimate", "dialect", "driver")

    def __init__(self, now: datetime, fulltext_paths: tuple[str, ...], estimate: "Estimate | None" = None,
                 dialect: str = "sqlite") -> None:
        self.dialect = dialect
        self.params: dict[str, object] = {}
        self.estimate = estimate
        self.now = now
        self.fulltext_paths = fulltext_paths
        self.alias = "r"  # the resources alias comparisons test
        self.ctes: list[str] = []
        # compile ranges and prefixes as a per-candidate index probe (see node())
        self.probe = False
        # the smallest equality of the and being planned, when it is probed from (see intersected())
        self.driver: Node | None = None

    def bind(self, value: object) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def node(self, n: Node) -> str:
        t = type(n)
        if t is Comp:
            return self.comp(n)  # type: ignore[arg-type]
        if t is And or t is Or:
            if t is And and self.estimate is not None:
                self.driver = None
                planned = self.intersected(n.items)  # type: ignore[union-attr]
                if planned is not None:
                    return planned
                driver, self.driver = self.driver, None
                if driver is not None and self.dialect == "postgresql":
                    rest = [i for i in n.items if i is not driver]  # type: ignore[union-attr]
                    return self.keyed(f"{_SUB}{self.set_where(driver)}", rest)  # type: ignore[arg-type]
            if t is And and any(_drives(i) for i in n.items):  # type: ignore[union-attr]
                # an equality beside them narrows the candidates: a range or prefix sibling is then cheaper
                # as one index probe per candidate than as the set of every id in its range (a temporary
                # index of tens of thousands of ids for "timestamp > X")
                parts = [self._probed(i) for i in n.items]  # type: ignore[union-attr]
            else:
                parts = [self.node(i) for i in n.items]  # type: ignore[union-attr]
            if not parts:
                return _TRUE if t is And else _FALSE
            if len(parts) == 1:
                return parts[0]
            return "(" + (" AND " if t is And else " OR ").join(parts) + ")"
        raise TypeError(f"not a filter node: {n!r}")

    def flat(self, root: Node) -> str:
        """``root`` with each and/or node as a CTE, so that the SQL text does not nest however deep the filter.

        SQLite's parser has a fixed stack (3.40 overflows past 26 levels of ``x AND (y OR (...))`` over these sub-queries),
        and a filter may nest 50 deep: past ``SQLITE_MAX_NESTING`` levels the expression becomes
        ``r.key IN (WITH n0 AS (SELECT c.key FROM resources c WHERE c.type = :type AND (<one level>)), ...
        SELECT key FROM nK)`` where each level refers to the CTEs of the levels below it.
        """
        self.alias = "c"
        top = self.cte(root)  # children first: a CTE only refers to the ones before it
        return f"r.key IN (WITH {', '.join(self.ctes)} SELECT key FROM {top})"

    def set_where(self, c: Comp) -> str:
        """The ``attrs a`` condition (after ``a.type = :type AND``) of a ``_settable`` comparison."""
        p = self.bind(c.attr)
        if c.op == "=":
            cond = self.equals(c.value)
        elif c.op == "^=":
            cond = self.prefix(self.string(c.value, c.op))
        else:
            cond = self.relation(c.op, c.value)
        return f"a.path = {p} AND {cond}"

    def intersected(self, items: tuple[Node, ...]) -> str | None:
        """An and whose equalities are all broad, as the intersection of its index sets (see the module
        docstring); ``None`` when probing from its smallest equality is the better plan."""
        settable = [i for i in items if _settable(i)]
        drives = [i for i in settable if _drives(i)]
        if len(settable) < 2 or not drives:
            return None
        saved = dict(self.params)
        wheres = {id(i): self.set_where(i) for i in settable}  # type: ignore[arg-type]
        sizes = {id(i): self.estimate(wheres[id(i)], self.params, COUNT_CAP)  # type: ignore[misc]
                 for i in drives}
        smallest = min(sizes.values())
        self.driver = min(drives, key=lambda i: sizes[id(i)])  # when the caller probes from it
        if smallest <= PROBE_MAX:
            self.params = saved  # probe: compiled afresh by the caller, with the parameter names it expects
            return None
        cap = smallest * INTERSECT_RATIO
        for i in settable:
            if id(i) not in sizes:
                sizes[id(i)] = self.estimate(wheres[id(i)], self.params, cap)  # type: ignore[misc]
        members = sorted((i for i in settable if sizes[id(i)] < cap), key=lambda i: sizes[id(i)])
        if len(members) < 2:
            self.params = saved
            return None
        chosen = {id(i) for i in members}
        if self.dialect == "sqlite":
            sets = self.streamed(members, wheres, sizes)
        else:
            sets = self.joined([wheres[id(i)] for i in members])
        self.driver = None
        rest = [i for i in items if id(i) not in chosen]
        if rest and self.dialect == "postgresql":
            return self.keyed(sets, rest)
        parts = [f"{self.alias}.key IN ({sets})"]
        # the rest is checked per match of the intersection: ranges and prefixes as index probes
        parts += [self._probed(i) for i in rest]
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def keyed(self, keys: str, rest: list[Node]) -> str:
        """PostgreSQL: the and's matches found among the keys of ``keys`` (a query of ``attrs a``), each
        tested against ``rest`` (ranges and prefixes as index probes), before any document is read.

        Written as ``r.key IN (<keys>) AND <rest>``, PostgreSQL reads each candidate's document first and
        tests the rest after (``gnss:mission='M7' and timestamp>X``: 5,000 documents read for 2,903
        matches, each with its ACL check in the row); here only the matches' are."""
        outer, self.alias = self.alias, "c"
        try:
            parts = [self._probed(i) for i in rest]
        finally:
            self.alias = outer
        if not parts:  # an and of its driver alone (a parenthesised equality, say): its keys are the matches
            return f"{outer}.key IN ({keys})"
        return f"{outer}.key IN (SELECT c.key FROM ({keys}) c WHERE {' AND '.join(parts)})"

    @staticmethod
    def joined(wheres: list[str]) -> str:
        """PostgreSQL's intersection: the sets joined on their keys, ``SELECT s0.key FROM (A) s0 JOIN (B) s1
        ON s1.key = s0.key ...`` (a key twice in a set, an array holding a value twice, only repeats a key in
        the ``IN`` list, which means the same). An equality's set comes out of its index in key order, so
        PostgreSQL merges it with the others once they are sorted; ``INTERSECT`` appended every set to hash
        them all (tags='t7' and name^='doc-1' over 100,000: 22-25 -> 15-16 ms of server CPU per search)."""
        first, *others = wheres
        joins = "".join(f" JOIN ({_SUB}{w}) s{n} ON s{n}.key = s0.key" for n, w in enumerate(others, 1))
        return f"SELECT s0.key FROM ({_SUB}{first}) s0{joins}"

    @staticmethod
    def streamed(members: list[Node], wheres: dict[int, str], sizes: dict[int, int]) -> str:
        """SQLite's intersection: one set read from its index, each key tested against the others'.

        SQLite's ``INTERSECT`` copies the first set into a temporary b-tree, then each key of the second
        found there into another. Testing ``a.key IN (<set>)`` keeps only the other sets (an equality's set
        comes out of its index in key order: appended, not inserted) and reads the largest one, a range or
        a prefix when there is one (its keys come in value order), once (tags='t7' and name^='doc-1' over
        100,000: 8-12 -> 5-9 ms of CPU)."""
        streamed = max(members, key=lambda i: (not _drives(i), sizes[id(i)]))
        tests = "".join(f" AND a.key IN ({_SUB}{wheres[id(i)]})" for i in members if i is not streamed)
        return f"{_SUB}{wheres[id(streamed)]}{tests}"

    def cte(self, n: Node) -> str:
        t = type(n)
        if t is not And and t is not Or:
            raise TypeError(f"not a filter node: {n!r}")
        parts = [
            self.comp(i) if type(i) is Comp else f"c.key IN (SELECT key FROM {self.cte(i)})"
            for i in n.items  # type: ignore[union-attr]
        ] or [_TRUE if t is And else _FALSE]
        name = f"n{len(self.ctes)}"
        joined = (" AND " if t is And else " OR ").join(parts)
        self.ctes.append(f"{name} AS (SELECT c.key FROM resources c WHERE c.type = :type AND ({joined}))")
        return name

    def _probed(self, n: Node) -> str:
        if type(n) is not Comp or n.op not in _PROBED_OPS:  # type: ignore[union-attr]
            return self.node(n)
        self.probe = True
        try:
            return self.comp(n)  # type: ignore[arg-type]
        finally:
            self.probe = False

    def rows(self, path: str, cond: str | None, negate: bool = False) -> str:
        where = f"a.path = {path}" + (f" AND {cond}" if cond else "")
        if self.probe and not negate:
            return f"EXISTS (SELECT 1 FROM attrs a WHERE a.key = {self.alias}.key AND {where})"
        return f"{self.alias}.key {'NOT IN' if negate else 'IN'} ({_SUB}{where})"

    def comp(self, c: Comp) -> str:
        op, value, path = c.op, c.value, c.attr
        if op == "=" or op == "!=":
            negate = op == "!="
            if value.kind == "list" and not value.v:  # empty list: nothing is equal
                return _TRUE if negate else _FALSE
            if value.kind == "null":
                # as Elasticsearch's exists: an object is there when any attribute under it is
                p, lo, hi = self.bind(path), self.bind(path + "/"), self.bind(path + "0")  # '0' follows '/'
                where = f"(a.path = {p} OR (a.path > {lo} AND a.path < {hi}))"
                return f"{self.alias}.key {'IN' if negate else 'NOT IN'} ({_SUB}{where})"
            p = self.bind(path)
            return self.rows(p, self.equals(value), negate)
        if op in REL_OPS:
            p = self.bind(path)
            return self.rows(p, self.relation(op, value))
        if op == "^=":
            p = self.bind(path)
            return self.rows(p, self.prefix(self.string(value, op)))
        if op == "==":
            return self.fulltext(path, self.string(value, op))
        if op in GEO_OPS:
            raise FilterError(f"geo-spatial operators ({_GEO}) are not supported")
        raise FilterError(f"unknown operator {op!r}")

    @staticmethod
    def string(value: Value, op: str) -> str:
        if value.kind != "string":
            raise FilterError(f"'{op}' needs a quoted string, not a {value.kind}")
        return value.v  # type: ignore[return-value]

    def equals(self, value: Value) -> str:
        kind = value.kind
        if kind == "string" or kind == "date":
            return f"a.k = 's' AND a.s = {self.bind(value.v)}"
        if kind == "int":
            # only numbers have an n, so no a.k test: the (type, path, n, key) index answers alone
            return f"a.n = {self.bind(float(value.v))}"  # type: ignore[arg-type]
        if kind == "bool":
            return f"a.k = 'b' AND a.s = {self.bind('true' if value.v else 'false')}"
        if kind == "list":
            strings: list[str] = []
            numbers: list[float] = []
            for item in value.v:  # type: ignore[union-attr]
                if item.kind == "int":
                    numbers.append(float(item.v))
                elif item.kind in ("string", "date"):
                    strings.append(item.v)
                else:
                    raise FilterError(f"a list can hold strings, integers and dates, not a {item.kind}")
            conds = []
            if strings:
                conds.append(f"(a.k = 's' AND a.s {self.among(dict.fromkeys(strings))})")
            if numbers:
                conds.append(f"a.n {self.among(dict.fromkeys(numbers))}")
            return conds[0] if len(conds) == 1 else "(" + " OR ".join(conds) + ")"
        raise FilterError(f"cannot compare with a {kind} using '='")

    def among(self, values: Collection[object]) -> str:
        if len(values) == 1:
            return "= " + self.bind(next(iter(values)))
        return "IN (" + ", ".join(self.bind(v) for v in values) + ")"

    def relation(self, op: str, value: Value) -> str:
        kind = value.kind
        if kind == "int":
            return f"a.n {op} {self.bind(float(value.v))}"  # type: ignore[arg-type]
        if kind == "datemath":
            bound = resolve_date_math(value.v, op, self.now)  # type: ignore[arg-type]
            return f"a.k = 's' AND a.s {op} {self.bind(bound)}"
        if kind == "string" or kind == "date":
            return f"a.k = 's' AND a.s {op} {self.bind(value.v)}"
        raise FilterError(f"'{op}' needs an integer, a date or a string, not a {kind}")

    def prefix(self, prefix: str) -> str:
        if not prefix:
            return "a.k = 's'"
        cond = f"a.k = 's' AND a.s >= {self.bind(prefix)}"
        hi = prefix_successor(prefix)
        return cond if hi is None else f"{cond} AND a.s < {self.bind(hi)}"

    def fulltext(self, path: str, text: str) -> str:
        paths = self.fulltext_paths if path == "fulltext" else (path,)
        if not paths:
            return _FALSE
        words = [w.rstrip("*") for w in text.split()]
        words = list(dict.fromkeys(w for w in words if w))
        if paths == (path,):
            where = f"a.path = {self.bind(path)}"
        else:
            where = "a.path IN (" + ", ".join(self.bind(p) for p in paths) + ")"
        if not words:
            return f"{self.alias}.key IN ({_SUB}{where} AND a.k = 's')"
        parts = []
        for word in words:
            if len(word) > MAX_INDEXED_STRING:  # longer than any indexed string: cannot occur in one
                return _FALSE
            pattern = "%" + word.translate(_ASCII_LOWER).translate(_LIKE_ESCAPE) + "%"
            parts.append(
                f"{self.alias}.key IN ({_SUB}{where} AND a.k = 's' AND lower(a.s) LIKE {self.bind(pattern)} ESCAPE '\\')"
            )
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


_PROBED_OPS = frozenset({"<", "<=", ">", ">=", "^="})

# an and's smallest equality with at most this many candidates drives the search (probe the rest)
PROBE_MAX = 500
# above it, a range or prefix sibling joins the intersection when it has fewer than this many times as many
# ids as that equality; larger ones are probed per id of the intersection
INTERSECT_RATIO = 4
# an equality's size is counted up to this bound (beyond it, it is simply "large")
COUNT_CAP = 50_000

# (the set's WHERE over ``attrs a`` after ``a.type = :type AND``, the filter's parameters so far, a cap)
# -> how many index entries the set has, counted up to the cap
Estimate = Callable[[str, dict[str, object], int], int]


def _settable(n: Node) -> bool:
    """A comparison whose matches are one index range of ``attrs``: equality, range or prefix."""
    if type(n) is not Comp:
        return False
    if n.op == "=":  # type: ignore[union-attr]
        return n.value.kind not in ("null", "list")  # type: ignore[union-attr]
    return n.op in _PROBED_OPS and (n.op != "^=" or n.value.kind == "string")  # type: ignore[union-attr]


def _drives(n: Node) -> bool:
    """An equality with a value: few rows, so the search can start from it."""
    return type(n) is Comp and n.op == "=" and n.value.kind not in ("null", "list")  # type: ignore[union-attr]


def compile_filter(
    node: Node,
    dialect: str,
    *,
    now: datetime | None = None,
    fulltext_paths: Collection[str] = FULLTEXT_PATHS,
    estimate: Estimate | None = None,
) -> tuple[str, dict[str, object]]:
    """``(sql, params)``: a boolean SQL expression over ``resources r`` and its parameters ``f0, f1, ...``.

    The caller binds ``:type`` (the resource type) and puts the expression in
    ``SELECT ... FROM resources r WHERE r.type = :type AND (<sql>)``. ``dialect`` is ``'sqlite'`` or
    ``'postgresql'`` (the SQL is the same today). ``now`` is the instant date math is relative to (default: the
    current time; naive means UTC). ``fulltext_paths`` are the attributes the virtual ``fulltext`` attribute searches with ``==``.
    ``estimate`` lets an ``and`` choose between probing and intersecting its index sets (module docstring);
    without it, an equality always drives and its siblings are probed.
    Raises ``FilterError`` for what the store cannot run (geo-spatial operators).
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    compiler = _Compiler(now, tuple(fulltext_paths), estimate, dialect)
    if dialect == "sqlite" and _depth(node) > SQLITE_MAX_NESTING:
        sql = compiler.flat(node)
    else:
        sql = compiler.node(node)
    return sql, compiler.params
