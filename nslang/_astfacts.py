"""Facts about procedure bodies that the compiler needs (part of the compiler, :mod:`nslang.compiler`).

Each walks the AST once, iteratively: which names a body assigns, whether it reads the last-result
register, how it gets its implicit result (spec §7.2), where its ``on error`` handler is, and how deep
its calls nest (the Python frames one call may take, :mod:`nslang._stack`).
"""

from __future__ import annotations

from . import ast as A
from .source import Span

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable
    from typing import Any

__all__ = ["assigned", "call_nesting", "find_handler", "implicit_result", "reads_last", "walk"]


def reads_last(nodes: Any) -> bool:
    """Does this code read the last-result register (``last``, ``{{last}}``, ``eval``, raw strings)?"""
    for n in walk(nodes):
        if isinstance(n, (A.Last, A.Eval)):
            return True
        if isinstance(n, A.Placeholder) and n.name == "last":
            return True
        if isinstance(n, A.RawString) and n.interpolate and "last" in n.text:
            return True
    return False


def walk(nodes: Any) -> Iterable[Any]:
    """Every AST node under ``nodes`` (a node or a tuple of nodes), iteratively."""
    stack = list(nodes) if isinstance(nodes, (list, tuple)) else [nodes]
    while stack:
        n = stack.pop()
        if isinstance(n, tuple):
            stack.extend(n)
            continue
        yield n
        for s in getattr(type(n), "__slots__", ()):
            v = getattr(n, s, None)
            if isinstance(v, (tuple, list)) or hasattr(type(v), "__slots__") and not isinstance(v, (str, Span)):
                stack.append(v)


_VALUE_STMTS = (A.Set, A.Emit, A.Must, A.Call, A.Ask)


def implicit_result(body: tuple[A.Stmt, ...]) -> tuple[bool, A.Stmt | None]:
    """How a procedure body gets its value when it ends without ``return`` (spec §7.2, issue 15).

    Returns ``(implicit, final)``: ``implicit`` is false when the body cannot run off its end (its
    final statement is ``return`` or ``fail``); ``final`` is that statement when it is a
    set/emit/must/call/ask, whose value is then the result, else None (a final ``if``/loop: the
    value is the last-result register, so the whole body tracks it).
    """
    stmts = [s for s in body if not isinstance(s, A.OnError)]
    if not stmts:
        return False, None
    last = stmts[-1]
    if isinstance(last, (A.Return, A.Fail)):
        return False, None
    return True, last if isinstance(last, _VALUE_STMTS) else None


def call_nesting(body: tuple[A.Stmt, ...]) -> int:
    """How many levels of statements and expressions lie around the deepest procedure or tool call
    in a body (1: a call statement at the top); bounds the Python frames of one call (nslang._stack)."""
    best = 0
    stack: list[tuple[Any, int]] = [(s, 1) for s in body]
    while stack:
        n, d = stack.pop()
        if isinstance(n, tuple):
            stack.extend((x, d) for x in n)
            continue
        if isinstance(n, (A.ProcCall, A.ToolCall)) and d > best:
            best = d
        for s in getattr(type(n), "__slots__", ()):
            v = getattr(n, s, None)
            if isinstance(v, (tuple, list)) or hasattr(type(v), "__slots__") and not isinstance(v, (str, Span)):
                stack.append((v, d + 1))
    return best


def find_handler(body: tuple[A.Stmt, ...]) -> A.OnError | None:
    """The first ``on error`` at any depth of a body (hoisted; the first one wins)."""
    for s in body:
        if isinstance(s, A.OnError):
            return s
        for attr in ("body", "orelse"):
            inner = getattr(s, attr, None)
            if inner:
                h = find_handler(inner)
                if h is not None:
                    return h
    return None


def assigned(body: tuple[A.Stmt, ...]) -> set[str]:
    """The names a body assigns anywhere (``set``, ``for each``, ``ask … into``), handlers included."""
    out: set[str] = set()
    for n in walk(body):
        if isinstance(n, A.LValue):
            out.add(n.name)
        elif isinstance(n, A.ForEach):
            out.add(n.var)
    return out
