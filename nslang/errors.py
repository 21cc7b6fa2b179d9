"""The one exception root of nslang and its hierarchy.

Every error a NeuroScript user or a host application sees is an :class:`NSError`. The tree::

    NSError                      root; has .code (ErrorCode), .message, .span
    ├── NSSyntaxError            the source does not parse (code 15, Syntax)
    ├── NSValidationError        it parses but cannot be loaded (code 15; duplicate procedure: 42)
    ├── NSRuntimeError           evaluation failed; has .stack (NeuroScript call stack)
    │   ├── ToolError            a tool refused its arguments (4) or failed (21, or the tool's own code)
    │   ├── (nslang.workers.errors) AI worker errors: bad definition/argument 4, unknown id 9,
    │   │                        key or config 18, disabled/retired 19, rate limit 20, provider 40
    │   ├── LLMError             a model provider failed (code 16, LLMError)
    │   │   └── LLMHTTPError     ... with an HTTP status, provider name and the provider's message
    │   └── ResourceLimitError   call depth, statement count or time limit (37 / 31); never handled
    │                            by ``on error`` unless it is the call-depth limit
    └── UsageError               the host Python program misused the API (not a script error)

Control-flow signals (break, continue, return) are not exceptions at all: compiled statements
return them as values (see ``nslang.compiler``).

Python exceptions that extreme input can raise inside an operator, a built-in function or a tool
(OverflowError, ZeroDivisionError, a maths ValueError, MemoryError) are translated once, at that
boundary, by :func:`python_error` (issue 10 item 5).

Error codes are the upstream ``ErrorCode`` constants (spec/language.md §5.5, 0.4.2 values, with
HEAD's additions 37-43).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator
    from typing import Any, NamedTuple

    from .source import Span

__all__ = [
    "CallFrame",
    "ErrorCode",
    "LLMError",
    "LLMHTTPError",
    "NSError",
    "NSRuntimeError",
    "NSSyntaxError",
    "NSValidationError",
    "ResourceLimitError",
    "ToolError",
    "UsageError",
    "out_of_memory",
    "python_error",
]


class _CodeType(type):
    def __iter__(cls) -> Iterator[ErrorCode]:
        return iter(cls._members)  # type: ignore[attr-defined]

    def __len__(cls) -> int:
        return len(cls._members)  # type: ignore[attr-defined]


class ErrorCode(int, metaclass=_CodeType):
    """NeuroScript error codes (upstream ``pkg/lang/errors.go`` at d3495d6, plus HEAD's 37-43).

    An ``int`` subclass that behaves as an ``enum.IntEnum`` does here (``ErrorCode.TYPE``,
    ``ErrorCode(7)``, ``.name``, iteration), without importing :mod:`enum` at start-up (issue 16 item 3).
    """

    GENERIC = 0
    FAIL_STATEMENT = 1
    PROC_NOT_FOUND = 2
    TOOL_NOT_FOUND = 3
    ARG_MISMATCH = 4
    MUST_FAILED = 5
    INTERNAL = 6
    TYPE = 7
    BOUNDS = 8
    KEY_NOT_FOUND = 9
    SECURITY = 10
    READ_ONLY = 11
    RETURN_VIOLATION = 12
    CLEAR_VIOLATION = 13
    DIVISION_BY_ZERO = 14
    SYNTAX = 15
    LLM_ERROR = 16
    EVALUATION = 17
    CONFIGURATION = 18
    PRECONDITION_FAILED = 19
    RATE_LIMITED = 20
    TOOL_EXECUTION_FAILED = 21
    FILE_NOT_FOUND = 22
    PATH_TYPE_MISMATCH = 23
    PATH_EXISTS = 24
    PERMISSION_DENIED = 25
    IO_FAILED = 26
    NOT_IMPLEMENTED = 30
    TIMEOUT = 31
    EXECUTION_FAILED = 32
    PATH_VIOLATION = 34
    COUNT_MISMATCH = 36
    RESOURCE_EXHAUSTION = 37
    NESTING_DEPTH_EXCEEDED = 38
    CONTROL_FLOW = 39
    PROVIDER_NOT_FOUND = 40
    INVALID_VALUE = 41
    DUPLICATE = 42
    WRITE_VIOLATION = 43

    name: str
    _members: tuple[ErrorCode, ...] = ()
    _by_value: dict[int, ErrorCode] = {}

    def __new__(cls, value: int) -> ErrorCode:
        try:
            return cls._by_value[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid ErrorCode") from None

    def __repr__(self) -> str:
        return f"<ErrorCode.{self.name}: {int(self)}>"

    __str__ = int.__repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return ErrorCode, (int(self),)

    @property
    def title(self) -> str:
        """The upstream CamelCase name, e.g. ``KeyNotFound``."""
        return "".join(part.capitalize() for part in self.name.split("_")).replace("Llm", "LLM").replace(
            "Io", "IO"
        )


def _members() -> None:
    out = []
    for key, value in list(vars(ErrorCode).items()):
        if key.isupper() and type(value) is int:
            member = int.__new__(ErrorCode, value)
            member.name = key
            setattr(ErrorCode, key, member)
            out.append(member)
    ErrorCode._members = tuple(out)
    ErrorCode._by_value = {int(m): m for m in out}


_members()


if TYPE_CHECKING:  # pragma: no cover
    class CallFrame(NamedTuple):
        """One line of a NeuroScript call stack: the procedure entered and where it was called from."""

        procedure: str
        call_site: Span | None
else:  # the same pair, without importing typing or collections at start-up

    class CallFrame(tuple):
        """One line of a NeuroScript call stack: the procedure entered and where it was called from."""

        __slots__ = ()

        def __new__(cls, procedure, call_site):
            return tuple.__new__(cls, (procedure, call_site))

        procedure = property(lambda self: self[0], doc="the procedure entered")
        call_site = property(lambda self: self[1], doc="where it was called from (a Span, or None)")

        def __repr__(self):
            return f"CallFrame(procedure={self[0]!r}, call_site={self[1]!r})"

        def __getnewargs__(self):
            return tuple(self)


class NSError(Exception):
    """Root of every nslang error.

    Attributes:
        code: the NeuroScript error code (:class:`ErrorCode` or a tool-specific int >= 1000).
        message: the message without position.
        span: where in the source it happened, or None.
    """

    default_code: int = ErrorCode.GENERIC

    def __init__(self, message: str, *, code: int | None = None, span: Span | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = int(self.default_code if code is None else code)
        self.span = span

    @property
    def code_name(self) -> str:
        """The code's upstream name (``KeyNotFound``), or ``ToolSpecific`` for codes >= 1000."""
        try:
            return ErrorCode(self.code).title
        except ValueError:
            return "ToolSpecific" if self.code >= 1000 else "Unknown"

    def __str__(self) -> str:
        where = f" at {self.span.location()}" if self.span is not None else ""
        return f"NeuroScript error {self.code} ({self.code_name}): {self.message}{where}"

    def render(self) -> str:
        """The full user-facing text: code, message, ``file:line:col``, source line with a caret."""
        from .source import render_error

        return render_error(self)


class NSSyntaxError(NSError):
    """Raised when source text does not parse (code 15)."""

    default_code = ErrorCode.SYNTAX


class NSValidationError(NSError):
    """Raised when a parsed program cannot be loaded: bad metadata, duplicate procedure, bad escape."""

    default_code = ErrorCode.SYNTAX


class NSRuntimeError(NSError):
    """Raised when evaluating a script fails; ``on error`` handlers see these.

    Attributes:
        stack: NeuroScript call stack, innermost call first.
        handled_in: internal marker so one handler runs at most once per error per call.
    """

    default_code = ErrorCode.GENERIC
    #: False for errors that ``on error`` must not swallow (time and step limits).
    catchable = True

    def __init__(self, message: str, *, code: int | None = None, span: Span | None = None) -> None:
        super().__init__(message, code=code, span=span)
        self.stack: list[CallFrame] = []
        self.handled_in: object = None


class ToolError(NSRuntimeError):
    """Raised when a tool call fails: bad arguments (code 4) or a failure inside the tool (code 21)."""

    default_code = ErrorCode.TOOL_EXECUTION_FAILED


class LLMError(NSRuntimeError):
    """Raised when a model provider call fails (code 16)."""

    default_code = ErrorCode.LLM_ERROR


class LLMHTTPError(LLMError):
    """Raised when a provider answers with an HTTP error status.

    Attributes:
        status: HTTP status code.
        provider: provider name (``openai``, ``anthropic``, ...).
        body: the provider's own error message (never contains the API key).
    """

    def __init__(self, message: str, *, status: int, provider: str, body: str = "", code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.provider = provider
        self.body = body


class ResourceLimitError(NSRuntimeError):
    """Raised when a run exceeds its call depth (37), statement budget (37) or wall-clock time (31)."""

    default_code = ErrorCode.RESOURCE_EXHAUSTION
    catchable = False


class UsageError(NSError):
    """Raised when host Python code misuses the embedding API (not a script error)."""

    default_code = ErrorCode.CONFIGURATION


def out_of_memory() -> NSRuntimeError:
    """Error 37 (ResourceExhaustion, catchable) for a Python ``MemoryError``: the allocation that failed
    is released, so the run can go on (issue 10 item 5)."""
    return NSRuntimeError("out of memory: the operation needs more memory than the process can get",
                          code=ErrorCode.RESOURCE_EXHAUSTION)


_OVERFLOW_TEXT = {
    "int too large to convert to float": "number too large for a float (beyond about 1.8e308)",
    "integer division result too large for a float": "quotient too large for a float (beyond about 1.8e308)",
    "cannot convert float infinity to integer": "cannot turn an infinite number into an integer",
    "math range error": "result too large for a float (beyond about 1.8e308)",
}


def python_error(exc: BaseException) -> NSRuntimeError | None:
    """The NeuroScript error for a Python exception raised on extreme input, or None for any other.

    The one translation table used where an operator, a built-in function or a tool is invoked
    (issue 10 item 5); the caller adds the position or the tool name:

    * ``ZeroDivisionError``: code 14 (DivisionByZero);
    * ``OverflowError`` (an integer too large for a float, a float too large for the operation, a
      number outside the 64-bit range a Python routine accepts): code 17 (Evaluation);
    * ``ValueError`` "math domain error" or a NaN turned into an integer: code 17 (Evaluation);
    * ``ValueError`` for integer/text conversion beyond Python's digit limit: code 37
      (ResourceExhaustion; see ``nslang.values.MAX_INT_DIGITS``);
    * ``MemoryError``: code 37 (ResourceExhaustion).

    Returns:
        A catchable :class:`NSRuntimeError` without a span, or None when ``exc`` is not one of these
        (a RecursionError, or a ValueError that means something else).
    """
    if isinstance(exc, ZeroDivisionError):
        return NSRuntimeError("division by zero", code=ErrorCode.DIVISION_BY_ZERO)
    if isinstance(exc, MemoryError):
        return out_of_memory()
    text = str(exc)
    if isinstance(exc, OverflowError):
        if "too large to convert to C" in text:
            return NSRuntimeError("number outside the 64-bit integer range", code=ErrorCode.EVALUATION)
        return NSRuntimeError(_OVERFLOW_TEXT.get(text, f"number out of range ({text})"), code=ErrorCode.EVALUATION)
    if isinstance(exc, ValueError):
        if "integer string conversion" in text:
            from .values import MAX_INT_DIGITS

            return NSRuntimeError(f"integer too large: more than {MAX_INT_DIGITS} digits (the limit of exact "
                                  "integers)", code=ErrorCode.RESOURCE_EXHAUSTION)
        if text == "math domain error":
            return NSRuntimeError("undefined result (math domain error)", code=ErrorCode.EVALUATION)
        if text == "cannot convert float NaN to integer":
            return NSRuntimeError("cannot turn NaN into an integer", code=ErrorCode.EVALUATION)
    return None
