"""AST → Python source → one Python function per procedure, command block and handler (the compiler).

Pipeline position: ``parser`` gives an :class:`~nslang.ast.Program`; the
:class:`~nslang.interpreter.Interpreter` asks this module to compile each procedure (lazily, on first
call), command block and event handler. There is one back end: every body, ``on error`` handlers
included, is written out as Python source and compiled by Python; nothing dispatches on node types
at run time. The rules behind the inline fast paths live in :mod:`nslang._runtime` and
:mod:`nslang.values`, called from the generated code for every case the inline code does not take.

Conventions of the generated code:

* A procedure ``p(needs a, optional b)`` becomes ``P_p(_d, v_a, v_b=None)``: ``_d`` is its call depth,
  and its variables are Python locals named ``v_<name>``. A variable that is not assigned yet holds
  :data:`~nslang._runtime.UNSET`, and a read of it falls back to the globals (spec §4.7); a read the
  compiler proves always assigned (definite assignment over ``if``/loops) is a plain local read.
  Variables whose every assignment gives an int (``set i = 0`` … ``set i = i + 1``) are known to be
  ints, so their arithmetic and comparisons run without type tests.
* Generated code calls another procedure directly (``P_q(_d + 1, x)``) when the callee exists with a
  matching arity at compile time; else through ``call_dyn``, which resolves it at run time (stdlib,
  procedures defined later, arity error 2). Redefining a procedure drops all compiled code.
* Command blocks and ``on event`` bodies keep their variables in a dict (the interpreter's globals,
  or the event frame): ``f[name]``.
* ``return``/``break``/``continue`` are Python's own; a ``break`` outside a loop or a ``return`` in a
  handler is an error raised where it stands (codes 12, 39 as before).
* A body with an ``on error`` handler runs each statement (the head of an ``if``/loop) in a ``try``;
  the handler is a nested function over the same locals (spec §5.3; one handler per body, hoisted).
* Errors are :class:`~nslang.errors.NSRuntimeError` with the span of the failing node; procedure calls
  add NeuroScript call-stack frames as errors pass through them.

Generated code only ever contains identifiers from the AST (checked by the grammar), Python literals
of ints, bools, None and strings (``repr``), and references to other constants by index; no source
text is pasted into it.
"""

from __future__ import annotations

from . import ast as A
from . import values as V
from ._astfacts import assigned, call_nesting, find_handler, implicit_result, reads_last, walk
from ._kinds import (
    BOOL,
    INT,
    NSTR,
    STR,
    STRS,
    concat_kind,
    infer_kinds,
    literal_kind,
    maybe_str,
    param_uses,
    plain_str,
    recur_kind,
)
from ._runtime import SLOW, codespace, placeholder_re
from ._stack import note_procedure
from .builtins import BUILTINS
from .errors import ErrorCode, NSRuntimeError
from .source import Span

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable
    from typing import Any

    from .interpreter import Interpreter

__all__ = ["CompiledProcedure", "Compiler", "forget_compiled", "implicit_result"]

if TYPE_CHECKING:  # pragma: no cover
    Frame = dict[str, Any]

#: the entry checks of parameters by kind (a procedure's checked copy, issue 16 item 2)
_ENTRY_TEST = {INT: "type({v}) is int", STR: "type({v}) is str", NSTR: "type({v}) is str and nonnum({v})"}
#: ints in this range are written into generated code as literals
_SMALL = 1 << 62
_CATCH = "(NSRuntimeError, MemoryError)"
_CMP = {"<", "<=", ">", ">="}


class _TooDeep(Exception):
    """The body nests blocks more deeply than Python's compiler accepts."""


class CompiledProcedure:
    """A procedure of the interpreter's table, compiled on its first call.

    Attributes:
        node: its AST. fn: the generated function ``fn(depth, *args)`` once compiled, else None.
        nreq, nmax: how many arguments it takes (needs; needs + optional).
    """

    __slots__ = ("node", "interp", "name", "fn", "nreq", "nmax")

    def __init__(self, node: A.Procedure, interp: Interpreter) -> None:
        self.node = node
        self.name = node.name
        self.interp = interp
        self.fn: Callable[..., Any] | None = None
        self.nreq = len(node.needs)
        self.nmax = self.nreq + len(node.optional)

    def compiled(self, depth: int) -> Callable[..., Any]:
        """The generated function, compiled now if needed (``depth``: the caller's call depth).

        Raises:
            NSRuntimeError: code 38 when the body nests blocks too deeply to compile.
        """
        fn = self.fn
        if fn is None:
            rt = self.interp
            fn = self.fn = Compiler(rt).procedure(self.node)
            if rt.procedures_table.get(self.name) is self:
                codespace(rt)["P_" + self.name] = fn
            note_procedure(rt, call_nesting(self.node.body), depth)
        return fn

    def arity_error(self, n: int) -> NSRuntimeError:
        """Error 2 (the ProcNotFound family, as upstream wraps it) for a call with ``n`` arguments."""
        want = f"{self.nreq}" if self.nreq == self.nmax else f"{self.nreq} to {self.nmax}"
        return NSRuntimeError(f"procedure '{self.name}' takes {want} argument{'s' if self.nmax != 1 else ''}, got {n}",
                              code=ErrorCode.PROC_NOT_FOUND)

    def invoke(self, args: list[Any]) -> Any:
        """Call from the host side (a tool, :meth:`Interpreter.call`): one level below the depth the
        interpreter is at (``interp.depth``, set by generated code before every tool call)."""
        rt = self.interp
        d = rt.depth
        fn = self.compiled(d)
        if not self.nreq <= len(args) <= self.nmax:
            raise self.arity_error(len(args))
        try:
            return fn(d + 1, *args)
        finally:
            rt.depth = d


