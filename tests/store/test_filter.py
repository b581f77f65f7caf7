"""The CIMI filter parser: every construct of the grammar, and hostile input."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timezone

import pytest

from dockyard.core.errors import FilterError
from dockyard.store import filter as f
from dockyard.store.filter import And, Comp, Or, Value, parse, parse_all, resolve_date_math


def S(v: str) -> Value:
    return Value("string", v)


def I(v: int) -> Value:  # noqa: E743
    return Value("int", v)


def D(v: str) -> Value:
    return Value("date", v)


def M(v: str) -> Value:
    return Value("datemath", v)


def L(*vs: Value) -> Value:
    return Value("list", tuple(vs))


T = Value("bool", True)
F = Value("bool", False)
N = Value("null", None)


def c(attr: str, op: str, value: Value) -> Comp:
    return Comp(tuple(attr.split("/")), op, value)


A1 = c("a", "=", I(1))
B2 = c("b", "=", I(2))
C3 = c("c", "=", I(3))

CASES = [
    # -- each operator ------------------------------------------------------------------------------------
    ("a='x'", c("a", "=", S("x"))),
    ("a!='x'", c("a", "!=", S("x"))),
    ("a<5", c("a", "<", I(5))),
    ("a<=5", c("a", "<=", I(5))),
    ("a>5", c("a", ">", I(5))),
    ("a>=5", c("a", ">=", I(5))),
    ("a^='pre'", c("a", "^=", S("pre"))),
    ("a=='some words'", c("a", "==", S("some words"))),
    ("loc intersects 'POINT(1 2)'", c("loc", "intersects", S("POINT(1 2)"))),
    ("loc disjoint 'POINT(1 2)'", c("loc", "disjoint", S("POINT(1 2)"))),
    ("loc within 'POLYGON((0 0, 1 1, 1 0, 0 0))'", c("loc", "within", S("POLYGON((0 0, 1 1, 1 0, 0 0))"))),
    ("loc contains 'POINT(1 2)'", c("loc", "contains", S("POINT(1 2)"))),
    ("a<'m'", c("a", "<", S("m"))),
    ("a>='m'", c("a", ">=", S("m"))),
    # -- values -------------------------------------------------------------------------------------------
    ('a="x"', c("a", "=", S("x"))),
    ("a=''", c("a", "=", S(""))),
    ('a=""', c("a", "=", S(""))),
    ("a='it\\'s'", c("a", "=", S("it's"))),
    ('a="say \\"hi\\""', c("a", "=", S('say "hi"'))),
    ("a='back\\\\slash'", c("a", "=", S("back\\slash"))),
    ("a='C:\\temp'", c("a", "=", S("C:\\temp"))),  # unknown escapes are kept as written
    ('a="it\'s"', c("a", "=", S("it's"))),
    ("a='say \"hi\"'", c("a", "=", S('say "hi"'))),
    ("a='(not) and or [x] = != ^= =='", c("a", "=", S("(not) and or [x] = != ^= =="))),
    ("a='line\nbreak'", c("a", "=", S("line\nbreak"))),
    ("a='é ü 中文 🚀'", c("a", "=", S("é ü 中文 🚀"))),
    ("a='; DROP TABLE resources; --'", c("a", "=", S("; DROP TABLE resources; --"))),
    ("a='\\'; DROP TABLE resources; --'", c("a", "=", S("'; DROP TABLE resources; --"))),
    ("a='%_\\\\'", c("a", "=", S("%_\\"))),
    ("a=0", c("a", "=", I(0))),
    ("a=007", c("a", "=", I(7))),
    ("a=9223372036854775807", c("a", "=", I(2**63 - 1))),
    ("a=true", c("a", "=", T)),
    ("a=false", c("a", "=", F)),
    ("a!=true", c("a", "!=", T)),
    ("a=null", c("a", "=", N)),
    ("a!=null", c("a", "!=", N)),
    # lists: commas optional, any ordinal values, empty allowed
    ("a=['x','y']", c("a", "=", L(S("x"), S("y")))),
    ("a=['x' 'y']", c("a", "=", L(S("x"), S("y")))),
    ("a=['x''y']", c("a", "=", L(S("x"), S("y")))),
    ("a=[ 'x' , 'y' ]", c("a", "=", L(S("x"), S("y")))),
    ("a=[1,2 3]", c("a", "=", L(I(1), I(2), I(3)))),
    ("a=['x', 1, 2019-01-02]", c("a", "=", L(S("x"), I(1), D("2019-01-02T00:00:00.000Z")))),
    ("a=[]", c("a", "=", L())),
    ("a=['only']", c("a", "=", L(S("only")))),
    ("a!=['x','y']", c("a", "!=", L(S("x"), S("y")))),
    # -- unquoted dates: always normalised to UTC milliseconds --------------------------------------------
    ("a=2019-01-02", c("a", "=", D("2019-01-02T00:00:00.000Z"))),
    ("a>2019-01", c("a", ">", D("2019-01-01T00:00:00.000Z"))),
    ("a>2019-1-2", c("a", ">", D("2019-01-02T00:00:00.000Z"))),
    ("a>2019-01-02T03:04:05Z", c("a", ">", D("2019-01-02T03:04:05.000Z"))),
    ("a>2019-01-02T03:04:05.7Z", c("a", ">", D("2019-01-02T03:04:05.700Z"))),
    ("a>2019-01-02T03:04:05.123Z", c("a", ">", D("2019-01-02T03:04:05.123Z"))),
    ("a>2019-01-02T03:04:05.123999Z", c("a", ">", D("2019-01-02T03:04:05.123Z"))),
    ("a>2019-01-02T03:04:05+02:00", c("a", ">", D("2019-01-02T01:04:05.000Z"))),
    ("a>2019-01-01T01:00:00+02:30", c("a", ">", D("2018-12-31T22:30:00.000Z"))),
    ("a>2019-12-31T23:00:00-01:00", c("a", ">", D("2020-01-01T00:00:00.000Z"))),
    ("a<=2020-02-29", c("a", "<=", D("2020-02-29T00:00:00.000Z"))),
    # -- quoted dates: normalised with relational operators only ----------------------------------------
    ("a>'2019-01-02'", c("a", ">", D("2019-01-02T00:00:00.000Z"))),
    ("a>'2019-01-02T03:04'", c("a", ">", D("2019-01-02T03:04:00.000Z"))),
    ("a>'2019-01-02T03:04:05'", c("a", ">", D("2019-01-02T03:04:05.000Z"))),
    ("a>'2019-01-02T03:04:05Z'", c("a", ">", D("2019-01-02T03:04:05.000Z"))),
    ("a<'2019-01-02T03:04:05.5+01:00'", c("a", "<", D("2019-01-02T02:04:05.500Z"))),
    ("a<'2019-01-02T03:04:05+0100'", c("a", "<", D("2019-01-02T02:04:05.000Z"))),
    ("a<'2019-01-02T03:04:05-05'", c("a", "<", D("2019-01-02T08:04:05.000Z"))),
    ('a>="2019-01-02T03:04:05.123456789Z"', c("a", ">=", D("2019-01-02T03:04:05.123Z"))),
    ("a='2019-01-02'", c("a", "=", S("2019-01-02"))),  # '=' compares the string as written
    ("a^='2019-01-02'", c("a", "^=", S("2019-01-02"))),
    ("a>'2019-1-2'", c("a", ">", S("2019-1-2"))),  # not ISO: a plain string
    ("a>'2019-02-30'", c("a", ">", S("2019-02-30"))),  # not a real date: a plain string
    ("a>'v1.2.3'", c("a", ">", S("v1.2.3"))),
    # -- date math (relational operators, quoted) ---------------------------------------------------------
    ("a>'now'", c("a", ">", M("now"))),
    ("a>'now-1d'", c("a", ">", M("now-1d"))),
    ("a<'now+2h'", c("a", "<", M("now+2h"))),
    ("a>='now-1y+2M-3w+4d-5h+6m-7s'", c("a", ">=", M("now-1y+2M-3w+4d-5h+6m-7s"))),
    ("a>'now/d'", c("a", ">", M("now/d"))),
    ("a>'now-1d/M'", c("a", ">", M("now-1d/M"))),
    ("a>'2019-01-01||+1M'", c("a", ">", M("2019-01-01||+1M"))),
    ("a>'2019-01-01T10:00:00Z||-1d/d'", c("a", ">", M("2019-01-01T10:00:00Z||-1d/d"))),
    ("a='now-1d'", c("a", "=", S("now-1d"))),  # only relational operators read date math
    ("a>'nowhere'", c("a", ">", S("nowhere"))),
    ("a>'now-1x'", c("a", ">", S("now-1x"))),
    # -- attribute names ---------------------------------------------------------------------------------
    ("a/b/c='x'", c("a/b/c", "=", S("x"))),
    ("acl/owners='user/x'", c("acl/owners", "=", S("user/x"))),
    ("data:bucket='x'", Comp(("data:bucket",), "=", S("x"))),
    ("schema-org:a/ns:b='x'", Comp(("schema-org:a", "ns:b"), "=", S("x"))),
    ("x='1'", c("x", "=", S("1"))),
    ("X='1'", c("X", "=", S("1"))),
    ("a1='1'", c("a1", "=", S("1"))),
    ("a_b='1'", c("a_b", "=", S("1"))),
    ("a-b-c='1'", c("a-b-c", "=", S("1"))),
    ("a--b='1'", c("a--b", "=", S("1"))),
    ("@id='1'", c("@id", "=", S("1"))),
    ("resource-type='x'", c("resource-type", "=", S("x"))),
    ("module/content/environmental-variables/name='X'", c("module/content/environmental-variables/name", "=", S("X"))),
    # names that start with, or are, keywords
    ("android='1'", c("android", "=", S("1"))),
    ("order=1", c("order", "=", I(1))),
    ("nullable=null", c("nullable", "=", N)),
    ("true-value=true", c("true-value", "=", T)),
    ("falsey=false", c("falsey", "=", F)),
    ("contains='1'", c("contains", "=", S("1"))),
    ("within/intersects='1'", c("within/intersects", "=", S("1"))),
    ("not='1'", c("not", "=", S("1"))),
    ("AND='1'", c("AND", "=", S("1"))),
    # -- reversed forms ----------------------------------------------------------------------------------
    ("'x'=a", c("a", "=", S("x"))),
    ("'x'!=a", c("a", "!=", S("x"))),
    ("5=a", c("a", "=", I(5))),
    ("true=a", c("a", "=", T)),
    ("null=a", c("a", "=", N)),
    ("null!=a", c("a", "!=", N)),
    ("['x','y']=a", c("a", "=", L(S("x"), S("y")))),
    ("[]!=a", c("a", "!=", L())),
    ("2019-01-02=a", c("a", "=", D("2019-01-02T00:00:00.000Z"))),
    # relational operators are flipped: `5<a` reads `a>5` (the real Nuvla does not flip)
    ("5<a", c("a", ">", I(5))),
    ("5<=a", c("a", ">=", I(5))),
    ("5>a", c("a", "<", I(5))),
    ("5>=a", c("a", "<=", I(5))),
    ("2019-01-02<a", c("a", ">", D("2019-01-02T00:00:00.000Z"))),
    ("'2019-01-02T00:00:00+01:00'<=a", c("a", ">=", D("2019-01-01T23:00:00.000Z"))),
    ("'now-1d'<a", c("a", ">", M("now-1d"))),
    ("'m'>a", c("a", "<", S("m"))),
    ("'pre'^=a", c("a", "^=", S("pre"))),
    ("'w1 w2'==a/b", c("a/b", "==", S("w1 w2"))),
    # -- precedence and grouping ------------------------------------------------------------------------
    ("a=1 and b=2", And((A1, B2))),
    ("a=1 or b=2", Or((A1, B2))),
    ("a=1 and b=2 and c=3", And((A1, B2, C3))),
    ("a=1 or b=2 or c=3", Or((A1, B2, C3))),
    ("a=1 or b=2 and c=3", Or((A1, And((B2, C3))))),
    ("a=1 and b=2 or c=3", Or((And((A1, B2)), C3))),
    ("(a=1 or b=2) and c=3", And((Or((A1, B2)), C3))),
    ("a=1 and (b=2 or c=3)", And((A1, Or((B2, C3))))),
    ("(a=1 and b=2) and c=3", And((A1, B2, C3))),  # nested ands flatten
    ("a=1 or (b=2 or c=3)", Or((A1, B2, C3))),
    ("(a=1)", A1),
    ("((((a=1))))", A1),
    ("((a=1) or (b=2)) and ((c=3))", And((Or((A1, B2)), C3))),
    ("(a=1 and (b=2 or (c=3 and a=1)))", And((A1, Or((B2, And((C3, A1))))))),
    # -- whitespace --------------------------------------------------------------------------------------
    ("  a='x'  ", c("a", "=", S("x"))),
    ("a = 'x'", c("a", "=", S("x"))),
    ("a\t=\n'x'\r\n", c("a", "=", S("x"))),
    ("a='x'and b='y'", And((c("a", "=", S("x")), c("b", "=", S("y"))))),
    ("(a=1)or(b=2)", Or((A1, B2))),
    ("( a=1 )and( b=2 )", And((A1, B2))),
    ("a=1and b=2", And((A1, B2))),
    ("a <= 5", c("a", "<=", I(5))),
    ("a ^= 'p'", c("a", "^=", S("p"))),
    ("a == 'p'", c("a", "==", S("p"))),
    ("a\tcontains\t'POINT(0 0)'", c("a", "contains", S("POINT(0 0)"))),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[t for t, _ in CASES])
def test_parse(text, expected):
    assert parse(text) == expected


def test_ast_is_immutable_and_hashable():
    node = parse("a=1 and (b=['x'] or c=null)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.items = ()  # type: ignore[misc]
    assert hash(node) == hash(parse("a=1 and (b=['x'] or c=null)"))
    assert parse("acl/owners='x'").attr == "acl/owners"


# -- errors ------------------------------------------------------------------------------------------------

ERRORS = [
    # (text, a fragment of the message)
    ("", "empty"),
    ("   \t\n", "empty"),
    ("a", "unexpected end of filter"),
    ("a=", "unexpected end of filter"),
    ("='x'", "unexpected '='"),
    ("a='x", "unterminated string starting at position 2"),
    ('a="x', "unterminated string starting at position 2"),
    ("a='x''", "unterminated string starting at position 5"),
    ("a='x\\'", "unterminated string"),
    ("'; DROP TABLE resources; --", "unterminated string starting at position 0"),
    ("a='x'; DROP TABLE resources; --", "unexpected character ';' at position 5"),
    ("a='x' or 1=1", "unexpected integer '1' at position 11"),
    ("a='x' or ''=''", "unexpected quoted string"),
    ("a=1 --", "unexpected character '-' at position 4"),
    ("a=1 /* c */", "unexpected character '/'"),
    ("(a=1", "expected ')'"),
    ("a=1)", "unexpected ')' at position 3"),
    ("((a=1)", "expected ')'"),
    ("()", "unexpected ')'"),
    ("a=1 and", "unexpected end of filter"),
    ("and a=1", "unexpected attribute name 'a' at position 4"),  # 'and' here is an attribute name
    ("a=1 or or b=2", "position 10"),
    ("a=1 b=2", "unexpected attribute name 'b' at position 4"),
    ("a=1 AND b=2", "lowercase"),
    ("a=1 OR b=2", "lowercase"),
    ("not a=1", "no 'not'"),
    ("a=1 and not b=2", "no 'not'"),
    ("a!=1 and !b=2", "unexpected character '!' at position 9"),
    ("a=1 && b=2", "unexpected character '&'"),
    ("a=1 || b=2", "unexpected character '|'"),
    ("a=-1", "unexpected character '-'"),
    ("a=1.5", "unexpected character '.'"),
    ("a=1e3", "unexpected attribute name 'e3'"),
    ("a=b", "unexpected attribute name 'b'"),
    ("'x'='y'", "unexpected quoted string"),
    ("1=1", "unexpected integer"),
    ("a<true", "unexpected 'true' at position 2"),
    ("a>null", "unexpected 'null'"),
    ("a<['x']", "unexpected '['"),
    ("a^=1", "unexpected integer"),
    ("a^=null", "unexpected 'null'"),
    ("a=='x'==b", "unexpected '=='"),
    ("a==1", "expected quoted string"),
    ("a intersects 1", "expected quoted string"),
    ("5^=a", "unexpected '^='"),
    ("a=[true]", "unexpected 'true'"),
    ("a=[null]", "unexpected 'null'"),
    ("a=[[1]]", "unexpected '['"),
    ("a=[1,]", "unexpected ']'"),
    ("a=[,1]", "unexpected ','"),
    ("a=[1,,2]", "unexpected ','"),
    ("a=[1", "unexpected end of filter"),
    ("a=1]", "unexpected ']'"),
    ("a<[1]", "unexpected '['"),
    ("a=True", "unexpected attribute name 'True'"),
    ("a=NULL", "unexpected attribute name 'NULL'"),
    ("a=99999999999999999999", "out of range"),
    ("a=9223372036854775808", "out of range"),
    ("a/=1", "unexpected character '/'"),
    ("a//b=1", "unexpected character '/'"),
    ("/a=1", "unexpected character '/'"),
    ("a/ b=1", "unexpected character '/'"),
    ("a:b:c=1", "unexpected character ':'"),
    ("a:=1", "unexpected character ':'"),
    ("a-=1", "unexpected character '-'"),
    ("-a=1", "unexpected character '-'"),
    ("_a=1", "unexpected character '_'"),
    ("1a=1", "unexpected attribute name 'a'"),
    ("@=1", "unexpected character '@'"),
    ("a.b=1", "unexpected character '.'"),
    ("a b=1", "unexpected attribute name 'b'"),
    ("a = = 1", "unexpected '='"),
    ("a=<1", "unexpected '<'"),
    ("a=>1", "unexpected '>'"),
    ("a=~'x'", "unexpected character '~'"),
    ("a LIKE 'x'", "unexpected attribute name 'LIKE'"),
    ("a in ['x']", "unexpected attribute name 'in'"),
    ("é='x'", "unexpected character 'é' at position 0"),
    ("aé='x'", "unexpected character 'é' at position 1"),
    ("a='x'\u00a0and b='y'", "unexpected character '\\xa0' at position 5"),
    ("a=１", "unexpected character '１'"),
    ("a=٣", "unexpected character '٣'"),
    ("a='x\x00'", "NUL character at position 4"),
    ("a=1\x00", "NUL character at position 3"),
    ("\x00", "NUL character at position 0"),
    ("a='\ud800'", "invalid character at position 3"),
    # dates
    ("a=2019-13-01", "invalid date '2019-13-01' at position 2"),
    ("a=2019-02-30", "invalid date"),
    ("a=2019-00-10", "invalid date"),
    ("a=0-01-01", "invalid date"),
    ("a=99999-01-01", "invalid date"),
    ("a=2019-01-01T25:00:00Z", "invalid date"),
    ("a=2019-01-01T10:00:00+24:00", "invalid date"),
    ("a=0001-01-01T00:00:00+01:00", "invalid date"),
    ("a=2019-01-01T10:00:00", "needs a zone"),
    ("a=2019-01-01T10:00Z", "unexpected"),
    ("a>'now+9999999y'", "out of range"),
    ("a>'0001-01-01||-1d'", "out of range"),
    ("a>'now-999999999d'", "out of range"),
    # geo takes no reversed form
    ("'POINT(1 2)' intersects a", "unexpected 'intersects'"),
]


@pytest.mark.parametrize(("text", "fragment"), ERRORS, ids=[repr(t)[:60] for t, _ in ERRORS])
def test_parse_errors(text, fragment):
    with pytest.raises(FilterError) as info:
        parse(text)
    err = info.value
    assert err.status == 400
    assert err.message.startswith("Invalid CIMI filter. ")
    assert fragment in err.message, err.message


def test_error_messages_are_bounded():
    # a huge unexpected token is quoted shortened, not echoed whole
    text = "a=1 " + "b" * 10_000
    with pytest.raises(FilterError) as info:
        parse(text)
    assert len(info.value.message) < 400


@pytest.mark.parametrize("bad", [None, 1, b"a=1", ["a=1"]])
def test_non_strings_are_filter_errors(bad):
    with pytest.raises(FilterError, match="must be a string"):
        parse(bad)


# -- limits ------------------------------------------------------------------------------------------------


def test_length_limit():
    at_limit = "a='" + "x" * (f.MAX_LENGTH - 4) + "'"
    assert len(at_limit) == f.MAX_LENGTH
    assert parse(at_limit) == c("a", "=", S("x" * (f.MAX_LENGTH - 4)))
    with pytest.raises(FilterError, match="too long"):
        parse("a='" + "x" * f.MAX_LENGTH + "'")
    with pytest.raises(FilterError, match="too long"):
        parse(" " * (f.MAX_LENGTH + 1))
    # a huge unterminated string is rejected fast and cleanly
    with pytest.raises(FilterError, match="unterminated string"):
        parse("a='" + "\\x" * (f.MAX_LENGTH // 2 - 2))


def test_depth_limit():
    ok = "(" * f.MAX_DEPTH + "a=1" + ")" * f.MAX_DEPTH
    assert parse(ok) == A1
    with pytest.raises(FilterError, match="nested too deeply"):
        parse("(" * (f.MAX_DEPTH + 1) + "a=1" + ")" * (f.MAX_DEPTH + 1))
    with pytest.raises(FilterError, match="nested too deeply"):
        parse("(" * 10_000)
    # alternating and/or nesting: depth counts parentheses, however they are spread out
    deep = "a=1"
    for i in range(f.MAX_DEPTH + 1):
        deep = f"(b=2 {'and' if i % 2 else 'or'} {deep})"
    with pytest.raises(FilterError, match="nested too deeply"):
        parse(deep)
    # parentheses inside strings do not count
    assert parse("a='" + "(" * 100 + "'") == c("a", "=", S("(" * 100))
    assert parse('a="' + "(" * 100 + '\\"" and b=2') == And((c("a", "=", S("(" * 100 + '"')), B2))


def test_comparison_limit():
    ok = " or ".join(["a=1"] * f.MAX_COMPARISONS)
    assert len(parse(ok).items) == f.MAX_COMPARISONS
    with pytest.raises(FilterError, match="501 comparisons"):
        parse(" or ".join(["a=1"] * (f.MAX_COMPARISONS + 1)))
    with pytest.raises(FilterError, match="comparisons"):
        parse(" and ".join(["(a=1 or b=2)"] * 300))


def test_list_limit():
    ok = "a=[" + ",".join(["1"] * f.MAX_LIST) + "]"
    assert len(parse(ok).value.v) == f.MAX_LIST
    with pytest.raises(FilterError, match="1001 elements"):
        parse("a=[" + " ".join(["1"] * (f.MAX_LIST + 1)) + "]")


# -- parse_all ---------------------------------------------------------------------------------------------


def test_parse_all():
    assert parse_all([]) is None
    assert parse_all(["a=1"]) == A1
    assert parse_all(["a=1", "b=2 or c=3"]) == And((A1, Or((B2, C3))))
    assert parse_all(["a=1 and b=2", "c=3"]) == And((A1, B2, C3))
    assert parse_all(iter(["a=1 or b=2", "c=3"])) == And((Or((A1, B2)), C3))


def test_parse_all_errors():
    with pytest.raises(FilterError, match="unexpected end of filter"):
        parse_all(["a=1", "b="])
    with pytest.raises(FilterError, match="empty"):
        parse_all(["a=1", ""])
    half = "a='" + "x" * (f.MAX_LENGTH // 2) + "'"
    with pytest.raises(FilterError, match="too long"):
        parse_all([half, half])
    three_hundred = " or ".join(["a=1"] * 300)
    with pytest.raises(FilterError, match="600 comparisons"):
        parse_all([three_hundred, three_hundred])


def test_conjoin():
    assert f.conjoin([]) is None
    assert f.conjoin([A1]) == A1
    assert f.conjoin([And((A1, B2)), C3]) == And((A1, B2, C3))


# -- date math ---------------------------------------------------------------------------------------------

NOW = datetime(2024, 3, 31, 10, 20, 30, 456789, tzinfo=timezone.utc)  # a Sunday

DATE_MATH = [
    ("now", ">", "2024-03-31T10:20:30.456Z"),
    ("now-1d", ">", "2024-03-30T10:20:30.456Z"),
    ("now+2h", "<", "2024-03-31T12:20:30.456Z"),
    ("now+2H", "<", "2024-03-31T12:20:30.456Z"),
    ("now-30m", "<", "2024-03-31T09:50:30.456Z"),
    ("now-31s", "<", "2024-03-31T10:19:59.456Z"),
    ("now-2w", "<", "2024-03-17T10:20:30.456Z"),
    ("now-1M", "<", "2024-02-29T10:20:30.456Z"),  # clamped to the month's last day
    ("now-13M", "<", "2023-02-28T10:20:30.456Z"),
    ("now+1y", "<", "2025-03-31T10:20:30.456Z"),
    ("now-1d+12h", "<", "2024-03-30T22:20:30.456Z"),
    # rounding as Elasticsearch: gte down, gt/lte up to the last ms, lt to the ms before the start
    ("now/d", ">=", "2024-03-31T00:00:00.000Z"),
    ("now/d", ">", "2024-03-31T23:59:59.999Z"),
    ("now/d", "<=", "2024-03-31T23:59:59.999Z"),
    ("now/d", "<", "2024-03-30T23:59:59.999Z"),
    ("now-1d/d", ">=", "2024-03-30T00:00:00.000Z"),
    ("now/M", ">=", "2024-03-01T00:00:00.000Z"),
    ("now/M", "<=", "2024-03-31T23:59:59.999Z"),
    ("now/y", ">=", "2024-01-01T00:00:00.000Z"),
    ("now/y", ">", "2024-12-31T23:59:59.999Z"),
    ("now/w", ">=", "2024-03-25T00:00:00.000Z"),  # weeks start on Monday
    ("now/h", ">=", "2024-03-31T10:00:00.000Z"),
    ("now/m", ">=", "2024-03-31T10:20:00.000Z"),
    ("now/s", ">=", "2024-03-31T10:20:30.000Z"),
    ("2019-01-31||+1M", ">", "2019-02-28T00:00:00.000Z"),
    ("2019-01-31T10:00:00+02:00||-1h", ">", "2019-01-31T07:00:00.000Z"),
    ("2019-01-15||/M", "<", "2018-12-31T23:59:59.999Z"),
]


@pytest.mark.parametrize(("expr", "op", "expected"), DATE_MATH, ids=[f"{e} {o}" for e, o, _ in DATE_MATH])
def test_resolve_date_math(expr, op, expected):
    assert resolve_date_math(expr, op, NOW) == expected


def test_resolve_date_math_naive_now_is_utc():
    assert resolve_date_math("now", ">", datetime(2024, 1, 1, 12)) == "2024-01-01T12:00:00.000Z"


@pytest.mark.parametrize("expr", ["now-", "now-1", "now-1x", "yesterday", "now/dd", "bad||+1d", "now+1d/"])
def test_resolve_date_math_errors(expr):
    with pytest.raises(FilterError):
        resolve_date_math(expr, ">", NOW)


def test_format_timestamp():
    assert f.format_timestamp(datetime(2019, 1, 2, 3, 4, 5, 678999, tzinfo=timezone.utc)) == "2019-01-02T03:04:05.678Z"
    assert f.format_timestamp(datetime(5, 1, 2, tzinfo=timezone.utc)) == "0005-01-02T00:00:00.000Z"


# -- fuzz: whatever the input, a Node or a FilterError ---------------------------------------------------

_ALPHABET = list("ab/:-_@019TZ.+ =!<>^'\"()[],\\\t\n;%*é\x00") + [
    "and", "or", "not", "null", "true", "false", "within", "2019-01-01", "'x'", "now-1d", "\ud800",
]
_SEEDS = ["a='x' and (b=1 or c!=null)", "a>2019-01-01T00:00:00Z", "x=['a' 'b']", "'p'^=a/b", "n:s=='w*'"]


def test_fuzz_never_raises_anything_but_filter_error():
    rng = random.Random(20240531)
    outcomes = {"ok": 0, "error": 0}
    for i in range(3000):
        if i % 2:
            text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 30)))
        else:  # mutate a valid filter
            chars = list(rng.choice(_SEEDS))
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(chars) + 1)
                action = rng.random()
                if action < 0.4 and chars:
                    del chars[min(pos, len(chars) - 1)]
                elif action < 0.8:
                    chars.insert(pos, rng.choice(_ALPHABET))
                else:
                    chars[pos:pos] = chars[: rng.randint(0, len(chars))]
            text = "".join(chars)
        try:
            node = parse(text)
        except FilterError as e:
            assert e.message.startswith("Invalid CIMI filter. ")
            outcomes["error"] += 1
        else:
            assert isinstance(node, (And, Or, Comp))
            outcomes["ok"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 50, outcomes
