"""The ``math`` tools: exact integers, division by zero, rounding, randomness and bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nslang.errors import ErrorCode


@pytest.mark.parametrize("name,args,expected", [
    ("math.Add", [2, 3], 5),
    ("Add", [2**70, 1], 2**70 + 1),
    ("math.Add", [0.1, 0.2], 0.1 + 0.2),
    ("math.Add", ["2", "3.5"], 5.5),  # numeric strings are coerced (spec §8.3)
    ("Subtract", [10, 4], 6),
    ("Multiply", [3, 4], 12),
    ("Divide", [10, 5], 2),
    ("Divide", [7, 2], 3.5),
    ("Divide", [-9, 3], -3),
    ("Modulo", [17, 5], 2),
    ("Modulo", [-7, 3], -1),
    ("Modulo", [7.0, 3], 1),
    ("math.Abs", [-4.5], 4.5),
    ("math.Abs", [-3], 3),
    ("math.Min", [3, 1, 2], 1),
    ("math.Min", [[3, 1.5, 2]], 1.5),
    ("math.Max", [3, 1, 2], 3),
    ("math.Max", [[-1]], -1),
    ("math.Max", [5], 5),
    ("math.Round", [2.5], 3),
    ("math.Round", [-2.5], -3),
    ("math.Round", [2.675, 2], 2.68),
    ("math.Round", [1234, -2], 1200),
    ("math.Round", [7], 7),
    ("math.Floor", [-2.5], -3),
    ("math.Floor", [3], 3),
    ("math.Ceil", [2.1], 3),
    ("math.Sqrt", [16], 4),
    ("math.Sqrt", [2], math.sqrt(2)),
    ("math.Sqrt", [2.25], 1.5),
    ("math.Pow", [2, 10], 1024),
    ("math.Pow", [2, -1], 0.5),
    ("math.Pow", [4, 0.5], 2.0),
])
def test_math_tools(call: Any, name: str, args: list[Any], expected: Any) -> None:
    result = call(name, *args)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("name,args,code,arg", [
    ("Divide", [1, 0], ErrorCode.DIVISION_BY_ZERO, "num2"),
    ("Divide", [1, 0.0], ErrorCode.DIVISION_BY_ZERO, "num2"),
    ("Modulo", [1, 0], ErrorCode.DIVISION_BY_ZERO, "num2"),
    ("Modulo", [7.5, 2], ErrorCode.ARG_MISMATCH, "num1"),
    ("Add", ["x", 1], ErrorCode.ARG_MISMATCH, "num1"),
    ("Add", [True, 1], ErrorCode.ARG_MISMATCH, "num1"),
    ("Add", [1], ErrorCode.ARG_MISMATCH, "num2"),
    ("Add", [1, None], ErrorCode.ARG_MISMATCH, "num2"),
    ("math.Sqrt", [-1], ErrorCode.ARG_MISMATCH, "value"),
    ("math.Min", [[]], ErrorCode.ARG_MISMATCH, "values"),
    ("math.Min", [1, "a"], ErrorCode.ARG_MISMATCH, "values"),
    ("math.Max", [[1, True]], ErrorCode.ARG_MISMATCH, "values"),
    ("math.Floor", [math.inf], ErrorCode.ARG_MISMATCH, "value"),
    ("math.Round", [math.nan], ErrorCode.ARG_MISMATCH, "value"),
    ("math.Round", [1.5, 400], ErrorCode.ARG_MISMATCH, "digits"),
    ("math.Random", [1], ErrorCode.ARG_MISMATCH, "max"),
    ("math.Random", [5, 1], ErrorCode.ARG_MISMATCH, "min"),
])
def test_bad_input(fails: Any, name: str, args: list[Any], code: int, arg: str) -> None:
    err = fails(name, *args)
    assert err.code == code
    assert f"'{arg}'" in err.message and "tool.math." in err.message


def test_round_huge_float_does_not_fail(call: Any) -> None:
    assert call("math.Round", 1e300, 2) == 1e300
    assert call("math.Round", 1e300) == 10**300  # the decimal digits shown, not the binary value


def test_random(call: Any) -> None:
    x = call("math.Random")
    assert isinstance(x, float) and 0 <= x < 1
    rolls = {call("math.Random", 1, 6) for _ in range(200)}
    assert rolls <= {1, 2, 3, 4, 5, 6} and len(rolls) > 1
    assert all(type(r) is int for r in rolls)
    f = call("math.Random", 1.0, 2.0)
    assert isinstance(f, float) and 1.0 <= f <= 2.0


def test_random_is_repeatable_with_a_seed(call: Any) -> None:
    a = [call("math.Random", 1, 1000, seed=42) for _ in range(3)]
    assert len(set(a)) == 1
    assert call("math.Random", seed=7) == call("math.Random", seed=7)
    assert call("math.Random", 1, 10**9, 1) != call("math.Random", 1, 10**9, 2)
