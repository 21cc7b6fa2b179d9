"""The tool-calling loop: a worker that acts (issue 12).

A stateless task, an ``ask`` or a chat turn given ``tools`` runs this loop (pydantic-ai's agent loop
and ``UsageLimits``, IronClaw's worker runtime):

1. call the model with the conversation and the granted tools' declarations. Every call is one
   :meth:`~nslang.workers.modelcall.ModelCaller.call`, like a plain request: it counts against the
   definition's rate limits, and fallback, record/replay, the response cache (the declarations are part
   of the request hash), pricing and the budgets apply to it (issue 14; the task's ``max_cost_usd``
   against the cost of the loop's earlier calls);
2. if the reply has no tool calls, it is the answer: stop;
3. otherwise, for each call in order: find the tool among those granted (an unknown or refused
   tool is answered with an error result, "not available"); decode and validate the arguments
   against its spec (bad arguments are an error result, never a script error); ask for approval
   when it has side effects (:mod:`~nslang.workers.policy`); run it with a per-call time limit;
   turn the value into text (strings as they are, other values as JSON), cut it to
   ``max_result_chars`` with a marker, and send it back as a ``tool`` turn: data, never
   instructions. Then go to 1.

Limits. ``max_iterations`` (default 10) bounds the model calls; ``timeout_s`` (default 600 s) the
task's wall-clock time; both are bounded by the run's ``--timeout`` (``Interpreter(timeout_s=…)``).
A model call gets the time left as its HTTP timeout; a tool call gets ``tool_timeout_s`` (default
60 s, and never more than the time left): the fs tools stop at it, and so do NeuroScript procedures
when the run has a time limit or a step budget (``--timeout`` / ``--max-steps``: their loops check the
clock only then; without one a procedure is bounded by ``max_loop_iterations`` and the call depth);
a host tool that blocks is not interrupted. Errors (catchable by ``on error``):

* :class:`MaxIterationsError` — code 37 (ResourceExhaustion): the model still asked for tools after
  ``max_iterations`` calls (those calls are not run; the trace shows them as not run);
* :class:`TaskTimeoutError` — code 31 (Timeout): the task's ``timeout_s`` ran out (when the run's
  own ``--timeout`` ran out first, the run's uncatchable error 31 is raised instead).

Either way, and for a failed or refused model call after the first (a budget running out mid-loop:
code 37, :class:`~nslang.workers.errors.BudgetExceededError`), the task's performance record is logged
with ``success: false`` and keeps what was done: tokens (cache read / write and reasoning included) and
cost summed over every model call, ``price_source`` (each distinct source, comma-separated),
``llm_metrics.iterations``, ``llm_metrics.tool_call_count`` and ``llm_metrics.steps`` (a model step
carries its ``cost`` and, when they apply, ``cached`` and ``served_by``). ``cached: true`` when every
call was a cache hit; ``served_by`` / ``served_by_id`` when one fallback definition served every call.

Events (handled by ``on event "…" as e do … endon``; the payload is ``e["payload"]``):

* ``aiworker.step`` after each model call: ``{task_id, worker, iteration, finish_reason,
  input_tokens, output_tokens, tool_calls: [names]}``;
* ``aiworker.tool_call`` after each tool call: ``{task_id, worker, iteration, name, arguments, ok,
  result | error, duration_ms, flags}``.

Prompt-injection heuristic (IronClaw's safety layer in spirit). A result whose text matches one of
:data:`INJECTION_PATTERNS` (e.g. "ignore previous instructions", "you are now", "new instructions:",
chat-template markers such as ``<|im_start|>``, a line starting with ``system:``) is flagged: the
trace entry's ``flags`` lists what matched. The result is still sent, as data, unchanged.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._redact import scrub, scrub_value
from ..errors import ErrorCode, NSRuntimeError, ResourceLimitError, ToolError
from ..llm.base import check_prompt_size
from ..llm.messages import Message, ToolCall, ToolDeclaration
from ..llm.schema import procedure_declaration, tool_declaration, wire_name
from ..tools.registry import ArgSpec, Tool, ToolRegistry, ToolSpec
from .delegation import PREFIX, entered, is_worker_entry, worker_tool
from .errors import AIWorkerError, InvalidArgumentError
from .models import PerformanceRecord, utc_now
from .policy import ApprovalRequest, needs_approval, normalize, pattern_matches, restricted

if TYPE_CHECKING:  # pragma: no cover
    from ..interpreter import Interpreter
    from .models import AIWorkerDefinition

__all__ = ["DEFAULT_MAX_ITERATIONS", "DEFAULT_MAX_RESULT_CHARS", "DEFAULT_TIMEOUT_S", "DEFAULT_TOOL_TIMEOUT_S",
           "INJECTION_PATTERNS", "OPTION_KEYS", "AgentOptions", "AgentRun", "MaxIterationsError", "TaskTimeoutError",
           "Toolbox", "injection_flags", "run_loop", "split_options"]

DEFAULT_MAX_ITERATIONS = 10
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_TOOL_TIMEOUT_S = 60.0
DEFAULT_MAX_RESULT_CHARS = 100_000
#: Steps kept in a performance record (``llm_metrics.steps``); later ones are counted, not kept.
MAX_RECORDED_STEPS = 200

#: Per-call ``llm_metrics`` a model step of the trace keeps (issue 14: cache hit, fallback).
STEP_KEYS = ("cached", "served_by")
#: Token counts that are parts of the input or output, summed over the loop when any call reports them.
SPLIT_TOKENS = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")

#: Keys of an ``ask … with {…}`` map (or ``config_overrides``) that configure the loop, not the model.
OPTION_KEYS = ("tools", "max_iterations", "task_timeout_s", "tool_timeout_s", "max_result_chars")

#: (label, regex) pairs of the prompt-injection heuristic (case-insensitive).
INJECTION_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ignore previous instructions",
     r"\b(ignore|disregard|forget)\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier|your)\s+"
     r"(instructions|prompts?|rules|directions)"),
    ("you are now", r"\byou\s+are\s+now\b"),
    ("new instructions", r"\bnew\s+(system\s+)?instructions\s*:"),
    ("system prompt", r"\b(reveal|print|show|repeat)\s+(your|the)\s+system\s+prompt"),
    ("chat template marker", r"<\|im_start\|>|<\|im_end\|>|\[/?INST\]|<\|system\|>|<\|assistant\|>"),
    ("role line", r"(?m)^\s*(system|assistant)\s*:"),
)
_INJECTION = [(label, re.compile(rx, re.IGNORECASE)) for label, rx in INJECTION_PATTERNS]

#: The monotonic clock of the loop (the interpreter's deadline uses the same clock).
clock: Callable[[], float] = time.monotonic


class MaxIterationsError(AIWorkerError):
    """The model still asked for tools after ``max_iterations`` model calls (code 37)."""

    default_code = ErrorCode.RESOURCE_EXHAUSTION


class TaskTimeoutError(AIWorkerError):
    """The task's ``timeout_s`` ran out (code 31)."""

    default_code = ErrorCode.TIMEOUT


