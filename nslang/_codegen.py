"""Compile a whole procedure or command body into one generated Python function (part of the compiler).

The closure compiler (:mod:`nslang.compiler`) turns every node into a function; that costs one Python
call per node at run time. For bodies without an ``on error`` handler this module instead writes the
body out as Python source: variables are read and written in the frame dict inline, arithmetic and
comparisons on ints, list/map indexing and ``len`` have inline fast paths, and ``while``/``for each``/
``if``/``break``/``continue``/``return`` become Python's own statements. Everything else (tool
calls, ``ask``, multi-target ``set``…) is still a closure, called from the generated code, so both
paths share one implementation of every rule; the slow paths are the same functions from
:mod:`nslang.values`. The golden corpus runs through this path.

Generated code only ever contains identifiers from the AST (checked by the grammar) and references
to constants by index; no source text is pasted into it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ast as A
from . import values as V
from ._binops import _SLOW
from .builtins import BUILTINS
from .compiler import _at
from .errors import NSRuntimeError, python_error
from .limits import check_value, checked_add, checked_display

if TYPE_CHECKING:  # pragma: no cover
    from .compiler import Compiler, _Ctx

_INT_FAST = {"+", "-", "<", "<=", ">", ">="}


class _Gen:
    def __init__(self, comp: Compiler, ctx: _Ctx, name: str) -> None:
        self.comp = comp
        self.ctx = ctx
        self.name = name
        self.lines: list[str] = []
        self.consts: list[Any] = []
        self.ntemp = 0
        self.loop_depth = 0

    # -- helpers -----------------------------------------------------------------------------------

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"K[{len(self.consts) - 1}]"

    def temp(self) -> str:
        self.ntemp += 1
        return f"t{self.ntemp}"

    def emit(self, ind: int, line: str) -> None:
        self.lines.append("    " * ind + line)

    # -- expressions -------------------------------------------------------------------------------

    def expr(self, e: A.Expr, ind: int) -> str:
        """Emit the lines computing ``e``; return a Python expression (a name or constant) for it."""
        if isinstance(e, A.Literal):
            v = e.value
            if v is None or type(v) is bool or (type(v) is int and -(1 << 62) < v < (1 << 62)):
                return repr(v)
            return self.const(v)
        if isinstance(e, A.Variable):
            t = self.temp()
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{t} = f[{e.name!r}]")
            self.emit(ind, "except KeyError:")
            self.emit(ind + 1, f"{t} = lookup({e.name!r}, {self.const(e.span)})")
            return t
        if isinstance(e, A.BinOp) and not (isinstance(e.left, A.Literal) and isinstance(e.right, A.Literal)):
            return self.binop(e, ind)
        if isinstance(e, (A.And, A.Or)):
            t = self.temp()
            left = self.expr(e.left, ind)
            self.emit(ind, f"{t} = bool({left})")
            self.emit(ind, f"if {'' if isinstance(e, A.And) else 'not '}{t}:")
            right = self.expr(e.right, ind + 1)
            self.emit(ind + 1, f"{t} = bool({right})")
            return t
        if isinstance(e, A.UnaryOp) and e.op in ("not", "no"):
            inner = self.expr(e.operand, ind)
            t = self.temp()
            self.emit(ind, f"{t} = not {inner}")
            return t
        if isinstance(e, A.Index):
            # a literal target goes through the constants: ``True[0]`` in generated source would make
            # Python's compiler print a SyntaxWarning on stderr (issue 10 item 5)
            c = self.const(e.target.value) if isinstance(e.target, A.Literal) else self.expr(e.target, ind)
            i = self.expr(e.index, ind)
            t = self.temp()
            self.emit(ind, f"if type({c}) is list and type({i}) is int and -1 < {i} < len({c}):")
            self.emit(ind + 1, f"{t} = {c}[{i}]")
            self.emit(ind, f"elif type({c}) is dict and type({i}) is str and {i} in {c}:")
            self.emit(ind + 1, f"{t} = {c}[{i}]")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = index_slow({c}, {i}, {self.const(e.span)})")
            return t
        if isinstance(e, A.ProcCall):
            return self.call(e, ind)
        fn = self.comp.expr(e, self.ctx)
        t = self.temp()
        self.emit(ind, f"{t} = {self.const(fn)}(f)")
        return t

    def binop(self, e: A.BinOp, ind: int) -> str:
        op = e.op
        if op == "+" and isinstance(e.right, A.Literal) and type(e.right.value) is str \
                and V.string_number(e.right.value) is None:
            a = self.expr(e.left, ind)
            t = self.temp()
            span = self.const(e.span)
            self.emit(ind, f"{t} = ({a} if type({a}) is str else show({a}, {span})) + {self.const(e.right.value)}")
            self.emit(ind, f"if len({t}) > {self.comp.rt.limits.max_value_bytes}: too_large({t}, {span})")
            return t
        a = self.expr(e.left, ind)
        b = self.expr(e.right, ind)
        t = self.temp()
        span = self.const(e.span)
        if op == "+":  # the value-size limit's checked add takes the span itself: no extra call level
            add = self.const(checked_add(self.comp.rt.limits.max_value_bytes))
            self.emit(ind, f"if type({a}) is int is type({b}):")
            self.emit(ind + 1, f"{t} = {a} + {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = {add}({a}, {b}, {span})")
            return t
        slow = self.const(_SLOW[op])
        if op in _INT_FAST:
            self.emit(ind, f"if type({a}) is int is type({b}):")
            self.emit(ind + 1, f"{t} = {a} {op} {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
        elif op == "*":  # an exact product must stay within values.MAX_INT_DIGITS
            self.emit(ind, f"if type({a}) is int is type({b}) and INT_LOW < ({t} := {a} * {b}) < INT_BOUND:")
            self.emit(ind + 1, "pass")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
        elif op in ("==", "!="):
            self.emit(ind, f"if type({a}) is int is type({b}) or type({a}) is str is type({b}) and {a} == {b}:")
            self.emit(ind + 1, f"{t} = {a} {op} {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
        elif op == "%":
            self.emit(ind, f"if type({a}) is int is type({b}) and {a} >= 0 and {b} > 0:")
            self.emit(ind + 1, f"{t} = {a} % {b}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = slow({slow}, {a}, {b}, {span})")
        else:
            self.emit(ind, f"{t} = slow({slow}, {a}, {b}, {span})")
        return t

    def call(self, e: A.ProcCall, ind: int) -> str:
        lname = e.name.lower()
        if lname in BUILTINS:
            if lname == "len" and len(e.args) == 1:
                x = self.expr(e.args[0], ind)
                t = self.temp()
                self.emit(ind, f"{t} = len({x}) if type({x}) in LEN_TYPES else builtin_len({x})")
                return t
            fn = self.comp.expr(e, self.ctx)
            t = self.temp()
            self.emit(ind, f"{t} = {self.const(fn)}(f)")
            return t
        args = [self.expr(a, ind) for a in e.args]
        t = self.temp()
        name = e.name
        span = self.const(e.span)
        self.emit(ind, f"p = procs.get({name!r}) or resolve({name!r}, {span})")
        self.emit(ind, "try:")
        self.emit(ind + 1, f"{t} = p.invoke([{', '.join(args)}])")
        self.emit(ind, "except NSRuntimeError as err:")
        self.emit(ind + 1, f"raise call_error(err, {name!r}, {span}) from None")
        self.emit(ind, "except RecursionError:")
        self.emit(ind + 1, f"raise recursion_error({name!r}, {span}) from None")
        if self.ctx.tracks_last:
            self.emit(ind, f"f['last'] = {t}")
        return t

    # -- statements --------------------------------------------------------------------------------

    def block(self, stmts: tuple[A.Stmt, ...], ind: int) -> None:
        start = len(self.lines)
        for s in stmts:
            if not isinstance(s, A.OnError):
                self.stmt(s, ind)
        if len(self.lines) == start:
            self.emit(ind, "pass")

    def stmt(self, s: A.Stmt, ind: int) -> None:
        if s is self.ctx.track_stmt and not self.ctx.tracks_last:  # the implicit result (spec §7.2)
            self.ctx.tracks_last = True
            try:
                self.stmt(s, ind)
            finally:
                self.ctx.tracks_last = False
            return
        track = self.ctx.tracks_last
        if isinstance(s, A.Set) and len(s.targets) == 1 and not s.targets[0].path:
            v = self.expr(s.value, ind)
            self.emit(ind, f"f[{s.targets[0].name!r}] = {v}")
            if track:
                self.emit(ind, f"f['last'] = {v}")
        elif isinstance(s, A.Emit):
            v = self.expr(s.value, ind)
            self.emit(ind, f"write(({v} if type({v}) is str else show({v}, None)) + '\\n')")
            if track:
                self.emit(ind, f"f['last'] = {v}")
        elif isinstance(s, A.Call) and isinstance(s.call, A.ProcCall):
            v = self.expr(s.call, ind)
            if track:
                self.emit(ind, f"f['last'] = {v}")
        elif isinstance(s, A.Must):
            v = self.expr(s.value, ind)
            check = self.const(self.comp._must_check(s.value, s.span, s.keyword))
            self.emit(ind, f"if not {v}:")
            self.emit(ind + 1, f"{check}({v})")
            if track:
                self.emit(ind, f"f['last'] = {v}")
        elif isinstance(s, A.Return) and not self.ctx.in_handler:
            vals = [self.expr(x, ind) for x in s.values]
            if not vals:
                self.emit(ind, "return (None,)")
            elif len(vals) == 1:
                self.emit(ind, f"return ({vals[0]},)")
            else:
                self.emit(ind, f"return ([{', '.join(vals)}],)")
        elif isinstance(s, (A.Break, A.Continue)) and self.loop_depth:
            self.emit(ind, "break" if isinstance(s, A.Break) else "continue")
        elif isinstance(s, A.If):
            c = self.expr(s.cond, ind)
            self.emit(ind, f"if {c}:")
            self.block(s.body, ind + 1)
            if s.orelse:
                self.emit(ind, "else:")
                self.block(s.orelse, ind + 1)
        elif isinstance(s, A.While):
            self.loop(s, ind)
        elif isinstance(s, A.ForEach):
            self.for_each(s, ind)
        else:
            fn = self.comp.stmt(s, self.ctx)
            r = self.temp()
            self.emit(ind, f"{r} = {self.const(fn)}(f)")
            self.emit(ind, f"if {r} is not None:")
            if self.loop_depth:
                self.emit(ind + 1, f"if {r} is BREAK: break")
                self.emit(ind + 1, f"if {r} is CONTINUE: continue")
            self.emit(ind + 1, f"return {r}")

    def _limits(self) -> tuple[int, bool]:
        lim = self.comp.rt.limits
        return lim.max_loop_iterations or (1 << 62), bool(lim.max_steps or lim.timeout_s)

    def loop(self, s: A.While, ind: int) -> None:
        limit, budget = self._limits()
        n = self.temp()
        self.emit(ind, f"{n} = 0")
        self.emit(ind, "while True:")
        c = self.expr(s.cond, ind + 1)
        self.emit(ind + 1, f"if not {c}: break")
        self.emit(ind + 1, f"{n} += 1")
        self.emit(ind + 1, f"if {n} > {limit}: raise loop_error({limit}, {self.const(s.span)})")
        self.loop_body(s.body, ind + 1, budget)

    def loop_body(self, body: tuple[A.Stmt, ...], ind: int, budget: bool) -> None:
        """The statements of a loop (``break``/``continue`` become Python's), charging the step budget."""
        if budget:
            self.emit(ind, f"charge({max(1, len(body))})")
        self.ctx.loops += 1
        self.loop_depth += 1
        self.block(body, ind)
        self.loop_depth -= 1
        self.ctx.loops -= 1

    def for_each(self, s: A.ForEach, ind: int) -> None:
        limit, budget = self._limits()
        coll = self.expr(s.iterable, ind)
        items = self.temp()
        x = self.temp()
        self.emit(ind, f"{items} = iter_items({coll}, {limit}, {self.const(s.span)})")
        self.emit(ind, f"for {x} in {items}:")
        self.emit(ind + 1, f"f[{s.var!r}] = {x}")
        self.loop_body(s.body, ind + 1, budget)


def _slow(fn: Callable[[Any, Any], Any], a: Any, b: Any, span: Any) -> Any:
    """An operator's full rules (:mod:`nslang.values`), with the operator's position on errors; a Python
    exception on extreme input becomes its NeuroScript error (:func:`nslang.errors.python_error`)."""
    try:
        return fn(a, b)
    except NSRuntimeError as e:
        raise _at(e, span) from None
    except (ArithmeticError, ValueError, MemoryError) as e:
        err = python_error(e)
        if err is None:
            raise
        raise _at(err, span) from None


def _too_large(limit: int) -> Callable[[Any, Any], None]:
    def too_large(value: Any, span: Any) -> None:
        try:
            check_value(value, limit, "the string")
        except NSRuntimeError as e:
            raise _at(e, span) from None

    return too_large


def _show(limit: int) -> Callable[[Any, Any], str]:
    """The display string of a non-string value, within the value-size limit (code 37 at ``span``)."""

    def show(value: Any, span: Any) -> str:
        try:
            return checked_display(value, limit)
        except NSRuntimeError as e:
            raise (e if span is None else _at(e, span)) from None

    return show


def generate_body(comp: Compiler, stmts: tuple[A.Stmt, ...], ctx: _Ctx, name: str) -> Callable[[Any], Any]:
    """One Python function ``body(frame) -> signal`` for a procedure or command body."""
    from .compiler import BREAK, CONTINUE, _index_slow, _loop_error, call_error, iter_items

    g = _Gen(comp, ctx, name)
    g.block(stmts, 1)
    src = "def body(f):\n" + "\n".join(g.lines) + "\n    return None\n"
    rt = comp.rt
    ns: dict[str, Any] = {
        "K": g.consts, "lookup": rt.lookup_global, "procs": rt.procedures_table, "resolve": rt.resolve_procedure,
        "display": V.display, "write": rt.write, "slow": _slow, "index_slow": _index_slow,
        "NSRuntimeError": NSRuntimeError, "call_error": call_error, "recursion_error": rt.recursion_error,
        "loop_error": _loop_error, "iter_items": iter_items, "charge": rt.charge, "BREAK": BREAK,
        "CONTINUE": CONTINUE, "LEN_TYPES": (str, list, dict), "builtin_len": BUILTINS["len"],
        "too_large": _too_large(rt.limits.max_value_bytes), "show": _show(rt.limits.max_value_bytes),
        "INT_LOW": V._INT_LOW, "INT_BOUND": V._INT_BOUND,
    }
    exec(compile(src, f"<nslang {name}>", "exec"), ns)  # noqa: S102 - generated from the AST only
    fn: Callable[[Any], Any] = ns["body"]
    return fn
