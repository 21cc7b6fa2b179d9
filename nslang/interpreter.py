"""The :class:`Interpreter` facade: owns every piece of state of one NeuroScript runtime.

Procedures, global variables, event handlers, the tool registry, output streams, limits, the sandbox
directory and (lazily) the AI worker manager all hang off one object; modules hold no state of their
own (house rule 16). Several interpreters in one process are independent.

Typical embedding::

    from nslang import Interpreter

    interp = Interpreter(sandbox_dir="work")
    interp.load('func greet(needs who returns msg) means\\n  return "hi " + who\\nendfunc\\n')
    interp.call("greet", "Ada")         # -> 'hi Ada'
"""

from __future__ import annotations

import _thread
import contextvars
import io
import os
import sys
import time

from . import ast as A
from ._record import Record
from ._stack import MAX_CALL_DEPTH, MIN_FRAMES_PER_CALL, Segment, start_run
from .compiler import CompiledProcedure, Compiler, forget_compiled
from .errors import (
    CallFrame,
    ErrorCode,
    NSError,
    NSRuntimeError,
    NSValidationError,
    ResourceLimitError,
    UsageError,
    out_of_memory,
)
from .limits import DEFAULT_MAX_VALUE_BYTES, LineReader
from .reference import PROMPT_GLOBALS, prompt
from .source import Span
from .values import EventValue, ProcedureRef, ToolRef, display, from_python, to_python

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable
    from pathlib import Path  # imported where used: it costs ~5 ms of start-up (issue 16 item 3)
    from typing import IO, Any

    from .tools.registry import Tool, ToolContext, ToolRegistry, ToolSpec
    from .workers.manager import AIWorkerManager

__all__ = ["MAX_CALL_DEPTH", "Interpreter", "Limits", "LoadResult"]

#: Variables every interpreter starts with (spec §4.10).
TYPE_CONSTANTS = {
    "TYPE_STRING": "string", "TYPE_NUMBER": "number", "TYPE_BOOLEAN": "boolean", "TYPE_LIST": "list",
    "TYPE_MAP": "map", "TYPE_NIL": "nil", "TYPE_FUNCTION": "function", "TYPE_TOOL": "tool",
    "TYPE_ERROR": "error", "TYPE_UNKNOWN": "unknown",
}
#: Resolver-only constants (not variables; step 4 of spec §4.7).
RESOLVER_CONSTANTS = {"TYPE_EVENT": "event", "TYPE_TIMEDATE": "timedate", "TYPE_FUZZY": "fuzzy",
                      "TYPE_BYTES": "bytes"}

#: statements between two checks of the step budget and the deadline by :meth:`Interpreter.charge`
CHECK_EVERY = 1000

#: Tool groups shipped with nslang: group → module (imported on first use, keeping start-up light).
BUILTIN_TOOL_MODULES = {
    "script": "nslang.tools.core", "error": "nslang.tools.core", "event": "nslang.tools.core",
    "fs": "nslang.tools.builtin.fs", "str": "nslang.tools.builtin.strings", "math": "nslang.tools.builtin.math_",
    "list": "nslang.tools.builtin.lists", "map": "nslang.tools.builtin.maps", "json": "nslang.tools.builtin.json_",
    "time": "nslang.tools.builtin.time_", "io": "nslang.tools.builtin.io", "meta": "nslang.tools.builtin.meta",
}
WORKER_TOOL_GROUPS = ("aiworkerdefinition", "aiworkerinstance", "aiworker")


