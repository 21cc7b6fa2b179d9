"""Lark parse tree → :mod:`nslang.ast`, with the checks upstream's AST builder made after parsing.

Build-time checks (spec/language.md Appendix B): keywords used as names, string escapes (``\\x`` and
octal are rejected), metadata with an empty key, non-empty blocks, ``return`` and ``on event`` in
command blocks, duplicate procedures in one file. ``on event`` inside a function is hoisted to
program level; ``mustbe`` becomes ``must``.
"""

from __future__ import annotations

from lark import Token, Transformer, Tree, v_args

from . import ast as A
from .errors import ErrorCode, NSSyntaxError, NSValidationError
from .source import Span
from .values import string_number

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["KEYWORDS", "ToAST", "parse_metadata", "unescape"]

#: The 60 keywords of NeuroScript 0.4.2 (spec §1.2); none may be used as a name.
KEYWORDS = frozenset(
    """acos and as asin ask atan break call clear clear_error command continue cos do each else emit
    endcommand endfor endfunc endif endon endwhile error eval event fail false for func fuzzy if in into
    last len ln log means must mustbe named needs nil no not on optional or return returns set sin some
    tan timedate tool true typeof while""".split()
)

_SIMPLE_ESCAPES = {
    "b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "v": "\v", "~": "~", "`": "`",
    '"': '"', "'": "'", "\\": "\\",
}


def unescape(body: str, span: Span) -> str:
    """Undo the escapes of a quoted string body (0.4.2 builder rules, §1.5).

    Raises:
        NSValidationError: an escape the builder rejects (``\\x41``, octal, ``\\q``…), code 15.
    """
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < n else ""
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt == "\n":  # line continuation: drop backslash and newline, keep what follows
            i += 2
        elif nxt == "\r":
            i += 3 if body[i + 2 : i + 3] == "\n" else 2
        elif nxt == "u" and len(body) >= i + 6:
            hexdigits = body[i + 2 : i + 6]
            try:
                code = int(hexdigits, 16)
            except ValueError:
                raise _bad_escape(body[i : i + 6], span) from None
            i += 6
            if 0xD800 <= code < 0xDC00 and body[i : i + 2] == "\\u":
                try:
                    low = int(body[i + 2 : i + 6], 16)
                except ValueError:
                    low = 0
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
            out.append(chr(code))
        else:
            raise _bad_escape("\\" + nxt, span)
    return "".join(out)


def _bad_escape(seq: str, span: Span) -> NSValidationError:
    return NSValidationError(
        f"unknown escape sequence {seq!r} in string (allowed: \\n \\t \\r \\b \\f \\v \\\\ \\\" \\' \\uXXXX)",
        span=span,
    )


def parse_metadata(text: str, span: Span) -> tuple[str, str]:
    """``:: key: value`` → (key, value) per §1.8; no colon → (text, ""); empty key is an error."""
    body = text.strip()
    assert body.startswith("::")
    body = body[2:].strip()
    key, sep, value = body.partition(":")
    key = key.strip()
    if not key:
        raise NSValidationError("metadata line has an empty key (write ':: key: value')", span=span)
    return key, value.strip() if sep else ""


#: Token types that carry data; every other token (keywords, punctuation, newlines) is only kept by the
#: parser (``keep_all_tokens``) for its position and is dropped before the rule callbacks run.
_DATA_TOKENS = frozenset({"NAME", "NUMBER", "STRING", "RAW_STRING", "RAW_STRING3", "METADATA"})


class _Name(str):
    """A built-in function name that remembers its position (for the span of the call)."""

    span: Span

    def __new__(cls, value: str, span: Span) -> _Name:
        obj = super().__new__(cls, value)
        obj.span = span
        return obj


def _start_of(c: Any) -> tuple[int, int] | None:
    if isinstance(c, Token):
        return (c.line, c.column) if c.line is not None else None
    span = getattr(c, "span", None)
    if span is not None:
        return (span.line, span.column)
    if isinstance(c, list):
        for x in c:
            pos = _start_of(x)
            if pos is not None:
                return pos
    return None


def _end_of(c: Any) -> tuple[int, int] | None:
    if isinstance(c, Token):
        return (c.end_line, c.end_column) if c.end_line is not None else None
    span = getattr(c, "span", None)
    if span is not None:
        return (span.end_line, span.end_column) if span.end_line else (span.line, span.column + 1)
    if isinstance(c, list):
        for x in reversed(c):
            pos = _end_of(x)
            if pos is not None:
                return pos
    return None


