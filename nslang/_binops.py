"""Specialised closures for binary operators (part of the compiler).

For each operator there is a fast path for the common operand types (two ints, two strings) written
inline, and a slow path in :mod:`nslang.values` that implements the full rules. A Python exception
the slow path raises on extreme input (an integer too large for a float…) is translated here, where
the operator is invoked, by :func:`nslang.errors.python_error`. Operands that are
variables or constants are read inline instead of through another closure. The closure factories are
generated once per (operator, left kind, right kind) from a template with ``exec`` and cached, which
keeps this module short while avoiding one Python call per operand at run time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ast as A
from . import values as V
from .errors import NSRuntimeError, python_error
from .limits import checked_add, checked_display, value_too_large

if TYPE_CHECKING:  # pragma: no cover
    from .compiler import Compiler, _Ctx

# operator -> (fast-path test and result, slow function)
_FAST: dict[str, str] = {
    "+": "if type(a) is int is type(b): return a + b",
    "-": "if type(a) is int is type(b): return a - b",
    "*": "if type(a) is int is type(b):\n            r = a * b\n            if LOW < r < BOUND: return r",
    "/": "",
    "%": "if type(a) is int is type(b) and a >= 0 and b > 0: return a % b",
    "**": "",
    "<": "if type(a) is int is type(b): return a < b",
    "<=": "if type(a) is int is type(b): return a <= b",
    ">": "if type(a) is int is type(b): return a > b",
    ">=": "if type(a) is int is type(b): return a >= b",
    "==": "if type(a) is int is type(b) or a is b and type(a) is not float: return a == b",
    "!=": "if type(a) is int is type(b) or a is b and type(a) is not float: return a != b",
    "&": "",
    "|": "",
    "^": "",
}

_SLOW: dict[str, Callable[[Any, Any], Any]] = {
    "+": V.add,
    "-": V.sub,
    "*": V.mul,
    "/": V.div,
    "%": V.mod,
    "**": V.power,
    "<": lambda a, b: V.compare("<", a, b),
    "<=": lambda a, b: V.compare("<=", a, b),
    ">": lambda a, b: V.compare(">", a, b),
    ">=": lambda a, b: V.compare(">=", a, b),
    "==": V.equal,
    "!=": lambda a, b: not V.equal(a, b),
    "&": V.bit_and,
    "|": V.bit_or,
    "^": V.bit_xor,
}

_LOAD = {
    "var": """    try:
        {x} = f[{X}N]
    except KeyError:
        {x} = lookup({X}N, {X}S)
""",
    "const": "    {x} = {X}C\n",
    "expr": "    {x} = {X}F(f)\n",
}

_TEMPLATE = """
def factory(LF, RF, LN, RN, LC, RC, LS, RS, lookup, slow, span, NSRuntimeError, python_error, LOW, BOUND):
    def binop(f):
{load_a}{load_b}        {fast}
        try:
            return slow(a, b)
        except NSRuntimeError as e:
            if e.span is None:
                e.span = span
            raise
        except (ArithmeticError, ValueError, MemoryError) as e:
            err = python_error(e)
            if err is None:
                raise
            err.span = span
            raise err from None
    return binop
"""


@functools.cache
def _factory(op: str, lk: str, rk: str) -> Callable[..., Callable[[Any], Any]]:
    def indent(s: str) -> str:
        return "".join("    " + line + "\n" for line in s.splitlines())

    src = _TEMPLATE.format(
        load_a=indent(_LOAD[lk].format(x="a", X="L")),
        load_b=indent(_LOAD[rk].format(x="b", X="R")),
        fast=_FAST[op] or "pass",
    )
    ns: dict[str, Any] = {}
    exec(compile(src, f"<nslang binop {op} {lk} {rk}>", "exec"), ns)  # noqa: S102 - fixed templates only
    return ns["factory"]  # type: ignore[no-any-return]


def _kind(e: A.Expr) -> str:
    if isinstance(e, A.Variable):
        return "var"
    if isinstance(e, A.Literal):
        return "const"
    return "expr"


def make_binop(comp: Compiler, e: A.BinOp, ctx: _Ctx) -> Callable[[Any], Any]:
    """The closure for ``e``; constant operands are folded when both sides are literals.

    ``+`` on strings obeys the value-size limit (``limits.max_value_bytes``, :mod:`nslang.limits`).
    """
    op = e.op
    limit = comp.rt.limits.max_value_bytes
    slow = checked_add(limit) if op == "+" else _SLOW[op]
    left, right = e.left, e.right
    if isinstance(left, A.Literal) and isinstance(right, A.Literal):
        try:
            value = slow(left.value, right.value)
        except (NSRuntimeError, ArithmeticError, ValueError, MemoryError):
            pass  # keep the error for run time, with its position
        else:
            return lambda f: value
    if op == "+" and isinstance(right, A.Literal) and type(right.value) is str \
            and V.string_number(right.value) is None:
        return _concat_const(comp.expr(left, ctx), right.value, limit, e.span)
    lk, rk = _kind(left), _kind(right)
    factory = _factory(op, lk, rk)
    lookup = comp.rt.lookup_global
    return factory(
        comp.expr(left, ctx) if lk == "expr" else None,
        comp.expr(right, ctx) if rk == "expr" else None,
        left.name if lk == "var" else None,  # type: ignore[union-attr]
        right.name if rk == "var" else None,  # type: ignore[union-attr]
        left.value if lk == "const" else None,  # type: ignore[union-attr]
        right.value if rk == "const" else None,  # type: ignore[union-attr]
        left.span,
        right.span,
        lookup,
        slow,
        e.span,
        NSRuntimeError,
        python_error,
        V._INT_LOW,
        V._INT_BOUND,
    )


def _concat_const(left: Callable[[Any], Any], suffix: str, limit: int, span: Any) -> Callable[[Any], Any]:
    """``x + "text"`` where "text" is not numeric: always concatenation (list/map + string included)."""
    def concat(f: Any) -> Any:
        a = left(f)
        try:
            r = (a if type(a) is str else checked_display(a, limit, "the string")) + suffix
            if len(r) > limit:
                raise value_too_large("the string", len(r), limit)
        except NSRuntimeError as err:
            if err.span is None:
                err.span = span
            raise
        return r

    return concat