class Limits(Record):
    """Resource limits of one interpreter (mutable; ``limits.replace(**changes)`` copies).

    Attributes:
        max_call_depth: nested procedure calls before error 37 (ResourceExhaustion); 1 to
            :data:`MAX_CALL_DEPTH` (100,000). Python's recursion limit is never changed: deep runs
            continue on further threads (:mod:`nslang._stack`, issue 10 item 4).
        max_loop_iterations: passes of one ``while``/``for each`` before error 37 (upstream: 1,000,000);
            0 means unlimited.
        max_steps: statements a run may execute (counted at loop iterations and calls) before
            error 37; None = unlimited. Not catchable by ``on error``.
        timeout_s: wall-clock seconds a run may take before error 31 (Timeout); None = unlimited.
            Not catchable by ``on error``.
        max_file_bytes: largest file the ``fs`` tools read or write, in bytes.
        max_value_bytes: largest single value (string, list, map) a run may build, in bytes as
            :func:`nslang.limits.value_size` counts them (a character of a string 1, an element of a
            list or map 32); default 64 MiB. Exceeding it is error 37, catchable (issue 10 item 6).
    """

    _fields = __slots__ = ("max_call_depth", "max_loop_iterations", "max_steps", "timeout_s", "max_file_bytes",
                           "max_value_bytes")
    max_call_depth: int
    max_loop_iterations: int
    max_steps: int | None
    timeout_s: float | None
    max_file_bytes: int
    max_value_bytes: int

    def __init__(self, max_call_depth: int = 1000, max_loop_iterations: int = 1_000_000, max_steps: int | None = None,
                 timeout_s: float | None = None, max_file_bytes: int = 10 * 1024 * 1024,
                 max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> None:
        self._set(max_call_depth=max_call_depth, max_loop_iterations=max_loop_iterations, max_steps=max_steps,
                  timeout_s=timeout_s, max_file_bytes=max_file_bytes, max_value_bytes=max_value_bytes)


class LoadResult(Record):
    """What :meth:`Interpreter.load` added: counts and the file's metadata."""

    _fields = __slots__ = ("functions_loaded", "event_handlers_loaded", "commands_loaded", "metadata", "program")
    _hidden = ("program",)
    functions_loaded: int
    event_handlers_loaded: int
    commands_loaded: int
    metadata: dict[str, str]
    program: A.Program | None

    def __init__(self, functions_loaded: int, event_handlers_loaded: int, commands_loaded: int,
                 metadata: dict[str, str] | None = None, program: A.Program | None = None) -> None:
        self._set(functions_loaded=functions_loaded, event_handlers_loaded=event_handlers_loaded,
                  commands_loaded=commands_loaded, metadata={} if metadata is None else metadata, program=program)


class _EventHandler:
    """A registered ``on event`` handler (its body is compiled on first delivery)."""

    __slots__ = ("event", "name", "var", "node", "run")

    def __init__(self, event: str, name: str | None, var: str | None, node: A.EventHandler) -> None:
        self.event = event
        self.name = name
        self.var = var
        self.node = node
        self.run: Callable[[dict[str, Any]], Any] | None = None


class Interpreter:
    """One NeuroScript runtime.

    Args:
        sandbox_dir: directory for file tools and AI-worker data; else env ``NSLANG_SANDBOX``, else the
            platformdirs user data dir for "nslang" (spec ai_workers.md Part 1). Created if missing.
        stdout: where ``emit`` and ``io.Print`` write (default ``sys.stdout``).
        stdin: where ``io.Input`` reads (default ``sys.stdin``).
        stderr: where event-handler errors and warnings go (default ``sys.stderr``).
        limits: a :class:`Limits`; keyword overrides below win over it.
        max_call_depth, max_loop_iterations, max_steps, timeout_s, max_value_bytes: shortcuts for
            :class:`Limits` fields.
        load_stdlib: make the NeuroScript standard library (``stdlib/*.ns``) callable.
        default_worker: AI worker definition name used by ``ask PROMPT`` without a worker.
        durable: ``fsync`` the AI-worker data files on every write (default True): each performance
            record and definition change is on disk before the call returns, surviving a power loss.
            With False a record costs less (no ``fsync``; issue 11 item 6); a killed process still
            loses nothing that was written, only a power loss or OS crash can.
        approve: ``approve(request) -> bool``, asked before a model's tool call with side effects
            runs (a :class:`nslang.workers.policy.ApprovalRequest`: ``tool``, ``arguments``,
            ``worker``, ``task_id``); None refuses every such call (issue 12 item 3).
        max_cost_usd: the run budget in USD: a model call whose worst-case cost would take this
            interpreter's spend past it is refused with error 37 (not catchable by ``on error``;
            issue 14 item 4). None = unlimited.
        record: path of a JSONL file that receives every model exchange (emptied first; issue 14 item 7).
        replay: path of a recording that answers every model call, with no network; a request it does
            not hold is error 9. ``record`` and ``replay`` exclude each other.
        on_token: ``on_token(text)`` receives the text of every model reply (``ask``, the AIWorker
            tools): piece by piece as it arrives when the call streams, else whole once. Given, calls
            stream unless ``base_config.stream`` is false (issue 14 item 2).

    Raises:
        UsageError: a bad limit or budget, both ``record`` and ``replay``, or a recording that cannot be
            written or read.
    """

    def __init__(self, *, sandbox_dir: str | os.PathLike[str] | None = None, stdout: IO[str] | None = None,
                 stdin: IO[str] | None = None, stderr: IO[str] | None = None, limits: Limits | None = None,
                 max_call_depth: int | None = None, max_loop_iterations: int | None = None,
                 max_steps: int | None = None, timeout_s: float | None = None, load_stdlib: bool = True,
                 default_worker: str | None = None, durable: bool = True,
                 approve: Callable[[Any], bool] | None = None, max_cost_usd: float | None = None,
                 record: str | os.PathLike[str] | None = None, replay: str | os.PathLike[str] | None = None,
                 max_value_bytes: int | None = None,
                 on_token: Callable[[str], None] | None = None) -> None:
        lim = limits.replace() if limits is not None else Limits()
        for k, v in (("max_call_depth", max_call_depth), ("max_loop_iterations", max_loop_iterations),
                     ("max_steps", max_steps), ("timeout_s", timeout_s), ("max_value_bytes", max_value_bytes)):
            if v is not None:
                setattr(lim, k, v)
        if not 1 <= lim.max_call_depth <= MAX_CALL_DEPTH:
            raise UsageError(f"max_call_depth must be between 1 and {MAX_CALL_DEPTH:,}, got {lim.max_call_depth}")
        if lim.max_value_bytes < 1024:
            raise UsageError("max_value_bytes must be at least 1024")
        if lim.max_loop_iterations < 0:
            raise UsageError(f"max_loop_iterations must be 0 (no limit) or more, got {lim.max_loop_iterations}")
        if lim.max_steps is not None and lim.max_steps < 1:
            raise UsageError(f"max_steps must be at least 1, got {lim.max_steps}")
        if lim.timeout_s is not None and not 0 < lim.timeout_s < float("inf"):  # NaN, 0 and -1 meant no limit
            raise UsageError(f"timeout_s must be a positive number of seconds, got {lim.timeout_s}")
        self.limits = lim
        if max_cost_usd is not None and (isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, (int, float))
                                         or not max_cost_usd >= 0 or max_cost_usd == float("inf")):
            raise UsageError(f"max_cost_usd must be a non-negative number of USD, got {max_cost_usd!r}")
        if record is not None and replay is not None:
            raise UsageError("record and replay exclude each other (replay answers from a recording)")
        self._economy = self._open_cassette(max_cost_usd, record, replay)
        self.stdout: IO[str] = stdout if stdout is not None else sys.stdout
        self.stdin: IO[str] = stdin if stdin is not None else sys.stdin
        self.stderr: IO[str] = stderr if stderr is not None else sys.stderr
        self._sandbox_arg = sandbox_dir
        self._sandbox: Path | None = None
        #: global variables; the predefined prompt globals (spec §4.10) are read when first looked up
        self.globals: dict[str, Any] = dict(TYPE_CONSTANTS)
        self.procedures_table: dict[str, CompiledProcedure] = {}
        self.metadata: dict[str, str] = {}
        self.events: list[_EventHandler] = []
        self._tools: ToolRegistry | None = None  # built with the built-in tools on first use (see tools)
        self._tool_ctx: ToolContext | None = None
        self._pending_commands: list[tuple[A.CommandBlock, int]] = []
        self._command_count = 0
        self._workers: AIWorkerManager | None = None
        self._providers: dict[str, Callable[..., Any]] = {}
        self.default_worker = default_worker
        self.durable = durable
        self.on_token = on_token
        #: ``ask`` without ``into`` writes the reply to :attr:`stdout` as it arrives, then a newline
        #: (set by ``nslang run`` and the REPL; issue 14 item 2)
        self.echo_asks = False
        #: the approver of tool calls with side effects made by models (see ``approve`` above)
        self.approve = approve
        #: held while a model's tool call or an AI worker event handler runs on this interpreter, so
        #: that concurrent tasks (``tool.AIWorker.Map``, issue 13) take turns
        self.tool_lock = _thread.RLock()
        #: the globals of this interpreter's generated code (nslang._runtime.codespace, built on first use)
        self.codespace: dict[str, Any] | None = None
        #: command blocks keep ``last`` in the globals even when they do not read it (set by the REPL,
        #: where a later input may read it; issue 15)
        self.commands_track_last = False
        self.load_stdlib = load_stdlib
        self._stdlib_index: dict[str, Path] | None = None
        # run-time state used by compiled code
        #: NeuroScript call depth of the code that last called a tool or ``ask`` (generated code passes
        #: the depth to procedures as an argument and sets this before a tool can call back into it)
        self.depth = 0
        self._checkpoint = 0
        self.segment = Segment(0, 0, False)
        #: Python frames one call may take: the largest bound of the procedures compiled so far
        self.frames_per_call = MIN_FRAMES_PER_CALL
        self.handler_cleared = False
        self._steps = 0
        self._step_mark = 0  # charge() checks the budget and the deadline when _steps reaches this
        self._narrowings = 0  # tool calls running under their own deadline (narrowed_deadline), all threads
        self._budget_lock = _thread.allocate_lock()
        self._deadline: float | None = None
        # a tool call's own deadline (a model's tool call, issue 12), per thread and context: Map's
        # threads and host threads running tasks on this interpreter each narrow only their own
        self._narrowed: contextvars.ContextVar[float | None] = contextvars.ContextVar("nslang_tool_deadline",
                                                                                      default=None)
        self._runs = 0  # nesting of _RunGuard: only the outermost sets and clears the limits
        self._line_reader = LineReader()

    @property
    def depth_checkpoint(self) -> int:
        """A call deeper than this takes the slow path (depth limit, new stack segment: nslang._stack);
        generated code reads it as the global ``CPV`` of its namespace."""
        return self._checkpoint

    @depth_checkpoint.setter
    def depth_checkpoint(self, value: int) -> None:
        self._checkpoint = value
        if self.codespace is not None:
            self.codespace["CPV"] = value

    # ===================================================================================== setup

    @property
    def tools(self) -> ToolRegistry:
        """The tool registry: host tools and the built-in groups (each group's module is imported on its
        first call). Built on first use: a run that calls no tool does not load it (issue 16 item 3)."""
        reg = self._tools
        if reg is None:
            from .tools.registry import ToolContext, ToolRegistry

            reg = ToolRegistry()
            self._register_builtin_tools(reg)
            self._tool_ctx = ToolContext(self)
            self._tools = reg
        return reg

    @tools.setter
    def tools(self, registry: ToolRegistry) -> None:
        from .tools.registry import ToolContext

        self._tools = registry
        if self._tool_ctx is None:
            self._tool_ctx = ToolContext(self)

    def _register_builtin_tools(self, registry: ToolRegistry) -> None:
        by_module: dict[str, list[str]] = {}
        for group, mod in BUILTIN_TOOL_MODULES.items():
            by_module.setdefault(mod, []).append(group)

        def loader_for(mod: str) -> Callable[[ToolRegistry], None]:
            def load(reg: ToolRegistry) -> None:
                import importlib

                module = importlib.import_module(mod)
                for fn in getattr(module, "TOOLS", ()):
                    reg.register(fn, replace=True)

            return load

        from .tools.builtin import LAZY_PREFIXES

        for mod, groups in by_module.items():
            loader = loader_for(mod)
            flat = LAZY_PREFIXES.get(mod.rsplit(".", 1)[-1], ())  # upstream ungrouped names (Length, Add…)
            for g in groups:
                registry.register_lazy(g, loader, aliases=flat)

        def load_workers(reg: ToolRegistry) -> None:
            try:
                from .workers.tools import register_worker_tools
            except ModuleNotFoundError as e:  # a build without the AI worker subsystem
                if not (e.name or "").startswith("nslang.workers"):
                    raise
                return
            register_worker_tools(reg)

        registry.register_lazy("aiworkerdefinition", load_workers, aliases=WORKER_TOOL_GROUPS[1:])

    @staticmethod
    def _open_cassette(max_cost_usd: float | None, record: Any, replay: Any) -> tuple[float | None, Any, Any]:
        """``(run budget, Recorder, Replayer)`` for the AI worker manager (issue 14 items 4 and 7)."""
        budget = None if max_cost_usd is None else float(max_cost_usd)
        if record is None and replay is None:
            return budget, None, None
        from .workers.cassette import Recorder, Replayer

        return (budget, Recorder(record) if record is not None else None,
                Replayer(replay) if replay is not None else None)

    @property
    def sandbox_dir(self) -> Path:
        """The sandbox directory (absolute, created on first use)."""
        if self._sandbox is None:
            from pathlib import Path

            raw = self._sandbox_arg or os.environ.get("NSLANG_SANDBOX")
            if raw:
                path = Path(raw).expanduser()
            else:
                from platformdirs import user_data_dir

                path = Path(user_data_dir("nslang", appauthor=False))
            path.mkdir(parents=True, exist_ok=True)
            self._sandbox = path.resolve()
        return self._sandbox

    @property
    def workers(self) -> AIWorkerManager:
        """The AI worker manager for this interpreter's sandbox (created on first use)."""
        if self._workers is None:
            from .workers import AIWorkerManager

            max_cost, recorder, replayer = self._economy
            mgr = AIWorkerManager(self.sandbox_dir, durable=self.durable, deadline=self,
                                  max_cost_usd=max_cost, recorder=recorder, replayer=replayer)
            for name, fn in self._providers.items():
                mgr.register_custom_provider(name, fn)
            if self.default_worker is not None:
                mgr.default_worker = self.default_worker
            mgr.on_token = self.on_token
            mgr.stream_default = self.stream_default
            self._workers = mgr
        return self._workers

    def close(self) -> None:
        """Release what the interpreter holds open (the AI worker manager's HTTP client)."""
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def __enter__(self) -> Interpreter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register_provider(self, name: str, fn: Callable[..., Any]) -> None:
        """Register a Python callable as the ``custom`` LLM provider ``name`` (see nslang.workers)."""
        self._providers[name] = fn
        if self._workers is not None:
            self._workers.register_custom_provider(name, fn)

    # ===================================================================================== tools

    def register_tool(self, func: Callable[..., Any] | ToolSpec, impl: Callable[..., Any] | None = None, *,
                      replace: bool = False, needs_approval: bool = False) -> Tool:
        """Make a Python function callable from scripts as ``tool.<group>.<Name>``.

        Args:
            func: a function decorated with :func:`nslang.tool` (or a plain function: group ``host``,
                name from the function name in CamelCase), or a :class:`ToolSpec` with ``impl``.
            impl: the implementation when ``func`` is a ToolSpec.
            replace: replace an existing tool of the same name.
            needs_approval: the tool has side effects: when a model calls it (a tool-calling task),
                the call needs approval (issue 12 item 3). Scripts call it freely.

        Raises:
            UsageError: the name is taken or the spec is invalid.
        """
        return self.tools.register(func, impl, replace=replace, needs_approval=needs_approval)

    def tool(self, group: str = "host", name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]],
                                                                                           Callable[..., Any]]:
        """Decorator form of :meth:`register_tool`: ``@interp.tool("text")``."""
        from .tools.registry import tool as tool_deco

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            fn = tool_deco(group, name, **kwargs)(fn)
            self.register_tool(fn)
            return fn

        return deco

    def resolve_tool(self, path: str, span: Span | None = None) -> Tool:
        """The tool for ``tool.<path>``; error code 3 (ToolNotFound) with suggestions when unknown."""
        t = self.tools.lookup(path)
        if t is None:
            names = [x.spec.full_name for x in self.tools.all()]
            t = self.tools.lookup(path)
            if t is not None:
                return t
            import difflib

            close = difflib.get_close_matches(path.lower(), [n.lower() for n in names], n=3, cutoff=0.6)
            shown = [n for n in names if n.lower() in close]
            hint = f"; did you mean {', '.join('tool.' + s for s in shown)}?" if shown else \
                " (nslang tools lists them)"
            raise NSRuntimeError(f"unknown tool 'tool.{path}'{hint}", code=ErrorCode.TOOL_NOT_FOUND, span=span)
        return t

    def invoke_tool(self, t: Tool, args: list[Any], named: dict[str, Any] | None = None) -> Any:
        """Call a resolved tool with NeuroScript values (validated and coerced against its spec)."""
        tools = self.tools  # (builds the registry and the tool context on first use)
        ctx = self._tool_ctx
        assert ctx is not None
        return tools.invoke(ctx, t, args, named)

    # ===================================================================================== loading

    def load(self, source: str | os.PathLike[str], *, name: str | None = None, replace: bool = False) -> LoadResult:
        """Load NeuroScript code: procedures and event handlers become callable, command blocks are
        queued for :meth:`run`.

        Args:
            source: source text (``str``), or a path (``pathlib.Path`` / ``os.PathLike``) to read.
            name: source name for positions in errors (default: the path, or ``<string>``).
            replace: a procedure that is already defined is replaced by the new definition (instead of
                error 42), and the event handlers loaded before from the same source name are dropped,
                so a host can load the same file again after it changed (issue 15).

        Returns:
            A :class:`LoadResult`.

        Raises:
            NSSyntaxError: it does not parse (code 15).
            NSValidationError: it cannot be loaded: bad escape or metadata (15), a procedure that is
                already defined (42, unless ``replace``). Nothing is loaded in that case.
            OSError: the file cannot be read.
        """
        if isinstance(source, os.PathLike):
            with open(source, encoding="utf-8") as f:
                text = f.read()
            name = name or str(source)
        else:
            text = source
            name = name or "<string>"
        from .parser import parse

        return self.load_program(parse(text, name=name), replace=replace)

    def load_file(self, path: str | os.PathLike[str]) -> LoadResult:
        """Load a source file (see :meth:`load`)."""
        from pathlib import Path

        return self.load(Path(path))

    def load_program(self, prog: A.Program, *, replace: bool = False) -> LoadResult:
        """Load an already parsed program atomically (all or nothing; see :meth:`load`)."""
        for p in prog.procedures:
            if p.name in self.procedures_table and not replace:
                old = self.procedures_table[p.name].node.span
                raise NSValidationError(
                    f"procedure '{p.name}' is already defined (at {old.location()})",
                    code=ErrorCode.DUPLICATE, span=p.span,
                )
        redefined = any(p.name in self.procedures_table for p in prog.procedures)
        for p in prog.procedures:
            self.procedures_table[p.name] = CompiledProcedure(p, self)
        if redefined:  # compiled callers may call the old definition directly
            forget_compiled(self)
        if replace:  # loading a source again replaces its event handlers instead of doubling them
            self.events = [e for e in self.events if e.node.span.source != prog.source]
        n_events = 0
        for h in prog.event_handlers:
            if isinstance(h.event, A.Literal) and isinstance(h.event.value, str):
                self.events.append(_EventHandler(h.event.value, h.handler_name, h.var, h))
                n_events += 1
            else:
                self._warn(f"{h.span.location()}: 'on event' needs a string literal event name; handler ignored")
        for c in prog.commands:
            self._pending_commands.append((c, self._command_count))
            self._command_count += 1
        md = dict(prog.metadata)
        for k, v in md.items():
            self.metadata.setdefault(k, v)
        return LoadResult(len(prog.procedures), n_events, len(prog.commands), md, prog)

    def _warn(self, msg: str) -> None:
        """Write a diagnostic to ``stderr``, control characters escaped (nslang.terminal, issue 10 item 7)."""
        from .terminal import escape_controls

        try:
            self.stderr.write(f"warning: {escape_controls(msg, keep=chr(10))}\n")
        except (OSError, ValueError):
            pass

    # ===================================================================================== running

    def run(self, target: str | None = None, args: Iterable[Any] = ()) -> Any:
        """Run what was loaded: the queued command blocks in order; if there are none, the procedure
        ``target`` (default ``main``) with ``args``.

        A failing command block stops the run (its error is raised; later blocks do not run).

        Returns:
            The target procedure's return value as a Python value (None for command blocks).

        Raises:
            NSRuntimeError: the script failed (code, message, span and NeuroScript call stack).
            UsageError: nothing to run (no command block and no such procedure).
        """
        if self._pending_commands and target is None:
            pending, self._pending_commands = self._pending_commands, []
            with self._running():
                for block, index in pending:
                    runner = Compiler(self).command(block, index)
                    try:
                        runner(self.globals)
                    except NSRuntimeError as e:
                        e.stack.append(CallFrame(f"command block #{index + 1}", block.span))
                        raise
            return None
        target = target or "main"
        if target not in self.procedures_table and self._stdlib_lookup(target) is None:
            known = ", ".join(sorted(self.procedures_table)) or "none"
            raise UsageError(f"nothing to run: no command block and no procedure '{target}' (procedures: {known})")
        return self.call(target, *args)

    def call(self, procedure: str, *args: Any) -> Any:
        """Call a procedure with Python arguments; returns its result as a Python value.

        Arguments are converted with :func:`nslang.values.from_python` (str, int, float, bool, None,
        lists/tuples, dicts); the result with :func:`nslang.values.to_python`.

        Raises:
            NSRuntimeError: the procedure failed, or does not exist (code 2), or its value is nested too
                deeply to convert (code 38).
            TypeError: an argument has no NeuroScript equivalent.
        """
        vals = [from_python(a) for a in args]
        with self._running():
            proc = self.resolve_procedure(procedure, None)
            try:
                result = proc.invoke(vals)
            except NSRuntimeError as e:
                e.stack.append(CallFrame(procedure, None))
                raise
        try:
            return to_python(result)
        except RecursionError:  # e.g. an implicit result (spec §7.2) that is a very deeply nested list
            raise NSRuntimeError(f"the value of '{procedure}' is nested too deeply to return to Python",
                                 code=ErrorCode.NESTING_DEPTH_EXCEEDED) from None

    def _running(self) -> _RunGuard:
        return _RunGuard(self)

    # ----------------------------------------------------------------------------- globals

    def set_global(self, name: str, value: Any) -> None:
        """Define a global variable (readable from every procedure; Python value converted)."""
        from ._transformer import KEYWORDS

        if not name.isidentifier() or name in KEYWORDS:
            raise UsageError(f"{name!r} is not a valid NeuroScript variable name")
        self.globals[name] = from_python(value)

    def get_global(self, name: str, default: Any = None) -> Any:
        """A global variable's value as a Python value (``default`` when undefined)."""
        if name in self.globals:
            return to_python(self.globals[name])
        return prompt(PROMPT_GLOBALS[name]) if name in PROMPT_GLOBALS else default

    @property
    def procedures(self) -> dict[str, A.Procedure]:
        """Name → AST of every loaded procedure."""
        return {n: p.node for n, p in self.procedures_table.items()}

    # ----------------------------------------------------------------------------- used by compiled code

    def write(self, text: str) -> None:
        """Write to the output stream (``emit``); a broken stream is error 26 (IOFailed)."""
        try:
            self.stdout.write(text)
        except (OSError, ValueError) as e:
            raise NSRuntimeError(f"emit cannot write to the output: {e}", code=ErrorCode.IO_FAILED) from None

    def lookup_global(self, name: str, span: Span | None) -> Any:
        """Resolve a name that is not a local variable (spec §4.7 order): global variable, procedure,
        dot-free tool, resolver constant; otherwise error 9 (KeyNotFound) with suggestions."""
        try:
            return self.globals[name]
        except KeyError:
            pass
        kind = PROMPT_GLOBALS.get(name)
        if kind is not None:  # a predefined prompt global (spec §4.10), as if it were in the globals
            return prompt(kind)
        if name in self.procedures_table:
            return ProcedureRef(name)
        if name in RESOLVER_CONSTANTS:
            return RESOLVER_CONSTANTS[name]
        if self.tools.lookup(name) is not None:
            return ToolRef(name)
        import difflib

        candidates = list(self.globals) + list(self.procedures_table)
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NSRuntimeError(f"variable '{name}' is not defined{hint}", code=ErrorCode.KEY_NOT_FOUND, span=span)

    def resolve_procedure(self, name: str, span: Span | None) -> CompiledProcedure:
        """The procedure ``name`` (loading it from the stdlib if it lives there); else error 2."""
        p = self.procedures_table.get(name)
        if p is not None:
            return p
        path = self._stdlib_lookup(name)
        if path is not None:
            from .parser import parse

            prog = parse(path.read_text(encoding="utf-8"), name=f"stdlib/{path.name}")
            for node in prog.procedures:  # the script's own procedures win over the stdlib's
                if node.name not in self.procedures_table:
                    self.procedures_table[node.name] = CompiledProcedure(node, self)
            p = self.procedures_table.get(name)
            if p is not None:
                return p
        import difflib

        close = difflib.get_close_matches(name, list(self.procedures_table), n=1, cutoff=0.7)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NSRuntimeError(f"procedure '{name}' is not defined{hint}", code=ErrorCode.PROC_NOT_FOUND, span=span)

    def _stdlib_lookup(self, name: str) -> Path | None:
        if not self.load_stdlib:
            return None
        if self._stdlib_index is None:
            self._stdlib_index = _stdlib_index()
        path = self._stdlib_index.get(name)
        if path is not None and name not in self.procedures_table:
            # a file whose procedures are already loaded is not loaded again
            return path
        return None

    def depth_error(self, name: str, span: Span | None = None) -> NSRuntimeError:
        """Error 37 for exceeding the call-depth limit."""
        return NSRuntimeError(
            f"call depth limit of {self.limits.max_call_depth} exceeded calling '{name}' "
            "(runaway recursion? the limit is Interpreter(max_call_depth=…))",
            code=ErrorCode.RESOURCE_EXHAUSTION, span=span,
        )

    def recursion_error(self, name: str | None = None, span: Span | None = None) -> NSRuntimeError:
        """Error 38 (NestingDepthExceeded) for a Python RecursionError: an expression or a value nested
        deeper than Python's recursion limit lets the interpreter follow (not the call-depth limit)."""
        what = f" calling '{name}'" if name else ""
        return NSRuntimeError(
            f"nesting too deep{what}: an expression or a value is nested deeper than the interpreter can "
            f"follow (Python's recursion limit is {sys.getrecursionlimit()} frames)",
            code=ErrorCode.NESTING_DEPTH_EXCEEDED, span=span,
        )

    def charge(self, steps: int) -> None:
        """Count executed statements against ``limits.max_steps``; every :data:`CHECK_EVERY` statements
        (and at the budget's end) check the budget and the deadline (error 37 / 31, not catchable).
        Generated code calls this at every procedure call and loop pass when a limit is set."""
        self._steps += steps
        if self._steps >= self._step_mark:
            self._check_budget()

    def counts_steps(self) -> bool:
        """Must running code call :meth:`charge` now: a step budget, a run deadline or a tool call's
        deadline is in force (in any thread)?"""
        return self.limits.max_steps is not None or self._deadline is not None or self._narrowings > 0

    def watch_budget(self) -> None:
        """Tell the generated code whether to count statements (its global ``BUDGET``, read at every
        call and loop pass: no limit in force costs one test there, issue 16 item 2)."""
        ns = self.codespace
        if ns is not None:
            ns["BUDGET"] = self.counts_steps()

    def _check_budget(self) -> None:
        lim = self.limits.max_steps
        if lim is not None and self._steps > lim:
            raise ResourceLimitError(f"the run exceeded its budget of {lim} statements",
                                     code=ErrorCode.RESOURCE_EXHAUSTION)
        mark = self._steps + CHECK_EVERY
        self._step_mark = mark if lim is None else min(mark, lim + 1)
        self.check_deadline()

    def check_deadline(self) -> None:
        """Raise error 31 (Timeout, :class:`ResourceLimitError`, not catchable) if the run's wall-clock
        limit has passed, or the limit of the tool call this thread is running (:meth:`narrowed_deadline`)."""
        deadline = self.current_deadline()
        if deadline is not None and time.monotonic() > deadline:
            if deadline != self._deadline:
                raise ResourceLimitError("the tool call exceeded its time limit", code=ErrorCode.TIMEOUT)
            raise ResourceLimitError(f"the run exceeded its time limit of {self.limits.timeout_s} s",
                                     code=ErrorCode.TIMEOUT)

    def current_deadline(self) -> float | None:
        """The run's deadline, or this thread's tool-call deadline when it comes first (monotonic s)."""
        run, tool = self._deadline, self._narrowed.get()
        if tool is None:
            return run
        return tool if run is None else min(run, tool)

    def narrowed_deadline(self, deadline: float) -> _Narrowed:
        """A context manager: while its block runs, :meth:`check_deadline` and :meth:`remaining_time`
        in **this thread** (and the threads it starts with a copy of its context, e.g.
        ``tool.AIWorker.Map``) also stop at ``deadline`` (``time.monotonic()`` seconds): a model's tool
        call runs under its own time limit (issue 12 item 2) without shortening what other threads do
        on this interpreter."""
        return _Narrowed(self, deadline)

    def remaining_time(self) -> float | None:
        """Seconds left before the run's deadline (``limits.timeout_s``), 0.0 once it has passed; None when
        no run is in progress or it has no time limit.

        The one place the run's deadline is read (issue 10 item 6): model calls (through the worker
        manager), regular expressions, ``io.Input`` and rate-limit waits bound their own waiting by it,
        then call :meth:`check_deadline` to end the run with the timeout error.
        """
        deadline = self.current_deadline()
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    def read_line(self) -> str:
        """One line of ``stdin`` with its newline ("" at the end of the input), for ``io.Input``; a read
        that blocks ends at the run's deadline with error 31 (issue 10 item 6, see
        :class:`nslang.limits.LineReader`)."""
        return self._line_reader.readline(self.stdin, self)

    def stream_default(self) -> bool:
        """Whether a model call streams when its ``base_config.stream`` is unset: when an ``on_token``
        callback listens, or the output is an interactive terminal (issue 14 item 2)."""
        if self.on_token is not None:
            return True
        try:
            return bool(self.stdout.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def ask(self, worker: str | None, prompt: str, options: dict[str, Any] | None = None, *,
            on_token: Callable[[str], None] | None = None, show: bool = False) -> str:
        """Back end of the ``ask`` statement: a stateless task on a worker definition, or one turn of an
        active instance's conversation (see :mod:`nslang.workers`).

        Args:
            worker, prompt, options: as the statement gives them (None: the default worker).
            on_token: receives this reply's text (as the constructor's ``on_token``); given, the call
                streams unless ``base_config.stream`` is false.
            show: the statement has no ``into``: with :attr:`echo_asks`, the reply is written to
                :attr:`stdout` as it arrives (streamed or not), then a newline.

        Returns:
            The reply text.
        """
        try:
            mgr = self.workers
        except ImportError as e:  # pragma: no cover - workers package missing
            raise NSRuntimeError(f"ask: AI workers are not available ({e})", code=ErrorCode.LLM_ERROR) from None
        stream = True if on_token is not None else self.stream_default()
        if not (show and self.echo_asks):
            return mgr.ask(worker, prompt, options, on_token=on_token, stream=stream, host=self)
        shown: list[str] = []

        def echo(piece: str) -> None:
            self.write(piece)
            shown.append(piece)
            try:
                self.stdout.flush()
            except (OSError, ValueError):
                pass
            if on_token is not None:
                on_token(piece)

        try:
            return mgr.ask(worker, prompt, options, on_token=echo, stream=stream, host=self)
        finally:
            if shown and not shown[-1].endswith("\n"):
                self.write("\n")

    # ----------------------------------------------------------------------------- events

    def emit_event(self, name: str, payload: Any = None, source: str = "host") -> int:
        """Deliver an event to every ``on event "name"`` handler, in registration order.

        Errors inside handlers are reported on ``stderr`` and never propagated (spec §5.2).

        Returns:
            How many handlers ran.
        """
        import datetime as _dt

        ran = 0
        value = EventValue(name=name, source=source, timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(),
                           payload=from_python(payload))
        with self._running():
            for h in [h for h in self.events if h.event == name]:
                if h.run is None:
                    h.run = Compiler(self).event_body(h.node)
                frame: dict[str, Any] = {}
                if h.var:
                    frame[h.var] = value
                ran += 1
                try:
                    h.run(frame)
                except NSRuntimeError as e:
                    if not e.catchable:
                        raise
                    self._warn(f"error in 'on event {name}' handler:\n{e.render()}")
        return ran

    def clear_event_handlers(self, event: str | None, handler_name: str | None) -> int:
        """Remove handlers by event name or by handler name (``clear event``). Returns how many."""
        before = len(self.events)
        self.events = [h for h in self.events
                       if not ((event is not None and h.event == event)
                               or (handler_name is not None and h.name == handler_name))]
        return before - len(self.events)


class _Narrowed:
    """The context manager of :meth:`Interpreter.narrowed_deadline` (no contextlib at start-up)."""

    __slots__ = ("interp", "deadline", "token")

    def __init__(self, interp: Interpreter, deadline: float) -> None:
        self.interp = interp
        self.deadline = deadline

    def __enter__(self) -> None:
        it = self.interp
        self.token = it._narrowed.set(self.deadline)
        with it._budget_lock:
            it._narrowings += 1
        it.watch_budget()

    def __exit__(self, *exc: object) -> None:
        it = self.interp
        it._narrowed.reset(self.token)
        with it._budget_lock:
            it._narrowings -= 1
        it.watch_budget()


class _RunGuard:
    """Enter/leave a run: sets the deadline, the step budget and the first call-stack checkpoint, and
    turns a Python RecursionError into error 38 and a MemoryError into error 37. Python's recursion
    limit is left alone (issue 10 item 4; deep runs continue on further threads, see :mod:`nslang._stack`)."""

    __slots__ = ("interp", "outer", "top")

    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp

    def __enter__(self) -> None:
        it = self.interp
        self.outer = it.depth
        # the outermost guard only: an event or a tool-calling task inside a run keeps its limits
        self.top = it._runs == 0
        it._runs += 1
        if self.top:
            it._steps = it._step_mark = 0
            it._deadline = time.monotonic() + it.limits.timeout_s if it.limits.timeout_s else None
            it.watch_budget()
            start_run(it)

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        it = self.interp
        it.depth = self.outer
        it._runs -= 1
        if self.top:
            it._deadline = None
            it.handler_cleared = False
            it.watch_budget()
        if et is RecursionError:
            raise it.recursion_error() from None
        if et is MemoryError:
            raise out_of_memory() from None
        return False


def _stdlib_index() -> dict[str, Path]:
    """Procedure name → stdlib file, read from the ``func`` lines of ``stdlib/*.ns`` (no parsing)."""
    import re

    from ._resources import stdlib_dir

    out: dict[str, Path] = {}
    try:
        files = sorted(stdlib_dir().glob("*.ns"))
    except FileNotFoundError:
        return out
    pat = re.compile(r"^\s*func\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
    for f in files:
        for m in pat.finditer(f.read_text(encoding="utf-8")):
            out.setdefault(m.group(1), f)
    return out


_ = (io, NSError, display)
