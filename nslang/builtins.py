"""Built-in functions (spec/language.md §4.8, plus HEAD's ``char``, ``ord`` and ``is_*`` additions).

Each takes exactly one argument; a call with another count is code 4 (ArgMismatch). Names are matched
case-insensitively and can never be shadowed by a user procedure (upstream rule). The maths
functions take numbers only (numeric strings and booleans are refused, code 7); a result that is
undefined (``ln(0)``, ``sin(+Inf)``) or an integer beyond the float range is code 17 (Evaluation).
"""

from __future__ import annotations

from .errors import ErrorCode, NSRuntimeError
from .values import (
    ErrorValue,
    EventValue,
    Fuzzy,
    ProcedureRef,
    ToolRef,
    format_number,
    is_datetime,
    short_repr,
    type_name,
)

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any

__all__ = ["BUILTINS"]


def _len(x: Any) -> int:
    if x is None:
        return 0
    if isinstance(x, (str, list, dict, bytes)):
        return len(x)
    return 1


def _real(name: str, x: Any) -> float:
    if type(x) not in (int, float):
        raise NSRuntimeError(f"{name}() needs a number, got {type_name(x)}", code=ErrorCode.TYPE)
    try:
        return float(x)
    except OverflowError:
        raise NSRuntimeError(f"{name}() needs a number within the float range, got {short_repr(x)}",
                             code=ErrorCode.EVALUATION) from None


def _math(name: str, fn_name: str, domain: Callable[[float], bool] | None = None,
          why: str = "") -> Callable[[Any], float]:
    """Built-in ``name`` computing :mod:`math`'s ``fn_name`` (``math`` is imported on the first call:
    it stays off the start-up path, issue 16 item 3)."""
    def impl(x: Any) -> float:
        v = _real(name, x)
        if domain is not None and not domain(v):
            raise NSRuntimeError(f"{name}({format_number(v)}) is undefined: {why}", code=ErrorCode.EVALUATION)
        import math

        try:
            return getattr(math, fn_name)(v)  # type: ignore[no-any-return]
        except ValueError:  # sin/cos/tan of an infinity: Python refuses what IEEE calls NaN
            raise NSRuntimeError(f"{name}({format_number(v)}) is undefined", code=ErrorCode.EVALUATION) from None

    return impl


def _is_int(x: Any) -> bool:
    return type(x) is int or (type(x) is float and x.is_integer())


def _char(x: Any) -> str:
    if type(x) is not int or not 0 <= x <= 0x10FFFF:
        raise NSRuntimeError(f"char() needs a code point 0..1114111, got {type_name(x)} {short_repr(x)}",
                             code=ErrorCode.TYPE)
    return chr(x)


def _ord(x: Any) -> int:
    if type(x) is not str or len(x) != 1:
        raise NSRuntimeError("ord() needs a one-character string", code=ErrorCode.TYPE)
    return ord(x)


#: name (lower case) → implementation taking one NeuroScript value.
BUILTINS: dict[str, Callable[[Any], Any]] = {
    "len": _len,
    "ln": _math("ln", "log", lambda v: v > 0, "needs x > 0"),
    "log": _math("log", "log10", lambda v: v > 0, "needs x > 0"),
    "sin": _math("sin", "sin"),
    "cos": _math("cos", "cos"),
    "tan": _math("tan", "tan"),
    "asin": _math("asin", "asin", lambda v: -1 <= v <= 1, "needs -1 <= x <= 1"),
    "acos": _math("acos", "acos", lambda v: -1 <= v <= 1, "needs -1 <= x <= 1"),
    "atan": _math("atan", "atan"),
    "is_string": lambda x: type(x) is str,
    "is_bool": lambda x: type(x) is bool,
    "is_list": lambda x: type(x) is list,
    "is_number": lambda x: type(x) in (int, float),
    "is_int": _is_int,
    "is_float": lambda x: type(x) is float and not x.is_integer(),
    "is_map": lambda x: isinstance(x, dict),
    "is_error": lambda x: type(x) is ErrorValue or (type(x) is dict and "code" in x and "message" in x),
    "is_nil": lambda x: x is None,
    "is_function": lambda x: type(x) is ProcedureRef,
    "is_tool": lambda x: type(x) is ToolRef,
    "is_event": lambda x: type(x) is EventValue,
    "is_timedate": is_datetime,
    "is_fuzzy": lambda x: type(x) is Fuzzy,
    "not_empty": lambda x: bool(x) if type(x) is not ErrorValue else False,
    "char": _char,
    "ord": _ord,
}
