"""Code tasks: a worker that writes NeuroScript, run in a child interpreter (issue 13 item 1).

``tool.AIWorker.ExecuteCodeTask(name, prompt, tools: […], max_iterations: N, timeout_s: S,
max_steps: K)`` runs this loop (llmz's code mode, with NeuroScript as the language):

1. the model gets :func:`system_prompt` (the language reference's develop prompt,
   :func:`nslang.reference.prompt`, plus the task rules and the tools it may use) and the prompt;
2. it answers with a program in a fenced block (```` ```neuroscript ````; without a fence the whole
   reply is the program): a NeuroScript file whose ``func main() … endfunc`` is run, or command
   blocks, or a bare list of statements (run as the body of ``main``);
3. :func:`run_program` parses it and runs it in a **child interpreter**: fresh scope (no variable,
   procedure or event handler of the caller), the same sandbox directory, its own limits
   (``max_steps`` statements, default 100,000; the task's time left, never more than the run's
   ``--timeout`` left; values of at most :data:`MAX_VALUE_BYTES`; emitted text of at most
   :data:`MAX_OUTPUT_CHARS`), no standard input, and only these tools: the pure groups
   :data:`ALWAYS_AVAILABLE` (``str``, ``math``, ``list``, ``map``, ``json``, ``time``,
   ``error.New``, ``io.Print``) and the tools the call grants (``tools``; the definition's
   ``tool_allowlist`` / ``tool_denylist`` apply, tools with side effects need approval exactly as
   in the tool-calling loop of :mod:`~nslang.workers.agent`, and ``worker:NAME`` grants
   ``tool.worker.NAME(prompt)`` and ``ask "NAME", prompt``). Nothing else exists for the program:
   no ``fs`` tool, no ``script.LoadScript`` / ``script.Call``, no AI worker tool, no host tool
   unless granted; ``ask`` without a granted worker fails;
4. the task's output is ``main``'s return value; its emitted text (lines joined) when it returns
   nil, or when a ``main`` without a ``returns`` clause emitted something; a syntax or runtime
   error (limits included) goes back to the model as a user turn with its code, message, line,
   column and a caret under the column, and the model tries again, up to
   ``max_iterations`` model calls (default 3).

Result map: the keys of ``ExecuteStatelessTask`` plus ``output`` (any value), ``code`` (the
program that ran last), ``iterations`` (model calls) and ``errors`` (one ``{attempt, code, name,
message, line, column, source_line, caret}`` map per failed attempt). One performance record covers
the task (``llm_metrics.steps`` has a ``program`` step per attempt, ``llm_metrics.program_errors``
counts the failures).

Errors: :class:`CodeTaskError` (code 37) when every attempt failed (its message ends with the last
error); code 31 when ``timeout_s`` ran out (the run's own uncatchable 31 when its ``--timeout`` did).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorCode, NSError, NSRuntimeError, NSValidationError, ResourceLimitError
from ..interpreter import Interpreter
from ..llm.messages import Message
from ..reference import prompt as reference_prompt
from ..tools.registry import Tool, ToolRegistry
from .agent import AgentOptions, AgentRun, Toolbox, Turn, _combine, _event, _int, _time_error, clock
from .delegation import entered
from .errors import AIWorkerError, InvalidArgumentError
from .models import utc_now

__all__ = ["ALWAYS_AVAILABLE", "DEFAULT_MAX_ITERATIONS", "DEFAULT_MAX_STEPS", "MAX_OUTPUT_CHARS", "MAX_VALUE_BYTES",
           "SOURCE_NAME", "CodeRun", "CodeTaskError", "CodeTaskOptions", "extract_program", "run_program",
           "system_prompt"]

DEFAULT_MAX_ITERATIONS = 3
DEFAULT_MAX_STEPS = 100_000
#: The largest value a program may build (bytes as :func:`nslang.limits.value_size` counts them).
MAX_VALUE_BYTES = 4 * 1024 * 1024
#: The most text a program may emit.
MAX_OUTPUT_CHARS = 1_000_000
#: Tool groups every program may use: pure computation, nothing outside the program.
ALWAYS_AVAILABLE = ("str", "math", "list", "map", "json", "time", "error")
#: The source name of a generated program in error positions.
SOURCE_NAME = "<program>"

_OPEN = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+.-]*)[ \t]*$")
_CLOSE = re.compile(r"^[ \t]*```[ \t]*$")
_TOP_LEVEL = re.compile(r"(?m)^[ \t]*(func|command)\b")


class CodeTaskError(AIWorkerError):
    """Every attempt of a code task failed (code 37)."""

    default_code = ErrorCode.RESOURCE_EXHAUSTION


@dataclass(frozen=True)
class CodeTaskOptions(AgentOptions):
    """A code task's options: :class:`~nslang.workers.agent.AgentOptions` (``tools``,
    ``max_iterations`` = model calls, default 3, ``timeout_s``) plus ``max_steps`` (statements per
    program run, default 100,000)."""

    max_iterations: int = DEFAULT_MAX_ITERATIONS
    max_steps: int = DEFAULT_MAX_STEPS

    @classmethod
    def build_code(cls, tools: Any, max_iterations: Any = None, timeout_s: Any = None,
                   max_steps: Any = None) -> CodeTaskOptions:
        """Validated options (None: the default; ``tools`` may be None: no granted tool).

        Raises:
            InvalidArgumentError: code 4 for a wrong type or an out-of-range value, and for a
                procedure name in ``tools`` (a program calls tools and workers, not the caller's
                procedures).
        """
        base = AgentOptions.build(list(tools or []), max_iterations, timeout_s)
        return cls(base.tools, _int(max_iterations, "max_iterations", DEFAULT_MAX_ITERATIONS),
                   base.timeout_s,
                   max_steps=_int(max_steps, "max_steps", DEFAULT_MAX_STEPS))

    def start(self, turn: Turn, toolbox: Toolbox, messages: list[Message], settings: Mapping[str, Any], *,
              task_id: str, instance_id: str, definition_id: str, prompt: str) -> AgentRun:
        """Run the code loop (module docstring)."""
        return run_code_loop(turn, toolbox, messages, settings, task_id=task_id, instance_id=instance_id,
                             definition_id=definition_id, prompt=prompt)


@dataclass
class CodeRun(AgentRun):
    """What a code task did: :class:`~nslang.workers.agent.AgentRun` plus the program's ``output``
    (a Python value), the last ``code`` and the failed attempts' ``errors``."""

    output: Any = None
    code: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)


