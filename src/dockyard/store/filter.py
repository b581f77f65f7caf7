"""The CIMI filter grammar: text -> a small immutable AST.

The grammar is Nuvla's (``cimi-filter-grammar.txt``, restated in the reference, section 3), parsed with a
LALR(1) lark parser built once at import. The AST is made of frozen dataclasses::

    Node  := And(items) | Or(items) | Comp(path, op, value)
    Value := Value(kind, v)   kind: string | int | date | datemath | bool | null | list

``Comp.path`` is the attribute split on ``/`` (``acl/owners`` -> ``('acl', 'owners')``; ``data:bucket`` stays one
element). ``Comp.op`` is one of ``= != < <= > >= ^= ==`` or a geo operator. Comparisons are always stored
attribute-first: reversed forms (``'x'=a``, ``5<a``) are turned around, flipping relational operators.

Values:

* ``string``: a quoted string, quotes removed; ``\\\\``, ``\\'`` and ``\\"`` are unescaped, any other backslash
  sequence is kept as written (so ``'C:\\temp'`` means what it says).
* ``int``: ``\\d+``, within Elasticsearch's ``long`` range (there are no negative or decimal numbers).
* ``date``: a timestamp in the canonical form ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC). Unquoted dates always become
  one; quoted strings become one when used with ``< <= > >=`` and they read as an ISO date or date-time.
* ``datemath``: Elasticsearch date math in a quoted string used with ``< <= > >=`` (``'now-1d'``,
  ``'now+2h/d'``, ``'2019-01-01||+1M'``); resolved against the clock when compiled (``resolve_date_math``).
* ``bool``, ``null``; ``list``: a tuple of ``string``/``int``/``date`` values (``a=['x' 'y']``, commas optional).

Everything that goes wrong raises ``FilterError`` with a message naming the problem and where (positions are
0-based character offsets); never a lark exception. Parses are cached by text (the AST is immutable). Limits (all FilterError): ``MAX_LENGTH`` characters, ``MAX_DEPTH`` nested parentheses,
``MAX_COMPARISONS`` comparisons, ``MAX_LIST`` list elements.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, Union

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dockyard.core.errors import FilterError

__all__ = [
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_LIST",
    "And",
    "Comp",
    "Node",
    "Or",
    "Value",
    "conjoin",
    "format_timestamp",
    "iter_comparisons",
    "parse",
    "parse_all",
    "resolve_date_math",
]

MAX_LENGTH = 20_000
MAX_DEPTH = 50
MAX_COMPARISONS = 500
MAX_LIST = 1000
MAX_INT = 2**63 - 1  # Elasticsearch long

EQ_OPS = frozenset({"=", "!="})
REL_OPS = frozenset({"<", "<=", ">", ">="})
GEO_OPS = frozenset({"intersects", "disjoint", "within", "contains"})
OPS = EQ_OPS | REL_OPS | GEO_OPS | {"^=", "=="}

# ---------------------------------------------------------------------------------------------------------
# AST

ValueKind = Literal["string", "int", "date", "datemath", "bool", "null", "list"]


@dataclass(frozen=True, slots=True)
class Value:
    kind: ValueKind
    v: str | int | bool | None | tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Comp:
    path: tuple[str, ...]
    op: str
    value: Value

    @property
    def attr(self) -> str:
        """The slash path, as the ``attrs`` table keys it."""
        return "/".join(self.path)


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Union[And, Or, Comp]

NULL = Value("null", None)
TRUE = Value("bool", True)
FALSE = Value("bool", False)

# ---------------------------------------------------------------------------------------------------------
# Grammar. Character classes are ASCII on purpose: Nuvla's grammar runs on Java regexes, whose \w, \d and
# \s are ASCII-only, while Python's are Unicode.

_W = "[A-Za-z0-9_]"
_TERM = f"(?:[A-Za-z@][A-Za-z0-9_-]*{_W}|[A-Za-z])"
_NS_TERM = f"{_TERM}(?::{_TERM})?"
_ATTR = f"{_NS_TERM}(?:\\/{_NS_TERM})*"

_GRAMMAR = rf"""
start: disj
disj: conj (_OR conj)*
conj: _atom (_AND _atom)*
_atom: comp | "(" disj ")"

