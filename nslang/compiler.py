"""AST → Python closures: each node is compiled once into a function of the frame.

Pipeline position: ``parser`` gives an :class:`~nslang.ast.Program`; the
:class:`~nslang.interpreter.Interpreter` asks this module to compile each procedure (lazily, on first
call), command block and event handler. Nothing here dispatches on node types at run time.

Conventions of the compiled code:

* A **frame** is a plain ``dict`` of the procedure's local variables (a fresh one per call; in command
  blocks it is the interpreter's global dict). The last-result register lives in the frame under the
  key ``"last"`` (a keyword, so no variable can collide with it), and only in code that reads it.
* An **expression** compiles to ``fn(frame) -> value``.
* A **statement** compiles to ``fn(frame) -> signal``: ``None`` to go on, :data:`BREAK` or
  :data:`CONTINUE`, or a 1-tuple ``(value,)`` for ``return``. Control flow therefore costs no exceptions.
* Errors are :class:`~nslang.errors.NSRuntimeError` with the span of the failing node; procedure calls
  add NeuroScript call-stack frames as errors pass through them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ast as A
from . import values as V
from ._stack import deep_call, note_procedure
from .builtins import BUILTINS
from .errors import CallFrame, ErrorCode, NSRuntimeError, out_of_memory
from .limits import ELEMENT_BYTES, checked_display, display_size, value_too_large
from .source import Span
from .values import ErrorValue, display, interpolation_display, type_name

if TYPE_CHECKING:  # pragma: no cover
    from .interpreter import Interpreter

__all__ = ["BREAK", "CONTINUE", "CompiledProcedure", "Compiler"]

Frame = dict[str, Any]
ExprFn = Callable[[Frame], Any]
StmtFn = Callable[[Frame], Any]


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


BREAK = _Signal("break")
CONTINUE = _Signal("continue")

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _at(e: NSRuntimeError, span: Span) -> NSRuntimeError:
    if e.span is None:
        e.span = span
    return e


def call_error(err: NSRuntimeError, name: str, span: Span) -> NSRuntimeError:
    """An error leaving procedure ``name`` called at ``span``: one more NeuroScript call-stack line."""
    err.stack.append(CallFrame(name, span))
    return _at(err, span)


def _err(msg: str, code: int, span: Span) -> NSRuntimeError:
    return NSRuntimeError(msg, code=code, span=span)


class _Ctx:
    """Compile-time facts about the code being compiled."""

    __slots__ = ("name", "tracks_last", "in_handler", "loops", "handler", "kind", "track_stmt")

    def __init__(self, name: str, kind: str, tracks_last: bool, handler: Any = None) -> None:
        self.name = name
        self.kind = kind  # "procedure" | "command" | "event"
        self.tracks_last = tracks_last
        self.in_handler = False
        self.loops = 0
        self.handler = handler  # compiled on-error runner or None
        #: the one statement that records its value in ``last`` even when ``tracks_last`` is off:
        #: the final statement of a procedure body whose value is the implicit result (spec §7.2)
        self.track_stmt: A.Stmt | None = None


def _reads_last(nodes: Any) -> bool:
    """Does this code read the last-result register (``last``, ``{{last}}``, ``eval``, raw strings)?"""
    stack = list(nodes) if isinstance(nodes, (list, tuple)) else [nodes]
    while stack:
        n = stack.pop()
        if isinstance(n, (A.Last, A.Eval)):
            return True
        if isinstance(n, A.Placeholder) and n.name == "last":
            return True
        if isinstance(n, A.RawString) and n.interpolate and "last" in n.text:
            return True
        if isinstance(n, tuple):
            stack.extend(n)
            continue
        slots = getattr(type(n), "__slots__", ())
        for s in slots:
            v = getattr(n, s, None)
            if isinstance(v, (tuple, list)) or hasattr(type(v), "__slots__") and not isinstance(v, (str, Span)):
                stack.append(v)
    return False


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


def _call_nesting(body: tuple[A.Stmt, ...]) -> int:
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


def _find_handler(body: tuple[A.Stmt, ...]) -> A.OnError | None:
    """The first ``on error`` at any depth of a body (hoisted; the first one wins)."""
    for s in body:
        if isinstance(s, A.OnError):
            return s
        for attr in ("body", "orelse"):
            inner = getattr(s, attr, None)
            if inner and not isinstance(s, A.OnError):
                h = _find_handler(inner)
                if h is not None:
                    return h
    return None


class CompiledProcedure:
    """A procedure ready to call: ``invoke(args) -> value`` (compiled on first call)."""

    __slots__ = ("node", "interp", "invoke", "name")

    def __init__(self, node: A.Procedure, interp: Interpreter) -> None:
        self.node = node
        self.name = node.name
        self.interp = interp
        #: ``invoke(args: list) -> value``; compiles the procedure on the first call, then is replaced.
        self.invoke: Callable[[list[Any]], Any] = self._first_call

    def _first_call(self, args: list[Any]) -> Any:
        try:
            self.invoke = Compiler(self.interp).procedure(self.node)
        except RecursionError:
            raise NSRuntimeError(f"procedure '{self.name}' is nested too deeply to compile",
                                 code=ErrorCode.NESTING_DEPTH_EXCEEDED, span=self.node.span) from None
        note_procedure(self.interp, _call_nesting(self.node.body))
        return self.invoke(args)


class Compiler:
    """Compiles AST nodes for one :class:`~nslang.interpreter.Interpreter` (the runtime)."""

    def __init__(self, interp: Interpreter) -> None:
        self.rt = interp

    # =========================================================================================
    # Procedures, command blocks, event handlers

    def procedure(self, p: A.Procedure) -> Callable[[list[Any]], Any]:
        """Compile ``p`` into ``invoke(args: list) -> value``.

        Arity errors are code 2 (ProcNotFound family, as upstream wraps them); the call depth limit
        is code 37; a wrong number of values for a multi-name ``returns`` clause is code 2.
        """
        rt = self.rt
        handler_node = _find_handler(p.body)
        implicit, final = implicit_result(p.body)
        ctx = _Ctx(p.name, "procedure", _reads_last(p.body) or (implicit and final is None))
        ctx.track_stmt = final
        if handler_node is not None:
            ctx.handler = self._handler(handler_node, ctx)
        body = self.body(p.body, ctx, p.name)
        params = p.needs + p.optional
        nreq, nmax = len(p.needs), len(params)
        nret = len(p.returns)
        name = p.name
        tracks_last = ctx.tracks_last
        span = p.span

        def arity_error(n: int) -> NSRuntimeError:
            want = f"{nreq}" if nreq == nmax else f"{nreq} to {nmax}"
            return NSRuntimeError(
                f"procedure '{name}' takes {want} argument{'s' if nmax != 1 else ''}, got {n}",
                code=ErrorCode.PROC_NOT_FOUND,
            )

        def finish(r: Any) -> Any:
            if r is None:
                return None
            if r is BREAK or r is CONTINUE:
                raise NSRuntimeError(f"'{r.name}' outside a loop", code=ErrorCode.CONTROL_FLOW, span=span)
            v = r[0]
            if nret > 1 and (type(v) is not list or len(v) != nret):
                got = f"{len(v)} values" if type(v) is list else "1 value"
                raise NSRuntimeError(
                    f"procedure '{name}' declares {nret} return values ({', '.join(p.returns)}) but returned {got}",
                    code=ErrorCode.PROC_NOT_FOUND, span=span,
                )
            return v

        if rt.limits.max_steps or rt.limits.timeout_s:  # resource limits: every call is counted
            fast = self._invoker(body, params, nreq, nmax, nret, name, tracks_last, implicit, arity_error, finish)
            charge = rt.charge

            def charged(args: list[Any]) -> Any:
                charge(1)
                return fast(args)

            return charged
        return self._invoker(body, params, nreq, nmax, nret, name, tracks_last, implicit, arity_error, finish)

    def _invoker(self, body: StmtFn, params: tuple[str, ...], nreq: int, nmax: int, nret: int, name: str,
                 tracks_last: bool, implicit: bool, arity_error: Callable[[int], NSRuntimeError],
                 finish: Callable[[Any], Any]) -> Callable[[list[Any]], Any]:
        rt = self.rt
        checkpoint = rt.checkpoint_box
        if nreq == nmax == 1 and not tracks_last and not implicit:
            p0 = params[0]

            def invoke1(args: list[Any]) -> Any:
                if len(args) != 1:
                    raise arity_error(len(args))
                d = rt.depth + 1
                if d > checkpoint[0]:  # past max_call_depth, or time to measure the Python stack
                    return deep_call(rt, invoke1, args, name)
                rt.depth = d
                try:
                    r = body({p0: args[0]})
                finally:
                    rt.depth = d - 1
                if r is None:
                    return None
                if type(r) is tuple and nret < 2:
                    return r[0]
                return finish(r)

            return invoke1

        def invoke(args: list[Any]) -> Any:
            n = len(args)
            if n < nreq or n > nmax:
                raise arity_error(n)
            f = dict(zip(params, args))
            if n < nmax:
                for q in params[n:]:
                    f[q] = None
            if tracks_last:
                f["last"] = None
            d = rt.depth + 1
            if d > checkpoint[0]:
                return deep_call(rt, invoke, args, name)
            rt.depth = d
            try:
                r = body(f)
            finally:
                rt.depth = d - 1
            if r is None and implicit:
                r = (f.get("last"),)
            return finish(r)

        return invoke

    def command(self, c: A.CommandBlock, index: int) -> Callable[[Frame], Any]:
        """Compile a command block into ``run(globals_frame)``."""
        handler_node = _find_handler(c.body)
        ctx = _Ctx(f"command #{index}", "command", _reads_last(c.body) or self.rt.commands_track_last)
        if handler_node is not None:
            ctx.handler = self._handler(handler_node, ctx)
        body = self.body(c.body, ctx, ctx.name)

        def run(f: Frame) -> Any:
            r = body(f)
            if r is BREAK or r is CONTINUE:
                raise NSRuntimeError(f"'{r.name}' outside a loop", code=ErrorCode.CONTROL_FLOW, span=c.span)
            return r

        return run

    def event_body(self, h: A.EventHandler) -> Callable[[Frame], Any]:
        """Compile an ``on event`` body; it runs in handler mode (``return`` is code 12)."""
        ctx = _Ctx("on event", "event", _reads_last(h.body))
        ctx.in_handler = True
        return self.block(h.body, ctx)

    def _handler(self, node: A.OnError, ctx: _Ctx) -> Callable[[Frame, NSRuntimeError], bool]:
        """Compile an ``on error`` body into ``handle(frame, error) -> cleared``."""
        hctx = _Ctx(ctx.name, ctx.kind, ctx.tracks_last)
        hctx.in_handler = True
        body = self.block(node.body, hctx)
        rt = self.rt

        def handle(f: Frame, e: NSRuntimeError) -> bool:
            saved = rt.handler_cleared
            rt.handler_cleared = False
            f["system_error_message"] = e.message
            f["system_error_code"] = e.code
            try:
                r = body(f)
                if r is BREAK or r is CONTINUE:
                    raise NSRuntimeError(f"'{r.name}' outside a loop", code=ErrorCode.CONTROL_FLOW,
                                         span=node.span)
                return rt.handler_cleared
            finally:
                rt.handler_cleared = saved

        return handle

    # =========================================================================================
    # Blocks

    def body(self, stmts: tuple[A.Stmt, ...], ctx: _Ctx, name: str) -> StmtFn:
        """A procedure or command body: generated Python code when it has no ``on error`` handler
        (see :mod:`nslang._codegen`), else closures; both implement the same semantics."""
        if ctx.handler is None and self.rt.codegen:
            from ._codegen import generate_body

            try:
                return generate_body(self, stmts, ctx, name)
            except (SyntaxError, RecursionError, MemoryError, ValueError):
                pass  # e.g. nesting deeper than Python allows in one function: use closures
        return self.block(stmts, ctx)

    def block(self, stmts: tuple[A.Stmt, ...], ctx: _Ctx) -> StmtFn:
        """A statement list → one function; stops at the first signal and returns it."""
        fns = [self.stmt(s, ctx) for s in stmts if not isinstance(s, A.OnError)]
        if ctx.handler is not None and not ctx.in_handler:
            return self._guarded_block(fns, ctx.handler)
        n = len(fns)
        if n == 0:
            return lambda f: None
        if n == 1:
            return fns[0]
        if n == 2:
            s0, s1 = fns
            return lambda f: s0(f) or s1(f)
        if n == 3:
            s0, s1, s2 = fns
            return lambda f: s0(f) or s1(f) or s2(f)
        if n == 4:
            s0, s1, s2, s3 = fns
            return lambda f: s0(f) or s1(f) or s2(f) or s3(f)
        if n == 5:
            s0, s1, s2, s3, s4 = fns
            return lambda f: s0(f) or s1(f) or s2(f) or s3(f) or s4(f)
        seq = tuple(fns)

        def run(f: Frame) -> Any:
            for s in seq:
                r = s(f)
                if r is not None:
                    return r
            return None

        return run

    @staticmethod
    def _guarded_block(fns: list[StmtFn], handler: Callable[[Frame, NSRuntimeError], bool]) -> StmtFn:
        """Block of a procedure with an ``on error`` handler: a failing statement runs the handler
        once; if it ran ``clear_error``, execution resumes with the next statement of this block."""
        seq = tuple(fns)

        def run(f: Frame) -> Any:
            for s in seq:
                try:
                    r = s(f)
                except (NSRuntimeError, MemoryError) as caught:  # running out of memory is catchable too
                    e = caught if isinstance(caught, NSRuntimeError) else out_of_memory()
                    if e.handled_in is not f and e.catchable:
                        e.handled_in = f
                        try:
                            cleared = handler(f, e)
                        except NSRuntimeError as new:
                            new.handled_in = f  # the handler's own error is not handled again (spec §5.3)
                            raise
                        if cleared:
                            continue
                    if e is caught:
                        raise
                    raise e from None
                if r is not None:
                    return r
            return None

        return run

    # =========================================================================================
    # Statements

    def stmt(self, s: A.Stmt, ctx: _Ctx) -> StmtFn:
        meth = getattr(self, "stmt_" + type(s).__name__)
        if s is ctx.track_stmt and not ctx.tracks_last:
            ctx.tracks_last = True
            try:
                fn: StmtFn = meth(s, ctx)
            finally:
                ctx.tracks_last = False
            return fn
        fn = meth(s, ctx)
        return fn

    def stmt_Set(self, s: A.Set, ctx: _Ctx) -> StmtFn:  # noqa: N802
        val = self.expr(s.value, ctx)
        track = ctx.tracks_last
        if len(s.targets) == 1:
            t = s.targets[0]
            if not t.path:
                name = t.name
                if track:
                    def set_last(f: Frame) -> None:
                        f[name] = f["last"] = val(f)
                    return set_last

                def set_simple(f: Frame) -> None:
                    f[name] = val(f)

                return set_simple
            assign = self.assigner(t, ctx)
            if track:
                def set_path_last(f: Frame) -> None:
                    v = f["last"] = val(f)
                    assign(f, v)
                return set_path_last

            def set_path(f: Frame) -> None:
                assign(f, val(f))

            return set_path
        assigns = [self.assigner(t, ctx) for t in s.targets]
        n = len(assigns)
        span = s.span

        def set_multi(f: Frame) -> None:
            v = val(f)
            if type(v) is not list:
                raise _err(f"assigning to {n} targets needs a list, got {type_name(v)}", ErrorCode.TYPE, span)
            if len(v) != n:
                raise _err(f"assigning to {n} targets needs a list of {n} values, got {len(v)}",
                           ErrorCode.COUNT_MISMATCH, span)
            for a, x in zip(assigns, v):
                a(f, x)
            if track:
                f["last"] = v

        return set_multi

    def stmt_Call(self, s: A.Call, ctx: _Ctx) -> StmtFn:  # noqa: N802
        call = self.expr(s.call, ctx)
        if ctx.tracks_last:
            def call_last(f: Frame) -> None:
                f["last"] = call(f)
            return call_last

        def call_stmt(f: Frame) -> None:
            call(f)

        return call_stmt

    def stmt_Return(self, s: A.Return, ctx: _Ctx) -> StmtFn:  # noqa: N802
        span = s.span
        if ctx.in_handler:
            def bad_return(f: Frame) -> Any:
                raise _err("'return' is not allowed inside an 'on error' or 'on event' handler",
                           ErrorCode.RETURN_VIOLATION, span)
            return bad_return
        if ctx.kind == "command":  # pragma: no cover - rejected by the parser
            raise NSRuntimeError("'return' in a command block", span=span)
        fns = [self.expr(e, ctx) for e in s.values]
        if not fns:
            return lambda f: (None,)
        if len(fns) == 1:
            e0 = fns[0]
            return lambda f: (e0(f),)
        return lambda f: ([e(f) for e in fns],)

    def stmt_Emit(self, s: A.Emit, ctx: _Ctx) -> StmtFn:  # noqa: N802
        val = self.expr(s.value, ctx)
        rt = self.rt
        track = ctx.tracks_last
        limit = rt.limits.max_value_bytes

        def emit(f: Frame) -> None:
            v = val(f)
            rt.write((v if type(v) is str else checked_display(v, limit)) + "\n")
            if track:
                f["last"] = v

        return emit

    def stmt_Must(self, s: A.Must, ctx: _Ctx) -> StmtFn:  # noqa: N802
        val = self.expr(s.value, ctx)
        check = self._must_check(s.value, s.span, s.keyword)
        track = ctx.tracks_last

        def must(f: Frame) -> None:
            v = val(f)
            if not v:
                check(v)
            if track:
                f["last"] = v

        return must

    def _must_check(self, node: A.Expr, span: Span, keyword: str) -> Callable[[Any], None]:
        from .unparse import unparse_expr

        text = unparse_expr(node)

        def fail(v: Any) -> None:
            if type(v) is ErrorValue:
                code = v.get("code")
                raise _err(f"{keyword} {text}: got an error value (code {display(code)}): {v.message}",
                           ErrorCode.MUST_FAILED, span)
            if not v:
                raise _err(f"{keyword} condition failed: {text}", ErrorCode.MUST_FAILED, span)

        return fail

    def stmt_Fail(self, s: A.Fail, ctx: _Ctx) -> StmtFn:  # noqa: N802
        span = s.span
        val = self.expr(s.value, ctx) if s.value is not None else None

        def fail(f: Frame) -> None:
            msg = display(val(f)) if val is not None else "fail statement executed"
            raise _err(msg, ErrorCode.FAIL_STATEMENT, span)

        return fail

    def stmt_ClearError(self, s: A.ClearError, ctx: _Ctx) -> StmtFn:  # noqa: N802
        span = s.span
        rt = self.rt
        if not ctx.in_handler or ctx.kind == "event":
            def bad(f: Frame) -> None:
                raise _err("'clear_error' is only allowed inside an 'on error' handler",
                           ErrorCode.CLEAR_VIOLATION, span)
            return bad

        def clear(f: Frame) -> None:
            rt.handler_cleared = True

        return clear

    def stmt_ClearEvent(self, s: A.ClearEvent, ctx: _Ctx) -> StmtFn:  # noqa: N802
        rt = self.rt
        event = self.expr(s.event, ctx) if s.event is not None else None
        hname = s.handler_name

        def clear(f: Frame) -> None:
            rt.clear_event_handlers(display(event(f)) if event is not None else None, hname)

        return clear

    def stmt_Ask(self, s: A.Ask, ctx: _Ctx) -> StmtFn:  # noqa: N802
        rt = self.rt
        worker = self.expr(s.worker, ctx) if s.worker is not None else None
        prompt = self.expr(s.prompt, ctx)
        options = self.expr(s.options, ctx) if s.options is not None else None
        assign = self.assigner(s.target, ctx) if s.target is not None else None
        track = ctx.tracks_last
        span = s.span

        def ask(f: Frame) -> None:
            w = worker(f) if worker is not None else None
            p = prompt(f)
            o = options(f) if options is not None else None
            if o is not None and not isinstance(o, dict):
                raise _err(f"ask ... with OPTIONS needs a map, got {type_name(o)}", ErrorCode.TYPE, span)
            try:
                v = rt.ask(None if w is None else display(w), checked_display(p, rt.limits.max_value_bytes), o,
                           show=assign is None)
            except NSRuntimeError as e:
                raise _at(e, span) from None
            if assign is not None:
                assign(f, v)
            if track:
                f["last"] = v

        return ask

    def stmt_Break(self, s: A.Break, ctx: _Ctx) -> StmtFn:  # noqa: N802
        if ctx.loops == 0:
            span = s.span

            def bad(f: Frame) -> None:
                raise _err("'break' outside a loop", ErrorCode.CONTROL_FLOW, span)
            return bad
        return lambda f: BREAK

    def stmt_Continue(self, s: A.Continue, ctx: _Ctx) -> StmtFn:  # noqa: N802
        if ctx.loops == 0:
            span = s.span

            def bad(f: Frame) -> None:
                raise _err("'continue' outside a loop", ErrorCode.CONTROL_FLOW, span)
            return bad
        return lambda f: CONTINUE

    def stmt_If(self, s: A.If, ctx: _Ctx) -> StmtFn:  # noqa: N802
        cond = self.expr(s.cond, ctx)
        body = self.block(s.body, ctx)
        if s.orelse:
            orelse = self.block(s.orelse, ctx)

            def if_else(f: Frame) -> Any:
                if cond(f):
                    return body(f)
                return orelse(f)

            return if_else

        def if_(f: Frame) -> Any:
            if cond(f):
                return body(f)
            return None

        return if_

    def _loop_limit(self) -> tuple[int, Any]:
        return self.rt.limits.max_loop_iterations or (1 << 62), self.rt

    def stmt_While(self, s: A.While, ctx: _Ctx) -> StmtFn:  # noqa: N802
        cond = self.expr(s.cond, ctx)
        ctx.loops += 1
        body = self.block(s.body, ctx)
        ctx.loops -= 1
        limit, rt = self._loop_limit()
        span = s.span
        budget = rt.limits.max_steps or rt.limits.timeout_s
        per_iter = max(1, len(s.body))

        def while_(f: Frame) -> Any:
            n = 0
            while cond(f):
                r = body(f)
                if r is not None:
                    if r is BREAK:
                        break
                    if r is not CONTINUE:
                        return r
                n += 1
                if n >= limit:
                    raise _loop_error(limit, span)
                if budget:
                    rt.charge(per_iter)
            return None

        return while_

    def stmt_ForEach(self, s: A.ForEach, ctx: _Ctx) -> StmtFn:  # noqa: N802
        it = self.expr(s.iterable, ctx)
        ctx.loops += 1
        body = self.block(s.body, ctx)
        ctx.loops -= 1
        var = s.var
        limit, rt = self._loop_limit()
        span = s.span
        budget = rt.limits.max_steps or rt.limits.timeout_s
        per_iter = max(1, len(s.body))

        def for_each(f: Frame) -> Any:
            for x in iter_items(it(f), limit, span):
                f[var] = x
                r = body(f)
                if r is not None:
                    if r is BREAK:
                        break
                    if r is not CONTINUE:
                        return r
                if budget:
                    rt.charge(per_iter)
            return None

        return for_each

    # =========================================================================================
    # Assignment targets (auto-vivification, spec §3)

    def assigner(self, lv: A.LValue, ctx: _Ctx) -> Callable[[Frame, Any], None]:
        """``assign(frame, value)`` for ``lv``: a name, or a name with ``[k]`` / ``.f`` steps.

        A step that adds an element obeys the value-size limit (error 37, :mod:`nslang.limits`).
        """
        name = lv.name
        limit = self.rt.limits.max_value_bytes
        max_entries = limit // ELEMENT_BYTES
        if not lv.path:
            def assign_name(f: Frame, v: Any) -> None:
                f[name] = v
            return assign_name
        steps: list[tuple[bool, Any, Span]] = []
        for step in lv.path:
            if isinstance(step, A.Field):
                steps.append((True, step.name, step.span))
            else:
                steps.append((False, self.expr(step, ctx), step.span))
        if len(steps) == 1 and not steps[0][0]:
            key_fn = steps[0][1]
            kspan = steps[0][2]

            def assign_index(f: Frame, v: Any) -> None:
                k = key_fn(f)
                c = f.get(name)
                tc = type(c)
                if tc is list:
                    if type(k) is int and 0 <= k < len(c):
                        c[k] = v
                        return
                    _list_store(c, k, v, kspan, limit)
                elif tc is dict:
                    key = k if type(k) is str else display(k)
                    if len(c) < max_entries:
                        c[key] = v
                    else:
                        _map_store(c, key, v, kspan, limit)
                else:
                    c = _new_container(k)
                    f[name] = c
                    _store(c, k, v, kspan, limit)

            return assign_index

        def assign_path(f: Frame, v: Any) -> None:
            keys = [(is_field, k if is_field else k(f), sp) for is_field, k, sp in steps]
            c = f.get(name)
            first_field, first_key, _sp = keys[0]
            if not _fits(c, first_field, first_key):
                c = _new_container(first_key, first_field)
                f[name] = c
            for i in range(len(keys) - 1):
                is_field, k, sp = keys[i]
                nf, nk, _nsp = keys[i + 1]
                child = _child(c, is_field, k, sp)
                if not _fits(child, nf, nk):
                    child = _new_container(nk, nf)
                    _store(c, k, child, sp, limit, is_field)
                c = child
            is_field, k, sp = keys[-1]
            _store(c, k, v, sp, limit, is_field)

        return assign_path

    # =========================================================================================
    # Expressions

    def expr(self, e: A.Expr, ctx: _Ctx) -> ExprFn:
        meth = getattr(self, "expr_" + type(e).__name__)
        fn: ExprFn = meth(e, ctx)
        return fn

    def expr_Literal(self, e: A.Literal, ctx: _Ctx) -> ExprFn:  # noqa: N802
        v = e.value
        return lambda f: v

    def expr_RawString(self, e: A.RawString, ctx: _Ctx) -> ExprFn:  # noqa: N802
        text = e.text
        if not e.interpolate or "{{" not in text:
            return lambda f: text
        return self._interpolator(lambda f: text, e.span, ctx)

    def _interpolator(self, text_fn: ExprFn, span: Span, ctx: _Ctx) -> ExprFn:
        rt = self.rt
        limit = rt.limits.max_value_bytes

        def interpolate(f: Frame) -> str:
            text = text_fn(f)
            size = len(text)  # an upper bound of the result's length so far (value-size limit)

            def sub(m: re.Match[str]) -> str:
                nonlocal size
                n = m.group(1)
                if n == "last":
                    v = f.get("last")
                else:
                    try:
                        v = f[n]
                    except KeyError:
                        try:
                            v = rt.lookup_global(n, span)
                        except NSRuntimeError as err:
                            raise _err(f"placeholder {{{{{n}}}}}: {err.message}", ErrorCode.EVALUATION,
                                       span) from None
                if (type(v) is list or isinstance(v, dict)) and v:
                    size += display_size(v, limit - size)
                    if size > limit:
                        raise _at(value_too_large("the interpolated string", size, limit), span)
                out = interpolation_display(v)
                size += len(out)
                if size > limit:
                    raise _at(value_too_large("the interpolated string", size, limit), span)
                return out

            return _PLACEHOLDER.sub(sub, text)

        return interpolate

    def expr_Eval(self, e: A.Eval, ctx: _Ctx) -> ExprFn:  # noqa: N802
        inner = self.expr(e.expr, ctx)
        return self._interpolator(lambda f: interpolation_display(inner(f)), e.span, ctx)

    def expr_Placeholder(self, e: A.Placeholder, ctx: _Ctx) -> ExprFn:  # noqa: N802
        if e.name == "last":
            return lambda f: f.get("last")
        return self.expr_Variable(A.Variable(e.name, e.span), ctx)

    def expr_Variable(self, e: A.Variable, ctx: _Ctx) -> ExprFn:  # noqa: N802
        name = e.name
        span = e.span
        lookup = self.rt.lookup_global

        def var(f: Frame) -> Any:
            try:
                return f[name]
            except KeyError:
                return lookup(name, span)

        return var

    def expr_Last(self, e: A.Last, ctx: _Ctx) -> ExprFn:  # noqa: N802
        return lambda f: f.get("last")

    def expr_ListLit(self, e: A.ListLit, ctx: _Ctx) -> ExprFn:  # noqa: N802
        fns = [self.expr(x, ctx) for x in e.items]
        if not fns:
            return lambda f: []
        if all(isinstance(x, A.Literal) for x in e.items):
            consts = [x.value for x in e.items]  # type: ignore[union-attr]
            return lambda f: consts[:]
        return lambda f: [x(f) for x in fns]

    def expr_MapLit(self, e: A.MapLit, ctx: _Ctx) -> ExprFn:  # noqa: N802
        entries = []
        for k, v in e.entries:
            if isinstance(k, A.Literal):
                kv = k.value
                ks = kv if type(kv) is str else display(kv)
                entries.append((True, ks, self.expr(v, ctx)))
            else:
                entries.append((False, self.expr(k, ctx), self.expr(v, ctx)))
        if all(c for c, _, _ in entries):
            pairs = [(k, v) for _, k, v in entries]
            return lambda f: {k: v(f) for k, v in pairs}

        def map_lit(f: Frame) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for const, k, v in entries:
                if const:
                    out[k] = v(f)
                else:
                    kv = k(f)
                    out[kv if type(kv) is str else display(kv)] = v(f)
            return out

        return map_lit

    def expr_Index(self, e: A.Index, ctx: _Ctx) -> ExprFn:  # noqa: N802
        target = self.expr(e.target, ctx)
        index = self.expr(e.index, ctx)
        span = e.span

        def idx(f: Frame) -> Any:
            c = target(f)
            i = index(f)
            tc = type(c)
            if tc is list:
                if type(i) is int and 0 <= i < len(c):
                    return c[i]
            elif tc is dict and type(i) is str:
                try:
                    return c[i]
                except KeyError:
                    pass
            return _index_slow(c, i, span)

        return idx

    def expr_And(self, e: A.And, ctx: _Ctx) -> ExprFn:  # noqa: N802
        left = self.expr(e.left, ctx)
        right = self.expr(e.right, ctx)
        return lambda f: bool(left(f)) and bool(right(f))

    def expr_Or(self, e: A.Or, ctx: _Ctx) -> ExprFn:  # noqa: N802
        left = self.expr(e.left, ctx)
        right = self.expr(e.right, ctx)
        return lambda f: bool(left(f)) or bool(right(f))

    def expr_UnaryOp(self, e: A.UnaryOp, ctx: _Ctx) -> ExprFn:  # noqa: N802
        op = e.op
        span = e.span
        if op == "typeof":
            if isinstance(e.operand, A.Variable):
                name = e.operand.name
                rt = self.rt

                def typeof_var(f: Frame) -> str:
                    if name in f:
                        return type_name(f[name])
                    try:
                        return type_name(rt.lookup_global(name, span))
                    except NSRuntimeError:
                        return "nil"

                return typeof_var
            inner = self.expr(e.operand, ctx)
            return lambda f: type_name(inner(f))
        if op in ("-", "~") and isinstance(e.operand, A.Literal) and type(e.operand.value) in (int, float):
            v = -e.operand.value if op == "-" else ~e.operand.value if type(e.operand.value) is int else None
            if v is not None:
                return lambda f: v
        inner = self.expr(e.operand, ctx)
        if op == "not":
            return lambda f: not inner(f)
        if op == "some":
            return lambda f: bool(inner(f))
        if op == "no":
            return lambda f: not inner(f)
        if op == "must":
            check = self._must_check(e.operand, span, "must")

            def must(f: Frame) -> Any:
                v = inner(f)
                if not v:
                    check(v)
                return v

            return must
        fn = V.negate if op == "-" else V.bit_not

        def unop(f: Frame) -> Any:
            v = inner(f)
            if op == "-" and (type(v) is int or type(v) is float):
                return -v
            try:
                return fn(v)
            except NSRuntimeError as err:
                raise _at(err, span) from None

        return unop

    def expr_BinOp(self, e: A.BinOp, ctx: _Ctx) -> ExprFn:  # noqa: N802
        from ._binops import make_binop

        return make_binop(self, e, ctx)

    def expr_ProcCall(self, e: A.ProcCall, ctx: _Ctx) -> ExprFn:  # noqa: N802
        span = e.span
        args = [self.expr(a, ctx) for a in e.args]
        builtin = BUILTINS.get(e.name.lower())
        if builtin is not None:
            bname = e.name.lower()
            if len(args) != 1:
                def bad_arity(f: Frame) -> Any:
                    raise _err(f"built-in function {bname}() takes exactly 1 argument, got {len(args)}",
                               ErrorCode.ARG_MISMATCH, span)
                return bad_arity
            a0 = args[0]
            if bname == "len":
                def len_(f: Frame) -> Any:
                    v = a0(f)
                    t = type(v)
                    if t is str or t is list or t is dict:
                        return len(v)
                    return builtin(v)
                return len_

            def call_builtin(f: Frame) -> Any:
                try:
                    return builtin(a0(f))
                except NSRuntimeError as err:
                    raise _at(err, span) from None

            return call_builtin
        rt = self.rt
        procs = rt.procedures_table
        name = e.name
        track = ctx.tracks_last

        def missing() -> Any:
            return rt.resolve_procedure(name, span)

        if len(args) == 1 and not track:
            a0 = args[0]

            def call1(f: Frame) -> Any:
                arg = a0(f)
                p = procs.get(name) or missing()
                try:
                    return p.invoke([arg])
                except NSRuntimeError as err:
                    raise call_error(err, name, span) from None
                except RecursionError:
                    raise rt.recursion_error(name, span) from None

            return call1

        def call(f: Frame) -> Any:
            vals = [a(f) for a in args]
            p = procs.get(name) or missing()
            try:
                v = p.invoke(vals)
            except NSRuntimeError as err:
                raise call_error(err, name, span) from None
            except RecursionError:
                raise rt.recursion_error(name, span) from None
            if track:
                f["last"] = v
            return v

        return call

    def expr_ToolCall(self, e: A.ToolCall, ctx: _Ctx) -> ExprFn:  # noqa: N802
        rt = self.rt
        span = e.span
        path = e.path
        args = [self.expr(a, ctx) for a in e.args]
        named = [(k, self.expr(v, ctx)) for k, v in e.named]
        cache: list[Any] = []

        def tool_call(f: Frame) -> Any:
            vals = [a(f) for a in args]
            kw = {k: v(f) for k, v in named} if named else None
            if not cache:
                cache.append(rt.resolve_tool(path, span))
            try:
                return rt.invoke_tool(cache[0], vals, kw)
            except NSRuntimeError as err:
                raise _at(err, span) from None

        return tool_call


# =============================================================================================
# Helpers used by compiled code


def _loop_error(limit: int, span: Span) -> NSRuntimeError:
    return NSRuntimeError(
        f"loop ran more than {limit} iterations (raise the limit with --max-loop-iterations N, or "
        "Interpreter(max_loop_iterations=N); 0 for no limit)",
        code=ErrorCode.RESOURCE_EXHAUSTION, span=span,
    )


def iter_items(coll: Any, limit: int, span: Span) -> Any:
    """What ``for each`` walks: a snapshot of a list, a map's values, a string's characters (§3)."""
    t = type(coll)
    if t is list:
        items: Any = coll[:]
    elif t is str:
        items = coll
    elif isinstance(coll, dict):
        items = list(coll.values())
    else:
        raise _err(f"for each needs a list, map or string, got {type_name(coll)}", ErrorCode.TYPE, span)
    if len(items) > limit:
        raise _loop_error(limit, span)
    return items


def _index_slow(c: Any, i: Any, span: Span) -> Any:
    """``c[i]`` for every case the fast path did not take (spec §4.5); errors carry ``span``."""
    if c is None:
        raise _err("cannot index nil", ErrorCode.EVALUATION, span)
    if i is None:
        raise _err("index is nil", ErrorCode.EVALUATION, span)
    tc = type(c)
    if tc is list:
        try:
            k = V.to_int(i, "list index")
        except NSRuntimeError as err:
            raise _at(err, span) from None
        if 0 <= k < len(c):
            return c[k]
        raise _err(f"list index {V.short_repr(k)} out of range (list has {len(c)} element{'s' if len(c) != 1 else ''})",
                   ErrorCode.BOUNDS, span)
    if isinstance(c, dict):
        key = i if type(i) is str else display(i)
        if key in c:
            return c[key]
        if tc is V.EventValue:
            return None
        raise _err(f"key {key!r} not found in map", ErrorCode.KEY_NOT_FOUND, span)
    hint = " (use tool.str.Substring)" if tc is str else ""
    raise _err(f"cannot index a {type_name(c)}{hint}", ErrorCode.TYPE, span)


_MAX_PAD = 1_000_000


def _list_store(c: list[Any], k: Any, v: Any, span: Span, limit: int) -> None:
    if type(k) is not int:
        if type(k) is float and k.is_integer():
            k = int(k)
        else:
            raise _err(f"list index must be a non-negative integer, got {type_name(k)} {V.short_repr(k)}",
                       ErrorCode.TYPE, span)
    if k < 0:
        raise _err(f"list index must not be negative, got {V.short_repr(k)}", ErrorCode.BOUNDS, span)
    n = len(c)
    if k < n:
        c[k] = v
        return
    if (k + 1) * ELEMENT_BYTES > limit:
        raise _at(value_too_large("the list", (k + 1) * ELEMENT_BYTES, limit), span)
    if k == n:
        c.append(v)
    elif k - n > _MAX_PAD:
        raise _err(f"list index {V.short_repr(k)} is too far past the end (length {n})", ErrorCode.BOUNDS, span)
    else:
        c.extend([None] * (k - n))
        c.append(v)


def _is_index(k: Any) -> bool:
    return type(k) is int or (type(k) is float and k.is_integer())


def _new_container(k: Any, is_field: bool = False) -> Any:
    return [] if not is_field and _is_index(k) and k >= 0 else {}


def _fits(c: Any, is_field: bool, k: Any) -> bool:
    if isinstance(c, dict):
        return True
    # an existing list is never replaced: a bad step on it is an error (spec §3), raised by _child/_store
    return type(c) is list


def _child(c: Any, is_field: bool, k: Any, span: Span) -> Any:
    if type(c) is list:
        if is_field:
            raise _err(f"cannot use .{k} on a list", ErrorCode.TYPE, span)
        if not _is_index(k):
            raise _err(f"list index must be a non-negative integer, got {type_name(k)} {V.short_repr(k)}",
                       ErrorCode.TYPE, span)
        i = int(k)
        if i < 0:
            raise _err(f"list index must not be negative, got {V.short_repr(i)}", ErrorCode.BOUNDS, span)
        return c[i] if i < len(c) else None
    return c.get(k if type(k) is str else display(k))


def _store(c: Any, k: Any, v: Any, span: Span, limit: int, is_field: bool = False) -> None:
    """``c[k] = v`` for an assignment path; lists and maps stay within the value-size limit ``limit``."""
    if type(c) is list:
        if is_field:
            raise _err(f"cannot use .{k} on a list", ErrorCode.TYPE, span)
        _list_store(c, k, v, span, limit)
    else:
        _map_store(c, k if type(k) is str else display(k), v, span, limit)


def _map_store(c: dict[str, Any], key: str, v: Any, span: Span, limit: int) -> None:
    if (len(c) + 1) * ELEMENT_BYTES > limit and key not in c:
        raise _at(value_too_large("the map", (len(c) + 1) * ELEMENT_BYTES, limit), span)
    c[key] = v