@dataclass(frozen=True)
class AgentOptions:
    """What a call asks of the loop.

    Attributes:
        tools: tool names (``tool.fs.Read``, ``fs.*``, aliases) and procedure names.
        max_iterations: model calls at most (>= 1; default 10).
        timeout_s: the task's wall-clock limit in seconds (default 600).
        tool_timeout_s: each tool call's limit in seconds (default 60).
        max_result_chars: a tool result's longest text sent back (default 100,000 characters).
    """

    tools: tuple[str, ...]
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    timeout_s: float = DEFAULT_TIMEOUT_S
    tool_timeout_s: float = DEFAULT_TOOL_TIMEOUT_S
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS

    @classmethod
    def build(cls, tools: Any, max_iterations: Any = None, timeout_s: Any = None, tool_timeout_s: Any = None,
              max_result_chars: Any = None) -> AgentOptions:
        """Validated options (None: the default).

        Raises:
            InvalidArgumentError: code 4 for a wrong type or an out-of-range value.
        """
        if not isinstance(tools, (list, tuple)) or not all(isinstance(t, str) and t.strip() for t in tools):
            raise InvalidArgumentError("tools must be a list of tool or procedure names")
        return cls(
            tuple(t.strip() for t in tools),
            _int(max_iterations, "max_iterations", DEFAULT_MAX_ITERATIONS),
            _seconds(timeout_s, "timeout_s", DEFAULT_TIMEOUT_S),
            _seconds(tool_timeout_s, "tool_timeout_s", DEFAULT_TOOL_TIMEOUT_S),
            _int(max_result_chars, "max_result_chars", DEFAULT_MAX_RESULT_CHARS),
        )


    def start(self, turn: Turn, toolbox: Toolbox, messages: list[Message], settings: Mapping[str, Any], *,
              task_id: str, instance_id: str, definition_id: str, prompt: str) -> AgentRun:
        """Run the task's loop: the tool-calling loop (:func:`run_loop`); code tasks override this."""
        return run_loop(turn, toolbox, messages, settings, task_id=task_id, instance_id=instance_id,
                        definition_id=definition_id, prompt=prompt)


