"""Deep recursion without touching Python's recursion limit: the call stack in segments (issue 10 item 4).

Python's recursion limit (``sys.getrecursionlimit()``) is process-wide; it bounds the frames of each
thread. A NeuroScript call takes two Python frames (generated code) to about ten (closures), so the
default ``max_call_depth`` of 1,000 needs more frames than Python's default limit of 1,000 allows.
Raising the limit at run time is not ours to do: it is shared with the host and every other thread
(two interpreters raising and restoring it in two threads aborted the process), and a high limit lets
C-level recursion overflow the C stack of a thread (a segmentation fault instead of RecursionError).

So the limit is never changed. Instead, the NeuroScript call stack is split into *segments*, one per
thread: when the Python stack of the current thread nears the limit, the next procedure call runs on a
fresh thread, whose Python stack starts empty, while the calling thread waits for it. Each segment stays
below the limit the host set (keeping :data:`RESERVE` frames free for tools and expressions), so C
recursion stays as bounded as the host configured it, and a call depth of
:data:`MAX_CALL_DEPTH` works whatever the host's limit and the caller's thread stack.

The check costs one comparison per call (``depth > interp.depth_checkpoint``); only at a checkpoint is
the Python stack measured. Checkpoints come at halving intervals of the room that is left, so a run
whose calls stay shallow (fib) measures once, and a deep run measures O(log room) times per segment.

A ``KeyboardInterrupt`` (or ``SystemExit``) that reaches a waiting thread is passed on to the innermost
running segment, which stops at its next bytecode; the waiting thread then re-raises it once the segments
below have unwound (their ``finally`` blocks restore the interpreter's state).
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .interpreter import Interpreter

__all__ = ["MAX_CALL_DEPTH", "RESERVE", "Segment", "deep_call", "frames_in_thread", "with_headroom"]

#: Largest accepted ``max_call_depth`` (``--max-depth``). Every level of a deep run holds its Python
#: frames and its variables (about 1 KB), and every few hundred levels one waiting thread.
MAX_CALL_DEPTH = 100_000
#: Python frames each segment leaves free above its last procedure call: for the expressions, tool
#: calls and library code a procedure body runs (an AI worker call through httpx takes ~100 frames).
RESERVE = 250
#: First checkpoint of a run (calls never deeper than this never measure the stack).
FIRST_CHECK = 8
#: A segment hops to a new thread only after this many levels (no thread per call when room is short).
MIN_SEGMENT = 8
#: Python frames per NeuroScript call assumed until a segment has measured its own (closures take ~10).
DEFAULT_FRAMES_PER_CALL = 12.0

#: parent thread ident -> the thread it waits for (to find the innermost running segment on an interrupt)
_waiting_on: dict[int, threading.Thread] = {}


class Segment:
    """The part of a run's call stack that lives on one thread (see the module docstring).

    Attributes:
        start: NeuroScript call depth at which the segment began.
        mark_depth, mark_frames: call depth and Python frame count at the segment's last checkpoint.
        per_call: Python frames per NeuroScript call seen so far (the largest slope measured; None
            before the first measurement, when :data:`DEFAULT_FRAMES_PER_CALL` is assumed).
    """

    __slots__ = ("start", "mark_depth", "mark_frames", "per_call")

    def __init__(self, start: int, per_call: float | None = None) -> None:
        self.start = start
        self.mark_depth = -1
        self.mark_frames = 0
        self.per_call = per_call


def frames_in_thread() -> int:
    """How many Python frames the calling thread has (its own included); O(frames · log frames) in C."""
    get = sys._getframe
    lo, hi = 0, 64
    try:
        while True:
            get(hi)
            lo, hi = hi, hi * 2
    except ValueError:
        pass
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            get(mid)
            lo = mid
        except ValueError:
            hi = mid
    return lo  # frames below this function's own = frames of the caller's thread, caller included


def _reserve(limit: int) -> int:
    return min(RESERVE, limit // 4)


def deep_call(rt: Interpreter, invoke: Callable[[list[Any]], Any], args: list[Any], name: str) -> Any:
    """Slow path of a procedure call whose depth passed ``rt.depth_checkpoint``.

    Raises error 37 past ``max_call_depth``; otherwise measures the Python stack and either moves the
    checkpoint further (enough room: the call runs here) or runs the call on a new segment.
    """
    d = rt.depth + 1
    maxd = rt.limits.max_call_depth
    if d > maxd:
        raise rt.depth_error(name)
    seg = rt.segment
    limit = sys.getrecursionlimit()
    frames = frames_in_thread()
    if seg.mark_depth >= 0 and d > seg.mark_depth:
        slope = max((frames - seg.mark_frames) / (d - seg.mark_depth), 1.0)
        seg.per_call = slope if seg.per_call is None else max(seg.per_call, slope)
    seg.mark_depth, seg.mark_frames = d, frames
    fits = int((limit - frames - _reserve(limit)) / (seg.per_call or DEFAULT_FRAMES_PER_CALL))
    if fits >= 2 or d - seg.start < MIN_SEGMENT:
        rt.depth_checkpoint = min(maxd, d + max(1, fits // 2))
        return invoke(args)
    return _new_segment(rt, invoke, args, d)


def _new_segment(rt: Interpreter, invoke: Callable[[list[Any]], Any], args: list[Any], d: int) -> Any:
    saved = rt.segment, rt.depth_checkpoint

    def run() -> Any:
        rt.segment = Segment(d, saved[0].per_call)
        rt.segment.mark_depth, rt.segment.mark_frames = d, frames_in_thread()
        rt.depth_checkpoint = d  # this call passes; the next level measures the new thread's stack
        return invoke(args)

    try:
        return _on_thread(run)
    finally:
        rt.segment, rt.depth_checkpoint = saved


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
    exception becomes ours."""
    box: list[Any] = []
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box.append((True, ctx.run(fn, *args)))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which re-raises it
            box.append((False, e))

    t = threading.Thread(target=target, name="nslang-stack", daemon=True)
    me = threading.get_ident()
    _waiting_on[me] = t
    try:
        t.start()
        _wait(t)
    finally:
        _waiting_on.pop(me, None)
    ok, value = box[0]
    if ok:
        return value
    raise value


def _wait(t: threading.Thread) -> None:
    """Join ``t``; an interrupt raised here (a signal in the main thread) is passed on to the innermost
    segment, and re-raised here once ``t`` has finished."""
    pending: BaseException | None = None
    sent: set[int] = set()
    while True:
        try:
            if pending is None:
                t.join()
            else:
                _interrupt(t, type(pending), sent)
                t.join(0.05)
        except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt / SystemExit from a signal handler
            pending = pending or e
            continue
        if not t.is_alive():
            break
    if pending is not None:
        raise pending


def _interrupt(t: threading.Thread, exc: type[BaseException], sent: set[int]) -> None:
    """Raise ``exc`` asynchronously, once, in the innermost running segment below ``t``."""
    while t.ident in _waiting_on:
        t = _waiting_on[t.ident]
    ident = t.ident
    if ident is None or ident in sent or not t.is_alive():
        return
    sent.add(ident)
    try:
        import ctypes

        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))
    except (ImportError, AttributeError):  # pragma: no cover - not CPython: the segment runs to its end
        pass