#: rule name -> (plain function taking self, wants its span): resolved once, because Lark's v_args wrapper
#: builds a new bound wrapper (functools.update_wrapper) on every attribute access. A method marked with
#: ``v_args(meta=True)`` is called as ``method(self, span, items)``: its rule's :class:`Span`, computed
#: from the children's positions (cheaper than Lark's propagate_positions and its meta objects).
_DISPATCH: dict[str, tuple[Any, bool]] = {}


def _dispatch_entry(cls: type, name: str) -> tuple[Any, bool]:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            base = getattr(attr, "base_func", None)
            if base is not None:
                return base, True
            return attr, False
    return None, False


class ToAST(Transformer):  # type: ignore[type-arg]
    """The Lark transformer. One instance per parse (it knows the source name)."""

    def __init__(self, source: str) -> None:
        super().__init__(visit_tokens=False)
        self.source = source
        self.hoisted_events: list[A.EventHandler] = []

    def _call_userfunc(self, tree: Tree, new_children: list[Any] | None = None) -> Any:  # type: ignore[override]
        return self.apply(tree.data, tree.children if new_children is None else new_children)

    def apply(self, data: str, children: list[Any]) -> Any:
        """Build the AST object for rule ``data`` from its (already built) children.

        Used both as a tree transformer and as Lark's inline callback during parsing. The span of a
        rule runs from its first child's start to its last child's end (``Span(source, 1, 1)`` when no
        child has a position); it is computed only for methods that take it (issue 16 item 4).
        """
        if data == "builtin_name":
            tok = children[0]
            return _Name(str(tok), self._tspan(tok))
        entry = _DISPATCH.get(data)
        if entry is None:
            entry = _DISPATCH[data] = _dispatch_entry(type(self), data)
        func, wants_span = entry
        items = [c for c in children if type(c) is not Token or c.type in _DATA_TOKENS]
        if func is not None and not wants_span:
            return func(self, items)
        first = last = None
        for c in children:
            first = _start_of(c)
            if first is not None:
                break
        for c in reversed(children):
            last = _end_of(c)
            if last is not None:
                break
        if first is None:
            span = Span(self.source, 1, 1)
        else:
            span = Span(self.source, first[0], first[1], *(last or first))
        if func is None:
            return self.__default__(data, items, span)
        return func(self, span, items)

    def primary(self, items: list[Any]) -> Any:
        """``( expr )``: the parentheses only group."""
        return items[0]

    # -- helpers -------------------------------------------------------------------------------

    def _tspan(self, tok: Token) -> Span:
        return Span(self.source, tok.line or 1, tok.column or 1, tok.end_line or 0, tok.end_column or 0)

    def _name(self, tok: Token) -> str:
        name = str(tok)
        if name in KEYWORDS:
            raise NSSyntaxError(f"'{name}' is a keyword and cannot be used as a name", span=self._tspan(tok))
        return name

    def _body(self, items: Any, span: Span, what: str) -> tuple[Any, ...]:
        stmts = tuple(s for s in items if s is not None)
        if not stmts:
            raise NSSyntaxError(f"{what} needs at least one statement", span=span)
        return stmts

    # -- top level -----------------------------------------------------------------------------

    @v_args(meta=True)
    def start(self, span: Span, items: list[Any]) -> A.Program:
        metadata: list[tuple[str, str]] = []
        procs: list[A.Procedure] = []
        events: list[A.EventHandler] = []
        commands: list[A.CommandBlock] = []
        seen: dict[str, A.Procedure] = {}
        for it in items:
            if isinstance(it, tuple):
                metadata.append(it)
            elif isinstance(it, A.Procedure):
                if it.name in seen:
                    first = seen[it.name].span
                    raise NSValidationError(
                        f"duplicate procedure definition '{it.name}' (first defined at {first.location()})",
                        code=ErrorCode.DUPLICATE, span=it.span,
                    )
                seen[it.name] = it
                procs.append(it)
            elif isinstance(it, A.EventHandler):
                events.append(it)
            elif isinstance(it, A.CommandBlock):
                commands.append(it)
        events.extend(self.hoisted_events)
        return A.Program(self.source, tuple(metadata), tuple(procs), tuple(events), tuple(commands),
                         span)

    def metadata(self, items: list[Token]) -> tuple[str, str]:
        return parse_metadata(str(items[0]), self._tspan(items[0]))

    @v_args(meta=True)
    def func_def(self, span: Span, items: list[Any]) -> A.Procedure:
        name_tok, sig = items[0], items[1]
        md = [m for m in items[2:-1] if isinstance(m, tuple)]
        body_stmts = items[-1]
        needs: list[str] = []
        optional: list[str] = []
        returns: list[str] = []
        for kind, names in sig:
            {"needs": needs, "optional": optional, "returns": returns}[kind].extend(names)
        params = needs + optional
        if len(set(params)) != len(params):
            raise NSSyntaxError(f"procedure '{name_tok}' names a parameter twice", span=span)
        body = self._body(body_stmts, span, f"procedure '{name_tok}'")
        return A.Procedure(self._name(name_tok), tuple(needs), tuple(optional), tuple(returns), tuple(md), body, span)

    def signature(self, items: list[Any]) -> list[tuple[str, list[str]]]:
        return [c for c in items if c is not None]

    def needs_clause(self, items: list[Token]) -> tuple[str, list[str]]:
        return ("needs", [self._name(t) for t in items])

    def optional_clause(self, items: list[Token]) -> tuple[str, list[str]]:
        return ("optional", [self._name(t) for t in items])

    def returns_clause(self, items: list[Token]) -> tuple[str, list[str]]:
        return ("returns", [self._name(t) for t in items])

    @v_args(meta=True)
    def command_block(self, span: Span, items: list[Any]) -> A.CommandBlock:
        md = [m for m in items[:-1] if isinstance(m, tuple)]
        body = self._body(items[-1], span, "command block")
        _check_command_body(body)
        return A.CommandBlock(tuple(md), body, span)

    @v_args(meta=True)
    def event_handler(self, span: Span, items: list[Any]) -> A.EventHandler:
        event, name, var, body = items
        return A.EventHandler(event, name, var, self._body(body, span, "on event"), span)

    def event_name(self, items: list[Token]) -> str:
        return unescape(str(items[0])[1:-1], self._tspan(items[0]))

    def event_var(self, items: list[Token]) -> str:
        return self._name(items[0])

    def body(self, items: list[Any]) -> list[Any]:
        out = []
        for s in items:
            if isinstance(s, A.EventHandler):  # `on event` inside a function: hoisted (upstream builder)
                self.hoisted_events.append(s)
            elif s is not None:
                out.append(s)
        return out

    # -- statements ----------------------------------------------------------------------------

    @v_args(meta=True)
    def set_stmt(self, span: Span, items: list[Any]) -> A.Set:
        return A.Set(tuple(items[:-1]), items[-1], span)

    @v_args(meta=True)
    def call_stmt(self, span: Span, items: list[Any]) -> A.Call:
        return A.Call(items[0], span)

    @v_args(meta=True)
    def return_stmt(self, span: Span, items: list[Any]) -> A.Return:
        return A.Return(tuple(i for i in items if i is not None), span)

    @v_args(meta=True)
    def emit_stmt(self, span: Span, items: list[Any]) -> A.Emit:
        return A.Emit(items[0], span)

    @v_args(meta=True)
    def must_stmt(self, span: Span, items: list[Any]) -> A.Must:
        return A.Must(items[0], span)

    @v_args(meta=True)
    def mustbe_stmt(self, span: Span, items: list[Any]) -> A.Must:
        return A.Must(items[0], span, "mustbe")

    @v_args(meta=True)
    def fail_stmt(self, span: Span, items: list[Any]) -> A.Fail:
        return A.Fail(items[0] if items else None, span)

    @v_args(meta=True)
    def clear_error_stmt(self, span: Span, items: list[Any]) -> A.ClearError:
        return A.ClearError(span)

    @v_args(meta=True)
    def clear_event_stmt(self, span: Span, items: list[Any]) -> A.ClearEvent:
        item = items[0]
        if isinstance(item, Token):
            return A.ClearEvent(None, unescape(str(item)[1:-1], self._tspan(item)), span)
        return A.ClearEvent(item, None, span)

    @v_args(meta=True)
    def ask_stmt(self, span: Span, items: list[Any]) -> A.Ask:
        exprs = [i for i in items if not isinstance(i, tuple)]
        opts = [i[1] for i in items if isinstance(i, tuple) and i[0] == "with"]
        into = [i[1] for i in items if isinstance(i, tuple) and i[0] == "into"]
        worker, prompt = (exprs[0], exprs[1]) if len(exprs) == 2 else (None, exprs[0])
        return A.Ask(worker, prompt, opts[0] if opts else None, into[0] if into else None, span)

    def ask_with(self, items: list[Any]) -> tuple[str, Any]:
        return ("with", items[0])

    def ask_into(self, items: list[Any]) -> tuple[str, Any]:
        return ("into", items[0])

    @v_args(meta=True)
    def break_stmt(self, span: Span, items: list[Any]) -> A.Break:
        return A.Break(span)

    @v_args(meta=True)
    def continue_stmt(self, span: Span, items: list[Any]) -> A.Continue:
        return A.Continue(span)

    @v_args(meta=True)
    def if_stmt(self, span: Span, items: list[Any]) -> A.If:
        cond, body, orelse = items
        return A.If(cond, self._body(body, span, "if"), tuple(orelse) if orelse is not None else (), span)

    @v_args(meta=True)
    def else_clause(self, span: Span, items: list[Any]) -> tuple[Any, ...]:
        return self._body(items[0], span, "else")

    @v_args(meta=True)
    def while_stmt(self, span: Span, items: list[Any]) -> A.While:
        return A.While(items[0], self._body(items[1], span, "while"), span)

    @v_args(meta=True)
    def for_stmt(self, span: Span, items: list[Any]) -> A.ForEach:
        return A.ForEach(self._name(items[0]), items[1], self._body(items[2], span, "for each"), span)

    @v_args(meta=True)
    def on_error(self, span: Span, items: list[Any]) -> A.OnError:
        return A.OnError(self._body(items[0], span, "on error"), span)

    @v_args(meta=True)
    def lvalue(self, span: Span, items: list[Any]) -> A.LValue:
        return A.LValue(self._name(items[0]), tuple(items[1:]), span)

    def index_accessor(self, items: list[Any]) -> Any:
        return items[0]

    def field_accessor(self, items: list[Token]) -> A.Field:
        return A.Field(self._name(items[0]), self._tspan(items[0]))

    # -- expressions ---------------------------------------------------------------------------

    def _bin(op: str) -> Any:  # type: ignore[misc]  # noqa: N805
        @v_args(meta=True)
        def method(self: ToAST, span: Span, items: list[Any]) -> A.BinOp:
            return A.BinOp(op, items[0], items[1], span)

        return method

    add = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    div = _bin("/")
    mod = _bin("%")
    pow = _bin("**")
    eq = _bin("==")
    ne = _bin("!=")
    lt = _bin("<")
    le = _bin("<=")
    gt = _bin(">")
    ge = _bin(">=")
    band = _bin("&")
    bor = _bin("|")
    bxor = _bin("^")

    def _un(op: str) -> Any:  # type: ignore[misc]  # noqa: N805
        @v_args(meta=True)
        def method(self: ToAST, span: Span, items: list[Any]) -> A.UnaryOp:
            return A.UnaryOp(op, items[0], span)

        return method

    neg = _un("-")
    bitnot = _un("~")
    not_op = _un("not")
    no_op = _un("no")
    some_op = _un("some")
    must_op = _un("must")
    typeof_op = _un("typeof")

    @v_args(meta=True)
    def and_op(self, span: Span, items: list[Any]) -> A.And:
        return A.And(items[0], items[1], span)

    @v_args(meta=True)
    def or_op(self, span: Span, items: list[Any]) -> A.Or:
        return A.Or(items[0], items[1], span)

    @v_args(meta=True)
    def index(self, span: Span, items: list[Any]) -> A.Index:
        return A.Index(items[0], items[1], span)

    @v_args(meta=True)
    def placeholder(self, span: Span, items: list[Token]) -> A.Placeholder:
        return A.Placeholder(self._name(items[0]), span)

    @v_args(meta=True)
    def placeholder_last(self, span: Span, items: list[Any]) -> A.Placeholder:
        return A.Placeholder("last", span)

    def variable(self, items: list[Token]) -> A.Variable:
        return A.Variable(self._name(items[0]), self._tspan(items[0]))

    @v_args(meta=True)
    def last(self, span: Span, items: list[Any]) -> A.Last:
        return A.Last(span)

    @v_args(meta=True)
    def proc_call(self, span: Span, items: list[Any]) -> A.ProcCall:
        return A.ProcCall(self._name(items[0]), tuple(a for a in items[1:] if a is not None), span)

    @v_args(meta=True)
    def builtin_call(self, span: Span, items: list[Any]) -> A.ProcCall:
        return A.ProcCall(str(items[0]), tuple(a for a in items[1:] if a is not None), span)

    def builtin_name(self, items: list[Token]) -> str:
        return str(items[0])

    @v_args(meta=True)
    def tool_call(self, span: Span, items: list[Any]) -> A.ToolCall:
        path = items[0]
        args: list[Any] = []
        named: list[tuple[str, Any]] = []
        for a in items[1:]:
            if a is None:
                continue
            if isinstance(a, tuple):
                if any(n == a[0] for n, _ in named):
                    raise NSSyntaxError(f"named argument '{a[0]}' given twice in call to tool.{path}", span=span)
                named.append(a)
            else:
                if named:
                    raise NSSyntaxError(
                        f"positional argument after a named argument in call to tool.{path}", span=span
                    )
                args.append(a)
        return A.ToolCall(path, tuple(args), tuple(named), span)

    def tool_path(self, items: list[Token]) -> str:
        # a keyword is a fine segment (tool.error.New): after "tool." the contextual lexer reads it as a
        # NAME; upstream 0.4.2 rejected it, nslang accepts it (issue 15, an additive extension)
        return ".".join(str(t) for t in items)

    def named_arg(self, items: list[Any]) -> tuple[str, Any]:
        return (str(items[0]), items[1])

    @v_args(meta=True)
    def eval_expr(self, span: Span, items: list[Any]) -> A.Eval:
        return A.Eval(items[0], span)

    @v_args(meta=True)
    def list_literal(self, span: Span, items: list[Any]) -> A.ListLit:
        return A.ListLit(tuple(i for i in items if i is not None), span)

    @v_args(meta=True)
    def map_literal(self, span: Span, items: list[Any]) -> A.MapLit:
        return A.MapLit(tuple(i for i in items if i is not None), span)

    def map_entry(self, items: list[Any]) -> tuple[Any, Any]:
        return (items[0], items[1])

    def string(self, items: list[Token]) -> A.Literal:
        tok = items[0]
        span = self._tspan(tok)
        return A.Literal(unescape(str(tok)[1:-1], span), span)

    def raw_string(self, items: list[Token]) -> A.RawString:
        return A.RawString(str(items[0])[3:-3], True, self._tspan(items[0]))

    def raw_string3(self, items: list[Token]) -> A.RawString:
        return A.RawString(str(items[0])[3:-3], False, self._tspan(items[0]))

    def number(self, items: list[Token]) -> A.Literal:
        text = str(items[0])
        # exact int up to values.MAX_INT_DIGITS digits, else a float (like 1e999): never Python's digit error
        n = string_number(text) if text.isdigit() else None
        value: int | float = float(text) if n is None else n
        return A.Literal(value, self._tspan(items[0]))

    @v_args(meta=True)
    def true(self, span: Span, items: list[Any]) -> A.Literal:
        return A.Literal(True, span)

    @v_args(meta=True)
    def false(self, span: Span, items: list[Any]) -> A.Literal:
        return A.Literal(False, span)

    @v_args(meta=True)
    def nil(self, span: Span, items: list[Any]) -> A.Literal:
        return A.Literal(None, span)

    def __default__(self, data: str, children: list[Any], span: Span) -> Any:
        raise NSSyntaxError(f"internal: unhandled grammar rule {data!r}")  # pragma: no cover


def _check_command_body(body: tuple[Any, ...]) -> None:
    """``return`` is not allowed in a command block, at any depth (§2)."""
    for s in body:
        if isinstance(s, A.Return):
            raise NSSyntaxError("'return' is not allowed in a command block", span=s.span)
        for attr in ("body", "orelse"):
            inner = getattr(s, attr, None)
            if inner:
                _check_command_body(inner)


_ = Tree  # re-exported type for annotations in parser.py


class InlineCallbacks:
    """Lark's embedded transformer: for every rule it returns a callback that forwards to the
    :class:`ToAST` of the parse in progress on this thread (``current``), so no parse tree is built."""

    def __init__(self) -> None:
        import threading

        self._local = threading.local()

    @property
    def current(self) -> ToAST:
        cur: ToAST = self._local.current
        return cur

    @current.setter
    def current(self, value: ToAST | None) -> None:
        self._local.current = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not name.islower():  # terminals (lexer callbacks) are not ours
            raise AttributeError(name)
        local = self._local

        def callback(children: list[Any]) -> Any:
            return local.current.apply(name, children)

        return callback
