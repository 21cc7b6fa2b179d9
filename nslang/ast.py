"""The NeuroScript abstract syntax tree: immutable (frozen), slotted dataclasses, data only.

Produced by :mod:`nslang._transformer` from Lark's parse tree; consumed by :mod:`nslang.compiler`
(closure compiler) and :mod:`nslang.unparse`. Class names mirror grammar rules. Every node carries a
:class:`~nslang.source.Span`. Behaviour lives elsewhere (house rule 5).
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass
from typing import Any, Union

from .source import Span


class _Frozen:
    """Immutability for AST nodes: a field can be set once (in ``__init__``) and never again.

    Equivalent to ``@dataclass(frozen=True)`` for slotted classes, without its start-up cost:
    ``frozen=True`` (and ``eq``/``repr``) generate several functions for every class with ``exec``,
    which made importing this module take 12 ms; with the shared methods here it takes about 3 ms.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, name):
            raise FrozenInstanceError(f"cannot assign to field {name!r} of an AST node")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r} of an AST node")

    # One __eq__ and __repr__ for all nodes (same behaviour as the generated ones, field by field),
    # instead of two generated functions per class. Nodes of one class and its subclasses (the parse
    # cache's LazyProcedure) share the class's dict of dataclass fields.
    def __eq__(self, other: object) -> bool:
        fields = self.__dataclass_fields__  # type: ignore[attr-defined]
        if getattr(other, "__dataclass_fields__", None) is not fields:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__dataclass_fields__)  # type: ignore[attr-defined]
        return f"{type(self).__name__}({fields})"

# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass(slots=True, eq=False, repr=False)
class Literal(_Frozen):
    """A constant: nil, true/false, a number or a (non-interpolated) string."""

    value: Any
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class RawString(_Frozen):
    """A ```…``` string (``interpolate=True``: ``{{name}}`` replaced at each evaluation) or '''…'''."""

    text: str
    interpolate: bool
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Placeholder(_Frozen):
    """``{{name}}`` used as an expression: the variable's value (``{{last}}``: the last result)."""

    name: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Variable(_Frozen):
    """A bare identifier."""

    name: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Last(_Frozen):
    """``last``: the last-result register."""

    span: Span


@dataclass(slots=True, eq=False, repr=False)
class BinOp(_Frozen):
    """``left op right`` for ``+ - * / % ** == != < <= > >= & | ^``."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class And(_Frozen):
    """``left and right`` (short-circuit, spec Part 1 extension 3)."""

    left: Expr
    right: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Or(_Frozen):
    """``left or right`` (short-circuit)."""

    left: Expr
    right: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class UnaryOp(_Frozen):
    """Prefix ``-``, ``~``, ``not``, ``no``, ``some``, ``must`` or ``typeof``."""

    op: str
    operand: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Index(_Frozen):
    """``target[index]``."""

    target: Expr
    index: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class ProcCall(_Frozen):
    """``name(args)``: a built-in function (case-insensitive) or a user procedure."""

    name: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class ToolCall(_Frozen):
    """``tool.group.Name(args, key: value)``."""

    path: str
    args: tuple[Expr, ...]
    named: tuple[tuple[str, Expr], ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Eval(_Frozen):
    """``eval(expr)``: the display string of expr with ``{{name}}`` placeholders substituted."""

    expr: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class ListLit(_Frozen):
    """``[a, b, …]``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class MapLit(_Frozen):
    """``{k: v, …}``; keys are expressions whose display string is the key; the last duplicate wins."""

    entries: tuple[tuple[Expr, Expr], ...]
    span: Span


Expr = Union[Literal, RawString, Placeholder, Variable, Last, BinOp, And, Or, UnaryOp, Index, ProcCall,
             ToolCall, Eval, ListLit, MapLit]


# ---------------------------------------------------------------------------------------------
# Assignment targets


@dataclass(slots=True, eq=False, repr=False)
class Field(_Frozen):
    """``.name`` step of an assignment target (a map key ``"name"``)."""

    name: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class LValue(_Frozen):
    """``name`` followed by ``[expr]`` and ``.field`` steps."""

    name: str
    path: tuple[Expr | Field, ...]
    span: Span


# ---------------------------------------------------------------------------------------------
# Statements


@dataclass(slots=True, eq=False, repr=False)
class Set(_Frozen):
    """``set a, b = expr``."""

    targets: tuple[LValue, ...]
    value: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Call(_Frozen):
    """``call callable``."""

    call: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Return(_Frozen):
    """``return`` / ``return e`` / ``return e1, e2`` (several values return a list)."""

    values: tuple[Expr, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Emit(_Frozen):
    """``emit expr``."""

    value: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Must(_Frozen):
    """``must expr`` (``mustbe callable`` is the same)."""

    value: Expr
    span: Span
    keyword: str = "must"


@dataclass(slots=True, eq=False, repr=False)
class Fail(_Frozen):
    """``fail`` / ``fail expr``."""

    value: Expr | None
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class ClearError(_Frozen):
    """``clear_error`` (only meaningful inside ``on error``)."""

    span: Span


@dataclass(slots=True, eq=False, repr=False)
class ClearEvent(_Frozen):
    """``clear event expr`` / ``clear event named "h"``: remove event handlers."""

    event: Expr | None
    handler_name: str | None
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Ask(_Frozen):
    """``ask prompt`` / ``ask worker, prompt [with options] [into target]``."""

    worker: Expr | None
    prompt: Expr
    options: Expr | None
    target: LValue | None
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Break(_Frozen):
    """``break``."""

    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Continue(_Frozen):
    """``continue``."""

    span: Span


@dataclass(slots=True, eq=False, repr=False)
class If(_Frozen):
    """``if cond … [else …] endif``."""

    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class While(_Frozen):
    """``while cond … endwhile``."""

    cond: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class ForEach(_Frozen):
    """``for each var in iterable … endfor``."""

    var: str
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class OnError(_Frozen):
    """``on error do … endon`` (hoisted: the first one of a procedure or command is its handler)."""

    body: tuple[Stmt, ...]
    span: Span


Stmt = Union[Set, Call, Return, Emit, Must, Fail, ClearError, ClearEvent, Ask, Break, Continue, If, While,
             ForEach, OnError]


# ---------------------------------------------------------------------------------------------
# Top level


@dataclass(slots=True, eq=False, repr=False)
class Procedure(_Frozen):
    """``func name(needs … optional … returns …) means … endfunc``."""

    name: str
    needs: tuple[str, ...]
    optional: tuple[str, ...]
    returns: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]
    body: tuple[Stmt, ...]
    span: Span

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


@dataclass(slots=True, eq=False, repr=False)
class EventHandler(_Frozen):
    """``on event expr [named "h"] [as v] do … endon`` (registered when expr is a string literal)."""

    event: Expr
    handler_name: str | None
    var: str | None
    body: tuple[Stmt, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class CommandBlock(_Frozen):
    """``command … endcommand``."""

    metadata: tuple[tuple[str, str], ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Program(_Frozen):
    """One parsed source file: file metadata plus procedures, event handlers and command blocks."""

    source: str
    metadata: tuple[tuple[str, str], ...]
    procedures: tuple[Procedure, ...]
    event_handlers: tuple[EventHandler, ...]
    commands: tuple[CommandBlock, ...]
    span: Span
