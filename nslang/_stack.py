"""Deep recursion without touching Python's recursion limit: the call stack in segments (issue 10 item 4).

Python's recursion limit (``sys.getrecursionlimit()``) is process-wide; it bounds the frames of each
thread. A NeuroScript call takes one Python frame or a few (generated code, more through tools), so the
default ``max_call_depth`` of 1,000 needs more frames than Python's default limit of 1,000 allows.
Raising the limit at run time is not ours to do: it is shared with the host and every other thread
(two interpreters raising and restoring it in two threads aborted the process), and a high limit lets
C-level recursion overflow the C stack of a thread (a segmentation fault instead of RecursionError).

So the limit is never changed. Instead, the NeuroScript call stack is split into *segments*, one per
thread: when the Python stack of the current thread would near the limit, the next procedure call runs
on a fresh thread, whose Python stack starts empty, while the calling thread waits for it. Each segment
stays below the limit the host set and below :data:`SEGMENT_FRAMES` (keeping :data:`RESERVE` frames
free for tools and expressions), so C recursion stays as bounded as in default Python, and a call depth
of :data:`MAX_CALL_DEPTH` works whatever the host's limit and the caller's thread stack.

How many calls a segment holds follows from a static bound on the Python frames of one call
(``Interpreter.frames_per_call``: the largest :func:`note_procedure` bound of the procedures compiled so
far, from the nesting of their bodies), so no path through the code can take more frames than the
segment has. The check costs one comparison per call (``depth > CPV``, the
interpreter's ``depth_checkpoint`` as a global of generated code, which takes the depth as an argument); the stack
is measured only when a run starts and when a segment starts.

A ``KeyboardInterrupt`` (or ``SystemExit``) that reaches a waiting thread is passed on to the innermost
running segment, which stops at its next bytecode; the waiting thread then re-raises it once the segments
below have unwound (their ``finally`` blocks restore the interpreter's state).
"""

from __future__ import annotations

import sys

from .errors import ErrorCode, NSRuntimeError

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    import threading
    from collections.abc import Callable
    from typing import Any

    from .interpreter import Interpreter

__all__ = ["MAX_CALL_DEPTH", "RESERVE", "SEGMENT_FRAMES", "Segment", "deep_call", "frames_in_thread",
           "note_procedure", "start_run", "with_headroom"]

#: Largest accepted ``max_call_depth`` (``--max-depth``). Every level of a deep run holds its Python
#: frames and its variables (about 1 KB), and every few hundred levels one waiting thread.
MAX_CALL_DEPTH = 100_000
#: Python frames one segment may use (or fewer, under a lower recursion limit): a host that raised the
#: limit does not make segments deeper than default Python, whose C stack use every thread can bear
#: (calls made through C, e.g. tool.script.Call, take C stack for every level).
SEGMENT_FRAMES = 1000
#: Python frames each segment leaves free above its last procedure call: for the expressions, tool
#: calls and library code a procedure body runs (an AI worker call through httpx takes ~100 frames).
RESERVE = 250
#: Python frames one NeuroScript call may take, as a bound from its procedure's nesting: at most
#: FRAMES_PER_LEVEL per level of statements and expressions around the deepest call in the body, plus
#: FRAMES_PER_CALL (generated code takes 1 frame per call, 2 to 4 on its first call or via call_dyn; the
#: per-level part leaves room for tools and host callbacks the body makes).
FRAMES_PER_LEVEL = 2
FRAMES_PER_CALL = 6
#: The bound assumed before any procedure is compiled (a body of depth 3).
MIN_FRAMES_PER_CALL = 3 * FRAMES_PER_LEVEL + FRAMES_PER_CALL

#: parent thread ident -> the thread it waits for (to find the innermost running segment on an interrupt)
_waiting_on: dict[int, threading.Thread] = {}