comp: ATTR eqop value     -> fwd
    | ATTR eqop values    -> fwd
    | ATTR relop ordinal  -> fwd
    | ATTR PREFIX string  -> fwd
    | ATTR FULLTEXT string -> fwd
    | ATTR geoop string   -> fwd
    | value eqop ATTR     -> rev
    | values eqop ATTR    -> rev
    | ordinal relop ATTR  -> rev
    | string PREFIX ATTR  -> rev
    | string FULLTEXT ATTR -> rev

!eqop: "=" | "!="
!relop: "<" | "<=" | ">" | ">="
!geoop: "intersects" | "disjoint" | "within" | "contains"

?value: ordinal | TRUE -> true | FALSE -> false | NULL -> null
?ordinal: INT -> integer | DATE -> date | string
string: STRING
values: "[" (ordinal (","? ordinal)*)? "]"

ATTR: /{_ATTR}/
STRING: /"[^"\\]*(?:\\[\s\S][^"\\]*)*"|'[^'\\]*(?:\\[\s\S][^'\\]*)*'/
DATE.2: /[0-9]+-[0-9]+(?:-[0-9]+)?(?:T[0-9]+:[0-9]+:[0-9]+(?:\.[0-9]+)?(?:Z|[+-][0-9]+:[0-9]+))?/
INT: /[0-9]+/
TRUE: "true"
FALSE: "false"
NULL: "null"
PREFIX: "^="
FULLTEXT: "=="
_AND: "and"
_OR: "or"

%ignore /[ \t\n\r\f\v]+/
"""

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return _ESCAPE.sub(_unescape_one, s)


_ESCAPE = re.compile(r"\\([\s\S])")


def _unescape_one(m: re.Match[str]) -> str:
    c = m.group(1)
    return c if c in "\\'\"" else m.group(0)


def _at(tok: Token) -> str:
    return f" at position {tok.start_pos}" if tok.start_pos is not None else ""


def _comp(attr: Token, op: str, value: Value) -> Comp:
    if op in REL_OPS and value.kind == "string":
        value = _temporal(value.v, attr)  # type: ignore[arg-type]
    return Comp(tuple(attr.split("/")), op, value)


class _ToAst(Transformer):
    """Called by the LALR parser on each reduction (no tree is built). Stateless, so shared by threads."""

    def start(self, c):
        return c[0]

    def disj(self, c):
        return c[0] if len(c) == 1 else Or(_flatten(Or, c))

    def conj(self, c):
        return c[0] if len(c) == 1 else And(_flatten(And, c))

    def fwd(self, c):
        attr, op, value = c
        return _comp(attr, str(op), value)

    def rev(self, c):
        value, op, attr = c
        op = str(op)
        # The sensible reading of `5<a` is `a>5`, so relational operators are flipped. Note that the real Nuvla
        # does NOT flip: its transform-comp (db/es/filter.clj) builds the same range whichever side the
        # attribute is on, so there `5<a` means `a<5`.
        return _comp(attr, _FLIP.get(op, op), value)

    def eqop(self, c):
        return c[0]

    relop = eqop
    geoop = eqop

    def string(self, c):
        tok = c[0]
        return Value("string", _unescape(tok[1:-1]))

    def integer(self, c):
        tok = c[0]
        n = int(tok)
        if n > MAX_INT:
            raise FilterError(f"integer {_excerpt(str(tok))}{_at(tok)} is out of range (at most {MAX_INT})")
        return Value("int", n)

    def date(self, c):
        tok = c[0]
        return Value("date", _unquoted_date(tok))

    def true(self, c):
        return TRUE

    def false(self, c):
        return FALSE

    def null(self, c):
        return NULL

    def values(self, c):
        if len(c) > MAX_LIST:
            raise FilterError(f"a list has {len(c)} elements; at most {MAX_LIST} are allowed")
        return Value("list", tuple(c))


def _flatten(cls: type, items: Iterable[Node]) -> tuple[Node, ...]:
    out: list[Node] = []
    for it in items:
        if type(it) is cls:
            out.extend(it.items)  # type: ignore[union-attr]
        else:
            out.append(it)
    return tuple(out)


_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", transformer=_ToAst(), propagate_positions=False)

# ---------------------------------------------------------------------------------------------------------
# Dates

_UTC = timezone.utc

_UNQUOTED_DATE = re.compile(
    r"([0-9]+)-([0-9]+)(?:-([0-9]+))?(?:T([0-9]+):([0-9]+):([0-9]+)(?:\.([0-9]+))?(Z|[+-][0-9]+:[0-9]+))?"
)
# ISO dates as Elasticsearch's strict_date_optional_time reads them; no zone means UTC
_ISO_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_DATE_MATH = re.compile(r"(?:now|(.+?)\|\|)((?:[+-][0-9]{1,9}[yMwdhHms])*)(?:/([yMwdhHms]))?")
_MATH_OP = re.compile(r"([+-])([0-9]+)([yMwdhHms])")


def format_timestamp(dt: datetime) -> str:
    """``dt`` in the canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, milliseconds truncated)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(_UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond // 1000:03d}Z"
    )


def _offset(zone: str | None) -> timezone:
    if zone is None or zone == "Z":
        return _UTC
    body = zone[1:]
    if ":" in body:
        h, m = body.split(":")
    elif len(body) == 4:
        h, m = body[:2], body[2:]
    else:
        h, m = body, "0"
    hours, minutes = int(h), int(m)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if zone[0] == "-" else delta)


def _build(y, mo, d, h, mi, s, frac, zone) -> datetime:
    micro = int((frac or "0")[:6].ljust(6, "0"))
    return datetime(
        int(y), int(mo), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), micro, tzinfo=_offset(zone)
    ).astimezone(_UTC)