def _int(v: Any, name: str, default: int) -> int:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _seconds(v: Any, name: str, default: float) -> float:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v != v or v == float("inf"):
        raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {v!r}")
    return float(v)


def split_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], AgentOptions | None]:
    """An ``ask … with {…}`` map split into model settings and loop options (None without ``tools``).

    The loop keys are :data:`OPTION_KEYS`; ``task_timeout_s`` is the task's limit (``timeout_s`` in
    the map stays the model's per-request HTTP timeout).

    Raises:
        InvalidArgumentError: loop keys without ``tools``, or a bad value (code 4).
    """
    settings = {k: v for k, v in (options or {}).items() if k not in OPTION_KEYS}
    loop = {k: v for k, v in (options or {}).items() if k in OPTION_KEYS}
    if not loop:
        return settings, None
    if "tools" not in loop:
        raise InvalidArgumentError(f"{', '.join(sorted(loop))} need 'tools' (the tools the worker may call)")
    return settings, AgentOptions.build(loop["tools"], loop.get("max_iterations"), loop.get("task_timeout_s"),
                                        loop.get("tool_timeout_s"), loop.get("max_result_chars"))


# ================================================================================== the toolbox


@dataclass(frozen=True)
class _Granted:
    name: str  # canonical: "fs.Read" or a procedure's name
    tool: Tool
    declaration: ToolDeclaration
    approval: bool
    names: tuple[str, ...]  # every name the model may use for it (normalized)
    delegate: bool = False  # a worker:NAME tool (runs a nested task; does not hold the tool lock)


@dataclass
class _Outcome:
    name: str
    arguments: Any
    ok: bool
    text: str
    duration_ms: int
    flags: list[str] = field(default_factory=list)