class Compiler:
    """Compiles AST nodes for one :class:`~nslang.interpreter.Interpreter` (the runtime)."""

    def __init__(self, interp: Interpreter) -> None:
        self.rt = interp

    def procedure(self, p: A.Procedure) -> Callable[..., Any]:
        """Compile ``p`` into ``fn(depth, *args)`` (arity is checked by the caller).

        The call depth limit is code 37; a wrong number of values for a multi-name ``returns`` clause
        is code 2; a body nested too deeply for Python's compiler is code 38 (raised here).
        """
        fn: Callable[..., Any] = _generating(p.name, p.span, self._procedure, p)
        return fn

    def _procedure(self, p: A.Procedure) -> Callable[..., Any]:
        handler = find_handler(p.body)
        implicit, final = implicit_result(p.body)
        params = p.needs + p.optional
        g = _Gen(self, p.name, "procedure", locals_=True,
                 tracks_last=reads_last(p.body) or (implicit and final is None), handler=handler is not None)
        g.track_stmt = final
        g.returns = p.returns
        g.proc_span = p.span
        g.params = params
        g.assigned = assigned(p.body) | set(params)
        if handler is not None:
            g.assigned |= {"system_error_message", "system_error_code"}
        fname = "P_" + p.name
        sig = ", ".join(["_d", *(f"v_{n}" for n in p.needs), *(f"v_{n}=None" for n in p.optional)])
        g.emit(1, f"def {fname}({sig}):")
        args = "".join(f"v_{n}, " for n in params)
        g.emit(2, f"if _d > CPV: return deep({fname}, {p.name!r}, _d, ({args}))")
        g.emit(2, "if BUDGET: charge(1)")  # (a step budget or a deadline in force: Interpreter.watch_budget)
        unset = sorted(g.assigned - set(params))
        if unset:
            g.emit(2, " = ".join(f"v_{n}" for n in unset) + " = U")
        if g.tracks_last or implicit:
            g.emit(2, "_last = None")
        if handler is not None:
            g.handler_def(handler, 2)
            g.defined = set(params)
            g.block(p.body, 2)
        else:
            # parameters used as numbers that stay ints: their types are checked once, here, and a
            # copy of the body runs without type tests on them (issue 16 item 2)
            nums, strs = param_uses(p.body, p.name, params)
            local = g.assigned - set(params)
            generic = infer_kinds(p.body, set(params), local, set(), set())[0]
            kinds = infer_kinds(p.body, set(params), local, nums, strs)[0] if nums or strs else generic
            assumed = [n for n in params if n in kinds]
            if assumed:
                entry = {n: kinds[n] for n in assumed}
                if not implicit and any(isinstance(n, A.ProcCall) and n.name == p.name for n in walk(p.body)):
                    # a self-recursive call with arguments of the checked kinds returns what this copy
                    # returns: ints, if every ``return`` gives an int when the calls do
                    recur = (p.name, params, entry, INT)
                    again, rets = infer_kinds(p.body, set(params), local, nums, strs, recur)
                    if rets == {INT} and all(again.get(n) == k for n, k in entry.items()):
                        kinds, g.recur = again, recur
                test = " and ".join(_ENTRY_TEST[kinds[n]].format(v=f"v_{n}") for n in assumed)
                g.emit(2, f"if {test}:")
                g.defined, g.kinds = set(params), kinds
                g.block(p.body, 3)
                g.emit(3, f"return {g.ret_value('_last', 1)}" if implicit else "return None")
                g.recur = None
            g.defined, g.kinds = set(params), generic
            g.block(p.body, 2)
        if implicit:
            g.emit(2, f"return {g.ret_value('_last', 1)}")
        return g.build(fname, p.span)

    def command(self, c: A.CommandBlock, index: int) -> Callable[[Frame], Any]:
        """Compile a command block into ``run(globals_frame)``."""
        handler = find_handler(c.body)
        name = f"command #{index}"
        g = _Gen(self, name, "command", locals_=False,
                 tracks_last=reads_last(c.body) or self.rt.commands_track_last, handler=handler is not None)
        run: Callable[[Frame], Any] = _generating(name, c.span, self._dict_body, g, c.body, handler, f"C_{index}",
                                                  c.span)
        return run

    def event_body(self, h: A.EventHandler) -> Callable[[Frame], Any]:
        """Compile an ``on event`` body into ``run(frame)``; it runs in handler mode (``return`` is code 12)."""
        g = _Gen(self, "on event", "event", locals_=False, tracks_last=reads_last(h.body), handler=False)
        g.in_handler = True
        run: Callable[[Frame], Any] = _generating("on event", h.span, self._dict_body, g, h.body, None, "E_", h.span)
        return run

    def _dict_body(self, g: _Gen, body: tuple[A.Stmt, ...], handler: A.OnError | None, fname: str,
                   span: Span) -> Callable[[Frame], Any]:
        g.emit(1, f"def {fname}(f):")
        g.emit(2, "_d = rt.depth")
        if handler is not None:
            g.handler_def(handler, 2)
        g.block(body, 2)
        g.emit(2, "return None")
        return g.build(fname, span)


