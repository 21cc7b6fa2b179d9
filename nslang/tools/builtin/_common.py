"""Helpers shared by the built-in tool modules: argument errors and variadic arguments.

Error-code conventions of the built-in tools (NeuroScript codes, spec/language.md §5.5):

* 4 ArgMismatch: a wrong type, a missing or unknown argument (raised by the registry), and an
  argument value the tool cannot use (a negative count, a bad regular expression, bad JSON text).
* 7 Type: a value of the right argument type holds elements of the wrong type (``list.Sort`` on a
  mixed list). 8 Bounds: an index outside its range. 9 KeyNotFound: ``str.Format`` placeholder with
  no value. 14 DivisionByZero.
* File-system codes: 11 ReadOnly (a change to one of nslang's internal files, see
  :mod:`nslang.workers.sandbox_files`), 22 FileNotFound, 23 PathTypeMismatch, 24 PathExists,
  25 PermissionDenied, 26 IOFailed, 34 PathViolation (the path leaves the sandbox), 37
  ResourceExhaustion (a file larger than the interpreter's ``limits.max_file_bytes``).
* 21 ToolExecutionFailed: anything else that fails inside a tool.

Messages start with ``argument '<name>':`` where one argument is at fault; the registry puts
``tool.<group>.<Name>:`` in front, so every message names the tool and the argument.
"""

from __future__ import annotations

from typing import Any

from ...errors import ErrorCode, ToolError
from ...values import short_repr, type_name

__all__ = ["arg_error", "describe", "variadic"]


def arg_error(arg: str, message: str, code: int = ErrorCode.ARG_MISMATCH) -> ToolError:
    """A :class:`ToolError` about one argument: ``argument '<arg>': <message>`` (code 4 by default)."""
    return ToolError(f"argument '{arg}': {message}", code=code)


def describe(v: Any) -> str:
    """``<type> <short value>`` for error messages, e.g. ``string "abc"``."""
    return f"{type_name(v)} {short_repr(v)}"


def variadic(values: tuple[Any, ...]) -> list[Any]:
    """The extra arguments of a variadic tool.

    The registry (``ToolRegistry.bind_arguments``) passes a variadic tool's extra positional
    arguments as one list in the last parameter, so a function declared ``f(ctx, first, *rest)``
    receives ``rest == ([extra, ...],)``. A direct Python call ``f(ctx, first, a, b)`` is also accepted.
    """
    if len(values) == 1 and type(values[0]) is list:
        return list(values[0])
    return list(values)
