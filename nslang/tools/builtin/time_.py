"""The ``time`` tool group: timedate values, formatting, parsing and sleeping.

Upstream 0.4.2 had ``Time.Now`` and ``Time.Sleep`` (spec/language.md §8.5); Format, Parse, Since,
Diff and Add are nslang additions. A timedate is a timezone-aware ``datetime``; ``Now`` gives UTC.
Arguments of type ``timedate`` also accept an RFC 3339 string (the registry converts it).

The clock and the sleep function are the interpreter's when it provides them (``clock()`` returning
an aware datetime and ``sleep(seconds)``), so hosts and tests can inject them; otherwise the system
clock and ``time.sleep`` are used.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import time as _time
from collections.abc import Callable
from typing import Any

from ..registry import ToolContext, tool
from ._common import arg_error, describe

__all__ = ["TOOLS"]

#: Longest single ``time.Sleep``, in seconds.
MAX_SLEEP_S = 60.0
#: ``Sleep`` checks the run's deadline at least this often, in seconds.
SLEEP_SLICE_S = 0.05


def _now(ctx: ToolContext) -> _dt.datetime:
    clock: Callable[[], _dt.datetime] | None = getattr(ctx.interpreter, "clock", None)
    now = clock() if clock is not None else _dt.datetime.now(_dt.timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=_dt.timezone.utc)


_FRACTION = re.compile(r"(\d\d:\d\d:\d\d)[.,](\d+)")


def _fromiso(text: str) -> _dt.datetime:
    """``datetime.fromisoformat`` that also takes ``Z`` and 1-9 fraction digits on Python 3.10."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    s = _FRACTION.sub(lambda m: f"{m.group(1)}.{(m.group(2) + '000000')[:6]}", s, count=1)
    return _dt.datetime.fromisoformat(s)


def _aware(t: _dt.datetime) -> _dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def rfc3339(t: _dt.datetime) -> str:
    """RFC 3339 text of a timedate: ``2024-05-01T12:30:00Z`` (fractions only when non-zero)."""
    return _aware(t).isoformat().replace("+00:00", "Z")


@tool("time", "Now", aliases=("Time.Now",))
def now(ctx: ToolContext) -> _dt.datetime:
    """The current time, in UTC.

    Upstream 0.4.2 Time.Now.

    Returns:
        A timedate (displayed as RFC 3339, e.g. 2024-05-01T12:30:00.123456Z).

    Example:
        set started = tool.time.Now()
    """
    return _now(ctx)


@tool("time", "Format")
def format_(time: _dt.datetime, layout: str = "") -> str:
    """Format a timedate as text.

    Args:
        time: the timedate (or an RFC 3339 string).
        layout: a strftime layout such as "%Y-%m-%d %H:%M"; empty (the default) gives RFC 3339.

    Returns:
        The formatted text.

    Raises:
        4 an invalid layout.

    Example:
        set day = tool.time.Format(tool.time.Now(), "%Y-%m-%d")
    """
    if not layout:
        return rfc3339(time)
    try:
        return _aware(time).strftime(layout)
    except (ValueError, UnicodeEncodeError) as e:
        raise arg_error("layout", f"is not a valid strftime layout: {e}") from None


@tool("time", "Parse")
def parse(text: str, layout: str = "") -> _dt.datetime:
    """Parse text into a timedate.

    Without a layout, accepts RFC 3339 / ISO 8601 ("2024-05-01T12:30:00Z",
    "2024-05-01T12:30:00+02:00", "2024-05-01"). A time without an offset is taken as UTC.

    Args:
        text: the text to parse.
        layout: a strptime layout such as "%d/%m/%Y"; empty (the default) for RFC 3339.

    Returns:
        A timedate.

    Raises:
        4 the text does not match the layout.

    Example:
        set t = tool.time.Parse("2024-05-01T12:30:00Z")
    """
    try:
        if layout:
            t = _dt.datetime.strptime(text, layout)
        else:
            t = _fromiso(text)
    except ValueError as e:
        want = f"layout {layout!r}" if layout else "RFC 3339 (e.g. 2024-05-01T12:30:00Z)"
        raise arg_error("text", f"{text!r} does not match {want}: {e}") from None
    return _aware(t)


@tool("time", "Sleep", aliases=("Time.Sleep",), arg_types={"duration_seconds": "number"})
def sleep(ctx: ToolContext, duration_seconds: int | float) -> bool:
    """Pause the script for a number of seconds (at most 60), within the run's time limit.

    Upstream 0.4.2 Time.Sleep. The run's deadline is checked before and during the pause, so a
    sleep never outlasts the run's timeout.

    Args:
        duration_seconds: how long to pause, in seconds (0 to 60; fractions allowed).

    Returns:
        true.

    Raises:
        4 a negative, NaN or too long duration; 31 (Timeout) the run's time limit passed.

    Example:
        call tool.time.Sleep(0.5)
    """
    secs = float(duration_seconds)
    if math.isnan(secs) or secs < 0:
        raise arg_error("duration_seconds", f"must be 0 or more seconds, got {duration_seconds}")
    if secs > MAX_SLEEP_S:
        raise arg_error("duration_seconds", f"must be at most {MAX_SLEEP_S:g} seconds, got {duration_seconds}")
    interp = ctx.interpreter
    check: Callable[[], None] | None = getattr(interp, "check_deadline", None)
    pause: Callable[[float], None] = getattr(interp, "sleep", None) or _time.sleep
    left = secs
    while True:
        if check is not None:
            check()
        if left <= 0:
            return True
        step = min(left, SLEEP_SLICE_S)
        pause(step)
        left -= step


@tool("time", "Since", return_type="number")
def since(ctx: ToolContext, time: _dt.datetime) -> float:
    """Seconds elapsed since a timedate (negative if it is in the future).

    Args:
        time: the earlier timedate (or an RFC 3339 string).

    Returns:
        The elapsed time in seconds, with fractions.

    Example:
        set elapsed = tool.time.Since(started)
    """
    return (_now(ctx) - _aware(time)).total_seconds()


@tool("time", "Diff", return_type="number")
def diff(start: _dt.datetime, end: _dt.datetime) -> float:
    """Seconds from one timedate to another (end - start).

    Args:
        start: the first timedate.
        end: the second timedate.

    Returns:
        The difference in seconds, negative when end is before start.

    Example:
        set secs = tool.time.Diff(started, tool.time.Now())
    """
    return (_aware(end) - _aware(start)).total_seconds()


@tool("time", "Add", arg_types={"seconds": "number"})
def add(time: _dt.datetime, seconds: int | float) -> _dt.datetime:
    """A timedate moved by a number of seconds.

    Args:
        time: the timedate.
        seconds: seconds to add (negative to go back; fractions allowed).

    Returns:
        The new timedate.

    Raises:
        4 the result is outside years 1-9999, or seconds is not finite.

    Example:
        set tomorrow = tool.time.Add(tool.time.Now(), 86400)
    """
    try:
        return _aware(time) + _dt.timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # Python's text ("… C int") says nothing to a script's user
        raise arg_error("seconds", f"{describe(seconds)} moves the time outside years 1-9999") from None


TOOLS: list[Any] = [now, format_, parse, sleep, since, diff, add]
