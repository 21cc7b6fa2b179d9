"""Unit tests of the value model (nslang.values): display strings, coercions, equality, ``+``,
comparisons, division and modulo, and Python interop."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from nslang import values as V  # noqa: N812
from nslang.errors import NSRuntimeError
from nslang.values import ErrorValue, EventValue, Fuzzy, ProcedureRef, ToolRef


def code_of(fn, *args) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(NSRuntimeError) as info:
        fn(*args)
    return info.value.code


# ---- display (spec §6.3) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (5, "5"),
        (13.0, "13"),
        (3.5, "3.5"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (1e16, "10000000000000000"),
        (-0.0, "-0"),
        (0.0, "0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (10**30, "1000000000000000000000000000000"),
        (-7, "-7"),
    ],
)
def test_display_numbers(value: float, shown: str) -> None:
    assert V.display(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("text", "text"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (None, ""),
        ([], "[]"),
        (["a", 1, True, [2], None], "[a, 1, true, [2], nil]"),
        ({}, "{}"),
        ({"k": "v", "n": None}, '{"k": v, "n": nil}'),
        ({"b": 1, "a": 2}, '{"b": 1, "a": 2}'),  # insertion order
        ({'q"': 1}, '{"q\\"": 1}'),
        ([{"a": [1.5]}], '[{"a": [1.5]}]'),
        (ErrorValue(code=1, message="boom"), "error: boom"),
        (EventValue(name="tick", source="s", timestamp="t", payload=None), "event: tick"),
        (ProcedureRef("main"), "<function main>"),
        (ToolRef("LoadScript"), "<tool LoadScript>"),
        (Fuzzy(0.25), "0.25"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2024-01-02T03:04:05Z"),
    ],
)
def test_display_other_values(value: object, shown: str) -> None:
    assert V.display(value) == shown


def test_interpolation_display_shows_nil() -> None:
    assert V.interpolation_display(None) == "nil"
    assert V.interpolation_display("x") == "x"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "nil"),
        (True, "boolean"),
        (1, "number"),
        (1.5, "number"),
        ("s", "string"),
        ([], "list"),
        ({}, "map"),
        (ErrorValue(), "error"),
        (EventValue(), "event"),
        (Fuzzy(1), "fuzzy"),
        (ProcedureRef("f"), "function"),
        (ToolRef("t"), "tool"),
        (b"x", "bytes"),
        (dt.datetime.now(dt.timezone.utc), "timedate"),
        (object(), "unknown"),
    ],
)
def test_type_name(value: object, name: str) -> None:
    assert V.type_name(value) == name


# ---- truthiness (Part 1: per-type rule of upstream HEAD) ----------------------------------------


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        ("", False),
        ("x", True),
        ("false", True),
        ("0", True),
        (0, False),
        (0.0, False),
        (-1, True),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": 1}, True),
        (None, False),
        (True, True),
        (ErrorValue(code=1, message="m"), False),
        (EventValue(), True),
        (Fuzzy(0.6), True),
        (Fuzzy(0.5), False),
    ],
)
def test_truthiness(value: object, truthy: bool) -> None:
    assert bool(value) is truthy


# ---- coercions (§4.2) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1", 1),
        ("-12", -12),
        ("+3", 3),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("inf", math.inf),
        ("-Infinity", -math.inf),
        ("12345678901234567890", 12345678901234567890),
    ],
)
def test_string_number(text: str, number: float) -> None:
    assert V.string_number(text) == number


@pytest.mark.parametrize("text", ["", " 1", "1 ", "abc", "1a", "0x10", "1_000", "--1", "e5", "1e"])
def test_string_number_rejects(text: str) -> None:
    assert V.string_number(text) is None


def test_string_number_nan() -> None:
    n = V.string_number("NaN")
    assert isinstance(n, float) and math.isnan(n)


def test_integral_strings_are_exact_ints() -> None:
    assert type(V.string_number("42")) is int


@pytest.mark.parametrize(
    ("value", "number"), [(3, 3), (2.5, 2.5), ("7", 7), (True, 1), (False, 0), (Fuzzy(0.25), 0.25)]
)
def test_number_or_none(value: object, number: float) -> None:
    assert V.number_or_none(value) == number


@pytest.mark.parametrize("value", [None, [], {}, "x", ErrorValue()])
def test_number_or_none_fails(value: object) -> None:
    assert V.number_or_none(value) is None
    assert code_of(V.to_number, value) == 7


def test_to_int() -> None:
    assert V.to_int(4.0) == 4 and type(V.to_int(4.0)) is int
    assert V.to_int("6") == 6
    assert V.to_int(True) == 1
    assert code_of(V.to_int, 4.5) == 7
    assert code_of(V.to_int, "x") == 7


# ---- + (0.4.2 rule, with list+list / map+map type errors) ---------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "result"),
    [
        (2, 3, 5),
        (2, 0.5, 2.5),
        ("10", "5", 15),
        ("a", 1, "a1"),
        (1, "a", "1a"),
        (True, 1, 2),
        ("x", None, "x"),
        (None, None, ""),
        ("l=", [1, 2], "l=[1, 2]"),
        ([1], "x", "[1]x"),
        ("1e3", 1, 1001.0),
        ("a", "b", "ab"),
        (" 1", 1, " 11"),
        ({"k": 1}, "!", '{"k": 1}!'),
        (10**20, 1, 10**20 + 1),
    ],
)
def test_add(a: object, b: object, result: object) -> None:
    r = V.add(a, b)
    assert r == result and type(r) is type(result)


@pytest.mark.parametrize(("a", "b"), [([1], [2]), ({"a": 1}, {"b": 2}), ([], [])])
def test_add_collections_is_a_type_error(a: object, b: object) -> None:
    assert code_of(V.add, a, b) == 7


# ---- - * / % ** ------------------------------------------------------------------------------------


def test_sub_mul() -> None:
    assert V.sub(5, "3") == 2
    assert V.mul("4", "2") == 8
    assert V.mul(3, 1.1) == pytest.approx(3.3)
    assert code_of(V.sub, "a", 1) == 7
    assert code_of(V.mul, None, 1) == 7


@pytest.mark.parametrize(
    ("a", "b", "result"),
    [(10, 2, 5), (7, 2, 3.5), (-9, 2, -4.5), (1.5, 0.5, 3.0), (10, 4, 2.5), (1, 3, 1 / 3), (10**20, 10, 10**19)],
)
def test_div(a: float, b: float, result: float) -> None:
    r = V.div(a, b)
    assert r == result
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        assert type(r) is int  # exact division of ints stays an int


@pytest.mark.parametrize(("a", "b"), [(1, 0), (1.5, 0.0), ("3", "0"), (0, False)])
def test_div_by_zero_is_code_14(a: object, b: object) -> None:
    assert code_of(V.div, a, b) == 14


@pytest.mark.parametrize(("a", "b", "result"), [(17, 5, 2), (-7, 3, -1), (7, -3, 1), (-7, -3, -1), (6.0, 4, 2)])
def test_mod_truncates(a: float, b: float, result: int) -> None:
    assert V.mod(a, b) == result


def test_mod_errors() -> None:
    assert code_of(V.mod, 5, 0) == 14
    assert code_of(V.mod, 7.5, 2) == 7
    assert code_of(V.mod, 7, 2.5) == 7


def test_power() -> None:
    assert V.power(2, 10) == 1024 and type(V.power(2, 10)) is int
    assert V.power(2, -1) == 0.5
    assert V.power(0, 0) == 1
    assert V.power(4, 0.5) == 2.0
    assert math.isnan(V.power(-8, 1 / 3))
    assert V.power(2, 100) == 2**100
    assert V.power(10.0, 400) == math.inf


def test_negate_and_bitwise() -> None:
    assert V.negate("5") == -5
    assert V.negate(True) == -1
    assert code_of(V.negate, None) == 7
    assert V.bit_and(6, 3) == 2
    assert V.bit_or(6, 3) == 7
    assert V.bit_xor(6, 3) == 5
    assert V.bit_not(5) == -6
    assert V.bit_and("6", 3.0) == 2
    assert code_of(V.bit_and, None, 1) == 7
    assert code_of(V.bit_or, 1.5, 1) == 7


# ---- equality and ordering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "eq"),
    [
        (None, None, True),
        (None, 0, False),
        (None, "", False),
        (0, None, False),
        (1, 1.0, True),
        ("1", 1, True),
        ("1.0", "1", True),
        (True, 1, True),
        (False, 0, True),
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("a", 1, False),
        ([1, [2]], [1, [2]], True),
        ([1, 2], [2, 1], False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ([1], "[1]", False),
        (0.1 + 0.2, 0.3, False),
        (ErrorValue(code=1, message="m"), ErrorValue(code=1, message="m"), True),
        (True, "true", False),
        (math.nan, math.nan, False),
    ],
)
def test_equal(a: object, b: object, eq: bool) -> None:
    assert V.equal(a, b) is eq
    assert V.equal(b, a) is eq


@pytest.mark.parametrize(
    ("op", "a", "b", "result"),
    [
        ("<", 1, 2, True),
        ("<=", 2, 2, True),
        (">", 3, 4, False),
        (">=", 4, 5, False),
        (">", "10", 9, True),
        ("<", True, 3, True),
        (">", 2.5, 2, True),
        ("<", -1, "0", True),
    ],
)
def test_compare(op: str, a: object, b: object, result: bool) -> None:
    assert V.compare(op, a, b) is result


@pytest.mark.parametrize(("a", "b"), [("a", "b"), (None, 1), ([1], [2]), ({}, 1)])
def test_compare_type_errors(a: object, b: object) -> None:
    assert code_of(V.compare, "<", a, b) == 7


def test_compare_timedates() -> None:
    t1 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    t2 = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    assert V.compare("<", t1, t2) is True
    assert V.compare(">=", t1, t2) is False


# ---- Python interop ---------------------------------------------------------------------------------


def test_to_python() -> None:
    v = [1, "a", None, {"k": ErrorValue(code=1, message="m")}, Fuzzy(0.5), ProcedureRef("f")]
    assert V.to_python(v) == [1, "a", None, {"k": {"code": 1, "message": "m"}}, 0.5, "f"]
    assert type(V.to_python(v)[3]["k"]) is dict


def test_from_python() -> None:
    from decimal import Decimal

    assert V.from_python((1, 2)) == [1, 2]
    assert V.from_python({1: "a"}) == {"1": "a"}
    assert V.from_python({3}) == [3]
    assert V.from_python(Decimal("1.5")) == 1.5
    naive = V.from_python(dt.datetime(2024, 1, 1))
    assert naive.tzinfo is not None
    with pytest.raises(TypeError):
        V.from_python(object())


def test_fuzzy_is_clamped() -> None:
    assert Fuzzy(2).mu == 1.0 and Fuzzy(-1).mu == 0.0
