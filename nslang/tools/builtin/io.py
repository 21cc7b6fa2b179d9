"""The ``io`` tool group: printing to the interpreter's output and reading a line of input.

Upstream 0.4.2 ``Print`` and ``Input`` (spec/language.md §8.5). Output goes to
``interpreter.stdout`` (the same stream as ``emit``), input comes from ``interpreter.stdin``; tools
never touch ``sys.stdout``/``sys.stdin`` directly, so embedding hosts and tests can redirect both.

``Print`` fixes upstream bug §11.16 (only the first argument was printed): it prints **every**
argument, separated by single spaces, then a newline, each by its display string (as ``emit``
shows it; nil shows as nothing). For compatibility with 0.4.2 scripts, which could pass several
values only as one list, a call with exactly one list argument prints the list's elements
separated by spaces (``Print(["a", 1])`` prints ``a 1``); to print a list as ``[a, 1]``, use
``emit`` or pass it with another argument.
"""

from __future__ import annotations

from typing import Any

from ...limits import checked_display, value_limit
from ..registry import ToolContext, tool
from ._common import variadic

__all__ = ["TOOLS"]


@tool("io", "Print", aliases=("Print",), return_type="nil")
def print_(ctx: ToolContext, *values: Any) -> None:
    """Print values, separated by spaces, and a newline to the script's output.

    Upstream 0.4.2 Print printed only its first argument; here every argument is printed. A single list
    argument prints its elements separated by spaces (0.4.2 behaviour).

    Args:
        values: any number of values of any type.

    Returns:
        Always nil (the text goes to the output).

    Example:
        call tool.io.Print("total:", 42, "items")
    """
    items = variadic(values)
    if len(items) == 1 and type(items[0]) is list:
        items = items[0]
    out = ctx.interpreter.stdout
    limit = value_limit(ctx.interpreter)
    for i, v in enumerate(items):  # one write per value: the output line is never built as one string
        if i:
            out.write(" ")
        out.write(checked_display(v, limit))
    out.write("\n")
    return None


@tool("io", "Input", aliases=("Input",), return_type="string")
def input_(ctx: ToolContext, message: str = "") -> str | None:
    """Read one line from the script's input, after showing an optional prompt.

    Upstream 0.4.2 Input. The prompt is written to the output without a newline. The trailing
    newline (\\n or \\r\\n) is removed from the line. At the end of the input the result is nil
    (0.4.2 failed with code 26), so a script can read until nil. Waiting for input ends at the
    run's time limit with error 31 (Timeout), which ``on error`` cannot catch.

    Args:
        message: the prompt to show first (nothing when empty).

    Returns:
        The line without its newline, or nil at the end of the input.

    Example:
        set name = tool.io.Input("Your name: ")
    """
    interp = ctx.interpreter
    if message:
        interp.stdout.write(message)
        flush = getattr(interp.stdout, "flush", None)
        if flush is not None:
            flush()
    read_line = getattr(interp, "read_line", None)  # ends at the run's deadline (code 31)
    line: str = read_line() if read_line is not None else interp.stdin.readline()
    if line == "":
        return None
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


TOOLS: list[Any] = [print_, input_]