# ================================================================================== prompt


def system_prompt(toolbox: Toolbox) -> str:
    """The code task's system prompt: the develop prompt of the language reference, the task rules and
    the tools the program may call (signatures and first lines of their descriptions)."""
    granted = []
    for t, approval in toolbox.granted():
        desc = t.spec.description.strip().splitlines()[0] if t.spec.description.strip() else ""
        note = " (needs approval)" if approval else ""
        granted.append(f"- {t.spec.signature()}{note}: {desc}" if desc else f"- {t.spec.signature()}{note}")
    tools = "\n".join(granted) or "- none"
    return (f"{reference_prompt('develop').rstrip()}\n\n"
            "Task mode\n"
            "- Solve the user's task by writing one NeuroScript program. Answer with the program in one "
            "```neuroscript fenced block.\n"
            "- Define `func main() returns result means` … `endfunc`; the value `main` returns is the answer "
            "(when it returns nothing, the emitted lines are).\n"
            "- The program runs in a sandbox with a step and time limit. Always available: tool.Str.*, "
            "tool.Math.*, tool.List.*, tool.Map.*, tool.JSON.*, tool.Time.*, tool.Error.New, tool.io.Print.\n"
            "- Other tools you may call:\n"
            f"{tools}\n"
            "- No other tool, file access or `ask` exists. When your program fails you get the error with its "
            "line; answer with the whole corrected program.\n")