class Toolbox:
    """The tools one task may call, bound to an interpreter (the script's tools and procedures).

    Args:
        interp: the interpreter whose tools and procedures run (its approver, deadline, events).
        options: the call's options (its ``tools`` list is resolved here).
        definition: the worker definition (``tool_allowlist`` / ``tool_denylist`` apply).

    Raises:
        InvalidArgumentError: a ``tools`` entry names no tool or procedure, or a procedure's
            ``:: type.<name>:`` metadata names an unknown type (code 4).
    """

    def __init__(self, interp: Interpreter, options: AgentOptions, definition: AIWorkerDefinition) -> None:
        self.interp = interp
        self.options = options
        self.worker = definition.name
        self.definition_id = definition.definition_id
        allow, deny = list(definition.tool_allowlist), list(definition.tool_denylist)
        granted: dict[str, _Granted] = {}
        for entry in options.tools:
            for g in self._resolve(entry):
                ok = (not allow or any(pattern_matches(p, g.names) for p in allow)) and \
                    not any(pattern_matches(p, g.names) for p in deny)
                if ok:
                    granted.setdefault(g.declaration.name, g)
        self._granted = granted
        self.declarations = [g.declaration for g in granted.values()]
        #: keys redacted (:meth:`redact`) from every tool result before the model, the trace or the
        #: record sees it (the manager sets the call's API key)
        self.secrets: tuple[str | None, ...] = ()

    def _resolve(self, entry: str) -> list[_Granted]:
        interp = self.interp
        if is_worker_entry(entry):  # issue 13 item 2: another worker as a tool
            t = worker_tool(interp, entry)
            return [_Granted(t.spec.full_name, t, tool_declaration(t.spec), False,
                             (normalize(f"{PREFIX}{t.spec.name}"), normalize(t.spec.full_name),
                              normalize(wire_name(t.spec.full_name))), delegate=True)]
        name = entry[5:] if entry.lower().startswith("tool.") else entry
        if any(ch in name for ch in "*?["):
            return [self._tool(t) for t in interp.tools.all()
                    if not restricted(t.spec.full_name) and pattern_matches(name, [t.spec.full_name, *t.spec.aliases])]
        if not entry.lower().startswith("tool.") and "." not in name:
            try:
                proc = interp.resolve_procedure(name, None)
            except NSRuntimeError:
                proc = None
            if proc is not None:
                return [self._procedure(proc.node)]
        t = interp.tools.lookup(name)
        if t is None:
            raise InvalidArgumentError(f"tools: '{entry}' is neither a tool nor a procedure "
                                       "(nslang tools lists the tools)")
        return [self._tool(t)]

    @staticmethod
    def _tool(t: Tool) -> _Granted:
        spec = t.spec
        names = (spec.full_name, *spec.aliases, wire_name(spec.full_name))
        return _Granted(spec.full_name, t, tool_declaration(spec), needs_approval(spec.full_name, spec.needs_approval),
                        tuple(normalize(n) for n in names))

    def _procedure(self, node: Any) -> _Granted:
        try:
            decl = procedure_declaration(node)
        except ValueError as e:
            raise InvalidArgumentError(f"tools: {e}") from None
        props = decl.parameters.get("properties", {})
        meta = dict(node.metadata)
        args = [ArgSpec(p, meta.get(f"type.{p}", "string").strip(), props[p].get("description", ""), p in node.needs)
                for p in (*node.needs, *node.optional)]
        interp = self.interp
        proc_name = node.name

        def run(*values: Any) -> Any:
            return interp.resolve_procedure(proc_name, None).invoke(list(values))

        spec = ToolSpec(group="", name=proc_name, description=decl.description, args=tuple(args))
        tool = ToolRegistry().register(spec, run)
        return _Granted(proc_name, tool, decl, False, (normalize(proc_name),))

    def redact(self, text: str) -> str:
        """``text`` with :attr:`secrets` redacted (:func:`nslang._redact.scrub`)."""
        return scrub(text, self.secrets)

    def redact_value(self, value: Any) -> Any:
        """``value`` (a Python value) with :attr:`secrets` redacted from every string in it.

        Raises:
            NSRuntimeError: code 38 (NestingDepthExceeded) when it nests too deeply to walk.
        """
        try:
            return scrub_value(value, self.secrets)
        except RecursionError:
            raise NSRuntimeError("the value is nested too deeply to return",
                                 code=ErrorCode.NESTING_DEPTH_EXCEEDED) from None

    def deadlines(self, t0: float) -> tuple[float, float | None]:
        """(this task's deadline, the one above it) in ``time.monotonic()`` seconds for a task started at
        ``t0``: ``options.timeout_s`` from ``t0``, never past the run's deadline or, for a task run by a
        model's tool call, that call's limit in this thread (:meth:`Interpreter.current_deadline`)."""
        above = self.interp.current_deadline()
        own = t0 + self.options.timeout_s
        return (own if above is None else min(own, above)), above

    def granted(self) -> list[tuple[Tool, bool]]:
        """The granted tools with their approval flag (what a code task's program may call)."""
        return [(g.tool, g.approval) for g in self._granted.values()]

    def find(self, model_name: str) -> _Granted | None:
        """The granted tool the model means by ``model_name`` (wire name, or dotted, any case)."""
        g = self._granted.get(model_name)
        if g is not None:
            return g
        n = normalize(model_name)
        return next((g for g in self._granted.values() if n in g.names), None)

    # ------------------------------------------------------------------------------ one call

    def run(self, call: ToolCall, deadline: float, task_id: str) -> _Outcome:
        """Run one tool call; every failure becomes an error outcome (never raised) except the run's
        own limits (time, steps), which propagate."""
        t0 = clock()
        g = self.find(call.name)
        shown = call.arguments if call.arguments is not None else call.raw_arguments

        def fail(msg: str, name: str | None = None) -> _Outcome:
            return _Outcome(name or call.name, shown, False, self.redact(msg), int((clock() - t0) * 1000))

        if g is None:
            return fail(f"tool '{call.name}' is not available to this task (available: "
                        f"{', '.join(d.name for d in self.declarations) or 'none'})")
        if call.arguments is None:
            return fail(f"{g.name}: {call.error}", g.name)
        from ..values import from_python, to_python

        try:
            named = {str(k): from_python(v) for k, v in call.arguments.items()}
            values = self.interp.tools.bind_arguments(g.tool, [], named or None)
        except (ToolError, TypeError, RecursionError) as e:
            msg = e.message if isinstance(e, ToolError) else "arguments could not be read"
            return fail(f"invalid arguments: {msg}", g.name)
        if g.approval:
            bound = {a.name: to_python(v) for a, v in zip(g.tool.spec.args, values, strict=False)}
            refusal = self.approve_call(g.name, bound, task_id)
            if refusal:
                return fail(refusal, g.name)
        limit = min(self.options.tool_timeout_s, max(0.0, deadline - clock()))
        interp = self.interp
        # tools run one at a time per interpreter (Map, issue 13 item 3, runs tasks in threads); a tool
        # call's time limit holds in this thread only (Interpreter.narrowed_deadline); a worker tool
        # (a nested task with its own limits) holds no lock
        with contextlib.nullcontext() if g.delegate else interp.tool_lock:
            run_deadline = interp._deadline  # the run's own limit (--timeout), None without one
            try:
                with contextlib.nullcontext() if g.delegate else interp.narrowed_deadline(clock() + limit), \
                        entered(self.definition_id, self.worker, task_id):
                    value = g.tool.func(interp._tool_ctx, *values) if g.tool.takes_ctx else g.tool.func(*values)
                value = from_python(value)
            except ResourceLimitError as e:
                if e.code == ErrorCode.TIMEOUT and not (run_deadline is not None and clock() > run_deadline):
                    return fail(f"{g.name} timed out after {limit:g} s", g.name)
                raise
            except NSRuntimeError as e:
                if not e.catchable:
                    raise
                return fail(f"error {_describe_code(int(e.code))}: {e.message}", g.name)
            except RecursionError:
                return fail(f"{g.name} failed: nesting too deep", g.name)
            except Exception as e:  # boundary: a tool's own failure becomes an error result for the model
                return fail(f"{g.name} failed: {type(e).__name__}: {e}", g.name)
        text = self.redact(_text(value))
        out = _Outcome(g.name, shown, True, _truncate(text, self.options.max_result_chars),
                       int((clock() - t0) * 1000), injection_flags(text))
        return out

    def approve_call(self, name: str, arguments: dict[str, Any], task_id: str) -> str:
        """Ask the interpreter's approver about one call: "" when approved, else why not."""
        approver = getattr(self.interp, "approve", None)
        if approver is None:
            return (f"refused: {name} has side effects and needs approval, and none was given "
                    f"(nslang run --approve {name}, or Interpreter(approve=…))")
        try:
            ok = approver(ApprovalRequest(name, arguments, self.worker, task_id))
        except NSRuntimeError as e:
            return f"refused: the approval failed: {e.message}"
        except Exception as e:  # boundary: a host approver's failure refuses the call
            return f"refused: the approval failed: {type(e).__name__}: {e}"
        return "" if ok is True else f"refused: the call of {name} was not approved"


