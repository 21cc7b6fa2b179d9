"""The NeuroScript abstract syntax tree: immutable, slotted node classes, data only.

Produced by :mod:`nslang._transformer` from Lark's parse tree; consumed by :mod:`nslang.compiler`
(closure compiler) and :mod:`nslang.unparse`. Class names mirror grammar rules. Every node carries a
:class:`~nslang.source.Span`. Behaviour lives elsewhere (house rule 5).

A node class lists its fields as annotations, like a dataclass, and sets them in its ``__init__``
(positional or keyword arguments); :class:`Node`'s metaclass turns the annotations into ``__slots__``,
``_fields`` (the names, in order) and ``__match_args__``. Nodes compare field by field, have a
dataclass-like ``repr`` and cannot be changed; :func:`fields` and :func:`replace` stand in for
``dataclasses.fields``/``dataclasses.replace``. Not dataclasses: creating the 36 classes (and generating
their ``__init__``) cost ~3 ms of every start-up (issue 16 item 3).
"""

from __future__ import annotations

from .source import Span

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Union

__all__ = ["FrozenNodeError", "Node", "fields", "replace"]

_set = object.__setattr__


class FrozenNodeError(AttributeError):
    """Raised on an attempt to change or delete a field of a node (nodes are immutable)."""


class _NodeMeta(type):
    """Makes a node class from its field annotations (see the module docstring)."""

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> _NodeMeta:
        if "__slots__" not in ns:  # a node class: its annotations are its fields
            names = tuple(ns.get("__annotations__", {}))
            for f in names:  # a default is in __init__'s signature; as a class attribute it would hide the slot
                ns.pop(f, None)
            ns["__slots__"] = ns["_fields"] = ns["__match_args__"] = names
        return super().__new__(mcls, name, bases, ns)


class Node(metaclass=_NodeMeta):
    """Base of every AST node: immutability, field-by-field ``==`` and a dataclass-like ``repr``.

    A field can be set once (in ``__init__``) and never again: :class:`FrozenNodeError`. Each node
    class's ``__init__`` sets its fields with ``object.__setattr__``, as ``@dataclass(frozen=True)``
    does: ``BinOp(…)`` takes 0.4 µs, against 1.7 µs through :meth:`__setattr__` (a cold parse of the
    11,007-line parse_big benchmark builds 47,539 nodes; issue 16 item 4).
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, name):
            raise FrozenNodeError(f"cannot assign to field {name!r} of an AST node")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenNodeError(f"cannot delete field {name!r} of an AST node")

    # Nodes of one class and its subclasses (the parse cache's LazyProcedure) share the class's
    # ``_fields`` tuple: equal nodes are of the same kind with equal fields.
    def __eq__(self, other: object) -> bool:
        names = self._fields
        if getattr(other, "_fields", None) is not names:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in names)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({shown})"


def fields(node: Node) -> tuple[str, ...]:
    """The names of ``node``'s fields, in order (``dataclasses.fields`` for nodes)."""
    return node._fields


def replace(node: Node, **changes: Any) -> Node:
    """A copy of ``node`` with some fields changed (``dataclasses.replace`` for nodes).

    Raises:
        TypeError: a name in ``changes`` is not a field.
    """
    unknown = set(changes) - set(node._fields)
    if unknown:
        raise TypeError(f"{type(node).__name__} has no field {sorted(unknown)[0]!r}")
    return type(node)(**{f: changes[f] if f in changes else getattr(node, f) for f in node._fields})


# ---------------------------------------------------------------------------------------------
# Expressions


class Literal(Node):
    """A constant: nil, true/false, a number or a (non-interpolated) string."""

    value: Any
    span: Span

    def __init__(self, value: Any, span: Span) -> None:
        _set(self, "value", value)
        _set(self, "span", span)


class RawString(Node):
    """A ```…``` string (``interpolate=True``: ``{{name}}`` replaced at each evaluation) or '''…'''."""

    text: str
    interpolate: bool
    span: Span

    def __init__(self, text: str, interpolate: bool, span: Span) -> None:
        _set(self, "text", text)
        _set(self, "interpolate", interpolate)
        _set(self, "span", span)


