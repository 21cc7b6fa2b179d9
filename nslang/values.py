"""The runtime value model: Python objects standing for NeuroScript values, and the rules on them.

=================  ==========================================  =========================
NeuroScript type   Python representation                       ``typeof``
=================  ==========================================  =========================
nil                ``None``                                    ``"nil"``
boolean            ``bool``                                    ``"boolean"``
number             ``int`` (exact) or ``float``                ``"number"``
string             ``str``                                     ``"string"``
list               ``list`` (shared by reference)              ``"list"``
map                ``dict`` with ``str`` keys, insertion order ``"map"``
error              :class:`ErrorValue` (a dict subclass)       ``"error"``
event              :class:`EventValue` (a dict subclass)       ``"event"``
timedate           ``datetime.datetime`` (aware, UTC)          ``"timedate"``
fuzzy              :class:`Fuzzy`                              ``"fuzzy"``
function           :class:`ProcedureRef`                       ``"function"``
tool               :class:`ToolRef`                            ``"tool"``
bytes              ``bytes``                                   ``"bytes"``
=================  ==========================================  =========================

Truthiness (``if``, ``while``, ``must``, ``not``, ``and``, ``or``) is the per-type rule of upstream HEAD
(spec/language.md §6.2; a non-empty string is true, a deliberate difference from 0.4.2), which for
these representations is exactly Python's ``bool()``.

Operators follow 0.4.2 (§4.2-4.3) with the fixes of spec Part 1: ``+`` adds when both sides read as
numbers and otherwise concatenates display strings (list + list and map + map are type errors),
integer arithmetic is exact, ``/`` gives an int when exact, division by zero is code 14.

Exact integers have at most :data:`MAX_INT_DIGITS` decimal digits, Python's own safe limit for
converting integers to and from text, which nslang never changes process-wide (issue 10 item 5).
``*``, ``**`` and the maths tools refuse a larger result (code 37, ResourceExhaustion; ``+`` and
``-`` are not checked, to keep them fast; :func:`display` converts an integer that crept past the
limit in pieces, and a tool that needs Python's own conversion fails with the same error 37). Text
with more digits, such as a numeric string or a number literal, reads as a float, the same reading
``1e999`` gets (+Inf).
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import re
import sys
from typing import Any

from .errors import ErrorCode, NSRuntimeError

__all__ = [
    "MAX_INT_DIGITS",
    "ErrorValue",
    "EventValue",
    "Fuzzy",
    "ProcedureRef",
    "ToolRef",
    "add",
    "compare",
    "display",
    "equal",
    "from_python",
    "to_int",
    "to_number",
    "to_python",
    "type_name",
]


class ErrorValue(dict):  # type: ignore[type-arg]
    """An error *value* (``tool.Error.New``): a map ``{"code": …, "message": …}`` that raises nothing.

    Display string ``error: <message>``; false under truthiness; ``is_map`` and ``is_error`` are true.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    @property
    def message(self) -> str:
        return display(self.get("message"))


class EventValue(dict):  # type: ignore[type-arg]
    """An event delivered to ``on event … as v``: ``{"name", "source", "timestamp", "payload"}``."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return True


class Fuzzy:
    """A fuzzy truth value with membership ``mu`` clamped to [0, 1]; true when ``mu > 0.5``."""

    __slots__ = ("mu",)

    def __init__(self, mu: float) -> None:
        self.mu = min(1.0, max(0.0, float(mu)))

    def __bool__(self) -> bool:
        return self.mu > 0.5

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fuzzy) and other.mu == self.mu

    def __hash__(self) -> int:
        return hash(self.mu)

    def __repr__(self) -> str:
        return f"Fuzzy({self.mu})"


class ProcedureRef:
    """The value of a bare identifier naming a procedure (``typeof`` gives ``"function"``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcedureRef) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("proc", self.name))


