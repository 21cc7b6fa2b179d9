"""Resource limits shared by the interpreter, the tools and the AI workers: value size and the run's deadline.

Issue 10 item 6 ("limits bound everything"). Two limits live here because several layers enforce them:

* **Value size.** No single string, list or map may grow past ``limits.max_value_bytes`` (default
  :data:`DEFAULT_MAX_VALUE_BYTES`, 64 MiB). Sizes are counted cheaply, in O(1), by
  :func:`value_size`: a string (or bytes value) counts one byte per character, a list or a map
  :data:`ELEMENT_BYTES` (32) bytes per element or entry (a reference and a small object; the
  elements' own contents were capped when they were built). The checks sit where values grow:
  string ``+`` and interpolation, list and map element assignment (:mod:`nslang.compiler`,
  :mod:`nslang._runtime`), tool results at the registry boundary and the tools that can multiply
  their input (``str.Replace``, ``str.Join``, ``str.Split``, ``list.Concat``, ``json.Parse`` …).
  Exceeding it raises error 37 (ResourceExhaustion) *before* the value is built; the error is
  catchable by ``on error`` (like the call-depth limit), since nothing was allocated.
* **The run's deadline.** :class:`RunDeadline` is what the interpreter offers to code that waits or
  works for long (model calls, regular expressions, ``io.Input``, rate-limit waits):
  ``remaining_time()`` (seconds, None without a limit) and ``check_deadline()`` (raises the run's
  timeout error, code 31, not catchable). :class:`LineReader` reads input lines within it.
"""

from __future__ import annotations

import _thread
import time

from .errors import ErrorCode, NSRuntimeError, python_error

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    import concurrent.futures
    from collections.abc import Callable
    from typing import Any, NoReturn, Protocol

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "ELEMENT_BYTES",
    "LineReader",
    "RunDeadline",
    "check_length",
    "check_value",
    "check_deadline",
    "checked_add",
    "checked_display",
    "display_size",
    "expire",
    "remaining_time",
    "value_limit",
    "value_size",
    "value_too_large",
]

#: Default cap on the size of one value (bytes, see :func:`value_size`): 64 MiB.
DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024
#: What one list element or map entry counts towards the value size (bytes): a reference and a small
#: object (the elements' own contents were capped when they were built). 64 MiB allows 2,097,152 elements.
ELEMENT_BYTES = 32


if TYPE_CHECKING:  # pragma: no cover (a structural type for annotations only)
    class RunDeadline(Protocol):
        """The run's wall-clock limit, as :class:`~nslang.Interpreter` offers it to tools and the workers."""

        def remaining_time(self) -> float | None:
            """Seconds left before the run's deadline (0.0 once passed), or None when the run has no time limit."""

        def check_deadline(self) -> None:
            """Raise the run's timeout error (ResourceLimitError, code 31) if its deadline has passed."""


def value_size(v: Any) -> int:
    """The size of ``v`` as the value-size limit counts it (bytes; O(1), not recursive).

    A string or bytes value: its length; a list or map: :data:`ELEMENT_BYTES` per element or entry;
    anything else: 0 (numbers, booleans, nil, timedates are small or bounded elsewhere).
    """
    t = type(v)
    if t is str or t is bytes:
        return len(v)
    if t is list or isinstance(v, dict):
        return ELEMENT_BYTES * len(v)
    return 0


def value_too_large(what: str, size: int, limit: int) -> NSRuntimeError:
    """Error 37 (ResourceExhaustion) for a value of ``size`` bytes over ``limit`` (catchable)."""
    shown = f"{size:,}" if size < 10**18 else "over 10^18"  # a huge list index: never Python's digit limit
    return NSRuntimeError(
        f"{what} would be {shown} bytes, more than the value size limit of {limit:,} bytes "
        "(Interpreter(max_value_bytes=…), nslang run --max-value-bytes)",
        code=ErrorCode.RESOURCE_EXHAUSTION,
    )


