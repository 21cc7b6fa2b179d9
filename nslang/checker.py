"""Static checks over the AST, run by ``nslang check`` before anything executes (issue 15 item 3).

Pipeline position: after :mod:`nslang.parser` (a program that parses), instead of running it. The
checker reads the AST only (house rule 5: behaviour off the nodes) and the interpreter's tool registry
(its :class:`~nslang.tools.registry.ToolSpec` s); it never runs code. It collects every finding rather
than stopping at the first.

Each :class:`Diagnostic` has a stable code, a severity and a span:

====  ========  ==================================================================================
code  severity  finding
====  ========  ==================================================================================
E101  error     unknown tool (with the closest registered names)
E102  error     call of a procedure that is not defined in the checked files or the stdlib (a
                warning when the program loads scripts at run time with ``tool.script.LoadScript``)
E103  error     wrong number of arguments (procedure signature, tool spec, or built-in function)
E104  error     unknown named argument of a tool (with the closest argument names)
E105  error     ``break`` / ``continue`` outside a loop
W201  warning   variable read before any assignment (not a parameter, loop variable, global
                set by a command block, predefined name, procedure or tool)
W202  warning   unreachable statement after ``return``, ``fail``, ``break`` or ``continue``
====  ========  ==================================================================================

"Before any assignment" follows source order and ignores which branch assigns: a name assigned in
an earlier ``if`` branch counts as assigned. Command blocks share their globals in file order;
procedures also see every global a command block assigns, and an ``on error`` handler sees
``system_error_message`` and ``system_error_code``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import ast as A
from .builtins import BUILTINS
from .source import Span

if TYPE_CHECKING:  # pragma: no cover
    from .tools.registry import ToolRegistry

__all__ = ["CODES", "Diagnostic", "check_program"]

#: code -> (severity, short title)
CODES: dict[str, tuple[str, str]] = {
    "E101": ("error", "unknown tool"),
    "E102": ("error", "undefined procedure"),
    "E103": ("error", "wrong number of arguments"),
    "E104": ("error", "unknown named argument"),
    "E105": ("error", "break or continue outside a loop"),
    "W201": ("warning", "variable read before any assignment"),
    "W202": ("warning", "unreachable code"),
}

_HANDLER_NAMES = frozenset({"system_error_message", "system_error_code"})
_TERMINAL = (A.Return, A.Fail, A.Break, A.Continue)


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the checker.

    Attributes:
        code: stable code from :data:`CODES` (``E…`` errors, ``W…`` warnings).
        severity: ``"error"`` or ``"warning"``.
        message: what is wrong, with a suggestion where there is one.
        span: where (file, line, column).
    """

    code: str
    severity: str
    message: str
    span: Span

    def render(self) -> str:
        """``file:line:col: severity CODE: message``."""
        return f"{self.span.location()}: {self.severity} {self.code}: {self.message}"


def _did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    opts = list(options)
    lower = {o.lower(): o for o in opts}
    close = difflib.get_close_matches(word.lower(), list(lower), n=3, cutoff=cutoff)
    return f"; did you mean {', '.join(lower[c] for c in close)}?" if close else ""


def _children(node: Any) -> Iterator[Any]:
    """The AST nodes directly inside ``node`` (expressions, lvalues, statements), in field order."""
    for name in getattr(type(node), "__slots__", ()):
        if name == "span":
            continue
        v = getattr(node, name, None)
        if isinstance(v, tuple):
            for x in v:
                if isinstance(x, tuple):  # (key, value) pairs of maps and named arguments
                    yield from (y for y in x if hasattr(type(y), "__slots__") and not isinstance(y, str))
                elif hasattr(type(x), "__slots__") and not isinstance(x, str):
                    yield x
        elif hasattr(type(v), "__slots__") and v is not None and not isinstance(v, (str, Span)):
            yield v