class Segment:
    """The part of a run's call stack that lives on one thread (see the module docstring).

    Attributes:
        start: NeuroScript call depth at which the segment began (its first call is ``start + 1``).
        base_frames: Python frames of the thread when the segment began.
        fresh: the segment is a thread of its own (not the caller's thread).
    """

    __slots__ = ("start", "base_frames", "fresh")

    def __init__(self, start: int, base_frames: int, fresh: bool) -> None:
        self.start = start
        self.base_frames = base_frames
        self.fresh = fresh

    def checkpoint(self, rt: Interpreter) -> int:
        """The deepest call depth this segment holds: every call takes at most ``rt.frames_per_call``
        frames, and :data:`RESERVE` frames stay free below the ceiling."""
        ceiling = min(sys.getrecursionlimit(), self.base_frames + SEGMENT_FRAMES)
        room = ceiling - min(RESERVE, ceiling // 4) - self.base_frames
        return min(rt.limits.max_call_depth, self.start + room // rt.frames_per_call)


def start_run(rt: Interpreter) -> None:
    """A run begins on the calling thread: its first segment, measured there."""
    rt.segment = seg = Segment(0, frames_in_thread(), False)
    rt.depth_checkpoint = seg.checkpoint(rt)


def frames_in_thread(hint: int = 64) -> int:
    """How many Python frames the calling thread has (the caller's included, this function's not).

    A galloping search from ``hint`` (the expected count) with ``sys._getframe`` probes, each walking
    the stack in C: a few microseconds when the hint is close.
    """
    k = max(hint, 2)
    step = 1
    if _has(k):
        lo = k
        while _has(lo + step):
            lo += step
            step *= 2
        hi = lo + step
    else:
        hi = k
        while hi - step > 1 and not _has(hi - step):
            hi -= step
            step *= 2
        lo = max(hi - step, 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _has(mid):
            lo = mid
        else:
            hi = mid
    return lo - 1  # sys._getframe(lo) in _has is the outermost frame; _has and this function not counted


def _has(k: int) -> bool:
    try:
        sys._getframe(k)
    except ValueError:
        return False
    return True


def note_procedure(rt: Interpreter, nesting: int, depth: int) -> None:
    """Record a newly compiled procedure whose deepest call sits ``nesting`` levels into its body,
    compiled by a caller at call depth ``depth``: raise ``rt.frames_per_call`` to its bound (the next
    deeper call then re-checks the segment)."""
    per = FRAMES_PER_LEVEL * nesting + FRAMES_PER_CALL
    if per > rt.frames_per_call:
        rt.frames_per_call = per
        rt.depth_checkpoint = min(rt.depth_checkpoint, depth)


def deep_call(rt: Interpreter, fn: Callable[..., Any], name: str, d: int, args: tuple[Any, ...]) -> Any:
    """Slow path of a call ``fn(d, *args)`` to procedure ``name`` at depth ``d``, which passed
    ``rt.depth_checkpoint``.

    Raises error 37 past ``max_call_depth``; runs the call here if the segment still holds it (the
    checkpoint was lowered by :func:`note_procedure`), else on a new segment.
    """
    if d > rt.limits.max_call_depth:
        raise rt.depth_error(name)
    seg = rt.segment
    cp = seg.checkpoint(rt)
    if d <= cp or (seg.fresh and d == seg.start + 1):  # (a fresh thread runs its first call whatever the bound)
        rt.depth_checkpoint = max(cp, d)
        return fn(d, *args)
    return _new_segment(rt, fn, args, d)


def _new_segment(rt: Interpreter, fn: Callable[..., Any], args: tuple[Any, ...], d: int) -> Any:
    parent, cp, per = rt.segment, rt.depth_checkpoint, rt.frames_per_call

    def run() -> Any:
        rt.segment = seg = Segment(d - 1, frames_in_thread(8), True)
        rt.depth_checkpoint = max(seg.checkpoint(rt), d)
        return fn(d, *args)

    try:
        return _on_thread(run)
    finally:
        rt.segment = parent
        # a procedure compiled meanwhile may take more frames per call than the parent's checkpoint assumed
        rt.depth_checkpoint = cp if rt.frames_per_call == per else min(cp, d - 1)


def with_headroom(frames: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with at least ``frames`` Python frames free (on a new thread when the calling
    thread's stack is too deep), for C code that recurses once per level of its data (``json``).

    When the recursion limit itself is too low for ``frames``, ``fn`` runs here and may raise
    RecursionError, which the caller turns into its own error.
    """
    limit = sys.getrecursionlimit()
    need = frames + 50
    if need >= limit:
        return fn(*args)
    try:
        sys._getframe(limit - need)
    except ValueError:  # the stack is shallower than limit - need: enough room here
        return fn(*args)
    return _on_thread(fn, *args)


def _on_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on a new thread (same context variables) and wait for it; its result or its
    exception becomes ours. Error 37 when no thread can be started. The thread is never left running:
    whatever interrupts the wait is passed on below and re-raised once the thread has finished."""
    import contextvars
    import threading

    box: list[Any] = []
    done = threading.Event()  # not Thread.join: on 3.11 an interrupted join marks a running thread stopped
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box.append((True, ctx.run(fn, *args)))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which re-raises it
            box.append((False, e))
        finally:
            done.set()

    t = threading.Thread(target=target, name="nslang-stack", daemon=True)
    me = threading.get_ident()
    _waiting_on[me] = t
    try:
        try:
            t.start()
        except RuntimeError as e:  # "can't start new thread": the process is out of threads or memory
            raise NSRuntimeError(f"the call stack cannot grow: no new thread can be started ({e})",
                                 code=ErrorCode.RESOURCE_EXHAUSTION) from None
        _wait(t, done)
    except BaseException as e:
        if t.ident is not None and not done.is_set():  # interrupted outside _wait's own handler
            _wait(t, done, e)
        raise
    finally:
        _waiting_on.pop(me, None)
    ok, value = box[0]
    if ok:
        return value
    raise value


def _wait(t: threading.Thread, done: threading.Event, pending: BaseException | None = None) -> None:
    """Wait for ``t`` to set ``done``. An exception raised here while waiting (an interrupt: a signal
    handler's KeyboardInterrupt in the main thread) is passed on, once, to the innermost segment
    below, and re-raised here once ``t`` has finished."""
    import threading

    sent = False
    # the main thread wakes up now and then: a simulated signal (_thread.interrupt_main) only runs its
    # handler when the thread runs bytecode, a real one also interrupts a blocking wait
    poll = 0.25 if threading.current_thread() is threading.main_thread() else None
    while True:
        try:
            if pending is not None and not sent:
                sent = _interrupt(t, type(pending))
            if done.wait(poll if pending is None else 0.05):
                break
        except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt / SystemExit
            pending = pending or e
    if pending is not None:
        raise pending


def _interrupt(t: threading.Thread, exc: type[BaseException]) -> bool:
    """Raise ``exc`` asynchronously in the innermost running segment below ``t``; False when that
    thread has not started yet (try again)."""
    while t.ident in _waiting_on:
        t = _waiting_on[t.ident]
    if t.ident is None:
        return False
    try:
        import ctypes

        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(exc))
    except (ImportError, AttributeError):  # pragma: no cover - not CPython: the segment runs to its end
        pass
    return True