def check_value(v: Any, limit: int, what: str = "the value") -> Any:
    """Return ``v`` unchanged, or raise :func:`value_too_large` when :func:`value_size` exceeds ``limit``."""
    size = value_size(v)
    if size > limit:
        raise value_too_large(what, size, limit)
    return v


def check_length(n: int, limit: int, what: str = "the string") -> None:
    """Raise :func:`value_too_large` when a string of ``n`` characters would exceed ``limit``."""
    if n > limit:
        raise value_too_large(what, n, limit)


_CHECKED_ADD: dict[int, Callable[[Any, Any], Any]] = {}


def checked_add(limit: int) -> Callable[[Any, Any], Any]:
    """The ``+`` operator's full rules (:func:`nslang.values.add`) with the value-size limit.

    Two strings are measured before they are joined, a list or map operand (shown by its display
    string) before it is displayed, any other string result after.
    The function takes an optional source position for its errors (the generated code passes it,
    saving a call level on this hot path).
    """
    known = _CHECKED_ADD.get(limit)
    if known is not None:
        return known
    from .values import add

    def add_checked(a: Any, b: Any, span: Any = None) -> Any:
        try:
            ta, tb = type(a), type(b)
            if ta is str and tb is str:
                if len(a) + len(b) > limit:
                    raise value_too_large("the string", len(a) + len(b), limit)
            elif ta is list or tb is list or ta is dict or tb is dict:
                size = display_size(a, limit) + display_size(b, limit)
                if size > limit:
                    raise value_too_large("the string", size, limit)
            r = add(a, b)
            if type(r) is str and len(r) > limit:
                raise value_too_large("the string", len(r), limit)
        except NSRuntimeError as e:
            if e.span is None:
                e.span = span
            raise
        except (ArithmeticError, ValueError, MemoryError) as e:  # 10 ** 400 + 0.5 (issue 10 item 5)
            err = python_error(e)
            if err is None:
                raise
            err.span = span
            raise err from None
        return r

    _CHECKED_ADD[limit] = add_checked
    return add_checked


def checked_display(v: Any, limit: int, what: str = "the display string") -> str:
    """:func:`nslang.values.display` of ``v``, refused (code 37) before it is built when a list or map
    would display as more than ``limit`` characters (a list holding one big string many times)."""
    from .values import display

    if (type(v) is list or isinstance(v, dict)) and v:
        size = display_size(v, limit)
        if size > limit:
            raise value_too_large(what, size, limit)
    return display(v)


def display_size(v: Any, stop: int) -> int:
    """An upper bound of ``len(display(v))`` computed without building the text (iteratively; a list
    or map shared several times counts each time, as display repeats it). Counting ends as soon as
    the total passes ``stop``; the result is then some number above ``stop``."""
    t = type(v)
    if t is str:
        return len(v)
    if not (t is list or isinstance(v, dict)):
        return _inner_size(v)
    memo: dict[int, int] = {}  # container id -> its display size, once known
    active: set[int] = set()  # containers being counted (met again inside itself: displays as [...])
    total = 2
    stack: list[tuple[Any, Any, int]] = [(v, iter(v.items() if isinstance(v, dict) else v), total)]
    active.add(id(v))
    while stack:
        c, items, start = stack[-1]
        pushed = False
        for item in items:
            if type(c) is not list:
                k, x = item
                total += len(k) + 6  # '"k": ' and the separator
            else:
                x = item
                total += 2  # the separator
            tx = type(x)
            if tx is list or isinstance(x, dict):
                key = id(x)
                if key in memo:
                    total += memo[key]
                elif key not in active:
                    active.add(key)
                    total += 2
                    stack.append((x, iter(x.items() if isinstance(x, dict) else x), total - 2))
                    pushed = True
                    break
                else:
                    total += 5  # a cycle: "[...]" / "{...}"
            else:
                total += _inner_size(x)
            if total > stop:
                return total
        if not pushed:
            stack.pop()
            active.discard(id(c))
            memo[id(c)] = total - start
        if total > stop:
            return total
    return total


