"""The NeuroScript abstract syntax tree: frozen, slotted dataclasses, data only.

Produced by :mod:`nslang._transformer` from Lark's parse tree; consumed by :mod:`nslang.compiler`
(closure compiler) and :mod:`nslang.unparse`. Class names mirror grammar rules. Every node carries a
:class:`~nslang.source.Span`. Behaviour lives elsewhere (house rule 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .source import Span

# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: nil, true/false, a number or a (non-interpolated) string."""

    value: Any
    span: Span


@dataclass(frozen=True, slots=True)
class RawString:
    """A ```…``` string (``interpolate=True``: ``{{name}}`` replaced at each evaluation) or '''…'''."""

    text: str
    interpolate: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Placeholder:
    """``{{name}}`` used as an expression: the variable's value (``{{last}}``: the last result)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Variable:
    """A bare identifier."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Last:
    """``last``: the last-result register."""

    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    """``left op right`` for ``+ - * / % ** == != < <= > >= & | ^``."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    """``left and right`` (short-circuit, spec Part 1 extension 3)."""

    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Or:
    """``left or right`` (short-circuit)."""

    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class UnaryOp:
    """Prefix ``-``, ``~``, ``not``, ``no``, ``some``, ``must`` or ``typeof``."""

    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Index:
    """``target[index]``."""

    target: Expr
    index: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ProcCall:
    """``name(args)``: a built-in function (case-insensitive) or a user procedure."""

    name: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ToolCall:
    """``tool.group.Name(args, key: value)``."""

    path: str
    args: tuple[Expr, ...]
    named: tuple[tuple[str, Expr], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Eval:
    """``eval(expr)``: the display string of expr with ``{{name}}`` placeholders substituted."""

    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ListLit:
    """``[a, b, …]``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MapLit:
    """``{k: v, …}``; keys are expressions whose display string is the key; the last duplicate wins."""

    entries: tuple[tuple[Expr, Expr], ...]
    span: Span


Expr = Union[Literal, RawString, Placeholder, Variable, Last, BinOp, And, Or, UnaryOp, Index, ProcCall,
             ToolCall, Eval, ListLit, MapLit]


# ---------------------------------------------------------------------------------------------
# Assignment targets


@dataclass(frozen=True, slots=True)
class Field:
    """``.name`` step of an assignment target (a map key ``"name"``)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class LValue:
    """``name`` followed by ``[expr]`` and ``.field`` steps."""

    name: str
    path: tuple[Expr | Field, ...]
    span: Span


# ---------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True, slots=True)
class Set:
    """``set a, b = expr``."""

    targets: tuple[LValue, ...]
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """``call callable``."""

    call: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Return:
    """``return`` / ``return e`` / ``return e1, e2`` (several values return a list)."""

    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Emit:
    """``emit expr``."""

    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Must:
    """``must expr`` (``mustbe callable`` is the same)."""

    value: Expr
    span: Span
    keyword: str = "must"


@dataclass(frozen=True, slots=True)
class Fail:
    """``fail`` / ``fail expr``."""

    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class ClearError:
    """``clear_error`` (only meaningful inside ``on error``)."""

    span: Span


@dataclass(frozen=True, slots=True)
class ClearEvent:
    """``clear event expr`` / ``clear event named "h"``: remove event handlers."""

    event: Expr | None
    handler_name: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Ask:
    """``ask prompt`` / ``ask worker, prompt [with options] [into target]``."""

    worker: Expr | None
    prompt: Expr
    options: Expr | None
    target: LValue | None
    span: Span


@dataclass(frozen=True, slots=True)
class Break:
    """``break``."""

    span: Span


@dataclass(frozen=True, slots=True)
class Continue:
    """``continue``."""

    span: Span


@dataclass(frozen=True, slots=True)
class If:
    """``if cond … [else …] endif``."""

    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class While:
    """``while cond … endwhile``."""

    cond: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ForEach:
    """``for each var in iterable … endfor``."""

    var: str
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class OnError:
    """``on error do … endon`` (hoisted: the first one of a procedure or command is its handler)."""

    body: tuple[Stmt, ...]
    span: Span


Stmt = Union[Set, Call, Return, Emit, Must, Fail, ClearError, ClearEvent, Ask, Break, Continue, If, While,
             ForEach, OnError]


# ---------------------------------------------------------------------------------------------
# Top level


@dataclass(frozen=True, slots=True)
class Procedure:
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


@dataclass(frozen=True, slots=True)
class EventHandler:
    """``on event expr [named "h"] [as v] do … endon`` (registered when expr is a string literal)."""

    event: Expr
    handler_name: str | None
    var: str | None
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CommandBlock:
    """``command … endcommand``."""

    metadata: tuple[tuple[str, str], ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Program:
    """One parsed source file: file metadata plus procedures, event handlers and command blocks."""

    source: str
    metadata: tuple[tuple[str, str], ...]
    procedures: tuple[Procedure, ...]
    event_handlers: tuple[EventHandler, ...]
    commands: tuple[CommandBlock, ...]
    span: Span