class _Gen:
    """Writes the Python source of one function (and its ``on error`` handler, nested in it)."""

    def __init__(self, comp: Compiler, name: str, kind: str, *, locals_: bool, tracks_last: bool,
                 handler: bool) -> None:
        self.comp = comp
        self.rt = comp.rt
        self.name = name
        self.kind = kind
        self.locals = locals_
        self.tracks_last = tracks_last
        self.guarded = handler  # statements of the body run the handler when they fail
        self.in_handler = False
        self.lines: list[str] = []
        self.consts: list[Any] = []
        self.ntemp = 0
        self.loops = 0
        self.track_stmt: A.Stmt | None = None
        self.returns: tuple[str, ...] = ()
        self.proc_span: Span | None = None
        self.params: tuple[str, ...] = ()
        self.assigned: set[str] = set()
        self.defined: set[str] = set()
        self.kinds: dict[str, str] = {}
        #: (name, parameters, their kinds on entry, result kind) while writing a procedure's checked copy
        self.recur: tuple[str, tuple[str, ...], dict[str, str], str] | None = None
        lim = self.rt.limits
        self.loop_limit = lim.max_loop_iterations or (1 << 62)

    # -- output -----------------------------------------------------------------------------------

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"K[{len(self.consts) - 1}]"

    def lit(self, v: Any) -> str:
        """A Python expression for the constant ``v``."""
        if v is None or type(v) is bool or (type(v) is int and -_SMALL < v < _SMALL):
            return repr(v)
        if type(v) is str and len(v) <= 200:
            return repr(v)
        return self.const(v)

    def temp(self) -> str:
        self.ntemp += 1
        return f"t{self.ntemp}"

    def emit(self, ind: int, line: str) -> None:
        if ind > 90:
            raise _TooDeep
        self.lines.append("    " * ind + line)

    def build(self, fname: str, span: Span) -> Callable[..., Any]:
        src = "def make(K):\n" + "\n".join(self.lines) + f"\n    return {fname}\n"
        code = _compile(src, self.name, span)
        made: dict[str, Any] = {}
        exec(code, codespace(self.rt), made)  # noqa: S102 - generated from the AST only (module docstring)
        fn: Callable[..., Any] = made["make"](self.consts)
        return fn

    # -- variables --------------------------------------------------------------------------------

    def read(self, name: str, span: Span, ind: int) -> tuple[str, str | None]:
        if not self.locals:
            t = self.temp()
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{t} = f[{name!r}]")
            self.emit(ind, "except KeyError:")
            self.emit(ind + 1, f"{t} = lookup({name!r}, {self.const(span)})")
            return t, None
        if name in self.defined:
            return f"v_{name}", self.kinds.get(name)
        t = self.temp()
        if name in self.assigned:
            self.emit(ind, f"{t} = v_{name} if v_{name} is not U else lookup({name!r}, {self.const(span)})")
        else:
            self.emit(ind, f"{t} = lookup({name!r}, {self.const(span)})")
        return t, None

    def pin(self, v: str, ind: int) -> str:
        """``v`` as a name: an expression used in place (``(v_i + 1)``) or a literal is stored in a
        temporary, so that it is evaluated once, before the variables it reads change, and is never
        subscripted in the source (``-1[0]`` makes Python's compiler warn, issue 10 item 5)."""
        if (v.isidentifier() and v not in ("None", "True", "False")) or v.startswith("K["):
            return v
        t = self.temp()
        self.emit(ind, f"{t} = {v}")
        return t

    def local_or_none(self, name: str) -> str:
        """The variable's own value, or None when it has none (not the globals: assignment paths)."""
        if not self.locals:
            return f"f.get({name!r})"
        if name in self.defined:
            return f"v_{name}"
        return f"(v_{name} if v_{name} is not U else None)"

    def write(self, name: str, value: str, ind: int) -> None:
        if self.locals:
            self.emit(ind, f"v_{name} = {value}")
            if not self.guarded:
                self.defined.add(name)
        else:
            self.emit(ind, f"f[{name!r}] = {value}")

    def set_last(self, value: str, ind: int) -> None:
        self.emit(ind, f"_last = {value}" if self.locals else f"f['last'] = {value}")

    def get_last(self) -> str:
        return "_last" if self.locals else "f.get('last')"

    def scope(self, names: Iterable[str] | None) -> str:
        """A dict of local variables for interpolation (``names``: those a template names; None: all)."""
        if not self.locals:
            return "f"
        pick = sorted(self.assigned if names is None else set(names) & self.assigned)
        items = [f"{n!r}: v_{n}" for n in pick]
        if self.tracks_last:
            items.append("'last': _last")
        return "{" + ", ".join(items) + "}"

    # -- expressions ------------------------------------------------------------------------------

    def expr(self, e: A.Expr, ind: int) -> tuple[str, str | None]:
        """Emit the lines computing ``e``; return a Python expression (a name or constant) for it and
        its kind when the compiler knows it ("int", "str", "bool")."""
        if isinstance(e, A.Literal):
            return self.lit(e.value), literal_kind(e.value)
        if isinstance(e, A.Variable):
            return self.read(e.name, e.span, ind)
        if isinstance(e, A.BinOp):
            return self.binop(e, ind)
        if isinstance(e, A.ProcCall):
            return self.call(e, ind)
        if isinstance(e, A.Index):
            return self.index(e, ind), None
        t = self.temp()
        if isinstance(e, (A.And, A.Or)):
            left, _ = self.expr(e.left, ind)
            self.emit(ind, f"{t} = bool({left})")
            self.emit(ind, f"if {'' if isinstance(e, A.And) else 'not '}{t}:")
            right, _ = self.expr(e.right, ind + 1)
            self.emit(ind + 1, f"{t} = bool({right})")
            return t, BOOL
        if isinstance(e, A.UnaryOp):
            return self.unary(e, t, ind)
        if isinstance(e, A.ToolCall):
            args = [self.expr(a, ind)[0] for a in e.args]
            named = [f"{k!r}: {self.expr(v, ind)[0]}" for k, v in e.named]
            kw = "{" + ", ".join(named) + "}" if named else "None"
            self.emit(ind, "rt.depth = _d")
            self.emit(ind, f"{t} = call_tool({self.const([])}, {e.path!r}, {self.const(e.span)}, "
                           f"[{', '.join(args)}], {kw})")
            return t, None
        if isinstance(e, A.ListLit):
            if all(isinstance(x, A.Literal) for x in e.items):
                if not e.items:
                    return "[]", None
                self.emit(ind, f"{t} = {self.const([x.value for x in e.items])}[:]")  # type: ignore[union-attr]
            else:
                self.emit(ind, f"{t} = [{', '.join(self.expr(x, ind)[0] for x in e.items)}]")
            return t, None
        if isinstance(e, A.MapLit):
            parts = []
            for k, v in e.entries:
                if isinstance(k, A.Literal):
                    key = self.lit(k.value if type(k.value) is str else V.display(k.value))
                else:
                    kc, kk = self.expr(k, ind)
                    key = kc if kk in STRS else f"({kc} if type({kc}) is str else display({kc}))"
                    if key != kc:
                        kt = self.temp()
                        self.emit(ind, f"{kt} = {key}")
                        key = kt
                parts.append(f"{key}: {self.expr(v, ind)[0]}")
            self.emit(ind, f"{t} = {{{', '.join(parts)}}}")
            return t, None
        if isinstance(e, A.RawString):
            if not e.interpolate or "{{" not in e.text:
                return self.lit(e.text), literal_kind(e.text)
            names = placeholder_re().findall(e.text)
            self.emit(ind, f"{t} = interp({self.lit(e.text)}, {self.scope(names)}, {self.const(e.span)})")
            return t, STR
        if isinstance(e, A.Eval):
            inner, _ = self.expr(e.expr, ind)
            self.emit(ind, f"{t} = interp(idisplay({inner}), {self.scope(None)}, {self.const(e.span)})")
            return t, STR
        if isinstance(e, A.Placeholder):
            if e.name == "last":
                return self.get_last(), None
            return self.read(e.name, e.span, ind)
        if isinstance(e, A.Last):
            return self.get_last(), None
        raise NSRuntimeError(f"cannot compile {type(e).__name__}", span=getattr(e, "span", None))  # pragma: no cover

    def unary(self, e: A.UnaryOp, t: str, ind: int) -> tuple[str, str | None]:
        op = e.op
        span = e.span
        if op == "typeof":
            if isinstance(e.operand, A.Variable):
                name = e.operand.name
                sp = self.const(span)
                if not self.locals:
                    self.emit(ind, f"{t} = type_name(f[{name!r}]) if {name!r} in f else typeof_global({name!r}, {sp})")
                elif name in self.defined:
                    self.emit(ind, f"{t} = type_name(v_{name})")
                elif name in self.assigned:
                    self.emit(ind, f"{t} = type_name(v_{name}) if v_{name} is not U else typeof_global({name!r}, {sp})")
                else:
                    self.emit(ind, f"{t} = typeof_global({name!r}, {sp})")
                return t, STR
            inner, _ = self.expr(e.operand, ind)
            self.emit(ind, f"{t} = type_name({inner})")
            return t, STR
        if op in ("-", "~") and isinstance(e.operand, A.Literal) and type(e.operand.value) in (int, float):
            v = e.operand.value
            if op == "-":
                return self.lit(-v), literal_kind(v)
            if type(v) is int:
                return self.lit(~v), INT
        inner, kind = self.expr(e.operand, ind)
        if op in ("not", "no"):
            self.emit(ind, f"{t} = not {inner}")
            return t, BOOL
        if op == "some":
            self.emit(ind, f"{t} = bool({inner})")
            return t, BOOL
        if op == "must":
            self.emit(ind, f"if not {inner}: {self.must_fn(e.operand, span, 'must')}({inner})")
            return inner, kind
        sp = self.const(span)
        if op == "-":
            if kind == INT:
                self.emit(ind, f"{t} = -{inner}")
                return t, INT
            self.emit(ind, f"{t} = -{inner} if type({inner}) is int or type({inner}) is float "
                           f"else unop(NEG, {inner}, {sp})")
            return t, None
        self.emit(ind, f"{t} = unop(BITNOT, {inner}, {sp})")
        return t, None

    @staticmethod
    def shown(x: str, kind: str | None, span: str) -> str:
        """The display string of ``x`` (a string as is, an int by ``str``, else ``show``)."""
        if kind in STRS:
            return x
        if kind == INT:
            return f"(str({x}) if -STR_SAFE < {x} < STR_SAFE else show({x}, {span}))"
        return (f"({x} if type({x}) is str else str({x}) if type({x}) is int and -STR_SAFE < {x} < STR_SAFE "
                f"else show({x}, {span}))")

    def must_fn(self, node: A.Expr, span: Span, keyword: str) -> str:
        from .unparse import unparse_expr

        return self.const(codespace(self.rt)["must_check"](unparse_expr(node), keyword, span))

    def index(self, e: A.Index, ind: int) -> str:
        # a literal target goes through the constants: ``True[0]`` in generated source would make
        # Python's compiler print a SyntaxWarning on stderr (issue 10 item 5)
        if isinstance(e.target, A.Literal):
            c = self.const(e.target.value)
        else:
            c = self.pin(self.expr(e.target, ind)[0], ind)
        i, ik = self.expr(e.index, ind)
        t = self.temp()
        if ik in STRS:
            self.emit(ind, f"if type({c}) is dict and {i} in {c}:")
        elif ik == INT:
            self.emit(ind, f"if type({c}) is list and -1 < {i} < len({c}):")
        else:
            self.emit(ind, f"if type({c}) is list and type({i}) is int and -1 < {i} < len({c}):")
        self.emit(ind + 1, f"{t} = {c}[{i}]")
        if ik is None:
            self.emit(ind, f"elif type({c}) is dict and type({i}) is str and {i} in {c}:")
            self.emit(ind + 1, f"{t} = {c}[{i}]")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{t} = index_slow({c}, {i}, {self.const(e.span)})")
        return t

    def peek_kind(self, e: A.Expr) -> str | None:
        """The kind :meth:`expr` will give a literal or a variable, before any code is written."""
        if isinstance(e, A.Literal):
            return literal_kind(e.value)
        if isinstance(e, A.Variable) and self.locals and e.name in self.defined:
            return self.kinds.get(e.name)
        return None

    def pure(self, e: A.Expr) -> bool:
        """Can evaluating ``e`` neither fail nor have an effect (a literal, an assigned local)?"""
        return isinstance(e, A.Literal) or (isinstance(e, A.Variable) and self.locals and e.name in self.defined)

    def concat(self, e: A.BinOp, ind: int) -> tuple[str, str | None] | None:
        """A chain ``a + "x" + b + "y" …`` in which every ``+`` is sure to join display strings (a
        literal with no numeric reading on the right, or a left side known to have none) as one
        Python expression, with one size check for every two operands that may be long; None when
        its first ``+`` is not sure to join."""
        steps = []
        x: A.Expr = e
        while isinstance(x, A.BinOp) and x.op == "+":
            steps.append(x)
            x = x.left
        steps.reverse()
        kind = self.peek_kind(x)
        sure = 0
        for st in steps:
            suffix = plain_str(st.right)
            if suffix is not None:
                kind = concat_kind(suffix)
            elif kind == NSTR or (sure == 0 and plain_str(x) is not None):
                kind = STR
            else:
                break
            sure += 1
        if sure < 2:
            return None
        first, fk = self.expr(x, ind)
        parts = [self.shown(first, fk, self.const(steps[0].span))]
        long = int(fk != INT and not isinstance(x, A.Literal))
        t = self.temp()
        kind = fk
        joined = None  # the span of the last ``+`` in ``parts``
        for st in steps[:sure]:
            span = self.const(st.span)
            if joined is not None and not self.pure(st.right):
                # left operand first (spec §4.1): what is joined so far is displayed and checked
                # before an operand that may fail or have effects (a call) is evaluated
                self.emit(ind, f"{t} = {' + '.join(parts)}")
                self.emit(ind, f"if len({t}) > LIMIT: too_large({t}, {joined})")
                parts, long, joined = [t], 1, None
            b, kb = self.expr(st.right, ind)
            grows = kb != INT and not isinstance(st.right, A.Literal)
            if long + grows > 2:  # at most two long operands joined between two checks
                self.emit(ind, f"{t} = {' + '.join(parts)}")
                self.emit(ind, f"if len({t}) > LIMIT: too_large({t}, {span})")
                parts, long = [t], 1
            parts.append(self.shown(b, kb, span))
            long += grows
            joined = span
            suffix = plain_str(st.right)
            kind = concat_kind(suffix) if suffix is not None else STR
        self.emit(ind, f"{t} = {' + '.join(parts)}")
        self.emit(ind, f"if len({t}) > LIMIT: too_large({t}, {self.const(steps[sure - 1].span)})")
        if sure == len(steps):
            return t, kind
        return self.binop_rest(steps[sure:], t, kind, ind)

    def binop_rest(self, steps: list[A.BinOp], a: str, ka: str | None, ind: int) -> tuple[str, str | None]:
        """The ``+`` steps of a chain after its joined part (value ``a`` of kind ``ka``)."""
        for st in steps:
            a, ka = self.binop(st, ind, left=(a, ka))
        return a, ka

    def binop(self, e: A.BinOp, ind: int, left: tuple[str, str | None] | None = None) -> tuple[str, str | None]:
        op = e.op
        if op == "+" and left is None:
            joined = self.concat(e, ind)
            if joined is not None:
                return joined
        lit_r = plain_str(e.right) if op == "+" else None
        lit_l = plain_str(e.left) if op == "+" and left is None else None
        a, ka = self.expr(e.left, ind) if left is None else left
        b, kb = self.expr(e.right, ind)
        t = self.temp()
        span = self.const(e.span)
        ints = ka == INT and kb == INT
        if op == "+":
            if ints:
                return f"({a} + {b})", INT
            if lit_r is not None or lit_l is not None or ka == NSTR:  # always a concatenation of display strings
                if lit_r is not None or ka == NSTR:
                    self.emit(ind, f"{t} = {self.shown(a, ka, span)} + {self.shown(b, kb, span)}")
                else:
                    self.emit(ind, f"{t} = {a} + {self.shown(b, kb, span)}")
                self.emit(ind, f"if len({t}) > LIMIT: too_large({t}, {span})")
                return t, (concat_kind(lit_r) if lit_r is not None else STR)
            head = "if"
            if ka not in STRS and kb not in STRS:
                self.emit(ind, f"if {self.both_int(a, ka, b, kb)}:")
                self.emit(ind + 1, f"{t} = {a} + {b}")
                head = "elif"
            if maybe_str(ka, e.left) and not isinstance(e.right, A.Literal):
                # a string with no numeric reading joins a string or an int (spec §4.3), within the size limit
                is_str = "" if ka in STRS else f"type({a}) is str and "
                with_str = f"len({a}) + len({b}) <= LIMIT"
                with_int = f"-STR_SAFE < {b} < STR_SAFE and len({a}) < LIMIT - 700"
                if kb == INT:
                    test, right = with_int, f"str({b})"
                elif kb in STRS:
                    test, right = with_str, b
                else:
                    test = f"(type({b}) is str and {with_str} or type({b}) is int and {with_int})"
                    right = f"({b} if type({b}) is str else str({b}))"
                self.emit(ind, f"{head} {is_str}{a}[:1] not in NUMSTART and {test}:")
                self.emit(ind + 1, f"{t} = {a} + {right}")
            elif head == "if":
                self.emit(ind, f"{t} = add({a}, {b}, {span})")
                return t, None
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = add({a}, {b}, {span})")
            return t, None
        slow = self.const(SLOW[op])
        if op in ("-",) or op in _CMP:
            if ints:  # operands are local ints or literals: the expression is used as it stands
                return f"({a} {op} {b})", (INT if op == "-" else BOOL)
            self.emit(ind, f"if {self.both_int(a, ka, b, kb)}:")
            self.emit(ind + 1, f"{t} = {a} {op} {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
            return t, (None if op == "-" else BOOL)
        if op == "*":  # an exact product must stay within values.MAX_INT_DIGITS
            self.emit(ind, f"if {self.both_int(a, ka, b, kb)} and INT_LOW < ({t} := {a} * {b}) < INT_BOUND:")
            self.emit(ind + 1, "pass")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
            return t, (INT if ints else None)
        if op in ("==", "!="):
            if ints or ka in STRS and kb in STRS and NSTR in (ka, kb):
                return f"({a} {op} {b})", BOOL
            if NSTR in (ka, kb):  # a string with no numeric reading equals only the same string
                self.emit(ind, f"if type({b if ka == NSTR else a}) is str:")
            elif maybe_str(ka, e.left) and maybe_str(kb, e.right):
                test = f"({a} == {b} or {a}[:1] not in NUMSTART or {b}[:1] not in NUMSTART)"
                if ka in STRS and kb in STRS:
                    self.emit(ind, f"if {test}:")
                else:
                    self.emit(ind, f"if type({a}) is int is type({b}) or type({a}) is str is type({b}) and {test}:")
            else:
                self.emit(ind, f"if {self.both_int(a, ka, b, kb)}:")
            self.emit(ind + 1, f"{t} = {a} {op} {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
            return t, BOOL
        if op == "%":
            self.emit(ind, f"if {self.both_int(a, ka, b, kb)} and {a} >= 0 and {b} > 0:")
            self.emit(ind + 1, f"{t} = {a} % {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
            return t, (INT if ints else None)
        self.emit(ind, f"{t} = slow({slow}, {a}, {b}, {span})")
        return t, None

    @staticmethod
    def both_int(a: str, ka: str | None, b: str, kb: str | None) -> str:
        if ka == INT and kb == INT:
            return "True"
        if ka == INT:
            return f"type({b}) is int"
        if kb == INT:
            return f"type({a}) is int"
        return f"type({a}) is int is type({b})"

    def call(self, e: A.ProcCall, ind: int) -> tuple[str, str | None]:
        lname = e.name.lower()
        span = self.const(e.span)
        builtin = BUILTINS.get(lname)
        t = self.temp()
        if builtin is not None:
            if len(e.args) != 1:
                msg = f"built-in function {lname}() takes exactly 1 argument, got {len(e.args)}"
                self.emit(ind, f"raise err({msg!r}, {int(ErrorCode.ARG_MISMATCH)}, {span})")
                return "None", None
            x, _ = self.expr(e.args[0], ind)
            if lname == "len":
                self.emit(ind, f"{t} = len({x}) if type({x}) in LEN_TYPES else call_builtin(builtin_len, {x}, {span})")
                return t, INT
            self.emit(ind, f"{t} = call_builtin({self.const(builtin)}, {x}, {span})")
            return t, None
        coded = [self.expr(a, ind) for a in e.args]
        args = [c for c, _ in coded]
        name = e.name
        target = self.rt.procedures_table.get(name)
        kind = recur_kind(self.recur, name, [k for _, k in coded])
        if target is not None and target.nreq <= len(args) <= target.nmax:
            ns = codespace(self.rt)
            fname = "P_" + name
            if fname not in ns:
                ns[fname] = target.fn or _stub(self.rt, name)
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{t} = {fname}(_d + 1{''.join(', ' + a for a in args)})")
            self.emit(ind, "except NSRuntimeError as _err:")
            self.emit(ind + 1, f"raise call_error(_err, {name!r}, {span}) from None")
            self.emit(ind, "except RecursionError:")
            self.emit(ind + 1, f"raise recursion_error({name!r}, {span}) from None")
        else:
            kind = None
            self.emit(ind, f"{t} = call_dyn({name!r}, {span}, _d + 1, [{', '.join(args)}])")
        if self.tracks_last:  # a procedure call inside an expression also sets ``last`` (issue 15)
            self.set_last(t, ind)
        return t, kind

    # -- statements -------------------------------------------------------------------------------

    def block(self, stmts: tuple[A.Stmt, ...], ind: int) -> None:
        start = len(self.lines)
        for s in stmts:
            if isinstance(s, A.OnError):
                continue
            if s is self.track_stmt and not self.tracks_last:  # the implicit result (spec §7.2)
                self.tracks_last = True
                try:
                    self.stmt_guarded(s, ind)
                finally:
                    self.tracks_last = False
            else:
                self.stmt_guarded(s, ind)
        if len(self.lines) == start:
            self.emit(ind, "pass")

    def stmt_guarded(self, s: A.Stmt, ind: int) -> None:
        if not self.guarded or self.in_handler:
            self.stmt(s, ind)
        elif isinstance(s, A.If):
            c = self.temp()
            self.emit(ind, "try:")
            cond, _ = self.expr(s.cond, ind + 1)
            self.emit(ind + 1, f"{c} = {cond}")
            self.catch(ind, f"{c} = U")  # cleared: the statement is skipped (U is never a value)
            self.emit(ind, f"if {c} is U: pass")
            self.emit(ind, f"elif {c}:")
            self.block(s.body, ind + 1)
            if s.orelse:
                self.emit(ind, "else:")
                self.block(s.orelse, ind + 1)
        elif isinstance(s, A.While):
            self.loop(s, ind, guarded=True)
        elif isinstance(s, A.ForEach):
            self.for_each(s, ind, guarded=True)
        elif isinstance(s, A.Return) and len(self.returns) > 1:
            # the count of a ``returns`` clause is the caller's check (spec §7.2): the handler does
            # not run for it
            self.emit(ind, "try:")
            v, n = self.ret_expr(s, ind + 1)
            r = self.temp()
            self.emit(ind + 1, f"{r} = {v}")
            self.catch(ind, None)
            self.emit(ind, "else:")
            self.emit(ind + 1, f"return {self.ret_value(r, n)}")
        else:
            self.emit(ind, "try:")
            self.stmt(s, ind + 1)
            self.catch(ind, None)

    def catch(self, ind: int, after: str | None) -> None:
        """The ``except`` of a guarded statement: the handler runs; ``after`` runs once it cleared."""
        self.emit(ind, f"except {_CATCH} as _c:")
        self.emit(ind + 1, "guard(_c, _tok, _handler)")
        if after:
            self.emit(ind + 1, after)

    def stmt(self, s: A.Stmt, ind: int) -> None:
        track = self.tracks_last
        if isinstance(s, A.Set):
            v, kind = self.expr(s.value, ind)
            if track or len(s.targets) > 1:
                v = self.pin(v, ind)
            if len(s.targets) == 1:
                if track:  # before the assignment: a path that fails still sets ``last`` (as before issue 16)
                    self.set_last(v, ind)
                self.assign(s.targets[0], v, ind)
            else:
                n = len(s.targets)
                self.emit(ind, f"unpack({v}, {n}, {self.const(s.span)})")
                for i, target in enumerate(s.targets):
                    x = self.temp()
                    self.emit(ind, f"{x} = {v}[{i}]")
                    self.assign(target, x, ind)
                if track:
                    self.set_last(v, ind)
        elif isinstance(s, A.Emit):
            v, kind = self.expr(s.value, ind)
            self.emit(ind, f"write({self.shown(v, kind, 'None')} + '\\n')")
            if track:
                self.set_last(v, ind)
        elif isinstance(s, A.Call):
            v, _ = self.expr(s.call, ind)
            if track:
                self.set_last(v, ind)
        elif isinstance(s, A.Must):
            v, _ = self.expr(s.value, ind)
            self.emit(ind, f"if not {v}: {self.must_fn(s.value, s.span, s.keyword)}({v})")
            if track:
                self.set_last(v, ind)
        elif isinstance(s, A.Return):
            self.ret(s, ind)
        elif isinstance(s, (A.Break, A.Continue)):
            word = "break" if isinstance(s, A.Break) else "continue"
            if self.loops:
                self.emit(ind, word)
            else:
                self.raise_(f"'{word}' outside a loop", ErrorCode.CONTROL_FLOW, s.span, ind)
        elif isinstance(s, A.If):
            cond, _ = self.expr(s.cond, ind)
            self.emit(ind, f"if {cond}:")
            self.branches(s, ind)
        elif isinstance(s, A.While):
            self.loop(s, ind, guarded=False)
        elif isinstance(s, A.ForEach):
            self.for_each(s, ind, guarded=False)
        elif isinstance(s, A.Fail):
            if s.value is None:
                self.emit(ind, f"raise fail_error(None, False, {self.const(s.span)})")
            else:
                v, _ = self.expr(s.value, ind)
                self.emit(ind, f"raise fail_error({v}, True, {self.const(s.span)})")
        elif isinstance(s, A.ClearError):
            if not self.in_handler or self.kind == "event":
                self.raise_("'clear_error' is only allowed inside an 'on error' handler", ErrorCode.CLEAR_VIOLATION,
                            s.span, ind)
            else:
                self.emit(ind, "rt.handler_cleared = True")
        elif isinstance(s, A.ClearEvent):
            ev = "None"
            if s.event is not None:
                v, _ = self.expr(s.event, ind)
                ev = f"display({v})"
            self.emit(ind, f"clear_events({ev}, {self.lit(s.handler_name)})")
        elif isinstance(s, A.Ask):
            w = self.expr(s.worker, ind)[0] if s.worker is not None else "None"
            p, _ = self.expr(s.prompt, ind)
            o = self.expr(s.options, ind)[0] if s.options is not None else "None"
            v = self.temp()
            self.emit(ind, "rt.depth = _d")
            self.emit(ind, f"{v} = ask({w}, {p}, {o}, {s.target is None}, {self.const(s.span)})")
            if s.target is not None:
                self.assign(s.target, v, ind)
            if track:
                self.set_last(v, ind)
        else:  # pragma: no cover - every statement kind is handled above
            raise NSRuntimeError(f"cannot compile {type(s).__name__}", span=s.span)

    def raise_(self, msg: str, code: int, span: Span, ind: int) -> None:
        self.emit(ind, f"raise err({msg!r}, {int(code)}, {self.const(span)})")

    def branches(self, s: A.If, ind: int) -> None:
        before = set(self.defined)
        self.block(s.body, ind + 1)
        after_body, self.defined = self.defined, set(before)
        if s.orelse:
            self.emit(ind, "else:")
            self.block(s.orelse, ind + 1)
            self.defined = after_body & self.defined
        else:
            self.defined = before

    def assign(self, lv: A.LValue, v: str, ind: int) -> None:
        """Store ``v`` into a name or a path (auto-vivifying, spec §3; value-size limit, code 37)."""
        name = lv.name
        if not lv.path:
            self.write(name, v, ind)
            return
        keys = []
        for step in lv.path:
            if isinstance(step, A.Field):
                keys.append((True, self.lit(step.name), step.span))
            else:
                keys.append((False, self.expr(step, ind)[0], step.span))
        c = self.temp()
        self.emit(ind, f"{c} = {self.local_or_none(name)}")
        if len(keys) == 1 and not keys[0][0]:
            k = keys[0][1]
            self.emit(ind, f"if type({c}) is list and type({k}) is int and -1 < {k} < len({c}):")
            self.emit(ind + 1, f"{c}[{k}] = {v}")
            self.emit(ind, f"elif type({c}) is list and type({k}) is int and {k} == len({c}) and {k} < MAXE:")
            self.emit(ind + 1, f"{c}.append({v})")
            self.emit(ind, f"elif type({c}) is dict and type({k}) is str and len({c}) < MAXE:")
            self.emit(ind + 1, f"{c}[{k}] = {v}")
            self.emit(ind, "else:")
            self.write(name, f"store_index({c}, {k}, {v}, {self.const(keys[0][2])})", ind + 1)
            if self.locals and not self.guarded:
                self.defined.add(name)
            return
        steps = ", ".join(f"({f}, {k}, {self.const(sp)})" for f, k, sp in keys)
        self.write(name, f"store_path({c}, [{steps}], {v})", ind)

    def ret(self, s: A.Return, ind: int) -> None:
        if self.in_handler:
            self.raise_("'return' is not allowed inside an 'on error' or 'on event' handler",
                        ErrorCode.RETURN_VIOLATION, s.span, ind)
            return
        v, n = self.ret_expr(s, ind)
        self.emit(ind, f"return {self.ret_value(v, n)}")

    def ret_expr(self, s: A.Return, ind: int) -> tuple[str, int]:
        """The value a ``return`` gives (nil, the value, a list of the values) and how many it names."""
        vals = [self.expr(x, ind)[0] for x in s.values]
        if len(vals) < 2:
            return (vals[0] if vals else "None"), 1
        return "[" + ", ".join(vals) + "]", len(vals)

    def ret_value(self, v: str, n: int) -> str:
        """``v`` checked against a multi-name ``returns`` clause (code 2 on a count mismatch)."""
        nret = len(self.returns)
        if nret < 2 or n == nret:
            return v
        span = self.const(self.proc_span)
        if n > 1:
            return f"bad_returns({self.name!r}, {self.const(self.returns)}, {v}, {span})"
        return (f"{v} if type({v}) is list and len({v}) == {nret} else "
                f"bad_returns({self.name!r}, {self.const(self.returns)}, {v}, {span})")

    def loop_body(self, body: tuple[A.Stmt, ...], ind: int) -> None:
        before = set(self.defined)
        self.loops += 1
        self.block(body, ind)
        self.loops -= 1
        self.defined = before  # a loop may run no pass: what it assigns is not certain after it

    def loop(self, s: A.While, ind: int, *, guarded: bool) -> None:
        n = self.temp()
        sp = self.const(s.span)
        per = max(1, len(s.body))
        if not guarded:
            # Python's own for loop counts the passes; after the last one allowed, a true condition is error 37
            self.emit(ind, f"for {n} in range({self.loop_limit}):")
            cond, _ = self.expr(s.cond, ind + 1)
            self.emit(ind + 1, f"if not {cond}: break")
            self.emit(ind + 1, f"if BUDGET: charge({per})")
            self.loop_body(s.body, ind + 1)
            self.emit(ind, "else:")
            cond, _ = self.expr(s.cond, ind + 1)
            self.emit(ind + 1, f"if {cond}: raise loop_error({self.loop_limit}, {sp})")
            return
        # the head (condition, pass count, step budget) runs the handler when it fails: skip the loop
        c = self.temp()
        self.emit(ind, f"{n} = 0")
        self.emit(ind, "while True:")
        self.emit(ind + 1, "try:")
        cond, _ = self.expr(s.cond, ind + 2)
        self.emit(ind + 2, f"{c} = {cond}")
        self.emit(ind + 2, f"if {c}:")
        self.emit(ind + 3, f"{n} += 1")
        self.emit(ind + 3, f"if {n} > {self.loop_limit}: raise loop_error({self.loop_limit}, {sp})")
        self.emit(ind + 3, f"if BUDGET: charge({per})")
        self.catch(ind + 1, "break")
        self.emit(ind + 1, f"if not {c}: break")
        self.loop_body(s.body, ind + 1)

    def for_each(self, s: A.ForEach, ind: int, *, guarded: bool) -> None:
        items = self.temp()
        sp = self.const(s.span)
        if guarded:
            self.emit(ind, "try:")
            coll, _ = self.expr(s.iterable, ind + 1)
            self.emit(ind + 1, f"{items} = iter_items({coll}, {self.loop_limit}, {sp})")
            self.catch(ind, f"{items} = ()")
        else:
            coll, _ = self.expr(s.iterable, ind)
            self.emit(ind, f"{items} = iter_items({coll}, {self.loop_limit}, {sp})")
        before = set(self.defined)
        if self.locals:
            self.emit(ind, f"for v_{s.var} in {items}:")
            if not self.guarded:
                self.defined.add(s.var)
        else:
            x = self.temp()
            self.emit(ind, f"for {x} in {items}:")
            self.write(s.var, x, ind + 1)
        self.emit(ind + 1, f"if BUDGET: charge({max(1, len(s.body))})")
        self.loop_body(s.body, ind + 1)
        self.defined = before

    def handler_def(self, node: A.OnError, ind: int) -> None:
        """The ``on error`` handler as a nested function over the body's variables (spec §5.3)."""
        self.emit(ind, "_tok = object()")
        self.emit(ind, "def _handler(_e):")
        saved = (self.in_handler, self.loops, self.defined)
        self.in_handler = True
        self.loops = 0
        if self.locals:
            names = [f"v_{n}" for n in sorted(self.assigned)] + (["_last"] if self.tracks_last else [])
            self.emit(ind + 1, f"nonlocal {', '.join(names)}")
            self.emit(ind + 1, "v_system_error_message = _e.message")
            self.emit(ind + 1, "v_system_error_code = _e.code")
        else:
            self.emit(ind + 1, "f['system_error_message'] = _e.message")
            self.emit(ind + 1, "f['system_error_code'] = _e.code")
        self.block(node.body, ind + 1)
        self.in_handler, self.loops, self.defined = saved


def _stub(rt: Interpreter, name: str) -> Callable[..., Any]:
    """What ``P_<name>`` is until the procedure is first called: compiles it, then calls it."""

    def stub(d: int, *args: Any) -> Any:
        return rt.procedures_table[name].compiled(d - 1)(d, *args)

    return stub


def _generating(name: str, span: Span, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, a body too deep to write out (our recursion, Python's limits) being error 38."""
    try:
        return fn(*args)
    except (_TooDeep, RecursionError):
        raise _too_deep(name, span) from None


def forget_compiled(rt: Interpreter) -> None:
    """Drop all compiled procedures and event handler bodies (a procedure was redefined: direct
    calls compiled for its old arity may not match it)."""
    for p in rt.procedures_table.values():
        p.fn = None
    for h in rt.events:
        h.run = None
    ns = rt.codespace
    if ns is not None:
        for key in [k for k in ns if k.startswith("P_")]:
            ns[key] = _stub(rt, key[2:])


def _compile(src: str, name: str, span: Span) -> Any:
    """Python's code object for ``src`` (from the code cache, :mod:`nslang._codecache`, when it has it)."""
    from . import _codecache

    key, code = _codecache.load(src, name)
    if code is not None:
        return code
    try:
        code = compile(src, f"<nslang {name}>", "exec")
    except (SyntaxError, RecursionError, MemoryError):
        raise _too_deep(name, span) from None
    if key is not None:
        _codecache.store(key, code)
    return code


def _too_deep(name: str, span: Span) -> NSRuntimeError:
    return NSRuntimeError(f"'{name}' nests blocks or expressions too deeply to compile (Python's compiler takes "
                          "about 17 loops or 90 blocks inside each other)",
                          code=ErrorCode.NESTING_DEPTH_EXCEEDED, span=span)