class _Checker:
    def __init__(self, programs: list[A.Program], tools: ToolRegistry, stdlib: Iterable[str],
                 predefined: Iterable[str], elsewhere: Mapping[str, str]) -> None:
        self.tools = tools
        self.elsewhere = elsewhere
        self.diags: list[Diagnostic] = []
        self.procs: dict[str, A.Procedure] = {}
        for prog in programs:
            for p in prog.procedures:
                self.procs.setdefault(p.name, p)
        self.stdlib = set(stdlib)
        self.predefined = set(predefined)
        self.loads_scripts = False

    def add(self, code: str, message: str, span: Span, severity: str | None = None) -> None:
        self.diags.append(Diagnostic(code, severity or CODES[code][0], message, span))

    # -- names --------------------------------------------------------------------------------

    def known_name(self, name: str) -> bool:
        return (name in self.predefined or name in self.procs or name in self.stdlib
                or self.tools.lookup(name) is not None)

    # -- statements ---------------------------------------------------------------------------

    def block(self, body: tuple[A.Stmt, ...], known: set[str], loops: int) -> None:
        """Check a statement list in order; ``known`` collects the names assigned so far."""
        dead_reported = False
        ended: A.Stmt | None = None
        for s in body:
            if isinstance(s, A.OnError):  # hoisted: checked with what is assigned anywhere before it runs
                self.block(s.body, known | _HANDLER_NAMES, loops)
                continue
            if ended is not None and not dead_reported:
                what = type(ended).__name__.lower()
                self.add("W202", f"unreachable code after '{what}' (line {ended.span.line})", s.span)
                dead_reported = True
            self.stmt(s, known, loops)
            if isinstance(s, _TERMINAL) and ended is None:
                ended = s

    def stmt(self, s: A.Stmt, known: set[str], loops: int) -> None:
        if isinstance(s, A.Set):
            self.expr(s.value, known)
            for t in s.targets:
                self.lvalue_reads(t, known)
            known.update(t.name for t in s.targets)
        elif isinstance(s, A.Ask):
            for e in (s.worker, s.prompt, s.options):
                if e is not None:
                    self.expr(e, known)
            if s.target is not None:
                self.lvalue_reads(s.target, known)
                known.add(s.target.name)
        elif isinstance(s, A.ForEach):
            self.expr(s.iterable, known)
            known.add(s.var)
            self.block(s.body, known, loops + 1)
        elif isinstance(s, A.While):
            self.expr(s.cond, known)
            self.block(s.body, known, loops + 1)
        elif isinstance(s, A.If):
            self.expr(s.cond, known)
            self.block(s.body, known, loops)
            self.block(s.orelse, known, loops)
        elif isinstance(s, (A.Break, A.Continue)):
            if loops == 0:
                word = "break" if isinstance(s, A.Break) else "continue"
                self.add("E105", f"'{word}' outside a loop", s.span)
        else:
            for c in _children(s):
                self.expr(c, known)

    def lvalue_reads(self, lv: A.LValue, known: set[str]) -> None:
        for step in lv.path:
            if not isinstance(step, A.Field):
                self.expr(step, known)

    # -- expressions --------------------------------------------------------------------------

    def expr(self, e: Any, known: set[str]) -> None:
        stack = [e]
        while stack:
            n = stack.pop()
            if isinstance(n, (A.Variable, A.Placeholder)):
                if n.name != "last" and n.name not in known and not self.known_name(n.name):
                    self.add("W201", f"variable '{n.name}' is read before any assignment"
                             + _did_you_mean(n.name, known, 0.75), n.span)
                    known.add(n.name)  # one warning per name and scope
                continue
            if isinstance(n, A.UnaryOp) and n.op == "typeof" and isinstance(n.operand, A.Variable):
                continue  # typeof of an undefined variable is "nil", not an error
            if isinstance(n, A.ProcCall):
                self.proc_call(n)
            elif isinstance(n, A.ToolCall):
                self.tool_call(n)
            stack.extend(reversed(list(_children(n))))

    def proc_call(self, c: A.ProcCall) -> None:
        name = c.name
        n = len(c.args)
        if name.lower() in BUILTINS:
            if n != 1:
                self.add("E103", f"built-in function {name.lower()}() takes exactly 1 argument, got {n}", c.span)
            return
        p = self.procs.get(name)
        if p is None:
            if name in self.stdlib:
                return
            if name in self.elsewhere:
                hint = f" in this file (it is in {self.elsewhere[name]}: check them with --together)"
            else:
                hint = _did_you_mean(name, [*self.procs, *self.stdlib], 0.7)
            if self.loads_scripts:
                self.add("E102", f"procedure '{name}' is not defined{hint} (tool.script.LoadScript may define it)",
                         c.span, severity="warning")
            else:
                self.add("E102", f"procedure '{name}' is not defined{hint}", c.span)
            return
        nreq, nmax = len(p.needs), len(p.needs) + len(p.optional)
        if not nreq <= n <= nmax:
            want = f"{nreq}" if nreq == nmax else f"{nreq} to {nmax}"
            self.add("E103", f"procedure '{name}' takes {want} argument{'s' if nmax != 1 else ''}, got {n} "
                     f"(defined at {p.span.location()})", c.span)

    def tool_call(self, c: A.ToolCall) -> None:
        t = self.tools.lookup(c.path)
        if t is None:
            close = self.similar_tools(c.path)
            hint = f"; did you mean {', '.join(close)}?" if close else " (nslang tools lists them)"
            self.add("E101", f"unknown tool 'tool.{c.path}'{hint}", c.span)
            return
        spec = t.spec
        tname = f"tool.{spec.full_name}"
        specs = spec.args
        n = len(c.args)
        if n > len(specs) and not spec.variadic:
            self.add("E103", f"{tname} takes at most {len(specs)} argument{'s' if len(specs) != 1 else ''}, "
                     f"got {n}: {spec.signature()}", c.span)
            return
        given = {a.name for a in specs[:n]}
        names = {a.name.lower(): a.name for a in specs}
        for key, value in c.named:
            real = names.get(key.lower())
            if real is None:
                hint = _did_you_mean(key, names.values()) or f" (arguments: {', '.join(names.values()) or 'none'})"
                self.add("E104", f"{tname} has no argument named '{key}'{hint}", value.span)
            elif real in given:
                self.add("E103", f"{tname}: argument '{real}' is given twice", value.span)
            given.add(real if real is not None else key)
        missing = [a.name for a in specs if a.required and a.name not in given]
        if missing:
            self.add("E103", f"{tname}: required argument{'s' if len(missing) > 1 else ''} "
                     f"{', '.join(repr(m) for m in missing)} missing: {spec.signature()}", c.span)

    def similar_tools(self, path: str) -> list[str]:
        """Up to three registered tools whose name is close to ``path`` (same group weighs most)."""
        want = path.lower()
        group, _, name = want.rpartition(".")
        scored = []
        for t in self.tools.all():
            g, n = t.spec.group.lower(), t.spec.name.lower()
            score = difflib.SequenceMatcher(None, want, f"{g}.{n}").ratio()
            if n == name:
                score = max(score, 0.9)  # the right name in another group
            elif g == group or any(a.lower().rpartition(".")[0] == group for a in t.spec.aliases):
                score = max(score, 0.4 + 0.6 * difflib.SequenceMatcher(None, name, n).ratio())
            scored.append((score, f"tool.{t.spec.full_name}"))
        scored.sort(key=lambda x: -x[0])
        return [name for score, name in scored[:3] if score >= 0.75]

    # -- top level ----------------------------------------------------------------------------

    def event_handler(self, h: A.EventHandler, known: set[str]) -> None:
        self.expr(h.event, set(known))
        self.block(h.body, set(known) | ({h.var} if h.var else set()), 0)

    def run(self, programs: list[A.Program]) -> list[Diagnostic]:
        for prog in programs:
            for node in _walk_all(prog):
                if isinstance(node, A.ToolCall):
                    t = self.tools.lookup(node.path)
                    if t is not None and t.spec.full_name.lower() == "script.loadscript":
                        self.loads_scripts = True
        globals_: set[str] = set()
        for prog in programs:
            for cmd in prog.commands:
                self.block(cmd.body, globals_, 0)
        # what the command blocks assign is visible to procedures and event handlers (their globals)
        for prog in programs:
            for p in prog.procedures:
                self.block(p.body, set(globals_) | set(p.needs) | set(p.optional), 0)
            for h in prog.event_handlers:  # including those written inside a procedure (hoisted)
                self.event_handler(h, globals_)
        return sorted(self.diags, key=lambda d: (d.span.source, d.span.line, d.span.column, d.code))


def _walk_all(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, A.Program):
            stack.extend([*n.procedures, *n.event_handlers, *n.commands])
        else:
            stack.extend(_children(n))


def check_program(programs: A.Program | list[A.Program], tools: ToolRegistry, *,
                  stdlib: Iterable[str] = (), predefined: Iterable[str] = (),
                  elsewhere: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Every finding in ``programs`` (checked as one program, loaded in order), sorted by position.

    Args:
        programs: one parsed program, or several that run together (e.g. a library and its user).
        tools: the registry whose ToolSpecs calls are checked against.
        stdlib: names of the standard-library procedures (callable without being defined).
        predefined: global names that exist before the program runs (``TYPE_STRING``…).
        elsewhere: procedure name -> file, for procedures defined in files checked separately (named
            in the E102 message).
    """
    progs = [programs] if isinstance(programs, A.Program) else list(programs)
    return _Checker(progs, tools, stdlib, predefined, elsewhere or {}).run(progs)
