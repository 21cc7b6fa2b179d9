"""The ``math`` tool group: arithmetic on numbers.

Upstream 0.4.2 registered ``Add``, ``Subtract``, ``Multiply``, ``Divide`` and ``Modulo`` ungrouped
(spec/language.md §8.5); HEAD moved them to ``math``. The 0.4.2 names are aliases. Numbers follow
nslang's value rules (spec Part 1 "Values"): integers stay exact Python ints, ``Divide`` gives an
int when the division is exact, division or modulo by zero is code 14. Arguments of type ``float``
accept numbers and numeric strings (the coercion table of §8.3), never booleans.
"""

from __future__ import annotations

import math
import random as _random
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from ...errors import ErrorCode
from ...values import div, mod, mul, number_or_none, power
from ..registry import tool
from ._common import arg_error, describe, variadic

__all__ = ["TOOLS"]

Number = int | float
_ROUND_CONTEXT = Context(prec=1000)


def _nonzero(arg: str, v: Number) -> None:
    if v == 0:
        raise arg_error(arg, "is zero: division by zero", code=ErrorCode.DIVISION_BY_ZERO)


def _finite(arg: str, v: Number) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise arg_error(arg, f"must be a finite number, got {describe(v)}")


@tool("math", "Add", aliases=("Add",), return_type="number", arg_types={"num1": "number", "num2": "number"})
def add(num1: int | float, num2: int | float) -> Number:
    """Add two numbers (exact for integers).

    Upstream 0.4.2 Add.

    Args:
        num1: first number.
        num2: second number.

    Returns:
        num1 + num2.

    Example:
        set total = tool.math.Add(2, 3)
    """
    return num1 + num2


@tool("math", "Subtract", aliases=("Subtract",), return_type="number", arg_types={"num1": "number", "num2": "number"})
def subtract(num1: int | float, num2: int | float) -> Number:
    """Subtract one number from another.

    Upstream 0.4.2 Subtract.

    Args:
        num1: the number to subtract from.
        num2: the number to subtract.

    Returns:
        num1 - num2.

    Example:
        set diff = tool.math.Subtract(10, 4)
    """
    return num1 - num2


@tool("math", "Multiply", aliases=("Multiply",), return_type="number", arg_types={"num1": "number", "num2": "number"})
def multiply(num1: int | float, num2: int | float) -> Number:
    """Multiply two numbers.

    Upstream 0.4.2 Multiply.

    Args:
        num1: first factor.
        num2: second factor.

    Returns:
        num1 * num2.

    Raises:
        37 (ResourceExhaustion) an integer product of more than 4300 digits (values.MAX_INT_DIGITS).

    Example:
        set area = tool.math.Multiply(3, 4)
    """
    return mul(num1, num2)  # type: ignore[no-any-return]


@tool("math", "Divide", aliases=("Divide",), return_type="number", arg_types={"num1": "number", "num2": "number"})
def divide(num1: int | float, num2: int | float) -> Number:
    """Divide two numbers: an integer when two integers divide exactly, else a float.

    Upstream 0.4.2 Divide (which always gave a float).

    Args:
        num1: the dividend.
        num2: the divisor (not zero).

    Returns:
        num1 / num2 (10 / 4 is 2.5, 10 / 5 is 2).

    Raises:
        14 (DivisionByZero) num2 is zero.

    Example:
        set half = tool.math.Divide(7, 2)
    """
    _nonzero("num2", num2)
    return div(num1, num2)  # type: ignore[no-any-return]


@tool("math", "Modulo", aliases=("Modulo",))
def modulo(num1: int, num2: int) -> int:
    """Integer remainder, truncated like the ``%`` operator (the sign follows num1: -7 % 3 is -1).

    Upstream 0.4.2 Modulo.

    Args:
        num1: the dividend (an integer).
        num2: the divisor (an integer, not zero).

    Returns:
        The remainder.

    Raises:
        4 a number with a fraction; 14 (DivisionByZero) num2 is zero.

    Example:
        set r = tool.math.Modulo(17, 5)
    """
    _nonzero("num2", num2)
    return mod(num1, num2)  # type: ignore[no-any-return]


@tool("math", "Abs", return_type="number", arg_types={"value": "number"})
def abs_(value: int | float) -> Number:
    """Absolute value.

    nslang addition.

    Args:
        value: a number.

    Returns:
        The value without its sign.

    Example:
        set d = tool.math.Abs(-4.5)
    """
    return abs(value)


def _numbers(tool_arg: str, first: Any, rest: tuple[Any, ...]) -> list[Number]:
    items = variadic(rest)
    values = list(first) if not items and type(first) is list else [first, *items]
    if not values:
        raise arg_error(tool_arg, "is an empty list; need at least one number")
    out: list[Number] = []
    for i, v in enumerate(values, 1):
        n = number_or_none(v) if type(v) is not bool else None
        if n is None:
            raise arg_error(tool_arg, f"element {i} must be a number, got {describe(v)}")
        out.append(n)
    return out


@tool("math", "Min", return_type="number", arg_types={"values": "any"})
def min_(values: Any, *more: Any) -> Number:
    """The smallest of several numbers, or of a list of numbers.

    nslang addition. Call it with numbers (Min(3, 1, 2)) or with one list (Min([3, 1, 2])).

    Args:
        values: the first number, or a list of numbers.

    Returns:
        The smallest number.

    Raises:
        4 an empty list or an element that is not a number.

    Example:
        set lowest = tool.math.Min(3, 1, 2)
    """
    return min(_numbers("values", values, more))


