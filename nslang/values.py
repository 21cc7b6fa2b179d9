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

import sys

from .errors import ErrorCode, NSRuntimeError

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any

_INF = float("inf")  # (no math import at start-up, issue 16 item 3)
_NAN = float("nan")

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
    Fuzzy: "fuzzy",
    ProcedureRef: "function",
    ToolRef: "tool",
    bytes: "bytes",
}


def type_name(v: Any) -> str:
    """``typeof v``: one of the TYPE_* names (spec §6.1)."""
    name = _TYPE_NAMES.get(type(v))
    if name is None:
        return "timedate" if is_datetime(v) else "unknown"
    return name


def is_datetime(v: Any) -> bool:
    """Is ``v`` a ``datetime.datetime`` (a timedate)? Such a value exists only once some code imported
    :mod:`datetime`, so this never imports it (it stays off the start-up path, issue 16 item 3)."""
    m = sys.modules.get("datetime")
    return m is not None and type(v) is m.datetime


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
    if v == _INF:
        return "+Inf"
    if v == -_INF:
        return "-Inf"
    if v.is_integer() and abs(v) < 1e16:
        return str(int(v)) if v != 0 or str(v)[0] != "-" else "-0"
    r = repr(v)
    if "e" in r or "E" in r:
        from decimal import Decimal

        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def _quote(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def display(v: Any, limit: int | None = None) -> str:
    """The display string of ``v`` (spec §6.3) as ``emit``, string ``+`` and ``fail`` use it.

    nil displays as the empty string at the top level, and as ``nil`` inside lists and maps. Lists and
    maps are walked iteratively, so any nesting depth displays (issue 10 item 4); a list or map that
    contains itself shows ``[...]`` / ``{...}`` where it recurs. With ``limit`` (characters), the walk
    stops soon after the text passes that length (the caller truncates), bounding the work on huge
    values.
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
    if t is list or t is dict or t is ErrorValue or t is EventValue:
        return _display_nested(v, limit)
    return _display_scalar(v)


def _display_scalar(v: Any) -> str:
    """Display of a value that is neither a list nor a map (nil shows as ``nil``)."""
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
        return "nil"
    if is_datetime(v):
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


def _display_nested(root: Any, limit: int | None) -> str:
    """:func:`display` of lists, maps, error and event values, with an explicit stack (no recursion)."""
    parts: list[str] = []
    size = counted = 0
    # each entry: [iterator over the children, is_map, closing bracket, id of the container]
    stack: list[list[Any]] = []
    active: set[int] = set()  # containers on the current path (a cycle shows as [...] / {...})
    v: Any = root
    top = True  # the value is not inside a list or map: nil displays as ""
    while True:
        t = type(v)
        if t is ErrorValue:
            parts.append("error: ")
            v, top = v.get("message"), True
            continue
        if t is EventValue:
            parts.append("event: ")
            v, top = v.get("name"), True
            continue
        if t is list or t is dict:
            if id(v) in active:
                parts.append("[...]" if t is list else "{...}")
            else:
                active.add(id(v))
                parts.append("[" if t is list else "{")
                stack.append([iter(v.items()) if t is dict else iter(v), t is dict, "]" if t is list else "}",
                              id(v), True])
        elif v is None:
            parts.append("" if top else "nil")
        else:
            parts.append(_display_scalar(v))
        # next child of the innermost open container, closing the finished ones
        while stack:
            entry = stack[-1]
            if limit is not None:
                size += sum(map(len, parts[counted:]))
                counted = len(parts)
                if size > limit:
                    return "".join(parts)
            child = next(entry[0], _END)
            if child is _END:
                parts.append(entry[2])
                active.discard(entry[3])
                stack.pop()
                continue
            if entry[4]:
                entry[4] = False
            else:
                parts.append(", ")
            if entry[1]:
                k, child = child
                parts.append(_quote(str(k)) + ": ")
            v, top = child, False
            break
        else:
            return "".join(parts)


_END = object()


def interpolation_display(v: Any) -> str:
    """Display used by ``{{x}}`` interpolation and ``eval``: like :func:`display` but nil is ``nil``."""
    return "nil" if v is None else display(v)


# ----------------------------------------------------------------------------------------------
# Coercions (§4.2)

_NUM_START = frozenset("0123456789+-.iInN")
_NUMBER_RES: list[Any] = []  # (integer, float) patterns, compiled on first use (``re`` stays off start-up)


def _number_res() -> list[Any]:
    if not _NUMBER_RES:
        import re

        _NUMBER_RES[:] = [re.compile(r"[+-]?[0-9]+\Z"),
                          re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")]
    return _NUMBER_RES
_SPECIAL = {"inf": _INF, "+inf": _INF, "-inf": -_INF, "infinity": _INF, "+infinity": _INF, "-infinity": -_INF,
            "nan": _NAN, "+nan": _NAN, "-nan": _NAN}


def string_number(s: str) -> int | float | None:
    """The number Go's ``ParseFloat`` reads from the whole of ``s`` (no surrounding spaces), or None.

    Integral decimal strings give an exact ``int``, up to :data:`MAX_INT_DIGITS` digits; longer ones
    read as a float (like ``1e999``).
    """
    if not s or s[0] not in _NUM_START:
        return None
    int_re, float_re = _NUMBER_RES or _number_res()
    if int_re.match(s):
        if len(s) - (s[0] in "+-") <= MAX_INT_DIGITS:
            try:
                return int(s)
            except ValueError:  # a host lowered Python's digit limit below ours
                pass
        return float(s)
    if float_re.match(s):
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
    s = _quote(v) if type(v) is str else display(v, limit) if v is not None else "nil"
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
    import math

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
    """``a == b`` (§4.3): nil equals only nil; numeric readings compare as numbers; else deep equality.

    Two containers of one type compare as Python compares them (``[1] == [1.0]``, ``["1"] != [1]``); a
    map against an error value compares entry by entry with these rules. Nested lists and maps are
    walked iteratively, so any depth compares (issue 10 item 4); a pair of containers already being
    compared counts as equal, so values that contain themselves compare in finite time.
    """
    r = _equal_step(a, b)
    if r is _PY or r is _NS:
        return _deep_equal(a, b, r is _PY)
    return r  # type: ignore[return-value]


_PY = object()  # compare two containers as Python's == does
_NS = object()  # compare two containers entry by entry with equal()


def _equal_step(a: Any, b: Any) -> Any:
    """:func:`equal` for one pair without descending: True, False, or _PY / _NS for two containers."""
    if a is None or b is None:
        return a is b
    ta, tb = type(a), type(b)
    if ta is str and tb is str:
        if a == b:
            return True
        if not a or not b or a[0] not in _NUM_START or b[0] not in _NUM_START:
            return False
    if ta is tb and ta is not str and ta is not bool:
        if ta is list or isinstance(a, dict):
            return _PY
        return bool(a == b)
    na = number_or_none(a)
    if na is not None:
        nb = number_or_none(b)
        if nb is not None:
            return bool(na == nb)
    if ta is str and tb is str:
        return bool(a == b)
    if ta in (list, dict) or tb in (list, dict):
        return _NS if isinstance(a, dict) and isinstance(b, dict) else False
    return bool(a == b)


def _deep_equal(a: Any, b: Any, python: bool) -> bool:
    """Deep equality of two containers with an explicit stack; ``python``: compare as Python's ``==``."""
    todo: list[tuple[Any, Any, bool]] = [(a, b, python)]
    seen: set[tuple[int, int, bool]] = set()
    while todo:
        x, y, py = todo.pop()
        if py:
            if x is y:
                continue
            xl, yl, xd, yd = type(x) is list, type(y) is list, isinstance(x, dict), isinstance(y, dict)
            if not (xl and yl or xd and yd):
                if xl or yl or xd or yd or not x == y:
                    return False
                continue
        else:
            r = _equal_step(x, y)
            if r is _PY:
                py = True
            elif r is not _NS:
                if not r:
                    return False
                continue
        # two lists or two maps
        if len(x) != len(y):
            return False
        key = (id(x), id(y), py)
        if key in seen:
            continue
        seen.add(key)
        if type(x) is list:
            todo.extend(zip(x, y, [py] * len(x)))
        elif py:
            for k in x:
                if k not in y:
                    return False
                todo.append((x[k], y[k], True))
        else:
            if x.keys() != y.keys():
                return False
            todo.extend((x[k], y[k], False) for k in x)
    return True


def compare(op: str, a: Any, b: Any) -> bool:
    """``<``, ``<=``, ``>``, ``>=``: timedates chronologically, otherwise numeric readings (code 7)."""
    if is_datetime(a) and is_datetime(b):
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
    Nested lists and maps are converted iteratively (any depth; issue 10 item 4); a list or map that
    appears twice in ``v`` appears twice in the result as one object (so a value that contains itself
    gives a Python object that contains itself).
    """
    t = type(v)
    if t in (str, int, float, bool) or v is None:
        return v
    if t is list or isinstance(v, dict):
        return _convert_deep(v, _to_python_leaf, _to_python_container)
    return _to_python_leaf(v)


def _to_python_leaf(v: Any) -> Any:
    t = type(v)
    if t is Fuzzy:
        return v.mu
    if t in (ProcedureRef, ToolRef):
        return v.name
    return v


def _to_python_container(v: Any) -> tuple[Any, Any] | None:
    """(new empty container, the source's children) for a list or map; None for anything else."""
    if type(v) is list:
        return [], v
    if isinstance(v, dict):
        return {}, v
    return None


def _convert_deep(root: Any, leaf: Callable[[Any], Any],
                  container: Callable[[Any], tuple[Any, Any] | None]) -> Any:
    """Copy a tree of containers with an explicit stack (no recursion).

    ``container(v)`` gives ``(new_empty_list_or_dict, source)`` for a node to copy (source: an iterable,
    or a mapping whose items are copied) or None for a leaf, which ``leaf(v)`` converts. A node met
    twice (shared, or inside itself) is copied once.
    """
    made = container(root)
    assert made is not None
    memo: dict[int, Any] = {id(root): made[0]}
    todo = [made]
    while todo:
        out, src = todo.pop()
        if type(out) is list:
            add = out.append
            for x in src:
                tx = type(x)
                if tx is str or tx is int or tx is float or tx is bool or x is None:
                    add(x)
                    continue
                y = memo.get(id(x), _END)
                if y is _END:
                    sub = container(x)
                    if sub is None:
                        y = leaf(x)
                    else:
                        y = memo[id(x)] = sub[0]
                        todo.append(sub)
                add(y)
        else:
            for k, x in src.items():
                tx = type(x)
                if not (tx is str or tx is int or tx is float or tx is bool or x is None):
                    y = memo.get(id(x), _END)
                    if y is _END:
                        sub = container(x)
                        if sub is None:
                            y = leaf(x)
                        else:
                            y = memo[id(x)] = sub[0]
                            todo.append(sub)
                    x = y
                out[k if type(k) is str else str(k)] = x
    return made[0]


def from_python(v: Any) -> Any:
    """Convert a Python value to a NeuroScript value.

    str, bool, int, float and None map to themselves; lists, tuples and sets become lists; mappings
    become maps with string keys; datetimes become timedates; ``Decimal`` becomes float. Nested
    containers are converted iteratively (any depth; issue 10 item 4); one that appears twice (or
    inside itself) stays one shared list or map.
    Raises TypeError for anything else (the caller turns it into a tool error naming the tool).
    """
    t = type(v)
    if t in (str, int, float, bool) or v is None:
        return v
    if _from_python_container(v) is not None:
        return _convert_deep(v, _from_python_leaf, _from_python_container)
    return _from_python_leaf(v)


def _from_python_container(v: Any) -> tuple[Any, Any] | None:
    t = type(v)
    if t is list or t is tuple or t is set or t is frozenset:
        return [], v
    if isinstance(v, (ErrorValue, EventValue)):
        return None
    if isinstance(v, dict):
        return {}, v
    return None


def _from_python_leaf(v: Any) -> Any:
    """from_python of anything but a list, tuple, set or dict."""
    t = type(v)
    if t in (str, int, float, bool) or v is None:
        return v
    if isinstance(v, (ErrorValue, EventValue)):
        return v
    dt = sys.modules.get("datetime")
    if dt is not None and isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
    if isinstance(v, (Fuzzy, ProcedureRef, ToolRef, bytes)):
        return v
    if type(v).__name__ == "Decimal":
        return float(v)
    en = sys.modules.get("enum")
    if en is not None and isinstance(v, en.Enum):
        return from_python(v.value)
    if isinstance(v, bool):
        return bool(v)
    for base in (int, float, str):  # subclasses of the plain types
        if isinstance(v, base):
            return base(v)
    raise TypeError(f"cannot convert Python {type(v).__name__} to a NeuroScript value")