def _unquoted_date(tok: Token) -> str:
    m = _UNQUOTED_DATE.fullmatch(tok)
    try:
        if m is None:
            raise ValueError
        return format_timestamp(_build(*m.groups()))
    except (ValueError, OverflowError):
        raise FilterError(f"invalid date {_excerpt(str(tok))}{_at(tok)}") from None


def _iso(text: str) -> datetime | None:
    m = _ISO_DATE.fullmatch(text)
    if m is None:
        return None
    try:
        return _build(*m.groups())
    except (ValueError, OverflowError):
        return None


def _temporal(text: str, attr: Token) -> Value:
    """A quoted string used with a relational operator: a date, date math, or (else) the string itself."""
    dt = _iso(text)
    if dt is not None:
        return Value("date", format_timestamp(dt))
    m = _DATE_MATH.fullmatch(text)
    if m is not None and (m.group(1) is None or _iso(m.group(1)) is not None):
        resolve_date_math(text, ">=")  # out-of-range math fails now rather than when compiled
        return Value("datemath", text)
    return Value("string", text)


def _add(dt: datetime, n: int, unit: str) -> datetime:
    if unit == "y":
        n, unit = n * 12, "M"
    if unit == "M":
        y, m0 = divmod(dt.month - 1 + n, 12)
        y += dt.year
        if not 1 <= y <= 9999:
            raise OverflowError
        day = min(dt.day, calendar.monthrange(y, m0 + 1)[1])
        return dt.replace(year=y, month=m0 + 1, day=day)
    step = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "H": timedelta(hours=1),
            "m": timedelta(minutes=1), "s": timedelta(seconds=1)}[unit]
    return dt + n * step


def _floor(dt: datetime, unit: str) -> datetime:
    dt = dt.replace(microsecond=0)
    if unit == "s":
        return dt
    dt = dt.replace(second=0)
    if unit == "m":
        return dt
    dt = dt.replace(minute=0)
    if unit in "hH":
        return dt
    dt = dt.replace(hour=0)
    if unit == "d":
        return dt
    if unit == "w":
        return dt - timedelta(days=dt.weekday())  # ISO weeks start on Monday, as in Elasticsearch
    dt = dt.replace(day=1)
    if unit == "M":
        return dt
    return dt.replace(month=1)