def _describe_code(code: int) -> str:
    try:
        return f"{code} ({ErrorCode(code).title})"
    except ValueError:
        return str(code)


def _text(value: Any) -> str:
    from ..values import to_python

    if isinstance(value, str):
        return value
    try:
        return json.dumps(to_python(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        from ..values import display

        return display(value)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[nslang: result truncated: {limit} of {len(text)} characters shown]"


def injection_flags(text: str) -> list[str]:
    """The labels of :data:`INJECTION_PATTERNS` that match ``text`` (the prompt-injection heuristic)."""
    return [label for label, rx in _INJECTION if rx.search(text)]


# ================================================================================== the loop

#: ``turn(messages, settings, tools, task_spent) -> (record, text, error, tool_calls)``: one admitted
#: model call through the per-call hook (:meth:`nslang.workers.modelcall.ModelCaller.call`);
#: ``task_spent`` is the USD of the loop's earlier calls (the task's ``max_cost_usd`` budget).
Turn = Callable[[list[Message], Mapping[str, Any], Sequence[ToolDeclaration], float],
                tuple[PerformanceRecord, str, "NSRuntimeError | None", tuple[ToolCall, ...]]]


@dataclass
class AgentRun:
    """What a loop did.

    Attributes:
        text: the final answer ("" when it failed).
        record: one performance record for the whole task (tokens and cost summed).
        error: why it failed, or None.
        iterations: model calls made.
        tool_calls: ``{name, arguments, ok, result | error, duration_ms, iteration, flags}`` maps.
        finish_reason: the last model call's finish reason.
        messages: the conversation as it ended (tool turns included).
    """

    text: str
    record: PerformanceRecord
    error: NSRuntimeError | None
    iterations: int
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    messages: list[Message]


def run_loop(turn: Turn, toolbox: Toolbox, messages: list[Message], settings: Mapping[str, Any], *,
             task_id: str, instance_id: str, definition_id: str, prompt: str) -> AgentRun:
    """Run the loop (module docstring) and build the task's record.

    Raises:
        NSRuntimeError: only what stops the run itself (its ``--timeout``, its step budget) and a
            refusal of the first model call (rate limit, cost budget, replay miss), which leaves no
            record; every other failure is ``AgentRun.error`` (a refusal of a later call included:
            the task fails with it and its record keeps what was done).
    """
    opts = toolbox.options
    interp = toolbox.interp
    start, t0 = utc_now(), clock()
    deadline, run_deadline = toolbox.deadlines(t0)
    records: list[PerformanceRecord] = []
    trace: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    convo = list(messages)
    text, finish, err = "", "", None
    http_timeout = settings.get("timeout_s", 60.0)

    def note(out: _Outcome, iteration: int) -> None:
        entry = _entry(out, iteration)
        trace.append(entry)
        steps.append({"kind": "tool", "iteration": iteration, "name": out.name, "ok": out.ok,
                      "duration_ms": out.duration_ms, **({"error": out.text[:200]} if not out.ok else {}),
                      **({"flags": out.flags} if out.flags else {})})
        _event(interp, "aiworker.tool_call", {"task_id": task_id, "worker": toolbox.worker, **entry})

    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            err = _time_error(interp, run_deadline, opts, deadline)
            break
        if len(records) >= opts.max_iterations:
            err = MaxIterationsError(f"worker '{toolbox.worker}' reached max_iterations={opts.max_iterations} "
                                     "and the model still asked for tools (they were not run)")
            break
        call_settings = {**settings, "timeout_s": min(float(http_timeout), remaining)
                         if isinstance(http_timeout, (int, float)) and not isinstance(http_timeout, bool)
                         else remaining}
        try:
            if records:  # tool results make the conversation grow: the prompt cap applies to every call
                check_prompt_size(convo, settings)
            record, text, err, calls = turn(convo, call_settings, toolbox.declarations,
                                            sum(r.cost_incurred for r in records))
        except NSRuntimeError as e:
            if not records:
                raise  # refused before any model call: no record (like a plain task)
            err, text = e, ""
            break
        records.append(record)
        finish = str(record.llm_metrics.get("finish_reason", ""))
        iteration = len(records)
        steps.append({"kind": "model", "iteration": iteration, "duration_ms": record.duration_ms,
                      "input_tokens": record.llm_metrics.get("input_tokens", 0),
                      "output_tokens": record.llm_metrics.get("output_tokens", 0), "finish_reason": finish,
                      "tool_calls": [c.name for c in calls], "cost": record.cost_incurred,
                      **{k: record.llm_metrics[k] for k in STEP_KEYS if k in record.llm_metrics}})
        _event(interp, "aiworker.step", {"task_id": task_id, "worker": toolbox.worker, "iteration": iteration,
                                         "finish_reason": finish, "tool_calls": [c.name for c in calls],
                                         "input_tokens": steps[-1]["input_tokens"],
                                         "output_tokens": steps[-1]["output_tokens"]})
        if err is not None or not calls:
            break
        if len(records) >= opts.max_iterations:
            for c in calls:
                note(_Outcome(c.name, c.to_dict()["arguments"], False, "not run: max_iterations reached", 0), iteration)
            err = MaxIterationsError(f"worker '{toolbox.worker}' reached max_iterations={opts.max_iterations} "
                                     f"and the model still asked for tools ({', '.join(c.name for c in calls)}; "
                                     "not run)")
            text = ""
            break
        convo.append(Message("assistant", text, tool_calls=calls))
        text = ""
        for c in calls:
            if clock() >= deadline:
                out = _Outcome(c.name, c.to_dict()["arguments"], False, "not run: the task's time limit ran out", 0)
            else:
                out = toolbox.run(c, deadline, task_id)
            convo.append(Message("tool", out.text, tool_call_id=c.id, name=c.name, is_error=not out.ok))
            note(out, iteration)
    record = _combine(records, start, t0, err, text, steps, trace, prompt, len(convo))
    record = record.model_copy(update={"task_id": task_id, "instance_id": instance_id,
                                       "definition_id": definition_id})
    return AgentRun(text if err is None else "", record, err, len(records), trace, finish, convo)


def _time_error(interp: Interpreter, run_deadline: float | None, opts: AgentOptions,
                deadline: float) -> NSRuntimeError:
    if run_deadline is not None and deadline >= run_deadline:
        if run_deadline != interp._deadline:  # the enclosing tool call's limit (a nested task)
            return ResourceLimitError("the tool call exceeded its time limit (during a tool-calling task)",
                                      code=ErrorCode.TIMEOUT)
        return ResourceLimitError(f"the run exceeded its time limit of {interp.limits.timeout_s} s "
                                  "(during a tool-calling task)", code=ErrorCode.TIMEOUT)
    return TaskTimeoutError(f"the tool-calling task ran out of time (timeout_s={opts.timeout_s:g})")


def _entry(out: _Outcome, iteration: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": out.name, "arguments": out.arguments, "ok": out.ok}
    entry["result" if out.ok else "error"] = out.text
    entry.update(duration_ms=out.duration_ms, iteration=iteration, flags=list(out.flags))
    return entry


def _event(interp: Interpreter, name: str, payload: dict[str, Any]) -> None:
    if any(h.event == name for h in interp.events):
        with interp.tool_lock:  # handlers run one at a time (Map's threads)
            interp.emit_event(name, payload, source="aiworker")


def _combine(records: list[PerformanceRecord], start: Any, t0: float, err: NSRuntimeError | None, text: str,
             steps: list[dict[str, Any]], trace: list[dict[str, Any]], prompt: str,
             message_count: int) -> PerformanceRecord:
    from .summaries import record_tokens

    tin = tout = 0
    for r in records:
        a, b = record_tokens({"llm_metrics": r.llm_metrics})
        tin, tout = tin + a, tout + b
    each = [r.llm_metrics for r in records]
    last = each[-1] if each else {}
    metrics: dict[str, Any] = {
        "input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout,
        "finish_reason": last.get("finish_reason", ""), "model_used_at_call": last.get("model_used_at_call", ""),
        "price_source": ", ".join(dict.fromkeys(str(m.get("price_source", "unknown")) for m in each)) or "unknown",
        "iterations": len(records), "tool_call_count": len(trace),
        "steps": steps[:MAX_RECORDED_STEPS],
    }
    for name in SPLIT_TOKENS:
        if any(name in m for m in each):
            metrics[name] = sum(int(m.get(name) or 0) for m in each)
    if len(steps) > MAX_RECORDED_STEPS:
        metrics["steps_not_recorded"] = len(steps) - MAX_RECORDED_STEPS
    if any(m.get("estimated") for m in each):
        metrics["estimated"] = True
    if each and all(m.get("cached") for m in each):
        metrics["cached"] = True
    served = {(m.get("served_by"), m.get("served_by_id")) for m in each}
    if len(served) == 1 and None not in next(iter(served)):  # one fallback served every call
        metrics["served_by"], metrics["served_by_id"] = next(iter(served))
    fallback_errors = [e for m in each for e in m.get("fallback_errors") or ()]
    if fallback_errors:
        metrics["fallback_errors"] = fallback_errors
    summary = text if len(text) <= 256 else text[:253] + "..."
    return PerformanceRecord(
        timestamp_start=start, timestamp_end=utc_now(),
        duration_ms=int((clock() - t0) * 1000), success=err is None,
        input_context={"prompt_char_length": len(prompt), "message_count": message_count},
        llm_metrics=metrics, cost_incurred=sum(r.cost_incurred for r in records),
        output_summary=summary if err is None else "", error_details=err.message if err is not None else "",
    )