class Placeholder(Node):
    """``{{name}}`` used as an expression: the variable's value (``{{last}}``: the last result)."""

    name: str
    span: Span

    def __init__(self, name: str, span: Span) -> None:
        _set(self, "name", name)
        _set(self, "span", span)


class Variable(Node):
    """A bare identifier."""

    name: str
    span: Span

    def __init__(self, name: str, span: Span) -> None:
        _set(self, "name", name)
        _set(self, "span", span)


class Last(Node):
    """``last``: the last-result register."""

    span: Span

    def __init__(self, span: Span) -> None:
        _set(self, "span", span)


class BinOp(Node):
    """``left op right`` for ``+ - * / % ** == != < <= > >= & | ^``."""

    op: str
    left: Expr
    right: Expr
    span: Span

    def __init__(self, op: str, left: Expr, right: Expr, span: Span) -> None:
        _set(self, "op", op)
        _set(self, "left", left)
        _set(self, "right", right)
        _set(self, "span", span)


class And(Node):
    """``left and right`` (short-circuit, spec Part 1 extension 3)."""

    left: Expr
    right: Expr
    span: Span

    def __init__(self, left: Expr, right: Expr, span: Span) -> None:
        _set(self, "left", left)
        _set(self, "right", right)
        _set(self, "span", span)


class Or(Node):
    """``left or right`` (short-circuit)."""

    left: Expr
    right: Expr
    span: Span

    def __init__(self, left: Expr, right: Expr, span: Span) -> None:
        _set(self, "left", left)
        _set(self, "right", right)
        _set(self, "span", span)


class UnaryOp(Node):
    """Prefix ``-``, ``~``, ``not``, ``no``, ``some``, ``must`` or ``typeof``."""

    op: str
    operand: Expr
    span: Span

    def __init__(self, op: str, operand: Expr, span: Span) -> None:
        _set(self, "op", op)
        _set(self, "operand", operand)
        _set(self, "span", span)


class Index(Node):
    """``target[index]``."""

    target: Expr
    index: Expr
    span: Span

    def __init__(self, target: Expr, index: Expr, span: Span) -> None:
        _set(self, "target", target)
        _set(self, "index", index)
        _set(self, "span", span)


class ProcCall(Node):
    """``name(args)``: a built-in function (case-insensitive) or a user procedure."""

    name: str
    args: tuple[Expr, ...]
    span: Span

    def __init__(self, name: str, args: tuple[Expr, ...], span: Span) -> None:
        _set(self, "name", name)
        _set(self, "args", args)
        _set(self, "span", span)


class ToolCall(Node):
    """``tool.group.Name(args, key: value)``."""

    path: str
    args: tuple[Expr, ...]
    named: tuple[tuple[str, Expr], ...]
    span: Span

    def __init__(self, path: str, args: tuple[Expr, ...], named: tuple[tuple[str, Expr], ...], span: Span) -> None:
        _set(self, "path", path)
        _set(self, "args", args)
        _set(self, "named", named)
        _set(self, "span", span)


class Eval(Node):
    """``eval(expr)``: the display string of expr with ``{{name}}`` placeholders substituted."""

    expr: Expr
    span: Span

    def __init__(self, expr: Expr, span: Span) -> None:
        _set(self, "expr", expr)
        _set(self, "span", span)


class ListLit(Node):
    """``[a, b, …]``."""

    items: tuple[Expr, ...]
    span: Span

    def __init__(self, items: tuple[Expr, ...], span: Span) -> None:
        _set(self, "items", items)
        _set(self, "span", span)


class MapLit(Node):
    """``{k: v, …}``; keys are expressions whose display string is the key; the last duplicate wins."""

    entries: tuple[tuple[Expr, Expr], ...]
    span: Span

    def __init__(self, entries: tuple[tuple[Expr, Expr], ...], span: Span) -> None:
        _set(self, "entries", entries)
        _set(self, "span", span)


if TYPE_CHECKING:  # pragma: no cover
    Expr = Union[Literal, RawString, Placeholder, Variable, Last, BinOp, And, Or, UnaryOp, Index, ProcCall,
                 ToolCall, Eval, ListLit, MapLit]