def extract_program(reply: str) -> str:
    """The program in a model's reply: the first fenced block labelled ``neuroscript``/``ns``/``nslang``,
    else the first fenced block, else the whole reply. A fence is a line of three backticks (and a
    label); backticks inside a line (raw strings) do not end a block."""
    lines = reply.splitlines()
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not _CLOSE.match(lines[j]):
                j += 1
            blocks.append((m.group(1).lower(), "\n".join(lines[i + 1:j])))
            i = j + 1
        else:
            i += 1
    for label, body in blocks:
        if label in ("neuroscript", "ns", "nslang"):
            return body.strip("\n") + "\n"
    if blocks:
        return blocks[0][1].strip("\n") + "\n"
    return reply.strip("\n") + "\n"


# ================================================================================== the child


class _BoundedOutput(io.StringIO):
    """The child's ``emit`` stream: at most :data:`MAX_OUTPUT_CHARS` characters (then error 37)."""

    def write(self, s: str) -> int:
        if self.tell() + len(s) > MAX_OUTPUT_CHARS:
            raise NSRuntimeError(f"the program emitted more than {MAX_OUTPUT_CHARS:,} characters",
                                 code=ErrorCode.RESOURCE_EXHAUSTION)
        return super().write(s)


class _ChildInterpreter(Interpreter):
    """The interpreter a generated program runs in; ``ask`` reaches only granted workers."""

    def ask(self, worker: str | None, prompt: str, options: dict[str, Any] | None = None, *,
            on_token: Any = None, show: bool = False) -> str:
        # a program's ask reaches only granted workers, as a tool call (no streaming, no echo: the
        # program's output is what it emits or returns)
        t = self.tools.lookup(f"worker.{worker}") if worker else None
        if t is None:
            raise NSRuntimeError(f"ask: no AI worker '{worker or ''}' was granted to this program (grant one "
                                 "with tools: [\"worker:NAME\"])", code=ErrorCode.PERMISSION_DENIED)
        from ..values import display

        return str(self.invoke_tool(t, [prompt if isinstance(prompt, str) else display(prompt)]))


def _approved(tool: Tool, toolbox: Toolbox, task_id: str) -> Any:
    """``tool``'s function behind the approval of :mod:`~nslang.workers.policy` (refusal: error 25)."""

    def call(ctx: Any, *values: Any) -> Any:
        from ..values import to_python

        bound = {a.name: to_python(v) for a, v in zip(tool.spec.args, values, strict=False)}
        refusal = toolbox.approve_call(tool.spec.full_name, bound, task_id)
        if refusal:
            raise NSRuntimeError(refusal, code=ErrorCode.PERMISSION_DENIED)
        return tool.func(ctx, *values) if tool.takes_ctx else tool.func(*values)

    return call


def _child(toolbox: Toolbox, options: CodeTaskOptions, seconds: float, task_id: str) -> _ChildInterpreter:
    parent = toolbox.interp
    limits = parent.limits.replace(max_steps=options.max_steps, timeout_s=max(seconds, 0.001),
                     max_value_bytes=min(parent.limits.max_value_bytes, MAX_VALUE_BYTES))
    child = _ChildInterpreter(sandbox_dir=parent.sandbox_dir, stdout=_BoundedOutput(), stdin=io.StringIO(),
                              stderr=io.StringIO(), limits=limits, load_stdlib=parent.load_stdlib,
                              approve=parent.approve)
    child._workers = parent.workers  # granted worker tools share the caller's manager (never closed here)
    registry = ToolRegistry()
    for t in child.tools.all():
        if t.spec.group.lower() in ALWAYS_AVAILABLE or t.spec.full_name.lower() == "io.print":
            registry.register(t.spec, t.func, replace=True)
    for t, approval in toolbox.granted():
        registry.register(t.spec, _approved(t, toolbox, task_id) if approval else t.func, replace=True)
    child.tools = registry
    return child