def _inner_size(x: Any) -> int:
    """An upper bound of the display length of a non-container inside a list or map."""
    t = type(x)
    if t is str:
        n = len(x)
        if n <= 64:
            return 2 * n + 2
        return n + 2 + x.count("\\") + x.count('"') + x.count("\n") + x.count("\t")
    if t is int:
        return x.bit_length() * 3 // 10 + 2
    if x is None or t is bool:
        return 5
    if t is bytes:
        return len(x)
    name = getattr(x, "name", None)  # procedure and tool references
    return 40 + (len(name) if type(name) is str else 0)


def value_limit(interp: Any) -> int:
    """``interp.limits.max_value_bytes``, or :data:`DEFAULT_MAX_VALUE_BYTES` for an object without it."""
    value = getattr(getattr(interp, "limits", None), "max_value_bytes", None)
    return DEFAULT_MAX_VALUE_BYTES if value is None else int(value)


def remaining_time(interp: Any) -> float | None:
    """``interp.remaining_time()`` (seconds left in the run, None without a limit); None for an object
    without that method (test doubles, hosts)."""
    fn = getattr(interp, "remaining_time", None)
    return None if fn is None else fn()  # type: ignore[no-any-return]


def check_deadline(interp: Any) -> None:
    """``interp.check_deadline()`` if it has one: tools call it between chunks of long work."""
    fn = getattr(interp, "check_deadline", None)
    if fn is not None:
        fn()


def expire(run: RunDeadline) -> NoReturn:
    """End the run with its timeout error once a wait bounded by ``remaining_time()`` has run out.

    Waits that a library times (``regex``, ``httpx``, a thread join) may return a few milliseconds
    before the deadline by their own clock; this waits out the rest, then ``check_deadline()`` raises.

    Raises:
        ResourceLimitError: code 31, the run's timeout error.
    """
    while True:
        run.check_deadline()
        left = run.remaining_time()
        if left is None:  # pragma: no cover - only called when the run has a deadline
            raise RuntimeError("expire() called for a run without a time limit")
        time.sleep(left + 0.001)


class LineReader:
    """Reads lines from an input stream, waiting at most until the run's deadline (``io.Input``).

    A stream backed by a file descriptor (a terminal, a pipe) is read on a helper thread so that the
    wait can end at the deadline with the run's timeout error; the read it leaves pending is
    finished by the next call on the same stream, so no line is lost or read twice. Other streams
    (``io.StringIO``) cannot block and are read directly. One reader per interpreter.
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._pending: tuple[Any, concurrent.futures.Future[str]] | None = None

    def readline(self, stream: Any, run: RunDeadline | None) -> str:
        """One line of ``stream`` with its newline ("" at the end of the input).

        Raises:
            ResourceLimitError: code 31, the run's deadline passed while waiting.
            OSError, ValueError: the stream's own errors.
        """
        import concurrent.futures  # here, not at start-up: it imports logging (~3 ms)

        left = None if run is None else run.remaining_time()
        with self._lock:
            pending = self._pending[1] if self._pending is not None and self._pending[0] is stream else None
            if pending is None:
                if left is None or not _has_fd(stream):
                    return stream.readline()  # type: ignore[no-any-return]
                pending = concurrent.futures.Future()
                import threading

                threading.Thread(target=_read_into, args=(stream, pending), name="nslang-input",
                                 daemon=True).start()
                self._pending = (stream, pending)
        try:
            line = pending.result(timeout=left)
        except concurrent.futures.TimeoutError:
            assert run is not None
            expire(run)
        with self._lock:
            if self._pending is not None and self._pending[1] is pending:
                self._pending = None
        return line


def _has_fd(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _read_into(stream: Any, future: concurrent.futures.Future[str]) -> None:
    try:
        future.set_result(stream.readline())
    except BaseException as e:  # boundary: the waiting caller re-raises it
        future.set_exception(e)