# ---------------------------------------------------------------------------------------------
# Assignment targets


class Field(Node):
    """``.name`` step of an assignment target (a map key ``"name"``)."""

    name: str
    span: Span

    def __init__(self, name: str, span: Span) -> None:
        _set(self, "name", name)
        _set(self, "span", span)


class LValue(Node):
    """``name`` followed by ``[expr]`` and ``.field`` steps."""

    name: str
    path: tuple[Expr | Field, ...]
    span: Span

    def __init__(self, name: str, path: tuple[Expr | Field, ...], span: Span) -> None:
        _set(self, "name", name)
        _set(self, "path", path)
        _set(self, "span", span)


# ---------------------------------------------------------------------------------------------
# Statements


class Set(Node):
    """``set a, b = expr``."""

    targets: tuple[LValue, ...]
    value: Expr
    span: Span

    def __init__(self, targets: tuple[LValue, ...], value: Expr, span: Span) -> None:
        _set(self, "targets", targets)
        _set(self, "value", value)
        _set(self, "span", span)


class Call(Node):
    """``call callable``."""

    call: Expr
    span: Span

    def __init__(self, call: Expr, span: Span) -> None:
        _set(self, "call", call)
        _set(self, "span", span)


class Return(Node):
    """``return`` / ``return e`` / ``return e1, e2`` (several values return a list)."""

    values: tuple[Expr, ...]
    span: Span

    def __init__(self, values: tuple[Expr, ...], span: Span) -> None:
        _set(self, "values", values)
        _set(self, "span", span)


class Emit(Node):
    """``emit expr``."""

    value: Expr
    span: Span

    def __init__(self, value: Expr, span: Span) -> None:
        _set(self, "value", value)
        _set(self, "span", span)


class Must(Node):
    """``must expr`` (``mustbe callable`` is the same)."""

    value: Expr
    span: Span
    keyword: str = "must"

    def __init__(self, value: Expr, span: Span, keyword: str = "must") -> None:
        _set(self, "value", value)
        _set(self, "span", span)
        _set(self, "keyword", keyword)


class Fail(Node):
    """``fail`` / ``fail expr``."""

    value: Expr | None
    span: Span

    def __init__(self, value: Expr | None, span: Span) -> None:
        _set(self, "value", value)
        _set(self, "span", span)


class ClearError(Node):
    """``clear_error`` (only meaningful inside ``on error``)."""

    span: Span

    def __init__(self, span: Span) -> None:
        _set(self, "span", span)


class ClearEvent(Node):
    """``clear event expr`` / ``clear event named "h"``: remove event handlers."""

    event: Expr | None
    handler_name: str | None
    span: Span

    def __init__(self, event: Expr | None, handler_name: str | None, span: Span) -> None:
        _set(self, "event", event)
        _set(self, "handler_name", handler_name)
        _set(self, "span", span)


class Ask(Node):
    """``ask prompt`` / ``ask worker, prompt [with options] [into target]``."""

    worker: Expr | None
    prompt: Expr
    options: Expr | None
    target: LValue | None
    span: Span

    def __init__(self, worker: Expr | None, prompt: Expr, options: Expr | None, target: LValue | None,
                 span: Span) -> None:
        _set(self, "worker", worker)
        _set(self, "prompt", prompt)
        _set(self, "options", options)
        _set(self, "target", target)
        _set(self, "span", span)


class Break(Node):
    """``break``."""

    span: Span

    def __init__(self, span: Span) -> None:
        _set(self, "span", span)


class Continue(Node):
    """``continue``."""

    span: Span

    def __init__(self, span: Span) -> None:
        _set(self, "span", span)


class If(Node):
    """``if cond … [else …] endif``."""

    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span

    def __init__(self, cond: Expr, body: tuple[Stmt, ...], orelse: tuple[Stmt, ...], span: Span) -> None:
        _set(self, "cond", cond)
        _set(self, "body", body)
        _set(self, "orelse", orelse)
        _set(self, "span", span)