def run_program(toolbox: Toolbox, source: str, options: CodeTaskOptions, seconds: float, task_id: str) -> Any:
    """Parse and run one program in a child interpreter (module docstring, step 3).

    Returns:
        ``main``'s return value as a Python value, or the emitted text when it is nil; the call's API
        key redacted from every string in it (:meth:`~nslang.workers.agent.Toolbox.redact_value`).

    Raises:
        NSError: the program does not parse (15), cannot be loaded, or fails (any runtime error,
            including the child's limits: steps 37, time 31, value size 37). Positions refer to
            ``source`` (a bare statement list is wrapped in ``main``; lines are shifted back).
    """
    from ..parser import parse

    wrapped = not _TOP_LEVEL.search(source)
    text = f"func main() means\n{source}endfunc\n" if wrapped else source
    try:
        prog = parse(text, name=SOURCE_NAME, use_cache=False)
        child = _child(toolbox, options, seconds, task_id)
        child.load_program(prog)
        if not prog.commands and "main" not in child.procedures_table:
            raise NSValidationError("the program defines no 'func main() … endfunc' and no command block",
                                    code=ErrorCode.PROC_NOT_FOUND)
        with entered(toolbox.definition_id, toolbox.worker, task_id):
            value = child.run() if prog.commands else child.run("main")
    except NSError as e:
        if wrapped and e.span is not None and e.span.source == SOURCE_NAME:
            e.span = e.span.replace(line=max(1, e.span.line - 1))
        raise
    out: str = child.stdout.getvalue()  # type: ignore[attr-defined]
    main = child.procedures_table.get("main")
    if value is None or (out and not prog.commands and main is not None and not main.node.returns):
        # nothing returned, or a main without a `returns` clause that emitted (its implicit result is `last`)
        return toolbox.redact(out[:-1] if out.endswith("\n") else out)
    return toolbox.redact_value(value)  # a key a granted tool read never reaches the result or the record


def _describe(e: NSError, source: str, attempt: int) -> dict[str, Any]:
    """An ``errors`` entry: code, name, message, and the line with a caret when the error is in the program."""
    span = e.span if e.span is not None and e.span.source == SOURCE_NAME else None
    if span is None and isinstance(e, NSRuntimeError):
        span = next((f.call_site for f in e.stack if f.call_site is not None and f.call_site.source == SOURCE_NAME),
                    None)
    entry: dict[str, Any] = {"attempt": attempt, "code": int(e.code), "name": e.code_name, "message": e.message,
                             "line": None, "column": None, "source_line": "", "caret": ""}
    if span is not None:
        lines = source.splitlines()
        entry["line"], entry["column"] = span.line, span.column
        if 1 <= span.line <= len(lines):
            entry["source_line"] = lines[span.line - 1]
            entry["caret"] = " " * max(span.column - 1, 0) + "^"
    return entry


def _feedback(entry: dict[str, Any], max_iterations: int) -> str:
    where = ""
    if entry["line"] is not None:
        where = f"\nat line {entry['line']}, column {entry['column']}:"
        if entry["source_line"]:
            where += f"\n{entry['source_line']}\n{entry['caret']}"
    return (f"Your program failed (attempt {entry['attempt']} of {max_iterations}).\n"
            f"Error {entry['code']} ({entry['name']}): {entry['message']}{where}\n"
            "Answer with the whole corrected program in one ```neuroscript block.")


# ================================================================================== the loop


