"""JSON text with bounded nesting, for every JSON that nslang reads or writes (issue 10 items 4 and 5).

Python's ``json`` recurses (in C) once per level of nesting, and each level counts against Python's
recursion limit: a 100,000-deep file raised RecursionError, and with a raised limit could overflow the
C stack. Here nesting is limited to :data:`MAX_DEPTH` levels: text that nests deeper is refused with a
:class:`json.JSONDecodeError` (a ``ValueError``, so every existing "not valid JSON" handler reports it),
before the decoder runs; and the decoder/encoder runs with that many Python frames free (on a fresh
thread when the caller's stack is deep, see :func:`nslang._stack.with_headroom`).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from ._stack import with_headroom

__all__ = ["MAX_DEPTH", "dumps", "loads", "nesting_depth"]

#: Deepest nesting of arrays and objects that nslang reads or writes as JSON.
MAX_DEPTH = 500

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STRINGS_B = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS_B = re.compile(rb"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, 91: 1, 123: 1, 93: -1, 125: -1}


def nesting_depth(text: str | bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings in JSON text (cheap when there are few)."""
    if isinstance(text, str):
        if text.count("[") + text.count("{") <= MAX_DEPTH:
            return 0 if "[" not in text and "{" not in text else 1  # no more than MAX_DEPTH in any case
        brackets: Any = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    else:
        if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
            return 0 if b"[" not in text and b"{" not in text else 1
        brackets = _NOT_BRACKETS_B.sub(b"", _STRINGS_B.sub(b"", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` for text that nests at most :data:`MAX_DEPTH` levels.

    Raises:
        json.JSONDecodeError: not JSON, or nested deeper than :data:`MAX_DEPTH` (message "nests
            deeper than 500 levels").
    """
    if nesting_depth(text) > MAX_DEPTH:
        raise json.JSONDecodeError(f"nests deeper than {MAX_DEPTH} levels", _as_str(text), 0)
    try:
        return with_headroom(MAX_DEPTH + 10, _loads, text, kwargs)
    except RecursionError:  # Python's recursion limit is set below MAX_DEPTH by the host
        raise json.JSONDecodeError("nests too deeply for Python's recursion limit", _as_str(text), 0) from None


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of data nesting at most :data:`MAX_DEPTH` levels.

    Raises:
        ValueError: the data nests deeper than :data:`MAX_DEPTH` levels (or contains itself).
    """
    try:
        return with_headroom(MAX_DEPTH + 10, _dumps, obj, kwargs)  # type: ignore[no-any-return]
    except RecursionError:
        raise ValueError(f"data nests deeper than Python's recursion limit allows ({MAX_DEPTH} at most)") from None


def _loads(text: str | bytes, kwargs: dict[str, Any]) -> Any:
    return json.loads(text, **kwargs)


def _dumps(obj: Any, kwargs: dict[str, Any]) -> str:
    _check_depth(obj)
    return json.dumps(obj, **kwargs)


def _check_depth(obj: Any) -> None:
    """ValueError when lists/tuples/dicts in ``obj`` nest deeper than MAX_DEPTH (iterative walk)."""
    todo = [(obj, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, tuple, dict)):
            if d >= MAX_DEPTH:
                raise ValueError(f"data nests deeper than {MAX_DEPTH} levels")
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v)
                        if isinstance(x, (list, tuple, dict)))


def _as_str(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode("utf-8", "replace")