class While(Node):
    """``while cond … endwhile``."""

    cond: Expr
    body: tuple[Stmt, ...]
    span: Span

    def __init__(self, cond: Expr, body: tuple[Stmt, ...], span: Span) -> None:
        _set(self, "cond", cond)
        _set(self, "body", body)
        _set(self, "span", span)


class ForEach(Node):
    """``for each var in iterable … endfor``."""

    var: str
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span

    def __init__(self, var: str, iterable: Expr, body: tuple[Stmt, ...], span: Span) -> None:
        _set(self, "var", var)
        _set(self, "iterable", iterable)
        _set(self, "body", body)
        _set(self, "span", span)


class OnError(Node):
    """``on error do … endon`` (hoisted: the first one of a procedure or command is its handler)."""

    body: tuple[Stmt, ...]
    span: Span

    def __init__(self, body: tuple[Stmt, ...], span: Span) -> None:
        _set(self, "body", body)
        _set(self, "span", span)


if TYPE_CHECKING:  # pragma: no cover
    Stmt = Union[Set, Call, Return, Emit, Must, Fail, ClearError, ClearEvent, Ask, Break, Continue, If, While,
                 ForEach, OnError]


# ---------------------------------------------------------------------------------------------
# Top level


class Procedure(Node):
    """``func name(needs … optional … returns …) means … endfunc``."""

    name: str
    needs: tuple[str, ...]
    optional: tuple[str, ...]
    returns: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]
    body: tuple[Stmt, ...]
    span: Span

    def __init__(self, name: str, needs: tuple[str, ...], optional: tuple[str, ...], returns: tuple[str, ...],
                 metadata: tuple[tuple[str, str], ...], body: tuple[Stmt, ...], span: Span) -> None:
        _set(self, "name", name)
        _set(self, "needs", needs)
        _set(self, "optional", optional)
        _set(self, "returns", returns)
        _set(self, "metadata", metadata)
        _set(self, "body", body)
        _set(self, "span", span)

    def signature(self) -> str:
        """``procedure name(needs a optional b returns r)`` as ``Script.ListFunctions`` shows it."""
        parts = []
        if self.needs:
            parts.append("needs " + ", ".join(self.needs))
        if self.optional:
            parts.append("optional " + ", ".join(self.optional))
        if self.returns:
            parts.append("returns " + ", ".join(self.returns))
        return f"procedure {self.name}({' '.join(parts)})"


class EventHandler(Node):
    """``on event expr [named "h"] [as v] do … endon`` (registered when expr is a string literal)."""

    event: Expr
    handler_name: str | None
    var: str | None
    body: tuple[Stmt, ...]
    span: Span

    def __init__(self, event: Expr, handler_name: str | None, var: str | None, body: tuple[Stmt, ...],
                 span: Span) -> None:
        _set(self, "event", event)
        _set(self, "handler_name", handler_name)
        _set(self, "var", var)
        _set(self, "body", body)
        _set(self, "span", span)


class CommandBlock(Node):
    """``command … endcommand``."""

    metadata: tuple[tuple[str, str], ...]
    body: tuple[Stmt, ...]
    span: Span

    def __init__(self, metadata: tuple[tuple[str, str], ...], body: tuple[Stmt, ...], span: Span) -> None:
        _set(self, "metadata", metadata)
        _set(self, "body", body)
        _set(self, "span", span)


class Program(Node):
    """One parsed source file: file metadata plus procedures, event handlers and command blocks."""

    source: str
    metadata: tuple[tuple[str, str], ...]
    procedures: tuple[Procedure, ...]
    event_handlers: tuple[EventHandler, ...]
    commands: tuple[CommandBlock, ...]
    span: Span

    def __init__(self, source: str, metadata: tuple[tuple[str, str], ...], procedures: tuple[Procedure, ...],
                 event_handlers: tuple[EventHandler, ...], commands: tuple[CommandBlock, ...], span: Span) -> None:
        _set(self, "source", source)
        _set(self, "metadata", metadata)
        _set(self, "procedures", procedures)
        _set(self, "event_handlers", event_handlers)
        _set(self, "commands", commands)
        _set(self, "span", span)