class ToolRef:
    """The value of a bare identifier naming a dot-free tool (``typeof`` gives ``"tool"``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToolRef) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("tool", self.name))


_TYPE_NAMES: dict[type, str] = {
    type(None): "nil",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "list",
    dict: "map",
    ErrorValue: "error",
    EventValue: "event",
    _dt.datetime: "timedate",
    Fuzzy: "fuzzy",
    ProcedureRef: "function",
    ToolRef: "tool",
    bytes: "bytes",
}


def type_name(v: Any) -> str:
    """``typeof v``: one of the TYPE_* names (spec §6.1)."""
    return _TYPE_NAMES.get(type(v), "unknown")


# ----------------------------------------------------------------------------------------------
# Integer size (issue 10 item 5)

#: Most decimal digits an exact integer may have (``sys.int_info.default_max_str_digits``).
MAX_INT_DIGITS = 4300
_INT_BOUND = 10**MAX_INT_DIGITS  # exact integers n have _INT_LOW < n < _INT_BOUND
_INT_LOW = -_INT_BOUND


def int_too_large(what: str = "integer result") -> NSRuntimeError:
    """Error 37 (ResourceExhaustion, catchable) for an integer beyond :data:`MAX_INT_DIGITS` digits."""
    return NSRuntimeError(f"{what} too large: more than {MAX_INT_DIGITS} digits (the limit of exact integers)",
                          code=ErrorCode.RESOURCE_EXHAUSTION)


def check_int(n: int) -> int:
    """``n`` itself when it has at most :data:`MAX_INT_DIGITS` digits; error 37 otherwise."""
    if _INT_LOW < n < _INT_BOUND:
        return n
    raise int_too_large()


def _int_text(n: int) -> str:
    """``str(n)`` for every int, also one that crept past Python's int/str digit limit through ``+`` or
    ``-``: converted in pieces below that limit, so the process-wide setting is never touched."""
    try:
        return str(n)
    except ValueError:
        pass
    k = min(sys.get_int_max_str_digits(), MAX_INT_DIGITS) - 1  # digits per piece (the limit is >= 640)
    unit = 10**k
    m, pieces = abs(n), []
    while m >= unit:
        m, r = divmod(m, unit)
        pieces.append(str(r).zfill(k))
    pieces.append(str(m))
    return ("-" if n < 0 else "") + "".join(reversed(pieces))


# ----------------------------------------------------------------------------------------------
# Display strings (§6.3)


def format_number(v: int | float) -> str:
    """Go ``FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, never an exponent, no ``.0``."""
    if type(v) is int:
        return _int_text(v)
    if v != v:
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if v.is_integer() and abs(v) < 1e16:
        return str(int(v)) if v != 0 or math.copysign(1.0, v) > 0 else "-0"
    r = repr(v)
    if "e" in r or "E" in r:
        from decimal import Decimal

        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def _display_inner(v: Any) -> str:
    """Display of a value nested inside a list or map: nil shows as ``nil``."""
    if v is None:
        return "nil"
    return display(v)


def _quote(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def display(v: Any) -> str:
    """The display string of ``v`` (spec §6.3) as ``emit``, string ``+`` and ``fail`` use it.

    nil displays as the empty string at the top level, and as ``nil`` inside lists and maps.
    """
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is int:
        return _int_text(v)
    if t is float:
        return format_number(v)
    if t is bool:
        return "true" if v else "false"
    if v is None:
        return ""
    if t is list:
        return "[" + ", ".join([_display_inner(x) for x in v]) + "]"
    if t is dict:
        return "{" + ", ".join([f"{_quote(str(k))}: {_display_inner(x)}" for k, x in v.items()]) + "}"
    if t is ErrorValue:
        return "error: " + v.message
    if t is EventValue:
        return "event: " + display(v.get("name"))
    if t is _dt.datetime:
        return v.isoformat().replace("+00:00", "Z")
    if t is Fuzzy:
        return format_number(v.mu)
    if t is ProcedureRef:
        return f"<function {v.name}>"
    if t is ToolRef:
        return f"<tool {v.name}>"
    if t is bytes:
        return v.decode("utf-8", "replace")
    return str(v)


def interpolation_display(v: Any) -> str:
    """Display used by ``{{x}}`` interpolation and ``eval``: like :func:`display` but nil is ``nil``."""
    return "nil" if v is None else display(v)


# ----------------------------------------------------------------------------------------------
# Coercions (§4.2)

_NUM_START = frozenset("0123456789+-.iInN")
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan,
            "-nan": math.nan}


def string_number(s: str) -> int | float | None:
    """The number Go's ``ParseFloat`` reads from the whole of ``s`` (no surrounding spaces), or None.

    Integral decimal strings give an exact ``int``, up to :data:`MAX_INT_DIGITS` digits; longer ones
    read as a float (like ``1e999``).
    """
    if not s or s[0] not in _NUM_START:
        return None
    if _INT_RE.match(s):
        if len(s) - (s[0] in "+-") <= MAX_INT_DIGITS:
            try:
                return int(s)
            except ValueError:  # a host lowered Python's digit limit below ours
                pass
        return float(s)
    if _FLOAT_RE.match(s):
        return float(s)
    return _SPECIAL.get(s.lower())


def number_or_none(v: Any) -> int | float | None:
    """N(v): the numeric reading of ``v`` (number; numeric string; bool as 1/0), or None."""
    t = type(v)
    if t is int or t is float:
        return v  # type: ignore[no-any-return]
    if t is str:
        return string_number(v)
    if t is bool:
        return 1 if v else 0
    if t is Fuzzy:
        return v.mu
    return None


def to_number(v: Any, what: str = "operand") -> int | float:
    """N(v), raising a type error (code 7) when ``v`` has no numeric reading."""
    n = number_or_none(v)
    if n is None:
        raise NSRuntimeError(f"{what} must be a number, got {type_name(v)} {short_repr(v)}", code=ErrorCode.TYPE)
    return n


def to_int(v: Any, what: str = "operand") -> int:
    """I(v): N(v) without a fractional part, as an int; a type error (code 7) otherwise."""
    n = to_number(v, what)
    if type(n) is int:
        return n
    if isinstance(n, float) and n.is_integer():
        return int(n)
    raise NSRuntimeError(f"{what} must be an integer, got {format_number(n)}", code=ErrorCode.TYPE)


def short_repr(v: Any, limit: int = 40) -> str:
    """A short quoted rendering of a value for error messages (it never fails)."""
    if type(v) is int and not _INT_LOW < v < _INT_BOUND:
        return f"<integer of more than {MAX_INT_DIGITS} digits>"
    s = _quote(v) if type(v) is str else display(v) if v is not None else "nil"
    return s if len(s) <= limit else s[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------
# Operators (§4.3, with spec Part 1 fixes)


def normalize(n: int | float) -> int | float:
    """Keep numbers exact: nothing to do for int; floats stay floats."""
    return n


def add(a: Any, b: Any) -> Any:
    """``a + b``: numeric addition when both sides read as numbers, else display-string concatenation.

    Raises NSRuntimeError code 7 for list + list and map + map (spec Part 1).
    """
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a + b
    if ta is str and tb is str:
        na = string_number(a)
        if na is not None:
            nb = string_number(b)
            if nb is not None:
                return na + nb
        return a + b
    if (ta is list and tb is list) or (ta is dict and tb is dict):
        raise NSRuntimeError(
            f"cannot add {type_name(a)} and {type_name(b)} (use tool.list.Concat or tool.map.Merge)",
            code=ErrorCode.TYPE,
        )
    na = number_or_none(a)
    if na is not None:
        nb = number_or_none(b)
        if nb is not None:
            return na + nb
    return display(a) + display(b)


def _arith_operands(op: str, a: Any, b: Any) -> tuple[int | float, int | float]:
    na = number_or_none(a)
    nb = number_or_none(b)
    if na is None or nb is None:
        bad = a if na is None else b
        raise NSRuntimeError(
            f"operator '{op}' needs numbers, got {type_name(bad)} {short_repr(bad)}", code=ErrorCode.TYPE
        )
    return na, nb


def sub(a: Any, b: Any) -> Any:
    """``a - b`` on numeric readings (code 7 otherwise)."""
    x, y = _arith_operands("-", a, b)
    return x - y


def mul(a: Any, b: Any) -> Any:
    """``a * b`` on numeric readings (code 7 otherwise; 37 for an integer beyond MAX_INT_DIGITS digits)."""
    x, y = _arith_operands("*", a, b)
    r = x * y
    return check_int(r) if type(r) is int else r


def div(a: Any, b: Any) -> Any:
    """``a / b``: an int when both are ints and it divides exactly, else a float; code 14 for zero."""
    x, y = _arith_operands("/", a, b)
    if y == 0:
        raise NSRuntimeError("division by zero", code=ErrorCode.DIVISION_BY_ZERO)
    if type(x) is int and type(y) is int:
        q, r = divmod(x, y)
        if r == 0:
            return q
    return x / y


def mod(a: Any, b: Any) -> Any:
    """``a % b`` on integers, truncated (sign follows the dividend, -7 % 3 = -1); code 14 for zero."""
    x = to_int(a, "left operand of '%'")
    y = to_int(b, "right operand of '%'")
    if y == 0:
        raise NSRuntimeError("modulo by zero", code=ErrorCode.DIVISION_BY_ZERO)
    r = abs(x) % abs(y)
    return -r if x < 0 else r


def power(a: Any, b: Any) -> Any:
    """``a ** b``: IEEE pow (Go ``math.Pow``); exact for non-negative int exponents.

    A negative base with a fractional exponent gives NaN; zero to a negative power and a float result
    too large give an infinity (negative for a negative base and an odd exponent). An exact power
    beyond :data:`MAX_INT_DIGITS` digits is error 37 (refused before it is computed); an integer
    operand too large for a float is error 17.
    """
    x, y = _arith_operands("**", a, b)
    if type(x) is int and type(y) is int and y >= 0:
        if abs(x) > 1 and (abs(x).bit_length() - 1) * y > MAX_INT_DIGITS * 3.33:  # 2**3.33 > 10
            raise int_too_large(f"{short_repr(x)} ** {short_repr(y)}")
        return check_int(x**y)
    x, y = float(x), float(y)  # OverflowError for an int beyond a float: error 17 at the operator
    odd = y.is_integer() and y % 2 == 1
    try:
        r = math.pow(x, y)
    except ValueError:  # Python refuses what IEEE defines
        if x == 0 and y < 0:
            return math.copysign(math.inf, x) if odd else math.inf
        return math.nan
    except OverflowError:
        return -math.inf if x < 0 and odd else math.inf
    return r


def negate(a: Any) -> Any:
    """``-a`` on the numeric reading of ``a`` (code 7 otherwise)."""
    n = number_or_none(a)
    if n is None:
        raise NSRuntimeError(f"unary '-' needs a number, got {type_name(a)}", code=ErrorCode.TYPE)
    return -n


def _int64(v: Any, op: str) -> int:
    if v is None:
        raise NSRuntimeError(f"operator '{op}' got nil", code=ErrorCode.TYPE)
    return to_int(v, f"operand of '{op}'")


def bit_and(a: Any, b: Any) -> int:
    """``a & b`` on integer readings."""
    return _int64(a, "&") & _int64(b, "&")


def bit_or(a: Any, b: Any) -> int:
    """``a | b`` on integer readings."""
    return _int64(a, "|") | _int64(b, "|")


def bit_xor(a: Any, b: Any) -> int:
    """``a ^ b`` on integer readings."""
    return _int64(a, "^") ^ _int64(b, "^")


def bit_not(a: Any) -> int:
    """``~a`` on the integer reading of ``a``."""
    return ~_int64(a, "~")


def equal(a: Any, b: Any) -> bool:
    """``a == b`` (§4.3): nil equals only nil; numeric readings compare as numbers; else deep equality."""
    if a is None or b is None:
        return a is b
    ta, tb = type(a), type(b)
    if ta is str and tb is str:
        if a == b:
            return True
        if not a or not b or a[0] not in _NUM_START or b[0] not in _NUM_START:
            return False
    if ta is tb and ta is not str and ta is not bool:
        return bool(a == b)
    na = number_or_none(a)
    if na is not None:
        nb = number_or_none(b)
        if nb is not None:
            return bool(na == nb)
    if ta is str and tb is str:
        return bool(a == b)
    if ta in (list, dict) or tb in (list, dict):
        return _deep_equal(a, b)
    return bool(a == b)


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return False


def compare(op: str, a: Any, b: Any) -> bool:
    """``<``, ``<=``, ``>``, ``>=``: timedates chronologically, otherwise numeric readings (code 7)."""
    if type(a) is _dt.datetime and type(b) is _dt.datetime:
        x: Any = a
        y: Any = b
    else:
        x, y = _arith_operands(op, a, b)
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


# ----------------------------------------------------------------------------------------------
# Python interop (the embedding API and tools)


def to_python(v: Any) -> Any:
    """The plain ("unwrapped", §6.4) form of a value: str, int, float, bool, None, lists, dicts.

    Error and event values become plain dicts; fuzzy values their float; references their names.
    """
    t = type(v)
    if t in (str, int, float, bool) or v is None:
        return v
    if t is list:
        return [to_python(x) for x in v]
    if isinstance(v, dict):
        return {k: to_python(x) for k, x in v.items()}
    if t is Fuzzy:
        return v.mu
    if t in (ProcedureRef, ToolRef):
        return v.name
    return v


def from_python(v: Any, _memo: dict[int, Any] | None = None) -> Any:
    """Convert a Python value to a NeuroScript value.

    str, bool, int, float and None map to themselves; lists, tuples and sets become lists; mappings
    become maps with string keys; datetimes become timedates; ``Decimal`` becomes float.
    The result is a new structure with the same sharing as ``v``: a list or map that occurs several
    times in ``v`` (or inside itself) is converted once, so the cost is linear in the distinct
    containers, never in the unfolded tree (``list.Concat([s], [s])`` repeated 30 times is 30 lists,
    not 2^30; issue 10 item 6).
    Raises TypeError for anything else (the caller turns it into a tool error naming the tool).
    """
    t = type(v)
    if t in (str, int, float, bool) or v is None:
        return v
    if t is list or t is tuple or t is set or t is frozenset or (isinstance(v, dict)
                                                              and not isinstance(v, (ErrorValue, EventValue))):
        if _memo is None:
            _memo = {}
        done = _memo.get(id(v))
        if done is not None:
            return done
        if isinstance(v, dict):
            out_map: dict[str, Any] = {}
            _memo[id(v)] = out_map
            for k, x in v.items():
                out_map[str(k)] = from_python(x, _memo)
            return out_map
        out: list[Any] = []
        _memo[id(v)] = out
        out.extend([from_python(x, _memo) for x in v])
        return out
    if isinstance(v, (ErrorValue, EventValue)):
        return v
    if isinstance(v, _dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)
    if isinstance(v, (Fuzzy, ProcedureRef, ToolRef, bytes)):
        return v
    if type(v).__name__ == "Decimal":
        return float(v)
    if isinstance(v, enum.Enum):
        return from_python(v.value)
    if isinstance(v, bool):
        return bool(v)
    for base in (int, float, str):  # subclasses of the plain types
        if isinstance(v, base):
            return base(v)
    raise TypeError(f"cannot convert Python {type(v).__name__} to a NeuroScript value")