def run_code_loop(turn: Turn, toolbox: Toolbox, messages: list[Message], settings: Mapping[str, Any], *,
                  task_id: str, instance_id: str, definition_id: str, prompt: str) -> CodeRun:
    """Ask for a program, run it, feed errors back, up to ``max_iterations`` model calls.

    Raises:
        InvalidArgumentError: ``tools`` names a procedure (code 4), before any model call.
        NSRuntimeError: only what stops the run itself (its ``--timeout``) and a refusal of the first
            model call (rate limit), which leaves no record; every other failure is ``CodeRun.error``.
    """
    opts = toolbox.options
    assert isinstance(opts, CodeTaskOptions)
    procedures = [t.spec.name for t, _ in toolbox.granted() if not t.spec.group]
    if procedures:
        raise InvalidArgumentError(f"tools: {', '.join(procedures)}: a code task's program calls tools and workers, "
                                   "not the caller's procedures")
    interp = toolbox.interp
    start, t0 = utc_now(), clock()
    deadline, run_deadline = toolbox.deadlines(t0)
    rules = system_prompt(toolbox)
    convo = list(messages)
    if convo and convo[0].role == "system":
        convo[0] = Message("system", f"{rules}\n{convo[0].content}")
    else:
        convo.insert(0, Message("system", rules))
    records: list[Any] = []
    steps: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    code, output, text, finish = "", None, "", ""
    err: NSRuntimeError | None = None
    http_timeout = settings.get("timeout_s", 60.0)
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            err = _time_error(interp, run_deadline, opts, deadline)
            break
        if len(records) >= opts.max_iterations:
            last = errors[-1] if errors else {"code": 0, "name": "", "message": ""}
            err = CodeTaskError(f"worker '{toolbox.worker}': no program ran without error in {opts.max_iterations} "
                                f"attempts; last error {last['code']} ({last['name']}): {last['message']}")
            break
        timeout = float(http_timeout) if isinstance(http_timeout, (int, float)) and \
            not isinstance(http_timeout, bool) else remaining
        try:
            record, text, err, _calls = turn(convo, {**settings, "timeout_s": min(timeout, remaining)}, (),
                                             sum(r.cost_incurred for r in records))
        except NSRuntimeError as e:
            if not records:
                raise
            err = e
            break
        records.append(record)
        iteration = len(records)
        finish = str(record.llm_metrics.get("finish_reason", ""))
        steps.append({"kind": "model", "iteration": iteration, "duration_ms": record.duration_ms,
                      "input_tokens": record.llm_metrics.get("input_tokens", 0),
                      "output_tokens": record.llm_metrics.get("output_tokens", 0), "finish_reason": finish})
        _event(interp, "aiworker.step", {"task_id": task_id, "worker": toolbox.worker, "iteration": iteration,
                                         "finish_reason": finish, "tool_calls": [],
                                         "input_tokens": steps[-1]["input_tokens"],
                                         "output_tokens": steps[-1]["output_tokens"]})
        if err is not None:
            break
        code = extract_program(text)
        convo.append(Message("assistant", text))
        t1 = clock()
        try:
            output = run_program(toolbox, code, opts, deadline - clock(), task_id)
        except NSError as e:
            if run_deadline is not None and clock() > run_deadline:
                raise ResourceLimitError(f"the run exceeded its time limit of {interp.limits.timeout_s} s "
                                         "(during a code task)", code=ErrorCode.TIMEOUT) from None
            entry = _describe(e, code, iteration)
            entry["message"] = toolbox.redact(entry["message"])  # it goes to the model, the result, the record
            errors.append(entry)
            steps.append({"kind": "program", "iteration": iteration, "ok": False,
                          "duration_ms": int((clock() - t1) * 1000),
                          "error": f"{entry['code']}: {entry['message']}"[:200]})
            convo.append(Message("user", _feedback(entry, opts.max_iterations)))
            continue
        steps.append({"kind": "program", "iteration": iteration, "ok": True,
                      "duration_ms": int((clock() - t1) * 1000)})
        break
    from ..values import display, from_python

    shown = "" if err is not None else display(from_python(output))
    record = _combine(records, start, t0, err, shown, steps, [], prompt, len(convo))
    record = record.model_copy(update={"task_id": task_id, "instance_id": instance_id, "definition_id": definition_id,
                                       "llm_metrics": {**record.llm_metrics, "program_errors": len(errors)}})
    return CodeRun(shown, record, err, len(records), [], finish, convo,
                   output=output if err is None else None, code=code, errors=errors)