def resolve_date_math(expr: str, op: str, now: datetime | None = None) -> str:
    """The canonical timestamp that Elasticsearch date math ``expr`` means as the bound of relational ``op``.

    ``expr`` is ``now`` or ``<ISO date>||``, then ``[+-]<n><unit>`` steps, then an optional ``/<unit>`` rounding;
    units ``y M w d h H m s``. ``now`` defaults to the current time (naive means UTC). Rounding follows Elasticsearch: ``gt`` and ``lte`` round up to the last
    millisecond of the unit, ``gte`` rounds down to its first, ``lt`` to the millisecond before its first.
    """
    m = _DATE_MATH.fullmatch(expr)
    if m is None:
        raise FilterError(f"invalid date math {_excerpt(expr)}")
    anchor, steps, rounding = m.groups()
    try:
        if anchor is None:
            dt = datetime.now(_UTC) if now is None else now
            dt = dt.replace(tzinfo=_UTC) if dt.tzinfo is None else dt.astimezone(_UTC)
        else:
            base = _iso(anchor)
            if base is None:
                raise FilterError(f"invalid date {_excerpt(anchor)} in date math")
            dt = base
        dt = dt.replace(microsecond=dt.microsecond // 1000 * 1000)
        for sign, n, unit in _MATH_OP.findall(steps):
            dt = _add(dt, int(n) if sign == "+" else -int(n), unit)
        if rounding:
            lo = _floor(dt, rounding)
            if op in (">", "<="):
                dt = _add(lo, 1, rounding) - timedelta(milliseconds=1)
            elif op == "<":
                dt = lo - timedelta(milliseconds=1)
            else:
                dt = lo
        if not 1 <= dt.year <= 9999:
            raise OverflowError
    except (OverflowError, ValueError):
        raise FilterError(f"date math {_excerpt(expr)} is out of range") from None
    return format_timestamp(dt)


# ---------------------------------------------------------------------------------------------------------
# Entry points

_NAMES = {
    "ATTR": "attribute name",
    "STRING": "quoted string",
    "INT": "integer",
    "DATE": "date",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "PREFIX": "'^='",
    "FULLTEXT": "'=='",
    "$END": "end of filter",
}


def _terminal_name(name: str) -> str:
    if name in _NAMES:
        return _NAMES[name]
    term = _TERMINALS.get(name)
    if term is not None and getattr(term.pattern, "type", "") == "str":
        return repr(term.pattern.value)
    return name.lower()


_TERMINALS = {t.name: t for t in _PARSER.terminals}


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _expected(names: Iterable[str]) -> str:
    shown = sorted({_terminal_name(n) for n in names})
    if not shown:
        return ""
    if len(shown) == 1:
        return f"; expected {shown[0]}"
    return f"; expected one of {', '.join(shown)}"


def _accepted(e: UnexpectedInput, fallback: Iterable[str]) -> Iterable[str]:
    """What the parser could really take at the error: LALR states are shared, so the lexer's set is too wide."""
    try:
        ip = e.interactive_parser  # type: ignore[attr-defined]
        if ip is not None:
            return ip.accepts()
    except Exception:  # pragma: no cover - only a nicer message is lost
        pass
    return fallback


def _describe(e: UnexpectedInput, text: str) -> str:
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream
        ch = text[pos] if pos < len(text) else ""
        if ch in "'\"":
            return f"unterminated string starting at position {pos}"
        return f"unexpected character {ch!r} at position {pos}{_expected(_accepted(e, e.allowed or ()))}"
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = _expected(_accepted(e, e.expected))
        if tok.type == "$END":
            return f"unexpected end of filter{expected}"
        pos = tok.start_pos or 0
        term = _TERMINALS.get(tok.type)
        if (term is not None and getattr(term.pattern, "type", "") == "str") or str(tok) in _KEYWORDS:
            what = repr(str(tok))
        else:
            what = f"{_terminal_name(tok.type)} {_excerpt(str(tok))}"
        hint = ""
        if tok.type == "ATTR" and str(tok).lower() in ("and", "or", "not"):
            hint = " (the keywords are lowercase 'and' and 'or'; there is no 'not')"
        elif _NOT_BEFORE.search(text, 0, pos):
            hint = " (there is no 'not' operator)"
        elif str(tok).startswith("T") and _DATE_BEFORE.search(text, 0, pos):
            hint = " (a date with a time needs a zone: Z or +hh:mm)"
        return f"unexpected {what} at position {pos}{expected}{hint}"
    return "syntax error"  # pragma: no cover - lark raises no other UnexpectedInput for LALR


_KEYWORDS = frozenset({"and", "or", "true", "false", "null"} | GEO_OPS)
_NOT_BEFORE = re.compile(r"(?<![A-Za-z0-9_@:/-])not[ \t\n\r\f\v]*\Z", re.IGNORECASE)
_DATE_BEFORE = re.compile(r"[0-9]+-[0-9]+(?:-[0-9]+)?\Z")


_PARENS = re.compile(r"""'[^'\\]*(?:\\[\s\S][^'\\]*)*'|"[^"\\]*(?:\\[\s\S][^"\\]*)*"|[()]""")


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise FilterError(f"a filter must be a string, not {type(text).__name__}")
    n = len(text)
    if n > MAX_LENGTH:
        raise FilterError(f"the filter is too long ({n} characters; at most {MAX_LENGTH} are allowed)")
    if "\x00" in text:
        raise FilterError(f"NUL character at position {text.index(chr(0))}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise FilterError(f"invalid character at position {e.start}") from None
    if not text.strip():
        raise FilterError("the filter is empty")
    if text.count("(") > MAX_DEPTH:
        depth = 0
        for m in _PARENS.finditer(text):
            tok = m.group()
            if tok == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    raise FilterError(
                        f"parentheses nested too deeply at position {m.start()} (at most {MAX_DEPTH} levels)"
                    )
            elif tok == ")":
                depth -= 1
    return text


def iter_comparisons(node: Node) -> Iterable[Comp]:
    """Every comparison in ``node``, left to right."""
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is Comp:
            yield n
        else:
            stack.extend(reversed(n.items))  # type: ignore[union-attr]


def _check_size(node: Node) -> Node:
    count = sum(1 for _ in iter_comparisons(node))
    if count > MAX_COMPARISONS:
        raise FilterError(f"the filter has {count} comparisons; at most {MAX_COMPARISONS} are allowed")
    return node


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> Node:
    try:
        node = _PARSER.parse(text)
    except FilterError:
        raise
    except UnexpectedInput as e:
        raise FilterError(_describe(e, text)) from None
    except LarkError as e:  # pragma: no cover - any other lark failure still is a bad filter
        raise FilterError(f"cannot parse the filter ({type(e).__name__})") from None
    return _check_size(node)


def parse(text: str) -> Node:
    """The AST of one CIMI filter. Raises ``FilterError``."""
    return _parse(_check_text(text))


def conjoin(nodes: Iterable[Node]) -> Node | None:
    """``nodes`` joined with ``and`` (nested ands flattened); ``None`` when there are none."""
    items = _flatten(And, nodes)
    if not items:
        return None
    return items[0] if len(items) == 1 else And(items)


def parse_all(texts: Iterable[str]) -> Node | None:
    """Repeated ``filter`` parameters, joined with ``and`` as Nuvla does; ``None`` when there are none.

    The limits apply to the whole: their total length and their total number of comparisons.
    """
    texts = list(texts)
    if not texts:
        return None
    total = sum(len(t) for t in texts if isinstance(t, str))
    if total > MAX_LENGTH:
        raise FilterError(f"the filters are too long ({total} characters; at most {MAX_LENGTH} are allowed)")
    node = conjoin(parse(t) for t in texts)
    assert node is not None
    return _check_size(node) if len(texts) > 1 else node