@tool("math", "Max", return_type="number", arg_types={"values": "any"})
def max_(values: Any, *more: Any) -> Number:
    """The largest of several numbers, or of a list of numbers.

    nslang addition. Call it with numbers (Max(3, 1, 2)) or with one list (Max([3, 1, 2])).

    Args:
        values: the first number, or a list of numbers.

    Returns:
        The largest number.

    Raises:
        4 an empty list or an element that is not a number.

    Example:
        set highest = tool.math.Max([3, 1, 2])
    """
    return max(_numbers("values", values, more))


@tool("math", "Round", return_type="number", arg_types={"value": "number"})
def round_(value: int | float, digits: int = 0) -> Number:
    """Round half away from zero to a number of decimal places.

    nslang addition. Rounds the decimal digits you see (2.675 to 2 places is 2.68), unlike binary
    rounding. With digits 0 (the default) the result is an integer.

    Args:
        value: a number.
        digits: decimal places to keep (may be negative: -2 rounds to hundreds).

    Returns:
        The rounded number (an integer when digits <= 0).

    Raises:
        4 an infinite or NaN value, or digits outside -308..308.

    Example:
        set r = tool.math.Round(3.14159, 2)
    """
    _finite("value", value)
    if not -308 <= digits <= 308:
        raise arg_error("digits", f"must be between -308 and 308, got {digits}")
    if type(value) is int and digits >= 0:
        return value
    try:
        q = Decimal(repr(value) if isinstance(value, float) else value).quantize(
            Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_ROUND_CONTEXT
        )
    except InvalidOperation:
        raise arg_error("digits", f"{digits} is too many decimal places for {value!r}") from None
    if digits <= 0:
        return int(q)
    return float(q)


@tool("math", "Floor", arg_types={"value": "number"})
def floor(value: int | float) -> int:
    """The largest integer not greater than a number.

    nslang addition.

    Args:
        value: a finite number.

    Returns:
        An integer (Floor(-2.5) is -3).

    Raises:
        4 an infinite or NaN value.

    Example:
        set f = tool.math.Floor(2.7)
    """
    _finite("value", value)
    return math.floor(value)


@tool("math", "Ceil", arg_types={"value": "number"})
def ceil(value: int | float) -> int:
    """The smallest integer not less than a number.

    nslang addition.

    Args:
        value: a finite number.

    Returns:
        An integer (Ceil(2.1) is 3).

    Raises:
        4 an infinite or NaN value.

    Example:
        set c = tool.math.Ceil(2.1)
    """
    _finite("value", value)
    return math.ceil(value)


@tool("math", "Sqrt", return_type="number", arg_types={"value": "number"})
def sqrt(value: int | float) -> Number:
    """Square root; exact for perfect squares (Sqrt(16) is the integer 4).

    nslang addition.

    Args:
        value: a number, not negative.

    Returns:
        The square root.

    Raises:
        4 a negative value.

    Example:
        set side = tool.math.Sqrt(2)
    """
    if value < 0:
        raise arg_error("value", f"must not be negative, got {describe(value)}")
    if type(value) is int:
        r = math.isqrt(value)
        if r * r == value:
            return r
    return math.sqrt(value)


@tool("math", "Pow", return_type="number", arg_types={"base": "number", "exponent": "number"})
def pow_(base: int | float, exponent: int | float) -> Number:
    """Raise a number to a power, like the ``**`` operator.

    nslang addition. Exact for integer bases with non-negative integer exponents; a negative base
    with a fractional exponent gives NaN, an overflow gives +Inf.

    Args:
        base: the base.
        exponent: the exponent.

    Returns:
        base ** exponent.

    Raises:
        37 (ResourceExhaustion) an exact integer power of more than 4300 digits (values.MAX_INT_DIGITS);
        17 (Evaluation) an integer operand too large for a float.

    Example:
        set kib = tool.math.Pow(2, 10)
    """
    return power(base, exponent)  # type: ignore[no-any-return]


@tool("math", "Random", return_type="number", arg_types={"min": "number", "max": "number"})
def random(min: int | float | None = None, max: int | float | None = None, seed: int | None = None) -> Number:
    """A random number: a float in [0, 1), or a number between min and max.

    nslang addition. With two integers the result is an integer in [min, max], both included;
    otherwise a float in [min, max]. Not for cryptography. Passing seed gives a repeatable
    result: the same seed and bounds always give the same number.

    Args:
        min: lower bound (give both bounds or neither).
        max: upper bound, not below min.
        seed: make the result repeatable.

    Returns:
        The random number.

    Raises:
        4 only one bound given, min greater than max, or a bound that is not finite.

    Example:
        set die = tool.math.Random(1, 6)
    """
    rng = _random.Random(seed)
    if min is None and max is None:
        return rng.random()
    if min is None or max is None:
        raise arg_error("min" if min is None else "max", "must be given together with the other bound")
    _finite("min", min)
    _finite("max", max)
    if min > max:
        raise arg_error("min", f"({min}) must not be greater than max ({max})")
    if type(min) is int and type(max) is int:
        return rng.randint(min, max)
    if math.isinf(max - min):  # uniform() would compute min + (max - min) * r and overflow to +Inf
        r = rng.random()
        return min * (1 - r) + max * r
    return rng.uniform(min, max)


TOOLS: list[Any] = [add, subtract, multiply, divide, modulo, abs_, min_, max_, round_, floor, ceil, sqrt, pow_, random]
