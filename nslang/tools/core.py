"""Tools tied to the interpreter itself: ``script`` (LoadScript, ListFunctions), ``error`` (New) and
``event`` (Emit). Upstream names (spec/language.md §8.5) are aliases.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode, NSError, ResourceLimitError, ToolError
from ..limits import check_deadline
from ..values import ErrorValue
from .registry import ToolContext, tool

#: Longest source ``LoadScript`` accepts, in characters (issue 10 item 6).
MAX_SCRIPT_CHARS = 1_000_000


@tool("script", "LoadScript", aliases=("LoadScript",),
      error_conditions="15 (Syntax) if the text does not parse or load; 42 (Duplicate) if it redefines a "
                       "loaded procedure; 21 if the text is empty; 37 (ResourceExhaustion) if it is longer than "
                       "1,000,000 characters; 31 (Timeout, not catchable) if the run's time limit passes while "
                       "it is parsed. Nothing is loaded when it fails.",
      example='tool.script.LoadScript("func helper() means\\n  emit 1\\nendfunc")')
def load_script(ctx: ToolContext, script_content: str) -> dict[str, Any]:
    """Parse NeuroScript source and load its procedures and event handlers into this interpreter.

    Args:
        script_content: the NeuroScript source text.

    Returns:
        A map {"functions_loaded": n, "event_handlers_loaded": m, "metadata": {file metadata}}
        (upstream 0.4.2 LoadScript shape).
    """
    if len(script_content) > MAX_SCRIPT_CHARS:
        raise ToolError(f"script_content is {len(script_content):,} characters long; the limit is "
                        f"{MAX_SCRIPT_CHARS:,}", code=ErrorCode.RESOURCE_EXHAUSTION)
    if not script_content.strip():
        raise ToolError("script_content is empty; there is nothing to load", code=ErrorCode.TOOL_EXECUTION_FAILED)
    from ..parser import parse

    interp = ctx.interpreter
    try:
        res = interp.load_program(parse(script_content, name="<LoadScript>",
                                        tick=lambda: check_deadline(interp)))
    except ResourceLimitError:
        raise
    except NSError as e:
        where = f" at line {e.span.line}, column {e.span.column}" if e.span else ""
        code = e.code if e.code == ErrorCode.DUPLICATE else ErrorCode.SYNTAX
        raise ToolError(f"cannot load script: {e.message}{where}", code=code) from None
    return {"functions_loaded": res.functions_loaded, "event_handlers_loaded": res.event_handlers_loaded,
            "metadata": res.metadata}


@tool("script", "ListFunctions", aliases=("Script.ListFunctions",),
      example="set procs = tool.script.ListFunctions()")
def list_functions(ctx: ToolContext) -> dict[str, str]:
    """List every loaded procedure with its signature.

    Returns:
        A map from procedure name to its signature, e.g. {"main": "procedure main()"}, sorted by name
        (upstream HEAD format; 0.4.2 returned a sorted list of names, which are this map's keys).
    """
    procs = ctx.interpreter.procedures
    return {name: procs[name].signature() for name in sorted(procs)}


@tool("script", "Metadata", example='set md = tool.script.Metadata("main")')
def metadata(ctx: ToolContext, procedure: str | None = None) -> dict[str, str]:
    """The ``:: key: value`` metadata of the loaded files, or of one procedure.

    Args:
        procedure: a procedure name; omit it for the file-level metadata of everything loaded
            (the first file that sets a key wins).

    Returns:
        A map from metadata key to value.
    """
    interp = ctx.interpreter
    if procedure is None:
        return dict(interp.metadata)
    return dict(interp.resolve_procedure(procedure, None).node.metadata)


@tool("error", "New", aliases=("Error.New",), example='set e = tool.Error.New(404, "not found")')
def error_new(code: Any, message: str) -> ErrorValue:
    """Make an error value (it raises nothing; ``must`` turns it into a failure, ``is_error`` detects it).

    Args:
        code: a number or a string identifying the error.
        message: what went wrong.

    Returns:
        An error value {"code": code, "message": message}; its display string is "error: <message>".
    """
    return ErrorValue(code=code, message=message)


@tool("event", "Emit", aliases=("Event.Emit",), example='call tool.Event.Emit("order.created", {"id": 7})')
def event_emit(ctx: ToolContext, name: str, payload: Any = None, source: str = "script") -> int:
    """Deliver an event to the ``on event "name"`` handlers (errors inside handlers are reported, not raised).

    Args:
        name: the event name.
        payload: any value, available to handlers as ``v["payload"]`` with ``on event … as v``.
        source: who sent it.

    Returns:
        How many handlers ran.
    """
    return ctx.interpreter.emit_event(name, payload, source)


@tool("script", "Call", example='set doubled = tool.script.Call("double", [21])')
def call_procedure(ctx: ToolContext, procedure: str, args: list[Any] | None = None) -> Any:
    """Call a procedure by name (how stdlib helpers such as ``map_list`` take a procedure argument).

    Args:
        procedure: the procedure's name.
        args: the arguments, in order (default none).

    Returns:
        The procedure's return value.
    """
    proc = ctx.interpreter.resolve_procedure(procedure, None)
    return proc.invoke(list(args or []))


@tool("script", "CallTool", example='set n = tool.script.CallTool("str.Length", ["abc"])')
def call_tool(ctx: ToolContext, name: str, args: list[Any] | None = None, named: dict[str, Any] | None = None) -> Any:
    """Call a tool by name, e.g. ``"fs.Read"`` (how stdlib ``retry_tool`` wraps any tool).

    Args:
        name: the tool name after ``tool.``, e.g. ``"str.Length"``.
        args: positional arguments.
        named: named arguments.

    Returns:
        The tool's result.
    """
    interp = ctx.interpreter
    return interp.invoke_tool(interp.resolve_tool(name), list(args or []), dict(named or {}) or None)


TOOLS = [load_script, list_functions, metadata, error_new, event_emit, call_procedure, call_tool]
